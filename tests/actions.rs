//! The list actions `nodata`, `drop` and `log`, and EDE 17 (Filtered), end to end: the real
//! binary and `dig`, on names that really resolve in the loopback hierarchy, so each action
//! visibly replaces (or, for `log`, keeps) the real answer. `sinkhole`, `nxdomain` (with EDE
//! 16) and `refused` are in `tests/blocking.rs`.

mod common;

use std::{
    sync::OnceLock,
    time::{Duration, Instant},
};

use common::{Fakenet, Fraudwall, dig};

fn fw() -> &'static Fraudwall {
    static FW: OnceLock<Fraudwall> = OnceLock::new();
    FW.get_or_init(|| {
        let net = Fakenet::shared();
        let cfg = format!(
            "listen: [\"127.0.0.1:0\"]\n\
             resolver:\n  root_hints: {}\n  trust_anchor: {}\n  allow_private_servers: true\n\
             sinkhole:\n  ttl: 60\n\
             blocklists:\n  dir: lists\n  lists:\n\
             \x20   - file: filter.txt\n      name: family-filter\n      category: adult\n      action: nodata\n      ede: 17\n\
             \x20   - file: drop.txt\n      action: drop\n\
             \x20   - file: watch.txt\n      name: watch\n      category: suspect\n      action: log\n",
            net.hints.display(),
            net.trust_anchor.display()
        );
        Fraudwall::start(
            &cfg,
            &[
                // Real answers: www.example.net A 198.18.1.3, mail.example.com A 198.18.0.25,
                // www.insecure.org A 198.18.4.1.
                ("lists/filter.txt", "www.example.net\n"),
                ("lists/drop.txt", "mail.example.com\n"),
                ("lists/watch.txt", "insecure.org\n"),
            ],
        )
    })
}

/// `nodata`: NOERROR, no answer, the synthetic SOA at the listed entry, whatever the type; the
/// list's EDE 17 (Filtered) names the list and its category.
#[test]
fn nodata_action_answers_noerror_without_data_with_a_soa_and_ede_17() {
    let fw = fw();
    for (name, qtype) in [
        ("www.example.net", "A"),
        ("www.example.net", "AAAA"),
        ("WWW.Example.NET", "TXT"),
        ("deeper.www.example.net", "A"),
    ] {
        let r = dig(fw.addr, &[name, qtype]);
        assert_eq!(r.status, "NOERROR", "{name} {qtype}: {}", r.raw);
        assert!(r.answer.is_empty(), "{name} {qtype}: {}", r.raw);
        assert_eq!(r.authority.len(), 1, "{}", r.raw);
        let soa = &r.authority[0];
        assert_eq!(
            (soa.name.as_str(), soa.rtype.as_str(), soa.ttl),
            ("www.example.net.", "SOA", 60),
            "{name} {qtype}"
        );
        assert!(
            soa.rdata.starts_with("fraudwall.invalid. "),
            "{}",
            soa.rdata
        );
        assert_eq!(r.ede_codes(), [17], "{}", r.raw);
        assert_eq!(r.ede[0].purpose, "Filtered");
        assert_eq!(
            r.ede[0].text.as_deref(),
            Some("fraudwall: listed in family-filter (adult)")
        );
    }
    // The sibling that is not listed resolves.
    let r = dig(fw.addr, &["www.new.example.net", "A"]);
    assert_eq!(r.answer_rdata("A"), ["198.18.1.2"], "{}", r.raw);
}

/// `drop`: no answer at all, over UDP and TCP, and the server keeps answering everyone else.
/// The drop is still recorded.
#[test]
fn drop_action_sends_nothing() {
    let fw = fw();
    let started = Instant::now();
    let r = dig(fw.addr, &["mail.example.com", "A", "+time=2"]);
    assert_eq!(r.status, "NO-RESPONSE", "{}", r.raw);
    assert_eq!(r.exit_code, 9, "dig: no reply from the server: {}", r.raw);
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "dig gave up at its timeout, not at an error"
    );
    let r = dig(fw.addr, &["mail.example.com", "A", "+tcp", "+time=2"]);
    assert_eq!(r.status, "NO-RESPONSE", "{}", r.raw);
    assert!(r.answer.is_empty());
    // Alive: the next name in the same zone resolves.
    let r = dig(fw.addr, &["www.example.com", "A"]);
    assert_eq!(r.answer_rdata("A"), ["198.18.0.10"], "{}", r.raw);
    let events = fw.events_for("mail.example.com", 2);
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["action"], "drop");
    assert_eq!(events[0]["list"], "drop");
    assert_eq!(events[0]["protocol"], "udp");
    assert_eq!(events[1]["protocol"], "tcp");
}

/// `log`: the normal resolved answer, no EDE, and an event line recording the hit.
#[test]
fn log_action_answers_normally_and_records_the_hit() {
    let fw = fw();
    let r = dig(fw.addr, &["www.insecure.org", "A"]);
    assert_eq!(r.status, "NOERROR");
    assert_eq!(
        r.normalized_answer(),
        ["www.insecure.org. A 198.18.4.1"],
        "{}",
        r.raw
    );
    assert!(r.ede.is_empty(), "not blocked: {}", r.raw);
    assert!(r.authority.is_empty());
    // Every query of a logged name is recorded, each type too.
    let r = dig(fw.addr, &["www.insecure.org", "AAAA"]);
    assert_eq!(r.answer_rdata("AAAA"), ["2001:db8:4::1"], "{}", r.raw);
    let events = fw.events_for("www.insecure.org", 2);
    assert_eq!(events.len(), 2, "one event per query: {events:?}");
    let e = &events[0];
    assert_eq!(e["action"], "log");
    assert_eq!(e["list"], "watch");
    assert_eq!(e["category"], "suspect");
    assert_eq!(e["entry"], "insecure.org");
    assert_eq!(e["qtype"], "A");
    assert_eq!(events[1]["qtype"], "AAAA");
}
