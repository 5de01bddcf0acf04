//! The warning page server, in-process on port 0, driven over real TCP with raw HTTP/1.1; and
//! the "report a mistake" round trip through the real binary's warning page listener.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use fraudwall::sinkhole::page::{self, BlockInfo, BlockLookup, WarningPageConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// Blocks `*.evil.example` and a host that is itself an XSS attempt.
struct Lookup;

impl BlockLookup for Lookup {
    fn lookup(&self, host: &str) -> Option<BlockInfo> {
        let blocked = host == "evil.example"
            || host.ends_with(".evil.example")
            || host.starts_with("<script>");
        blocked.then(|| BlockInfo {
            list: "police-<b>list</b>".to_string(),
            category: "fraud".to_string(),
            entry: "evil.example".to_string(),
        })
    }
}

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), page::Error>>,
    _dir: tempfile::TempDir,
    reports: PathBuf,
}

impl Server {
    async fn start(tweak: impl FnOnce(&mut WarningPageConfig)) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let reports = dir.path().join("nested/dir/reports.jsonl");
        let mut cfg = WarningPageConfig {
            operator: "Example Telecom 示例电信".into(),
            hotline: "96110".into(),
            reports_file: reports.clone(),
            ..WarningPageConfig::default()
        };
        tweak(&mut cfg);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(page::serve(
            vec![listener],
            Arc::new(cfg),
            Arc::new(Lookup),
            async move {
                let _ = rx.await;
            },
        ));
        Server {
            addr,
            stop: Some(tx),
            task,
            _dir: dir,
            reports,
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap().unwrap();
    }

    async fn raw(&self, request: &str) -> Resp {
        let mut s = TcpStream::connect(self.addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.unwrap();
        Resp::parse(&buf)
    }

    async fn get(&self, host: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        self.raw(&req).await
    }

    async fn post_report(&self, body: &str) -> Resp {
        self.raw(&format!(
            "POST /.fraudwall/report HTTP/1.1\r\nHost: login.evil.example\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ))
        .await
    }
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn parse(buf: &[u8]) -> Resp {
        let text = String::from_utf8_lossy(buf);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines.next().unwrap_or("").split(' ').nth(1).unwrap_or("0");
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Resp {
            status: status.parse().unwrap_or(0),
            headers,
            body: body.to_string(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

const BROWSER: (&str, &str) = ("Accept", "text/html,application/xhtml+xml,*/*;q=0.8");

#[tokio::test]
async fn blocked_host_gets_bilingual_page_with_details() {
    let server = Server::start(|_| {}).await;
    let r = server
        .get("Login.EVIL.example:80", "/some/path?x=1", &[BROWSER])
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(r.header("x-robots-tag").unwrap().contains("noindex"));
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    let b = &r.body;
    assert!(
        b.contains("login.evil.example"),
        "host shown lowercased without port"
    );
    assert!(
        b.contains("已拦截"),
        "Chinese shown when no Accept-Language"
    );
    assert!(b.contains("Blocked: suspected fraud site"), "English too");
    assert!(b.contains("诈骗网站") && b.contains("fraud"));
    assert!(
        b.contains("police-&lt;b&gt;list&lt;/b&gt;"),
        "list name escaped"
    );
    assert!(b.contains("96110") && b.contains("Example Telecom 示例电信"));
    assert!(b.contains("action=\"/.fraudwall/report\""));
    assert!(!b.contains("{{"), "every placeholder filled");
    assert!(!b.contains("<script"), "no script in the page");
    // The incident id is shown and differs per view.
    let id = |body: &str| {
        body.split("<code>")
            .nth(1)
            .unwrap()
            .split("</code>")
            .next()
            .unwrap()
            .to_string()
    };
    let again = server.get("login.evil.example", "/", &[BROWSER]).await;
    assert_ne!(id(b), id(&again.body));
    server.stop().await;
}

#[tokio::test]
async fn accept_language_selects_one_language() {
    let server = Server::start(|_| {}).await;
    let zh = server
        .get(
            "evil.example",
            "/",
            &[BROWSER, ("Accept-Language", "zh-CN,zh;q=0.9,en;q=0.8")],
        )
        .await;
    assert!(zh.body.contains("已拦截") && !zh.body.contains("Blocked: suspected fraud site"));
    assert!(zh.body.contains("lang=\"zh-CN\""));
    let en = server
        .get(
            "evil.example",
            "/",
            &[BROWSER, ("Accept-Language", "en-GB,en;q=0.9")],
        )
        .await;
    assert!(!en.body.contains("已拦截") && en.body.contains("Blocked: suspected fraud site"));
    assert!(en.body.contains("lang=\"en\""));
    let fr = server
        .get("evil.example", "/", &[BROWSER, ("Accept-Language", "fr")])
        .await;
    assert!(fr.body.contains("已拦截") && fr.body.contains("Blocked: suspected fraud site"));
    server.stop().await;
}

#[tokio::test]
async fn unblocked_host_gets_generic_page() {
    let server = Server::start(|_| {}).await;
    let r = server.get("192.0.2.10", "/", &[BROWSER]).await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("192.0.2.10"));
    assert!(r.body.contains("Fraud protection") && r.body.contains("反诈骗保护"));
    assert!(!r.body.contains("Blocked: suspected fraud site"));
    assert!(
        !r.body.contains("<form"),
        "nothing to report for an unblocked host"
    );
    server.stop().await;
}

#[tokio::test]
async fn script_in_host_is_escaped() {
    let server = Server::start(|_| {}).await;
    let r = server
        .get(
            "<script>alert(1)</script>",
            "/%22%3E%3Cscript%3Ealert(2)%3C/script%3E",
            &[BROWSER],
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(!r.body.contains("<script>"), "{}", r.body);
    assert!(r.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(
        r.header("content-security-policy")
            .unwrap()
            .contains("default-src 'none'")
    );
    server.stop().await;
}

#[tokio::test]
async fn non_html_requests_get_a_tiny_plain_answer() {
    let server = Server::start(|_| {}).await;
    for (path, headers) in [
        ("/app.js", vec![BROWSER]),
        ("/img/logo.png", vec![BROWSER]),
        ("/favicon.ico", vec![BROWSER]),
        ("/api", vec![("Accept", "application/json")]),
        (
            "/api",
            vec![BROWSER, ("X-Requested-With", "XMLHttpRequest")],
        ),
    ] {
        let r = server.get("evil.example", path, &headers).await;
        assert_eq!(r.status, 403, "{path}");
        assert!(
            r.header("content-type").unwrap().starts_with("text/plain"),
            "{path}"
        );
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert!(r.body.len() < 200, "{path}: {}", r.body);
        assert!(r.body.contains("evil.example"));
    }
    server.stop().await;
}

#[tokio::test]
async fn head_gets_headers_only() {
    let server = Server::start(|_| {}).await;
    let r = server
        .raw("HEAD / HTTP/1.1\r\nHost: evil.example\r\nAccept: text/html\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(r.body.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn oversized_headers_are_refused() {
    let server = Server::start(|_| {}).await;
    let big = "x".repeat(20 * 1024);
    let r = server.get("evil.example", "/", &[("X-Big", &big)]).await;
    assert_eq!(r.status, 431);
    server.stop().await;
}

#[tokio::test]
async fn status_451_can_be_configured() {
    let server = Server::start(|c| c.status = 451).await;
    let r = server.get("evil.example", "/", &[BROWSER]).await;
    assert_eq!(r.status, 451);
    server.stop().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cfg = WarningPageConfig {
        status: 200,
        ..Default::default()
    };
    let err = page::serve(vec![listener], Arc::new(cfg), Arc::new(Lookup), async {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("403 or 451"), "{err}");
}

#[tokio::test]
async fn report_is_appended_as_one_json_line() {
    let server = Server::start(|_| {}).await;
    let r = server
        .post_report("host=Login.Evil.Example&reason=%E8%BF%99%E6%98%AF%E6%88%91%E7%9A%84%E7%BD%91%E7%AB%99+%3Cb%3E&incident=20250102-030405-7K3M9Q")
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("谢谢") && r.body.contains("Thank you"));
    let r2 = server.post_report("reason=second").await;
    assert_eq!(r2.status, 200);
    let text = std::fs::read_to_string(&server.reports).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["host"], "login.evil.example");
    assert_eq!(lines[0]["reason"], "这是我的网站 <b>");
    assert_eq!(lines[0]["incident"], "20250102-030405-7K3M9Q");
    assert_eq!(lines[0]["client"], "127.0.0.1");
    assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
    // No host field: the Host header is used; a fresh incident id is made.
    assert_eq!(lines[1]["host"], "login.evil.example");
    assert_eq!(lines[1]["incident"].as_str().unwrap().len(), 22);
    server.stop().await;
}

#[tokio::test]
async fn report_too_large_is_413() {
    let server = Server::start(|c| c.report_max_bytes = 64).await;
    let r = server
        .post_report(&format!("reason={}", "a".repeat(100)))
        .await;
    assert_eq!(r.status, 413);
    // Chunked, so no Content-Length to check up front: the cap applies while reading.
    let chunk = "b".repeat(100);
    let r = server
        .raw(&format!(
            "POST /.fraudwall/report HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\
             Transfer-Encoding: chunked\r\n\r\n{:x}\r\nreason={chunk}\r\n0\r\n\r\n",
            chunk.len() + 7
        ))
        .await;
    assert_eq!(r.status, 413);
    assert!(!server.reports.exists());
    server.stop().await;
}

#[tokio::test]
async fn reports_are_rate_limited_per_client() {
    let server = Server::start(|c| c.report_rate_per_minute = 2).await;
    assert_eq!(server.post_report("reason=1").await.status, 200);
    assert_eq!(server.post_report("reason=2").await.status, 200);
    let r = server.post_report("reason=3").await;
    assert_eq!(r.status, 429);
    assert_eq!(
        std::fs::read_to_string(&server.reports)
            .unwrap()
            .lines()
            .count(),
        2
    );
    server.stop().await;
}

#[tokio::test]
async fn report_write_failure_is_500_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    // A regular file where the parent folder should be: create_dir_all fails.
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    let server = Server::start(|c| c.reports_file = blocker.join("reports.jsonl")).await;
    let r = server.post_report("reason=x").await;
    assert_eq!(r.status, 500);
    // The server is still alive.
    assert_eq!(
        server.get("evil.example", "/", &[BROWSER]).await.status,
        403
    );
    server.stop().await;
}

#[tokio::test]
async fn other_methods_get_the_page_without_reading_the_body() {
    let server = Server::start(|_| {}).await;
    let r = server
        .raw("POST /login.php HTTP/1.1\r\nHost: evil.example\r\nAccept: text/html\r\nConnection: close\r\nContent-Length: 20\r\n\r\npassword=hunter2&x=1")
        .await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("evil.example"));
    assert!(!r.body.contains("hunter2"));
    assert!(!server.reports.exists());
    server.stop().await;
}

#[tokio::test]
async fn operator_template_replaces_the_builtin() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.html");
    std::fs::write(
        &path,
        "<p>{{operator}} blocked {{host}} ({{list}}) id={{incident}} {{nope}}</p><!--zh-->中文<!--/zh-->",
    )
    .unwrap();
    let server = Server::start(|c| c.template = Some(path)).await;
    let r = server
        .get("evil.example", "/", &[BROWSER, ("Accept-Language", "en")])
        .await;
    assert!(
        r.body.starts_with(
            "<p>Example Telecom 示例电信 blocked evil.example (police-&lt;b&gt;list&lt;/b&gt;) id=2"
        ),
        "{}",
        r.body
    );
    assert!(r.body.contains("{{nope}}") && !r.body.contains("中文"));
    server.stop().await;

    let cfg = WarningPageConfig {
        template: Some(dir.path().join("missing.html")),
        ..Default::default()
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = page::serve(vec![listener], Arc::new(cfg), Arc::new(Lookup), async {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("missing.html"));
}

#[tokio::test]
async fn bind_uses_the_configured_addresses() {
    let cfg = WarningPageConfig {
        listen: vec![
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.1:0".parse().unwrap(),
        ],
        ..Default::default()
    };
    let listeners = page::bind(&cfg).await.unwrap();
    assert_eq!(listeners.len(), 2);
    let taken = listeners[0].local_addr().unwrap();
    let cfg = WarningPageConfig {
        listen: vec![taken],
        ..Default::default()
    };
    let err = page::bind(&cfg).await.unwrap_err();
    assert!(err.to_string().contains(&taken.to_string()));
}

/// Through the real binary: the page a blocked host gets carries a form; posting it as a
/// browser would (the hidden host and incident fields, the user's reason) appends one JSON line
/// to `warning_page.reports_file` and counts an accepted report.
#[test]
fn report_through_the_binary_lands_in_the_reports_file() {
    use std::io::{Read, Write};
    use std::time::Duration;

    // Nothing here is resolved: the forwarder is a socket that is never asked.
    let upstream = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let cfg = format!(
        "listen: [\"127.0.0.1:0\"]\n\
         resolver:\n  mode: forward\n  forwarders:\n    - address: \"{}\"\n  dnssec: off\n\
         blocklists:\n  dir: lists\n  lists:\n\
         \x20   - file: police.txt\n      name: police-feed\n\
         metrics:\n  listen: \"127.0.0.1:0\"\n\
         warning_page:\n  listen: [\"127.0.0.1:0\"]\n  reports_file: feedback/reports.jsonl\n",
        upstream.local_addr().unwrap()
    );
    let fw = common::Fraudwall::start(&cfg, &[("lists/police.txt", "evil.test\n")]);
    let http = |addr: std::net::SocketAddr, request: String| -> String {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).unwrap();
        buf
    };
    let page_addr = fw
        .logged_addr("warning page listening on http ")
        .expect("warning page logged");
    let metrics_addr = fw
        .logged_addr("metrics listening on http ")
        .expect("metrics logged");
    let accepted = || {
        let body = http(
            metrics_addr,
            "GET /metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n".into(),
        );
        body.lines()
            .find_map(|l| {
                l.strip_prefix("fraudwall_reports_total{outcome=\"accepted\"} ")?
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or(0.0)
    };
    assert_eq!(accepted(), 0.0);

    // The page, and the form's hidden fields in it.
    let page = http(
        page_addr,
        "GET / HTTP/1.1\r\nHost: shop.evil.test\r\nAccept: text/html\r\nConnection: close\r\n\r\n"
            .into(),
    );
    let hidden = |name: &str| -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = page
            .find(&marker)
            .unwrap_or_else(|| panic!("{name}: {page}"))
            + marker.len();
        page[start..].split('"').next().unwrap().to_string()
    };
    let (host, incident) = (hidden("host"), hidden("incident"));
    assert_eq!(host, "shop.evil.test");
    assert_eq!(incident.len(), 22, "{incident}");

    let body = format!(
        "host={host}&incident={incident}&reason=%E8%BF%99%E6%98%AF%E6%88%91%E7%9A%84%E5%BA%97+my+shop"
    );
    let resp = http(
        page_addr,
        format!(
            "POST /.fraudwall/report HTTP/1.1\r\nHost: shop.evil.test\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(
        resp.contains("Thank you") && resp.contains("谢谢"),
        "{resp}"
    );

    let path = fw.dir.path().join("feedback/reports.jsonl");
    let text = std::fs::read_to_string(&path).expect("the reports file, in its new folder");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    let r = &lines[0];
    assert_eq!(r["host"], "shop.evil.test");
    assert_eq!(
        r["incident"],
        incident.as_str(),
        "joins up with the page view"
    );
    assert_eq!(r["reason"], "这是我的店 my shop");
    assert_eq!(r["client"], "127.0.0.1");
    let time = r["time"].as_str().unwrap();
    assert!(time.len() >= 20 && time.ends_with('Z'), "{time}");
    assert_eq!(
        r.as_object().unwrap().len(),
        5,
        "time, client, host, reason, incident: {r}"
    );
    // Counted before the answer is written, so it shows at once.
    assert_eq!(accepted(), 1.0);
}
