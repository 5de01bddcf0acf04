//! Blocking end to end: the real binary, the real `dig`/`kdig`, names that really resolve in the
//! loopback hierarchy (so a block visibly overrides a real answer), the event log, the metrics
//! endpoint and the warning page of the same process.

mod common;

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream, UdpSocket},
    sync::OnceLock,
    time::{Duration, Instant},
};

use common::{Fakenet, Fraudwall, Unbound, dig};

const SINK4: &str = "198.18.255.1";
const SINK6: &str = "2001:db8::53";

const FRAUD: &str = "# test list\nfraudwall-demo.test\nscam-shop.net\n";
const ALLOW: &str = "safe.fraudwall-demo.test\n";

fn config(net: &Fakenet, extra: &str) -> String {
    format!(
        "listen: [\"127.0.0.1:0\", \"[::1]:0\"]\n\
         resolver:\n  root_hints: {}\n  trust_anchor: {}\n  allow_private_servers: true\n\
         sinkhole:\n  ipv4: {SINK4}\n  ipv6: \"{SINK6}\"\n  ttl: 60\n\
         blocklists:\n  dir: lists\n  lists:\n\
         \x20   - file: phish.txt\n      action: nxdomain\n      category: phishing\n      ede: 16\n\
         \x20   - file: refused.txt\n      action: refused\n\
         \x20   - file: exact.txt\n      match: exact\n\
         \x20   - file: police.txt\n      name: police-feed-7\n      category: investment\n\
         {extra}",
        net.hints.display(),
        net.trust_anchor.display()
    )
}

const FILES: [(&str, &str); 6] = [
    ("lists/fraud.txt", FRAUD),
    ("lists/allowlist.txt", ALLOW),
    ("lists/phish.txt", "nx-phish.example.com\n"),
    ("lists/refused.txt", "refused.example.com\n"),
    ("lists/exact.txt", "exact.example.com\n"),
    ("lists/police.txt", "invest-scam.test\n"),
];

/// One instance shared by the tests that only query.
fn fw() -> &'static Fraudwall {
    static FW: OnceLock<Fraudwall> = OnceLock::new();
    FW.get_or_init(|| {
        Fraudwall::start(
            &config(
                Fakenet::shared(),
                "metrics:\n  listen: \"127.0.0.1:0\"\nwarning_page:\n  listen: [\"127.0.0.1:0\"]\n",
            ),
            &FILES,
        )
    })
}

/// An address the process logged as `<what> listening on http ADDR`.
fn logged_addr(fw: &Fraudwall, what: &str) -> SocketAddr {
    let needle = format!("{what} listening on http ");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(a) = fw
            .log()
            .lines()
            .find_map(|l| l.split(&needle).nth(1).map(|a| a.trim().to_owned()))
        {
            return a.parse().unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no '{needle}' in log:\n{}",
            fw.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn http_get(addr: SocketAddr, path: &str, headers: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nConnection: close\r\n{headers}\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

#[test]
fn blocked_name_gets_sinkhole_for_a_and_aaaa_nodata_for_the_rest() {
    let fw = fw();
    // Unblocked, the hierarchy answers 198.18.5.5 for this name: the block overrides it.
    let a = dig(fw.addr, &["www.fraudwall-demo.test", "A"]);
    assert_eq!(a.answer_rdata("A"), [SINK4]);
    assert!(a.ra());
    assert_eq!(a.answer[0].ttl, 60);
    let aaaa = dig(fw.addr, &["www.fraudwall-demo.test", "AAAA"]);
    assert_eq!(aaaa.answer_rdata("AAAA"), [SINK6]);
    for qtype in ["HTTPS", "SVCB", "MX", "TXT", "NS", "SRV"] {
        let r = dig(fw.addr, &["www.fraudwall-demo.test", qtype]);
        assert_eq!(r.status, "NOERROR", "{qtype}");
        assert!(r.answer.is_empty(), "{qtype}: {}", r.raw);
        assert_eq!(r.authority_types(), ["SOA"], "{qtype}");
        assert_eq!(
            r.authority[0].name, "fraudwall-demo.test.",
            "SOA at the listed entry"
        );
    }
    // The same over TCP and IPv6, and with kdig.
    let tcp = dig(fw.addr, &["www.fraudwall-demo.test", "A", "+tcp"]);
    assert_eq!(tcp.answer_rdata("A"), [SINK4]);
    let v6 = fw
        .udp
        .iter()
        .find(|a| a.is_ipv6())
        .expect("an IPv6 listener");
    assert_eq!(
        dig(*v6, &["www.fraudwall-demo.test", "A"]).answer_rdata("A"),
        [SINK4]
    );
    let k = std::process::Command::new("kdig")
        .args([
            &format!("@{}", fw.addr.ip()),
            "-p",
            &fw.addr.port().to_string(),
            "www.fraudwall-demo.test",
            "A",
            "+short",
        ])
        .output()
        .expect("kdig");
    assert_eq!(String::from_utf8_lossy(&k.stdout).trim(), SINK4);
}

#[test]
fn mixed_case_and_random_subdomains_are_blocked() {
    let fw = fw();
    let r = dig(fw.addr, &["WwW.FrAuDwAlL-DeMo.TeSt", "A"]);
    assert_eq!(r.answer_rdata("A"), [SINK4]);
    assert!(
        r.raw.contains("WwW.FrAuDwAlL-DeMo.TeSt."),
        "case kept:\n{}",
        r.raw
    );
    for sub in [
        "x7k2q.fraudwall-demo.test",
        "a.b.c.d.fraudwall-demo.test",
        "fraudwall-demo.test",
    ] {
        assert_eq!(
            dig(fw.addr, &[sub, "A"]).answer_rdata("A"),
            [SINK4],
            "{sub}"
        );
    }
    // Label boundaries: a name that merely ends with the same letters is not blocked.
    let r = dig(fw.addr, &["notfraudwall-demo.test", "A"]);
    assert_ne!(r.answer_rdata("A"), [SINK4]);
}

#[test]
fn allowlisted_name_under_a_blocked_parent_resolves() {
    let r = dig(fw().addr, &["safe.fraudwall-demo.test", "A", "+dnssec"]);
    assert_eq!(r.answer_rdata("A"), ["198.18.5.6"]);
    assert!(r.ad(), "resolved and validated normally");
}

#[test]
fn cname_into_a_blocked_name_is_blocked_also_from_cache() {
    let fw = fw();
    for _ in 0..2 {
        let r = dig(fw.addr, &["promo.example.com", "A"]);
        assert_eq!(r.answer_rdata("A"), [SINK4], "{}", r.raw);
        assert!(
            r.answer_rdata("CNAME").is_empty(),
            "the chain is not revealed"
        );
        let ede = &r.ede[0];
        assert_eq!(ede.code, 15);
        assert!(
            ede.text.as_deref().unwrap_or("").contains("fraud"),
            "{ede:?}"
        );
    }
}

/// The value of one series (name and labels, exactly as exported) in a scrape; 0 when absent.
fn metric(body: &str, series: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

fn scrape(metrics: SocketAddr) -> String {
    http_get(metrics, "/metrics", "Host: localhost\r\n")
}

/// README: a CNAME chain into a listed name is blocked "also when it is served from cache after
/// a list swap". Here the chain is resolved and cached while nothing lists its target; then a
/// list naming the target is dropped into the list directory, and the cached answer is blocked
/// the next time it is served, from the cache (a hit, no new miss), without revealing the chain.
#[test]
fn cname_cached_before_its_target_was_listed_is_blocked_after_the_swap() {
    let net = Fakenet::shared();
    let fw = Fraudwall::start(
        &config(net, "metrics:\n  listen: \"127.0.0.1:0\"\n"),
        &FILES,
    );
    let metrics = logged_addr(&fw, "metrics");
    let real = [
        "cdn.example.com. CNAME edge.cdnprov.net.",
        "edge.cdnprov.net. A 198.18.1.1",
    ];
    let r = dig(fw.addr, &["cdn.example.com", "A"]);
    assert_eq!(r.normalized_answer(), real, "{}", r.raw);
    let before = scrape(metrics);
    let r = dig(fw.addr, &["cdn.example.com", "A"]);
    assert_eq!(r.normalized_answer(), real, "{}", r.raw);
    let cached = scrape(metrics);
    let hits = |body: &str| metric(body, "fraudwall_cache_hits_total");
    let misses = |body: &str| metric(body, "fraudwall_cache_misses_total");
    assert_eq!(hits(&cached) - hits(&before), 1.0, "served from cache");

    // The new list goes in with one rename, as a deploy tool would put it.
    let staged = fw.dir.path().join("late.txt.new");
    std::fs::write(&staged, "edge.cdnprov.net\n").unwrap();
    std::fs::rename(&staged, fw.dir.path().join("lists/late.txt")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // The target itself, asked directly: blocked once the new lists are live.
        let r = dig(fw.addr, &["edge.cdnprov.net", "A"]);
        if r.answer_rdata("A") == [SINK4] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new list was not enforced within 30 s:\n{}\n{}",
            r.raw,
            fw.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let swapped = scrape(metrics);
    let r = dig(fw.addr, &["cdn.example.com", "A"]);
    assert_eq!(r.answer_rdata("A"), [SINK4], "{}", r.raw);
    assert!(
        r.answer_rdata("CNAME").is_empty(),
        "the chain is not revealed"
    );
    assert_eq!(r.ede_codes(), [15], "{}", r.raw);
    let text = r.ede[0].text.as_deref().unwrap_or("");
    assert!(
        text.contains("listed in late"),
        "the new list named: {text}"
    );
    let after = scrape(metrics);
    assert_eq!(
        hits(&after) - hits(&swapped),
        1.0,
        "answered from the cache"
    );
    assert_eq!(misses(&after), misses(&swapped), "not resolved again");
    // And the other types of the same chain, resolved after the swap, are blocked too.
    let r = dig(fw.addr, &["cdn.example.com", "AAAA"]);
    assert_eq!(r.answer_rdata("AAAA"), [SINK6], "{}", r.raw);
}

#[test]
fn ede_is_present_with_edns_and_absent_without() {
    let fw = fw();
    let r = dig(fw.addr, &["www.fraudwall-demo.test", "A", "+edns"]);
    assert_eq!(r.ede_codes(), [15]);
    assert!(
        r.ede[0]
            .text
            .as_deref()
            .unwrap()
            .contains("listed in fraud")
    );
    let r = dig(fw.addr, &["www.fraudwall-demo.test", "A", "+noedns"]);
    assert!(!r.has_opt && r.ede.is_empty());
    assert_eq!(r.answer_rdata("A"), [SINK4]);
}

#[test]
fn list_actions_and_match_modes() {
    let fw = fw();
    let r = dig(fw.addr, &["login.nx-phish.example.com", "A"]);
    assert_eq!(r.status, "NXDOMAIN");
    assert!(r.answer.is_empty());
    assert_eq!(r.authority_types(), ["SOA"]);
    assert_eq!(
        r.authority[0].name, "nx-phish.example.com.",
        "SOA at the entry"
    );
    assert_eq!(r.ede_codes(), [16], "the list's EDE code");
    assert_eq!(
        r.ede[0].text.as_deref(),
        Some("fraudwall: listed in phish (phishing)")
    );
    let r = dig(fw.addr, &["refused.example.com", "A"]);
    assert_eq!(r.status, "REFUSED");
    assert!(r.answer.is_empty() && r.authority.is_empty(), "{}", r.raw);
    assert_eq!(r.ede_codes(), [15]);
    assert_eq!(
        dig(fw.addr, &["exact.example.com", "A"]).answer_rdata("A"),
        [SINK4]
    );
    // Below an exact entry the hierarchy answers: example.com has no such name.
    let below = dig(fw.addr, &["sub.exact.example.com", "A"]);
    assert_eq!(below.status, "NXDOMAIN", "{}", below.raw);
    assert!(below.ede.is_empty(), "not blocked: {}", below.raw);
    assert_eq!(below.authority[0].name, "example.com.", "the real SOA");
}

/// The canary is answered by fraudwall itself: the upstream here is a socket that never answers,
/// so a NXDOMAIN can only come from the canary (the test hierarchy has no
/// `use-application-dns.net`, so recursion would say NXDOMAIN too), and it comes at once, not
/// after the upstream timeout. The answer is a local zone's: fraudwall's synthetic SOA owned by
/// the canary name, and no EDE (nothing is listed).
#[test]
fn doh_canary_is_nxdomain() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap(); // bound, never read: no answer
    let cfg = format!(
        "listen: [\"127.0.0.1:0\"]\n\
         resolver:\n  mode: forward\n  forwarders:\n    - address: \"{}\"\n  timeout_ms: 4000\n  server_timeout_ms: 4000\n  dnssec: off\n\
         sinkhole:\n  ttl: 60\n\
         blocklists:\n  dir: lists\n",
        silent.local_addr().unwrap()
    );
    let fw = Fraudwall::start(&cfg, &[("lists/fraud.txt", FRAUD)]);
    for (name, qtype) in [
        ("use-application-dns.net", "A"),
        ("USE-Application-DNS.Net", "AAAA"),
    ] {
        let started = Instant::now();
        let r = dig(fw.addr, &[name, qtype, "+time=10"]);
        let took = started.elapsed();
        assert_eq!(r.status, "NXDOMAIN", "{name} {qtype}: {}", r.raw);
        assert!(
            took < Duration::from_millis(2500),
            "answered locally, not after the 4 s upstream timeout: {took:?}"
        );
        assert!(r.ra() && r.answer.is_empty(), "{}", r.raw);
        assert!(r.raw.contains(&format!("{name}.")), "question case kept");
        assert_eq!(r.authority.len(), 1, "{}", r.raw);
        let soa = &r.authority[0];
        assert_eq!(
            (soa.name.as_str(), soa.rtype.as_str(), soa.ttl),
            ("use-application-dns.net.", "SOA", 60)
        );
        assert_eq!(
            soa.rdata,
            "fraudwall.invalid. hostmaster.fraudwall.invalid. 1 3600 600 86400 60"
        );
        assert!(r.has_opt && r.ede.is_empty(), "no list, no EDE: {}", r.raw);
    }
    // Everything else goes to the dead upstream: below the canary too (it is one name).
    for name in ["www.use-application-dns.net", "www.example.com"] {
        let r = dig(fw.addr, &[name, "A", "+time=15"]);
        assert_eq!(r.status, "SERVFAIL", "{name}: {}", r.raw);
    }
}

#[test]
fn clients_outside_access_allow_are_refused() {
    let net = Fakenet::shared();
    let fw = Fraudwall::start(&config(net, "access:\n  allow: [10.0.0.0/8]\n"), &FILES);
    let r = dig(fw.addr, &["www.example.com", "A"]);
    assert_eq!(r.status, "REFUSED");
    assert!(r.answer.is_empty());
    let r = dig(fw.addr, &["www.fraudwall-demo.test", "A"]);
    assert_eq!(r.status, "REFUSED", "not even blocked answers leak");
}

#[test]
fn random_bytes_leave_the_server_answering() {
    let fw = fw();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..3000 {
        let len = (next() % 600) as usize;
        let mut pkt: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if i % 3 == 0 && pkt.len() > 12 {
            pkt[2] &= 0x7f; // a query, so the parser goes deeper
            pkt[4..6].copy_from_slice(&[0, 1]);
        }
        let _ = sock.send_to(&pkt, fw.addr);
    }
    // Garbage over TCP too.
    if let Ok(mut t) = TcpStream::connect(fw.addr) {
        let junk: Vec<u8> = (0..2000).map(|_| next() as u8).collect();
        let _ = t.write_all(&junk);
    }
    let r = dig(fw.addr, &["www.fraudwall-demo.test", "A"]);
    assert_eq!(r.answer_rdata("A"), [SINK4]);
    // A malformed query (two questions) gets FORMERR, not silence.
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 2, 0, 0, 0, 0, 0, 0];
    for _ in 0..2 {
        q.extend_from_slice(b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
    }
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap(); // no answers to the noise queued here
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sock.send_to(&q, fw.addr).unwrap();
    let mut buf = [0u8; 512];
    let (n, _) = sock
        .recv_from(&mut buf)
        .expect("an answer to a malformed query");
    assert!(n >= 12);
    assert_eq!(&buf[..2], &[0x12, 0x34]);
    assert_eq!(buf[3] & 0x0f, 1, "FORMERR");
}

#[test]
fn each_block_is_one_event_line_in_every_privacy_mode() {
    let net = Fakenet::shared();
    for (mode, extra, check) in [
        ("full", "", "\"client\":\"127.0.0.1\""),
        ("truncate", "", "\"client\":\"127.0.0.0/24\""),
        (
            "hash",
            "  hash_key: 000102030405060708090a0b0c0d0e0f\n",
            "\"client\":\"",
        ),
    ] {
        let events = format!("events:\n  target: events.jsonl\n  client_privacy: {mode}\n{extra}");
        let fw = Fraudwall::start(&config(net, &events), &FILES);
        assert_eq!(
            dig(fw.addr, &["Login.FraudWall-Demo.test", "AAAA"]).answer_rdata("AAAA"),
            [SINK6]
        );
        dig(fw.addr, &["www.example.com", "A"]); // not blocked: no event
        let path = fw.dir.path().join("events.jsonl");
        let deadline = Instant::now() + Duration::from_secs(10);
        let text = loop {
            let t = std::fs::read_to_string(&path).unwrap_or_default();
            if t.lines().count() >= 1 || Instant::now() > deadline {
                break t;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{mode}: {text}");
        let l = lines[0];
        for field in [
            "\"qname\":\"login.fraudwall-demo.test\"",
            "\"qtype\":\"AAAA\"",
            "\"action\":\"sinkhole\"",
            "\"list\":\"fraud\"",
            "\"entry\":\"fraudwall-demo.test\"",
            "\"category\":\"fraud\"",
            "\"protocol\":\"udp\"",
            "\"time\":\"",
            check,
        ] {
            assert!(l.contains(field), "{mode}: {field} missing in {l}");
        }
        if mode == "hash" {
            assert!(
                !l.contains("127.0.0.1"),
                "hash mode must not show the address: {l}"
            );
        }
    }
}

/// The page of a blocked host names the host, its list and its category, under the "blocked"
/// heading; the generic page of a host that is not blocked (someone typed the sinkhole address)
/// has none of that. The list has a name and a category of its own so that the page cannot pass
/// on words every page has ("fraud" is in "Fraud protection").
#[test]
fn warning_page_names_the_site_and_the_list() {
    let fw = fw();
    let addr = logged_addr(fw, "warning page");
    let html = "Accept: text/html\r\n";
    let page = http_get(
        addr,
        "/login.php",
        &format!("Host: App.Invest-Scam.test:80\r\n{html}"),
    );
    assert!(page.starts_with("HTTP/1.1 403"), "{page}");
    assert!(page.to_lowercase().contains("cache-control: no-store"));
    let blocked_only = [
        "已拦截：疑似诈骗网站",
        "Blocked: suspected fraud site",
        "police-feed-7",
        "investment (list: police-feed-7)",
        "投资理财诈骗（名单：police-feed-7）",
        "action=\"/.fraudwall/report\"",
    ];
    assert!(page.contains("app.invest-scam.test"), "the host: {page}");
    for text in blocked_only {
        assert!(page.contains(text), "{text:?} missing:\n{page}");
    }
    // Another list, another name on the page.
    let fraud = http_get(
        addr,
        "/",
        &format!("Host: www.fraudwall-demo.test\r\n{html}"),
    );
    assert!(fraud.contains("fraud (list: fraud)"), "{fraud}");
    assert!(!fraud.contains("police-feed-7"));
    // Not blocked: the generic page, without the blocked heading, list or form.
    let generic = http_get(addr, "/", &format!("Host: www.example.com\r\n{html}"));
    assert!(generic.starts_with("HTTP/1.1 403"), "{generic}");
    assert!(generic.contains("www.example.com") && generic.contains("Fraud protection"));
    for text in blocked_only.iter().chain(&["已拦截", "list:", "<form"]) {
        assert!(
            !generic.contains(text),
            "{text:?} on the generic page:\n{generic}"
        );
    }
    let evil = http_get(
        addr,
        "/",
        &format!("Host: <script>alert(1)</script>\r\n{html}"),
    );
    assert!(!evil.contains("<script>alert(1)"), "Host must be escaped");
}

/// Forward mode against an upstream that then dies: the expired answer is served stale
/// (RFC 8767) with EDE 3, where hickory alone would answer SERVFAIL.
#[test]
fn forward_mode_and_serve_stale() {
    let net = Fakenet::shared();
    let ub = Unbound::start(net, None);
    let cfg = format!(
        "listen: [\"127.0.0.1:0\"]\n\
         resolver:\n  mode: forward\n  forwarders:\n    - address: \"{}\"\n  timeout_ms: 1500\n  server_timeout_ms: 500\n  dnssec: off\n\
         \x20 cache:\n    max_ttl: 1\n    stale_answer_ttl: 30\n\
         blocklists:\n  dir: lists\n",
        ub.addr()
    );
    let fw = Fraudwall::start(&cfg, &[("lists/fraud.txt", FRAUD)]);
    let r = dig(fw.addr, &["www.example.com", "A"]);
    assert_eq!(r.answer_rdata("A"), ["198.18.0.10"]);
    let blocked = dig(fw.addr, &["www.fraudwall-demo.test", "A"]);
    assert_eq!(blocked.answer_rdata("A"), ["127.0.0.1"], "default sinkhole");
    drop(ub); // the upstream is gone
    std::thread::sleep(Duration::from_millis(2200)); // past the 1 s TTL
    let r = dig(fw.addr, &["www.example.com", "A", "+time=8"]);
    assert_eq!(r.answer_rdata("A"), ["198.18.0.10"], "{}", r.raw);
    assert_eq!(r.answer[0].ttl, 30);
    assert_eq!(r.ede_codes(), [3], "EDE 3 Stale Answer");
}
