//! The metrics endpoint: in-process (install on port 0, move counters by hand, scrape over
//! HTTP: the rendering), and on the real binary (queries with `dig`, page views and a report
//! over HTTP, then exact counts: the server really counts what it does).

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime};

use common::{Fakenet, Fraudwall, dig};

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

/// Every sample of a scrape by series (name and labels, as exported).
fn samples(addr: SocketAddr) -> BTreeMap<String, f64> {
    let body = http(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n",
    );
    body.lines()
        .filter(|l| l.starts_with("fraudwall_"))
        .filter_map(|l| {
            let (series, v) = l.rsplit_once(' ')?;
            Some((series.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// Sends a raw HTTP/1.1 request and returns the whole response.
fn http(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    buf
}

/// The real binary, an instance of its own, so every count is exact: each kind of query, block,
/// cache lookup, page view and report moves its series by exactly what was done, and nothing
/// else moves.
#[test]
fn the_binary_counts_exactly_what_it_does() {
    let net = Fakenet::shared();
    let cfg = format!(
        "listen: [\"127.0.0.1:0\"]\n\
         resolver:\n  root_hints: {}\n  trust_anchor: {}\n  allow_private_servers: true\n\
         blocklists:\n  dir: lists\n  lists:\n\
         \x20   - file: phish.txt\n      action: nxdomain\n      category: phishing\n\
         \x20   - file: refused.txt\n      action: refused\n\
         \x20   - file: watch.txt\n      action: log\n      category: suspect\n\
         metrics:\n  listen: \"127.0.0.1:0\"\n\
         warning_page:\n  listen: [\"127.0.0.1:0\"]\n  reports_file: reports.jsonl\n",
        net.hints.display(),
        net.trust_anchor.display()
    );
    let fw = Fraudwall::start(
        &cfg,
        &[
            ("lists/fraud.txt", "fraudwall-demo.test\nscam-shop.net\n"),
            ("lists/phish.txt", "nx-phish.example.com\n"),
            ("lists/refused.txt", "refused.example.com\n"),
            ("lists/watch.txt", "insecure.org\n"),
        ],
    );
    let metrics = fw
        .logged_addr("metrics listening on http ")
        .expect("metrics logged");
    let page = fw
        .logged_addr("warning page listening on http ")
        .expect("warning page logged");

    // The gauges are set by the first load.
    let start = samples(metrics);
    for (list, n) in [
        ("fraud", 2.0),
        ("phish", 1.0),
        ("refused", 1.0),
        ("watch", 1.0),
    ] {
        let series = format!("fraudwall_list_entries{{list=\"{list}\"}}");
        assert_eq!(start.get(&series), Some(&n), "{series}: {start:?}");
    }

    let sinkholed = dig(fw.addr, &["www.fraudwall-demo.test", "A"]);
    assert_eq!(sinkholed.answer_rdata("A"), ["127.0.0.1"]);
    let nx = dig(fw.addr, &["login.nx-phish.example.com", "A", "+tcp"]);
    assert_eq!(nx.status, "NXDOMAIN");
    assert_eq!(
        dig(fw.addr, &["refused.example.com", "A"]).status,
        "REFUSED"
    );
    for _ in 0..2 {
        let r = dig(fw.addr, &["www.example.com", "A"]);
        assert_eq!(r.answer_rdata("A"), ["198.18.0.10"], "{}", r.raw);
    }
    let logged = dig(fw.addr, &["www.insecure.org", "A"]);
    assert_eq!(logged.answer_rdata("A"), ["198.18.4.1"], "{}", logged.raw);

    let get = |host: &str, path: &str| {
        http(
            page,
            &format!(
                "GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/html\r\nConnection: close\r\n\r\n"
            ),
        )
    };
    assert!(get("www.fraudwall-demo.test", "/").contains("Blocked: suspected fraud site"));
    assert!(get("www.example.com", "/").contains("Fraud protection"));
    assert!(get("www.fraudwall-demo.test", "/logo.png").contains("text/plain"));
    let body = "host=www.fraudwall-demo.test&reason=mine";
    let report = http(
        page,
        &format!(
            "POST /.fraudwall/report HTTP/1.1\r\nHost: www.fraudwall-demo.test\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(report.starts_with("HTTP/1.1 200"), "{report}");

    let q = |protocol: &str, rcode: &str| {
        format!("fraudwall_queries_total{{protocol=\"{protocol}\",rcode=\"{rcode}\"}}")
    };
    let blocked = |list: &str, category: &str, action: &str| {
        format!(
            "fraudwall_blocked_total{{list=\"{list}\",category=\"{category}\",action=\"{action}\"}}"
        )
    };
    let expected: Vec<(String, f64)> = vec![
        // sinkholed A + www.example.com twice + the logged name
        (q("udp", "NOERROR"), 4.0),
        (q("udp", "REFUSED"), 1.0),
        (q("udp", "NXDOMAIN"), 0.0),
        (q("udp", "SERVFAIL"), 0.0),
        (q("tcp", "NXDOMAIN"), 1.0),
        (q("tcp", "NOERROR"), 0.0),
        (blocked("fraud", "fraud", "sinkhole"), 1.0),
        (blocked("phish", "phishing", "nxdomain"), 1.0),
        (blocked("refused", "fraud", "refused"), 1.0),
        (blocked("watch", "suspect", "log"), 1.0),
        (blocked("fraud", "fraud", "nxdomain"), 0.0),
        // Blocked queries never reach the cache; www.example.com misses then hits; the logged
        // name is resolved (a miss).
        ("fraudwall_cache_misses_total".into(), 2.0),
        ("fraudwall_cache_hits_total".into(), 1.0),
        (
            "fraudwall_answer_latency_seconds_count{protocol=\"udp\"}".into(),
            5.0,
        ),
        (
            "fraudwall_answer_latency_seconds_count{protocol=\"tcp\"}".into(),
            1.0,
        ),
        (
            "fraudwall_warning_page_views_total{kind=\"page\"}".into(),
            1.0,
        ),
        (
            "fraudwall_warning_page_views_total{kind=\"generic\"}".into(),
            1.0,
        ),
        (
            "fraudwall_warning_page_views_total{kind=\"plain\"}".into(),
            1.0,
        ),
        ("fraudwall_reports_total{outcome=\"accepted\"}".into(), 1.0),
        (
            "fraudwall_reports_total{outcome=\"rate_limited\"}".into(),
            0.0,
        ),
    ];
    // An answer that needed resolution is counted just after it is sent: poll until every
    // series has reached its count, then compare exactly (nothing may overshoot).
    let deadline = Instant::now() + Duration::from_secs(10);
    let deltas = loop {
        let now = samples(metrics);
        let deltas: Vec<(String, f64)> = expected
            .iter()
            .map(|(series, _)| {
                let d = now.get(series).copied().unwrap_or(0.0)
                    - start.get(series).copied().unwrap_or(0.0);
                (series.clone(), d)
            })
            .collect();
        let reached = deltas.iter().zip(&expected).all(|((_, d), (_, e))| d >= e);
        if reached || Instant::now() > deadline {
            break deltas;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let wrong: Vec<String> = deltas
        .iter()
        .zip(&expected)
        .filter(|((_, d), (_, e))| d != e)
        .map(|((series, d), (_, e))| format!("{series}: moved by {d}, expected {e}"))
        .collect();
    assert!(wrong.is_empty(), "wrong counts:\n{}", wrong.join("\n"));
}
