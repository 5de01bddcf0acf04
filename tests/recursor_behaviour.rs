//! What the real `fraudwall` binary asks the name servers, seen from their side: the fakenet's
//! logging relays (tests/fakenet/silent.py `--log`) write down every query they receive, and
//! the tests check the README's claims about the recursor against those logs: QNAME
//! minimisation, servers chosen by measured RTT, identical lookups in flight joined, and the
//! caps per zone, per client and overall (`resolver.max_inflight_per_zone`,
//! `max_inflight_per_client`, `max_inflight`).
//!
//! Zones (tests/fakenet/README.md): `observed.net` (ns1 127.53.52.1 relays at once, ns2
//! 127.53.52.2 after 150 ms; wildcard; `viaslow.net` is served through ns2 alone), its child zone
//! `cut.observed.net` (127.53.52.3), and `slow.net` (127.53.52.4, every query held 300 ms;
//! wildcard).

mod common;

use std::{
    net::{IpAddr, SocketAddr, UdpSocket},
    path::{Path, PathBuf},
    sync::Mutex,
    time::Duration,
};

use common::{Fakenet, Fraudwall, Unbound, dig};

/// The tests share the relays and read their in-flight counts: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fraudwall of its own (empty caches) resolving the fakenet with validation, with its
/// metrics endpoint and these extra `resolver:` keys (indented lines).
fn fraudwall(resolver: &str) -> Fraudwall {
    let net = Fakenet::shared();
    Fraudwall::start(
        &format!(
            "listen: [\"127.0.0.1:0\"]\n\
             resolver:\n  root_hints: {}\n  trust_anchor: {}\n  allow_private_servers: true\n{resolver}\
             blocklists:\n  dir: lists\n\
             metrics:\n  listen: \"127.0.0.1:0\"\n",
            net.hints.display(),
            net.trust_anchor.display()
        ),
        &[("lists/unrelated.txt", "unrelated-fraud.test\n")],
    )
}

const LIMITED_ZONE: &str = "fraudwall_recursor_limited_total{limit=\"zone\"}";
const LIMITED_CLIENT: &str = "fraudwall_recursor_limited_total{limit=\"client\"}";
const QUEUE_FULL: &str = "fraudwall_recursor_queue_full_total";

/// One query a relay received.
#[derive(Debug)]
struct Seen {
    /// Queries the relay held at that moment, this one included.
    inflight: usize,
    qtype: String,
    /// Lower case, with the final dot.
    qname: String,
}

/// A relay's query log, from the moment it was marked on.
struct RelayLog {
    path: PathBuf,
    from: u64,
}

impl RelayLog {
    /// The log at `path` (STATEDIR/silent/...), its lines from now on.
    fn mark(path: &Path) -> RelayLog {
        RelayLog {
            path: path.to_path_buf(),
            from: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        }
    }

    fn named(file: &str) -> RelayLog {
        Self::mark(&Fakenet::shared().state_dir.join("silent").join(file))
    }

    /// The queries received since the mark.
    fn seen(&self) -> Vec<Seen> {
        let text = std::fs::read(&self.path).unwrap_or_default();
        let start = usize::try_from(self.from).unwrap().min(text.len());
        String::from_utf8_lossy(&text[start..])
            .lines()
            .map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                assert_eq!(w.len(), 4, "log line {l:?} of {}", self.path.display());
                Seen {
                    inflight: w[1].parse().unwrap(),
                    qtype: w[2].to_string(),
                    qname: w[3].to_string(),
                }
            })
            .collect()
    }
}

/// A DNS query (RD, no EDNS) for `name` A with id `id`.
fn query(id: u16, name: &str) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        q.push(u8::try_from(label.len()).unwrap());
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// What a client got: the RCODE name (NOERROR, SERVFAIL...) and the A addresses anywhere in
/// the response that are in 198.18.9.0/24 (the relayed zones' data), or `NO-RESPONSE`.
#[derive(Debug, Clone, PartialEq)]
struct Got {
    rcode: String,
    has: Option<[u8; 4]>,
}

/// Sends every `(client address, name)` at once, each from a socket of its own with an id of
/// its own, and waits for every response (12 s at most each).
fn flood(fw: &Fraudwall, queries: &[(IpAddr, String)]) -> Vec<Got> {
    let sockets: Vec<(UdpSocket, u16)> = queries
        .iter()
        .enumerate()
        .map(|(i, (from, name))| {
            let s = UdpSocket::bind(SocketAddr::new(*from, 0)).expect("bind client socket");
            s.set_read_timeout(Some(Duration::from_secs(12))).unwrap();
            let id = 0x4000 + u16::try_from(i).unwrap();
            s.send_to(&query(id, name), fw.addr).unwrap();
            (s, id)
        })
        .collect();
    let handles: Vec<_> = sockets
        .into_iter()
        .map(|(s, id)| {
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                loop {
                    let Ok(n) = s.recv(&mut buf) else {
                        return Got {
                            rcode: "NO-RESPONSE".into(),
                            has: None,
                        };
                    };
                    let r = &buf[..n];
                    if n < 12 || u16::from_be_bytes([r[0], r[1]]) != id {
                        continue;
                    }
                    let rcode = match r[3] & 0x0f {
                        0 => "NOERROR".to_string(),
                        2 => "SERVFAIL".to_string(),
                        3 => "NXDOMAIN".to_string(),
                        5 => "REFUSED".to_string(),
                        c => format!("RCODE{c}"),
                    };
                    let has = r
                        .windows(4)
                        .find(|w| w[..3] == [198, 18, 9])
                        .map(|w| [w[0], w[1], w[2], w[3]]);
                    return Got { rcode, has };
                }
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

fn localhost(n: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, n])
}

/// Resolves one name of slow.net first, so that the delegation and the server's RTT are known
/// and what follows asks only slow.net's server.
fn warm_slow(fw: &Fraudwall) {
    let r = dig(fw.addr, &["warm.slow.net", "A"]);
    assert_eq!(r.status, "NOERROR", "{}", r.raw);
    assert_eq!(r.answer_rdata("A"), ["198.18.9.2"], "{}", r.raw);
}

/// How many of `got` are SERVFAIL, after checking that every other one is the answer.
fn servfails(got: &[Got]) -> usize {
    for g in got {
        assert!(
            g.rcode == "SERVFAIL" || (g.rcode == "NOERROR" && g.has == Some([198, 18, 9, 2])),
            "every client gets the answer or SERVFAIL: {got:?}"
        );
    }
    got.iter().filter(|g| g.rcode == "SERVFAIL").count()
}

// ---------------------------------------------------------------------- QNAME minimisation

/// The deep name and what each zone's servers saw while resolving it fresh.
fn minimisation_seen(resolver: SocketAddr) -> (Vec<Seen>, Vec<Seen>) {
    let parent = [
        RelayLog::named("observed-ns1.log"),
        RelayLog::named("observed-ns2.log"),
    ];
    let child = RelayLog::named("cut.log");
    let r = dig(resolver, &["a.b.c.d.cut.observed.net", "A"]);
    assert_eq!(r.status, "NOERROR", "{}", r.raw);
    assert_eq!(r.answer_rdata("A"), ["198.18.9.4"], "{}", r.raw);
    (parent.iter().flat_map(|l| l.seen()).collect(), child.seen())
}

/// RFC 9156: the servers of observed.net are asked only for one label more than they are known
/// to serve (`cut.observed.net`, where they refer to the child zone), never for the whole
/// name; the child zone's server is then asked one label more at a time, the whole name last.
fn assert_minimised(who: &str, parent: &[Seen], child: &[Seen]) {
    let deep = "d.cut.observed.net.";
    assert!(
        parent
            .iter()
            .all(|s| s.qname != deep && !s.qname.ends_with(&format!(".{deep}"))),
        "{who}: observed.net's servers were asked a name below the cut: {parent:?}"
    );
    assert!(
        parent.iter().any(|s| s.qname == "cut.observed.net."),
        "{who}: observed.net's servers were asked the next label: {parent:?}"
    );
    let mut steps: Vec<&str> = child
        .iter()
        .filter(|s| s.qname == deep || s.qname.ends_with(&format!(".{deep}")))
        .map(|s| s.qname.as_str())
        .collect();
    steps.dedup();
    assert_eq!(
        steps,
        [
            deep,
            "c.d.cut.observed.net.",
            "b.c.d.cut.observed.net.",
            "a.b.c.d.cut.observed.net."
        ],
        "{who}: the child zone's server, one label at a time: {child:?}"
    );
}

#[test]
fn qname_minimisation_hides_the_full_name_from_the_parent() {
    let _serial = serial();
    let fw = fraudwall("");
    let (parent, child) = minimisation_seen(fw.addr);
    assert_minimised("fraudwall", &parent, &child);
    // The minimised queries ask for A, as Unbound's do (RFC 9156 §2.1 allows A or NS).
    assert!(
        child
            .iter()
            .filter(|s| s.qname == "c.d.cut.observed.net.")
            .all(|s| s.qtype == "A"),
        "{child:?}"
    );

    // The reference: Unbound (qname-minimisation: yes) shows the same to both zones.
    let ub = Unbound::start(Fakenet::shared(), None);
    let (parent, child) = minimisation_seen(ub.addr());
    assert_minimised("unbound", &parent, &child);
}

// ---------------------------------------------------------------------- RTT-based choice

/// observed.net has a server that answers at once (ns1) and one that answers after 150 ms (ns2),
/// and ns2 is measured first (through viaslow.net, which it alone serves). The fast one must
/// still be found: after a warm-up, of 20 fresh names at least 80 % go to it (a count, not a
/// timing).
///
/// Before the fix, a server never asked counted as 300 ms and the order was strictly by RTT, so
/// ns1 was never asked at all (0 fast, 20 slow); now an unmeasured server's assumed RTT shrinks
/// each time it is passed over (servers.rs PASSED_OVER), and it is probed within a few queries.
#[test]
fn the_faster_server_gets_most_queries() {
    let _serial = serial();
    let fw = fraudwall("");
    let fast = RelayLog::named("observed-ns1.log");
    let r = dig(fw.addr, &["www.viaslow.net", "A"]);
    assert_eq!(r.answer_rdata("A"), ["198.18.9.3"], "{}", r.raw);
    // Warm-up: the delegation, and both servers measured.
    for i in 0..12 {
        let r = dig(fw.addr, &[&format!("warm{i}.observed.net"), "A"]);
        assert_eq!(r.answer_rdata("A"), ["198.18.9.1"], "{}", r.raw);
    }
    let warm_fast = fast
        .seen()
        .iter()
        .filter(|s| s.qname.starts_with("warm"))
        .count();
    assert!(
        warm_fast >= 1,
        "the unmeasured fast server was probed in the warm-up"
    );
    let fast = RelayLog::named("observed-ns1.log");
    let slow = RelayLog::named("observed-ns2.log");
    let n = 20;
    for i in 0..n {
        let r = dig(fw.addr, &[&format!("rtt{i}.observed.net"), "A"]);
        assert_eq!(r.answer_rdata("A"), ["198.18.9.1"], "{}", r.raw);
    }
    let count = |l: &RelayLog| {
        l.seen()
            .iter()
            .filter(|s| s.qname.starts_with("rtt"))
            .count()
    };
    let (to_fast, to_slow) = (count(&fast), count(&slow));
    assert!(
        to_fast + to_slow >= n,
        "every name was asked: {to_fast} + {to_slow}"
    );
    assert!(
        to_fast * 10 >= (to_fast + to_slow) * 8,
        "at least 80 % to the fast server: {to_fast} fast, {to_slow} slow"
    );
}

// ---------------------------------------------------------------------- joined lookups

/// 50 clients ask the same uncached name at once; its server takes 300 ms to answer. The server
/// is asked once, and every client gets the answer.
#[test]
fn identical_lookups_in_flight_are_joined() {
    let _serial = serial();
    let fw = fraudwall("");
    warm_slow(&fw);
    let log = RelayLog::named("slow.log");
    let queries: Vec<(IpAddr, String)> = (0..50)
        .map(|_| (localhost(1), "join.slow.net".to_string()))
        .collect();
    let got = flood(&fw, &queries);
    for g in &got {
        assert_eq!(g.rcode, "NOERROR", "{got:?}");
        assert_eq!(g.has, Some([198, 18, 9, 2]), "{got:?}");
    }
    let asked: Vec<Seen> = log
        .seen()
        .into_iter()
        .filter(|s| s.qname == "join.slow.net.")
        .collect();
    assert_eq!(asked.len(), 1, "slow.net's server asked once: {asked:?}");
}

// ---------------------------------------------------------------------- caps

/// `max_inflight_per_zone: 5`: 60 distinct names of slow.net at once. Five queries are
/// outstanding at a time, twenty lookups wait in line (four per slot), the rest get SERVFAIL
/// and are counted; slow.net's server never holds more than five.
#[test]
fn per_zone_cap_bounds_the_queries_to_a_slow_zone() {
    let _serial = serial();
    let fw = fraudwall("  max_inflight_per_zone: 5\n");
    warm_slow(&fw);
    let log = RelayLog::named("slow.log");
    let before = fw.metric(LIMITED_ZONE);
    let queries: Vec<(IpAddr, String)> = (0..60)
        .map(|i| (localhost(1), format!("zone{i}.slow.net")))
        .collect();
    let got = flood(&fw, &queries);
    let failed = servfails(&got);
    let limited = fw.metric(LIMITED_ZONE) - before;
    let seen = log.seen();
    let most = seen.iter().map(|s| s.inflight).max().unwrap_or(0);
    assert!(
        most <= 5,
        "at most 5 outstanding at slow.net's server: {seen:?}"
    );
    assert!(
        failed >= 1,
        "some lookups beyond the cap and its line: {got:?}"
    );
    assert_eq!(
        limited, failed as f64,
        "each SERVFAIL counted as limit=zone"
    );
    let answered = got.len() - failed;
    assert!(answered >= 5, "the cap's worth answered: {got:?}");
    let asked = seen.iter().filter(|s| s.qname.starts_with("zone")).count();
    assert_eq!(asked, answered, "the server saw exactly the names answered");
}

/// `max_inflight_per_client: 3`: one client floods 20 distinct slow names, beyond its three
/// the misses get SERVFAIL at once (counted as limit=client); another client is still served.
#[test]
fn per_client_cap_refuses_the_flooding_client_only() {
    let _serial = serial();
    let fw = fraudwall("  max_inflight_per_client: 3\n");
    warm_slow(&fw);
    let log = RelayLog::named("slow.log");
    let before = fw.metric(LIMITED_CLIENT);
    let mut queries: Vec<(IpAddr, String)> = (0..20)
        .map(|i| (localhost(1), format!("client{i}.slow.net")))
        .collect();
    queries.push((localhost(2), "other.slow.net".to_string()));
    let got = flood(&fw, &queries);
    let other = got.last().unwrap().clone();
    assert_eq!(
        other.rcode, "NOERROR",
        "the other client is served: {got:?}"
    );
    let failed = servfails(&got[..20]);
    let limited = fw.metric(LIMITED_CLIENT) - before;
    assert!(failed >= 1, "the flooding client is capped: {got:?}");
    assert!(20 - failed >= 3, "its first three are answered: {got:?}");
    assert_eq!(
        limited, failed as f64,
        "each SERVFAIL counted as limit=client"
    );
    let seen = log.seen();
    let most = seen.iter().map(|s| s.inflight).max().unwrap_or(0);
    assert!(
        most <= 3 + 1,
        "3 of the flooder + 1 other at most: {seen:?}"
    );
}

/// `max_inflight: 4`: 20 distinct slow names at once (from four clients); beyond four misses
/// being resolved the rest get SERVFAIL at once, counted in the queue-full counter.
#[test]
fn max_inflight_caps_every_miss() {
    let _serial = serial();
    let fw = fraudwall("  max_inflight: 4\n");
    warm_slow(&fw);
    let log = RelayLog::named("slow.log");
    let before = fw.metric(QUEUE_FULL);
    let queries: Vec<(IpAddr, String)> = (0..20u8)
        .map(|i| (localhost(1 + i % 4), format!("all{i}.slow.net")))
        .collect();
    let got = flood(&fw, &queries);
    let failed = servfails(&got);
    let full = fw.metric(QUEUE_FULL) - before;
    assert!(failed >= 1, "misses beyond the cap: {got:?}");
    assert!(20 - failed >= 4, "the cap's worth answered: {got:?}");
    assert_eq!(full, failed as f64, "each SERVFAIL counted as queue full");
    let seen = log.seen();
    let most = seen.iter().map(|s| s.inflight).max().unwrap_or(0);
    assert!(most <= 4, "at most 4 at the server: {seen:?}");
}
