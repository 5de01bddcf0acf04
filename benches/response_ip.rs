//! What response-IP triggers cost a cache hit.
//!
//! Run:   cargo bench --bench response_ip
//! Quick: cargo bench --bench response_ip -- cache-hit      (criterion filter)
//!
//! Two blocklists of the same 200 k names, one of them also holding 10 000 IPv4 prefixes (/24
//! and /32, random) and 2 000 IPv6 /48s; an engine (the real `Engine`, a stub upstream that
//! answers every question with one A record in 198.18.0.0/15, outside every listed prefix) over
//! each. Criterion measures, side by side:
//! - `cache-hit/names-only` and `cache-hit/with-ips`: `Engine::answer_fast` on a cached A
//!   answer (parse, blocklist lookup of the name, cache hit, CNAME and address re-checks, the
//!   answer written): the whole cost of the address check on the path that carries most
//!   queries, against the same path with no address in any list (one branch);
//! - `lookup_wire/names-only` and `lookup_wire/with-ips`: the name lookup alone (unlisted
//!   names), to show prefixes in the same FST leave it unchanged;
//! - `lookup_ip/unlisted` and `lookup_ip/listed`: one address lookup.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use criterion::{Criterion, criterion_group};
use fraudwall::blocklist::{
    Action, Blocklist, Compiler, Format, ListInfo, ListKind, MatchMode, SharedBlocklist,
};
use fraudwall::dns::Transport;
use fraudwall::dns::blocked::SinkholeConfig;
use fraudwall::dns::cache::{Cache, CacheConfig};
use fraudwall::resolve::{Question, Resolve, Resolved, Security};
use fraudwall::server::engine::{Engine, Fast, IgnoreBlocks, Parts, Scratch};
use fraudwall::server::{AccessConfig, ServerConfig};
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{RData, Record, rdata::A};

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Answers every question with one A record, 198.18.0.1 (no prefix here covers it).
struct Stub;

#[async_trait::async_trait]
impl Resolve for Stub {
    async fn resolve(&self, q: &Question) -> Resolved {
        let mut m = Message::new(0, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(q.name.clone(), q.qtype));
        m.add_answer(Record::from_rdata(
            q.name.clone(),
            3600,
            RData::A(A::new(198, 18, 0, 1)),
        ));
        Resolved {
            message: m,
            security: Security::Insecure,
            ede: None,
        }
    }
}

fn blocklist(with_ips: bool) -> Blocklist {
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
    let mut r = Rng(7);
    for i in 0..200_000 {
        let name = format!("n{:x}-{i}.example", r.next() % 1_000_000);
        c.insert(
            id,
            &name,
            ListKind::Block,
            MatchMode::Subtree,
            Action::Sinkhole,
        )
        .unwrap();
    }
    if with_ips {
        for i in 0..10_000 {
            let a = Ipv4Addr::from_bits((r.next() as u32) | 0x0100_0000);
            let len = if i % 2 == 0 { 24 } else { 32 };
            let net = ipnet::IpNet::new(IpAddr::V4(a), len).unwrap().trunc();
            c.insert_ip(id, net, ListKind::Block, Action::Sinkhole);
        }
        for _ in 0..2_000 {
            let a = Ipv6Addr::from_bits(u128::from(r.next()) << 64);
            let net = ipnet::IpNet::new(IpAddr::V6(a), 48).unwrap().trunc();
            c.insert_ip(id, net, ListKind::Block, Action::Sinkhole);
        }
    }
    let bl = Blocklist::from_bytes(c.to_bytes().unwrap()).unwrap();
    // The benign answer's address must be outside every prefix (the random draw could cover it).
    assert_eq!(bl.lookup_ip(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1))), None);
    bl
}

fn engine(bl: Blocklist) -> Engine {
    Engine::new(Parts {
        server: ServerConfig::default(),
        access: AccessConfig {
            allow: vec!["127.0.0.0/8".parse().unwrap()],
        },
        sinkhole: SinkholeConfig {
            ipv4: Ipv4Addr::new(198, 18, 255, 1),
            ipv6: Ipv6Addr::LOCALHOST,
            ttl: 60,
        },
        doh_canary: true,
        max_inflight: 10,
        max_inflight_per_client: 10,
        blocklist: SharedBlocklist::fixed(bl),
        cache: Cache::new(CacheConfig {
            prefetch: false,
            ..CacheConfig::default()
        }),
        resolver: Arc::new(Stub),
        observer: Box::new(IgnoreBlocks),
    })
}

const NAME: &[u8] = b"\x03www\x07example\x04test\x00";

fn query() -> Vec<u8> {
    let mut q = vec![0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    q.extend_from_slice(NAME);
    q.extend_from_slice(&[0, 1, 0, 1]);
    q
}

const CLIENT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5300);

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let q = query();
    let mut g = c.benchmark_group("cache-hit");
    for (label, with_ips) in [("names-only", false), ("with-ips", true)] {
        let e = engine(blocklist(with_ips));
        assert_eq!(e.blocklist().load().has_ips(), with_ips);
        // The miss that fills the cache.
        let a = rt.block_on(e.answer(&q, CLIENT, Transport::Udp)).unwrap();
        assert_eq!(a[3] & 0xf, 0, "NOERROR");
        let mut out = Vec::with_capacity(512);
        let mut scratch = Scratch::default();
        g.bench_function(label, |b| {
            b.iter(|| {
                let f = e.answer_fast(
                    black_box(&q),
                    CLIENT,
                    Transport::Udp,
                    &mut out,
                    &mut scratch,
                );
                assert!(matches!(f, Fast::Reply), "a cache hit");
            })
        });
    }
    g.finish();

    let names_only = blocklist(false);
    let with_ips = blocklist(true);
    let mut g = c.benchmark_group("lookup_wire");
    let unlisted: Vec<Vec<u8>> = (0..1024)
        .map(|i| {
            let label = format!("u{i}-benign");
            let mut w = vec![label.len() as u8];
            w.extend_from_slice(label.as_bytes());
            w.extend_from_slice(b"\x07example\x00");
            w
        })
        .collect();
    for (label, bl) in [("names-only", &names_only), ("with-ips", &with_ips)] {
        let mut i = 0;
        g.bench_function(label, |b| {
            b.iter(|| {
                i = (i + 1) % unlisted.len();
                black_box(bl.lookup_wire(&unlisted[i]))
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("lookup_ip");
    let unlisted = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
    g.bench_function("unlisted", |b| {
        b.iter(|| black_box(with_ips.lookup_ip(black_box(unlisted))))
    });
    g.bench_function("names-only-list", |b| {
        b.iter(|| black_box(names_only.lookup_ip(black_box(unlisted))))
    });
    g.finish();
}

criterion_group!(response_ip, benches);

fn main() {
    response_ip();
    Criterion::default().configure_from_args().final_summary();
}
