//! The blocked-event log: lines, privacy modes, overload and rotation.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fraudwall::events::{BlockEvent, ClientPrivacy, EventLog, EventLogConfig, EventTarget};

fn event(client: &str, qname: &str) -> BlockEvent {
    BlockEvent {
        time: SystemTime::UNIX_EPOCH + Duration::from_millis(1_735_787_045_678),
        client: client.parse::<IpAddr>().unwrap(),
        qname: qname.to_string(),
        qtype: "A".to_string(),
        action: "sinkhole",
        list: Arc::from("police"),
        entry: "evil.example".to_string(),
        category: Arc::from("fraud"),
        protocol: "udp",
        group: Arc::from("default"),
        ip: None,
    }
}

fn config(path: &Path, privacy: ClientPrivacy) -> EventLogConfig {
    EventLogConfig {
        target: EventTarget::File(path.to_path_buf()),
        client_privacy: privacy,
        hash_key: Some("000102030405060708090a0b0c0d0e0f".to_string()),
        ..EventLogConfig::default()
    }
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

/// Records `clients`, shuts the log down and returns the `client` field of each line.
async fn run(privacy: ClientPrivacy, clients: &[&str]) -> Vec<serde_json::Value> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs/blocked.jsonl");
    let (sink, writer) = EventLog::start(&config(&path, privacy)).unwrap();
    for c in clients {
        sink.record(event(c, "login.evil.example"));
    }
    assert_eq!(sink.dropped(), 0);
    drop(sink);
    writer.await.unwrap();
    lines(&path)
}

#[tokio::test]
async fn full_mode_writes_one_line_with_every_field() {
    let lines = run(ClientPrivacy::Full, &["203.0.113.7", "2001:db8::1"]).await;
    assert_eq!(lines.len(), 2);
    let l = &lines[0];
    assert_eq!(l["time"], "2025-01-02T03:04:05.678Z");
    assert_eq!(l["client"], "203.0.113.7");
    assert_eq!(l["qname"], "login.evil.example");
    assert_eq!(l["qtype"], "A");
    assert_eq!(l["action"], "sinkhole");
    assert_eq!(l["list"], "police");
    assert_eq!(l["entry"], "evil.example");
    assert_eq!(l["category"], "fraud");
    assert_eq!(l["protocol"], "udp");
    assert_eq!(l["group"], "default");
    assert_eq!(l.as_object().unwrap().len(), 10, "no extra fields");
    assert_eq!(lines[1]["client"], "2001:db8::1");
}

#[tokio::test]
async fn truncate_mode_hides_the_host_part() {
    let lines = run(
        ClientPrivacy::Truncate,
        &["203.0.113.7", "2001:db8:aa:bbcc::1"],
    )
    .await;
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["client"], "203.0.113.0/24");
    assert_eq!(lines[1]["client"], "2001:db8:aa:bb00::/56");
    assert_eq!(lines[0]["qname"], "login.evil.example");
}

#[tokio::test]
async fn hash_mode_is_stable_for_the_same_key() {
    let lines = run(
        ClientPrivacy::Hash,
        &["203.0.113.7", "203.0.113.7", "203.0.113.8"],
    )
    .await;
    assert_eq!(lines.len(), 3);
    let h = lines[0]["client"].as_str().unwrap();
    assert_eq!(h.len(), 32);
    assert!(!h.contains("203"));
    assert_eq!(lines[1]["client"], lines[0]["client"]);
    assert_ne!(lines[2]["client"], lines[0]["client"]);
    // Same key in a later run: same value, so analysts can correlate across days.
    let again = run(ClientPrivacy::Hash, &["203.0.113.7"]).await;
    assert_eq!(again[0]["client"], lines[0]["client"]);
}

#[tokio::test]
async fn hash_mode_without_key_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.jsonl");
    let cfg = EventLogConfig {
        hash_key: None,
        ..config(&path, ClientPrivacy::Hash)
    };
    let (sink, writer) = EventLog::start(&cfg).unwrap();
    sink.record(event("192.0.2.1", "a.evil.example"));
    drop(sink);
    writer.await.unwrap();
    assert_eq!(lines(&path)[0]["client"].as_str().unwrap().len(), 32);
}

#[test]
fn full_queue_drops_and_counts_instead_of_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.jsonl");
    let cfg = EventLogConfig {
        queue: 4,
        ..config(&path, ClientPrivacy::Full)
    };
    // The writer is not running, so nothing drains the queue.
    let (sink, writer) = EventLog::channel(&cfg).unwrap();
    let writer = writer.unwrap();
    let started = std::time::Instant::now();
    for i in 0..10 {
        sink.clone()
            .record(event("192.0.2.1", &format!("n{i}.evil.example")));
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "record never waits"
    );
    assert_eq!(sink.dropped(), 6);
    // Once the writer runs it writes exactly what was queued.
    drop(sink);
    writer.run();
    let lines = lines(&path);
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[3]["qname"], "n3.evil.example");
}

#[tokio::test]
async fn rotates_at_the_size_limit_and_keeps_n_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blocked.jsonl");
    let one_line = {
        let mut v = serde_json::to_vec(&lines_for_size()).unwrap();
        v.push(b'\n');
        v.len() as u64
    };
    let cfg = EventLogConfig {
        rotate_bytes: one_line * 3,
        keep: 2,
        ..config(&path, ClientPrivacy::Full)
    };
    let (sink, writer) = EventLog::start(&cfg).unwrap();
    for i in 0..10 {
        sink.record(event("203.0.113.7", &format!("n{i}.evil.example")));
    }
    drop(sink);
    writer.await.unwrap();
    // 10 lines, 3 per file: [0..3) [3..6) [6..9) [9]; keep 2 rotated files.
    let current = lines(&path);
    let first = lines(&dir.path().join("blocked.jsonl.1"));
    let second = lines(&dir.path().join("blocked.jsonl.2"));
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["qname"], "n9.evil.example");
    assert_eq!(first.len(), 3);
    assert_eq!(first[0]["qname"], "n6.evil.example");
    assert_eq!(second.len(), 3);
    assert_eq!(second[0]["qname"], "n3.evil.example");
    assert!(!dir.path().join("blocked.jsonl.3").exists());
    for f in ["blocked.jsonl", "blocked.jsonl.1", "blocked.jsonl.2"] {
        let size = std::fs::metadata(dir.path().join(f)).unwrap().len();
        assert!(size <= one_line * 3, "{f} is {size} bytes");
    }
}

/// A line of the same length as those written by the rotation test.
fn lines_for_size() -> serde_json::Value {
    serde_json::json!({
        "time": "2025-01-02T03:04:05.678Z", "client": "203.0.113.7",
        "qname": "n0.evil.example", "qtype": "A", "action": "sinkhole", "list": "police",
        "entry": "evil.example", "category": "fraud", "protocol": "udp", "group": "default"
    })
}

#[tokio::test]
async fn disabled_log_discards_and_finishes() {
    let cfg = EventLogConfig {
        enabled: false,
        ..EventLogConfig::default()
    };
    let (sink, writer) = EventLog::start(&cfg).unwrap();
    sink.record(event("192.0.2.1", "x.evil.example"));
    assert_eq!(sink.dropped(), 0);
    writer.await.unwrap();
}

#[tokio::test]
async fn unopenable_target_is_an_error_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let cfg = config(&file.join("blocked.jsonl"), ClientPrivacy::Full);
    let err = EventLog::start(&cfg).unwrap_err();
    assert!(err.to_string().contains("blocked.jsonl"), "{err}");
    let cfg = EventLogConfig {
        hash_key: Some("short".into()),
        ..config(&dir.path().join("b.jsonl"), ClientPrivacy::Hash)
    };
    assert!(
        EventLog::start(&cfg)
            .unwrap_err()
            .to_string()
            .contains("32 hex digits")
    );
}
