//! Trust anchors (`resolver.trust_anchor`, else the built-in IANA root keys) seen from a client:
//! the real binary resolving the loopback hierarchy (tests/fakenet), whose root is signed with a
//! key made fresh at every `fakenet.sh up`.

mod common;

use std::process::Command;

use common::{DigResult, Fakenet, Fraudwall, dig};
use hickory_proto::dnssec::{PublicKey, TrustAnchors, rdata::DNSKEY};

/// A fraudwall resolving the fakenet; `resolver` is extra text for the `resolver:` section.
fn start(resolver: &str) -> Fraudwall {
    let net = Fakenet::shared();
    let cfg = format!(
        "listen: [\"127.0.0.1:0\"]\n\
         resolver:\n  root_hints: {}\n  allow_private_servers: true\n{resolver}\
         blocklists:\n  dir: lists\n",
        net.hints.display(),
    );
    Fraudwall::start(&cfg, &[("lists/fraud.txt", "unrelated-fraud.test\n")])
}

/// A fraudwall with `anchor` (zone text) as its trust anchor file.
fn start_with_anchor(anchor: &str) -> Fraudwall {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("root.anchor");
    std::fs::write(&path, anchor).unwrap();
    let fw = start(&format!("  trust_anchor: {}\n", path.display()));
    // The file is read at start.
    drop(dir);
    fw
}

fn ask(fw: &Fraudwall, name: &str, extra: &[&str]) -> DigResult {
    let mut args = vec![name, "A", "+dnssec", "+time=10"];
    args.extend_from_slice(extra);
    dig(fw.addr, &args)
}

/// Signed data validates (AD), bogus data is SERVFAIL with an EDE, and with CD the data comes
/// without AD: validation, not resolution, decided.
fn assert_validates(fw: &Fraudwall) {
    let good = ask(fw, "www.example.com", &[]);
    assert_eq!(good.status, "NOERROR", "{}\n{}", good.raw, fw.log());
    assert!(good.ad(), "signed answer validated: {}", good.raw);
    assert_eq!(good.answer_rdata("A"), ["198.18.0.10"]);
    let bogus = ask(fw, "www.bogus.com", &[]);
    assert_eq!(bogus.status, "SERVFAIL", "{}", bogus.raw);
    assert!(!bogus.ede.is_empty(), "bogus carries an EDE: {}", bogus.raw);
}

/// Every signed name fails validation: SERVFAIL with an EDE, and with CD the data (no AD).
fn assert_nothing_validates(fw: &Fraudwall) {
    for name in ["www.example.com", "www.fraudwall-demo.test"] {
        let r = ask(fw, name, &[]);
        assert_eq!(r.status, "SERVFAIL", "{name}: {}\n{}", r.raw, fw.log());
        assert!(r.answer.is_empty());
        assert!(!r.ede.is_empty(), "{name}: an EDE says why: {}", r.raw);
        let cd = ask(fw, name, &["+cd"]);
        assert_eq!(cd.status, "NOERROR", "{name} +cd: {}", cd.raw);
        assert!(!cd.ad());
        assert_eq!(cd.answer_rdata("A").len(), 1, "{name} +cd: {}", cd.raw);
    }
}

#[test]
fn a_dnskey_anchor_validates() {
    let net = Fakenet::shared();
    let fw = start_with_anchor(&net.root_dnskey_text());
    assert_validates(&fw);
}

#[test]
fn a_ds_anchor_validates() {
    let net = Fakenet::shared();
    let fw = start_with_anchor(&net.root_ds_text());
    assert_validates(&fw);
}

/// A DNSKEY anchor that is not the root's key (a fresh key of the same algorithm).
#[test]
fn a_wrong_dnskey_anchor_fails_signed_names() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("ldns-keygen")
        .args(["-a", "ECDSAP256SHA256", "-k", "."])
        .current_dir(dir.path())
        .output()
        .expect("ldns-keygen (apt-get install ldnsutils)");
    assert!(out.status.success(), "{out:?}");
    let base = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let key = std::fs::read_to_string(dir.path().join(format!("{base}.key"))).unwrap();
    let words: Vec<&str> = key.split_whitespace().collect();
    assert_eq!(words[2..6], ["DNSKEY", "257", "3", "13"], "{key}");
    assert_ne!(key, Fakenet::shared().root_dnskey_text());
    let fw = start_with_anchor(&key);
    assert_nothing_validates(&fw);
}

/// A DS anchor whose digest matches no key of the root (the last hex digit changed).
#[test]
fn a_wrong_ds_anchor_fails_signed_names() {
    let mut ds = Fakenet::shared().root_ds_text();
    let last = ds.pop().unwrap();
    ds.push(if last == '0' { '1' } else { '0' });
    let fw = start_with_anchor(&ds);
    assert_nothing_validates(&fw);
}

/// Without `trust_anchor` the built-in IANA root keys are in force: the fakenet's root is not
/// signed with them, so its signed names are bogus; `dnssec: off` answers the same names
/// (so it is validation that fails them, not resolution).
#[test]
fn the_built_in_anchors_are_in_force_without_trust_anchor() {
    let fw = start("");
    assert_nothing_validates(&fw);
    let off = start("  dnssec: off\n");
    let r = ask(&off, "www.example.com", &[]);
    assert_eq!(r.status, "NOERROR", "{}", r.raw);
    assert!(!r.ad());
    assert_eq!(r.answer_rdata("A"), ["198.18.0.10"]);
}

/// The built-in set (what `Resolver::build` uses when `trust_anchor` is absent:
/// `TrustAnchors::default()`) holds the IANA root KSKs: key tags 20326 (KSK-2017) and 38696
/// (KSK-2024), both RSASHA256 (algorithm 8).
#[test]
fn the_built_in_anchors_are_the_iana_root_ksks() {
    let anchors = TrustAnchors::default();
    let mut tags: Vec<u16> = (0..anchors.len())
        .map(|i| {
            let key = anchors.get(i).unwrap().clone();
            assert_eq!(u8::from(key.algorithm()), 8, "RSASHA256");
            DNSKEY::with_flags(257, key).calculate_key_tag().unwrap()
        })
        .collect();
    tags.sort();
    assert_eq!(tags, [20326, 38696]);
}
