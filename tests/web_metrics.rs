//! The metrics endpoint: install on port 0, move counters, scrape over HTTP.

use std::time::{Duration, SystemTime};

use fraudwall::blocklist::Action;
use fraudwall::dns::Transport as Protocol;
use fraudwall::metrics::{self, BlockedCounters, MetricsConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn scrape(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.unwrap();
    let status = buf.split(' ').nth(1).unwrap_or("0").parse().unwrap_or(0);
    (status, buf)
}

/// The value of the first sample line starting with `prefix` (name plus labels).
fn value(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

// One test function: the recorder is process-global, and tests in one binary share a process.
#[tokio::test]
async fn counters_move_and_are_scraped_over_http() {
    let cfg = MetricsConfig {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        ..MetricsConfig::default()
    };
    let handle = metrics::install(&cfg).unwrap().expect("enabled");
    let addr = handle.local_addr();
    assert_ne!(addr.port(), 0);

    metrics::record_query(Protocol::Udp, 0, Duration::from_micros(80));
    metrics::record_query(Protocol::Udp, 0, Duration::from_millis(30));
    metrics::record_query(Protocol::Tcp, 3, Duration::from_millis(2));
    metrics::cache_hit();
    metrics::cache_miss();
    metrics::cache_miss();
    metrics::recursor_timeout();
    metrics::recursor_queue_full();
    metrics::set_list_entries("police", 1234);
    metrics::reload_succeeded(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    metrics::reload_failed();
    let blocked = BlockedCounters::new([("police", "fraud"), ("community", "phishing")]);
    blocked.record(0, Action::Sinkhole);
    blocked.record(0, Action::Sinkhole);
    blocked.record(1, Action::Nxdomain);
    blocked.record(99, Action::Log);

    // Histograms are folded in during upkeep; the endpoint renders what is current.
    let (status, text) = scrape(addr, "/metrics").await;
    assert_eq!(status, 200, "{text}");
    let q = |labels: &str| value(&text, &format!("fraudwall_queries_total{{{labels}}}"));
    assert_eq!(q("protocol=\"udp\",rcode=\"NOERROR\""), Some(2.0), "{text}");
    assert_eq!(q("protocol=\"tcp\",rcode=\"NXDOMAIN\""), Some(1.0));
    assert_eq!(q("protocol=\"udp\",rcode=\"SERVFAIL\""), Some(0.0));
    assert_eq!(value(&text, "fraudwall_cache_hits_total"), Some(1.0));
    assert_eq!(value(&text, "fraudwall_cache_misses_total"), Some(2.0));
    assert_eq!(value(&text, "fraudwall_recursor_timeouts_total"), Some(1.0));
    assert_eq!(
        value(&text, "fraudwall_recursor_queue_full_total"),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "fraudwall_list_entries{list=\"police\"}"),
        Some(1234.0)
    );
    assert_eq!(
        value(&text, "fraudwall_last_reload_timestamp_seconds"),
        Some(1.7e9)
    );
    assert_eq!(value(&text, "fraudwall_reload_failures_total"), Some(1.0));
    assert_eq!(
        value(
            &text,
            "fraudwall_blocked_total{list=\"police\",category=\"fraud\",action=\"sinkhole\"}"
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "fraudwall_blocked_total{list=\"community\",category=\"phishing\",action=\"nxdomain\"}"
        ),
        Some(1.0)
    );
    assert!(text.contains("# HELP fraudwall_queries_total"));
    // DNS-sized buckets on the latency histogram.
    assert_eq!(
        value(
            &text,
            "fraudwall_answer_latency_seconds_bucket{protocol=\"udp\",le=\"0.0001\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "fraudwall_answer_latency_seconds_bucket{protocol=\"udp\",le=\"5\"}"
        ),
        Some(2.0)
    );

    // Counters keep moving between scrapes.
    metrics::cache_hit();
    let (_, text) = scrape(addr, "/metrics").await;
    assert_eq!(value(&text, "fraudwall_cache_hits_total"), Some(2.0));
    assert_eq!(scrape(addr, "/other").await.0, 404);

    // A second install reuses the recorder and serves the same registry elsewhere.
    let second = metrics::install(&cfg).unwrap().unwrap();
    assert_ne!(second.local_addr(), addr);
    let (_, text) = scrape(second.local_addr(), "/metrics").await;
    assert_eq!(value(&text, "fraudwall_cache_hits_total"), Some(2.0));

    // The warning page counts its views and reports into the same registry.
    let page_text = page_views_are_counted(addr).await;
    assert_eq!(
        value(
            &page_text,
            "fraudwall_warning_page_views_total{kind=\"page\"}"
        ),
        Some(1.0),
        "{page_text}"
    );
    assert_eq!(
        value(&page_text, "fraudwall_reports_total{outcome=\"accepted\"}"),
        Some(1.0)
    );

    // Disabled: nothing started.
    let off = MetricsConfig {
        listen: None,
        ..MetricsConfig::default()
    };
    assert!(metrics::install(&off).unwrap().is_none());
}

async fn page_views_are_counted(metrics_addr: std::net::SocketAddr) -> String {
    use fraudwall::sinkhole::page::{self, BlockInfo, BlockLookup, WarningPageConfig};
    struct All;
    impl BlockLookup for All {
        fn lookup(&self, _: &str) -> Option<BlockInfo> {
            Some(BlockInfo::default())
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = WarningPageConfig {
        reports_file: dir.path().join("r.jsonl"),
        ..WarningPageConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(page::serve(
        vec![listener],
        std::sync::Arc::new(cfg),
        std::sync::Arc::new(All),
        async move {
            let _ = stopped.await;
        },
    ));
    for req in [
        "GET / HTTP/1.1\r\nHost: a.example\r\nAccept: text/html\r\nConnection: close\r\n\r\n",
        "POST /.fraudwall/report HTTP/1.1\r\nHost: a.example\r\nContent-Length: 8\r\nConnection: close\r\n\r\nreason=x",
    ] {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(req.as_bytes()).await.unwrap();
        let mut sink = Vec::new();
        s.read_to_end(&mut sink).await.unwrap();
    }
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    scrape(metrics_addr, "/metrics").await.1
}

/// Every metric the Grafana dashboard queries is one this crate exports.
#[test]
fn dashboard_uses_only_exported_metric_names() {
    let dashboard = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/grafana-dashboard.json"
    ))
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(&dashboard).expect("dashboard is JSON");
    assert!(json["panels"].as_array().unwrap().len() >= 10);
    let known = [
        metrics::QUERIES_TOTAL,
        metrics::BLOCKED_TOTAL,
        metrics::CACHE_HITS_TOTAL,
        metrics::CACHE_MISSES_TOTAL,
        metrics::ANSWER_LATENCY_SECONDS,
        metrics::LIST_ENTRIES,
        metrics::LAST_RELOAD_TIMESTAMP_SECONDS,
        metrics::RELOAD_FAILURES_TOTAL,
        metrics::PAGE_VIEWS_TOTAL,
        metrics::REPORTS_TOTAL,
        metrics::EVENTS_DROPPED_TOTAL,
        metrics::EVENTS_WRITTEN_TOTAL,
        metrics::RECURSOR_QUEUE_FULL_TOTAL,
        metrics::RECURSOR_TIMEOUTS_TOTAL,
    ];
    let mut used = std::collections::BTreeSet::new();
    for (i, _) in dashboard.match_indices("fraudwall_") {
        let name: String = dashboard[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let base = name.strip_suffix("_bucket").unwrap_or(&name).to_string();
        assert!(
            known.contains(&base.as_str()),
            "dashboard uses unknown metric {name}"
        );
        used.insert(base);
    }
    for name in known {
        assert!(used.contains(name), "dashboard has no panel for {name}");
    }
}
