//! Our own iterative resolver: from the root hints down the delegations to the answer, with
//! DNSSEC validation, on hickory-proto's messages and signature checks.
//!
//! The shape is Unbound's: a lookup of one name and type ([`Recursor::lookup`]) is answered
//! from the RRset and negative caches when it can be, else by asking the servers of the
//! closest known zone cut ([`Recursor::iterate`]), following referrals down, with QNAME
//! minimisation (RFC 9156, relaxed as Unbound's), glue, and the addresses of name servers
//! looked up as lookups of their own. Every RRset that an answer depends on is validated up the
//! chain of trust ([`validate`]); denials are proven by NSEC or NSEC3 ([`denial`]), and
//! validated NSEC and NSEC3 chains answer names that do not exist without asking (RFC 8198).
//! Every cache lives in one byte budget. Identical
//! lookups in flight share one resolution. What each server does (RTT, timeouts, lameness) is
//! remembered ([`servers`]), so the fastest is asked first and a dead one is not waited for
//! again.
//!
//! [`Recursor::resolve`] follows the CNAME and DNAME chain of a client's question and builds
//! the response.

mod cache;
mod denial;
pub mod exchange;
mod response;
mod servers;
mod validate;

pub use validate::Anchors;

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures_util::{FutureExt, future::BoxFuture, future::Shared};
use hickory_proto::{
    op::{Message, MessageType, OpCode, Query, ResponseCode},
    rr::{Name, RData, Record, RecordType},
};
use ipnet::IpNet;
use tracing::debug;

use cache::{Cache, Negative, Rank, RrSet, Status};
use exchange::{Ask, ExchangeError};
use response::{Groups, Kind, cname_target, dname_target};
use servers::Servers;

use super::{Question, Resolved, Security, finish};
use crate::dns::ede;

/// Most CNAME/DNAME links followed for one question, as Unbound's `max-restart` (11).
const MAX_CHAIN: usize = 11;
/// Most referrals followed for one lookup.
const MAX_REFERRALS: usize = 40;
/// How deep lookups may nest (a name server's address, the DS and DNSKEY of a zone...).
const MAX_DEPTH: u8 = 12;
/// Minimisation steps of one label at a time before it takes bigger steps (Unbound's
/// MINIMISE_ONE_LAB), and most minimisation steps in all (MINIMISE_COUNT).
const MINIMISE_ONE_LABEL: usize = 4;
const MINIMISE_COUNT: usize = 10;
/// TTL of a remembered SERVFAIL for a name (so a flood of the same failing name is cheap).
const FAIL_TTL: u32 = 5;

/// Address ranges no name server may be in unless `resolver.allow_private_servers` (RFC 6890
/// special-purpose ranges: loopback, private, link-local, CGNAT, benchmarking, multicast...).
const SPECIAL: [&str; 16] = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "224.0.0.0/3",
    "::/127",
    "::ffff:0:0/96",
    "64:ff9b:1::/48",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
];

/// How the recursor is set up.
#[derive(Clone, Debug)]
pub struct Options {
    /// Root server addresses (hints).
    pub roots: Vec<IpAddr>,
    /// Allow name servers in special-purpose ranges (test labs).
    pub allow_private_servers: bool,
    /// Ask each server only for as much of the name as it needs to know (RFC 9156).
    pub qname_minimisation: bool,
    /// Longest wait for one server.
    pub server_timeout: Duration,
    /// Validate (with these trust anchors); `None`: no DNSSEC.
    pub anchors: Option<validate::Anchors>,
    /// Bytes the caches may hold.
    pub cache_bytes: usize,
    /// Longest a lookup (with everything it needs) may take.
    pub deadline: Duration,
    /// Outstanding queries to the servers of one zone; beyond it lookups there wait their turn
    /// (at most [`WAITERS_PER_SLOT`] times as many, until their deadline), the rest fail.
    pub max_per_zone: usize,
}

/// The result of one lookup of a name and type, no CNAME followed.
#[derive(Clone, Debug)]
pub enum Lookup {
    /// The RRset asked for.
    Data(Arc<RrSet>),
    /// A CNAME at the name (asked for another type).
    Cname(Arc<RrSet>),
    /// A DNAME at an ancestor, and the name it maps the question's name to.
    Dname(Arc<RrSet>, Name),
    /// NXDOMAIN or NODATA.
    Negative(Arc<Negative>),
    /// No usable answer (SERVFAIL), with an EDE code when there is a reason to give.
    Fail(Option<u16>),
}

type Flight = Shared<BoxFuture<'static, Lookup>>;

/// A lookup in flight: its future, when it must be done, and which one it is (an entry is only
/// removed by the lookup that made it).
struct InFlight {
    flight: Flight,
    deadline: tokio::time::Instant,
    id: u64,
}

/// The lookups a lookup is part of (the client's question, the name server address or key it
/// needs...), innermost first, and the deadline of the client's question: a lookup never waits
/// for one of its own ancestors, and never outlives the question it serves.
#[derive(Clone, Debug)]
pub struct Path {
    node: Option<Arc<(Name, RecordType, Path)>>,
    deadline: tokio::time::Instant,
}

impl Path {
    /// The path of a client's question that must be answered by `deadline`.
    pub fn new(deadline: tokio::time::Instant) -> Path {
        Path {
            node: None,
            deadline,
        }
    }

    fn with(&self, name: &Name, rtype: RecordType) -> Path {
        Path {
            node: Some(Arc::new((name.clone(), rtype, self.clone()))),
            deadline: self.deadline,
        }
    }

    fn contains(&self, name: &Name, rtype: RecordType) -> bool {
        let mut p = &self.node;
        while let Some(node) = p {
            if node.1 == rtype && node.0 == *name {
                return true;
            }
            p = &node.2.node;
        }
        false
    }

    fn depth(&self) -> u8 {
        let mut d = 0u8;
        let mut p = &self.node;
        while let Some(node) = p {
            d = d.saturating_add(1);
            p = &node.2.node;
        }
        d
    }
}

/// The iterative resolver. Cheap to share behind an `Arc`.
pub struct Recursor {
    opts: Options,
    deny: Vec<IpNet>,
    servers: Servers,
    cache: Cache,
    /// Lookups being resolved: identical ones join instead of asking again.
    flights: Mutex<HashMap<(Name, RecordType), InFlight>>,
    /// Numbers the lookups in flight.
    next_flight: std::sync::atomic::AtomicU64,
    /// Outstanding and waiting queries per zone.
    zone_load: Mutex<HashMap<Name, Arc<ZoneSlots>>>,
    /// What each zone's keys are.
    keys: validate::KeyTable,
    /// RRsets whose signatures already verified.
    proven: validate::Proven,
    this: std::sync::Weak<Recursor>,
}

/// A zone cut and how to reach its servers.
#[derive(Clone, Debug)]
struct Delegation {
    zone: Name,
    /// Name server names (empty for the root hints) and the addresses known for them.
    servers: Vec<(Option<Name>, Vec<IpAddr>)>,
}

impl Recursor {
    /// A recursor with empty caches.
    pub fn new(opts: Options) -> Arc<Recursor> {
        let deny = if opts.allow_private_servers {
            Vec::new()
        } else {
            SPECIAL
                .iter()
                .map(|s| s.parse().expect("literal"))
                .collect()
        };
        let budget = opts.cache_bytes;
        Arc::new_cyclic(|this| Recursor {
            servers: Servers::new(opts.server_timeout),
            // Nine tenths for what is looked up, the rest for keys and verified signatures.
            cache: Cache::new(budget / 10 * 9),
            opts,
            deny,
            flights: Mutex::new(HashMap::new()),
            next_flight: std::sync::atomic::AtomicU64::new(0),
            zone_load: Mutex::new(HashMap::new()),
            keys: validate::KeyTable::new(budget / 20),
            proven: validate::Proven::new(budget / 20),
            this: this.clone(),
        })
    }

    /// Whether answers are validated.
    pub fn is_validating(&self) -> bool {
        self.opts.anchors.is_some()
    }

    /// Bytes held by the caches.
    pub fn cache_bytes(&self) -> usize {
        self.cache.bytes()
    }

    /// Resolves a client's question: follows CNAMEs and DNAMEs from the question's name,
    /// validates, and builds the response.
    pub async fn resolve(&self, q: &Question) -> Resolved {
        let now = Instant::now();
        let mut m = Message::new(0, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(q.name.clone(), q.qtype));
        let mut security = if self.is_validating() {
            Security::Secure
        } else {
            Security::Insecure
        };
        let mut reason: Option<u16> = None;
        let mut worst = |s: Option<Security>, e: Option<u16>, security: &mut Security| match s {
            Some(Security::Bogus) => {
                *security = Security::Bogus;
                if reason.is_none() {
                    reason = e;
                }
            }
            Some(Security::Insecure) | None if *security == Security::Secure => {
                *security = Security::Insecure;
            }
            _ => {}
        };
        // A little before the resolver's own deadline, so that every lookup of this question
        // ends (and leaves the table of lookups in flight) before the question is given up.
        let deadline = tokio::time::Instant::now()
            + self.opts.deadline.saturating_sub(Duration::from_millis(50));
        let path = Path::new(deadline);
        let mut name = q.name.clone();
        let mut seen = vec![name.clone()];
        for _ in 0..=MAX_CHAIN {
            match self.lookup(name.clone(), q.qtype, &path).await {
                Lookup::Data(set) => {
                    worst(set.status.security(), status_ede(set.status), &mut security);
                    m.answers.extend(set.aged(now, true));
                    m.authorities.extend(set.proof.iter().cloned());
                    return self.finish(q, m, security, reason);
                }
                Lookup::Cname(set) => {
                    worst(set.status.security(), status_ede(set.status), &mut security);
                    m.answers.extend(set.aged(now, true));
                    m.authorities.extend(set.proof.iter().cloned());
                    let Some(next) = set.records().iter().find_map(cname_target).cloned() else {
                        return self.fail(q, None);
                    };
                    if seen.contains(&next) {
                        return self.fail(q, None);
                    }
                    seen.push(next.clone());
                    name = next;
                }
                Lookup::Dname(set, next) => {
                    worst(set.status.security(), status_ede(set.status), &mut security);
                    m.answers.extend(set.aged(now, true));
                    // The CNAME the DNAME implies (RFC 6672 §3.3), unsigned, with the DNAME's
                    // TTL; it is as secure as the DNAME it follows from.
                    let ttl = set.ttl_left(now);
                    m.answers.push(Record::from_rdata(
                        name.clone(),
                        ttl,
                        RData::CNAME(hickory_proto::rr::rdata::CNAME(next.clone())),
                    ));
                    if seen.contains(&next) {
                        return self.fail(q, None);
                    }
                    seen.push(next.clone());
                    name = next;
                }
                Lookup::Negative(neg) => {
                    worst(neg.status.security(), status_ede(neg.status), &mut security);
                    m.metadata.response_code = if neg.nxdomain {
                        ResponseCode::NXDomain
                    } else {
                        ResponseCode::NoError
                    };
                    m.authorities
                        .extend(neg.authority.iter().cloned().map(|mut r| {
                            // RFC 2308 §5: the SOA's TTL in a negative answer is its MINIMUM at
                            // most; the TTLs count down with the entry's age.
                            if let RData::SOA(soa) = &r.data {
                                r.ttl = r.ttl.min(soa.minimum);
                            }
                            let age = now.saturating_duration_since(neg.stored).as_secs();
                            r.ttl = r.ttl.saturating_sub(u32::try_from(age).unwrap_or(u32::MAX));
                            r
                        }));
                    return self.finish(q, m, security, reason);
                }
                Lookup::Fail(e) => return self.fail(q, e),
            }
        }
        // A chain longer than Unbound follows.
        self.fail(q, None)
    }

    fn finish(
        &self,
        q: &Question,
        m: Message,
        security: Security,
        reason: Option<u16>,
    ) -> Resolved {
        let mut resolved = finish(q, m, security);
        if security == Security::Bogus && !q.checking_disabled {
            resolved.ede = Some(reason.unwrap_or(ede::DNSSEC_BOGUS));
        }
        resolved
    }

    fn fail(&self, q: &Question, e: Option<u16>) -> Resolved {
        let mut r = super::servfail(q);
        r.ede = e;
        r
    }

    /// One name and type, no CNAME followed: from the caches, from a validated NSEC(3) chain, by
    /// joining an identical lookup in flight, or by asking. A lookup that asks is shared with
    /// identical ones that come while it runs; it ends by its question's deadline, so an entry
    /// in the table of lookups in flight is never left behind unpolled.
    pub fn lookup(&self, name: Name, qtype: RecordType, path: &Path) -> BoxFuture<'static, Lookup> {
        let Some(this) = self.this.upgrade() else {
            return futures_util::future::ready(Lookup::Fail(None)).boxed();
        };
        let path = path.clone();
        async move {
            if let Some(hit) = this.cached(&name, qtype) {
                return hit;
            }
            if path.contains(&name, qtype) || path.depth() > MAX_DEPTH {
                // A dependency cycle (glueless delegations that need each other) or too deep.
                return Lookup::Fail(None);
            }
            if let Some(synth) = this.synthesise(&name, qtype, &path).await {
                return synth;
            }
            let key = (name.clone(), qtype);
            let now = tokio::time::Instant::now();
            let flight = {
                let mut flights = this.flights.lock().unwrap_or_else(|e| e.into_inner());
                match flights.get(&key) {
                    // Join it if it can still finish in time for this question.
                    Some(f) if f.deadline > now => f.flight.clone(),
                    _ => {
                        let me = this.clone();
                        let inner = path.with(&name, qtype);
                        let deadline = path.deadline;
                        let id = this
                            .next_flight
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let done = key.clone();
                        let flight = async move {
                            let out =
                                tokio::time::timeout_at(deadline, me.iterate(name, qtype, &inner))
                                    .await
                                    .unwrap_or(Lookup::Fail(None));
                            let mut flights = me.flights.lock().unwrap_or_else(|e| e.into_inner());
                            if flights.get(&done).is_some_and(|f| f.id == id) {
                                flights.remove(&done);
                            }
                            out
                        }
                        .boxed()
                        .shared();
                        flights.insert(
                            key,
                            InFlight {
                                flight: flight.clone(),
                                deadline,
                                id,
                            },
                        );
                        flight
                    }
                }
            };
            flight.await
        }
        .boxed()
    }

    /// What the caches know of `name`/`qtype`.
    fn cached(&self, name: &Name, qtype: RecordType) -> Option<Lookup> {
        if let Some(set) = self.cache.rrset(name, qtype)
            && set.rank >= Rank::Answer
            && set.status != Status::Unchecked
        {
            return Some(Lookup::Data(set));
        }
        if qtype != RecordType::CNAME
            && let Some(set) = self.cache.rrset(name, RecordType::CNAME)
            && set.status != Status::Unchecked
        {
            return Some(Lookup::Cname(set));
        }
        if let Some(neg) = self.cache.nodata(name, qtype)
            && neg.status != Status::Unchecked
        {
            return Some(Lookup::Negative(neg));
        }
        if let Some(neg) = self.cache.nxdomain(name, &Name::root())
            && neg.status != Status::Unchecked
        {
            return Some(Lookup::Negative(neg));
        }
        None
    }

    /// Asks the servers, from the closest known zone cut down.
    async fn iterate(&self, name: Name, qtype: RecordType, path: &Path) -> Lookup {
        // DS records live in the parent zone: start above the name.
        let start = if qtype == RecordType::DS && !name.is_root() {
            name.base_name()
        } else {
            name.clone()
        };
        let mut del = self.closest_delegation(&start);
        let mut minimise = self.opts.qname_minimisation && qtype != RecordType::DS;
        let mut steps = 0usize;
        for _ in 0..MAX_REFERRALS {
            // The name to ask the zone's servers for: one label more than they know, while
            // minimising, then the whole name.
            let (target, ask_type) = match minimise.then(|| minimised(&del.zone, &name, steps)) {
                Some(Some(t)) => (t, RecordType::A),
                _ => (name.clone(), qtype),
            };
            let asked_full = target == name;
            let Some((m, zone)) = self.ask(&del, &target, ask_type, path).await else {
                if minimise && !asked_full {
                    // Relaxed minimisation: servers that fail a shortened name may answer the
                    // whole one. (When they failed the whole name already, asking it again
                    // only doubles the wait for a zone whose servers are all silent.)
                    minimise = false;
                    continue;
                }
                return Lookup::Fail(None);
            };
            let kind = response::classify(&m, &zone, &target, ask_type);
            match kind {
                Kind::Referral(child) => {
                    self.store_referral(&m, &zone, &child);
                    match self.delegation_of(&child) {
                        Some(d) => del = d,
                        None => return Lookup::Fail(None),
                    }
                    steps = 0;
                }
                _ if !asked_full => {
                    // A shortened name was answered without a referral: no zone cut there.
                    steps += 1;
                    match kind {
                        // A CNAME or DNAME on the way, or a name that does not exist: ask the
                        // whole name now (RFC 9156 §2.3, relaxed).
                        Kind::Cname | Kind::Dname(_) | Kind::NxDomain => minimise = false,
                        Kind::Lame(_) => minimise = false,
                        _ if steps >= MINIMISE_COUNT => minimise = false,
                        _ => {}
                    }
                }
                Kind::Data => {
                    return self
                        .answer(&m, &zone, &name, qtype, path, Lookup::Data)
                        .await;
                }
                Kind::Cname => {
                    return self
                        .answer(&m, &zone, &name, RecordType::CNAME, path, Lookup::Cname)
                        .await;
                }
                Kind::Dname(owner) => return self.dname(&m, &zone, &name, &owner, path).await,
                Kind::NxDomain | Kind::NoData => {
                    let nx = matches!(kind, Kind::NxDomain);
                    return self.negative(&m, &zone, &name, qtype, nx, path).await;
                }
                Kind::Lame(why) => {
                    debug!(%zone, %name, why, "no usable answer from any server");
                    return Lookup::Fail(None);
                }
            }
        }
        Lookup::Fail(None)
    }

    /// Asks the servers of `del` in turn until one gives an answer that is not lame. Returns
    /// the answer and the zone it is from.
    async fn ask(
        &self,
        del: &Delegation,
        target: &Name,
        qtype: RecordType,
        path: &Path,
    ) -> Option<(Message, Name)> {
        let _load = match ZoneLoad::take(self, &del.zone, path.deadline).await {
            Some(l) => l,
            None => {
                crate::metrics::recursor_limited("zone");
                return None;
            }
        };
        let mut tried: Vec<IpAddr> = Vec::new();
        let mut resolved_names: Vec<Name> = Vec::new();
        loop {
            let candidates: Vec<IpAddr> = del
                .servers
                .iter()
                .flat_map(|(_, a)| a.iter().copied())
                .chain(self.known_addrs(del))
                .filter(|ip| !tried.contains(ip) && self.allowed(*ip))
                .collect();
            let mut order = self.servers.order(&candidates);
            order.dedup();
            // Servers held back after timeouts are not asked until their hold ends (then one
            // query probes them again): a zone whose servers are all silent fails at once.
            let next = order.iter().copied().find(|ip| !self.servers.is_held(*ip));
            let Some(ip) = next else {
                if !order.is_empty() {
                    debug!(zone = %del.zone, "every server of the zone is held back");
                    return None;
                }
                // Look up the address of a name server we have none for, then try again.
                match self.resolve_ns_addr(del, &mut resolved_names, path).await {
                    true => continue,
                    false => return None,
                }
            };
            tried.push(ip);
            let ask = Ask {
                edns: self.servers.edns(ip),
                dnssec: self.is_validating(),
            };
            let started = Instant::now();
            let timeout = self.servers.timeout(ip);
            let addr = SocketAddr::new(ip, 53);
            match exchange::query(addr, target, qtype, ask, timeout).await {
                Ok(m) => {
                    self.servers.answered(ip, started.elapsed());
                    if m.metadata.response_code == ResponseCode::FormErr && ask.edns {
                        self.servers.no_edns(ip);
                        tried.pop();
                        continue;
                    }
                    if let Kind::Lame(why) = response::classify(&m, &del.zone, target, qtype) {
                        debug!(server = %ip, zone = %del.zone, %target, why, "lame answer");
                        self.servers.lame(ip);
                        continue;
                    }
                    return Some((m, del.zone.clone()));
                }
                Err(ExchangeError::Timeout) => {
                    debug!(server = %ip, zone = %del.zone, %target, "timeout");
                    self.servers.timed_out(ip);
                }
                Err(e) => {
                    debug!(server = %ip, zone = %del.zone, %target, error = %e, "query failed");
                    self.servers.timed_out(ip);
                }
            }
        }
    }

    fn allowed(&self, ip: IpAddr) -> bool {
        !self.deny.iter().any(|net| net.contains(&ip))
    }

    /// Addresses of `del`'s name servers found in the cache since the delegation was read.
    fn known_addrs(&self, del: &Delegation) -> Vec<IpAddr> {
        del.servers
            .iter()
            .filter(|(_, addrs)| addrs.is_empty())
            .filter_map(|(n, _)| n.as_ref())
            .flat_map(|n| self.addrs_of(n))
            .collect()
    }

    /// Looks up the address of one name server of `del` that has none yet. False when there
    /// is none left to look up.
    async fn resolve_ns_addr(&self, del: &Delegation, done: &mut Vec<Name>, path: &Path) -> bool {
        for (ns, addrs) in &del.servers {
            let Some(ns) = ns else { continue };
            if !addrs.is_empty() || done.contains(ns) || !self.addrs_of(ns).is_empty() {
                continue;
            }
            done.push(ns.clone());
            // A name server inside the zone it serves, without glue, cannot be found through
            // that zone.
            if del.zone.zone_of(ns) {
                continue;
            }
            for t in [RecordType::A, RecordType::AAAA] {
                let found = matches!(self.lookup(ns.clone(), t, path).await, Lookup::Data(_));
                if found && !self.addrs_of(ns).is_empty() {
                    return true;
                }
            }
        }
        false
    }

    /// Cached addresses of `name`.
    fn addrs_of(&self, name: &Name) -> Vec<IpAddr> {
        [RecordType::A, RecordType::AAAA]
            .iter()
            .filter_map(|t| self.cache.rrset(name, *t))
            .flat_map(|set| {
                set.records()
                    .iter()
                    .filter_map(|r| r.data.ip_addr())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The deepest zone cut at or above `name` that the cache knows, else the root hints.
    fn closest_delegation(&self, name: &Name) -> Delegation {
        let mut n = name.clone();
        loop {
            if let Some(d) = self.delegation_of(&n) {
                return d;
            }
            if n.is_root() {
                break;
            }
            n = n.base_name();
        }
        Delegation {
            zone: Name::root(),
            servers: vec![(None, self.opts.roots.clone())],
        }
    }

    /// The delegation of `zone` from its cached NS RRset.
    fn delegation_of(&self, zone: &Name) -> Option<Delegation> {
        let ns = self.cache.rrset(zone, RecordType::NS)?;
        let servers: Vec<(Option<Name>, Vec<IpAddr>)> = ns
            .records()
            .iter()
            .filter_map(|r| match &r.data {
                RData::NS(n) => Some(n.0.clone()),
                _ => None,
            })
            .map(|n| {
                let addrs = self.addrs_of(&n);
                (Some(n), addrs)
            })
            .collect();
        if servers.is_empty() {
            return None;
        }
        if zone.is_root() && servers.iter().all(|(_, a)| a.is_empty()) {
            return None;
        }
        Some(Delegation {
            zone: zone.clone(),
            servers,
        })
    }

    /// Stores what a referral to `child` says: its NS RRset, glue within the delegating
    /// zone's bailiwick, and the DS RRset or the NSEC/NSEC3 records that deny one.
    fn store_referral(&self, m: &Message, zone: &Name, child: &Name) {
        let auth = Groups::of(&m.authorities);
        if let Some(ns) = auth.get(child, RecordType::NS) {
            self.store(
                child,
                RecordType::NS,
                ns,
                Rank::Authority,
                Status::Unchecked,
            );
        }
        let names: Vec<Name> = auth
            .get(child, RecordType::NS)
            .map(|g| {
                g.records
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::NS(n) => Some(n.0.clone()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let extra = Groups::of(&m.additionals);
        for ((owner, t), g) in &extra.0 {
            if matches!(t, RecordType::A | RecordType::AAAA)
                && names.contains(owner)
                && zone.zone_of(owner)
            {
                self.store(owner, *t, g, Rank::Glue, Status::Unchecked);
            }
        }
        if let Some(ds) = auth.get(child, RecordType::DS) {
            self.store(
                child,
                RecordType::DS,
                ds,
                Rank::Authority,
                Status::Unchecked,
            );
        } else if self.is_validating() {
            let proof: Vec<Record> = m
                .authorities
                .iter()
                .filter(|r| {
                    let t = response::covered(r).unwrap_or(r.record_type());
                    matches!(t, RecordType::NSEC | RecordType::NSEC3)
                })
                .cloned()
                .collect();
            if !proof.is_empty() {
                let ttl = proof.iter().map(|r| r.ttl).min().unwrap_or(0);
                self.cache.store_negative(
                    child,
                    RecordType::DS,
                    Negative {
                        nxdomain: false,
                        authority: proof,
                        status: Status::Unchecked,
                        stored: Instant::now(),
                        ttl,
                    },
                );
            }
        }
    }

    /// Stores one RRset as it came.
    fn store(
        &self,
        name: &Name,
        rtype: RecordType,
        g: &response::Group,
        rank: Rank,
        status: Status,
    ) -> Arc<RrSet> {
        let ttl = g.records.iter().map(|r| r.ttl).min().unwrap_or(0);
        // Without validation everything is insecure from the start.
        let status = if self.is_validating() {
            status
        } else {
            Status::Checked(Security::Insecure, None)
        };
        self.cache.store_rrset(RrSet {
            name: name.clone(),
            rtype,
            records: cache::Packed::pack(&g.records),
            sigs: cache::Packed::pack(&g.sigs),
            proof: Vec::new(),
            rank,
            status,
            stored: Instant::now(),
            ttl,
        })
    }

    /// An answer with the RRset of `name`/`rtype`: stores and validates it (and the other
    /// RRsets of the answer section inside the zone, which a CNAME chain will want next).
    async fn answer(
        &self,
        m: &Message,
        zone: &Name,
        name: &Name,
        rtype: RecordType,
        path: &Path,
        wrap: fn(Arc<RrSet>) -> Lookup,
    ) -> Lookup {
        let answers = Groups::of(&m.answers);
        let dnames: Vec<&Name> = answers.of_type(RecordType::DNAME).map(|(n, _)| n).collect();
        let mut wanted = None;
        for ((owner, t), g) in &answers.0 {
            if !zone.zone_of(owner) {
                continue;
            }
            let is_wanted = owner == name && (*t == rtype || rtype == RecordType::ANY);
            // DNAMEs are handled where they apply; the CNAMEs synthesised from them are not
            // signed and are never cached as CNAMEs of their own.
            if !is_wanted
                && (*t == RecordType::DNAME
                    || (*t == RecordType::CNAME
                        && dnames.iter().any(|d| *d != owner && d.zone_of(owner))))
            {
                continue;
            }
            let set = self.store(owner, *t, g, Rank::Answer, Status::Unchecked);
            let set = self.validate_rrset(set, zone, m, path).await;
            if is_wanted && wanted.is_none() {
                wanted = Some(set);
            }
        }
        match wanted {
            Some(set) => wrap(set),
            None => Lookup::Fail(None),
        }
    }

    /// A DNAME at `owner` covers `name`: validates it and returns where it leads.
    async fn dname(
        &self,
        m: &Message,
        zone: &Name,
        name: &Name,
        owner: &Name,
        path: &Path,
    ) -> Lookup {
        let answers = Groups::of(&m.answers);
        let Some(g) = answers.get(owner, RecordType::DNAME) else {
            return Lookup::Fail(None);
        };
        let Some(target) = g.records.first().and_then(dname_target) else {
            return Lookup::Fail(None);
        };
        let Some(next) = response::substitute(name, owner, &target) else {
            // The substitution would be too long a name: YXDOMAIN in RFC 6672; SERVFAIL here.
            return Lookup::Fail(None);
        };
        let set = self.store(owner, RecordType::DNAME, g, Rank::Answer, Status::Unchecked);
        let set = self.validate_rrset(set, zone, m, path).await;
        Lookup::Dname(set, next)
    }

    /// An NXDOMAIN or NODATA answer for `name`/`qtype`: validates and stores it.
    async fn negative(
        &self,
        m: &Message,
        zone: &Name,
        name: &Name,
        qtype: RecordType,
        nxdomain: bool,
        path: &Path,
    ) -> Lookup {
        // The SOA of the zone and the denial records, with their signatures.
        let authority: Vec<Record> = m
            .authorities
            .iter()
            .filter(|r| {
                let t = response::covered(r).unwrap_or(r.record_type());
                matches!(t, RecordType::SOA | RecordType::NSEC | RecordType::NSEC3)
            })
            .cloned()
            .collect();
        let ttl = authority
            .iter()
            .map(|r| match &r.data {
                RData::SOA(soa) => r.ttl.min(soa.minimum),
                _ => r.ttl,
            })
            .min()
            .unwrap_or(FAIL_TTL);
        let neg = Negative {
            nxdomain,
            authority,
            status: Status::Unchecked,
            stored: Instant::now(),
            ttl,
        };
        let status = self.validate_negative(&neg, zone, name, qtype, path).await;
        if status == Status::Checked(Security::Secure, None) {
            // The zone's validated SOA, for the negative answers a cached NSEC chain
            // synthesises later.
            let auth = Groups::of(&neg.authority);
            if let Some((owner, g)) = auth.of_type(RecordType::SOA).next() {
                self.store(owner, RecordType::SOA, g, Rank::Authority, status);
            }
        }
        let neg = self
            .cache
            .store_negative(name, qtype, Negative { status, ..neg });
        Lookup::Negative(neg)
    }
}

/// The Extended DNS Error of a status, when bogus.
fn status_ede(s: Status) -> Option<u16> {
    match s {
        Status::Checked(Security::Bogus, e) => Some(e.unwrap_or(ede::DNSSEC_BOGUS)),
        _ => None,
    }
}

/// The name to ask the servers of `zone` for at minimisation step `step` on the way to
/// `name`: one label more than `zone` for the first steps, then bigger steps so that a
/// 100-label name takes about ten queries (Unbound's scheme). `None`: ask the whole name.
fn minimised(zone: &Name, name: &Name, step: usize) -> Option<Name> {
    let have = usize::from(zone.num_labels());
    let total = usize::from(name.num_labels());
    let remaining = total.saturating_sub(have);
    if remaining <= 1 {
        return None;
    }
    let add = if step < MINIMISE_ONE_LABEL {
        step + 1
    } else {
        let left = MINIMISE_COUNT.saturating_sub(MINIMISE_ONE_LABEL).max(1);
        let rest = remaining.saturating_sub(MINIMISE_ONE_LABEL);
        MINIMISE_ONE_LABEL + (rest * (step + 1 - MINIMISE_ONE_LABEL)).div_ceil(left)
    };
    if add >= remaining {
        return None;
    }
    Some(name.trim_to(have + add))
}

/// Lookups that may wait for each slot of a zone's cap: a busy popular zone queues a burst of
/// misses for a moment; a flood against a silent zone is refused at once beyond that.
const WAITERS_PER_SLOT: usize = 4;

/// The cap of one zone: its slots, and how many lookups wait for one.
struct ZoneSlots {
    slots: Arc<tokio::sync::Semaphore>,
    waiting: std::sync::atomic::AtomicUsize,
}

/// A query to a zone's servers, counted against the per-zone cap while it is outstanding.
struct ZoneLoad<'a> {
    // Fields drop in order: the slot is given back before the entry is looked at.
    _permit: tokio::sync::OwnedSemaphorePermit,
    _zone: ZoneRef<'a>,
}

/// A use of a zone's entry in the table; the last use removes it.
struct ZoneRef<'a> {
    recursor: &'a Recursor,
    zone: Name,
    slots: Arc<ZoneSlots>,
}

impl<'a> ZoneLoad<'a> {
    /// A slot at `zone`, waiting in line (FIFO) until `deadline` when all are taken; `None`
    /// when the line is full or the deadline passes.
    async fn take(
        recursor: &'a Recursor,
        zone: &Name,
        deadline: tokio::time::Instant,
    ) -> Option<ZoneLoad<'a>> {
        use std::sync::atomic::Ordering::Relaxed;
        let cap = recursor.opts.max_per_zone;
        let slots = recursor
            .zone_load
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(zone.clone())
            .or_insert_with(|| {
                Arc::new(ZoneSlots {
                    slots: Arc::new(tokio::sync::Semaphore::new(cap)),
                    waiting: 0.into(),
                })
            })
            .clone();
        let entry = ZoneRef {
            recursor,
            zone: zone.clone(),
            slots,
        };
        let sem = entry.slots.slots.clone();
        let permit = match sem.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) if entry.slots.waiting.fetch_add(1, Relaxed) < cap * WAITERS_PER_SLOT => {
                let p = tokio::time::timeout_at(deadline, sem.acquire_owned()).await;
                entry.slots.waiting.fetch_sub(1, Relaxed);
                p.ok()?.ok()?
            }
            Err(_) => {
                entry.slots.waiting.fetch_sub(1, Relaxed);
                return None;
            }
        };
        Some(ZoneLoad {
            _permit: permit,
            _zone: entry,
        })
    }
}

impl Drop for ZoneRef<'_> {
    fn drop(&mut self) {
        let mut load = self
            .recursor
            .zone_load
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // The table's reference and ours: nobody else holds a slot or waits for one.
        if Arc::strong_count(&self.slots) == 2 {
            load.remove(&self.zone);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    #[test]
    fn minimisation_steps() {
        let name = n("a.b.c.d.example.com.");
        let steps: Vec<String> = (0..10)
            .map_while(|i| minimised(&n("com."), &name, i))
            .map(|t| t.to_ascii())
            .collect();
        assert_eq!(
            steps,
            [
                "example.com.",
                "d.example.com.",
                "c.d.example.com.",
                "b.c.d.example.com."
            ]
        );
        // A 100-label name takes about MINIMISE_COUNT steps, not 98.
        let deep = n(&format!("{}example.com.", "a.".repeat(98)));
        let count = (0..200)
            .map_while(|i| minimised(&n("example.com."), &deep, i))
            .count();
        assert!(count <= MINIMISE_COUNT, "{count}");
    }
}
