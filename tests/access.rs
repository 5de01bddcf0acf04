//! Access control (`access.allow`) on every way in: UDP and TCP, IPv4 and IPv6, with the real
//! binary and the real `dig`. A client outside the list gets REFUSED over UDP, and over TCP its
//! connection is closed as soon as it is accepted (`src/server/tcp.rs`: no byte is read or
//! written, `fraudwall_tcp_refused_total{reason="acl"}` counts it).
//!
//! The names asked are on a list, and the upstream is a socket that never answers: the ACL is
//! checked before the list, so a sinkhole answer shows a client was let in, and no fakenet is
//! needed.

mod common;

use std::{
    io::{ErrorKind, Read, Write},
    net::{SocketAddr, TcpStream, UdpSocket},
    time::{Duration, Instant},
};

use common::{Fraudwall, dig};

const SINK4: &str = "198.18.255.1";

/// An instance listening on `listen` that lets in `allow`, with `blocked.test` listed (sinkhole).
fn start(listen: &str, allow: &str, upstream: &UdpSocket) -> Fraudwall {
    let cfg = format!(
        "listen: [\"{listen}\"]\n\
         resolver:\n  mode: forward\n  forwarders:\n    - address: \"{}\"\n  dnssec: off\n\
         sinkhole:\n  ipv4: {SINK4}\n\
         access:\n  allow: [{allow}]\n\
         blocklists:\n  dir: lists\n\
         metrics:\n  listen: \"127.0.0.1:0\"\n",
        upstream.local_addr().unwrap()
    );
    Fraudwall::start(&cfg, &[("lists/fraud.txt", "blocked.test\n")])
}

/// A socket that takes the upstream queries and never answers them.
fn silent_upstream() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").unwrap()
}

/// Sends one query over a fresh TCP connection and reads the answer: `Some(bytes read)` if
/// the server closed the connection (0: without a word), `None` if it held it open for 5 s.
fn tcp_exchange(addr: SocketAddr) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    q.extend_from_slice(b"\x07blocked\x04test\x00\x00\x01\x00\x01");
    let mut frame = (q.len() as u16).to_be_bytes().to_vec();
    frame.extend_from_slice(&q);
    // The server may already have closed: a failed write is part of the answer.
    let _ = s.write_all(&frame);
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Some(got),
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                // A whole answer came: the connection was served.
                if got.len() >= 2 && got.len() >= 2 + u16::from_be_bytes([got[0], got[1]]) as usize
                {
                    return Some(got);
                }
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return Some(got),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return None;
            }
            Err(e) => panic!("reading from {addr}: {e}"),
        }
    }
}

const ACL_REFUSED: &str = "fraudwall_tcp_refused_total{reason=\"acl\"}";

/// Asserts that `fw` (which does not let the querying address in) refuses over UDP and closes
/// TCP connections at accept, counting each.
fn assert_refused_everywhere(fw: &Fraudwall) {
    let r = dig(fw.addr, &["blocked.test", "A"]);
    assert_eq!(r.status, "REFUSED", "{}", r.raw);
    assert!(r.answer.is_empty(), "not even a blocked answer leaks");

    let refused_before = fw.metric(ACL_REFUSED);
    let started = Instant::now();
    let r = dig(fw.addr, &["blocked.test", "A", "+tcp", "+time=5"]);
    assert_eq!(r.status, "NO-RESPONSE", "{}", r.raw);
    assert!(r.answer.is_empty() && r.exit_code != 0, "{}", r.raw);
    assert!(
        r.raw.contains("end of file") || r.raw.contains("connection reset"),
        "closed by the server, not timed out: {}",
        r.raw
    );
    // Closed at once, not left to dig's 5 s timeout.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "dig waited {:?}: {}",
        started.elapsed(),
        r.raw
    );
    let got = tcp_exchange(fw.addr).expect("the connection is closed, not held open");
    assert!(got.is_empty(), "not a byte for a refused client: {got:?}");
    // dig's connection and ours.
    let refused = fw.metric(ACL_REFUSED) - refused_before;
    assert_eq!(refused, 2.0, "each connection counted");
}

/// Asserts that `fw` lets the querying address in over UDP and TCP.
fn assert_answers_everywhere(fw: &Fraudwall) {
    let r = dig(fw.addr, &["blocked.test", "A"]);
    assert_eq!(r.answer_rdata("A"), [SINK4], "{}", r.raw);
    let r = dig(fw.addr, &["blocked.test", "A", "+tcp"]);
    assert_eq!(r.answer_rdata("A"), [SINK4], "{}", r.raw);
    assert!(r.over_tcp);
    let got = tcp_exchange(fw.addr).expect("an answer");
    assert!(got.len() > 14, "a whole answer: {got:?}");
    assert_eq!(&got[2..4], &[0x12, 0x34], "our query's id");
    assert_eq!(fw.metric(ACL_REFUSED), 0.0);
}

#[test]
fn tcp_from_outside_access_allow_is_closed_at_accept() {
    let upstream = silent_upstream();
    let fw = start("127.0.0.1:0", "10.0.0.0/8, \"::1/128\"", &upstream);
    assert_refused_everywhere(&fw);
    // The server is fine: it just does not serve 127.0.0.1.
    let open = start("127.0.0.1:0", "127.0.0.0/8", &upstream);
    assert_answers_everywhere(&open);
}

#[test]
fn ipv6_clients_are_checked_against_access_allow() {
    let upstream = silent_upstream();
    // ::1 is not in 127.0.0.0/8 (only IPv4-mapped addresses are checked as IPv4).
    let fw = start("[::1]:0", "127.0.0.0/8, \"2001:db8::/32\"", &upstream);
    assert!(fw.addr.is_ipv6());
    assert_refused_everywhere(&fw);
    let fw = start("[::1]:0", "10.0.0.0/8, \"::1/128\"", &upstream);
    assert_answers_everywhere(&fw);
}
