//! RPZ feeds by zone transfer, against Knot DNS as the primary (tests/common/knot.rs): the
//! first AXFR of a large zone, an IXFR of 1 k changes, NOTIFY, a primary that dies mid-transfer,
//! a wrong TSIG key, a serial that goes backwards, the zone persisted across a restart, and the
//! same answers as Unbound's `rpz:` fed from the same primary.
//!
//! Names outside the feed are forwarded to Knot, whose `*.test.` wildcard answers
//! `A 198.18.0.9`: "not blocked" is that answer, "blocked" is the zone's policy (`CNAME .`:
//! NXDOMAIN). `FRAUDWALL_FEED_RECORDS` sets the size of the large zone (default 100 000; the
//! issue's figure is 1 M, which a debug build takes longer to transfer and compile than the
//! harness waits for a start: run it against a release build,
//! `FRAUDWALL_FEED_RECORDS=1000000 FRAUDWALL_TEST_BIN=target/release/fraudwall`).

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::knot::{
    self, CuttingProxy, Knot, PASS_ADDR, RpzUnbound, SECRET, WRONG_SECRET, ZONE, nxdomain_records,
    rpz_zone,
};
use common::{Fraudwall, dig, skip};

fn ready(test: &str) -> bool {
    if !knot::available() {
        skip(test, "knotd/knotc not installed (apt-get install knot)");
        return false;
    }
    true
}

struct Opts<'a> {
    primary: SocketAddr,
    forwarder: SocketAddr,
    secret: &'a str,
    /// `listen` port (0: any).
    port: u16,
    /// `blocklists.state_dir` (None: the default in the temp dir).
    state_dir: Option<&'a std::path::Path>,
}

fn config(o: &Opts<'_>) -> String {
    let state = o
        .state_dir
        .map(|p| format!("  state_dir: \"{}\"\n", p.display()))
        .unwrap_or_default();
    format!(
        "listen: [\"127.0.0.1:{port}\"]\n\
         resolver:\n  mode: forward\n  timeout_ms: 3000\n  forwarders:\n    - address: \"{fwd}\"\n\
         blocklists:\n  dir: lists\n  allow_empty: true\n{state}\
         \x20 feeds:\n    - name: afc\n      zone: {ZONE}\n      primaries: [\"{primary}\"]\n\
         \x20     tsig:\n        name: fraudwall-key\n        algorithm: hmac-sha256\n        secret: \"{secret}\"\n\
         \x20     refresh_min: 1s\n\
         metrics:\n  listen: \"127.0.0.1:0\"\n",
        port = o.port,
        fwd = o.forwarder,
        primary = o.primary,
        secret = o.secret,
    )
}

fn start(o: &Opts<'_>) -> Fraudwall {
    Fraudwall::start(&config(o), &[("lists/.keep", "")])
}

fn opts(knot: &Knot) -> Opts<'static> {
    Opts {
        primary: knot.addr(),
        forwarder: knot.addr(),
        secret: SECRET,
        port: 0,
        state_dir: None,
    }
}

fn blocked(fw: &Fraudwall, name: &str) -> bool {
    let r = dig(fw.addr, &[name, "A"]);
    match r.status.as_str() {
        "NXDOMAIN" => true,
        "NOERROR" if r.answer_rdata("A") == [PASS_ADDR] => false,
        _ => panic!("{name}: unexpected answer\n{}\n{}", r.raw, fw.log()),
    }
}

/// Waits until `cond` holds (polling), or panics with `what` and the log.
fn wait_for(fw: &Fraudwall, what: &str, secs: u64, cond: impl FnMut() -> bool) {
    fw.wait_for(what, Duration::from_secs(secs), cond);
}

fn metric(fw: &Fraudwall, series: &str) -> f64 {
    fw.metric(series)
}

const AXFR_OK: &str = r#"fraudwall_feed_transfers_total{feed="afc",kind="axfr",result="ok"}"#;
const IXFR_OK: &str = r#"fraudwall_feed_transfers_total{feed="afc",kind="ixfr",result="ok"}"#;
const IXFR_FAILED: &str =
    r#"fraudwall_feed_transfers_total{feed="afc",kind="ixfr",result="failed"}"#;
const SERIAL: &str = r#"fraudwall_feed_serial{feed="afc"}"#;
const RECORDS: &str = r#"fraudwall_feed_records{feed="afc"}"#;

#[test]
fn the_first_axfr_of_a_large_zone_is_enforced() {
    if !ready("the_first_axfr_of_a_large_zone_is_enforced") {
        return;
    }
    let n: usize = std::env::var("FRAUDWALL_FEED_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let knot = Knot::start(&rpz_zone(7, 3600, nxdomain_records("n", 0, n)), None);
    let fw = start(&opts(&knot));
    // The first start waits for the transfer, so the zone is enforced as soon as it answers.
    for i in [0, n / 2, n - 1] {
        assert!(
            blocked(&fw, &format!("n{i}.bad.test")),
            "n{i}\n{}",
            fw.log()
        );
        assert!(blocked(&fw, &format!("N{i}.Bad.Test")), "N{i}, mixed case");
    }
    assert!(!blocked(&fw, &format!("n{n}.bad.test")));
    assert!(!blocked(&fw, "www.good.test"));
    assert!(
        !blocked(&fw, "sub.n1.bad.test"),
        "RPZ `name CNAME .` is exact"
    );
    assert_eq!(metric(&fw, SERIAL), 7.0);
    assert_eq!(metric(&fw, RECORDS), n as f64);
    assert_eq!(metric(&fw, AXFR_OK), 1.0);
    assert!(
        metric(
            &fw,
            r#"fraudwall_feed_last_success_timestamp_seconds{feed="afc"}"#
        ) > 0.0
    );
    // `fraudwall check` names the feed and the serial that blocked a name.
    let out = std::process::Command::new(common::fraudwall::bin())
        .args(["check", "--config"])
        .arg(fw.dir.path().join("fraudwall.yaml"))
        .arg("n1.bad.test")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("\"feed:afc\"") && text.contains(&format!("zone {ZONE}. serial 7")),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_ixfr_of_1k_changes_is_enforced() {
    if !ready("an_ixfr_of_1k_changes_is_enforced") {
        return;
    }
    let knot = Knot::start(&rpz_zone(1, 1, nxdomain_records("n", 0, 5000)), None);
    let fw = start(&opts(&knot));
    assert!(blocked(&fw, "n10.bad.test"));
    // 500 names removed, 500 added.
    let mut next = nxdomain_records("n", 500, 4500);
    next.extend(nxdomain_records("new", 0, 500));
    knot.write_zone(&rpz_zone(2, 1, next));
    knot.reload(2);
    let merges = |fw: &Fraudwall| fw.log().matches("lists reloaded").count();
    let merged = merges(&fw);
    wait_for(&fw, "the IXFR to be enforced", 30, || {
        blocked(&fw, "new499.bad.test")
    });
    // Served as a patch first (the zone is not compiled whole for it), then merged: the same
    // answers both times.
    for _ in 0..2 {
        assert!(blocked(&fw, "new0.bad.test"));
        assert!(!blocked(&fw, "n10.bad.test"), "removed by the IXFR");
        assert!(!blocked(&fw, "n499.bad.test"), "removed by the IXFR");
        assert!(blocked(&fw, "n500.bad.test"));
        assert!(blocked(&fw, "n4999.bad.test"));
        wait_for(&fw, "the merge", 30, || merges(&fw) > merged);
    }
    assert!(
        fw.log().contains(
            "serial 1 → 2 served as 1 patch of what the IXFR changed: −500 +500 entries, 5000 in all"
        ),
        "{}",
        fw.log()
    );
    assert_eq!(metric(&fw, SERIAL), 2.0);
    assert_eq!(metric(&fw, RECORDS), 5000.0);
    assert_eq!(
        metric(&fw, AXFR_OK),
        1.0,
        "only the first transfer is whole"
    );
    assert!(fw.log().contains("IXFR 1 steps, +500 −500"), "{}", fw.log());
}

#[test]
fn a_notify_from_the_primary_checks_at_once() {
    if !ready("a_notify_from_the_primary_checks_at_once") {
        return;
    }
    let port = common::unbound::free_port();
    let fw_addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // SOA refresh and retry of an hour: only a NOTIFY can bring the change in time.
    let knot = Knot::start(
        &rpz_zone(1, 3600, nxdomain_records("n", 0, 10)),
        Some(fw_addr),
    );
    let fw = start(&Opts {
        port,
        ..opts(&knot)
    });
    assert!(!blocked(&fw, "late.bad.test"));
    let mut next = nxdomain_records("n", 0, 10);
    next.push("late.bad.test CNAME .".into());
    knot.write_zone(&rpz_zone(2, 3600, next));
    knot.reload(2);
    wait_for(&fw, "the NOTIFY'd change", 20, || {
        blocked(&fw, "late.bad.test")
    });
    assert!(fw.log().contains("NOTIFY from 127.0.0.1"), "{}", fw.log());
    assert!(
        metric(
            &fw,
            r#"fraudwall_feed_notifies_total{feed="afc",result="accepted"}"#
        ) >= 1.0
    );

    // Over TCP from the primary's address: answered NOERROR, AA, opcode NOTIFY.
    let r = dig(fw.addr, &["+tcp", "+opcode=notify", "+norec", ZONE, "SOA"]);
    assert_eq!(r.status, "NOERROR", "{}", r.raw);
    assert!(r.aa() && r.raw.contains("opcode: NOTIFY"), "{}", r.raw);
    // From anyone else (127.0.0.2), or for another zone: REFUSED, and counted.
    let r = dig(
        fw.addr,
        &["-b", "127.0.0.2", "+opcode=notify", "+norec", ZONE, "SOA"],
    );
    assert_eq!(r.status, "REFUSED", "{}", r.raw);
    let r = dig(fw.addr, &["+opcode=notify", "+norec", "other.test", "SOA"]);
    assert_eq!(r.status, "REFUSED", "{}", r.raw);
    assert_eq!(
        metric(
            &fw,
            r#"fraudwall_feed_notifies_total{feed="afc",result="refused"}"#
        ),
        1.0
    );
}

#[test]
fn a_primary_that_dies_mid_transfer_changes_nothing() {
    if !ready("a_primary_that_dies_mid_transfer_changes_nothing") {
        return;
    }
    let knot = Knot::start(&rpz_zone(1, 1, nxdomain_records("n", 0, 2000)), None);
    let proxy = CuttingProxy::start(knot.addr());
    let fw = start(&Opts {
        primary: proxy.addr,
        ..opts(&knot)
    });
    assert!(blocked(&fw, "n1.bad.test"));
    // The next answers break off after 20 kB: the IXFR of 2000 changes is larger.
    proxy.cut_after(20_000);
    let mut next = nxdomain_records("m", 0, 2000);
    next.extend(nxdomain_records("n", 0, 1000));
    knot.write_zone(&rpz_zone(2, 1, next));
    knot.reload(2);
    wait_for(&fw, "a failed transfer", 30, || {
        metric(&fw, IXFR_FAILED) >= 1.0
    });
    assert!(fw.log().contains("truncated"), "{}", fw.log());
    assert!(blocked(&fw, "n1.bad.test"), "the old zone keeps serving");
    assert!(blocked(&fw, "n1999.bad.test"), "the old zone keeps serving");
    assert!(
        !blocked(&fw, "m5.bad.test"),
        "nothing of the broken transfer"
    );
    assert_eq!(metric(&fw, SERIAL), 1.0);
    // The primary comes back: the next check brings the zone.
    proxy.cut_after(usize::MAX);
    wait_for(&fw, "the transfer after recovery", 30, || {
        blocked(&fw, "m5.bad.test")
    });
    assert!(!blocked(&fw, "n1999.bad.test"));
}

#[test]
fn a_wrong_tsig_key_is_refused_and_the_persisted_zone_serves() {
    if !ready("a_wrong_tsig_key_is_refused_and_the_persisted_zone_serves") {
        return;
    }
    let state = tempfile::tempdir().unwrap();
    let knot = Knot::start(&rpz_zone(1, 1, nxdomain_records("n", 0, 100)), None);
    let good = Opts {
        state_dir: Some(state.path()),
        ..opts(&knot)
    };
    let fw = start(&good);
    assert!(blocked(&fw, "n1.bad.test"));
    drop(fw);
    let mut next = nxdomain_records("n", 0, 100);
    next.push("fresh.bad.test CNAME .".into());
    knot.write_zone(&rpz_zone(2, 1, next));
    knot.reload(2);
    // Restarted with the wrong secret: the zone on disk serves at once, the transfer is
    // refused.
    let fw = start(&Opts {
        secret: WRONG_SECRET,
        ..good
    });
    assert!(blocked(&fw, "n1.bad.test"), "the persisted zone serves");
    wait_for(&fw, "a refused transfer", 30, || {
        metric(&fw, IXFR_FAILED) >= 2.0
    });
    assert!(fw.log().contains("TSIG"), "{}", fw.log());
    assert!(!blocked(&fw, "fresh.bad.test"));
    assert!(blocked(&fw, "n99.bad.test"));
    assert_eq!(metric(&fw, SERIAL), 1.0);
    let failures = fw
        .log()
        .lines()
        .filter(|l| l.contains("feed afc:") && l.contains("keeps serving"))
        .count();
    assert_eq!(failures, 1, "logged once: {}", fw.log());
    drop(fw);
    // With the right key again: brought up to date by IXFR from the persisted serial.
    let fw = start(&good);
    wait_for(&fw, "the IXFR after restart", 30, || {
        blocked(&fw, "fresh.bad.test")
    });
    assert_eq!(
        metric(&fw, AXFR_OK),
        0.0,
        "no whole transfer after a restart"
    );
    assert!(metric(&fw, IXFR_OK) >= 1.0);
}

#[test]
fn a_serial_that_goes_backwards_is_refused() {
    if !ready("a_serial_that_goes_backwards_is_refused") {
        return;
    }
    let mut knot = Knot::start(&rpz_zone(10, 1, nxdomain_records("n", 0, 100)), None);
    let fw = start(&opts(&knot));
    assert!(blocked(&fw, "n1.bad.test"));
    let mut older = nxdomain_records("n", 0, 100);
    older.push("older.bad.test CNAME .".into());
    knot.write_zone(&rpz_zone(5, 1, older));
    knot.restart_fresh();
    assert_eq!(knot.serial(ZONE), Some(5));
    wait_for(&fw, "the backwards serial to be refused", 30, || {
        fw.log().contains("serial went backwards")
    });
    assert!(!blocked(&fw, "older.bad.test"));
    assert!(blocked(&fw, "n1.bad.test"));
    assert_eq!(metric(&fw, SERIAL), 10.0);
}

#[test]
fn the_same_answers_as_unbound_rpz_from_the_same_primary() {
    if !ready("the_same_answers_as_unbound_rpz_from_the_same_primary") {
        return;
    }
    let mut records = nxdomain_records("n", 0, 200);
    records.extend([
        "*.wild.bad.test CNAME .".to_string(),
        "ok.wild.bad.test CNAME rpz-passthru.".to_string(),
        "empty.bad.test CNAME *.".to_string(),
    ]);
    let knot = Knot::start(&rpz_zone(3, 3600, records), None);
    let fw = start(&opts(&knot));
    let ub = RpzUnbound::start(&knot);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = dig(ub.addr, &["n0.bad.test", "A"]);
        if r.status == "NXDOMAIN" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "unbound did not load the zone:\n{}\n{}\n{}",
            r.raw,
            ub.log(),
            knot.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let names = [
        "n0.bad.test",
        "n199.bad.test",
        "n200.bad.test",
        "x.n5.bad.test",
        "bad.test",
        "a.wild.bad.test",
        "a.b.wild.bad.test",
        // Not compared: `wild.bad.test` itself, which Unbound passes (an RPZ `*.name` trigger
        // does not cover `name`) and fraudwall blocks (its lists read `*.name` as the name and
        // everything below): a difference of the RPZ list format, not of the transfer.
        "ok.wild.bad.test",
        "empty.bad.test",
        "www.good.test",
    ];
    let mut blocked_count = 0;
    for name in names {
        let a = dig(fw.addr, &[name, "A"]);
        let b = dig(ub.addr, &[name, "A"]);
        assert_eq!(
            (a.status.as_str(), a.answer_rdata("A")),
            (b.status.as_str(), b.answer_rdata("A")),
            "{name}:\nfraudwall: {}\nunbound: {}",
            a.raw,
            b.raw
        );
        if a.status == "NXDOMAIN" || a.answer_rdata("A").is_empty() {
            blocked_count += 1;
        }
    }
    assert_eq!(
        blocked_count, 5,
        "the sample holds blocked and passed names"
    );
}

#[test]
fn bad_feed_config_names_the_key_and_line() {
    let cfg = "blocklists:\n  feeds:\n    - name: afc\n      zone: rpz.example\n      primaries: [\"nowhere\"]\n\
               \x20     tsig:\n        name: k\n        algorithm: hmac-md5\n        secret: c2VjcmV0\n";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, cfg).unwrap();
    let out = std::process::Command::new(common::fraudwall::bin())
        .args(["config", "check"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("line 5: blocklists.feeds[0].primaries"),
        "{text}"
    );
    assert!(
        text.contains("line 8: blocklists.feeds[0].tsig.algorithm"),
        "{text}"
    );
}
