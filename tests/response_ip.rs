//! Response-IP triggers end to end: lists that name IP prefixes (RPZ `rpz-ip` triggers, address
//! lines of plain lists marked `ips`) block answers whose A/AAAA addresses fall inside them. The
//! real binary resolves the loopback hierarchy (`tests/fakenet`), whose answers use
//! 198.18.0.0/15 and 2001:db8::/32; `dig` asks; the event log, `fraudwall compile` and
//! `fraudwall check` are read as an operator would; Unbound's `rpz:` serves the same zone file for
//! comparison.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::fraudwall::bin;
use common::{Fakenet, Fraudwall, Unbound, dig};

const SINK4: &str = "198.18.255.1";

/// The policy zone: scam-shop.net's hosting (198.18.6.0/24), edge.cdnprov.net's address
/// (198.18.1.1) and fraudwall-demo.test's (198.18.5.0/24, 2001:db8:5::/48), where one address
/// (safe.fraudwall-demo.test, 198.18.5.6) is let through.
const ZONE: &str = "$TTL 300\n\
$ORIGIN rpz.test.\n\
@ SOA localhost. root.localhost. 1 3600 600 86400 300\n\
@ NS localhost.\n\
24.0.6.18.198.rpz-ip CNAME .\n\
32.1.1.18.198.rpz-ip CNAME *.\n\
24.0.5.18.198.rpz-ip CNAME .\n\
48.zz.5.db8.2001.rpz-ip CNAME .\n\
32.6.5.18.198.rpz-ip CNAME rpz-passthru.\n";

fn config(net: &Fakenet, lists: &str) -> String {
    format!(
        "listen: [\"127.0.0.1:0\"]\n\
         resolver:\n  root_hints: {}\n  trust_anchor: {}\n  allow_private_servers: true\n\
         sinkhole:\n  ipv4: {SINK4}\n  ipv6: \"2001:db8::53\"\n  ttl: 60\n\
         metrics:\n  listen: \"127.0.0.1:0\"\n\
         blocklists:\n  dir: lists\n  debounce_ms: 50\n  poll_interval_ms: 200\n{lists}",
        net.hints.display(),
        net.trust_anchor.display()
    )
}

/// An `rpz-ip` trigger blocks a name whose A or AAAA lands in its prefix, with the trigger's
/// action (NXDOMAIN for `CNAME .`, NODATA for `CNAME *.`), EDE 15 naming the list, also through
/// a CNAME chain into the prefix, and again when the answer comes from the cache; a passthru
/// trigger for a longer prefix lets its address through; names outside every prefix resolve.
/// The event names the address that matched and the listed prefix.
#[test]
fn rpz_ip_triggers_block_answers_in_their_prefixes() {
    let net = Fakenet::shared();
    let fw = Fraudwall::start(&config(net, ""), &[("lists/feed.rpz", ZONE)]);
    for round in ["resolved", "cached"] {
        for (name, qtype) in [
            ("www.scam-shop.net", "A"),
            ("promo.example.com", "A"),
            ("www.fraudwall-demo.test", "A"),
            ("www.fraudwall-demo.test", "AAAA"),
        ] {
            let r = dig(fw.addr, &[name, qtype]);
            assert_eq!(r.rcode(), "NXDOMAIN", "{round} {name} {qtype}:\n{}", r.raw);
            assert!(
                r.answer.is_empty(),
                "{round} {name}: nothing revealed:\n{}",
                r.raw
            );
            assert_eq!(r.ede_codes(), [15], "{round} {name}:\n{}", r.raw);
            let text = r.ede[0].text.as_deref().unwrap_or("");
            assert!(text.contains("listed in feed"), "{text}");
        }
        let r = dig(fw.addr, &["cdn.example.com", "A"]);
        assert_eq!(r.rcode(), "NOERROR", "{round}:\n{}", r.raw);
        assert!(r.answer.is_empty(), "{round}: NODATA:\n{}", r.raw);
        assert_eq!(r.ede_codes(), [15], "{round}:\n{}", r.raw);
        let r = dig(fw.addr, &["safe.fraudwall-demo.test", "A"]);
        assert_eq!(
            r.normalized_answer(),
            ["safe.fraudwall-demo.test. A 198.18.5.6"],
            "{round}: passthru:\n{}",
            r.raw
        );
        let r = dig(fw.addr, &["www.example.com", "AAAA"]);
        assert_eq!(
            r.normalized_answer(),
            ["www.example.com. AAAA 2001:db8::10"],
            "{round}:\n{}",
            r.raw
        );
    }
    let ev = fw.events_for("www.scam-shop.net", 2);
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert_eq!(ev[0]["ip"], "198.18.6.6", "{ev:?}");
    assert_eq!(ev[0]["entry"], "198.18.6.0/24", "{ev:?}");
    assert_eq!(ev[0]["action"], "nxdomain", "{ev:?}");
    assert_eq!(ev[0]["list"], "feed", "{ev:?}");
    let ev = fw.events_for("www.fraudwall-demo.test", 4);
    let aaaa = ev
        .iter()
        .find(|e| e["qtype"] == "AAAA")
        .expect("an AAAA event");
    assert_eq!(aaaa["ip"], "2001:db8:5::5", "{ev:?}");
    assert_eq!(aaaa["entry"], "2001:db8:5::/48", "{ev:?}");
    let ev = fw.events_for("safe.fraudwall-demo.test", 0);
    assert!(ev.is_empty(), "passthru is no block: {ev:?}");
    assert_eq!(
        fw.metric("fraudwall_blocked_total{list=\"feed\",category=\"fraud\",action=\"nxdomain\"}"),
        8.0
    );
}

/// A list that changes after an answer was cached takes effect on that cached answer: the
/// address of login.scam-shop.net is listed (a plain list with `ips: true`) after the answer
/// was resolved and served from the cache, and the next cache hit is the sinkhole.
#[test]
fn a_cached_answer_is_blocked_once_its_address_is_listed() {
    let net = Fakenet::shared();
    let lists = "  lists:\n    - file: hosting.txt\n      ips: true\n";
    let fw = Fraudwall::start(
        &config(net, lists),
        &[("lists/hosting.txt", "198.18.99.0/24\n")],
    );
    let real = ["login.scam-shop.net. A 198.18.6.7"];
    for _ in 0..2 {
        let r = dig(fw.addr, &["login.scam-shop.net", "A"]);
        assert_eq!(r.normalized_answer(), real, "{}", r.raw);
    }
    let hits = fw.metric("fraudwall_cache_hits_total");
    assert!(hits >= 1.0, "the second answer came from the cache");
    let misses = fw.metric("fraudwall_cache_misses_total");

    let staged = fw.dir.path().join("hosting.txt.new");
    std::fs::write(&staged, "198.18.99.0/24\n198.18.6.7\n").unwrap();
    std::fs::rename(&staged, fw.dir.path().join("lists/hosting.txt")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let r = loop {
        let r = dig(fw.addr, &["login.scam-shop.net", "A"]);
        if r.answer_rdata("A") == [SINK4] {
            break r;
        }
        assert_eq!(r.normalized_answer(), real, "{}", r.raw);
        assert!(
            Instant::now() < deadline,
            "the new list was not enforced within 30 s:\n{}",
            fw.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(r.ede_codes(), [15], "{}", r.raw);
    assert_eq!(
        fw.metric("fraudwall_cache_misses_total"),
        misses,
        "every answer since came from the cache, the blocked one too"
    );
    let ev = fw.events_for("login.scam-shop.net", 1);
    assert_eq!(ev[0]["ip"], "198.18.6.7", "{ev:?}");
    assert_eq!(ev[0]["entry"], "198.18.6.7/32", "{ev:?}");
}

/// An allow list's prefix beats a block list's shorter one (and a block list's name entry does
/// not matter to it): the longest prefix decides, allow beats block at the same one.
#[test]
fn an_allowed_prefix_wins_over_a_blocked_shorter_one() {
    let net = Fakenet::shared();
    let lists = "  lists:\n    - file: hosting.txt\n      ips: true\n      action: nxdomain\n\
                 \x20   - file: allowlist.txt\n      kind: allow\n      ips: true\n";
    let fw = Fraudwall::start(
        &config(net, lists),
        &[
            ("lists/hosting.txt", "198.18.5.0/24\n2001:db8:5::/48\n"),
            ("lists/allowlist.txt", "198.18.5.6\n"),
        ],
    );
    let r = dig(fw.addr, &["login.fraudwall-demo.test", "A"]);
    assert_eq!(r.rcode(), "NXDOMAIN", "{}", r.raw);
    let r = dig(fw.addr, &["safe.fraudwall-demo.test", "A"]);
    assert_eq!(
        r.normalized_answer(),
        ["safe.fraudwall-demo.test. A 198.18.5.6"],
        "{}",
        r.raw
    );
}

fn run(args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new(bin())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run fraudwall");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A plain list's address lines: without the switch each is a `file:line` error naming the
/// switch (and the names still load); with the `# fraudwall: ips` header they load, a bad prefix
/// (/33, host bits set) is a `file:line` error and the rest still loads; `fraudwall check` names
/// the list, the prefix and its line for an address, and says when nothing covers one.
#[test]
fn plain_list_address_lines_compile_only_with_the_switch_and_check_names_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("off.txt"), "evil.test\n207.148.115.161\n").unwrap();
    let (ok, text) = run(&["compile", "--out", "off.fst", "off.txt"], d);
    assert!(ok, "{text}");
    assert!(
        text.contains("off.txt:2: \"207.148.115.161\" is an IP address, not a domain name; to block answers by address, set `ips: true`"),
        "{text}"
    );
    let (_, text) = run(&["check", "--fst", "off.fst", "207.148.115.161"], d);
    assert!(text.contains("207.148.115.161: not listed"), "{text}");

    std::fs::write(
        d.join("on.txt"),
        "# fraudwall: ips\nevil.test\n207.148.115.0/24\n198.18.0.1/33\n198.18.6.7/24\n2001:db8:5::/48\n",
    )
    .unwrap();
    let (ok, text) = run(&["compile", "--out", "on.fst", "on.txt"], d);
    assert!(ok, "{text}");
    assert!(text.contains("3 entries"), "{text}");
    assert!(text.contains("on.txt:4: prefix length /33"), "{text}");
    assert!(
        text.contains(
            "on.txt:5: \"198.18.6.7/24\" has host bits set: the network is 198.18.6.0/24"
        ),
        "{text}"
    );
    let (ok, text) = run(
        &[
            "check",
            "--fst",
            "on.fst",
            "207.148.115.161",
            "2001:db8:5:1::9",
            "198.18.6.7",
            "evil.test",
        ],
        d,
    );
    assert!(ok, "{text}");
    let on = "on.txt";
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            format!(
                "207.148.115.161: BLOCKED by 207.148.115.0/24 (prefix) in list \"on\" [block list, category fraud, action sinkhole, ede 15] at {on}:3"
            ),
            format!(
                "2001:db8:5:1::9: BLOCKED by 2001:db8:5::/48 (prefix) in list \"on\" [block list, category fraud, action sinkhole, ede 15] at {on}:6"
            ),
            "198.18.6.7: not listed (no listed prefix covers it)".to_string(),
            format!(
                "evil.test: BLOCKED by evil.test (subtree) in list \"on\" [block list, category fraud, action sinkhole, ede 15] at {on}:2"
            ),
        ]
    );
}

/// The same policy zone given to Unbound's `rpz:` (with the `respip` module, which its
/// response-IP triggers need): the answers agree name by name, in RCODE and in data (but for
/// the CNAMEs Unbound leaves in front of a blocked answer, which fraudwall does not reveal).
#[test]
fn rpz_ip_answers_match_unbound() {
    let net = Fakenet::shared();
    let fw = Fraudwall::start(&config(net, ""), &[("lists/feed.rpz", ZONE)]);
    let zone = fw.dir.path().join("lists/feed.rpz");
    let ub = Unbound::start(
        net,
        Some(&format!(
            "module-config: \"respip validator iterator\"\nrpz:\n  name: rpz.test.\n  zonefile: \"{}\"\n  rpz-log: yes\n",
            zone.display()
        )),
    );
    for (name, qtype) in [
        ("www.scam-shop.net", "A"),
        ("login.scam-shop.net", "A"),
        ("promo.example.com", "A"),
        ("cdn.example.com", "A"),
        ("cdn.example.com", "AAAA"),
        ("www.fraudwall-demo.test", "A"),
        ("www.fraudwall-demo.test", "AAAA"),
        ("safe.fraudwall-demo.test", "A"),
        ("www.example.com", "A"),
    ] {
        let ours = dig(fw.addr, &[name, qtype]);
        let theirs = ub.dig(&[name, qtype]);
        // Unbound keeps the CNAMEs before a blocked answer; fraudwall never reveals the chain
        // of a blocked answer (as for CNAME cloaking): compare the rest.
        let mut their_data = theirs.normalized_answer();
        if ours.answer.is_empty() {
            their_data.retain(|r| !r.contains(" CNAME "));
        }
        assert_eq!(
            (ours.rcode(), ours.normalized_answer()),
            (theirs.rcode(), their_data),
            "{name} {qtype}\nours:\n{}\nunbound:\n{}\n{}",
            ours.raw,
            theirs.raw,
            ub.log()
        );
    }
}
