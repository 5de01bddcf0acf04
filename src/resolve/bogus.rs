//! Why an answer is bogus, told the way Unbound tells it: as an Extended DNS Error (RFC 8914).
//!
//! hickory 0.26's validator knows the reason (`ProofErrorKind`) but only logs it; the records
//! reach us marked `Proof::Bogus`. When a bogus answer is about to become SERVFAIL we look at its
//! raw records (fetched once for `repair` too) and at the signer's DS and DNSKEY RRsets through
//! the non-validating recursor (its cache already holds them, so this costs no traffic in the
//! usual case) and pick the code Unbound picks:
//!
//! * **9, DNSKEY Missing**: the zone that signed the answer has a DS at its parent, but none of
//!   its DNSKEYs matches one (a key rollover gone wrong; Unbound: "No DNSKEY matches DS RRs").
//! * **7, Signature Expired** / **8, Signature Not Yet Valid**: every signature the zone made
//!   over the answer is past its expiration / before its inception (a signer that stopped
//!   re-signing, or a clock that is wrong).
//! * **6, DNSSEC Bogus**: any other failure (e.g. a signature that does not verify).

use std::time::Instant;

use hickory_proto::{
    dnssec::rdata::DNSSECRData,
    op::{Message, Query},
    rr::{Name, RData, Record, RecordType},
};
use hickory_resolver::recursor::Recursor;
use tracing::debug;

use super::repair::{now_secs, serial_after};
use super::upstream::Upstreams;
use crate::dns::ede;

/// The EDE INFO-CODE for a question whose validated answer was bogus, from its raw records
/// (see `repair::raw_records`).
pub(super) async fn reason(plain: &Recursor<Upstreams>, raw: Option<&Message>) -> u16 {
    let raw: Vec<&Record> = raw
        .map(|m| m.answers.iter().chain(&m.authorities).collect())
        .unwrap_or_default();
    let Some(zone) = raw.iter().find_map(|r| signer(r)) else {
        return ede::DNSSEC_BOGUS;
    };
    let ds = zone_rrset(plain, &zone, RecordType::DS, |d| match d {
        DNSSECRData::DS(d) => Some(d.clone()),
        _ => None,
    })
    .await;
    if ds.is_empty() {
        return ede::DNSSEC_BOGUS;
    }
    let keys = zone_rrset(plain, &zone, RecordType::DNSKEY, |d| match d {
        DNSSECRData::DNSKEY(k) => Some(k.clone()),
        _ => None,
    })
    .await;
    let matched = ds
        .iter()
        .any(|d| keys.iter().any(|k| d.covers(&zone, k).unwrap_or(false)));
    if !matched {
        debug!(%zone, ds = ds.len(), dnskeys = keys.len(), "bogus: no DNSKEY matches the DS");
        return ede::DNSKEY_MISSING;
    }
    let sigs: Vec<_> = raw
        .iter()
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::RRSIG(s)) if s.input().signer_name == zone => {
                Some(s.input())
            }
            _ => None,
        })
        .collect();
    // Not empty: `zone` is the signer of one of them.
    let now = now_secs();
    if sigs
        .iter()
        .all(|s| !serial_after(s.sig_expiration.get(), now))
    {
        return ede::SIGNATURE_EXPIRED;
    }
    if sigs
        .iter()
        .all(|s| !serial_after(now, s.sig_inception.get()))
    {
        return ede::SIGNATURE_NOT_YET_VALID;
    }
    ede::DNSSEC_BOGUS
}

/// The `qtype` records at `zone` itself, as the non-validating recursor has them.
async fn zone_rrset<T>(
    plain: &Recursor<Upstreams>,
    zone: &Name,
    qtype: RecordType,
    pick: impl Fn(&DNSSECRData) -> Option<T>,
) -> Vec<T> {
    let Ok(m) = plain
        .resolve(Query::query(zone.clone(), qtype), Instant::now(), true)
        .await
    else {
        return Vec::new();
    };
    m.answers
        .iter()
        .filter(|r| r.name == *zone)
        .filter_map(|r| match &r.data {
            RData::DNSSEC(d) => pick(d),
            _ => None,
        })
        .collect()
}

/// The zone whose key signed a record, if it is a signature.
fn signer(r: &Record) -> Option<Name> {
    match &r.data {
        RData::DNSSEC(DNSSECRData::RRSIG(s)) => Some(s.input().signer_name.clone()),
        _ => None,
    }
}
