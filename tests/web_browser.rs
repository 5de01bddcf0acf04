//! The warning page as a real browser renders it: headless Chromium loads it from the in-process
//! server under a blocked name, we assert on the DOM it built and keep a screenshot in
//! `target/warning-page.png`.
//!
//! Needs `chromium` (tests/browser/install.sh installs it, or set CHROMIUM=/path/to/binary).
//! Without it the test is skipped (`common::skip`: a failure under `tests/run.sh`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fraudwall::sinkhole::page::{self, BlockInfo, BlockLookup, WarningPageConfig};

const DEMO_HOST: &str = "www.fraudwall-demo.test";

struct Lookup;

impl BlockLookup for Lookup {
    fn lookup(&self, host: &str) -> Option<BlockInfo> {
        (host == DEMO_HOST).then(|| BlockInfo {
            list: "demo-police-list".to_string(),
            category: "fraud".to_string(),
            entry: "fraudwall-demo.test".to_string(),
        })
    }
}

fn find_chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
}

/// Runs Chromium headless with `extra` arguments and returns its stdout. Killed after 90 s.
fn chromium(bin: &Path, port: u16, extra: &[String]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--no-proxy-server",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .arg(format!(
        "--host-resolver-rules=MAP {DEMO_HOST} 127.0.0.1:{port}"
    ))
    .args(extra)
    .arg(format!("http://{DEMO_HOST}/account/login"))
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("start chromium");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.join().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_renders_the_warning_page() {
    let Some(bin) = find_chromium() else {
        common::skip(
            "chromium_renders_the_warning_page",
            "chromium not found: run tests/browser/install.sh or set CHROMIUM=/path/to/chromium",
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = WarningPageConfig {
        operator: "示例电信 Example Telecom".to_string(),
        hotline: "96110".to_string(),
        reports_file: dir.path().join("reports.jsonl"),
        utc_offset: "+08:00".to_string(),
        ..WarningPageConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(page::serve(
        vec![listener],
        Arc::new(cfg),
        Arc::new(Lookup),
        async move {
            let _ = stopped.await;
        },
    ));

    let run = |extra: Vec<String>| {
        let bin = bin.clone();
        tokio::task::spawn_blocking(move || chromium(&bin, port, &extra))
    };

    let zh = run(vec!["--accept-lang=zh-CN".into(), "--dump-dom".into()])
        .await
        .unwrap();
    assert!(
        zh.contains("已拦截：疑似诈骗网站"),
        "Chinese heading missing:\n{zh}"
    );
    assert!(zh.contains(DEMO_HOST), "blocked host missing:\n{zh}");
    assert!(zh.contains("demo-police-list"), "list name missing");
    assert!(zh.contains("诈骗网站") && zh.contains("96110") && zh.contains("示例电信"));
    assert!(zh.contains("UTC+08:00"), "time with the configured offset");
    assert!(
        !zh.contains("Blocked: suspected fraud site"),
        "zh only for a zh browser"
    );
    assert!(zh.contains("/.fraudwall/report"), "report form present");
    assert!(
        !zh.to_ascii_lowercase().contains("<script"),
        "page has no script"
    );

    let en = run(vec!["--accept-lang=en-US".into(), "--dump-dom".into()])
        .await
        .unwrap();
    assert!(
        en.contains("Blocked: suspected fraud site"),
        "English heading missing:\n{en}"
    );
    assert!(en.contains(DEMO_HOST) && en.contains("demo-police-list"));
    assert!(en.contains("anti-fraud hotline") && !en.contains("已拦截"));

    // An unknown language shows both: the fullest page, so that is the one to look at.
    let shot = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/warning-page.png");
    let _ = std::fs::remove_file(&shot);
    run(vec![
        "--accept-lang=de-DE".into(),
        format!("--screenshot={}", shot.display()),
        "--window-size=1280,900".into(),
        "--hide-scrollbars".into(),
    ])
    .await
    .unwrap();
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert!(png.starts_with(b"\x89PNG"), "screenshot is a PNG");
    assert!(
        png.len() > 20_000,
        "screenshot is not blank ({} bytes)",
        png.len()
    );
    eprintln!("screenshot: {}", shot.display());

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
