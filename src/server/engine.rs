//! The query engine, shared by every transport:
//!
//! parse → access control → blocklist verdict → cache → (miss) resolver → cache → answer.
//!
//! [`Engine::answer_fast`] does everything that needs no network and no allocation; it is what
//! the UDP workers call for every packet. A cache miss comes back as a [`Miss`] that carries the
//! parsed query, its cache key and any stale entry into [`Engine::resolve`], so a miss costs one
//! parse, one blocklist lookup of its name and one cache lookup. [`Engine::answer`] chains the
//! two for transports that can wait (TCP, tests).

use std::{
    net::{IpAddr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use hickory_proto::rr::RecordType;
use tracing::debug;

use crate::{
    blocklist::{Action, Blocklist, ListKind, SharedBlocklist, Verdict, matcher::ip_entry},
    dns::{
        Transport,
        blocked::{self, Blocked, Reason, SinkholeConfig, SoaOwner},
        cache::{self, Cache, Entry, Freshness},
        ede,
        wire::{self, OwnedQuery, Query, rcode, rtype},
    },
    dnstap::{self, Tap, proto::Policy as TapPolicy},
    lists::feeds::{Notifier, NotifyVerdict},
    metrics,
    policy::{GroupId, Policy},
    resolve::{Question, Resolve, Security},
    server::{
        AccessConfig, ServerConfig,
        ddr::{Ddr, Local},
    },
};

/// What the fast path decided.
#[derive(Debug)]
pub enum Fast {
    /// `out` holds the answer; send it.
    Reply,
    /// `out` holds an answer from cache; send it, and refresh the entry in the background with
    /// [`Engine::refresh`].
    ReplyAndRefresh(Miss),
    /// Send nothing.
    Drop,
    /// Needs resolution: hand it to [`Engine::resolve`].
    Miss(Miss),
}

/// A query on its way upstream: everything the fast path learnt, so nothing is done twice.
#[derive(Debug)]
pub struct Miss {
    query: OwnedQuery,
    /// The cache key (type, class, DO|CD, lowercased name).
    key: Box<[u8]>,
    /// An expired entry still inside the serve-stale window: the answer if the upstream fails.
    stale: Option<Arc<Entry>>,
    client: SocketAddr,
    transport: Transport,
}

impl Miss {
    /// Who asked.
    pub fn client(&self) -> SocketAddr {
        self.client
    }
}

/// A block, for the event log and metrics.
#[derive(Debug, Clone)]
pub struct BlockHit<'a> {
    pub client: SocketAddr,
    pub transport: Transport,
    pub qname: &'a [u8],
    pub qtype: u16,
    pub verdict: Verdict,
    /// The name whose entry matched (the query name, or a CNAME target when cloaked; the query
    /// name for an address block).
    pub matched_name: &'a [u8],
    /// The answer address whose prefix matched (`verdict.matched_labels` is the prefix length),
    /// when the block is by address.
    pub ip: Option<IpAddr>,
    /// The client's policy group (`default` when it is in none).
    pub group: &'a str,
}

/// Receives every block (and `log`-action hit). Must not block.
pub trait BlockObserver: Send + Sync + 'static {
    fn on_block(&self, blocklist: &Blocklist, hit: &BlockHit<'_>);
}

/// An observer that ignores every block (tests, tools).
pub struct IgnoreBlocks;

impl BlockObserver for IgnoreBlocks {
    fn on_block(&self, _: &Blocklist, _: &BlockHit<'_>) {}
}

/// What an engine is made of: validated config sections and the shared parts.
pub struct Parts {
    pub server: ServerConfig,
    pub access: AccessConfig,
    pub sinkhole: SinkholeConfig,
    /// Answer NXDOMAIN for `use-application-dns.net` (`blocklists.doh_canary`).
    pub doh_canary: bool,
    /// Misses resolved at once; beyond it, queries get SERVFAIL (`resolver.max_inflight`).
    pub max_inflight: usize,
    /// Misses of one client (IPv4 address, IPv6 /64) resolved at once
    /// (`resolver.max_inflight_per_client`): one client cannot take every slot.
    pub max_inflight_per_client: usize,
    /// The live blocklist; the reloader swaps it.
    pub blocklist: SharedBlocklist,
    pub cache: Cache,
    pub resolver: Arc<dyn Resolve>,
    pub observer: Box<dyn BlockObserver>,
}

/// The shared query engine.
pub struct Engine {
    server: ServerConfig,
    access: AccessConfig,
    sinkhole: SinkholeConfig,
    doh_canary: bool,
    max_inflight: usize,
    per_client: crate::client::Caps,
    blocklist: SharedBlocklist,
    cache: Cache,
    resolver: Arc<dyn Resolve>,
    observer: Box<dyn BlockObserver>,
    inflight: AtomicUsize,
    ddr: Ddr,
    tap: Option<Tap>,
    policy: Policy,
    /// Takes NOTIFYs for the feeds' zones (`None`: NOTIFY is NOTIMP as any other opcode).
    notifier: Option<Arc<Notifier>>,
}

/// Per-worker scratch buffers, reused across packets.
#[derive(Default)]
pub struct Scratch {
    key: Vec<u8>,
    text: String,
    /// The dnstap `Policy` of this query's block (only made when tapping).
    policy: Option<Box<TapPolicy>>,
}

/// The NOTIFY opcode (RFC 1996).
const OPCODE_NOTIFY: u8 = 4;

const DOH_CANARY: &[u8] = b"\x13use-application-dns\x03net\x00";

impl Engine {
    /// Builds an engine.
    pub fn new(parts: Parts) -> Engine {
        Engine {
            server: parts.server,
            access: parts.access,
            sinkhole: parts.sinkhole,
            doh_canary: parts.doh_canary,
            max_inflight: parts.max_inflight,
            per_client: crate::client::Caps::new(parts.max_inflight_per_client),
            blocklist: parts.blocklist,
            cache: parts.cache,
            resolver: parts.resolver,
            observer: parts.observer,
            inflight: AtomicUsize::new(0),
            ddr: Ddr::none(),
            tap: None,
            policy: Policy::default(),
            notifier: None,
        }
    }

    /// The engine handing NOTIFY messages to `notifier` (the feeds'; `None`: NOTIMP).
    pub fn with_notifier(mut self, notifier: Option<Arc<Notifier>>) -> Engine {
        self.notifier = notifier;
        self
    }

    /// A NOTIFY (RFC 1996) for a feed's zone: NOERROR with AA from one of the feed's primaries
    /// (the feed checks its zone at once), REFUSED from anyone else. Primaries need not be in
    /// `access.allow`; nothing but the wake-up comes of it.
    fn answer_notify(
        &self,
        notifier: &Notifier,
        packet: &[u8],
        client: SocketAddr,
        out: &mut Vec<u8>,
    ) -> Fast {
        let qdcount = u16::from_be_bytes([packet[4], packet[5]]);
        let Some(qend) =
            wire::name_end(packet, 12).filter(|&e| qdcount == 1 && packet.len() >= e + 4)
        else {
            return Fast::Drop;
        };
        let rcode = match notifier.notify(&packet[12..qend], client.ip()) {
            NotifyVerdict::Accepted => rcode::NOERROR,
            NotifyVerdict::Refused => rcode::REFUSED,
        };
        out.clear();
        let id = u16::from_be_bytes([packet[0], packet[1]]);
        let flags =
            wire::flags::QR | wire::flags::AA | (u16::from(OPCODE_NOTIFY) << 11) | u16::from(rcode);
        wire::put_header(out, id, flags, (1, 0, 0, 0));
        out.extend_from_slice(&packet[12..qend + 4]);
        Fast::Reply
    }

    /// The engine writing every client query and answer to `tap` (dnstap; `None`: off).
    pub fn with_tap(mut self, tap: Option<Tap>) -> Engine {
        self.tap = tap;
        self
    }

    /// The engine deciding each client's verdicts by its group of `policy` (without it:
    /// every list applies to everyone).
    pub fn with_policy(mut self, policy: Policy) -> Engine {
        self.policy = policy;
        self
    }

    /// The engine answering `_dns.resolver.arpa` with `ddr`'s endpoints (without it: NODATA).
    pub fn with_ddr(mut self, ddr: Ddr) -> Engine {
        self.ddr = ddr;
        self
    }

    /// The answer cache.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Who may query.
    pub fn access(&self) -> &AccessConfig {
        &self.access
    }

    /// The live blocklist.
    pub fn blocklist(&self) -> &SharedBlocklist {
        &self.blocklist
    }

    /// Our EDNS payload size.
    fn payload(&self) -> u16 {
        self.server.edns_udp_payload
    }

    fn limit(&self, q: &Query<'_>, transport: Transport) -> usize {
        if !transport.is_datagram() {
            return u16::MAX as usize;
        }
        match q.edns {
            Some(e) => e.payload.min(self.payload()) as usize,
            None => 512,
        }
    }

    /// Everything that needs no network: answers into `out`, or says what to do.
    pub fn answer_fast(
        &self,
        packet: &[u8],
        client: SocketAddr,
        transport: Transport,
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
    ) -> Fast {
        let fast = self.decide(packet, client, transport, out, scratch);
        // Without dnstap, this branch is all it costs.
        if let Some(tap) = &self.tap {
            let policy = scratch.policy.take();
            tap.client_query(packet, client, transport, policy.as_deref());
            if matches!(fast, Fast::Reply | Fast::ReplyAndRefresh(_)) {
                tap.client_response(out, client, transport, policy.as_deref());
            }
        }
        fast
    }

    fn decide(
        &self,
        packet: &[u8],
        client: SocketAddr,
        transport: Transport,
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
    ) -> Fast {
        if let Some(n) = &self.notifier
            && packet.len() >= 12
            && packet[2] & 0x80 == 0
            && (packet[2] >> 3) & 0xf == OPCODE_NOTIFY
        {
            return self.answer_notify(n, packet, client, out);
        }
        let q = match wire::parse_query(packet) {
            Ok(q) => q,
            Err(reject) => {
                return match wire::error_response(packet, reject, self.payload()) {
                    Some(r) => {
                        *out = r;
                        Fast::Reply
                    }
                    None => Fast::Drop,
                };
            }
        };
        if !self.access.allows(client.ip()) {
            *out = wire::bare_response(&q, rcode::REFUSED, 0, self.payload(), None);
            return Fast::Reply;
        }
        if q.qclass != wire::CLASS_IN || matches!(q.qtype, rtype::AXFR | rtype::IXFR) {
            *out = wire::bare_response(&q, rcode::REFUSED, 0, self.payload(), None);
            return Fast::Reply;
        }
        if q.qtype == rtype::OPT {
            *out = wire::bare_response(&q, rcode::FORMERR, 0, self.payload(), None);
            return Fast::Reply;
        }
        // resolver.arpa is ours to answer (RFC 9462): never forwarded, never recursed.
        if let Some(local) = self.ddr.local(&q) {
            match local {
                Local::Endpoints => self.ddr.write(&q, self.payload(), out),
                Local::Nodata(off) => {
                    self.write_blocked(&q, Blocked::Nodata, SoaOwner::InQuestion(off), None, out)
                }
                Local::Nxdomain(off) => {
                    self.write_blocked(&q, Blocked::Nxdomain, SoaOwner::InQuestion(off), None, out)
                }
            }
            return Fast::Reply;
        }
        if self.doh_canary && q.qname.eq_ignore_ascii_case(DOH_CANARY) {
            self.write_blocked(&q, Blocked::Nxdomain, SoaOwner::InQuestion(0), None, out);
            return Fast::Reply;
        }

        let bl = self.blocklist.load();
        if let Some((v, group)) = self.policy.verdict(&bl, client.ip(), q.qname)
            && v.kind == ListKind::Block
        {
            let hit = (client, transport, group);
            let (text, tap) = (&mut scratch.text, &mut scratch.policy);
            if let Some(fast) = self.apply_block(&bl, &q, v, (q.qname, None), hit, text, tap, out) {
                return fast;
            }
        }

        cache::make_key(&mut scratch.key, &q);
        let miss = |stale| Miss {
            query: q.owned(),
            key: scratch.key.as_slice().into(),
            stale,
            client,
            transport,
        };
        let Some(entry) = self.cache.get(&scratch.key) else {
            metrics::cache_miss();
            return Fast::Miss(miss(None));
        };
        match entry.freshness(Instant::now(), self.cache.config().stale_window()) {
            Some(f @ Freshness::Fresh { age }) => {
                metrics::cache_hit();
                let policy = &mut scratch.policy;
                if let Some(fast) = self.cloaked(&bl, &q, &entry, (client, transport), policy, out)
                {
                    return fast;
                }
                entry.write_response(
                    &q,
                    f,
                    self.cache.config().stale_answer_ttl,
                    self.payload(),
                    self.limit(&q, transport),
                    out,
                );
                if self.cache.config().prefetch && entry.wants_prefetch(age) {
                    Fast::ReplyAndRefresh(miss(None))
                } else {
                    Fast::Reply
                }
            }
            // Stale: try the upstream first; the stale entry is the fallback on failure.
            Some(Freshness::Stale) => {
                metrics::cache_miss();
                Fast::Miss(miss(Some(entry)))
            }
            None => {
                metrics::cache_miss();
                Fast::Miss(miss(None))
            }
        }
    }

    fn write_blocked(
        &self,
        q: &Query<'_>,
        kind: Blocked,
        owner: SoaOwner<'_>,
        reason: Option<Reason<'_>>,
        out: &mut Vec<u8>,
    ) {
        blocked::write(q, kind, owner, reason, &self.sinkhole, self.payload(), out);
    }

    /// CNAME cloaking: if any CNAME/DNAME target in a cached chain is blocked now, the whole
    /// answer becomes the blocked answer for that target's list. Then response IPs: if any A or
    /// AAAA address of the answer is in a block prefix now, likewise for that prefix's list.
    fn cloaked(
        &self,
        bl: &Blocklist,
        q: &Query<'_>,
        entry: &Entry,
        (client, transport): (SocketAddr, Transport),
        tap_policy: &mut Option<Box<TapPolicy>>,
        out: &mut Vec<u8>,
    ) -> Option<Fast> {
        for target in entry.chain.iter() {
            let Some((v, group)) = self.policy.verdict(bl, client.ip(), target) else {
                continue;
            };
            if v.kind != ListKind::Block {
                continue;
            }
            let mut text = String::new();
            let hit = (client, transport, group);
            let matched = (&target[..], None);
            if let Some(fast) = self.apply_block(bl, q, v, matched, hit, &mut text, tap_policy, out)
            {
                return Some(fast);
            }
        }
        // Without address prefixes in the live list this is the whole cost of the check.
        if !bl.has_ips() {
            return None;
        }
        for &addr in entry.addrs.iter() {
            let Some((v, group)) = self.policy.ip_verdict(bl, client.ip(), addr) else {
                continue;
            };
            if v.kind != ListKind::Block {
                continue;
            }
            let mut text = String::new();
            let hit = (client, transport, group);
            let matched = (q.qname, Some(addr));
            if let Some(fast) = self.apply_block(bl, q, v, matched, hit, &mut text, tap_policy, out)
            {
                return Some(fast);
            }
        }
        None
    }

    /// Reports a block verdict for `matched` (the query name, or a CNAME target of its answer;
    /// with an address when an answer address's prefix matched) and, unless the list only
    /// logs, writes the blocked answer. `None`: answer normally.
    #[allow(clippy::too_many_arguments)]
    fn apply_block(
        &self,
        bl: &Blocklist,
        q: &Query<'_>,
        v: Verdict,
        (matched, ip): (&[u8], Option<IpAddr>),
        (client, transport, group): (SocketAddr, Transport, GroupId),
        text: &mut String,
        tap_policy: &mut Option<Box<TapPolicy>>,
        out: &mut Vec<u8>,
    ) -> Option<Fast> {
        self.policy.count(group);
        if self.tap.as_ref().is_some_and(Tap::wants_policy)
            && let Some(list) = bl.list(&v)
        {
            let p = match ip {
                Some(addr) => {
                    let entry = ip_entry(addr, v.matched_labels).to_string();
                    dnstap::policy_ip(&list.name, &entry, v.action, addr)
                }
                None => {
                    let entry = v.entry_name_wire(matched).unwrap_or_default();
                    dnstap::policy(&list.name, &entry, v.action, matched)
                }
            };
            *tap_policy = Some(Box::new(p));
        }
        self.observer.on_block(
            bl,
            &BlockHit {
                client,
                transport,
                qname: q.qname,
                qtype: q.qtype,
                verdict: v,
                matched_name: matched,
                ip,
                group: self.policy.group_name(group),
            },
        );
        let kind = match v.action {
            Action::Log => return None,
            Action::Drop => return Some(Fast::Drop),
            Action::Sinkhole => Blocked::Sinkhole,
            Action::Nxdomain => Blocked::Nxdomain,
            Action::Nodata => Blocked::Nodata,
            Action::Refused => Blocked::Refused,
        };
        // The synthetic SOA is owned by the listed entry: a pointer into the question when the
        // query name matched, the entry's own labels when a CNAME target did; the query name
        // itself when an address did.
        let off = match ip {
            Some(_) => 0,
            None => wire::suffix_offset(matched, v.matched_labels as usize),
        };
        let owner = if std::ptr::eq(matched, q.qname) {
            SoaOwner::InQuestion(off)
        } else {
            SoaOwner::Name(&matched[off..])
        };
        reason_text(bl, &v, text);
        let info_code = bl.list(&v).map_or(ede::BLOCKED, |l| l.ede);
        let reason = Reason {
            info_code,
            extra_text: text,
        };
        self.write_blocked(q, kind, owner, Some(reason), out);
        Some(Fast::Reply)
    }

    /// The whole pipeline for one packet: the fast path, then resolution on a miss (a refresh
    /// the fast path asks for is left out). `None`: send nothing.
    pub async fn answer(
        &self,
        packet: &[u8],
        client: SocketAddr,
        transport: Transport,
    ) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(512);
        match self.answer_fast(packet, client, transport, &mut out, &mut Scratch::default()) {
            Fast::Reply | Fast::ReplyAndRefresh(_) => Some(out),
            Fast::Drop => None,
            Fast::Miss(miss) => self.resolve(miss).await,
        }
    }

    /// Answers a miss: resolves it, stores the answer, checks its CNAME chain against the live
    /// blocklist. `None`: send nothing.
    pub async fn resolve(&self, miss: Miss) -> Option<Vec<u8>> {
        let (client, transport) = (miss.client, miss.transport);
        let mut policy = None;
        let answer = self.resolve_miss(miss, &mut policy).await;
        if let (Some(tap), Some(a)) = (&self.tap, &answer) {
            tap.client_response(a, client, transport, policy.as_deref());
        }
        answer
    }

    async fn resolve_miss(
        &self,
        miss: Miss,
        policy: &mut Option<Box<TapPolicy>>,
    ) -> Option<Vec<u8>> {
        let q = miss.query.as_query();
        let servfail = || {
            Some(wire::bare_response(
                &q,
                rcode::SERVFAIL,
                0,
                self.payload(),
                None,
            ))
        };
        let Some(_place) = self.per_client.admit(miss.client.ip()) else {
            metrics::recursor_limited("client");
            return servfail();
        };
        if self.inflight.fetch_add(1, Ordering::AcqRel) >= self.max_inflight {
            self.inflight.fetch_sub(1, Ordering::AcqRel);
            metrics::recursor_queue_full();
            return Some(wire::bare_response(
                &q,
                rcode::SERVFAIL,
                0,
                self.payload(),
                None,
            ));
        }
        let entry = self.resolve_into_cache(&q, &miss.key, miss.stale).await;
        self.inflight.fetch_sub(1, Ordering::AcqRel);
        let (entry, freshness) = entry?;
        let mut out = Vec::with_capacity(512);
        let bl = self.blocklist.load();
        let hit = (miss.client, miss.transport);
        if let Some(fast) = self.cloaked(&bl, &q, &entry, hit, policy, &mut out) {
            return matches!(fast, Fast::Reply).then_some(out);
        }
        entry.write_response(
            &q,
            freshness,
            self.cache.config().stale_answer_ttl,
            self.payload(),
            self.limit(&q, miss.transport),
            &mut out,
        );
        Some(out)
    }

    /// Refreshes a popular entry before it expires (off the hot path; nobody waits for it).
    pub async fn refresh(&self, miss: Miss) {
        let q = miss.query.as_query();
        let Some(question) =
            Question::from_wire(q.qname, RecordType::from(q.qtype), q.dnssec_ok(), q.cd())
        else {
            return;
        };
        let resolved = self.resolver.resolve(&question).await;
        // A refresh that fails leaves the entry it was to renew: that one is still fresh, and
        // serve-stale can give it out once it has expired. Storing the SERVFAIL would answer
        // clients with failures while a good answer was still valid.
        if resolved.message.metadata.response_code == hickory_proto::op::ResponseCode::ServFail {
            debug!(qname = %wire::name_to_string(q.qname), "prefetch failed; entry kept");
            return;
        }
        let secure = resolved.security == Security::Secure;
        if let Some(entry) =
            Entry::from_message(&resolved.message, secure, resolved.ede, self.cache.config())
        {
            self.cache.insert(&miss.key, entry);
        }
    }

    /// Resolves `q`, stores the answer, and returns the entry to serve: the new one, or `stale`
    /// when resolution failed and serve-stale allows it.
    async fn resolve_into_cache(
        &self,
        q: &Query<'_>,
        key: &[u8],
        stale: Option<Arc<Entry>>,
    ) -> Option<(Arc<Entry>, Freshness)> {
        let question =
            Question::from_wire(q.qname, RecordType::from(q.qtype), q.dnssec_ok(), q.cd())?;
        let resolved = self.resolver.resolve(&question).await;
        let failed =
            resolved.message.metadata.response_code == hickory_proto::op::ResponseCode::ServFail;
        let config = self.cache.config();
        if failed
            && config.serve_stale
            && let Some(old) = stale
            && let Some(f) = old.freshness(Instant::now(), config.stale_ttl)
        {
            debug!(qname = %wire::name_to_string(q.qname), "serving stale");
            return Some((old, f));
        }
        let secure = resolved.security == Security::Secure;
        let entry = Entry::from_message(&resolved.message, secure, resolved.ede, config)?;
        let entry = self.cache.insert(key, entry);
        Some((entry, Freshness::Fresh { age: 0 }))
    }
}

/// EXTRA-TEXT of the EDE: which list, which category. Written into a reused buffer.
fn reason_text(bl: &Blocklist, v: &Verdict, text: &mut String) {
    use std::fmt::Write;
    text.clear();
    let _ = match bl.list(v) {
        Some(l) => write!(text, "fraudwall: listed in {} ({})", l.name, l.category),
        None => write!(text, "fraudwall: listed"),
    };
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use hickory_proto::{
        op::{Message, MessageType, OpCode, Query as HQuery},
        rr::{RData, Record, rdata::A},
    };

    use super::*;
    use crate::{
        blocklist::{Compiler, Format, ListInfo, MatchMode},
        dns::cache::CacheConfig,
        probe,
        resolve::Resolved,
    };

    /// An upstream that answers every question with one A record.
    struct Stub;

    #[async_trait::async_trait]
    impl Resolve for Stub {
        async fn resolve(&self, q: &Question) -> Resolved {
            let mut m = Message::new(0, MessageType::Response, OpCode::Query);
            m.add_query(HQuery::query(q.name.clone(), q.qtype));
            m.add_answer(Record::from_rdata(
                q.name.clone(),
                300,
                RData::A(A::new(198, 18, 0, 1)),
            ));
            Resolved {
                message: m,
                security: Security::Insecure,
                ede: None,
            }
        }
    }

    fn engine() -> Engine {
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
        c.insert(
            id,
            "fraud.test",
            ListKind::Block,
            MatchMode::Subtree,
            Action::Sinkhole,
        )
        .unwrap();
        let bl = Blocklist::from_bytes(c.to_bytes().unwrap()).unwrap();
        Engine::new(Parts {
            server: ServerConfig::default(),
            access: AccessConfig {
                allow: vec!["127.0.0.0/8".parse().unwrap()],
            },
            sinkhole: SinkholeConfig {
                ipv4: Ipv4Addr::new(198, 18, 0, 53),
                ipv6: Ipv6Addr::LOCALHOST,
                ttl: 60,
            },
            doh_canary: true,
            max_inflight: 10,
            max_inflight_per_client: 10,
            blocklist: SharedBlocklist::fixed(bl),
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
            resolver: Arc::new(Stub),
            observer: Box::new(IgnoreBlocks),
        })
    }

    fn query(name: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        wire::put_header(&mut b, 7, wire::flags::RD, (1, 0, 0, 0));
        b.extend_from_slice(name);
        b.extend_from_slice(&rtype::A.to_be_bytes());
        b.extend_from_slice(&wire::CLASS_IN.to_be_bytes());
        b
    }

    const CLIENT: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 5300);

    /// The work a query costs on each path, counted where it is done. A miss must not parse its
    /// packet again on its way upstream, nor look its name up twice.
    #[tokio::test]
    async fn each_path_parses_looks_up_and_reads_the_cache_once() {
        let e = engine();
        let benign = query(b"\x03www\x07example\x04test\x00");
        probe::take();
        let a = e.answer(&benign, CLIENT, Transport::Udp).await.unwrap();
        assert_eq!(a[3] & 0xf, rcode::NOERROR);
        assert_eq!(
            probe::take(),
            (1, 1, 1),
            "miss: parses, lookups, cache gets"
        );
        e.answer(&benign, CLIENT, Transport::Udp).await.unwrap();
        assert_eq!(probe::take(), (1, 1, 1), "cache hit");
        e.answer(
            &query(b"\x03www\x05fraud\x04test\x00"),
            CLIENT,
            Transport::Udp,
        )
        .await
        .unwrap();
        assert_eq!(probe::take(), (1, 1, 0), "blocked: no cache");
    }
}
