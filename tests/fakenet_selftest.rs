//! Self-test of the fake Internet: brings it up and checks, through a reference Unbound, the
//! answers documented in tests/fakenet/README.md ("what Unbound answers" is the reference the
//! resolver is compared with). Also queries the NSD servers directly.

mod common;

use std::net::IpAddr;

use common::dig::{parse, parse_ede};
use common::fakenet::addrs;
use common::{DigResult, Ede, Fakenet, Unbound};

fn unbound() -> Unbound {
    Unbound::start(Fakenet::shared(), None)
}

fn a100() -> String {
    format!("{}example.com", "a.".repeat(98))
}

fn deep100() -> String {
    format!("{}deep.example.com", "a.".repeat(97))
}

#[track_caller]
fn expect(r: &DigResult, status: &str, ad: bool, answer: &[&str]) {
    assert_eq!(r.status, status, "status\n{}", r.raw);
    assert_eq!(r.ad(), ad, "AD flag\n{}", r.raw);
    let mut want: Vec<String> = answer.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(r.normalized_answer(), want, "answer\n{}", r.raw);
}

// ---------------------------------------------------------------- the harness itself

#[test]
fn state_files() {
    let f = Fakenet::shared();
    let hints = std::fs::read_to_string(&f.hints).unwrap();
    assert!(hints.contains("a.root-servers.test."));
    for line in hints.lines().filter(|l| !l.starts_with(';')) {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.get(2) == Some(&"A") {
            assert!(w[3].starts_with("127.53."), "non-loopback hint {line}");
        }
        assert_ne!(w.get(2), Some(&"AAAA"), "no IPv6 hints");
    }
    let ds = f.root_ds_text();
    assert!(
        ds.starts_with(". 3600 IN DS ") && ds.contains(" 13 2 "),
        "{ds}"
    );
    let key = f.root_dnskey_text();
    assert!(key.starts_with(". 3600 IN DNSKEY 257 3 13 "), "{key}");
    for k in [
        "ROOT_HINTS",
        "TRUST_ANCHOR",
        "TRUST_ANCHOR_DNSKEY",
        "SERVERS",
        "NS_ROOT_A",
    ] {
        assert!(f.env.contains_key(k), "{k} missing from env");
    }
    assert_eq!(f.servers().len(), 26, "IPv4 NSDs");
    assert!(
        f.env["SERVERS"].split(' ').any(|s| s == "::1"),
        "the IPv6 NSD"
    );
    assert_eq!(f.env["SILENT_SERVERS"], "127.53.98.1 127.53.98.2");
    let q = std::fs::read_to_string(&f.queries_benign).unwrap();
    assert!(q.lines().count() >= 5000);
    assert!(q.lines().all(|l| l.ends_with(" A")));
    assert!(q.contains("h4999.load.test A"));
}

/// Network safety: every address in every served zone is loopback (name servers: 127.53.x.y,
/// and ::1 for ns1.v6only.net) or in 198.18.0.0/15 / 2001:db8::/32 (answer data).
#[test]
fn zones_use_only_safe_addresses() {
    let f = Fakenet::shared();
    let mut n = 0;
    for e in std::fs::read_dir(f.state_dir.join("zones")).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        for line in text.lines().filter(|l| !l.starts_with(';')) {
            let w: Vec<&str> = line.split_whitespace().collect();
            let Some(i) = w.iter().position(|t| *t == "A" || *t == "AAAA") else {
                continue;
            };
            if i < 2 || w[i - 1] != "IN" {
                continue;
            }
            let ip: IpAddr = w[i + 1].parse().unwrap_or_else(|_| panic!("{line}"));
            let ok = match ip {
                IpAddr::V4(v4) => {
                    let o = v4.octets();
                    (o[0] == 127 && o[1] == 53) || (o[0] == 198 && (o[1] == 18 || o[1] == 19))
                }
                IpAddr::V6(v6) => {
                    (v6.segments()[0] == 0x2001 && v6.segments()[1] == 0x0db8) || v6.is_loopback()
                }
            };
            assert!(ok, "unsafe address in zone data: {line}");
            n += 1;
        }
    }
    assert!(n > 5000);
}

#[test]
fn dig_parser() {
    assert_eq!(
        parse_ede(" 15 (Blocked): (fraud: listed)"),
        Ede {
            code: 15,
            purpose: "Blocked".into(),
            text: Some("fraud: listed".into())
        }
    );
    assert_eq!(parse_ede(" 9 (DNSKEY Missing)").text, None);
    let r = parse(
        ";; ->>HEADER<<- opcode: QUERY, status: NXDOMAIN, id: 1\n\
         ;; flags: qr rd ra; QUERY: 1, ANSWER: 0, AUTHORITY: 0, ADDITIONAL: 1\n\n\
         ;; OPT PSEUDOSECTION:\n; EDNS: version: 0, flags:; udp: 1232\n\
         ; EDE: 15 (Blocked): (listed)\n;; QUESTION SECTION:\n;x.test.\t\tIN\tA\n\n",
    );
    assert_eq!(r.status, "NXDOMAIN");
    assert!(r.has_opt && r.ra() && !r.ad());
    assert_eq!(r.counts, [1, 0, 0, 1]);
    assert_eq!(r.edns_udp, Some(1232));
    assert_eq!(r.ede_codes(), vec![15]);
    assert_eq!(parse(";; communications error\n").status, "NO-RESPONSE");
}

// ---------------------------------------------------------------- through Unbound

#[test]
fn example_com_secure_answers() {
    let u = unbound();
    expect(
        &u.dig(&["www.example.com", "A"]),
        "NOERROR",
        true,
        &["www.example.com. A 198.18.0.10"],
    );
    expect(
        &u.dig(&["www.example.com", "AAAA"]),
        "NOERROR",
        true,
        &["www.example.com. AAAA 2001:db8::10"],
    );
    expect(
        &u.dig(&["example.com", "MX"]),
        "NOERROR",
        true,
        &["example.com. MX 10 mail.example.com."],
    );
    expect(
        &u.dig(&["mail.example.com", "A"]),
        "NOERROR",
        true,
        &["mail.example.com. A 198.18.0.25"],
    );
    expect(
        &u.dig(&["www.example.com", "HTTPS"]),
        "NOERROR",
        true,
        &["www.example.com. HTTPS 1 . alpn=\"h2\""],
    );
    expect(
        &u.dig(&["example.com", "TXT"]),
        "NOERROR",
        true,
        &[
            "example.com. TXT \"fraudwall fake internet\"",
            "example.com. TXT \"v=spf1 -all\"",
        ],
    );
    let r = u.dig(&["short.example.com", "A"]);
    expect(&r, "NOERROR", true, &["short.example.com. A 198.18.0.12"]);
    assert!(r.answer[0].ttl <= 5);
    // with DO, the RRSIG comes along
    let r = u.dig(&["+dnssec", "www.example.com", "A"]);
    assert!(r.ad() && r.edns_flags.contains(&"do".to_string()));
    assert_eq!(r.answer_rdata("RRSIG").len(), 1);
}

#[test]
fn nxdomain_and_nodata_are_secure() {
    let u = unbound();
    let r = u.dig(&["nx.example.com", "A"]);
    expect(&r, "NXDOMAIN", true, &[]);
    assert_eq!(r.authority_types(), vec!["SOA"]);
    let r = u.dig(&["aonly.example.com", "AAAA"]);
    expect(&r, "NOERROR", true, &[]);
    assert_eq!(r.authority_types(), vec!["SOA"]);
    expect(
        &u.dig(&["aonly.example.com", "A"]),
        "NOERROR",
        true,
        &["aonly.example.com. A 198.18.0.11"],
    );
    // NSEC3 zone
    expect(&u.dig(&["nx.example.net", "A"]), "NXDOMAIN", true, &[]);
    expect(&u.dig(&["www.example.net", "AAAA"]), "NOERROR", true, &[]);
    // nonexistent TLD: NSEC from the root
    expect(&u.dig(&["nonexistent-tld", "A"]), "NXDOMAIN", true, &[]);
    // with DO: NSEC records prove it
    let r = u.dig(&["+dnssec", "nx.example.com", "A"]);
    assert!(
        r.authority_types().contains(&"NSEC".to_string()),
        "{}",
        r.raw
    );
}

#[test]
fn bogus_zones_servfail() {
    let u = unbound();
    let r = u.dig(&["www.bogus.com", "A"]);
    expect(&r, "SERVFAIL", false, &[]);
    assert_eq!(r.ede_codes(), vec![6], "DNSSEC Bogus\n{}", r.raw);
    expect(
        &u.dig(&["+cd", "www.bogus.com", "A"]),
        "NOERROR",
        false,
        &["www.bogus.com. A 198.18.7.7"],
    );
    // only www was tampered with: the rest of bogus.com validates
    expect(
        &u.dig(&["ok.bogus.com", "A"]),
        "NOERROR",
        true,
        &["ok.bogus.com. A 198.18.7.3"],
    );
    // expired.com / future.com: every signature is outside its validity window
    for (q, code) in [("www.expired.com", 7), ("www.future.com", 8)] {
        let r = u.dig(&[q, "A"]);
        expect(&r, "SERVFAIL", false, &[]);
        assert_eq!(r.ede_codes(), vec![code], "{q}\n{}", r.raw);
    }
    // badds.com: the DS in com matches no DNSKEY
    let r = u.dig(&["www.badds.com", "A"]);
    expect(&r, "SERVFAIL", false, &[]);
    assert_eq!(r.ede_codes(), vec![9], "DNSKEY Missing\n{}", r.raw);
    expect(
        &u.dig(&["+cd", "www.badds.com", "A"]),
        "NOERROR",
        false,
        &["www.badds.com. A 198.18.7.2"],
    );
}

#[test]
fn insecure_answers_have_no_ad() {
    let u = unbound();
    expect(
        &u.dig(&["www.insecure.org", "A"]),
        "NOERROR",
        false,
        &["www.insecure.org. A 198.18.4.1"],
    );
    expect(
        &u.dig(&["www.scam-shop.net", "A"]),
        "NOERROR",
        false,
        &["www.scam-shop.net. A 198.18.6.6"],
    );
    // secure CNAME into an insecure zone: no AD
    expect(
        &u.dig(&["promo.example.com", "A"]),
        "NOERROR",
        false,
        &[
            "promo.example.com. CNAME www.scam-shop.net.",
            "www.scam-shop.net. A 198.18.6.6",
        ],
    );
    expect(&u.dig(&["nx.insecure.org", "A"]), "NXDOMAIN", false, &[]);
}

#[test]
fn out_of_bailiwick_lame_and_dead_delegations() {
    let u = unbound();
    expect(
        &u.dig(&["www.oob.org", "A"]),
        "NOERROR",
        false,
        &["www.oob.org. A 198.18.2.1"],
    );
    for _ in 0..3 {
        expect(
            &u.dig(&["www.lame.net", "A"]),
            "NOERROR",
            false,
            &["www.lame.net. A 198.18.3.1"],
        );
    }
    let t = std::time::Instant::now();
    let r = u.dig(&["+time=15", "www.dead.net", "A"]);
    expect(&r, "SERVFAIL", false, &[]);
    eprintln!("dead.net SERVFAIL after {:?}", t.elapsed());
}

#[test]
fn big_txt_needs_tcp() {
    let u = unbound();
    let r = u.dig(&["big.example.com", "TXT"]);
    assert_eq!(r.status, "NOERROR", "{}", r.raw);
    assert!(
        r.retried_tcp && r.over_tcp,
        "expected TC then TCP\n{}",
        r.raw
    );
    assert!(r.ad());
    assert_eq!(r.counts[1], 12);
    assert_eq!(r.answer_rdata("TXT").len(), 12);
    let bytes: usize = r.answer_rdata("TXT").iter().map(String::len).sum();
    assert!(bytes > 1500);
    // over UDP alone it is truncated
    let r = u.dig(&["+ignore", "big.example.com", "TXT"]);
    assert!(r.tc(), "{}", r.raw);
}

#[test]
fn wildcard_is_secure_and_nsec_proven() {
    let u = unbound();
    expect(
        &u.dig(&["foo.wild.example.com", "A"]),
        "NOERROR",
        true,
        &["foo.wild.example.com. A 198.18.0.20"],
    );
    let r = u.dig(&["+dnssec", "bar.baz.wild.example.com", "A"]);
    assert!(r.ad(), "{}", r.raw);
    assert_eq!(r.answer_rdata("A"), vec!["198.18.0.20"]);
    // RRSIG labels field = 3 (*.wild.example.com), and an NSEC proves the name does not exist
    let sig = &r.answer_rdata("RRSIG")[0];
    assert!(sig.starts_with("A 13 3 "), "{sig}");
    assert!(
        r.authority_types().contains(&"NSEC".to_string()),
        "{}",
        r.raw
    );
    expect(
        &u.dig(&["foo.wild.example.com", "AAAA"]),
        "NOERROR",
        true,
        &[],
    );
}

#[test]
fn cname_dname_and_loops() {
    let u = unbound();
    expect(
        &u.dig(&["cdn.example.com", "A"]),
        "NOERROR",
        true,
        &[
            "cdn.example.com. CNAME edge.cdnprov.net.",
            "edge.cdnprov.net. A 198.18.1.1",
        ],
    );
    expect(
        &u.dig(&["chain1.example.com", "A"]),
        "NOERROR",
        true,
        &[
            "chain1.example.com. CNAME chain2.example.com.",
            "chain2.example.com. CNAME www.example.com.",
            "www.example.com. A 198.18.0.10",
        ],
    );
    expect(
        &u.dig(&["www.old.example.com", "A"]),
        "NOERROR",
        true,
        &[
            "old.example.com. DNAME new.example.net.",
            "www.old.example.com. CNAME www.new.example.net.",
            "www.new.example.net. A 198.18.1.2",
        ],
    );
    // Unbound gives up on the loop after max-query-restarts: SERVFAIL, empty answer
    let r = u.dig(&["loop1.example.com", "A"]);
    expect(&r, "SERVFAIL", false, &[]);
    // the loop itself, without following it
    expect(
        &u.dig(&["loop1.example.com", "CNAME"]),
        "NOERROR",
        true,
        &["loop1.example.com. CNAME loop2.example.com."],
    );
}

#[test]
fn hundred_label_names() {
    let u = unbound();
    let q = a100();
    assert_eq!(q.split('.').count(), 100);
    let r = u.dig(&[&q, "A"]);
    expect(&r, "NXDOMAIN", true, &[]);
    let q = deep100();
    assert_eq!(q.split('.').count(), 100);
    let want = format!("{q}. A 198.18.0.100");
    expect(&u.dig(&[&q, "A"]), "NOERROR", true, &[&want]);
    // the empty non-terminals above it exist (NODATA, not NXDOMAIN)
    expect(&u.dig(&["a.a.deep.example.com", "A"]), "NOERROR", true, &[]);
}

#[test]
fn test_tld_names() {
    let u = unbound();
    expect(
        &u.dig(&["www.fraudwall-demo.test", "A"]),
        "NOERROR",
        true,
        &["www.fraudwall-demo.test. A 198.18.5.5"],
    );
    expect(
        &u.dig(&["fraudwall-demo.test", "A"]),
        "NOERROR",
        true,
        &["fraudwall-demo.test. A 198.18.5.5"],
    );
    expect(
        &u.dig(&["safe.fraudwall-demo.test", "A"]),
        "NOERROR",
        true,
        &["safe.fraudwall-demo.test. A 198.18.5.6"],
    );
    expect(
        &u.dig(&["h0.load.test", "A"]),
        "NOERROR",
        true,
        &["h0.load.test. A 198.19.0.0"],
    );
    expect(
        &u.dig(&["h4999.load.test", "A"]),
        "NOERROR",
        true,
        &["h4999.load.test. A 198.19.19.135"],
    );
    expect(&u.dig(&["h5000.load.test", "A"]), "NXDOMAIN", true, &[]);
}

#[test]
fn extra_conf_is_included() {
    let u = Unbound::start(
        Fakenet::shared(),
        Some("local-zone: \"fraudwall-demo.test.\" always_nxdomain\n"),
    );
    expect(
        &u.dig(&["www.fraudwall-demo.test", "A"]),
        "NXDOMAIN",
        false,
        &[],
    );
    expect(
        &u.dig(&["www.example.com", "A"]),
        "NOERROR",
        true,
        &["www.example.com. A 198.18.0.10"],
    );
}

// ---------------------------------------------------------------- the NSD servers directly

#[test]
fn servers_refer_rather_than_answer() {
    let _ = Fakenet::shared();
    let ns = Fakenet::ns;
    // root refers www.example.com to com
    let r = common::dig(ns(addrs::ROOT_A), &["+norec", "www.example.com", "A"]);
    assert_eq!(r.status, "NOERROR");
    assert!(!r.aa() && r.answer.is_empty(), "{}", r.raw);
    let mut nss: Vec<String> = r.authority.iter().map(|x| x.rdata.clone()).collect();
    nss.sort();
    assert_eq!(nss, vec!["a.nic.com.", "b.nic.com."]);
    assert!(r.additional.iter().any(|x| x.rdata == "127.53.1.1"));
    // com refers it to example.com, with glue
    let r = common::dig(ns(addrs::COM_B), &["+norec", "www.example.com", "A"]);
    assert!(!r.aa() && r.answer.is_empty(), "{}", r.raw);
    assert!(
        r.authority
            .iter()
            .all(|x| x.rtype == "NS" && x.name == "example.com.")
    );
    assert_eq!(r.additional.len(), 2);
    // with DO the referral carries the DS
    let r = common::dig(
        ns(addrs::COM_A),
        &["+norec", "+dnssec", "www.example.com", "A"],
    );
    assert!(r.authority_types().contains(&"DS".to_string()), "{}", r.raw);
    // org's referral to oob.org has no glue (out of bailiwick)
    let r = common::dig(ns(addrs::ORG), &["+norec", "www.oob.org", "A"]);
    assert_eq!(r.authority[0].rdata, "ns.example.net.");
    assert!(r.additional.is_empty(), "{}", r.raw);
    // ...and no DS for insecure.org: an insecure delegation (NSEC-less, org is unsigned)
    let r = common::dig(
        ns(addrs::ORG),
        &["+norec", "+dnssec", "www.insecure.org", "A"],
    );
    assert!(!r.authority_types().contains(&"DS".to_string()));
    // the authoritative server answers with aa
    let r = common::dig(
        ns(addrs::EXAMPLE_COM_2),
        &["+norec", "www.example.com", "A"],
    );
    assert!(r.aa());
    assert_eq!(r.answer_rdata("A"), vec!["198.18.0.10"]);
    // a server does not answer for zones it does not serve
    let r = common::dig(ns(addrs::COM_A), &["+norec", "www.example.net", "A"]);
    assert_eq!(r.status, "REFUSED");
    let r = common::dig(ns(addrs::LAME_NS1), &["+norec", "www.lame.net", "A"]);
    assert_eq!(r.status, "REFUSED");
    let r = common::dig(ns(addrs::LAME_NS2), &["+norec", "www.lame.net", "A"]);
    assert!(r.aa());
    // nothing at dead.net's servers
    let r = common::dig(
        ns(addrs::DEAD_1),
        &["+norec", "+time=1", "www.dead.net", "A"],
    );
    assert_eq!(r.status, "NO-RESPONSE");
    // every server answers SOA for its zones (what `fakenet.sh status` checks)
    for (addr, zone) in [
        (addrs::ROOT_B, "."),
        (addrs::NET, "net"),
        (addrs::TEST, "test"),
        (addrs::BOGUS, "badds.com"),
        (addrs::BOGUS, "expired.com"),
        (addrs::BOGUS, "future.com"),
        (addrs::LOAD, "load.test"),
    ] {
        let r = common::dig(ns(addr), &["+norec", zone, "SOA"]);
        assert!(
            r.aa() && r.answer_rdata("SOA").len() == 1,
            "{addr} {zone}\n{}",
            r.raw
        );
    }
}

#[test]
fn status_script_agrees() {
    let f = Fakenet::shared();
    let out = std::process::Command::new("bash")
        .arg(Fakenet::script_dir().join("fakenet.sh"))
        .arg("status")
        .arg(&f.state_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

// ---------------------------------------------------------------- the zones added for #16

#[test]
fn added_zones_through_unbound() {
    let u = unbound();
    // SOA TTL below MINIMUM: a negative answer carries the TTL (120), not the MINIMUM (900)
    let r = u.dig(&["nx.negttl.net", "A"]);
    expect(&r, "NXDOMAIN", true, &[]);
    assert!((119..=120).contains(&r.authority[0].ttl), "{}", r.raw);
    // example.com the other way round: the MINIMUM (300); so for rawsoa.net, whose server
    // does not lower the SOA's TTL (3600) itself
    for q in ["nx-selftest.example.com", "nx.rawsoa.net"] {
        let r = u.dig(&[q, "A"]);
        assert!((299..=300).contains(&r.authority[0].ttl), "{}", r.raw);
    }
    // NSEC3 opt-out: signed data secure, the insecure delegation and NXDOMAIN not
    expect(
        &u.dig(&["www.optout.net", "A"]),
        "NOERROR",
        true,
        &["www.optout.net. A 198.18.8.2"],
    );
    expect(
        &u.dig(&["www.unsigned.optout.net", "A"]),
        "NOERROR",
        false,
        &["www.unsigned.optout.net. A 198.18.8.3"],
    );
    expect(&u.dig(&["nx.optout.net", "A"]), "NXDOMAIN", false, &[]);
    // other algorithms
    let r = u.dig(&["+dnssec", "www.ed25519.net", "A"]);
    assert!(r.ad(), "{}", r.raw);
    assert_eq!(r.answer_rdata("A"), ["198.18.8.4"], "{}", r.raw);
    assert!(r.answer_rdata("RRSIG")[0].starts_with("A 15 "), "{}", r.raw);
    let r = u.dig(&["+dnssec", "www.rsasha256.net", "A"]);
    assert!(r.ad(), "{}", r.raw);
    assert_eq!(r.answer_rdata("A"), ["198.18.8.5"], "{}", r.raw);
    assert!(r.answer_rdata("RRSIG")[0].starts_with("A 8 "), "{}", r.raw);
    // the IPv6-only name server
    expect(
        &u.dig(&["www.v6only.net", "A"]),
        "NOERROR",
        false,
        &["www.v6only.net. A 198.18.8.6"],
    );
    // one server silent for flaky.net, the other answers
    expect(
        &u.dig(&["www.steady.net", "A"]),
        "NOERROR",
        false,
        &["www.steady.net. A 198.18.8.8"],
    );
    expect(
        &u.dig(&["+time=15", "www.flaky.net", "A"]),
        "NOERROR",
        false,
        &["www.flaky.net. A 198.18.8.7"],
    );
    // 25 TXT strings, more than 4096 bytes
    let r = u.dig(&["huge.example.com", "TXT"]);
    assert!(r.retried_tcp && r.over_tcp, "{}", r.raw);
    assert_eq!(r.answer_rdata("TXT").len(), 25);
    // silent.net: SERVFAIL once Unbound gives up waiting
    let t = std::time::Instant::now();
    expect(
        &u.dig(&["+time=30", "www.silent.net", "A"]),
        "SERVFAIL",
        false,
        &[],
    );
    eprintln!("silent.net SERVFAIL after {:?}", t.elapsed());
}

#[test]
fn added_servers_directly() {
    let _ = Fakenet::shared();
    let ns = Fakenet::ns;
    // silent.net's servers take the query and never answer, over UDP or TCP
    for a in [addrs::SILENT_1, addrs::SILENT_2] {
        for tcp in ["+notcp", "+tcp"] {
            let r = common::dig(ns(a), &["+norec", "+time=1", tcp, "www.silent.net", "A"]);
            assert_eq!(r.status, "NO-RESPONSE", "{a} {tcp}\n{}", r.raw);
        }
    }
    // the relay answers for steady.net and drops flaky.net, which ns2 serves
    let r = common::dig(ns(addrs::FLAKY_NS1), &["+norec", "www.steady.net", "A"]);
    assert!(r.aa(), "{}", r.raw);
    assert_eq!(r.answer_rdata("A"), ["198.18.8.8"]);
    let r = common::dig(
        ns(addrs::FLAKY_NS1),
        &["+norec", "+time=1", "www.flaky.net", "A"],
    );
    assert_eq!(r.status, "NO-RESPONSE", "{}", r.raw);
    let r = common::dig(ns(addrs::FLAKY_NS2), &["+norec", "www.flaky.net", "A"]);
    assert_eq!(r.answer_rdata("A"), ["198.18.8.7"]);
    // NSD lowers the SOA's TTL to the MINIMUM in a negative answer; the rawsoa.net relay not
    let soa_ttl = |a| {
        let r = common::dig(ns(a), &["+norec", "nx.rawsoa.net", "A"]);
        assert_eq!(
            (r.status.as_str(), r.authority_types()),
            ("NXDOMAIN", vec!["SOA".to_string()]),
            "{}",
            r.raw
        );
        r.authority[0].ttl
    };
    assert_eq!(
        (soa_ttl(addrs::FLAKY_NS2), soa_ttl(addrs::RAWSOA_RELAY)),
        (300, 3600)
    );
    // the IPv6 NSD
    let v6 = std::net::SocketAddr::new(addrs::V6ONLY.into(), 53);
    let r = common::dig(v6, &["+norec", "www.v6only.net", "A"]);
    assert!(r.aa(), "{}", r.raw);
    // net refers v6only.net with AAAA glue only
    let r = common::dig(ns(addrs::NET), &["+norec", "www.v6only.net", "A"]);
    assert_eq!(r.additional.len(), 1, "{}", r.raw);
    assert_eq!(
        (
            r.additional[0].rtype.as_str(),
            r.additional[0].rdata.as_str()
        ),
        ("AAAA", "::1")
    );
    // optout.net's NSEC3 records all have the opt-out flag, and the chain skips the delegation
    let r = common::dig(
        ns(addrs::OPTOUT),
        &["+norec", "+dnssec", "nx.optout.net", "A"],
    );
    let nsec3: Vec<&common::Record> = r.authority.iter().filter(|x| x.rtype == "NSEC3").collect();
    assert!(!nsec3.is_empty(), "{}", r.raw);
    assert!(
        nsec3.iter().all(|x| x.rdata.starts_with("1 1 0 ")),
        "{}",
        r.raw
    );
    for (a, zone) in [
        (addrs::NEGTTL, "negttl.net"),
        (addrs::OPTOUT_CHILD, "unsigned.optout.net"),
        (addrs::ALGORITHMS, "ed25519.net"),
        (addrs::ALGORITHMS, "rsasha256.net"),
        (addrs::FLAKY_NS2, "steady.net"),
    ] {
        let r = common::dig(ns(a), &["+norec", zone, "SOA"]);
        assert!(r.aa(), "{a} {zone}\n{}", r.raw);
    }
}

/// The logging relays (silent.py --log): they answer as the NSD behind them, and write one line
/// per query to their log under STATEDIR/silent/.
#[test]
fn logging_relays() {
    let f = Fakenet::shared();
    let ns = |a: [u8; 4]| Fakenet::ns(a.into());
    for (addr, log, name, want) in [
        (
            [127, 53, 52, 1],
            "observed-ns1.log",
            "selftest1.observed.net",
            "198.18.9.1",
        ),
        (
            [127, 53, 52, 2],
            "observed-ns2.log",
            "selftest2.observed.net",
            "198.18.9.1",
        ),
        (
            [127, 53, 52, 3],
            "cut.log",
            "a.b.c.d.cut.observed.net",
            "198.18.9.4",
        ),
        (
            [127, 53, 52, 4],
            "slow.log",
            "selftest4.slow.net",
            "198.18.9.2",
        ),
    ] {
        let r = common::dig(ns(addr), &["+norec", name, "A"]);
        assert!(r.aa(), "{addr:?}\n{}", r.raw);
        assert_eq!(r.answer_rdata("A"), [want], "{}", r.raw);
        let text = std::fs::read_to_string(f.state_dir.join("silent").join(log)).unwrap();
        let line = text
            .lines()
            .rev()
            .find(|l| l.ends_with(&format!(" A {name}.")))
            .unwrap_or_else(|| panic!("{name} not in {log}:\n{text}"));
        let w: Vec<&str> = line.split_whitespace().collect();
        assert!(
            w[0].parse::<f64>().is_ok() && w[1].parse::<u32>().unwrap() >= 1,
            "{line}"
        );
    }
    assert!(f.env["SLOW_LOG"].ends_with("/silent/slow.log"));
    // the parent refers the child zone; through Unbound
    let r = common::dig(ns([127, 53, 52, 1]), &["+norec", "x.cut.observed.net", "A"]);
    assert!(!r.aa() && r.authority_types() == ["NS"], "{}", r.raw);
    let u = unbound();
    expect(
        &u.dig(&["www.observed.net", "A"]),
        "NOERROR",
        false,
        &["www.observed.net. A 198.18.9.1"],
    );
    expect(
        &u.dig(&["a.b.c.d.cut.observed.net", "A"]),
        "NOERROR",
        false,
        &["a.b.c.d.cut.observed.net. A 198.18.9.4"],
    );
    expect(
        &u.dig(&["www.slow.net", "A"]),
        "NOERROR",
        false,
        &["www.slow.net. A 198.18.9.2"],
    );
    expect(
        &u.dig(&["nx.cut.observed.net", "A"]),
        "NXDOMAIN",
        false,
        &[],
    );
    expect(
        &u.dig(&["www.viaslow.net", "A"]),
        "NOERROR",
        false,
        &["www.viaslow.net. A 198.18.9.3"],
    );
}
