//! The answer cache: wire-format responses keyed by (lowercased qname, qtype, qclass, DO, CD).
//!
//! A hit copies the stored bytes, rewrites the ID and flags, restores the client's question case
//! (0x20), counts TTLs down, and appends the client's OPT record. Entries outlive their TTL by
//! the serve-stale window (RFC 8767) so an answer can still be given when the upstream fails.
//! Sharded `RwLock`s keep readers on different cores out of each other's way; memory is bounded
//! by a byte budget with expired-first, least-hit eviction.

use std::{
    collections::HashMap,
    hash::BuildHasher,
    net::IpAddr,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::Instant,
};

use hickory_proto::{
    op::Message,
    rr::{RData, RecordType},
    serialize::binary::BinEncodable,
};

use serde::Deserialize;

use super::{
    ede,
    wire::{self, Query, flags},
};
use crate::section::Check;

const SHARDS: usize = 64;
/// Per-entry bookkeeping beyond its bytes, for the memory budget.
const ENTRY_OVERHEAD: usize = 160;

/// Seconds a SERVFAIL answer is remembered, sparing a failing upstream.
const SERVFAIL_TTL: u32 = 5;

/// The `resolver.cache:` section of the configuration, as YAML spells it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawCache {
    pub max_mib: usize,
    pub min_ttl: u32,
    pub max_ttl: u32,
    pub max_negative_ttl: u32,
    pub serve_stale: bool,
    pub stale_ttl: u32,
    pub stale_answer_ttl: u32,
    pub prefetch: bool,
}

impl Default for RawCache {
    fn default() -> Self {
        RawCache {
            max_mib: 256,
            min_ttl: 0,
            max_ttl: 86_400,
            max_negative_ttl: 3_600,
            serve_stale: true,
            stale_ttl: 86_400,
            stale_answer_ttl: 30,
            prefetch: true,
        }
    }
}

/// Cache size and TTL policy, validated.
#[derive(Clone, Debug)]
pub struct CacheConfig {
    /// Memory budget of the answers held, in bytes.
    pub max_bytes: usize,
    /// Answer TTLs are raised to at least this.
    pub min_ttl: u32,
    /// Answer TTLs are cut to at most this.
    pub max_ttl: u32,
    /// Negative answers (their SOA) are cached at most this long.
    pub max_negative_ttl: u32,
    /// Answer from an expired entry when the upstream fails (RFC 8767).
    pub serve_stale: bool,
    /// How long past its TTL an entry may still be served that way.
    pub stale_ttl: u32,
    /// TTL given to clients on stale answers (RFC 8767 suggests 30 s).
    pub stale_answer_ttl: u32,
    /// Refresh popular entries shortly before they expire.
    pub prefetch: bool,
}

impl RawCache {
    /// Validates the section.
    pub fn validate(self, check: &mut Check) -> CacheConfig {
        // 1 TiB: far beyond any machine this runs on, and far from overflowing the byte count.
        check.range("max_mib", self.max_mib, 1, 1 << 20);
        if self.min_ttl > self.max_ttl {
            check.problem(
                "min_ttl",
                format!("{} is above max_ttl {}", self.min_ttl, self.max_ttl),
            );
        }
        CacheConfig {
            max_bytes: self.max_mib.saturating_mul(1024 * 1024),
            min_ttl: self.min_ttl,
            max_ttl: self.max_ttl,
            max_negative_ttl: self.max_negative_ttl,
            serve_stale: self.serve_stale,
            stale_ttl: self.stale_ttl,
            stale_answer_ttl: self.stale_answer_ttl,
            prefetch: self.prefetch,
        }
    }
}

impl Default for CacheConfig {
    /// The defaults of `resolver.cache:`.
    fn default() -> Self {
        RawCache::default().validate(&mut Check::new(std::path::Path::new(".")))
    }
}

impl CacheConfig {
    /// The bytes the caches count against `max_bytes`: the rest is the allocator's (size-class
    /// rounding, freed pages not yet returned). Measured with a million distinct names streamed
    /// through: counting all of `max_bytes` held RSS a fifth over the bound.
    fn counted_bytes(&self) -> usize {
        self.max_bytes / 16 * 13
    }

    /// The bytes the answer cache (wire-format answers, the fast path) holds: a quarter. The
    /// recursor's caches (RRsets, negative answers, NSEC chains, keys, verified signatures) hold
    /// the rest, so that `resolver.cache.max_mib` bounds every cache of the process.
    pub fn answer_bytes(&self) -> usize {
        self.counted_bytes() / 4
    }

    /// The bytes the recursor's caches hold.
    pub fn recursor_bytes(&self) -> usize {
        self.counted_bytes() - self.answer_bytes()
    }

    /// How long past its TTL an entry may be answered from (0 without serve-stale).
    pub fn stale_window(&self) -> u32 {
        if self.serve_stale { self.stale_ttl } else { 0 }
    }
}

/// One cached response.
#[derive(Debug)]
pub struct Entry {
    /// Full response with ID 0, no OPT, lowercased question.
    wire: Box<[u8]>,
    /// Offsets of every record's TTL field in `wire`.
    ttl_offsets: Box<[u16]>,
    rcode: u8,
    secure: bool,
    /// Extended DNS Error INFO-CODE to attach (e.g. 6 DNSSEC Bogus).
    ede: Option<u16>,
    /// Seconds the entry is fresh.
    pub ttl: u32,
    pub inserted: Instant,
    /// CNAME targets in the answer (a DNAME's synthesised CNAME included) (lowercase wire form), re-checked against the live
    /// blocklist on every hit so a list swap reaches cached chains too.
    pub chain: Box<[Box<[u8]>]>,
    /// The A and AAAA addresses of the answer section, re-checked against the live blocklist's
    /// address prefixes on every hit (only when it has any), for the same reason.
    pub addrs: Box<[IpAddr]>,
    hits: AtomicU32,
    prefetching: AtomicBool,
}

/// Freshness of an entry at lookup time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    Fresh { age: u32 },
    Stale,
}

impl Entry {
    /// Builds an entry from a resolved response. `None` when the message cannot be encoded.
    pub fn from_message(
        m: &Message,
        secure: bool,
        ede: Option<u16>,
        policy: &CacheConfig,
    ) -> Option<Entry> {
        let rcode = u16::from(m.metadata.response_code) as u8 & 0xf;
        let mut m = m.clone();
        let negative = m.answers.is_empty();
        for r in m.answers.iter_mut() {
            r.ttl = r.ttl.clamp(policy.min_ttl, policy.max_ttl);
        }
        for r in m.authorities.iter_mut() {
            r.ttl = if negative {
                r.ttl.min(policy.max_negative_ttl)
            } else {
                r.ttl.clamp(policy.min_ttl, policy.max_ttl)
            };
        }
        m.metadata.id = 0;
        m.metadata.authentic_data = false;
        let wire = m.to_vec().ok()?;
        let mut ttl_offsets = Vec::new();
        let mut at = wire::name_end(&wire, 12)? + 4;
        let count = m.answers.len() + m.authorities.len() + m.additionals.len();
        let mut min_ttl = u32::MAX;
        for _ in 0..count {
            let (_, ttl_at, end) = wire::skip_record(&wire, at)?;
            ttl_offsets.push(u16::try_from(ttl_at).ok()?);
            let ttl = u32::from_be_bytes(wire[ttl_at..ttl_at + 4].try_into().ok()?);
            min_ttl = min_ttl.min(ttl);
            at = end;
        }
        let ttl = if rcode == wire::rcode::SERVFAIL {
            SERVFAIL_TTL
        } else if min_ttl == u32::MAX {
            // No records at all (e.g. NODATA without SOA): remember briefly.
            policy.min_ttl.max(5)
        } else {
            min_ttl
        };
        let chain = m
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::CNAME(c) => Some(c.0.to_lowercase()),
                _ => None,
            })
            .filter_map(|n| n.to_bytes().ok().map(Vec::into_boxed_slice))
            .collect();
        let addrs = m
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            })
            .collect();
        Some(Entry {
            wire: wire.into_boxed_slice(),
            ttl_offsets: ttl_offsets.into_boxed_slice(),
            rcode,
            secure,
            ede,
            ttl,
            inserted: Instant::now(),
            chain,
            addrs,
            hits: AtomicU32::new(0),
            prefetching: AtomicBool::new(false),
        })
    }

    /// The RCODE stored.
    pub fn rcode(&self) -> u8 {
        self.rcode
    }

    /// Whether the stored answer validated.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    fn bytes(&self) -> usize {
        self.wire.len()
            + self.ttl_offsets.len() * 2
            + std::mem::size_of_val::<[IpAddr]>(&self.addrs)
            + ENTRY_OVERHEAD
    }

    /// Freshness now, or `None` when past the stale window too.
    pub fn freshness(&self, now: Instant, stale_ttl: u32) -> Option<Freshness> {
        let age = now.saturating_duration_since(self.inserted).as_secs();
        if age < self.ttl as u64 {
            Some(Freshness::Fresh { age: age as u32 })
        } else if age < self.ttl as u64 + stale_ttl as u64 {
            Some(Freshness::Stale)
        } else {
            None
        }
    }

    /// True once per entry when it is popular and close to expiry: the caller refreshes it.
    pub fn wants_prefetch(&self, age: u32) -> bool {
        let hits = self.hits.fetch_add(1, Ordering::Relaxed) + 1;
        // Unbound prefetches in the last 10 % of the TTL; we also ask for a few hits first so a
        // one-off name does not cost an upstream query.
        self.ttl >= 10
            && age >= self.ttl - self.ttl / 10
            && hits >= 3
            && !self.prefetching.swap(true, Ordering::Relaxed)
    }

    /// Writes the response for `q` into `out`. `limit` is the largest message the transport
    /// allows; a larger answer becomes an empty TC=1 answer so the client retries over TCP.
    pub fn write_response(
        &self,
        q: &Query<'_>,
        freshness: Freshness,
        stale_answer_ttl: u32,
        payload: u16,
        limit: usize,
        out: &mut Vec<u8>,
    ) {
        out.clear();
        out.extend_from_slice(&self.wire);
        out[0..2].copy_from_slice(&q.id.to_be_bytes());
        let mut fl = wire::response_flags(q.flags, self.rcode);
        if self.secure && (q.dnssec_ok() || q.ad()) {
            fl |= flags::AD;
        }
        out[2..4].copy_from_slice(&fl.to_be_bytes());
        // Same name, same length: restore the client's case byte for byte.
        if let Some(dst) = out.get_mut(12..12 + q.qname.len()) {
            dst.copy_from_slice(q.qname);
        }
        for &off in self.ttl_offsets.iter() {
            let off = off as usize;
            let stored = u32::from_be_bytes(out[off..off + 4].try_into().expect("4 bytes"));
            let ttl = match freshness {
                Freshness::Fresh { age } => stored.saturating_sub(age),
                Freshness::Stale => stale_answer_ttl,
            };
            out[off..off + 4].copy_from_slice(&ttl.to_be_bytes());
        }
        if let Some(e) = q.edns {
            let mut opts = Vec::new();
            if freshness == Freshness::Stale {
                ede::put(&mut opts, ede::STALE_ANSWER, "serve-stale");
            }
            if let Some(code) = self.ede {
                ede::put(&mut opts, code, "");
            }
            bump_arcount(out);
            wire::put_opt(out, payload, e.dnssec_ok, 0, &opts);
        }
        if out.len() > limit {
            *out = wire::bare_response(q, self.rcode, flags::TC, payload, None);
            if self.secure && (q.dnssec_ok() || q.ad()) {
                out[3] |= flags::AD as u8;
            }
        }
    }
}

fn bump_arcount(out: &mut [u8]) {
    let ar = u16::from_be_bytes([out[10], out[11]]).saturating_add(1);
    out[10..12].copy_from_slice(&ar.to_be_bytes());
}

/// Builds the cache key into `key`: qtype, qclass, DO|CD bits, then the lowercased name.
pub fn make_key(key: &mut Vec<u8>, q: &Query<'_>) {
    key.clear();
    key.extend_from_slice(&q.qtype.to_be_bytes());
    key.extend_from_slice(&q.qclass.to_be_bytes());
    key.push(q.dnssec_ok() as u8 | ((q.cd() as u8) << 1));
    key.extend(q.qname.iter().map(u8::to_ascii_lowercase));
}

/// The record type of a key.
pub fn key_qtype(key: &[u8]) -> RecordType {
    RecordType::from(u16::from_be_bytes([key[0], key[1]]))
}

/// foldhash: fast on short keys and seeded per process, so crafted names cannot aim at one
/// bucket (SipHash cost a measurable share of a cache hit).
type Hasher = foldhash::fast::RandomState;

struct Shard {
    map: HashMap<Box<[u8]>, Arc<Entry>, Hasher>,
    bytes: usize,
}

/// The shared answer cache.
pub struct Cache {
    shards: Box<[RwLock<Shard>]>,
    hasher: Hasher,
    shard_budget: usize,
    config: CacheConfig,
}

impl Cache {
    /// A cache of at most about [`CacheConfig::answer_bytes`].
    pub fn new(config: CacheConfig) -> Cache {
        Cache {
            shards: (0..SHARDS)
                .map(|_| {
                    RwLock::new(Shard {
                        map: HashMap::with_hasher(Hasher::default()),
                        bytes: 0,
                    })
                })
                .collect(),
            hasher: Default::default(),
            shard_budget: (config.answer_bytes() / SHARDS).max(4096),
            config,
        }
    }

    /// The size and TTL policy this cache was made with.
    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    fn shard(&self, key: &[u8]) -> &RwLock<Shard> {
        let h = self.hasher.hash_one(key) as usize;
        &self.shards[h % SHARDS]
    }

    /// The entry for `key`, fresh or within the stale window.
    pub fn get(&self, key: &[u8]) -> Option<Arc<Entry>> {
        #[cfg(test)]
        crate::probe::cache_get();
        let shard = self.shard(key).read().unwrap_or_else(|e| e.into_inner());
        shard.map.get(key).cloned()
    }

    /// Stores `entry` under `key`, evicting to stay within the budget.
    pub fn insert(&self, key: &[u8], entry: Entry) -> Arc<Entry> {
        let entry = Arc::new(entry);
        let mut shard = self.shard(key).write().unwrap_or_else(|e| e.into_inner());
        shard.bytes += entry.bytes() + key.len();
        if let Some(old) = shard.map.insert(key.into(), entry.clone()) {
            shard.bytes -= old.bytes() + key.len();
        }
        if shard.bytes > self.shard_budget {
            self.evict(&mut shard);
        }
        entry
    }

    /// Removes every entry (used when the recursor's view must be dropped).
    pub fn clear(&self) {
        for s in self.shards.iter() {
            let mut s = s.write().unwrap_or_else(|e| e.into_inner());
            s.map.clear();
            s.bytes = 0;
        }
    }

    /// Entries and bytes held.
    pub fn stats(&self) -> (usize, usize) {
        self.shards.iter().fold((0, 0), |(n, b), s| {
            let s = s.read().unwrap_or_else(|e| e.into_inner());
            (n + s.map.len(), b + s.bytes)
        })
    }

    /// One sweep down to 90 % of the budget: dead entries first, then the least hit.
    fn evict(&self, shard: &mut Shard) {
        let now = Instant::now();
        let target = self.shard_budget / 10 * 9;
        let stale = self.config.stale_ttl;
        shard.map.retain(|_, e| e.freshness(now, stale).is_some());
        let mut bytes: usize = shard.map.iter().map(|(k, e)| k.len() + e.bytes()).sum();
        if bytes > target {
            let mut by_hits: Vec<(u32, Box<[u8]>)> = shard
                .map
                .iter()
                .map(|(k, e)| (e.hits.load(Ordering::Relaxed), k.clone()))
                .collect();
            by_hits.sort_unstable_by_key(|(h, _)| *h);
            for (_, k) in by_hits {
                if bytes <= target {
                    break;
                }
                if let Some(e) = shard.map.remove(&k) {
                    bytes -= k.len() + e.bytes();
                }
            }
        }
        shard.bytes = bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::{
        op::{MessageType, OpCode, Query as HQuery, ResponseCode},
        rr::{Name, Record, rdata::A},
    };

    fn policy() -> CacheConfig {
        CacheConfig {
            max_bytes: 1 << 20,
            min_ttl: 0,
            max_ttl: 86400,
            max_negative_ttl: 3600,
            serve_stale: true,
            stale_ttl: 60,
            stale_answer_ttl: 30,
            prefetch: true,
        }
    }

    fn message() -> Message {
        let mut m = Message::new(0, MessageType::Response, OpCode::Query);
        m.add_query(HQuery::query(
            Name::from_ascii("www.example.com.").unwrap(),
            RecordType::A,
        ));
        m.metadata.response_code = ResponseCode::NoError;
        m.add_answer(Record::from_rdata(
            Name::from_ascii("www.example.com.").unwrap(),
            300,
            RData::A(A::new(198, 18, 0, 10)),
        ));
        m
    }

    fn client_query(name: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        wire::put_header(&mut b, 0xbeef, flags::RD, (1, 0, 0, 0));
        b.extend_from_slice(name);
        b.extend_from_slice(&1u16.to_be_bytes());
        b.extend_from_slice(&1u16.to_be_bytes());
        b
    }

    #[test]
    fn hit_restores_id_case_and_counts_ttl_down() {
        let e = Entry::from_message(&message(), false, None, &policy()).unwrap();
        assert_eq!(e.ttl, 300);
        let pkt = client_query(b"\x03WWW\x07ExAmPlE\x03com\x00");
        let q = wire::parse_query(&pkt).unwrap();
        let mut out = Vec::new();
        e.write_response(&q, Freshness::Fresh { age: 100 }, 30, 1232, 512, &mut out);
        let m = Message::from_vec(&out).unwrap();
        assert_eq!(m.metadata.id, 0xbeef);
        assert!(m.metadata.recursion_available && m.metadata.recursion_desired);
        assert_eq!(&out[12..12 + q.qname.len()], q.qname);
        assert_eq!(m.answers[0].ttl, 200);
        // Everything else is the stored answer byte for byte.
        let mut fresh = Vec::new();
        e.write_response(&q, Freshness::Fresh { age: 0 }, 30, 1232, 512, &mut fresh);
        let mut orig = message();
        orig.metadata.id = 0xbeef;
        assert_eq!(Message::from_vec(&fresh).unwrap().answers, orig.answers);
    }

    #[test]
    fn stale_answers_get_short_ttl() {
        let e = Entry::from_message(&message(), false, None, &policy()).unwrap();
        let pkt = client_query(b"\x03www\x07example\x03com\x00");
        let q = wire::parse_query(&pkt).unwrap();
        let mut out = Vec::new();
        e.write_response(&q, Freshness::Stale, 30, 1232, 512, &mut out);
        assert_eq!(Message::from_vec(&out).unwrap().answers[0].ttl, 30);
    }

    #[test]
    fn oversized_answer_truncates() {
        let e = Entry::from_message(&message(), false, None, &policy()).unwrap();
        let pkt = client_query(b"\x03www\x07example\x03com\x00");
        let q = wire::parse_query(&pkt).unwrap();
        let mut out = Vec::new();
        e.write_response(&q, Freshness::Fresh { age: 0 }, 30, 1232, 40, &mut out);
        let m = Message::from_vec(&out).unwrap();
        assert!(m.metadata.truncation);
        assert!(m.answers.is_empty());
    }

    #[test]
    fn budget_is_kept() {
        let cache = Cache::new(CacheConfig {
            max_bytes: 64 * 4096,
            ..policy()
        });
        let e = || Entry::from_message(&message(), false, None, &policy()).unwrap();
        for i in 0..20_000u32 {
            let mut key = vec![0, 1, 0, 1, 0];
            key.extend_from_slice(&i.to_be_bytes());
            cache.insert(&key, e());
        }
        let (_, bytes) = cache.stats();
        assert!(bytes <= 64 * 4096, "{bytes}");
    }
}
