//! The answer cache seen from a client: raw UDP queries to the real binary resolving the
//! loopback hierarchy.

mod common;

use std::{
    net::{SocketAddr, UdpSocket},
    time::Duration,
};

use common::{Fakenet, Fraudwall, dig};
use hickory_proto::op::Message;

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

#[test]
fn cached_answer_is_the_resolved_answer_byte_for_byte_but_id_ttl_and_case() {
    let fw = start("");
    for (name, qtype) in [
        ("www.example.com", 1u16),
        ("nx.example.com", 1),
        ("aonly.example.com", 28),
        ("cdn.example.com", 1),
        ("foo.wild.example.com", 1),
    ] {
        let first = ask(fw.addr, &query(0x1111, name, qtype)); // a miss: resolved now
        assert_eq!(&first[..2], &[0x11, 0x11]);
        std::thread::sleep(Duration::from_millis(1100));
        let shouted = name.to_uppercase();
        let second = ask(fw.addr, &query(0x2222, &shouted, qtype)); // from cache
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
    let fw = start("  cache:\n    max_negative_ttl: 2\n");
    let soa_ttl =
        |r: &common::DigResult| r.authority.iter().find(|x| x.rtype == "SOA").unwrap().ttl;
    let first = dig(fw.addr, &["expire-me.example.com", "A"]);
    assert_eq!(first.status, "NXDOMAIN");
    assert_eq!(soa_ttl(&first), 2, "negative TTL clamped");
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        soa_ttl(&dig(fw.addr, &["expire-me.example.com", "A"])),
        1,
        "counting down"
    );
    std::thread::sleep(Duration::from_millis(1500));
    let again = dig(fw.addr, &["expire-me.example.com", "A"]);
    assert_eq!(again.status, "NXDOMAIN");
    assert_eq!(soa_ttl(&again), 2, "expired, resolved again");
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
