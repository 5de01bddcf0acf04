//! The answer cache seen from a client: raw UDP queries to the real binary resolving the
//! loopback hierarchy.

mod common;

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream, UdpSocket},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use common::{Fakenet, Fraudwall, dig};
use hickory_proto::{
    op::{Message, MessageType, OpCode, ResponseCode},
    rr::{RData, Record, RecordType, rdata::A},
};

fn start(extra: &str) -> Fraudwall {
    let net = Fakenet::shared();
    let cfg = format!(
        "listen: [\"127.0.0.1:0\"]\n\
         resolver:\n  root_hints: {}\n  trust_anchor: {}\n  allow_private_servers: true\n{extra}\
         blocklists:\n  dir: lists\n",
        net.hints.display(),
        net.trust_anchor.display()
    );
    Fraudwall::start(&cfg, &[("lists/fraud.txt", "fraudwall-demo.test\n")])
}

/// A query in wire form with the given ID and name spelling, EDNS with DO.
fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1]);
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    // OPT: root, type 41, payload 1232, DO.
    q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]);
    q
}

fn ask(server: SocketAddr, packet: &[u8]) -> Vec<u8> {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.send_to(packet, server).unwrap();
    let mut buf = vec![0u8; 4096];
    let (n, _) = s.recv_from(&mut buf).expect("an answer");
    buf.truncate(n);
    buf
}

/// The answer with ID, TTLs and question case normalised, so two answers can be compared
/// byte for byte.
fn normalise(mut b: Vec<u8>) -> Vec<u8> {
    b[0] = 0;
    b[1] = 0;
    let m = Message::from_vec(&b).unwrap();
    let qlen = {
        let mut at = 12;
        while b[at] != 0 {
            at += 1 + b[at] as usize;
        }
        at + 1
    };
    b[12..qlen].make_ascii_lowercase();
    // Zero every TTL field: walk the records with their known sizes.
    let mut at = qlen + 4;
    let records = m.answers.len() + m.authorities.len() + m.additionals.len() + 1; // + OPT
    for _ in 0..records {
        while b[at] != 0 && b[at] & 0xc0 != 0xc0 {
            at += 1 + b[at] as usize;
        }
        at += if b[at] == 0 { 1 } else { 2 };
        let ttl = at + 4;
        let rdlen = u16::from_be_bytes([b[at + 8], b[at + 9]]) as usize;
        if u16::from_be_bytes([b[at], b[at + 1]]) != 41 {
            b[ttl..ttl + 4].fill(0);
        }
        at += 10 + rdlen;
    }
    b
}

/// One series of the metrics endpoint (`GET /metrics`), 0 when absent.
fn metric(metrics: SocketAddr, series: &str) -> u64 {
    let mut s = TcpStream::connect(metrics).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

#[test]
fn cached_answer_is_the_resolved_answer_byte_for_byte_but_id_ttl_and_case() {
    let fw = start("metrics:\n  listen: \"127.0.0.1:0\"\n");
    let metrics = fw
        .logged_addr("metrics listening on http ")
        .expect("metrics endpoint logged");
    // (hits, misses) of the answer cache: tells a cached answer from one resolved again, which
    // the bytes alone cannot (the recursor's own caches would give the same bytes).
    let counts = || {
        (
            metric(metrics, "fraudwall_cache_hits_total"),
            metric(metrics, "fraudwall_cache_misses_total"),
        )
    };
    for (name, qtype) in [
        ("www.example.com", 1u16),
        ("nx.example.com", 1),
        ("aonly.example.com", 28),
        ("cdn.example.com", 1),
        ("foo.wild.example.com", 1),
    ] {
        let (hits, misses) = counts();
        let first = ask(fw.addr, &query(0x1111, name, qtype)); // a miss: resolved now
        assert_eq!(&first[..2], &[0x11, 0x11]);
        assert_eq!(
            counts(),
            (hits, misses + 1),
            "{name}: first query is a miss"
        );
        let shouted = name.to_uppercase();
        let second = ask(fw.addr, &query(0x2222, &shouted, qtype)); // from cache
        assert_eq!(
            counts(),
            (hits + 1, misses + 1),
            "{name}: second query is a hit"
        );
        assert_eq!(&second[..2], &[0x22, 0x22], "ID rewritten");
        assert_eq!(
            &second[12..12 + shouted.len()],
            &query(0, &shouted, qtype)[12..12 + shouted.len()],
            "client's case restored"
        );
        assert_eq!(normalise(first), normalise(second), "{name}");
    }
}

#[test]
fn negative_answers_expire() {
    const TTL: u32 = 3;
    let fw = start(&format!("  cache:\n    max_negative_ttl: {TTL}\n"));
    let soa_ttl =
        |r: &common::DigResult| r.authority.iter().find(|x| x.rtype == "SOA").unwrap().ttl;
    let asked = Instant::now();
    let first = dig(fw.addr, &["expire-me.example.com", "A"]);
    assert_eq!(first.status, "NXDOMAIN");
    assert_eq!(soa_ttl(&first), TTL, "negative TTL clamped");
    // Counting down, never faster than the clock allows (the entry is no older than the time
    // since the first query was sent), then back at the full TTL once expired and resolved again.
    let deadline = asked + Duration::from_secs(30);
    let mut counted_down = false;
    loop {
        assert!(Instant::now() < deadline, "never expired and re-resolved");
        std::thread::sleep(Duration::from_millis(200));
        let r = dig(fw.addr, &["expire-me.example.com", "A"]);
        let age_bound = asked.elapsed().as_secs() as u32;
        assert_eq!(r.status, "NXDOMAIN");
        let ttl = soa_ttl(&r);
        if counted_down && ttl == TTL {
            break; // expired, resolved again
        }
        assert!(ttl <= TTL, "{ttl}");
        assert!(
            ttl >= TTL.saturating_sub(age_bound),
            "TTL {ttl} after at most {age_bound} s"
        );
        counted_down |= ttl < TTL;
    }
}

/// An upstream for `mode: forward` that the test controls (UDP, 127.0.0.1, a free port). Every
/// question is answered with one A record of TTL `ttl` and address 198.18.9.N, N counting the
/// questions for that name so far, so a refreshed answer differs from the first. It logs every
/// question, can hold back its answers to repeated questions until released, and can be stopped.
struct Upstream {
    addr: SocketAddr,
    state: Arc<UpstreamState>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct UpstreamState {
    /// Lowercased question names, in order of arrival.
    asked: Mutex<Vec<String>>,
    /// Hold the answer to a name's second and later questions until `release` (or 5 s).
    hold_repeats: AtomicBool,
    /// Answer a name's second and later questions with SERVFAIL.
    fail_repeats: AtomicBool,
    release: AtomicBool,
    stop: AtomicBool,
}

impl Upstream {
    fn start(ttl: u32, repeats: Repeats) -> Upstream {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let state = Arc::new(UpstreamState::default());
        state
            .hold_repeats
            .store(repeats == Repeats::Hold, Ordering::SeqCst);
        state
            .fail_repeats
            .store(repeats == Repeats::Fail, Ordering::SeqCst);
        let st = state.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !st.stop.load(Ordering::SeqCst) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(q) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let Some(question) = q.queries.first().cloned() else {
                    continue;
                };
                let name = question.name().to_lowercase().to_string();
                let nth = {
                    let mut asked = st.asked.lock().unwrap();
                    asked.push(name.clone());
                    asked.iter().filter(|n| **n == name).count()
                };
                let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
                r.metadata.recursion_desired = q.metadata.recursion_desired;
                r.metadata.recursion_available = true;
                r.add_query(question.clone());
                if nth > 1 && st.fail_repeats.load(Ordering::SeqCst) {
                    r.metadata.response_code = ResponseCode::ServFail;
                } else if question.query_type() == RecordType::A {
                    r.answers.push(Record::from_rdata(
                        question.name().clone(),
                        ttl,
                        RData::A(A::new(198, 18, 9, nth as u8)),
                    ));
                }
                let wire = r.to_vec().unwrap();
                let reply = socket.try_clone().unwrap();
                let st = st.clone();
                let hold = nth > 1 && st.hold_repeats.load(Ordering::SeqCst);
                std::thread::spawn(move || {
                    let until = Instant::now() + Duration::from_secs(5);
                    while hold && !st.release.load(Ordering::SeqCst) && Instant::now() < until {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    let _ = reply.send_to(&wire, from);
                });
            }
        });
        Upstream {
            addr,
            state,
            thread: Some(thread),
        }
    }

    /// How many questions for `name` (lowercase, fully qualified) arrived so far.
    fn asked(&self, name: &str) -> usize {
        let asked = self.state.asked.lock().unwrap();
        asked.iter().filter(|n| *n == name).count()
    }

    /// Lets the held answers go.
    fn release(&self) {
        self.state.release.store(true, Ordering::SeqCst);
    }

    /// Closes the socket: from now on nothing answers at this address.
    fn stop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

/// What the [`Upstream`] does with a name's second and later questions.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Repeats {
    Answer,
    Hold,
    Fail,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A fraudwall forwarding to `upstream` over UDP, with `extra` under `resolver.cache:`.
fn start_forwarding(upstream: &Upstream, cache: &str) -> Fraudwall {
    let cfg = format!(
        "listen: [\"127.0.0.1:0\"]\n\
         resolver:\n  mode: forward\n  timeout_ms: 6000\n  forwarders:\n    - address: \"{}\"\n\
         \x20 cache:\n    serve_stale: false\n{cache}\
         blocklists:\n  dir: lists\n",
        upstream.addr
    );
    Fraudwall::start(&cfg, &[("lists/fraud.txt", "fraudwall-demo.test\n")])
}

/// The second answer comes from the cache: it still comes when the upstream is gone.
#[test]
fn a_cached_answer_needs_no_upstream() {
    let mut upstream = Upstream::start(3600, Repeats::Answer);
    let fw = start_forwarding(&upstream, "");
    let first = dig(fw.addr, &["www.fw.test", "A"]);
    assert_eq!(first.answer_rdata("A"), ["198.18.9.1"], "{}", first.raw);
    assert_eq!(upstream.asked("www.fw.test."), 1);
    upstream.stop();
    let second = dig(fw.addr, &["WWW.FW.TEST", "A"]);
    assert_eq!(second.status, "NOERROR");
    assert_eq!(second.answer_rdata("A"), ["198.18.9.1"], "{}", second.raw);
    assert!(second.answer[0].ttl <= 3600);
    // The upstream really is gone: a name not cached fails.
    let other = dig(fw.addr, &["other.fw.test", "A", "+time=10"]);
    assert_eq!(other.status, "SERVFAIL", "{}", other.raw);
}

/// Prefetch (Unbound's rule: a hit in the last tenth of the TTL; here also only for an entry
/// asked at least three times): the upstream is asked again before the entry expires, clients
/// keep getting the cached answer while it is out, and then the renewed one (full TTL again).
#[test]
fn a_popular_entry_is_refreshed_before_it_expires() {
    const TTL: u32 = 20;
    let upstream = Upstream::start(TTL, Repeats::Hold);
    let fw = start_forwarding(&upstream, "    prefetch: true\n");
    let name = "pop.fw.test.";
    let a = |r: &common::DigResult| (r.answer_rdata("A"), r.answer.first().map(|x| x.ttl));
    let first = dig(fw.addr, &[name, "A"]);
    assert_eq!(a(&first), (vec!["198.18.9.1".to_string()], Some(TTL)));
    let deadline = Instant::now() + Duration::from_secs(3 * TTL as u64);
    let mut while_out = Vec::new(); // answers given while the refresh was at the upstream
    let mut last_old_ttl = TTL;
    let renewed = loop {
        assert!(Instant::now() < deadline, "no refresh:\n{}", fw.log());
        std::thread::sleep(Duration::from_millis(200));
        let r = dig(fw.addr, &[name, "A"]);
        let refresh_out = upstream.asked(name) > 1;
        match a(&r) {
            (addr, Some(ttl)) if addr == ["198.18.9.1"] => {
                assert!(
                    ttl <= last_old_ttl,
                    "counts down: {ttl} after {last_old_ttl}"
                );
                last_old_ttl = ttl;
                if refresh_out {
                    while_out.push(ttl);
                    if while_out.len() == 2 {
                        upstream.release();
                    }
                }
            }
            (addr, Some(ttl)) if addr == ["198.18.9.2"] => break ttl,
            other => panic!("unexpected answer {other:?}:\n{}", r.raw),
        }
    };
    assert_eq!(
        while_out.len(),
        2,
        "the refresh was out while the cached answer was served: {while_out:?}"
    );
    assert!(
        while_out.iter().all(|&t| (1..=TTL / 10).contains(&t)),
        "the refresh went out in the last tenth of the TTL, before expiry: {while_out:?}"
    );
    assert!(renewed > last_old_ttl + TTL / 2, "TTL renewed: {renewed}");
    assert_eq!(upstream.asked(name), 2, "one refresh, no miss");
}

/// `prefetch: false`: the upstream is not asked before the entry expires; the first query after
/// expiry is a miss and waits for the new answer.
#[test]
fn without_prefetch_an_entry_is_only_renewed_after_it_expires() {
    const TTL: u32 = 20;
    let upstream = Upstream::start(TTL, Repeats::Answer);
    let fw = start_forwarding(&upstream, "    prefetch: false\n");
    let name = "pop.fw.test.";
    let first = dig(fw.addr, &[name, "A"]);
    assert_eq!(first.answer_rdata("A"), ["198.18.9.1"]);
    let deadline = Instant::now() + Duration::from_secs(3 * TTL as u64);
    loop {
        assert!(Instant::now() < deadline, "never renewed:\n{}", fw.log());
        std::thread::sleep(Duration::from_millis(200));
        let r = dig(fw.addr, &[name, "A"]);
        let asked = upstream.asked(name);
        if r.answer_rdata("A") == ["198.18.9.2"] {
            assert_eq!(r.answer[0].ttl, TTL, "a fresh answer");
            break;
        }
        assert_eq!(r.answer_rdata("A"), ["198.18.9.1"], "{}", r.raw);
        assert_eq!(
            asked, 1,
            "asked again while TTL {} was left",
            r.answer[0].ttl
        );
    }
    assert_eq!(upstream.asked(name), 2);
}

/// The block check comes before the cache: a list swapped in blocks a name that is cached, on
/// the very next query, and removing it lets the cached answer through again at once.
#[test]
fn a_list_swap_takes_effect_on_the_next_query_for_a_cached_name() {
    let fw = start("");
    let before = dig(fw.addr, &["www.example.com", "A"]);
    assert_eq!(before.answer_rdata("A"), ["198.18.0.10"]); // now cached
    let list = fw.dir.path().join("lists/late.txt");
    std::fs::write(&list, "example.com\n").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = dig(fw.addr, &["www.example.com", "A"]);
        if r.answer_rdata("A") == ["127.0.0.1"] {
            break;
        }
        assert_eq!(
            r.answer_rdata("A"),
            ["198.18.0.10"],
            "old answer until the swap"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "list never enforced:\n{}",
            fw.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::remove_file(&list).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = dig(fw.addr, &["www.example.com", "A"]);
        if r.answer_rdata("A") == ["198.18.0.10"] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never unblocked:\n{}",
            fw.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A refresh that fails does not replace the entry it was to renew: clients get the cached
/// answer until it expires (and only then the upstream's failure).
#[test]
fn a_failed_prefetch_keeps_the_cached_answer_until_it_expires() {
    const TTL: u32 = 20;
    let upstream = Upstream::start(TTL, Repeats::Fail);
    let fw = start_forwarding(&upstream, "    prefetch: true\n");
    let name = "pop.fw.test.";
    let asked = Instant::now();
    let first = dig(fw.addr, &[name, "A"]);
    assert_eq!(first.answer_rdata("A"), ["198.18.9.1"]);
    let deadline = asked + Duration::from_secs(3 * TTL as u64);
    loop {
        assert!(Instant::now() < deadline, "never failed:\n{}", fw.log());
        std::thread::sleep(Duration::from_millis(200));
        let r = dig(fw.addr, &[name, "A"]);
        // The entry was stored after `asked`: until TTL seconds after it, it is fresh.
        let fresh = asked.elapsed() < Duration::from_secs(TTL as u64);
        if r.answer_rdata("A") == ["198.18.9.1"] {
            continue;
        }
        assert!(
            !fresh,
            "{} while the cached answer was fresh (refresh asked: {}):\n{}",
            r.status,
            upstream.asked(name) > 1,
            r.raw
        );
        assert_eq!(r.status, "SERVFAIL", "{}", r.raw);
        break;
    }
    assert!(
        upstream.asked(name) >= 2,
        "the refresh or the miss asked again"
    );
}
