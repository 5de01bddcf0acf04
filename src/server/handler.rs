//! The query pipeline, shared by every transport:
//!
//! parse → access control → blocklist verdict → cache → (miss) resolver → cache → answer.
//!
//! [`Engine::answer_fast`] does everything that needs no network and no allocation; it is what
//! the UDP workers call for every packet. [`Engine::answer`] adds the slow path (resolution) and
//! is what miss tasks and the TCP server await.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use arc_swap::ArcSwap;
use hickory_proto::{
    op::ResponseCode,
    rr::{Name, RecordType},
    serialize::binary::{BinDecodable, BinDecoder},
};
use tracing::debug;

use crate::{
    blocklist::{Action, Blocklist, ListKind, Verdict},
    config::{AccessConfig, SinkholeConfig},
    metrics,
    resolve::{
        Question, Resolver,
        cache::{self, Cache, Entry, Freshness},
    },
    server::wire::{self, Query, rcode, rtype},
    sinkhole::answer::{Reason, SoaOwner, blocked_response},
};

/// Transport a query came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Udp,
    Tcp,
}

impl Proto {
    /// Label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp",
        }
    }
}

/// Result of the fast path.
#[derive(Debug, PartialEq, Eq)]
pub enum Fast {
    /// `out` holds the answer; send it.
    Reply,
    /// `out` holds an answer from cache that should also be refreshed in the background.
    ReplyAndPrefetch,
    /// Send nothing.
    Drop,
    /// Needs resolution: hand the packet to [`Engine::answer`].
    Miss,
}

/// A block, for the event log and metrics.
#[derive(Debug, Clone)]
pub struct BlockHit<'a> {
    pub client: SocketAddr,
    pub proto: Proto,
    pub qname: &'a [u8],
    pub qtype: u16,
    pub verdict: Verdict,
    /// The name whose entry matched (the query name, or a CNAME target when cloaked).
    pub matched_name: &'a [u8],
}

/// Receives every block (and `log`-action hit). Must not block.
pub trait BlockObserver: Send + Sync + 'static {
    fn on_block(&self, blocklist: &Blocklist, hit: &BlockHit<'_>);
}

/// Policy knobs of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub access: AccessConfig,
    pub sinkhole: SinkholeConfig,
    pub doh_canary: bool,
    /// Our EDNS UDP payload size.
    pub payload: u16,
    pub serve_stale: bool,
    pub prefetch: bool,
    pub max_inflight: usize,
}

/// The shared query engine.
pub struct Engine {
    pub cfg: EngineConfig,
    /// The live blocklist; the hot-swap replaces it with one `store`.
    pub blocklist: Arc<ArcSwap<Blocklist>>,
    pub cache: Cache,
    pub resolver: Resolver,
    pub observer: Box<dyn BlockObserver>,
    inflight: AtomicUsize,
}

/// Per-worker scratch buffers, reused across packets.
#[derive(Default)]
pub struct Scratch {
    key: Vec<u8>,
    text: String,
}

const DOH_CANARY: &[u8] = b"\x13use-application-dns\x03net\x00";

impl Engine {
    /// Builds an engine.
    pub fn new(
        cfg: EngineConfig,
        blocklist: Arc<ArcSwap<Blocklist>>,
        cache: Cache,
        resolver: Resolver,
        observer: Box<dyn BlockObserver>,
    ) -> Engine {
        Engine {
            cfg,
            blocklist,
            cache,
            resolver,
            observer,
            inflight: AtomicUsize::new(0),
        }
    }

    fn limit(&self, q: &Query<'_>, proto: Proto) -> usize {
        match proto {
            Proto::Tcp => u16::MAX as usize,
            Proto::Udp => match q.edns {
                Some(e) => e.payload.min(self.cfg.payload) as usize,
                None => 512,
            },
        }
    }

    /// Everything that needs no network: answers into `out`, or says what to do.
    pub fn answer_fast(
        &self,
        packet: &[u8],
        client: SocketAddr,
        proto: Proto,
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
    ) -> Fast {
        let q = match wire::parse_query(packet) {
            Ok(q) => q,
            Err(reject) => {
                return match wire::error_response(packet, reject, self.cfg.payload) {
                    Some(r) => {
                        *out = r;
                        Fast::Reply
                    }
                    None => Fast::Drop,
                };
            }
        };
        if !self.cfg.access.allows(client.ip()) {
            *out = wire::bare_response(&q, rcode::REFUSED, 0, self.cfg.payload, None);
            return Fast::Reply;
        }
        if q.qclass != wire::CLASS_IN || matches!(q.qtype, rtype::AXFR | rtype::IXFR) {
            *out = wire::bare_response(&q, rcode::REFUSED, 0, self.cfg.payload, None);
            return Fast::Reply;
        }
        if q.qtype == rtype::OPT {
            *out = wire::bare_response(&q, rcode::FORMERR, 0, self.cfg.payload, None);
            return Fast::Reply;
        }
        if self.cfg.doh_canary && q.qname.eq_ignore_ascii_case(DOH_CANARY) {
            return self.finish_blocked(&q, Action::Nxdomain, SoaOwner::InQuestion(0), None, out);
        }

        let bl = self.blocklist.load();
        if let Some(v) = bl.lookup_wire(q.qname)
            && v.kind == ListKind::Block
        {
            let hit = (client, proto);
            if let Some(fast) = self.apply_block(&bl, &q, v, q.qname, hit, &mut scratch.text, out) {
                return fast;
            }
        }

        cache::make_key(&mut scratch.key, &q);
        let Some(entry) = self.cache.get(&scratch.key) else {
            metrics::cache_miss();
            return Fast::Miss;
        };
        match entry.freshness(Instant::now(), self.stale_window()) {
            Some(f @ Freshness::Fresh { age }) => {
                metrics::cache_hit();
                if let Some(fast) = self.cloaked(&bl, &q, &entry, client, proto, out) {
                    return fast;
                }
                entry.write_response(
                    &q,
                    f,
                    self.cache.policy.stale_answer_ttl,
                    self.cfg.payload,
                    self.limit(&q, proto),
                    out,
                );
                if self.cfg.prefetch && entry.wants_prefetch(age) {
                    Fast::ReplyAndPrefetch
                } else {
                    Fast::Reply
                }
            }
            // Stale or dead: try the upstream first; stale is the fallback on failure.
            _ => {
                metrics::cache_miss();
                Fast::Miss
            }
        }
    }

    fn stale_window(&self) -> u32 {
        if self.cfg.serve_stale {
            self.cache.policy.stale_ttl
        } else {
            0
        }
    }

    fn finish_blocked(
        &self,
        q: &Query<'_>,
        action: Action,
        owner: SoaOwner<'_>,
        reason: Option<Reason<'_>>,
        out: &mut Vec<u8>,
    ) -> Fast {
        let sink = &self.cfg.sinkhole;
        if blocked_response(q, action, owner, reason, sink, self.cfg.payload, out) {
            Fast::Reply
        } else {
            Fast::Drop
        }
    }

    /// CNAME cloaking: if any CNAME/DNAME target in a cached chain is blocked now, the whole
    /// answer becomes the blocked answer for that target's list.
    fn cloaked(
        &self,
        bl: &Blocklist,
        q: &Query<'_>,
        entry: &Entry,
        client: SocketAddr,
        proto: Proto,
        out: &mut Vec<u8>,
    ) -> Option<Fast> {
        for target in entry.chain.iter() {
            let Some(v) = bl.lookup_wire(target) else {
                continue;
            };
            if v.kind != ListKind::Block {
                continue;
            }
            let mut text = String::new();
            if let Some(fast) = self.apply_block(bl, q, v, target, (client, proto), &mut text, out)
            {
                return Some(fast);
            }
        }
        None
    }

    /// Reports a block verdict for `matched` (the query name, or a CNAME target of its answer)
    /// and, unless the list only logs, writes the blocked answer. `None`: answer normally.
    #[allow(clippy::too_many_arguments)]
    fn apply_block(
        &self,
        bl: &Blocklist,
        q: &Query<'_>,
        v: Verdict,
        matched: &[u8],
        (client, proto): (SocketAddr, Proto),
        text: &mut String,
        out: &mut Vec<u8>,
    ) -> Option<Fast> {
        self.observer.on_block(
            bl,
            &BlockHit {
                client,
                proto,
                qname: q.qname,
                qtype: q.qtype,
                verdict: v,
                matched_name: matched,
            },
        );
        if v.action == Action::Log {
            return None;
        }
        // The synthetic SOA is owned by the listed entry: a pointer into the question when the
        // query name matched, the entry's own labels when a CNAME target did.
        let off = wire::suffix_offset(matched, v.matched_labels as usize);
        let owner = if std::ptr::eq(matched, q.qname) {
            SoaOwner::InQuestion(off)
        } else {
            SoaOwner::Name(&matched[off..])
        };
        reason_text(bl, &v, text);
        let info_code = bl.lists().get(v.list as usize).map_or(15, |l| l.ede);
        let reason = Reason {
            info_code,
            extra_text: text,
        };
        Some(self.finish_blocked(q, v.action, owner, Some(reason), out))
    }

    /// The full pipeline: fast path, then resolution on a miss. `None` = send nothing.
    pub async fn answer(&self, packet: &[u8], client: SocketAddr, proto: Proto) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(512);
        let mut scratch = Scratch::default();
        match self.answer_fast(packet, client, proto, &mut out, &mut scratch) {
            Fast::Reply | Fast::ReplyAndPrefetch => return Some(out),
            Fast::Drop => return None,
            Fast::Miss => {}
        }
        let q = wire::parse_query(packet).ok()?;
        if self.inflight.fetch_add(1, Ordering::AcqRel) >= self.cfg.max_inflight {
            self.inflight.fetch_sub(1, Ordering::AcqRel);
            metrics::recursor_queue_full();
            return Some(wire::bare_response(
                &q,
                rcode::SERVFAIL,
                0,
                self.cfg.payload,
                None,
            ));
        }
        let entry = self.resolve_into_cache(&q, &scratch.key).await;
        self.inflight.fetch_sub(1, Ordering::AcqRel);
        let bl = self.blocklist.load();
        let (entry, freshness) = entry?;
        if let Some(fast) = self.cloaked(&bl, &q, &entry, client, proto, &mut out) {
            return (fast == Fast::Reply).then_some(out);
        }
        entry.write_response(
            &q,
            freshness,
            self.cache.policy.stale_answer_ttl,
            self.cfg.payload,
            self.limit(&q, proto),
            &mut out,
        );
        Some(out)
    }

    /// Refreshes a popular entry before it expires (called off the hot path).
    pub async fn prefetch(&self, packet: &[u8]) {
        let Ok(q) = wire::parse_query(packet) else {
            return;
        };
        let mut key = Vec::new();
        cache::make_key(&mut key, &q);
        let _ = self.resolve_into_cache(&q, &key).await;
    }

    /// Resolves `q`, stores the answer, and returns the entry to serve: the new one, or a stale
    /// one when resolution failed and serve-stale allows it.
    async fn resolve_into_cache(
        &self,
        q: &Query<'_>,
        key: &[u8],
    ) -> Option<(Arc<Entry>, Freshness)> {
        let name = {
            let lower: Vec<u8> = q.qname.iter().map(u8::to_ascii_lowercase).collect();
            Name::read(&mut BinDecoder::new(&lower)).ok()?
        };
        let question = Question {
            name,
            qtype: RecordType::from(q.qtype),
            dnssec_ok: q.dnssec_ok(),
            checking_disabled: q.cd(),
        };
        let resolved = self.resolver.resolve(&question).await;
        let failed = resolved.message.metadata.response_code == ResponseCode::ServFail;
        if failed
            && self.cfg.serve_stale
            && let Some(old) = self.cache.get(key)
            && let Some(f) = old.freshness(Instant::now(), self.cache.policy.stale_ttl)
        {
            debug!(qname = %wire::name_to_string(q.qname), "serving stale");
            return Some((old, f));
        }
        let secure = resolved.security == crate::resolve::Security::Secure;
        let entry =
            Entry::from_message(&resolved.message, secure, resolved.ede, &self.cache.policy)?;
        let entry = self.cache.insert(key, entry);
        Some((entry, Freshness::Fresh { age: 0 }))
    }
}

/// EXTRA-TEXT of the EDE: which list, which category. Written into a reused buffer.
fn reason_text(bl: &Blocklist, v: &Verdict, text: &mut String) {
    use std::fmt::Write;
    text.clear();
    let _ = match bl.lists().get(v.list as usize) {
        Some(l) => write!(text, "fraudwall: listed in {} ({})", l.name, l.category),
        None => write!(text, "fraudwall: listed"),
    };
}
