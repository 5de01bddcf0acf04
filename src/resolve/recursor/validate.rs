//! DNSSEC validation (RFC 4033–4035): every RRset an answer depends on is checked against the
//! keys of the zone that signed it, and those keys up the chain of DS and DNSKEY records to the
//! trust anchor. Signatures are checked with hickory-proto's verification; what a zone's keys
//! are (secure, insecure below an unsigned delegation, or bogus and why) is remembered per zone.
//!
//! Bogus data carries its Extended DNS Error (RFC 8914) as Unbound gives it: 9 DNSKEY Missing
//! when no key of the zone matches its DS, 7 Signature Expired or 8 Signature Not Yet Valid
//! when every signature missed its validity window, 6 DNSSEC Bogus otherwise.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use hickory_proto::{
    dnssec::{
        TrustAnchors, Verifier,
        rdata::{DNSKEY, DNSSECRData, DS, NSEC, NSEC3},
    },
    op::Message,
    rr::{DNSClass, Name, RData, Record, RecordType},
};

use super::{
    Lookup, Path, Recursor,
    cache::{Negative, Packed, Rank, RrSet, Status},
    denial::{self, Proof},
    response::Groups,
};
use crate::{dns::ede, resolve::Security};

/// Bytes a key table entry is counted at: the zone's name, two or three keys, the map's share.
const KEY_ENTRY_BYTES: usize = 1024;
/// Bytes a [`Proven`] entry is counted at: the digest, the expiry, the map's share.
const PROVEN_ENTRY_BYTES: usize = 96;

/// The root trust anchors: DS records, or DNSKEYs.
#[derive(Clone)]
pub struct Anchors {
    pub ds: Vec<DS>,
    pub keys: Arc<TrustAnchors>,
}

impl std::fmt::Debug for Anchors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Anchors({} DS, {} keys)", self.ds.len(), self.keys.len())
    }
}

/// What is known of a zone's keys.
#[derive(Clone, Debug)]
pub enum Keys {
    /// Proven up to the trust anchor.
    Secure(Arc<Vec<DNSKEY>>),
    /// Below an unsigned delegation (or an algorithm we cannot check): its data is insecure.
    Insecure,
    /// Should be signed but cannot be proven, with the EDE code.
    Bogus(u16),
}

/// A key table entry and when it expires.
#[derive(Clone, Debug)]
pub struct KeyEntry {
    keys: Keys,
    until: Instant,
}

/// The key table: at most `max` zones, beyond which it starts over (keys are refetched).
pub struct KeyTable {
    zones: std::sync::Mutex<HashMap<Name, KeyEntry>>,
    max: usize,
}

impl KeyTable {
    /// A table of about `bytes`.
    pub fn new(bytes: usize) -> KeyTable {
        KeyTable {
            zones: Default::default(),
            max: (bytes / KEY_ENTRY_BYTES).max(64),
        }
    }

    fn get(&self, zone: &Name) -> Option<Keys> {
        let t = self.zones.lock().unwrap_or_else(|e| e.into_inner());
        let e = t.get(zone)?;
        (e.until > Instant::now()).then(|| e.keys.clone())
    }

    fn put(&self, zone: &Name, keys: Keys, ttl: u32) {
        let mut t = self.zones.lock().unwrap_or_else(|e| e.into_inner());
        if t.len() >= self.max && !t.contains_key(zone) {
            t.clear();
        }
        let until = Instant::now() + std::time::Duration::from_secs(u64::from(ttl.max(5)));
        t.insert(zone.clone(), KeyEntry { keys, until });
    }
}

/// Seconds since the epoch, as RRSIG validity is written (RFC 4034 §3.1.5).
pub fn now_secs() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}

/// Serial-number order (RFC 1982) for RRSIG times: `a` is at or before `b`.
fn at_or_before(a: u32, b: u32) -> bool {
    a == b || (b.wrapping_sub(a) as i32) > 0
}

/// Why no signature of an RRset could be accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SigFailure {
    /// Every signature is past its expiration.
    Expired,
    /// Every signature is before its inception.
    NotYet,
    /// No signature verifies, or there is none.
    Bad,
}

impl SigFailure {
    fn ede(self) -> u16 {
        match self {
            SigFailure::Expired => ede::SIGNATURE_EXPIRED,
            SigFailure::NotYet => ede::SIGNATURE_NOT_YET_VALID,
            SigFailure::Bad => ede::DNSSEC_BOGUS,
        }
    }
}

/// RRsets whose signatures verified, by a digest of their exact bytes: the same NSEC3 and SOA
/// records come back in every negative answer of a zone, and checking a signature is the most
/// expensive thing a resolver does (Unbound, too, does not check an RRset again that its cache
/// holds as validated). An entry lives as long as the RRset's TTL and its signature's validity
/// allow. SHA-256, so that no crafted RRset can pass for one that verified.
pub struct Proven {
    digests: std::sync::Mutex<HashMap<[u8; 32], ProvenEntry>>,
    max: usize,
}

/// The signature's label count, and until when the RRset counts as verified.
type ProvenEntry = (u8, Instant);

impl Proven {
    /// A memo of about `bytes`; when full it starts over.
    pub fn new(bytes: usize) -> Proven {
        Proven {
            digests: Default::default(),
            max: (bytes / PROVEN_ENTRY_BYTES).max(64),
        }
    }

    fn key(name: &Name, records: &[Record], sigs: &[Record], signer: &Name) -> [u8; 32] {
        let mut d = ring::digest::Context::new(&ring::digest::SHA256);
        d.update(name.to_lowercase().to_ascii().as_bytes());
        d.update(&[0]);
        d.update(signer.to_lowercase().to_ascii().as_bytes());
        d.update(&[0]);
        if let Some(r) = records.first() {
            d.update(&u16::from(r.record_type()).to_be_bytes());
        }
        // Lengths first, so that records cannot be shifted into signatures.
        let (records, sigs) = (Packed::pack(records), Packed::pack(sigs));
        d.update(&(records.bytes().len() as u64).to_be_bytes());
        d.update(records.bytes());
        d.update(sigs.bytes());
        d.finish().as_ref().try_into().expect("SHA-256 is 32 bytes")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], ProvenEntry>> {
        self.digests.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Checks `sigs` over `records` (owned by `name`) with `keys`, remembering what verified in
/// `proven`; Ok with the signature's label count (to see wildcard expansion).
fn verify(
    proven: &Proven,
    name: &Name,
    records: &[Record],
    sigs: &[Record],
    signer: &Name,
    keys: &[DNSKEY],
) -> Result<u8, SigFailure> {
    let key = Proven::key(name, records, sigs, signer);
    let now = Instant::now();
    if let Some(&(labels, until)) = proven.lock().get(&key)
        && until > now
    {
        return Ok(labels);
    }
    let (labels, valid_secs) = verify_now(name, records, sigs, signer, keys)?;
    let ttl = records.iter().map(|r| r.ttl).min().unwrap_or(0);
    let life = std::time::Duration::from_secs(u64::from(ttl.min(valid_secs)));
    let mut p = proven.lock();
    if p.len() >= proven.max {
        p.clear();
    }
    p.insert(key, (labels, now + life));
    Ok(labels)
}

/// [`verify`] without the memo: the label count and the seconds the signature stays valid.
fn verify_now(
    name: &Name,
    records: &[Record],
    sigs: &[Record],
    signer: &Name,
    keys: &[DNSKEY],
) -> Result<(u8, u32), SigFailure> {
    let now = now_secs();
    let (mut expired, mut not_yet, mut any) = (0, 0, 0);
    for s in sigs {
        let RData::DNSSEC(DNSSECRData::RRSIG(sig)) = &s.data else {
            continue;
        };
        let input = sig.input();
        if input.signer_name != *signer {
            continue;
        }
        any += 1;
        let (inception, expiration) = (input.sig_inception.get(), input.sig_expiration.get());
        if !at_or_before(now, expiration) {
            expired += 1;
            continue;
        }
        if !at_or_before(inception, now) {
            not_yet += 1;
            continue;
        }
        // The labels field may not claim more labels than the owner has (RFC 4035 §5.3.1).
        let owner_labels = label_count(name);
        if usize::from(input.num_labels) > owner_labels {
            continue;
        }
        for key in keys {
            if key.revoke() || !key.zone_key() || key.algorithm() != input.algorithm {
                continue;
            }
            if key.calculate_key_tag().ok() != Some(input.key_tag) {
                continue;
            }
            if key
                .verify_rrsig(name, DNSClass::IN, sig, records.iter())
                .is_ok()
            {
                return Ok((input.num_labels, expiration.wrapping_sub(now)));
            }
        }
    }
    if any > 0 && expired == any {
        Err(SigFailure::Expired)
    } else if any > 0 && not_yet == any {
        Err(SigFailure::NotYet)
    } else {
        Err(SigFailure::Bad)
    }
}

/// Labels of `name` counting a leading `*` (hickory's `num_labels` leaves it out).
pub fn label_count(name: &Name) -> usize {
    name.iter().count()
}

/// The signer of an RRset's signatures (the zone that signed it), if signed.
fn signer_of(sigs: &[Record]) -> Option<Name> {
    sigs.iter().find_map(|s| match &s.data {
        RData::DNSSEC(DNSSECRData::RRSIG(sig)) => Some(sig.input().signer_name.clone()),
        _ => None,
    })
}

impl Recursor {
    /// Validates `set` (from an answer of `zone`'s servers, `m`), stores and returns it with
    /// its status.
    pub(super) async fn validate_rrset(
        &self,
        set: Arc<RrSet>,
        zone: &Name,
        m: &Message,
        path: &Path,
    ) -> Arc<RrSet> {
        if set.status != Status::Unchecked {
            return set;
        }
        let (status, proof) = self.check_rrset(&set, zone, Some(m), path).await;
        self.cache.store_rrset(RrSet {
            name: set.name.clone(),
            rtype: set.rtype,
            records: set.records.clone(),
            sigs: set.sigs.clone(),
            proof,
            rank: set.rank,
            status,
            stored: set.stored,
            ttl: set.ttl,
        })
    }

    /// The status of `set`: its signatures checked with its signer's keys; a wildcard
    /// expansion also needs the proof (in `m`'s authority section) that the name itself does
    /// not exist, which is returned with the status.
    async fn check_rrset(
        &self,
        set: &RrSet,
        zone: &Name,
        m: Option<&Message>,
        path: &Path,
    ) -> (Status, Vec<Record>) {
        let sigs = set.sigs();
        let Some(signer) = signer_of(&sigs) else {
            // Unsigned: fine below an unsigned delegation, bogus in a signed zone.
            let status = match self.zone_keys(zone, path).await {
                Keys::Secure(_) => Status::Checked(Security::Bogus, Some(ede::DNSSEC_BOGUS)),
                Keys::Insecure => Status::Checked(Security::Insecure, None),
                Keys::Bogus(e) => Status::Checked(Security::Bogus, Some(e)),
            };
            return (status, Vec::new());
        };
        let bogus = |e| (Status::Checked(Security::Bogus, Some(e)), Vec::new());
        if !signer.zone_of(&set.name) || !zone.zone_of(&signer) {
            return bogus(ede::DNSSEC_BOGUS);
        }
        let keys = match self.zone_keys(&signer, path).await {
            Keys::Secure(k) => k,
            Keys::Insecure => return (Status::Checked(Security::Insecure, None), Vec::new()),
            Keys::Bogus(e) => return bogus(e),
        };
        // The DNSKEY RRset of a zone was proven with the zone's keys themselves.
        if set.rtype == RecordType::DNSKEY && set.name == signer {
            return (Status::Checked(Security::Secure, None), Vec::new());
        }
        match verify(
            &self.proven,
            &set.name,
            &set.records(),
            &sigs,
            &signer,
            &keys,
        ) {
            Ok(labels) if usize::from(labels) < label_count(&set.name) => match m {
                // Expanded from a wildcard: the name itself must be proven not to exist.
                Some(m) => self.check_wildcard(set, labels, &signer, &keys, m),
                None => bogus(ede::DNSSEC_BOGUS),
            },
            Ok(_) => (Status::Checked(Security::Secure, None), Vec::new()),
            Err(f) => bogus(f.ede()),
        }
    }

    /// A wildcard answer `set` (signature label count `labels`): the authority section of `m`
    /// must prove that the next closer name does not exist (RFC 4035 §5.3.4). Returns the
    /// status and the records of the proof.
    fn check_wildcard(
        &self,
        set: &RrSet,
        labels: u8,
        signer: &Name,
        keys: &[DNSKEY],
        m: &Message,
    ) -> (Status, Vec<Record>) {
        let auth = Groups::of(&m.authorities);
        let next_closer = set.name.trim_to(usize::from(labels) + 1);
        let nsecs = self.secure_denials(&auth, signer, keys);
        let proof = if !nsecs.nsec.is_empty() {
            denial::nsec_covers_any(&next_closer, &nsecs.nsec_refs())
        } else if !nsecs.nsec3.is_empty() {
            denial::nsec3_covers_any(&next_closer, signer, &nsecs.nsec3_refs())
        } else {
            Proof::Bogus("no NSEC or NSEC3 for the wildcard expansion")
        };
        let records: Vec<Record> = auth
            .0
            .iter()
            .filter(|((o, t), _)| {
                matches!(t, RecordType::NSEC | RecordType::NSEC3) && signer.zone_of(o)
            })
            .flat_map(|(_, g)| g.records.iter().chain(&g.sigs).cloned())
            .collect();
        let status = match proof {
            Proof::Secure => Status::Checked(Security::Secure, None),
            Proof::Insecure => Status::Checked(Security::Insecure, None),
            Proof::Bogus(_) => Status::Checked(Security::Bogus, Some(ede::DNSSEC_BOGUS)),
        };
        (status, records)
    }

    /// The NSEC and NSEC3 RRsets of `auth` signed by `signer` whose signatures verify.
    fn secure_denials(&self, auth: &Groups, signer: &Name, keys: &[DNSKEY]) -> Denials {
        let mut out = Denials::default();
        for ((owner, t), g) in &auth.0 {
            if !matches!(t, RecordType::NSEC | RecordType::NSEC3) || !signer.zone_of(owner) {
                continue;
            }
            if verify(&self.proven, owner, &g.records, &g.sigs, signer, keys).is_err() {
                continue;
            }
            // Kept for answering later names from (RFC 8198): NSEC, and NSEC3 that hang
            // directly under the zone (any other is not part of its chain).
            let keep = *t == RecordType::NSEC || owner.base_name() == *signer;
            if keep {
                self.cache.store_nsec(
                    signer,
                    Arc::new(RrSet {
                        name: owner.clone(),
                        rtype: *t,
                        records: Packed::pack(&g.records),
                        sigs: Packed::pack(&g.sigs),
                        proof: Vec::new(),
                        rank: Rank::Authority,
                        status: Status::Checked(Security::Secure, None),
                        stored: Instant::now(),
                        ttl: g.records.iter().map(|r| r.ttl).min().unwrap_or(0),
                    }),
                );
            }
            for r in &g.records {
                match &r.data {
                    RData::DNSSEC(DNSSECRData::NSEC(n)) => {
                        out.nsec.push((owner.clone(), n.clone()))
                    }
                    RData::DNSSEC(DNSSECRData::NSEC3(n)) => {
                        out.nsec3.push((owner.clone(), n.clone()))
                    }
                    _ => {}
                }
            }
        }
        out
    }

    /// The status of a negative answer for `name`/`qtype` from `zone`'s servers.
    pub(super) async fn validate_negative(
        &self,
        neg: &Negative,
        zone: &Name,
        name: &Name,
        qtype: RecordType,
        path: &Path,
    ) -> Status {
        if !self.is_validating() {
            return Status::Checked(Security::Insecure, None);
        }
        let auth = Groups::of(&neg.authority);
        // The zone that signed the denial: the SOA's signer, else the NSECs'.
        let signer = auth
            .0
            .iter()
            .find_map(|(_, g)| signer_of(&g.sigs))
            .unwrap_or_else(|| zone.clone());
        if !signer.zone_of(name) || !zone.zone_of(&signer) {
            return Status::Checked(Security::Bogus, Some(ede::DNSSEC_BOGUS));
        }
        let keys = match self.zone_keys(&signer, path).await {
            Keys::Secure(k) => k,
            Keys::Insecure => return Status::Checked(Security::Insecure, None),
            Keys::Bogus(e) => return Status::Checked(Security::Bogus, Some(e)),
        };
        // The SOA, when there is one, must verify too.
        if let Some((soa_owner, g)) = auth.of_type(RecordType::SOA).next()
            && let Err(f) = verify(&self.proven, soa_owner, &g.records, &g.sigs, &signer, &keys)
        {
            return Status::Checked(Security::Bogus, Some(f.ede()));
        }
        let d = self.secure_denials(&auth, &signer, &keys);
        let proof = if !d.nsec.is_empty() {
            if neg.nxdomain {
                denial::nsec_nxdomain(name, &signer, &d.nsec_refs())
            } else {
                denial::nsec_nodata(name, qtype, &signer, &d.nsec_refs())
            }
        } else if !d.nsec3.is_empty() {
            if neg.nxdomain {
                denial::nsec3_nxdomain(name, &signer, &d.nsec3_refs())
            } else {
                denial::nsec3_nodata(name, qtype, &signer, &d.nsec3_refs())
            }
        } else {
            Proof::Bogus("no NSEC or NSEC3 records")
        };
        match proof {
            Proof::Secure => Status::Checked(Security::Secure, None),
            Proof::Insecure => Status::Checked(Security::Insecure, None),
            Proof::Bogus(why) => {
                tracing::debug!(%name, %qtype, why, %signer, "denial not proven");
                Status::Checked(Security::Bogus, Some(ede::DNSSEC_BOGUS))
            }
        }
    }

    /// The keys of `zone`, proven up the chain (and remembered).
    pub(super) fn zone_keys<'a>(
        &'a self,
        zone: &'a Name,
        path: &'a Path,
    ) -> futures_util::future::BoxFuture<'a, Keys> {
        use futures_util::FutureExt;
        async move {
            if !self.is_validating() {
                return Keys::Insecure;
            }
            if let Some(k) = self.keys.get(zone) {
                return k;
            }
            let (keys, ttl) = self.prove_keys(zone, path).await;
            self.keys.put(zone, keys.clone(), ttl);
            keys
        }
        .boxed()
    }

    async fn prove_keys(&self, zone: &Name, path: &Path) -> (Keys, u32) {
        let Some(anchors) = &self.opts.anchors else {
            return (Keys::Insecure, 3600);
        };
        let ds = if zone.is_root() {
            DsSet::Anchor
        } else {
            match self.ds_of(zone, path).await {
                Ok(ds) => ds,
                Err(keys) => return (keys, 60),
            }
        };
        // The zone's DNSKEY RRset, from the cache or its servers.
        let dnskey = match self.cache.rrset(zone, RecordType::DNSKEY) {
            Some(set) => set,
            None => match self.lookup(zone.clone(), RecordType::DNSKEY, path).await {
                Lookup::Data(set) => match self.cache.rrset(zone, RecordType::DNSKEY) {
                    Some(fresh) => fresh,
                    None => set,
                },
                Lookup::Negative(_) => {
                    return (Keys::Bogus(ede::DNSKEY_MISSING), 60);
                }
                _ => return (Keys::Bogus(ede::DNSSEC_BOGUS), 10),
            },
        };
        // A key of the set that the DS (or the anchor) vouches for must sign the set.
        let keys: Vec<DNSKEY> = dnskey
            .records()
            .iter()
            .filter_map(|r| match &r.data {
                RData::DNSSEC(DNSSECRData::DNSKEY(k)) => Some(k.clone()),
                _ => None,
            })
            .collect();
        let vouched: Vec<DNSKEY> = keys
            .iter()
            .filter(|k| match &ds {
                DsSet::Anchor => {
                    anchors.keys.contains(k.public_key())
                        || anchors
                            .ds
                            .iter()
                            .any(|d| d.covers(zone, k).unwrap_or(false))
                }
                DsSet::Records(list) => list.iter().any(|d| d.covers(zone, k).unwrap_or(false)),
            })
            .cloned()
            .collect();
        if vouched.is_empty() {
            tracing::debug!(%zone, "no DNSKEY matches the DS");
            return (Keys::Bogus(ede::DNSKEY_MISSING), 60);
        }
        match verify(
            &self.proven,
            zone,
            &dnskey.records(),
            &dnskey.sigs(),
            zone,
            &vouched,
        ) {
            Ok(_) => {
                let ttl = dnskey.ttl_left(Instant::now());
                (Keys::Secure(Arc::new(keys)), ttl)
            }
            Err(f) => (Keys::Bogus(f.ede()), 60),
        }
    }

    /// The validated DS records of `zone`; `Err` with the zone's key status when there are none
    /// (insecure delegation) or they cannot be proven.
    async fn ds_of(&self, zone: &Name, path: &Path) -> Result<DsSet, Keys> {
        // From the referral that delegated the zone, else asked of the parent.
        let found = match self.cache.rrset(zone, RecordType::DS) {
            Some(set) => Ok(set),
            None => match self.cache.nodata(zone, RecordType::DS) {
                Some(neg) => Err(neg),
                None => {
                    // Asked of the parent only when the parent is signed: under an unsigned
                    // zone every child is unsigned (the referral from one carries no proof).
                    let parent = self.closest_delegation(&zone.base_name()).zone;
                    match self.zone_keys(&parent, path).await {
                        Keys::Secure(_) => {}
                        other => return Err(other),
                    }
                    match self.lookup(zone.clone(), RecordType::DS, path).await {
                        Lookup::Data(set) => Ok(set),
                        Lookup::Negative(neg) => Err(neg),
                        _ => return Err(Keys::Bogus(ede::DNSSEC_BOGUS)),
                    }
                }
            },
        };
        match found {
            Ok(set) => {
                let status = match set.status {
                    Status::Unchecked => {
                        let parent = signer_of(&set.sigs()).unwrap_or_else(|| zone.base_name());
                        let (status, _) = self.check_rrset(&set, &parent, None, path).await;
                        self.cache.store_rrset(RrSet {
                            name: set.name.clone(),
                            rtype: set.rtype,
                            records: set.records.clone(),
                            sigs: set.sigs.clone(),
                            proof: Vec::new(),
                            rank: Rank::Answer,
                            status,
                            stored: set.stored,
                            ttl: set.ttl,
                        });
                        status
                    }
                    s => s,
                };
                match status {
                    Status::Checked(Security::Secure, _) => {}
                    Status::Checked(Security::Insecure, _) => return Err(Keys::Insecure),
                    Status::Checked(Security::Bogus, e) => {
                        return Err(Keys::Bogus(e.unwrap_or(ede::DNSSEC_BOGUS)));
                    }
                    Status::Unchecked => return Err(Keys::Bogus(ede::DNSSEC_BOGUS)),
                }
                let list: Vec<DS> = set
                    .records()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::DNSSEC(DNSSECRData::DS(d)) => Some(d.clone()),
                        _ => None,
                    })
                    .filter(|d| d.digest_type().is_supported() && d.algorithm().is_supported())
                    .collect();
                if list.is_empty() {
                    // Only algorithms or digests we cannot check: treated as unsigned (RFC 4035
                    // §5.2).
                    return Err(Keys::Insecure);
                }
                Ok(DsSet::Records(list))
            }
            Err(neg) => {
                let status = match neg.status {
                    Status::Unchecked => {
                        let parent = zone.base_name();
                        let status = self
                            .validate_negative(&neg, &parent, zone, RecordType::DS, path)
                            .await;
                        self.cache.store_negative(
                            zone,
                            RecordType::DS,
                            Negative {
                                nxdomain: neg.nxdomain,
                                authority: neg.authority.clone(),
                                status,
                                stored: neg.stored,
                                ttl: neg.ttl,
                            },
                        );
                        status
                    }
                    s => s,
                };
                match status {
                    // Proven unsigned, or an opt-out span: the zone is insecure.
                    Status::Checked(Security::Secure | Security::Insecure, _) => {
                        Err(Keys::Insecure)
                    }
                    Status::Checked(Security::Bogus, e) => {
                        Err(Keys::Bogus(e.unwrap_or(ede::DNSSEC_BOGUS)))
                    }
                    Status::Unchecked => Err(Keys::Bogus(ede::DNSSEC_BOGUS)),
                }
            }
        }
    }

    /// Answers `name`/`qtype` from a validated NSEC or NSEC3 chain in the cache when it proves
    /// that the name, or the type at it, does not exist (aggressive use of DNSSEC-validated
    /// cache, RFC 8198; NSEC3 only where the span is not opt-out).
    pub(super) async fn synthesise(
        &self,
        name: &Name,
        qtype: RecordType,
        _path: &Path,
    ) -> Option<Lookup> {
        if !self.is_validating() || matches!(qtype, RecordType::DS | RecordType::ANY) {
            return None;
        }
        // The deepest zone at or above the name whose keys are secure and whose SOA we have.
        let mut zone = name.clone();
        let (zone, soa) = loop {
            if let Some(Keys::Secure(_)) = self.keys.get(&zone)
                && let Some(soa) = self.cache.rrset(&zone, RecordType::SOA)
                && soa.status == Status::Checked(Security::Secure, None)
            {
                break (zone, soa);
            }
            if zone.is_root() {
                return None;
            }
            zone = zone.base_name();
        };
        let Some(nsec) = self.cache.nsec_at_or_before(&zone, name) else {
            let (nxdomain, proof) = self.nsec3_proof(&zone, name, qtype)?;
            return synthesised(nxdomain, soa, proof);
        };
        let rdata = nsec_rdata(&nsec)?;
        let (nxdomain, proof) = if nsec.name == *name {
            // The name exists: NODATA if the type (or a CNAME) is not there.
            if !denial::nsec_lacks(&nsec.name, &rdata, qtype) {
                return None;
            }
            (false, vec![nsec.clone()])
        } else {
            if !denial::nsec_covers(&nsec.name, &rdata, name, &zone) {
                return None;
            }
            // A name between two existing names: which ancestor exists (the closest encloser)
            // and that no wildcard below it could have answered.
            let ce = denial::closest_encloser(name, &nsec.name, rdata.next_domain_name());
            if ce.num_labels() < zone.num_labels() {
                return None;
            }
            let wildcard = ce.clone().prepend_label("*").ok()?;
            let wnsec = self.cache.nsec_at_or_before(&zone, &wildcard)?;
            let wdata = nsec_rdata(&wnsec)?;
            if wnsec.name == wildcard || !denial::nsec_covers(&wnsec.name, &wdata, &wildcard, &zone)
            {
                return None;
            }
            let mut proof = vec![nsec.clone()];
            if !Arc::ptr_eq(&wnsec, &nsec) {
                proof.push(wnsec);
            }
            (true, proof)
        };
        synthesised(nxdomain, soa, proof)
    }

    /// The cached NSEC3 records of `zone` that prove `name` does not exist (closest encloser,
    /// next closer name covered, wildcard covered) or lacks `qtype` (its own NSEC3), checked by
    /// the same proof as an answer from the zone's servers. `None` if the chain has holes
    /// there, or the proof rests on an opt-out span.
    fn nsec3_proof(
        &self,
        zone: &Name,
        name: &Name,
        qtype: RecordType,
    ) -> Option<(bool, Vec<Arc<RrSet>>)> {
        // The zone's hash parameters, from any record of its chain (the apex sorts first).
        let any = self.cache.nsec3_at_or_before(zone, zone)?;
        let params = nsec3_rdata(&any)?;
        let find = |n: &Name| {
            let owner = denial::nsec3_owner(zone, &params, n)?;
            let set = self.cache.nsec3_at_or_before(zone, &owner)?;
            Some((set.name == owner, set))
        };
        let mut sets: Vec<Arc<RrSet>> = Vec::new();
        let (matched, at) = find(name)?;
        let nxdomain = if matched {
            sets.push(at);
            false
        } else {
            // The deepest ancestor the chain holds an NSEC3 for; below it the next closer name.
            let (mut next_closer, mut ce) = (name.clone(), name.base_name());
            loop {
                let (matched, set) = find(&ce)?;
                if matched {
                    sets.push(set);
                    break;
                }
                if ce == *zone {
                    return None;
                }
                next_closer = ce.clone();
                ce = ce.base_name();
            }
            sets.push(find(&next_closer)?.1);
            sets.push(find(&ce.prepend_label("*").ok()?)?.1);
            true
        };
        let mut unique: Vec<Arc<RrSet>> = Vec::with_capacity(sets.len());
        for s in sets {
            if !unique.iter().any(|u| Arc::ptr_eq(u, &s)) {
                unique.push(s);
            }
        }
        let records: Vec<(Name, NSEC3)> = unique
            .iter()
            .filter_map(|s| Some((s.name.clone(), nsec3_rdata(s)?)))
            .collect();
        let refs: Vec<(&Name, &NSEC3)> = records.iter().map(|(n, r)| (n, r)).collect();
        let proof = if nxdomain {
            denial::nsec3_nxdomain(name, zone, &refs)
        } else {
            denial::nsec3_nodata(name, qtype, zone, &refs)
        };
        matches!(proof, Proof::Secure).then_some((nxdomain, unique))
    }
}

/// The negative answer made of the zone's SOA and the proof, as long as all of them live.
fn synthesised(nxdomain: bool, soa: Arc<RrSet>, mut proof: Vec<Arc<RrSet>>) -> Option<Lookup> {
    proof.insert(0, soa);
    let now = Instant::now();
    let ttl = proof.iter().map(|s| s.ttl_left(now)).min().unwrap_or(0);
    if ttl == 0 {
        return None;
    }
    let authority = proof.iter().flat_map(|s| s.aged(now, true)).collect();
    crate::metrics::nsec_synthesised();
    Some(Lookup::Negative(Arc::new(Negative {
        nxdomain,
        authority,
        status: Status::Checked(Security::Secure, None),
        stored: now,
        ttl,
    })))
}

fn nsec_rdata(set: &RrSet) -> Option<NSEC> {
    set.records().into_iter().find_map(|r| match r.data {
        RData::DNSSEC(DNSSECRData::NSEC(n)) => Some(n),
        _ => None,
    })
}

fn nsec3_rdata(set: &RrSet) -> Option<NSEC3> {
    set.records().into_iter().find_map(|r| match r.data {
        RData::DNSSEC(DNSSECRData::NSEC3(n)) => Some(n),
        _ => None,
    })
}

/// What vouches for a zone's keys.
enum DsSet {
    /// The configured trust anchor (the root).
    Anchor,
    /// Validated DS records from the parent.
    Records(Vec<DS>),
}

/// Validated NSEC and NSEC3 records of an authority section.
#[derive(Default)]
struct Denials {
    nsec: Vec<(Name, NSEC)>,
    nsec3: Vec<(Name, NSEC3)>,
}

impl Denials {
    fn nsec_refs(&self) -> Vec<(&Name, &NSEC)> {
        self.nsec.iter().map(|(n, r)| (n, r)).collect()
    }
    fn nsec3_refs(&self) -> Vec<(&Name, &NSEC3)> {
        self.nsec3.iter().map(|(n, r)| (n, r)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_order_wraps() {
        assert!(at_or_before(1, 2));
        assert!(at_or_before(5, 5));
        assert!(!at_or_before(3, 2));
        assert!(at_or_before(u32::MAX - 1, 3), "across the wrap");
    }
}
