//! The recursor's caches: RRsets (with their signatures and DNSSEC status), negative answers
//! (NXDOMAIN by name, NODATA by name and type), and the validated NSEC chains used to answer
//! names that do not exist without asking (RFC 8198). All of them share one byte budget: an
//! endless stream of new names evicts old entries instead of growing the process.

use std::{
    collections::{BTreeMap, HashMap},
    hash::Hasher,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use hickory_proto::{
    rr::{Name, RData, Record, RecordType},
    serialize::binary::{BinDecoder, BinEncodable, BinEncoder, NameEncoding, Restrict},
};
use siphasher::sip128::{Hasher128, SipHasher13};

use super::super::Security;

/// What is known of a cached item's DNSSEC status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Not validated yet (referral data, glue; validation happens when it is needed).
    Unchecked,
    /// Validated, with the outcome and, for bogus data, the Extended DNS Error code.
    Checked(Security, Option<u16>),
}

impl Status {
    /// The security, if checked.
    pub fn security(self) -> Option<Security> {
        match self {
            Status::Unchecked => None,
            Status::Checked(s, _) => Some(s),
        }
    }
}

/// What a record's source makes it worth (RFC 2181 §5.4.1, simplified): data from an
/// authoritative answer replaces data from a referral, never the other way round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rank {
    /// Additional-section address records (glue).
    Glue,
    /// Authority-section records (referral NS, DS) or a non-authoritative answer.
    Authority,
    /// The answer section of an authoritative answer.
    Answer,
}

/// Records of one owner and type packed as wire data: per record its TTL, RDLENGTH and RDATA
/// (names inside RDATA uncompressed). A cached A RRset with its signature takes about a
/// hundred bytes this way, where hickory's `Record`s take close to a kilobyte; the records are
/// unpacked when they are used, which is rarely (the answer cache in front serves repeats).
#[derive(Clone, Debug, Default)]
pub struct Packed {
    bytes: Box<[u8]>,
}

impl Packed {
    /// Packs `records` (all of one owner and type).
    pub fn pack(records: &[Record]) -> Packed {
        let mut bytes = Vec::with_capacity(records.len() * 32);
        for r in records {
            let mut rdata = Vec::with_capacity(64);
            let mut enc = BinEncoder::new(&mut rdata);
            enc.set_name_encoding(NameEncoding::Uncompressed);
            if r.data.emit(&mut enc).is_err() || rdata.len() > usize::from(u16::MAX) {
                continue;
            }
            bytes.extend_from_slice(&r.ttl.to_be_bytes());
            bytes.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            bytes.extend_from_slice(&rdata);
        }
        Packed {
            bytes: bytes.into_boxed_slice(),
        }
    }

    /// The records again, owned by `name`, of type `rtype`.
    pub fn unpack(&self, name: &Name, rtype: RecordType) -> Vec<Record> {
        let mut out = Vec::new();
        let b = &self.bytes[..];
        let mut at = 0;
        while at + 6 <= b.len() {
            let ttl = u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
            let len = usize::from(u16::from_be_bytes([b[at + 4], b[at + 5]]));
            let Some(rdata) = b.get(at + 6..at + 6 + len) else {
                break;
            };
            let mut dec = BinDecoder::new(rdata);
            if let Ok(data) = RData::read(&mut dec, rtype, Restrict::new(len as u16)) {
                out.push(Record::from_rdata(name.clone(), ttl, data));
            }
            at += 6 + len;
        }
        out
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// The packed bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether nothing is packed.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// One RRset and the signatures that cover it.
#[derive(Debug)]
pub struct RrSet {
    pub name: Name,
    pub rtype: RecordType,
    pub records: Packed,
    /// The RRSIGs covering this type at this owner.
    pub sigs: Packed,
    /// For an answer expanded from a wildcard: the NSEC/NSEC3 records (with signatures) that
    /// prove the name itself does not exist, which go into the response's authority section.
    pub proof: Vec<Record>,
    pub rank: Rank,
    pub status: Status,
    /// When the RRset was stored, and how long it lives (the smallest TTL).
    pub stored: Instant,
    pub ttl: u32,
}

impl RrSet {
    /// Whether it is still alive at `now`.
    pub fn alive(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.stored) < Duration::from_secs(u64::from(self.ttl))
    }

    /// Seconds left to live at `now`.
    pub fn ttl_left(&self, now: Instant) -> u32 {
        let age = now.saturating_duration_since(self.stored).as_secs();
        u32::try_from(u64::from(self.ttl).saturating_sub(age)).unwrap_or(0)
    }

    /// The records.
    pub fn records(&self) -> Vec<Record> {
        self.records.unpack(&self.name, self.rtype)
    }

    /// The signatures covering them.
    pub fn sigs(&self) -> Vec<Record> {
        self.sigs.unpack(&self.name, RecordType::RRSIG)
    }

    /// The records with their TTLs counted down to `now` (signatures too when `with_sigs`).
    pub fn aged(&self, now: Instant, with_sigs: bool) -> Vec<Record> {
        let left = self.ttl_left(now);
        let mut out = self.records();
        if with_sigs {
            out.extend(self.sigs());
        }
        for r in &mut out {
            r.ttl = r.ttl.min(left);
        }
        out
    }

    fn weight(&self) -> usize {
        // The struct, the packed data, and the rare wildcard proof as hickory records.
        let proof: usize = self.proof.iter().map(|r| 200 + r.name.len()).sum();
        std::mem::size_of::<RrSet>() + 64 + self.records.len() + self.sigs.len() + proof
    }
}

/// A negative answer: the name does not exist, or has no data of the type.
#[derive(Debug)]
pub struct Negative {
    pub nxdomain: bool,
    /// The zone's SOA (with its RRSIG) and the NSEC/NSEC3 records (with theirs) that prove it.
    pub authority: Vec<Record>,
    pub status: Status,
    pub stored: Instant,
    pub ttl: u32,
}

impl Negative {
    pub fn alive(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.stored) < Duration::from_secs(u64::from(self.ttl))
    }

    fn weight(&self) -> usize {
        96 + self
            .authority
            .iter()
            .map(|r| 200 + r.name.len())
            .sum::<usize>()
    }
}

/// Something with a byte weight and an expiry.
trait Entry {
    fn weight(&self) -> usize;
    fn alive(&self, now: Instant) -> bool;
}

impl Entry for Arc<RrSet> {
    fn weight(&self) -> usize {
        RrSet::weight(self)
    }
    fn alive(&self, now: Instant) -> bool {
        RrSet::alive(self, now)
    }
}

impl Entry for Arc<Negative> {
    fn weight(&self) -> usize {
        Negative::weight(self)
    }
    fn alive(&self, now: Instant) -> bool {
        Negative::alive(self, now)
    }
}

const SHARDS: usize = 16;

struct Shard<V> {
    map: HashMap<u128, (V, u64), foldhash::fast::RandomState>,
    bytes: usize,
    /// Insertion counter: entries with a smaller stamp are older (for eviction).
    clock: u64,
}

/// What a [`Store`] is keyed by: fed to its digest as the bytes that make it (lowercase, so
/// that names differing in case are one key).
trait Key {
    fn feed(&self, h: &mut SipHasher13);
}

impl Key for Name {
    fn feed(&self, h: &mut SipHasher13) {
        // One write per label (length, then the label lowercased): names are hashed on every
        // cache lookup, and byte-at-a-time hashing showed in profiles.
        let mut buf = [0u8; 64];
        for label in self.iter() {
            let len = label.len().min(63);
            buf[0] = len as u8;
            for (d, s) in buf[1..=len].iter_mut().zip(label) {
                *d = s.to_ascii_lowercase();
            }
            h.write(&buf[..=len]);
        }
        h.write_u8(0);
    }
}

impl Key for (&Name, RecordType) {
    fn feed(&self, h: &mut SipHasher13) {
        self.0.feed(h);
        h.write_u16(u16::from(self.1));
    }
}

/// A sharded map under a byte budget; when a shard outgrows its part, dead entries go first,
/// then the oldest. Keys are kept as 128-bit digests, SipHash-1-3-128 under a random secret
/// key: a name and type as such cost 90 bytes a slot, and a collision, which would answer one
/// name with another's records, can neither happen by chance nor be aimed at by someone who
/// cannot see the key (SipHash is a keyed PRF).
struct Store<V> {
    shards: Box<[Mutex<Shard<V>>]>,
    secret: (u64, u64),
    shard_budget: usize,
}

impl<V: Entry + Clone> Store<V> {
    /// What an entry costs beyond its own weight: its slot in the map (key, value, stamp and
    /// control byte, the table being between half and seven eighths full) and the `Arc`'s
    /// counts. Measured: without it RSS passed the bound by a fifth once the caches were full.
    const SLOT: usize =
        (std::mem::size_of::<u128>() + std::mem::size_of::<(V, u64)>() + 1) * 3 / 2 + 16;

    fn cost(v: &V) -> usize {
        v.weight() + Self::SLOT
    }

    fn new(budget: usize) -> Self {
        Store {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        map: HashMap::with_hasher(Default::default()),
                        bytes: 0,
                        clock: 0,
                    })
                })
                .collect(),
            secret: {
                let rng = ring::rand::SystemRandom::new();
                let k: [u8; 16] = ring::rand::generate(&rng)
                    .expect("the system's random source")
                    .expose();
                let (a, b) = k.split_at(8);
                (
                    u64::from_le_bytes(a.try_into().expect("8 bytes")),
                    u64::from_le_bytes(b.try_into().expect("8 bytes")),
                )
            },
            shard_budget: (budget / SHARDS).max(16 * 1024),
        }
    }

    /// The key's digest, and its shard.
    fn shard(&self, k: &impl Key) -> (u128, MutexGuard<'_, Shard<V>>) {
        let mut h = SipHasher13::new_with_keys(self.secret.0, self.secret.1);
        k.feed(&mut h);
        let d = h.finish128().as_u128();
        let s = self.shards[d as usize % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        (d, s)
    }

    fn get(&self, k: &impl Key) -> Option<V> {
        let (d, mut s) = self.shard(k);
        s.clock += 1;
        let stamp = s.clock;
        let (v, t) = s.map.get_mut(&d)?;
        // Used now: the last to go.
        *t = stamp;
        Some(v.clone())
    }

    fn insert(&self, k: &impl Key, v: V) {
        let (d, mut s) = self.shard(k);
        s.clock += 1;
        let stamp = s.clock;
        s.bytes += Self::cost(&v);
        if let Some((old, _)) = s.map.insert(d, (v, stamp)) {
            s.bytes -= Self::cost(&old);
        }
        if s.bytes > self.shard_budget {
            Self::evict(&mut s, self.shard_budget);
        }
    }

    fn remove(&self, k: &impl Key) {
        let (d, mut s) = self.shard(k);
        if let Some((old, _)) = s.map.remove(&d) {
            s.bytes -= Self::cost(&old);
        }
    }

    /// Down to 90 % of the budget: dead entries, then the least recently used.
    fn evict(s: &mut Shard<V>, budget: usize) {
        let now = Instant::now();
        let target = budget / 10 * 9;
        s.map.retain(|_, (v, _)| v.alive(now));
        let mut by_age: Vec<(u64, usize)> =
            s.map.values().map(|(v, t)| (*t, Self::cost(v))).collect();
        let mut bytes: usize = by_age.iter().map(|(_, w)| w).sum();
        if bytes > target {
            by_age.sort_unstable();
            let mut cut = 0;
            for (t, w) in by_age {
                if bytes <= target {
                    break;
                }
                bytes -= w;
                cut = t;
            }
            s.map.retain(|_, (_, t)| *t > cut);
        }
        s.bytes = bytes;
    }

    fn bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).bytes)
            .sum()
    }
}

/// Validated NSEC records of one zone, by owner in canonical order.
type Chain = BTreeMap<Name, Arc<RrSet>>;
/// Validated NSEC and NSEC3 chains by zone (and which of the two), under a byte budget.
#[derive(Default)]
struct Chains {
    zones: HashMap<(Name, RecordType), Chain>,
    bytes: usize,
    budget: usize,
}

/// The recursor's caches.
pub struct Cache {
    rrsets: Store<Arc<RrSet>>,
    nxdomain: Store<Arc<Negative>>,
    nodata: Store<Arc<Negative>>,
    nsec: Mutex<Chains>,
}

impl Cache {
    /// Caches sharing about `budget` bytes (what the recursor gives them: nine tenths of
    /// its share, the rest is for keys and verified signatures).
    pub fn new(budget: usize) -> Cache {
        Cache {
            rrsets: Store::new(budget / 9 * 6),
            nxdomain: Store::new(budget / 9),
            nodata: Store::new(budget / 9),
            nsec: Mutex::new(Chains {
                budget: budget / 9,
                ..Chains::default()
            }),
        }
    }

    /// The live RRset of `name`/`rtype`.
    pub fn rrset(&self, name: &Name, rtype: RecordType) -> Option<Arc<RrSet>> {
        let key = (name, rtype);
        let set = self.rrsets.get(&key)?;
        if set.alive(Instant::now()) {
            Some(set)
        } else {
            self.rrsets.remove(&key);
            None
        }
    }

    /// Stores `set` unless a live one of higher rank is there.
    pub fn store_rrset(&self, set: RrSet) -> Arc<RrSet> {
        let name = set.name.clone();
        let key = (&name, set.rtype);
        if let Some(old) = self.rrsets.get(&key)
            && old.alive(Instant::now())
            && old.rank > set.rank
        {
            return old;
        }
        let set = Arc::new(set);
        self.rrsets.insert(&key, set.clone());
        set
    }

    /// A live NXDOMAIN for `name` or one of its ancestors (RFC 8020: nothing exists below a
    /// name that does not exist), down to but not including `zone`.
    pub fn nxdomain(&self, name: &Name, zone: &Name) -> Option<Arc<Negative>> {
        let now = Instant::now();
        let mut n = name.clone();
        while n.num_labels() > zone.num_labels() {
            if let Some(neg) = self.nxdomain.get(&n) {
                if neg.alive(now) {
                    return Some(neg);
                }
                self.nxdomain.remove(&n);
            }
            n = n.base_name();
        }
        None
    }

    /// A live NODATA for `name`/`rtype`.
    pub fn nodata(&self, name: &Name, rtype: RecordType) -> Option<Arc<Negative>> {
        let key = (name, rtype);
        let neg = self.nodata.get(&key)?;
        if neg.alive(Instant::now()) {
            Some(neg)
        } else {
            self.nodata.remove(&key);
            None
        }
    }

    /// Stores a negative answer for `name` (`rtype` for NODATA).
    pub fn store_negative(&self, name: &Name, rtype: RecordType, neg: Negative) -> Arc<Negative> {
        let nx = neg.nxdomain;
        let neg = Arc::new(neg);
        if nx {
            self.nxdomain.insert(name, neg.clone());
        } else {
            self.nodata.insert(&(name, rtype), neg.clone());
        }
        neg
    }

    /// Keeps a validated NSEC or NSEC3 record of `zone` for synthesising answers (RFC 8198).
    /// Over the budget, expired records go first, then whole chains (a chain with holes still
    /// answers what it covers, but a fresh one is cheap to rebuild from the next misses).
    pub fn store_nsec(&self, zone: &Name, nsec: Arc<RrSet>) {
        let mut c = self.nsec.lock().unwrap_or_else(|e| e.into_inner());
        let weight = nsec.weight() + nsec.name.len();
        let key = (zone.clone(), nsec.rtype);
        c.bytes += weight;
        if let Some(old) = c
            .zones
            .entry(key.clone())
            .or_default()
            .insert(nsec.name.clone(), nsec)
        {
            c.bytes -= old.weight() + old.name.len();
        }
        if c.bytes > c.budget {
            let now = Instant::now();
            let target = c.budget / 10 * 9;
            let mut bytes = 0;
            for chain in c.zones.values_mut() {
                chain.retain(|_, s| s.alive(now));
                bytes += chain
                    .values()
                    .map(|s| s.weight() + s.name.len())
                    .sum::<usize>();
            }
            c.zones.retain(|z, chain| {
                if bytes <= target || *z == key {
                    return !chain.is_empty();
                }
                bytes -= chain
                    .values()
                    .map(|s| s.weight() + s.name.len())
                    .sum::<usize>();
                false
            });
            c.bytes = bytes;
        }
    }

    /// The live validated NSEC of `zone` whose owner is the greatest at or before `name` in
    /// canonical order: the one that covers or matches `name`, if the chain has it.
    pub fn nsec_at_or_before(&self, zone: &Name, name: &Name) -> Option<Arc<RrSet>> {
        let chains = self.nsec.lock().unwrap_or_else(|e| e.into_inner());
        let chain = chains.zones.get(&(zone.clone(), RecordType::NSEC))?;
        let (_, set) = chain.range(..=name.clone()).next_back()?;
        set.alive(Instant::now()).then(|| set.clone())
    }

    /// The live validated NSEC3 of `zone` whose owner is `hashed` (a hashed owner name in the
    /// zone) or the greatest before it; before the first, the chain's last, whose range wraps
    /// around to the first. `None` if the chain lacks it.
    pub fn nsec3_at_or_before(&self, zone: &Name, hashed: &Name) -> Option<Arc<RrSet>> {
        let chains = self.nsec.lock().unwrap_or_else(|e| e.into_inner());
        let chain = chains.zones.get(&(zone.clone(), RecordType::NSEC3))?;
        let (_, set) = chain
            .range(..=hashed.clone())
            .next_back()
            .or_else(|| chain.last_key_value())?;
        set.alive(Instant::now()).then(|| set.clone())
    }

    /// Bytes held by the byte-budgeted parts.
    pub fn bytes(&self) -> usize {
        let nsec = self.nsec.lock().unwrap_or_else(|e| e.into_inner()).bytes;
        self.rrsets.bytes() + self.nxdomain.bytes() + self.nodata.bytes() + nsec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a_set(name: &str, ttl: u32) -> RrSet {
        let name = Name::from_ascii(name).unwrap();
        let a = Record::from_rdata(name.clone(), ttl, RData::A("198.18.0.1".parse().unwrap()));
        RrSet {
            name,
            rtype: RecordType::A,
            records: Packed::pack(&[a]),
            sigs: Packed::pack(&[]),
            proof: Vec::new(),
            rank: Rank::Answer,
            status: Status::Unchecked,
            stored: Instant::now(),
            ttl,
        }
    }

    #[test]
    fn keys_ignore_case_and_tell_names_and_types_apart() {
        let c = Cache::new(1 << 20);
        c.store_rrset(a_set("WWW.Example.COM.", 300));
        let n = |s: &str| Name::from_ascii(s).unwrap();
        assert!(c.rrset(&n("www.example.com."), RecordType::A).is_some());
        assert!(c.rrset(&n("www.example.com."), RecordType::AAAA).is_none());
        assert!(c.rrset(&n("www.example.net."), RecordType::A).is_none());
        // Label boundaries are part of the key: "ab.c" is not "a.bc".
        c.store_rrset(a_set("ab.c.", 300));
        assert!(c.rrset(&n("a.bc."), RecordType::A).is_none());
    }

    #[test]
    fn a_full_store_keeps_to_its_budget() {
        let c = Cache::new(900 * 1024);
        for i in 0..20_000 {
            c.store_rrset(a_set(&format!("n{i}.example.com."), 300));
        }
        let rrsets = c.rrsets.bytes();
        assert!(rrsets <= 600 * 1024, "{rrsets}");
        assert!(
            c.rrset(
                &Name::from_ascii("n19999.example.com.").unwrap(),
                RecordType::A
            )
            .is_some()
        );
    }
}
