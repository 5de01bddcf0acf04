//! Per-customer policy groups, end to end: the real binary asked with `dig` from different
//! loopback source addresses (all of 127.0.0.0/8 is local, `dig -b` picks one) and from `::1`,
//! each in another group of `policy.groups`, gets different verdicts for the same names; the
//! block events name the group; `fraudwall check --client` explains each verdict; a bad
//! `policy:` section fails `config check` with its key and line.
//!
//! Names that are not blocked for a client go to a forwarder that is not there (SERVFAIL):
//! what matters is that they do not get a blocked answer.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::fraudwall::bin;
use common::{Fraudwall, dig};

/// The lists and groups of every test here.
///
/// | client | group | lists that apply |
/// |---|---|---|
/// | 127.0.0.1 | default | anti-fraud-centre, police (kids is group-only) |
/// | 127.0.0.10 | enterprise-optout | police (anti-fraud-centre excluded) |
/// | 127.0.0.16/28, ::1 | child-protection | all, kids too; anti-fraud-centre answers REFUSED |
/// | 127.0.0.20 (inside the /28) | police-only | police |
fn config() -> String {
    "listen: [\"127.0.0.1:0\", \"[::1]:0\"]\n\
     resolver:\n  mode: forward\n  forwarders:\n    - address: \"127.0.0.1:9\"\n  timeout_ms: 1500\n  server_timeout_ms: 500\n  dnssec: off\n\
     metrics:\n  listen: \"127.0.0.1:0\"\n\
     blocklists:\n  dir: lists\n  lists:\n\
     \x20   - file: afc.txt\n      name: anti-fraud-centre\n\
     \x20   - file: police.txt\n      name: police\n      action: nxdomain\n\
     \x20   - file: kids.txt\n      name: kids\n      category: gambling\n\
     policy:\n  group_only: [kids]\n  groups:\n\
     \x20   - name: enterprise-optout\n      clients: [\"127.0.0.10/32\"]\n      exclude_lists: [anti-fraud-centre]\n\
     \x20   - name: child-protection\n      clients: [\"127.0.0.16/28\", \"::1\"]\n      extra_lists: [kids]\n      actions: { anti-fraud-centre: refused }\n\
     \x20   - name: police-only\n      clients: [\"127.0.0.20/32\"]\n      lists: [police]\n"
        .to_string()
}

const FILES: &[(&str, &str)] = &[
    ("lists/afc.txt", "shop-fraud.test\nboth.test\n"),
    ("lists/police.txt", "both.test\npolice-only.test\n"),
    ("lists/kids.txt", "casino.test\n"),
];

fn fw() -> &'static Fraudwall {
    static FW: OnceLock<Fraudwall> = OnceLock::new();
    FW.get_or_init(|| Fraudwall::start(&config(), FILES))
}

/// What `source` gets for `name` A: `sinkhole`, `NXDOMAIN`, `REFUSED` (each with EDE 15, a
/// blocked answer) or `not blocked` (no EDE 15: resolved, here SERVFAIL).
fn verdict(server: SocketAddr, source: &str, name: &str) -> String {
    let r = dig(server, &["-b", source, name, "A"]);
    if !r.ede_codes().contains(&15) {
        assert_ne!(r.status, "NO-RESPONSE", "{source} {name}: {}", r.raw);
        return "not blocked".into();
    }
    match r.status.as_str() {
        "NOERROR" => {
            assert_eq!(r.answer_rdata("A"), ["127.0.0.1"], "{}", r.raw);
            "sinkhole".into()
        }
        other => other.to_string(),
    }
}

fn v6(fw: &Fraudwall) -> SocketAddr {
    *fw.udp
        .iter()
        .find(|a| a.is_ipv6())
        .expect("listening on ::1")
}

/// Every group gets its own verdicts for the same names: the default group everything but the
/// group-only list; the opted-out enterprise not the list it excluded, but a name that list
/// shares with another list is still blocked by the other (with that list's action); the
/// child-protection group its group-only list and its own action for anti-fraud-centre, from
/// 127.0.0.17 and from ::1 alike; the longest prefix wins (127.0.0.20 sits inside
/// child-protection's /28 but is police-only).
#[test]
fn each_group_gets_its_own_verdicts_for_the_same_names() {
    let fw = fw();
    let names = [
        "shop-fraud.test",
        "both.test",
        "police-only.test",
        "casino.test",
    ];
    let table = [
        (
            "127.0.0.1",
            ["sinkhole", "sinkhole", "NXDOMAIN", "not blocked"],
        ),
        (
            "127.0.0.10",
            ["not blocked", "NXDOMAIN", "NXDOMAIN", "not blocked"],
        ),
        ("127.0.0.17", ["REFUSED", "REFUSED", "NXDOMAIN", "sinkhole"]),
        (
            "127.0.0.20",
            ["not blocked", "NXDOMAIN", "NXDOMAIN", "not blocked"],
        ),
    ];
    for (source, want) in table {
        let got: Vec<String> = names
            .iter()
            .map(|n| verdict(fw.addr, source, &format!("www.{n}")))
            .collect();
        assert_eq!(got, want, "from {source}: {names:?}");
    }
    let got: Vec<String> = names
        .iter()
        .map(|n| verdict(v6(fw), "::1", &format!("www.{n}")))
        .collect();
    assert_eq!(
        got,
        ["REFUSED", "REFUSED", "NXDOMAIN", "sinkhole"],
        "from ::1"
    );
}

/// Each block event names the client's group, and the list and action that applied to it;
/// the per-group metric counts them.
#[test]
fn events_and_metrics_name_the_group() {
    let fw = fw();
    for (source, name) in [
        ("127.0.0.1", "ev1.both.test"),
        ("127.0.0.10", "ev2.both.test"),
        ("127.0.0.17", "ev3.casino.test"),
    ] {
        dig(fw.addr, &["-b", source, name, "A"]);
    }
    dig(v6(fw), &["-b", "::1", "ev4.both.test", "A"]);
    let brief = |qname: &str| {
        let e = fw.events_for(qname, 1);
        assert_eq!(e.len(), 1, "{qname}: {e:?}");
        let e = &e[0];
        format!(
            "{} {} {} {} {}",
            e["client"].as_str().unwrap_or("?"),
            e["group"].as_str().unwrap_or("?"),
            e["list"].as_str().unwrap_or("?"),
            e["action"].as_str().unwrap_or("?"),
            e["category"].as_str().unwrap_or("?"),
        )
    };
    assert_eq!(
        brief("ev1.both.test"),
        "127.0.0.1 default anti-fraud-centre sinkhole fraud"
    );
    assert_eq!(
        brief("ev2.both.test"),
        "127.0.0.10 enterprise-optout police nxdomain fraud"
    );
    assert_eq!(
        brief("ev3.casino.test"),
        "127.0.0.17 child-protection kids sinkhole gambling"
    );
    assert_eq!(
        brief("ev4.both.test"),
        "::1 child-protection anti-fraud-centre refused fraud"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while fw.metric("fraudwall_policy_blocked_total{group=\"enterprise-optout\"}") < 1.0
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        fw.metric("fraudwall_policy_blocked_total{group=\"enterprise-optout\"}") >= 1.0,
        "the group's counter"
    );
    assert_eq!(
        fw.metric("fraudwall_policy_blocked_total{group=\"police-only\"}"),
        0.0,
        "no query came from police-only"
    );
}

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

/// A config and its lists in a fresh directory, for the command line.
fn files(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in FILES {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    std::fs::write(dir.path().join("fraudwall.yaml"), config).unwrap();
    dir
}

/// `fraudwall check --client` says which group the address is in and by which prefix, every
/// list the name is in and whether it applies (and why not), and the verdict with the group's
/// action: the same verdicts the server gives.
#[test]
fn check_client_explains_the_verdict_for_that_client() {
    let dir = files(&config());
    let cfg = dir.path().join("fraudwall.yaml");
    let check = |client: &str, name: &str| {
        let (code, out, err) = run(&[
            "check",
            "--config",
            cfg.to_str().unwrap(),
            "--client",
            client,
            name,
        ]);
        assert_eq!(code, 0, "{out}{err}");
        out
    };
    assert_eq!(
        check("127.0.0.10", "www.both.test"),
        "client 127.0.0.10: group \"enterprise-optout\" (its prefix 127.0.0.10/32 is the longest that holds 127.0.0.10)\n\
         www.both.test: matches both.test (subtree) in list \"anti-fraud-centre\" [block list, action sinkhole]: does not apply: this group excludes it\n\
         www.both.test: matches both.test (subtree) in list \"police\" [block list, action nxdomain]: applies\n\
         www.both.test: BLOCKED for this client by both.test (subtree) in list \"police\", action nxdomain\n"
    );
    assert_eq!(
        check("127.0.0.1", "casino.test"),
        "client 127.0.0.1: group \"default\" (no group's prefix holds 127.0.0.1)\n\
         casino.test: matches casino.test (subtree) in list \"kids\" [block list, action sinkhole]: does not apply: a group-only list this group does not name\n\
         casino.test: not listed for this client\n"
    );
    let out = check("::1", "shop-fraud.test");
    assert!(
        out.contains("client ::1: group \"child-protection\" (its prefix ::1/128 is")
            && out.contains(
                "shop-fraud.test: BLOCKED for this client by shop-fraud.test (subtree) in list \"anti-fraud-centre\", action refused (group \"child-protection\" sets it for \"anti-fraud-centre\")"
            ),
        "{out}"
    );
    let out = check("127.0.0.20", "shop-fraud.test");
    assert!(
        out.contains("group \"police-only\" (its prefix 127.0.0.20/32 is the longest")
            && out.contains("does not apply: not among this group's lists")
            && out.ends_with("shop-fraud.test: not listed for this client\n"),
        "{out}"
    );
    let out = check("127.0.0.17", "casino.test");
    assert!(
        out.contains("group \"child-protection\" (its prefix 127.0.0.16/28 is")
            && out.ends_with(
                "casino.test: BLOCKED for this client by casino.test (subtree) in list \"kids\", action sinkhole\n"
            ),
        "{out}"
    );
}

/// A bad `policy:` section fails `config check` with exit code 2, naming each key and its line.
#[test]
fn bad_policy_is_refused_by_config_check_with_key_and_line() {
    let bad = config()
        .replace(
            "exclude_lists: [anti-fraud-centre]",
            "exclude_lists: [anti-fraud-center]",
        )
        .replace("\"127.0.0.20/32\"", "\"127.0.0.10/32\", \"127.0.0.300/32\"")
        + "    - name: police-only\n      clients: [\"10.1.2.3/16\"]\n";
    let dir = files(&bad);
    let cfg = dir.path().join("fraudwall.yaml");
    let (code, out, err) = run(&["config", "check", cfg.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}{err}");
    for want in [
        "line 27: policy.groups[0].exclude_lists[0]: no list is named \"anti-fraud-center\" in blocklists.lists (named there: anti-fraud-centre, police, kids)",
        "line 33: policy.groups[2].clients[0]: 127.0.0.10/32 is already a prefix of group \"enterprise-optout\": a client must have one group",
        "line 33: policy.groups[2].clients[1]: \"127.0.0.300/32\" is not a prefix like 100.64.10.0/24 or 2001:db8:20::/48",
        "line 35: policy.groups[3].name: group name \"police-only\" is used twice",
        "line 36: policy.groups[3].clients[0]: \"10.1.2.3/16\" has bits set after the prefix length; did you mean 10.1.0.0/16?",
    ] {
        assert!(err.contains(want), "missing {want:?} in\n{err}");
    }
    let (code, out, err) = run(&[
        "config",
        "check",
        files(&config())
            .path()
            .join("fraudwall.yaml")
            .to_str()
            .unwrap(),
    ]);
    assert_eq!((code, out.ends_with(": ok\n")), (0, true), "{out}{err}");
}
