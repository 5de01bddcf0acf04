//! The command line of the real binary: config checking, compile and check, exit codes.

mod common;

use std::process::Command;

use common::fraudwall::bin;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(args)
        .output()
        .expect("run fraudwall");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn config_check_reports_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "listen: [\"127.0.0.1:53\"]\nresolver:\n  mood: recursive\n",
    )
    .unwrap();
    let (code, _, err) = run(&["config", "check", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("line 3") && err.contains("mood"), "{err}");

    let invalid = dir.path().join("invalid.yaml");
    std::fs::write(&invalid, "listen: []\nsinkhole:\n  ttl: 0\n").unwrap();
    let (code, _, err) = run(&["config", "check", invalid.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("line 1: listen"), "{err}");
    assert!(
        err.contains("line 3: sinkhole.ttl"),
        "every problem at once: {err}"
    );

    let good = dir.path().join("good.yaml");
    std::fs::write(&good, "listen: [\"127.0.0.1:5399\"]\n").unwrap();
    let (code, out, _) = run(&["config", "check", good.to_str().unwrap()]);
    assert_eq!((code, out.contains("ok")), (0, true));
}

#[test]
fn serve_refuses_a_bad_config_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "listen: [\"127.0.0.1:0\"]\nsinkhole:\n  ipv4: banana\n",
    )
    .unwrap();
    let (code, _, err) = run(&["serve", "--config", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("line 3"), "{err}");
}

#[test]
fn example_config_passes_config_check() {
    let dir = tempfile::tempdir().unwrap();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config/fraudwall.example.yaml");
    let copy = dir.path().join("fraudwall.yaml");
    std::fs::copy(example, &copy).unwrap();
    let (code, out, err) = run(&["config", "check", copy.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn compile_then_check() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("fraud.txt");
    std::fs::write(&list, "# list\nevil.example\nbad..name\n").unwrap();
    let fst = dir.path().join("out.fst");
    let (code, out, err) = run(&[
        "compile",
        "--out",
        fst.to_str().unwrap(),
        list.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(":3:"),
        "the bad line is reported with its number: {out}"
    );
    let (code, out, _) = run(&[
        "check",
        "--fst",
        fst.to_str().unwrap(),
        "www.EVIL.example",
        "good.example",
    ]);
    assert_eq!(code, 0);
    assert!(
        out.contains("BLOCKED") && out.contains("not listed"),
        "{out}"
    );
}

/// Values that `serve` cannot start with fail `config check` too, naming their key: the check
/// runs each section's own validation, not a copy of it.
#[test]
fn config_check_fails_where_serve_would() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hints.zone"), "this is not a zone (\n").unwrap();
    std::fs::write(dir.path().join("anchor.txt"), "; no records\n").unwrap();
    let cases = [
        ("warning_page:\n  status: 500\n", "warning_page.status"),
        (
            "warning_page:\n  utc_offset: \"8\"\n",
            "warning_page.utc_offset",
        ),
        (
            "warning_page:\n  template: missing.html\n",
            "warning_page.template",
        ),
        (
            "warning_page:\n  tls:\n    cert: missing.pem\n    key: missing.key\n",
            "warning_page.tls",
        ),
        ("events:\n  hash_key: xyz\n", "events.hash_key"),
        ("events:\n  queue: 0\n", "events.queue"),
        (
            "metrics:\n  latency_buckets: [0.5, 0.1]\n",
            "metrics.latency_buckets",
        ),
        ("log:\n  level: \"info,[\"\n", "log.level"),
        (
            "resolver:\n  root_hints: hints.zone\n",
            "resolver.root_hints",
        ),
        (
            "resolver:\n  trust_anchor: anchor.txt\n",
            "resolver.trust_anchor",
        ),
    ];
    for (i, (section, key)) in cases.iter().enumerate() {
        let cfg = dir.path().join(format!("c{i}.yaml"));
        std::fs::write(
            &cfg,
            format!("listen: [\"127.0.0.1:0\"]\nmetrics:\n  listen: null\n{section}").replace(
                "metrics:\n  listen: null\nmetrics:\n",
                "metrics:\n  listen: null\n",
            ),
        )
        .unwrap();
        let (code, _, err) = run(&["config", "check", cfg.to_str().unwrap()]);
        assert_eq!(code, 2, "{key}: {err}");
        assert!(err.contains(key), "{key}: {err}");
        let (code, _, err) = run(&["serve", "--config", cfg.to_str().unwrap()]);
        assert_eq!(code, 2, "serve refuses it the same way: {key}: {err}");
    }
}

/// Values that parse but cannot work are refused by `config check`, with key and line.
#[test]
fn config_check_refuses_values_that_cannot_work() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (section, key)) in [
        (
            "server:\n  tcp_timeout_secs: 0\n",
            "server.tcp_timeout_secs",
        ),
        ("resolver:\n  max_inflight: 0\n", "resolver.max_inflight"),
        ("access:\n  allow: [0.0.0.0/0]\n", "access.allow"),
        (
            "resolver:\n  cache:\n    max_mib: 18446744073709551615\n",
            "resolver.cache.max_mib",
        ),
        (
            "blocklists:\n  lists:\n    - file: a.txt\n      url: http://lists.example/a.txt\n",
            "blocklists.lists[0].url",
        ),
    ]
    .iter()
    .enumerate()
    {
        let cfg = dir.path().join(format!("v{i}.yaml"));
        std::fs::write(&cfg, format!("listen: [\"127.0.0.1:0\"]\n{section}")).unwrap();
        let (code, _, err) = run(&["config", "check", cfg.to_str().unwrap()]);
        assert_eq!(code, 2, "{key}: {err}");
        assert!(
            err.contains(&format!(": {key}: ")) && err.contains("line "),
            "{key}: {err}"
        );
    }
}
