//! The engine driven in-process, with a stub upstream: no binary, no `dig`, no root. Each test
//! builds an engine from validated config sections, sends it query bytes and reads the answer
//! bytes; the last ones serve it on bound sockets through `server::run` with a shutdown future.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use fraudwall::{
    blocklist::{
        Action, Blocklist, Compiler, Format, ListInfo, ListKind, MatchMode, Publisher,
        SharedBlocklist,
    },
    dns::{
        Transport,
        blocked::SinkholeConfig,
        cache::{Cache, CacheConfig},
    },
    resolve::{Question, Resolve, Resolved, Security},
    server::{
        self, AccessConfig, ServerConfig,
        engine::{BlockHit, BlockObserver, Engine, Parts},
    },
};
use hickory_proto::{
    op::{Edns, Message, MessageType, OpCode, Query, ResponseCode},
    rr::{Name, RData, Record, RecordType, rdata, rdata::opt::EdnsOption},
};

/// An upstream with canned answers by name; anything else is NXDOMAIN. Counts its calls.
#[derive(Default)]
struct Stub {
    answers: HashMap<Name, Vec<Record>>,
    calls: AtomicUsize,
    /// Answer SERVFAIL to everything (a dead upstream).
    failing: std::sync::atomic::AtomicBool,
}

impl Stub {
    fn with(mut self, name: &str, records: Vec<Record>) -> Stub {
        self.answers
            .insert(Name::from_ascii(name).unwrap(), records);
        self
    }
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl Resolve for Stub {
    async fn resolve(&self, q: &Question) -> Resolved {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut m = Message::new(0, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(q.name.clone(), q.qtype));
        if self.failing.load(Ordering::SeqCst) {
            m.metadata.response_code = ResponseCode::ServFail;
        } else {
            match self.answers.get(&q.name) {
                Some(records) => m.answers = records.clone(),
                None => m.metadata.response_code = ResponseCode::NXDomain,
            }
        }
        Resolved {
            message: m,
            security: Security::Insecure,
            ede: None,
        }
    }
}

/// Records every block it is told about.
#[derive(Default, Clone)]
struct Seen(Arc<Mutex<Vec<(String, Transport)>>>);

impl BlockObserver for Seen {
    fn on_block(&self, bl: &Blocklist, hit: &BlockHit<'_>) {
        let list = bl.list(&hit.verdict).map(|l| l.name.clone()).unwrap();
        self.0.lock().unwrap().push((list, hit.transport));
    }
}

fn a(name: &str, ip: [u8; 4]) -> Record {
    Record::from_rdata(
        Name::from_ascii(name).unwrap(),
        300,
        RData::A(rdata::A::new(ip[0], ip[1], ip[2], ip[3])),
    )
}

fn cname(name: &str, target: &str) -> Record {
    Record::from_rdata(
        Name::from_ascii(name).unwrap(),
        300,
        RData::CNAME(rdata::CNAME(Name::from_ascii(target).unwrap())),
    )
}

/// A compiled blocklist with one list, `fraud`, blocking `names` and their subdomains.
fn blocklist(names: &[&str]) -> Blocklist {
    let mut c = Compiler::new();
    let id = c
        .add_list(ListInfo {
            name: "fraud".into(),
            path: "fraud.txt".into(),
            kind: ListKind::Block,
            action: Action::Sinkhole,
            category: "fraud".into(),
            ede: 15,
            entries: 0,
            format: Format::Plain,
            match_mode: MatchMode::Subtree,
        })
        .unwrap();
    for n in names {
        c.insert(id, n, ListKind::Block, MatchMode::Subtree, Action::Sinkhole)
            .unwrap();
    }
    Blocklist::from_bytes(c.to_bytes().unwrap()).unwrap()
}

struct Harness {
    engine: Arc<Engine>,
    stub: Arc<Stub>,
    seen: Seen,
    publisher: Publisher,
}

fn server_config() -> ServerConfig {
    ServerConfig {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        udp_workers: 1,
        ..ServerConfig::default()
    }
}

fn harness(stub: Stub, listed: &[&str]) -> Harness {
    let stub = Arc::new(stub);
    let seen = Seen::default();
    let (blocklist, publisher) = SharedBlocklist::new(blocklist(listed));
    let engine = Engine::new(Parts {
        server: server_config(),
        access: AccessConfig {
            allow: vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
        },
        sinkhole: SinkholeConfig {
            ipv4: Ipv4Addr::new(198, 18, 0, 53),
            ipv6: "2001:db8::53".parse().unwrap(),
            ttl: 60,
        },
        doh_canary: true,
        max_inflight: 100,
        max_inflight_per_client: 100,
        blocklist,
        cache: Cache::new(CacheConfig {
            max_bytes: 1 << 20,
            min_ttl: 0,
            max_ttl: 86_400,
            max_negative_ttl: 3600,
            serve_stale: true,
            stale_ttl: 86_400,
            stale_answer_ttl: 30,
            prefetch: true,
        }),
        resolver: stub.clone(),
        observer: Box::new(seen.clone()),
    });
    Harness {
        engine: Arc::new(engine),
        stub,
        seen,
        publisher,
    }
}

const CLIENT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40000);

fn query(id: u16, name: &str, qtype: RecordType, edns: bool) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if edns {
        m.edns = Some(Edns::new());
    }
    m.to_vec().unwrap()
}

async fn ask(h: &Harness, packet: &[u8]) -> Option<Message> {
    h.engine
        .answer(packet, CLIENT, Transport::Udp)
        .await
        .map(|b| Message::from_vec(&b).expect("the engine's answer parses"))
}

fn ips(m: &Message) -> Vec<IpAddr> {
    m.answers.iter().filter_map(|r| r.data.ip_addr()).collect()
}

/// The raw EDE option codes of an answer (hickory has no EDE type: read the OPT's options).
fn ede_codes(m: &Message) -> Vec<u16> {
    let Some(edns) = &m.edns else {
        return Vec::new();
    };
    edns.options()
        .as_ref()
        .iter()
        .filter_map(|(_, opt)| match opt {
            EdnsOption::Unknown(15, data) if data.len() >= 2 => {
                Some(u16::from_be_bytes([data[0], data[1]]))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_listed_name_gets_the_sinkhole_without_asking_upstream() {
    let h = harness(Stub::default(), &["fraud.test"]);
    let m = ask(&h, &query(1, "WwW.Fraud.TEST.", RecordType::A, true))
        .await
        .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(ips(&m), [IpAddr::V4(Ipv4Addr::new(198, 18, 0, 53))]);
    assert_eq!(m.queries[0].name().to_ascii(), "WwW.Fraud.TEST.");
    assert_eq!(ede_codes(&m), [15]);
    let m = ask(&h, &query(2, "fraud.test.", RecordType::AAAA, false))
        .await
        .unwrap();
    assert_eq!(ips(&m), ["2001:db8::53".parse::<IpAddr>().unwrap()]);
    let m = ask(&h, &query(3, "x.fraud.test.", RecordType::TXT, false))
        .await
        .unwrap();
    assert!(m.answers.is_empty() && m.authorities[0].record_type() == RecordType::SOA);
    assert_eq!(h.stub.calls(), 0);
    assert_eq!(h.seen.0.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn a_miss_is_resolved_once_then_answered_from_cache() {
    let stub = Stub::default().with(
        "www.example.test.",
        vec![a("www.example.test.", [198, 18, 1, 1])],
    );
    let h = harness(stub, &["fraud.test"]);
    let first = ask(&h, &query(10, "www.example.test.", RecordType::A, false))
        .await
        .unwrap();
    assert_eq!(ips(&first), [IpAddr::V4(Ipv4Addr::new(198, 18, 1, 1))]);
    assert_eq!(h.stub.calls(), 1);
    let second = ask(&h, &query(11, "WWW.example.TEST.", RecordType::A, false))
        .await
        .unwrap();
    assert_eq!(h.stub.calls(), 1, "the second answer came from the cache");
    assert_eq!(second.metadata.id, 11);
    assert_eq!(second.queries[0].name().to_ascii(), "WWW.example.TEST.");
    assert_eq!(ips(&second), ips(&first));
    // Another type is another cache entry.
    ask(&h, &query(12, "www.example.test.", RecordType::AAAA, false)).await;
    assert_eq!(h.stub.calls(), 2);
    // A name the upstream does not know.
    let nx = ask(
        &h,
        &query(13, "nothing.example.test.", RecordType::A, false),
    )
    .await
    .unwrap();
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
}

#[tokio::test]
async fn a_failing_upstream_is_servfail() {
    let h = harness(Stub::default(), &[]);
    h.stub.failing.store(true, Ordering::SeqCst);
    let m = ask(&h, &query(20, "down.example.test.", RecordType::A, false))
        .await
        .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
}

#[tokio::test]
async fn clients_outside_the_acl_are_refused_before_anything_else() {
    let h = harness(Stub::default(), &["fraud.test"]);
    let outsider = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)), 53);
    for name in ["www.example.test.", "www.fraud.test."] {
        let b = h
            .engine
            .answer(
                &query(30, name, RecordType::A, false),
                outsider,
                Transport::Tcp,
            )
            .await
            .unwrap();
        let m = Message::from_vec(&b).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::Refused, "{name}");
        assert!(m.answers.is_empty());
    }
    // IPv6 clients too, and an IPv4-mapped address counts as its IPv4 address.
    let v6 = SocketAddr::new(
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
        53,
    );
    let b = h
        .engine
        .answer(
            &query(31, "www.example.test.", RecordType::A, false),
            v6,
            Transport::Udp,
        )
        .await
        .unwrap();
    assert_eq!(
        Message::from_vec(&b).unwrap().metadata.response_code,
        ResponseCode::Refused
    );
    let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
    let b = h
        .engine
        .answer(
            &query(32, "www.fraud.test.", RecordType::A, false),
            SocketAddr::new(mapped, 53),
            Transport::Udp,
        )
        .await
        .unwrap();
    assert_eq!(
        Message::from_vec(&b).unwrap().metadata.response_code,
        ResponseCode::NoError
    );
    assert_eq!(h.stub.calls(), 0);
    assert_eq!(h.seen.0.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn malformed_packets_get_formerr_or_nothing() {
    let h = harness(Stub::default(), &[]);
    let ok = query(40, "www.example.test.", RecordType::A, true);
    // Too short for a header, and responses: dropped (no reflection).
    assert!(
        h.engine
            .answer(&ok[..11], CLIENT, Transport::Udp)
            .await
            .is_none()
    );
    let mut response = ok.clone();
    response[2] |= 0x80;
    assert!(
        h.engine
            .answer(&response, CLIENT, Transport::Udp)
            .await
            .is_none()
    );
    // Two questions: FORMERR.
    let mut two = ok.clone();
    two[5] = 2;
    let b = h.engine.answer(&two, CLIENT, Transport::Udp).await.unwrap();
    assert_eq!(b[3] & 0xf, 1);
    // A truncated question: FORMERR, ID echoed.
    let b = h
        .engine
        .answer(&ok[..20], CLIENT, Transport::Udp)
        .await
        .unwrap();
    assert_eq!((b[0], b[1], b[3] & 0xf), (0, 40, 1));
    // EDNS version 1: BADVERS (extended RCODE 16 in the OPT record).
    let mut v1 = ok.clone();
    let opt = v1.len() - 11;
    v1[opt + 6] = 1;
    let m =
        Message::from_vec(&h.engine.answer(&v1, CLIENT, Transport::Udp).await.unwrap()).unwrap();
    // hickory names extended RCODE 16 BADSIG (TSIG's name for it); for OPT it means BADVERS.
    assert_eq!(u16::from(m.metadata.response_code), 16);
    // Opcode 2 (STATUS): NOTIMP.
    let mut status = ok.clone();
    status[2] = (status[2] & 0x87) | (2 << 3);
    let b = h
        .engine
        .answer(&status, CLIENT, Transport::Udp)
        .await
        .unwrap();
    assert_eq!(b[3] & 0xf, 4);
    assert_eq!(h.stub.calls(), 0, "nothing malformed went upstream");
    // Every prefix and byte flip of a query: an answer or nothing, never a panic (a flip
    // inside the name makes another valid query, which is resolved).
    for n in 0..ok.len() {
        let _ = h.engine.answer(&ok[..n], CLIENT, Transport::Udp).await;
    }
    for i in 0..ok.len() {
        for v in [0u8, 0x3f, 0x40, 0xc0, 0xff] {
            let mut m = ok.clone();
            m[i] = v;
            let _ = h.engine.answer(&m, CLIENT, Transport::Udp).await;
        }
    }
}

/// A chain cached before its target was listed is blocked once the list that names the
/// target is published: the cached entry is checked against the live list on every hit.
#[tokio::test]
async fn a_cached_cname_chain_is_blocked_after_a_swap() {
    let stub = Stub::default().with(
        "shop.example.test.",
        vec![
            cname("shop.example.test.", "cdn.cloaked.test."),
            a("cdn.cloaked.test.", [198, 18, 2, 2]),
        ],
    );
    let h = harness(stub, &["fraud.test"]);
    let q = query(50, "shop.example.test.", RecordType::A, true);
    let before = ask(&h, &q).await.unwrap();
    assert_eq!(ips(&before), [IpAddr::V4(Ipv4Addr::new(198, 18, 2, 2))]);
    h.publisher
        .publish(blocklist(&["fraud.test", "cloaked.test"]));
    let after = ask(&h, &q).await.unwrap();
    assert_eq!(h.stub.calls(), 1, "answered from the cache");
    assert_eq!(ips(&after), [IpAddr::V4(Ipv4Addr::new(198, 18, 0, 53))]);
    assert_eq!(ede_codes(&after), [15]);
    assert_eq!(h.seen.0.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn the_doh_canary_is_nxdomain_locally() {
    let h = harness(Stub::default(), &[]);
    let m = ask(
        &h,
        &query(60, "use-application-dns.net.", RecordType::A, false),
    )
    .await
    .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(h.stub.calls(), 0);
}

#[tokio::test]
async fn an_answer_too_big_for_udp_is_truncated_and_whole_over_tcp() {
    let records: Vec<Record> = (0..60)
        .map(|i| a("big.example.test.", [198, 18, 3, i]))
        .collect();
    let h = harness(Stub::default().with("big.example.test.", records), &[]);
    let q = query(70, "big.example.test.", RecordType::A, false);
    let udp = ask(&h, &q).await.unwrap();
    assert!(udp.metadata.truncation && udp.answers.is_empty());
    let tcp = h.engine.answer(&q, CLIENT, Transport::Tcp).await.unwrap();
    let tcp = Message::from_vec(&tcp).unwrap();
    assert!(!tcp.metadata.truncation);
    assert_eq!(tcp.answers.len(), 60);
}

/// `server::run` on sockets the test bound, stopped by a future the test completes: UDP and
/// TCP (two pipelined queries on one connection) answered by the same engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_on_bound_sockets_until_the_shutdown_future() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stub = Stub::default().with(
        "www.example.test.",
        vec![a("www.example.test.", [198, 18, 1, 1])],
    );
    let h = harness(stub, &["fraud.test"]);
    let bound = server::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = bound.addr;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let engine = h.engine.clone();
    let serving = tokio::spawn(async move {
        server::run(engine, &server_config(), vec![bound], async {
            let _ = stopped.await;
        })
        .await
    });

    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    udp.send_to(&query(80, "www.fraud.test.", RecordType::A, false), addr)
        .await
        .unwrap();
    let mut buf = [0u8; 1500];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), udp.recv_from(&mut buf))
        .await
        .expect("a UDP answer")
        .unwrap();
    assert_eq!(
        ips(&Message::from_vec(&buf[..n]).unwrap()),
        [IpAddr::V4(Ipv4Addr::new(198, 18, 0, 53))]
    );

    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut out = Vec::new();
    for (id, name) in [(81u16, "www.example.test."), (82, "www.fraud.test.")] {
        let q = query(id, name, RecordType::A, false);
        out.extend_from_slice(&(q.len() as u16).to_be_bytes());
        out.extend_from_slice(&q);
    }
    tcp.write_all(&out).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let mut len = [0u8; 2];
        tokio::time::timeout(Duration::from_secs(5), tcp.read_exact(&mut len))
            .await
            .expect("a TCP answer")
            .unwrap();
        let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
        tcp.read_exact(&mut msg).await.unwrap();
        ids.push(Message::from_vec(&msg).unwrap().metadata.id);
    }
    ids.sort();
    assert_eq!(ids, [81, 82]);
    drop(tcp);

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), serving)
        .await
        .expect("run returns once the shutdown future completes")
        .unwrap()
        .unwrap();
    let seen = h.seen.0.lock().unwrap();
    assert_eq!(
        seen.iter().map(|(_, t)| *t).collect::<Vec<_>>(),
        [Transport::Udp, Transport::Tcp]
    );
}
