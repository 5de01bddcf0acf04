//! The real `fraudwall` binary resolving the loopback hierarchy (tests/fakenet), queried with the
//! real `dig`, side by side with a reference Unbound resolving the same hierarchy: for every
//! query below fraudwall must answer as Unbound does (RCODE, AD, answer RRsets, authority types).

mod common;

use std::sync::OnceLock;

use common::{DigResult, Fakenet, Fraudwall, Unbound, dig};

/// A fraudwall resolving the fakenet with DNSSEC validation from the DS trust anchor.
fn config(net: &Fakenet, extra: &str) -> String {
    config_resolver(net, "", extra)
}

/// The same with more `resolver:` keys (`resolver` is indented lines, `extra` top-level).
fn config_resolver(net: &Fakenet, resolver: &str, extra: &str) -> String {
    format!(
        "listen: [\"127.0.0.1:0\"]\n\
         resolver:\n  root_hints: {}\n  trust_anchor: {}\n  allow_private_servers: true\n{resolver}\
         blocklists:\n  dir: lists\n{extra}",
        net.hints.display(),
        net.trust_anchor.display()
    )
}

/// A fraudwall of its own (empty caches), with the metrics endpoint when `metrics`.
fn fresh_fraudwall(resolver: &str, metrics: bool) -> Fraudwall {
    let extra = if metrics {
        "metrics:\n  listen: \"127.0.0.1:0\"\n"
    } else {
        ""
    };
    Fraudwall::start(
        &config_resolver(Fakenet::shared(), resolver, extra),
        &[("lists/unrelated.txt", "unrelated-fraud.test\n")],
    )
}

/// The size dig reports for the response (`;; MSG SIZE  rcvd: N`).
fn msg_size(r: &DigResult) -> usize {
    r.raw
        .lines()
        .rev()
        .find_map(|l| l.split("MSG SIZE  rcvd:").nth(1)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no MSG SIZE in\n{}", r.raw))
}

struct Pair {
    fw: Fraudwall,
    ub: Unbound,
}

/// One fraudwall and one Unbound for the comparison tests; nothing listed that they query.
fn pair() -> &'static Pair {
    static PAIR: OnceLock<Pair> = OnceLock::new();
    PAIR.get_or_init(|| {
        let net = Fakenet::shared();
        Pair {
            fw: Fraudwall::start(
                &config(net, ""),
                &[("lists/unrelated.txt", "unrelated-fraud.test\n")],
            ),
            ub: Unbound::start(net, None),
        }
    })
}

/// What must be equal between the two resolvers.
fn essence(r: &DigResult) -> (String, bool, Vec<String>, Vec<String>) {
    let mut auth = r.authority_types();
    auth.sort();
    auth.dedup();
    (r.status.clone(), r.ad(), r.normalized_answer(), auth)
}

fn same_as_unbound(args: &[&str]) -> DigResult {
    let p = pair();
    let u = dig(p.ub.addr(), args);
    let f = dig(p.fw.addr, args);
    assert_eq!(
        essence(&f),
        essence(&u),
        "fraudwall and Unbound differ for {args:?}\n--- fraudwall\n{}\n--- unbound\n{}",
        f.raw,
        u.raw
    );
    f
}

#[test]
fn positive_answers_match_unbound() {
    for args in [
        &["www.example.com", "A"][..],
        &["www.example.com", "AAAA", "+dnssec"],
        &["example.com", "MX"],
        &["example.com", "TXT", "+dnssec"],
        &["www.example.com", "HTTPS"],
        &["mail.example.com", "A"],
        &["www.insecure.org", "A", "+dnssec"],
        &["www.fraudwall-demo.test", "A", "+dnssec"],
    ] {
        let r = same_as_unbound(args);
        assert_eq!(r.status, "NOERROR", "{args:?}");
        assert!(!r.answer.is_empty(), "{args:?}");
    }
    // Validated answers carry AD; the unsigned zone does not.
    assert!(dig(pair().fw.addr, &["www.example.com", "A", "+dnssec"]).ad());
    assert!(!dig(pair().fw.addr, &["www.insecure.org", "A", "+dnssec"]).ad());
}

#[test]
fn negative_answers_match_unbound() {
    let nx = same_as_unbound(&["nx.example.com", "A", "+dnssec"]);
    assert_eq!(nx.status, "NXDOMAIN");
    assert!(nx.authority_types().contains(&"SOA".to_string()));
    let nodata = same_as_unbound(&["aonly.example.com", "AAAA"]);
    assert_eq!(
        (nodata.status.as_str(), nodata.answer.len()),
        ("NOERROR", 0)
    );
    same_as_unbound(&["nx.example.net", "A", "+dnssec"]); // NSEC3-signed zone
}

#[test]
fn cname_across_zones_and_out_of_bailiwick_ns() {
    let r = same_as_unbound(&["cdn.example.com", "A", "+dnssec"]);
    assert_eq!(r.answer_rdata("A"), ["198.18.1.1"]);
    let r = same_as_unbound(&["www.oob.org", "A"]);
    assert_eq!(r.answer_rdata("A"), ["198.18.2.1"]);
}

#[test]
fn dnssec_bogus_is_servfail_unless_cd() {
    let r = same_as_unbound(&["www.bogus.com", "A"]);
    assert_eq!(r.status, "SERVFAIL");
    assert_eq!(r.ede_codes(), [6], "EDE 6 DNSSEC Bogus");
    let r = same_as_unbound(&["www.bogus.com", "A", "+cd"]);
    assert_eq!(r.answer_rdata("A"), ["198.18.7.7"]);
    same_as_unbound(&["ok.bogus.com", "A", "+dnssec"]);
    // The DS in com matches none of badds.com's keys: hickory only says bogus; our layer finds
    // why, and the EDE is Unbound's: 9, DNSKEY Missing. (Unbound 1.17 says 9 when it validates
    // and 6 when it answers again from its cache; ours keeps the reason with the answer.)
    let p = pair();
    let u = dig(p.ub.addr(), &["www.badds.com", "A"]);
    let f = dig(p.fw.addr, &["www.badds.com", "A"]);
    assert_eq!(essence(&f), essence(&u), "{}\n{}", f.raw, u.raw);
    assert_eq!(f.status, "SERVFAIL");
    assert_eq!((f.ede_codes(), u.ede_codes()), (vec![9], vec![9]));
    let again = dig(p.fw.addr, &["www.badds.com", "A"]);
    assert_eq!(again.ede_codes(), [9], "from the cache");
    let r = same_as_unbound(&["www.badds.com", "A", "+cd"]);
    assert_eq!(r.answer_rdata("A"), ["198.18.7.2"]);
}

/// Signatures outside their validity window: hickory only says bogus; Unbound, and our layer,
/// say which end of the window was missed.
#[test]
fn signatures_outside_their_validity_window_say_why() {
    let p = pair();
    for (q, code) in [("www.expired.com", 7), ("www.future.com", 8)] {
        let u = dig(p.ub.addr(), &[q, "A"]);
        let f = dig(p.fw.addr, &[q, "A"]);
        assert_eq!(essence(&f), essence(&u), "{}\n{}", f.raw, u.raw);
        assert_eq!(f.status, "SERVFAIL", "{q}");
        assert_eq!(
            (f.ede_codes(), u.ede_codes()),
            (vec![code], vec![code]),
            "{q}\n{}\n{}",
            f.raw,
            u.raw
        );
    }
}

/// hickory 0.26 fails validation of wildcard answers proven by NSEC; our layer proves them.
#[test]
fn nsec_proven_wildcard_answer_validates() {
    let r = same_as_unbound(&["foo.wild.example.com", "A", "+dnssec"]);
    assert!(r.ad());
    assert_eq!(r.answer_rdata("A"), ["198.18.0.20"]);
    same_as_unbound(&["other.wild.example.com", "A"]);
    same_as_unbound(&["a.b.wild.example.com", "TXT", "+dnssec"]);
}

/// hickory 0.26 does not validate DNAME-synthesised CNAMEs (#3562); our layer does.
#[test]
fn dname_is_followed_and_validated() {
    let r = same_as_unbound(&["www.old.example.com", "A", "+dnssec"]);
    assert!(r.ad());
    assert_eq!(r.answer_rdata("A"), ["198.18.1.2"]);
    assert_eq!(r.answer_rdata("DNAME"), ["new.example.net."]);
    let r = same_as_unbound(&["nx.old.example.com", "A"]);
    assert_eq!(r.status, "NXDOMAIN");
    same_as_unbound(&["www.old.example.com", "AAAA"]);
}

/// hickory 0.26 answers a CNAME loop NOERROR with a partial chain; Unbound says SERVFAIL.
#[test]
fn cname_loop_is_servfail() {
    let r = same_as_unbound(&["loop1.example.com", "A"]);
    assert_eq!(r.status, "SERVFAIL");
    assert!(!r.ad());
    same_as_unbound(&["loop1.example.com", "CNAME"]);
}

/// hickory 0.26 answers a 100-label name SERVFAIL (label-by-label minimisation hits its limit).
#[test]
fn hundred_label_names() {
    let nx = format!("{}example.com", "a.".repeat(98));
    assert_eq!(same_as_unbound(&[&nx, "A"]).status, "NXDOMAIN");
    let deep = format!("{}deep.example.com", "a.".repeat(97));
    let r = same_as_unbound(&[&deep, "A"]);
    assert_eq!(r.answer_rdata("A"), ["198.18.0.100"]);
}

/// hickory 0.26 gives up when the first server of a zone answers REFUSED; Unbound asks the next.
#[test]
fn lame_delegation_falls_over_to_the_good_server() {
    let r = same_as_unbound(&["www.lame.net", "A"]);
    assert_eq!(r.answer_rdata("A"), ["198.18.3.1"]);
}

/// Delegations whose servers never answer: silent.net (both servers read every query and
/// drop it, so only a timeout tells) and dead.net (closed ports: an ICMP error at once). Both
/// resolvers say SERVFAIL; ours says it within what `resolver.server_timeout_ms` allows for
/// the servers it tries, long before the question's own deadline (`timeout_ms`, 10 s here).
#[test]
fn dead_delegation_is_servfail_within_our_deadline() {
    // Each of the zone's 2 servers is asked once, for at most server_timeout_ms; twice that
    // for a busy machine, plus 2 s. Without the per-server timeout the answer would come at
    // the 10 s deadline.
    const SERVER_TIMEOUT_MS: u64 = 600;
    const SERVERS: u64 = 2;
    let bound = std::time::Duration::from_millis(2 * (SERVERS * SERVER_TIMEOUT_MS) + 2000);
    let fw = fresh_fraudwall(
        &format!("  server_timeout_ms: {SERVER_TIMEOUT_MS}\n  timeout_ms: 10000\n"),
        false,
    );
    let p = pair();
    for q in ["www.silent.net", "www.dead.net"] {
        let t = std::time::Instant::now();
        let f = dig(fw.addr, &[q, "A", "+time=15"]);
        let took = t.elapsed();
        assert_eq!(f.status, "SERVFAIL", "{q}\n{}", f.raw);
        assert!(
            took <= bound,
            "{q}: SERVFAIL after {took:?}, more than {bound:?}\n{}",
            fw.log()
        );
        let u = dig(p.ub.addr(), &[q, "A", "+time=30"]);
        assert_eq!(essence(&f), essence(&u), "{q}\n{}\n{}", f.raw, u.raw);
    }
    // Each silent server was waited for once: asking the same servers the same question
    // again (as a retry without QNAME minimisation would, when the whole name was asked
    // already) only doubles the wait.
    let log = fw.log();
    for ns in ["127.53.98.1", "127.53.98.2"] {
        let waits = log
            .lines()
            .filter(|l| l.contains("timeout") && l.contains(&format!("server={ns}")))
            .count();
        assert_eq!(waits, 1, "{ns} waited for {waits} times:\n{log}");
    }
}

#[test]
fn big_answer_truncates_over_udp_and_completes_over_tcp() {
    let p = pair();
    let udp = dig(
        p.fw.addr,
        &["big.example.com", "TXT", "+ignore", "+bufsize=1232"],
    );
    assert!(udp.tc(), "{}", udp.raw);
    let r = same_as_unbound(&["big.example.com", "TXT"]);
    assert!(r.retried_tcp, "dig should have retried over TCP");
    assert_eq!(r.answer_rdata("TXT").len(), 12);
    let tcp = dig(p.fw.addr, &["big.example.com", "TXT", "+tcp"]);
    assert_eq!(tcp.answer_rdata("TXT").len(), 12);
}

#[test]
fn cache_answers_count_ttl_down_and_keep_client_case() {
    let p = pair();
    let a = dig(p.fw.addr, &["h7.load.test", "A"]);
    // Ask again until the TTL has dropped by 2 (at least 2 s later; a busy machine only makes
    // it later), for at most 30 s.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let b = loop {
        std::thread::sleep(std::time::Duration::from_millis(250));
        let b = dig(p.fw.addr, &["H7.LoAd.TeSt", "A"]);
        if b.answer
            .first()
            .is_some_and(|r| r.ttl + 2 <= a.answer[0].ttl)
            || std::time::Instant::now() > deadline
        {
            break b;
        }
    };
    assert_eq!(a.answer_rdata("A"), b.answer_rdata("A"));
    assert!(
        b.answer[0].ttl + 2 <= a.answer[0].ttl,
        "TTL must count down: {} then {}",
        a.answer[0].ttl,
        b.answer[0].ttl
    );
    assert!(
        b.raw.contains("H7.LoAd.TeSt."),
        "question case kept:\n{}",
        b.raw
    );
}

#[test]
fn edns_is_echoed_only_when_asked() {
    let p = pair();
    let with = dig(
        p.fw.addr,
        &["www.example.com", "A", "+edns=0", "+bufsize=4096"],
    );
    assert!(with.has_opt);
    assert_eq!(with.edns_udp, Some(1232), "payload = min(client, ours)");
    let without = dig(p.fw.addr, &["www.example.com", "A", "+noedns"]);
    assert!(!without.has_opt);
    let badvers = dig(
        p.fw.addr,
        &["www.example.com", "A", "+edns=1", "+noednsneg"],
    );
    assert_eq!(badvers.status, "BADVERS", "{}", badvers.raw);
}

/// The root has no DS: NOERROR, no answer, the root's SOA (and its NSEC, validated), as Unbound
/// answers, never SERVFAIL.
#[test]
fn ds_of_the_root_is_nodata() {
    let r = same_as_unbound(&[".", "DS", "+dnssec"]);
    assert_eq!((r.status.as_str(), r.answer.len()), ("NOERROR", 0));
    assert!(r.ad());
    assert!(r.authority_types().contains(&"SOA".to_string()));
}

/// A DNAME whose target does not exist: NXDOMAIN with the DNAME and the CNAME it implies.
#[test]
fn dname_to_a_name_that_does_not_exist() {
    let r = same_as_unbound(&["nx.old.example.com", "A", "+dnssec"]);
    assert_eq!(r.status, "NXDOMAIN");
    assert_eq!(r.answer_rdata("DNAME"), ["new.example.net."]);
    assert_eq!(r.answer_rdata("CNAME"), ["nx.new.example.net."]);
}

/// An unknown opcode: NOTIMP with the opcode (and RD) echoed and nothing else: no RA, AD, CD
/// or Z flag and no section (ISC's EDNS compliance tester checks exactly this). Here fraudwall
/// is stricter than Unbound 1.17, which echoes AD, CD and the question.
#[test]
fn unknown_opcode_is_a_bare_notimp() {
    let p = pair();
    {
        let r = dig(p.fw.addr, &["example.com", "+opcode=15", "+cd", "+noedns"]);
        assert_eq!(r.status, "NOTIMP", "{}", r.raw);
        assert!(r.raw.contains("opcode: RESERVED15"), "{}", r.raw);
        for flag in ["ra", "ad", "cd"] {
            assert!(!r.has_flag(flag), "{flag}: {}", r.raw);
        }
        assert!(r.has_flag("rd"), "{}", r.raw);
        assert!(
            r.raw
                .contains("QUERY: 0, ANSWER: 0, AUTHORITY: 0, ADDITIONAL: 0"),
            "{}",
            r.raw
        );
    }
}

/// Negative answers made from cached NSEC or NSEC3 records so far (its metric).
fn synthesised(fw: &Fraudwall) -> f64 {
    use std::io::{Read, Write};
    let addr = fw
        .logged_addr("metrics listening on http ")
        .expect("metrics address");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body.lines()
        .find_map(|l| {
            l.strip_prefix("fraudwall_nsec_synthesised_total ")?
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

/// Names under a signed zone that do not exist are answered from the validated NSEC records
/// already cached (RFC 8198), without asking the zone's servers: what keeps a random-subdomain
/// flood from costing an upstream query per name. The answers are what Unbound says.
#[test]
fn nonexistent_names_are_answered_from_cached_nsec() {
    let net = Fakenet::shared();
    let fw = Fraudwall::start(
        &config(net, "metrics:\n  listen: \"127.0.0.1:0\"\n"),
        &[("lists/unrelated.txt", "unrelated-fraud.test\n")],
    );
    let synthesised = || synthesised(&fw);
    // The first name after the zone's last name: its NXDOMAIN brings the NSEC that covers
    // every name after it, and the one that denies the wildcard.
    let first = dig(fw.addr, &["zz-first.example.com", "A", "+dnssec"]);
    assert_eq!(
        (first.status.as_str(), first.ad()),
        ("NXDOMAIN", true),
        "{}",
        first.raw
    );
    let before = synthesised();
    for i in 0..20 {
        let name = format!("zz-{i}-{}.example.com", std::process::id());
        let r = dig(fw.addr, &[&name, "A", "+dnssec"]);
        assert_eq!((r.status.as_str(), r.ad()), ("NXDOMAIN", true), "{}", r.raw);
        assert!(
            r.authority_types().contains(&"NSEC".to_string()),
            "{}",
            r.raw
        );
    }
    assert_eq!(
        synthesised() - before,
        20.0,
        "every one from the cached NSEC chain"
    );
    // Synthesised answers are the ones Unbound gives.
    let p = pair();
    let args = ["zz-unbound-check.example.com", "A", "+dnssec"];
    let (u, f) = (dig(p.ub.addr(), &args), dig(fw.addr, &args));
    assert_eq!(essence(&f), essence(&u), "{}\n{}", f.raw, u.raw);
}

/// The same under a zone signed with NSEC3 (no opt-out): once the chain's records are cached,
/// a name that does not exist is answered from them (closest encloser, next closer name and
/// wildcard covered), and so is a type missing at a name that exists. Unbound does not do this
/// for NSEC3; its answers from upstream are the reference.
#[test]
fn nonexistent_names_are_answered_from_cached_nsec3() {
    use hickory_proto::{dnssec::Nsec3HashAlgorithm, rr::Name};
    let net = Fakenet::shared();
    let fw = Fraudwall::start(
        &config(net, "metrics:\n  listen: \"127.0.0.1:0\"\n"),
        &[("lists/unrelated.txt", "unrelated-fraud.test\n")],
    );
    // The zone's NSEC3 chain as signed (0 iterations, no salt): every hashed owner.
    let signed = std::fs::read_to_string(net.state_dir.join("zones/example.net.signed")).unwrap();
    let mut owners: Vec<Vec<u8>> = signed
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(3) == Some(&"NSEC3")).then(|| {
                let label = f[0].split('.').next().unwrap().to_ascii_uppercase();
                data_encoding::BASE32HEX_NOPAD
                    .decode(label.as_bytes())
                    .unwrap()
            })
        })
        .collect();
    owners.sort();
    assert!(owners.len() >= 4, "{signed}");
    let hash = |n: &str| {
        let name = Name::from_ascii(n).unwrap();
        Nsec3HashAlgorithm::SHA1
            .hash(&[], &name, 0)
            .unwrap()
            .as_ref()
            .to_vec()
    };
    // The span a hash falls in: the index of the greatest owner below it (the last wraps).
    let span = |h: &[u8]| {
        owners
            .iter()
            .rposition(|o| o.as_slice() < h)
            .unwrap_or(owners.len() - 1)
    };
    // Warm the cache: one nonexistent name in every span, so each NSEC3 comes back once.
    let tag = std::process::id();
    let mut warmed = vec![false; owners.len()];
    for i in 0.. {
        if warmed.iter().all(|w| *w) {
            break;
        }
        assert!(i < 100_000, "no name hashes into some span");
        let name = format!("warm-{i}-{tag}.example.net");
        let s = span(&hash(&name));
        if !warmed[s] {
            warmed[s] = true;
            let r = dig(fw.addr, &[&name, "A", "+dnssec"]);
            assert_eq!((r.status.as_str(), r.ad()), ("NXDOMAIN", true), "{}", r.raw);
        }
    }
    let before = synthesised(&fw);
    for i in 0..20 {
        let name = format!("flood-{i}-{tag}.example.net");
        let r = dig(fw.addr, &[&name, "A", "+dnssec"]);
        assert_eq!((r.status.as_str(), r.ad()), ("NXDOMAIN", true), "{}", r.raw);
        assert!(
            r.authority_types().contains(&"NSEC3".to_string()),
            "{}",
            r.raw
        );
    }
    assert_eq!(
        synthesised(&fw) - before,
        20.0,
        "every nonexistent name from the cached NSEC3 chain"
    );
    // A type missing at a name that exists: the first NODATA brings the name's own NSEC3,
    // which then answers for another missing type.
    let r = dig(fw.addr, &["www.example.net", "TXT", "+dnssec"]);
    assert_eq!((r.status.as_str(), r.ad()), ("NOERROR", true), "{}", r.raw);
    let before = synthesised(&fw);
    let r = dig(fw.addr, &["www.example.net", "MX", "+dnssec"]);
    assert_eq!((r.status.as_str(), r.ad()), ("NOERROR", true), "{}", r.raw);
    assert!(r.answer.is_empty(), "{}", r.raw);
    assert_eq!(
        synthesised(&fw) - before,
        1.0,
        "NODATA from the cached NSEC3"
    );
    // Synthesised answers are the ones Unbound gives from upstream.
    let p = pair();
    for args in [
        ["zz-unbound-check.example.net", "A", "+dnssec"],
        ["www.example.net", "HINFO", "+dnssec"],
    ] {
        let (u, f) = (dig(p.ub.addr(), &args), dig(fw.addr, &args));
        assert_eq!(essence(&f), essence(&u), "{}\n{}", f.raw, u.raw);
    }
}

/// The SOA TTL of a negative answer (NXDOMAIN and NODATA) is min(SOA TTL, SOA MINIMUM)
/// (RFC 2308 §3, §5), as Unbound gives it: example.com has TTL 3600 > MINIMUM 300, negttl.net
/// TTL 120 < MINIMUM 900. NSD already lowers the SOA's TTL in its negative answers; rawsoa.net's
/// server does not (TTL 3600, MINIMUM 300), so there the resolver must. Fresh caches on both
/// sides, each name asked once: the TTLs are not aged (Unbound's may be a second less, if its
/// clock ticked between storing and answering).
#[test]
fn negative_answer_ttls_match_unbound() {
    let fw = fresh_fraudwall("", false);
    let ub = Unbound::start(Fakenet::shared(), None);
    let tag = std::process::id();
    let nx_example = format!("nx-ttl-{tag}.example.com");
    let nx_negttl = format!("nx-ttl-{tag}.negttl.net");
    let nx_rawsoa = format!("nx-ttl-{tag}.rawsoa.net");
    for (args, status, soa_ttl) in [
        ([nx_example.as_str(), "A"], "NXDOMAIN", 300),
        (["www.example.com", "TXT"], "NOERROR", 300),
        ([nx_negttl.as_str(), "A"], "NXDOMAIN", 120),
        (["www.negttl.net", "AAAA"], "NOERROR", 120),
        ([nx_rawsoa.as_str(), "A"], "NXDOMAIN", 300),
        (["www.rawsoa.net", "AAAA"], "NOERROR", 300),
    ] {
        let f = dig(fw.addr, &args);
        let u = dig(ub.addr(), &args);
        assert_eq!(essence(&f), essence(&u), "{args:?}\n{}\n{}", f.raw, u.raw);
        assert_eq!(
            (f.status.as_str(), f.answer.len()),
            (status, 0),
            "{}",
            f.raw
        );
        let soa = |r: &DigResult| {
            r.authority
                .iter()
                .find(|x| x.rtype == "SOA")
                .unwrap_or_else(|| panic!("no SOA\n{}", r.raw))
                .ttl
        };
        assert_eq!(soa(&f), soa_ttl, "{args:?}: our SOA TTL\n{}", f.raw);
        assert!(
            soa(&u) == soa_ttl || soa(&u) + 1 == soa_ttl,
            "{args:?}: Unbound's SOA TTL\n{}",
            u.raw
        );
    }
}

/// An answer of more than 4096 bytes (huge.example.com: 25 TXT strings, ~5.4 kB): truncated
/// over UDP even at a 4096-byte payload, complete over TCP, as Unbound.
#[test]
fn answer_over_4k_truncates_over_udp_and_completes_over_tcp() {
    let p = pair();
    let args = ["huge.example.com", "TXT", "+ignore", "+bufsize=4096"];
    let (f, u) = (dig(p.fw.addr, &args), dig(p.ub.addr(), &args));
    assert!(f.tc() && u.tc(), "TC over UDP\n{}\n{}", f.raw, u.raw);
    assert!(msg_size(&f) <= 4096, "{}", f.raw);
    let r = same_as_unbound(&["huge.example.com", "TXT", "+bufsize=4096"]);
    assert!(r.retried_tcp && r.over_tcp, "{}", r.raw);
    assert_eq!(r.answer_rdata("TXT").len(), 25);
    assert!(msg_size(&r) > 4096, "{}", r.raw);
    let r = same_as_unbound(&["huge.example.com", "TXT", "+tcp", "+dnssec"]);
    assert_eq!(r.answer_rdata("TXT").len(), 25);
    assert!(r.ad());
}

/// A client without EDNS may take 512 bytes over UDP: a bigger answer comes truncated (TC,
/// at most 512 bytes, no OPT), as Unbound sends it; dig then gets it all over TCP. Even one
/// that would fit the EDNS payload (mid.example.com, ~800 bytes).
#[test]
fn client_without_edns_gets_tc_within_512_bytes() {
    let p = pair();
    // mid.example.com (~800 bytes) fits the 1232 bytes of EDNS, not 512.
    let r = same_as_unbound(&["mid.example.com", "TXT"]);
    assert!(!r.retried_tcp && !r.tc(), "{}", r.raw);
    assert!(msg_size(&r) > 512, "{}", r.raw);
    for q in ["mid.example.com", "big.example.com", "huge.example.com"] {
        let args = [q, "TXT", "+noedns", "+ignore"];
        let (f, u) = (dig(p.fw.addr, &args), dig(p.ub.addr(), &args));
        for (who, r) in [("fraudwall", &f), ("unbound", &u)] {
            assert!(r.tc(), "{who}: {q}\n{}", r.raw);
            assert!(msg_size(r) <= 512, "{who}: {q}\n{}", r.raw);
            assert!(!r.has_opt, "{who}: {q}\n{}", r.raw);
        }
        assert_eq!(f.status, u.status);
        let r = same_as_unbound(&[q, "TXT", "+noedns"]);
        assert!(r.retried_tcp, "{}", r.raw);
    }
    // A small answer fits: no TC.
    let r = same_as_unbound(&["www.example.com", "A", "+noedns"]);
    assert!(!r.tc() && !r.has_opt, "{}", r.raw);
}

/// ANY. NSD answers it with one RRset of the name (RFC 8482), and both resolvers pass that
/// on; Unbound 1.17 adds the RRset's RRSIG even without DO (example.com ANY: SOA and its
/// RRSIG), fraudwall only with DO. What both agree on, and is checked: the RCODE, the AD flag,
/// and every record fraudwall gives (RRSIGs aside) is one Unbound gives.
#[test]
fn any_query_agrees_with_unbound_on_what_it_returns() {
    let p = pair();
    for args in [
        &["example.com", "ANY"][..],
        &["www.example.com", "ANY", "+dnssec"],
        &["www.insecure.org", "ANY"],
    ] {
        let (f, u) = (dig(p.fw.addr, args), dig(p.ub.addr(), args));
        assert_eq!(
            (f.status.as_str(), f.ad()),
            (u.status.as_str(), u.ad()),
            "{args:?}\n{}\n{}",
            f.raw,
            u.raw
        );
        assert_eq!(f.status, "NOERROR");
        let theirs = u.normalized_answer();
        let ours: Vec<String> = f
            .normalized_answer()
            .into_iter()
            .filter(|r| !r.contains(" RRSIG "))
            .collect();
        assert!(!ours.is_empty(), "{args:?}\n{}", f.raw);
        for r in &ours {
            assert!(
                theirs.contains(r),
                "{args:?}: {r} not in Unbound's answer\n{}\n{}",
                f.raw,
                u.raw
            );
        }
    }
}

/// A zone signed with NSEC3 opt-out (optout.net) and an insecure delegation in it
/// (unsigned.optout.net, no DS, left out of the chain). What is signed validates (AD); what
/// rests on an opt-out span is insecure (no AD): the delegation and everything below it, and
/// a name that does not exist, whose next closer name may be an unsigned delegation. Every
/// answer is Unbound's, and none is made up from the cached chain (RFC 8198 §4.5: opt-out
/// spans say nothing about names that are not there).
#[test]
fn nsec3_opt_out_spans_are_insecure_and_never_synthesised() {
    let fw = fresh_fraudwall("", true);
    let p = pair();
    let tag = std::process::id();
    let nx = format!("nx-{tag}.optout.net");
    let nx_below = format!("nx-{tag}.unsigned.optout.net");
    for (args, status, ad) in [
        (["www.optout.net", "A", "+dnssec"], "NOERROR", true),
        (["www.optout.net", "TXT", "+dnssec"], "NOERROR", true),
        (
            ["www.unsigned.optout.net", "A", "+dnssec"],
            "NOERROR",
            false,
        ),
        ([nx_below.as_str(), "A", "+dnssec"], "NXDOMAIN", false),
        ([nx.as_str(), "A", "+dnssec"], "NXDOMAIN", false),
    ] {
        let (f, u) = (dig(fw.addr, &args), dig(p.ub.addr(), &args));
        assert_eq!(essence(&f), essence(&u), "{args:?}\n{}\n{}", f.raw, u.raw);
        assert_eq!(
            (f.status.as_str(), f.ad()),
            (status, ad),
            "{args:?}\n{}",
            f.raw
        );
    }
    assert_eq!(
        dig(fw.addr, &["www.unsigned.optout.net", "A"]).answer_rdata("A"),
        ["198.18.8.3"]
    );
    // More names that do not exist, in the spans whose NSEC3 records are now cached.
    let before = synthesised(&fw);
    for i in 0..10 {
        let name = format!("nx-{i}-{tag}.optout.net");
        let (f, u) = (
            dig(fw.addr, &[&name, "A", "+dnssec"]),
            dig(p.ub.addr(), &[&name, "A", "+dnssec"]),
        );
        assert_eq!(essence(&f), essence(&u), "{name}\n{}\n{}", f.raw, u.raw);
    }
    assert_eq!(
        synthesised(&fw),
        before,
        "nothing synthesised from opt-out spans"
    );
}

/// Zones signed with other algorithms than the fakenet's ECDSAP256SHA256 (13): ED25519 (15)
/// and RSASHA256 (8). Validated as Unbound does (AD), their denials too.
#[test]
fn other_signing_algorithms_validate() {
    for (zone, alg) in [("ed25519.net", "15"), ("rsasha256.net", "8")] {
        let www = format!("www.{zone}");
        let r = same_as_unbound(&[&www, "A", "+dnssec"]);
        assert_eq!(r.status, "NOERROR", "{}", r.raw);
        assert!(r.ad(), "{}", r.raw);
        let sig = &r.answer_rdata("RRSIG")[0];
        assert_eq!(sig.split(' ').nth(1), Some(alg), "{sig}");
        let r = same_as_unbound(&[&format!("nx.{zone}"), "A", "+dnssec"]);
        assert_eq!((r.status.as_str(), r.ad()), ("NXDOMAIN", true), "{}", r.raw);
        let r = same_as_unbound(&[&www, "AAAA", "+dnssec"]);
        assert_eq!((r.status.as_str(), r.ad()), ("NOERROR", true), "{}", r.raw);
    }
}

/// A delegation whose only name server has only an IPv6 address (ns1.v6only.net AAAA ::1).
#[test]
fn ipv6_only_name_server() {
    let r = same_as_unbound(&["www.v6only.net", "A"]);
    assert_eq!(r.answer_rdata("A"), ["198.18.8.6"], "{}", r.raw);
    let r = same_as_unbound(&["nx.v6only.net", "A"]);
    assert_eq!(r.status, "NXDOMAIN", "{}", r.raw);
}

/// flaky.net has two servers; ns1 (127.53.51.1) silently drops its queries, though it answers
/// fast for steady.net, so a resolver that asked it for steady.net first tries it first. The
/// answers still come, from ns2, as Unbound's; the log shows ns1 was tried and timed out.
#[test]
fn server_silent_for_one_zone_falls_over_to_the_other() {
    let fw = fresh_fraudwall("  server_timeout_ms: 800\n", false);
    let p = pair();
    let r = dig(fw.addr, &["www.steady.net", "A"]);
    assert_eq!(r.answer_rdata("A"), ["198.18.8.8"], "{}", r.raw);
    dig(p.ub.addr(), &["www.steady.net", "A"]);
    for q in ["www.flaky.net", "flaky.net", "nx.flaky.net"] {
        let (f, u) = (
            dig(fw.addr, &[q, "A"]),
            dig(p.ub.addr(), &[q, "A", "+time=15"]),
        );
        assert_eq!(essence(&f), essence(&u), "{q}\n{}\n{}", f.raw, u.raw);
        assert_ne!(f.status, "SERVFAIL", "{q}\n{}", f.raw);
    }
    assert_eq!(
        dig(fw.addr, &["www.flaky.net", "A"]).answer_rdata("A"),
        ["198.18.8.7"]
    );
    let log = fw.log();
    assert!(
        log.lines()
            .any(|l| l.contains("timeout") && l.contains("127.53.51.1")),
        "ns1.flaky.net was never asked:\n{log}"
    );
}
