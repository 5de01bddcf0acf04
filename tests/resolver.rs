//! The real `fraudwall` binary resolving the loopback hierarchy (tests/fakenet), queried with the
//! real `dig`, side by side with a reference Unbound resolving the same hierarchy: for every
//! query below fraudwall must answer as Unbound does (RCODE, AD, answer RRsets, authority types).

mod common;

use std::sync::OnceLock;

use common::{DigResult, Fakenet, Fraudwall, Unbound, dig};

/// A fraudwall resolving the fakenet with DNSSEC validation from the DS trust anchor.
fn config(net: &Fakenet, extra: &str) -> String {
    format!(
        "listen: [\"127.0.0.1:0\"]\n\
         resolver:\n  root_hints: {}\n  trust_anchor: {}\n  allow_private_servers: true\n\
         blocklists:\n  dir: lists\n{extra}",
        net.hints.display(),
        net.trust_anchor.display()
    )
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

#[test]
fn dead_delegation_is_servfail_within_our_deadline() {
    // An answer at all (dig waits up to 15 s): SERVFAIL, not silence.
    let r = dig(pair().fw.addr, &["www.dead.net", "A", "+time=15"]);
    assert_eq!(r.status, "SERVFAIL", "{}", r.raw);
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
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let b = dig(p.fw.addr, &["H7.LoAd.TeSt", "A"]);
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
