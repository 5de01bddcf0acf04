//! The packet path: any bytes in, as UDP or TCP from a client inside or outside the ACL, through
//! `Engine::answer` with a stub upstream. The engine must answer or drop, never panic; an answer
//! must parse with hickory, echo the query's ID as a response, and fit the transport.
//!
//! Input: one control byte (bits 0–2: what the upstream answers, bit 3: TCP, bit 4: a client the
//! ACL refuses), then the query packet.

#![no_main]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use fraudwall::blocklist::{
    Action, Blocklist, Compiler, Format, ListInfo, ListKind, MatchMode, SharedBlocklist,
};
use fraudwall::dns::Transport;
use fraudwall::dns::blocked::SinkholeConfig;
use fraudwall::dns::cache::{Cache, CacheConfig};
use fraudwall::resolve::{Question, Resolve, Resolved, Security};
use fraudwall::server::engine::{BlockHit, BlockObserver, Engine, Parts};
use fraudwall::server::{AccessConfig, ServerConfig};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, rdata};
use libfuzzer_sys::fuzz_target;

/// What the stub upstream answers, from the low bits of the control byte.
struct Stub(u8);

#[async_trait::async_trait]
impl Resolve for Stub {
    async fn resolve(&self, q: &Question) -> Resolved {
        let mut m = Message::new(0, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(q.name.clone(), q.qtype));
        let rec = |name: &Name, data: RData| Record::from_rdata(name.clone(), 300, data);
        let mut security = Security::Insecure;
        match self.0 & 7 {
            0 => m.metadata.response_code = ResponseCode::NXDomain,
            1 => {
                m.answers
                    .push(rec(&q.name, RData::A(rdata::A::new(198, 18, 1, 1))));
                m.answers
                    .push(rec(&q.name, RData::AAAA("2001:db8::1".parse().unwrap())));
            }
            2 => {
                // A CNAME into a listed name: the chain check must block it.
                let target = Name::from_ascii("www.fraud.test.").unwrap();
                m.answers
                    .push(rec(&q.name, RData::CNAME(rdata::CNAME(target.clone()))));
                m.answers
                    .push(rec(&target, RData::A(rdata::A::new(198, 18, 1, 2))));
            }
            3 => m.metadata.response_code = ResponseCode::ServFail,
            4 => {
                // Far more than fits in a datagram: truncation.
                for i in 0..200u8 {
                    let txt = rdata::TXT::new(vec![format!("{i:03}-{}", "x".repeat(60))]);
                    m.answers.push(rec(&q.name, RData::TXT(txt)));
                }
            }
            5 => security = Security::Bogus,
            6 => {
                // Records for another name than the question's.
                let other = Name::from_ascii("other.example.").unwrap();
                m.answers
                    .push(rec(&other, RData::A(rdata::A::new(198, 18, 1, 3))));
            }
            _ => security = Security::Secure,
        }
        Resolved {
            message: m,
            security,
            ede: None,
        }
    }
}

struct Quiet;

impl BlockObserver for Quiet {
    fn on_block(&self, _: &Blocklist, _: &BlockHit<'_>) {}
}

/// The compiled list every engine starts with: blocks, a subtree allow, an exact entry.
fn list() -> Vec<u8> {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES
        .get_or_init(|| {
            let mut c = Compiler::new();
            let info = |name: &str, kind| ListInfo {
                name: name.into(),
                path: format!("{name}.txt").into(),
                kind,
                action: Action::Sinkhole,
                category: "fraud".into(),
                ede: 15,
                entries: 0,
                format: Format::Plain,
                match_mode: MatchMode::Subtree,
            };
            let block = c.add_list(info("fraud", ListKind::Block)).unwrap();
            let allow = c.add_list(info("allow", ListKind::Allow)).unwrap();
            for (list, name, kind, mode, action) in [
                (
                    block,
                    "fraud.test",
                    ListKind::Block,
                    MatchMode::Subtree,
                    Action::Sinkhole,
                ),
                (
                    block,
                    "nx.test",
                    ListKind::Block,
                    MatchMode::Subtree,
                    Action::Nxdomain,
                ),
                (
                    block,
                    "drop.test",
                    ListKind::Block,
                    MatchMode::Subtree,
                    Action::Drop,
                ),
                (
                    block,
                    "refused.test",
                    ListKind::Block,
                    MatchMode::Subtree,
                    Action::Refused,
                ),
                (
                    block,
                    "nodata.test",
                    ListKind::Block,
                    MatchMode::Subtree,
                    Action::Nodata,
                ),
                (
                    block,
                    "log.test",
                    ListKind::Block,
                    MatchMode::Subtree,
                    Action::Log,
                ),
                (
                    block,
                    "exact.test",
                    ListKind::Block,
                    MatchMode::Exact,
                    Action::Sinkhole,
                ),
                (
                    allow,
                    "ok.fraud.test",
                    ListKind::Allow,
                    MatchMode::Subtree,
                    Action::Sinkhole,
                ),
            ] {
                c.insert(list, name, kind, mode, action).unwrap();
            }
            c.to_bytes().unwrap()
        })
        .clone()
}

fn engine(upstream: u8) -> Engine {
    let (blocklist, _publisher) = SharedBlocklist::new(Blocklist::from_bytes(list()).unwrap());
    Engine::new(Parts {
        server: ServerConfig {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            udp_workers: 1,
            edns_udp_payload: 1232,
            tcp_timeout: Duration::from_secs(5),
            ..ServerConfig::default()
        },
        access: AccessConfig {
            allow: vec!["127.0.0.0/8".parse().unwrap()],
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
            max_bytes: 1 << 16,
            min_ttl: 0,
            max_ttl: 86_400,
            max_negative_ttl: 3600,
            serve_stale: true,
            stale_ttl: 86_400,
            stale_answer_ttl: 30,
            prefetch: true,
        }),
        resolver: Arc::new(Stub(upstream)),
        observer: Box::new(Quiet),
    })
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

/// The largest datagram answer the query allows: its EDNS size (at least 512, at most ours), or
/// 512 without EDNS.
fn datagram_limit(packet: &[u8]) -> usize {
    match Message::from_vec(packet).ok().and_then(|m| m.edns) {
        Some(e) => usize::from(e.max_payload()).clamp(512, 1232),
        None => 512,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, packet)) = data.split_first() else {
        return;
    };
    let tcp = control & 8 != 0;
    let client = if control & 16 != 0 {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))
    } else {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    };
    let transport = if tcp { Transport::Tcp } else { Transport::Udp };
    let e = engine(control);
    let rt = runtime();
    // Twice: the second one may come from the cache.
    for _ in 0..2 {
        let Some(answer) =
            rt.block_on(e.answer(packet, SocketAddr::new(client, 40_000), transport))
        else {
            continue;
        };
        let parsed = Message::from_vec(&answer);
        assert!(
            parsed.is_ok(),
            "answer does not parse: {parsed:?}\n{answer:02x?}"
        );
        assert!(answer.len() >= 12 && packet.len() >= 2);
        assert_eq!(answer[..2], packet[..2], "the answer echoes the query's ID");
        assert!(answer[2] & 0x80 != 0, "the answer is a response");
        if !tcp {
            let limit = datagram_limit(packet);
            assert!(
                answer.len() <= limit,
                "{} bytes for a {limit}-byte datagram",
                answer.len()
            );
        }
    }
});
