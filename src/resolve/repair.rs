//! Validation that hickory 0.26 gets wrong and Unbound gets right, redone in our layer.
//!
//! Called only when the validating recursor says Bogus. The security-aware but non-validating
//! recursor gives us the raw records (with RRSIGs); we then prove them ourselves with hickory's
//! public primitives, using keys the validating recursor has already proven secure:
//!
//! * **DNAME** (RFC 6672 §5.3.1): the CNAME a server synthesises from a DNAME has no RRSIG, and
//!   hickory calls it bogus. We validate the DNAME RRset, check that the CNAME is exactly the
//!   substitution it implies, and resolve (and validate) the target as a query of its own.
//! * **Wildcard expansion proven by NSEC** (RFC 4035 §5.3.4): hickory demands an NSEC covering the
//!   wildcard name itself, which an answer from that very wildcard cannot have. We verify the
//!   answer's wildcard RRSIG and an NSEC that covers the next closer name.
//!
//! Anything we cannot prove stays Bogus.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use hickory_proto::{
    dnssec::{
        Proof, Verifier,
        rdata::{DNSKEY, DNSSECRData, RRSIG},
    },
    op::{Message, MessageType, OpCode, Query, ResponseCode},
    rr::{Name, RData, Record, RecordType, rdata::CNAME},
    serialize::binary::{BinDecodable, BinDecoder},
};
use hickory_resolver::recursor::Recursor;
use tracing::debug;

use super::{Question, Resolved, Security, finish, from_recursor, upstream::Upstreams};

/// Deepest DNAME → DNAME → ... chain we follow.
const MAX_DEPTH: u8 = 8;

/// The question's records as the non-validating recursor has them, RRSIGs included. `None` when
/// hickory reports an error: it does so for NXDOMAIN and drops the answer section with it.
pub(super) async fn raw_records(q: &Question, plain: &Recursor<Upstreams>) -> Option<Message> {
    plain
        .resolve(Query::query(q.name.clone(), q.qtype), Instant::now(), true)
        .await
        .ok()
}

/// Tries to prove a response hickory called bogus, given its [`raw_records`]. `None` = it stays
/// bogus.
pub(super) async fn repair(
    q: &Question,
    v: &Recursor<Upstreams>,
    plain: &Recursor<Upstreams>,
    raw: Option<&Message>,
    depth: u8,
) -> Option<Resolved> {
    if depth > MAX_DEPTH {
        return None;
    }
    // Without an answer section (NXDOMAIN) a DNAME may only be found by asking for it.
    let found = match raw.and_then(|m| find_dname(&q.name, &m.answers)) {
        Some((rec, target)) => Some((rec.name.clone(), target)),
        None => probe_dname(&q.name, plain).await,
    };
    if let Some((owner, target)) = found
        && let Some(r) = Box::pin(dname(q, v, plain, raw, owner, target, depth)).await
    {
        return Some(r);
    }
    wildcard(q, v, raw?).await
}

/// Looks for a DNAME at the ancestors of `name` (nearest first, at most a few labels up).
async fn probe_dname(name: &Name, plain: &Recursor<Upstreams>) -> Option<(Name, Name)> {
    let mut ancestor = name.base_name();
    for _ in 0..6 {
        if ancestor.num_labels() < 2 {
            break;
        }
        let r = plain
            .resolve(
                Query::query(ancestor.clone(), RecordType::DNAME),
                Instant::now(),
                true,
            )
            .await;
        if let Ok(m) = r
            && let Some((rec, target)) = find_dname_at(&ancestor, &m.answers)
        {
            return Some((rec.name.clone(), target));
        }
        ancestor = ancestor.base_name();
    }
    None
}

/// The DNAME record owned by `owner`, with its target.
fn find_dname_at<'a>(owner: &Name, records: &'a [Record]) -> Option<(&'a Record, Name)> {
    records.iter().find_map(|r| {
        if r.record_type() != RecordType::DNAME || r.name != *owner {
            return None;
        }
        let RData::Unknown { rdata, .. } = &r.data else {
            return None;
        };
        let target = Name::read(&mut BinDecoder::new(&rdata.anything)).ok()?;
        Some((r, target))
    })
}

/// The DNAME record whose owner is a proper ancestor of `name`, with its target.
fn find_dname<'a>(name: &Name, records: &'a [Record]) -> Option<(&'a Record, Name)> {
    records
        .iter()
        .filter(|r| r.name.zone_of(name) && r.name != *name)
        .find_map(|r| find_dname_at(&r.name, std::slice::from_ref(r)))
}

/// `name` with its `owner` suffix replaced by `target`.
fn substitute(name: &Name, owner: &Name, target: &Name) -> Option<Name> {
    let keep = (name.num_labels() - owner.num_labels()) as usize;
    let prefix: Vec<&[u8]> = name.iter().take(keep).collect();
    let mut n = Name::from_labels(prefix).ok()?;
    n.set_fqdn(false);
    n.append_name(target).ok()
}

fn rrset_security(records: &[Record]) -> Security {
    if records.iter().any(|r| r.proof == Proof::Bogus) {
        Security::Bogus
    } else if !records.is_empty() && records.iter().all(|r| r.proof == Proof::Secure) {
        Security::Secure
    } else {
        Security::Insecure
    }
}

fn weakest(a: Security, b: Security) -> Security {
    match (a, b) {
        (Security::Bogus, _) | (_, Security::Bogus) => Security::Bogus,
        (Security::Secure, Security::Secure) => Security::Secure,
        _ => Security::Insecure,
    }
}

async fn dname(
    q: &Question,
    v: &Recursor<Upstreams>,
    plain: &Recursor<Upstreams>,
    raw: Option<&Message>,
    owner: Name,
    target: Name,
    depth: u8,
) -> Option<Resolved> {
    let new_name = substitute(&q.name, &owner, &target)?;
    // The CNAME the server synthesised, if any, must be exactly the substitution.
    let cname_ok = raw.is_none_or(|raw| {
        raw.answers.iter().all(|r| match &r.data {
            RData::CNAME(c) if r.name == q.name => c.0 == new_name,
            _ => true,
        })
    });
    if !cname_ok {
        debug!(name = %q.name, "synthesised CNAME does not match its DNAME");
        return None;
    }
    // The DNAME RRset, validated on its own.
    let dq = Query::query(owner.clone(), RecordType::DNAME);
    let dres = v.resolve(dq, Instant::now(), true).await;
    let dname_q = Question {
        name: owner.clone(),
        qtype: RecordType::DNAME,
        dnssec_ok: true,
        checking_disabled: false,
    };
    let dname_resolved = from_recursor(&dname_q, dres, true);
    let dname_records: Vec<Record> = dname_resolved
        .message
        .answers
        .iter()
        .filter(|r| r.name == owner)
        .cloned()
        .collect();
    let dname_sec = rrset_security(
        &dname_records
            .iter()
            .filter(|r| r.record_type() == RecordType::DNAME)
            .cloned()
            .collect::<Vec<_>>(),
    );
    if dname_sec == Security::Bogus || dname_records.is_empty() {
        return None;
    }
    // The target, as a query of its own (it may itself need repair).
    let tq = Question {
        name: new_name.clone(),
        qtype: q.qtype,
        dnssec_ok: true,
        checking_disabled: false,
    };
    let tres = v
        .resolve(
            Query::query(new_name.clone(), q.qtype),
            Instant::now(),
            true,
        )
        .await;
    let mut target = from_recursor(&tq, tres, true);
    if target.security == Security::Bogus {
        let traw = raw_records(&tq, plain).await;
        target = Box::pin(repair(&tq, v, plain, traw.as_ref(), depth + 1)).await?;
    }
    let ttl = dname_records
        .iter()
        .find(|r| r.record_type() == RecordType::DNAME)
        .map_or(300, |r| r.ttl);
    let mut m = Message::new(0, MessageType::Response, OpCode::Query);
    m.add_query(Query::query(q.name.clone(), q.qtype));
    m.metadata.response_code = target.message.metadata.response_code;
    m.answers.extend(dname_records);
    m.answers.push(Record::from_rdata(
        q.name.clone(),
        ttl,
        RData::CNAME(CNAME(new_name)),
    ));
    m.answers.extend(target.message.answers.iter().cloned());
    m.authorities = target.message.authorities.clone();
    let security = weakest(dname_sec, target.security);
    debug!(name = %q.name, ?security, "DNAME answer validated in our layer");
    Some(finish(q, m, security))
}

/// Seconds since the epoch, as RRSIG validity times count them (mod 2^32).
pub(super) fn now_secs() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}

/// `a` is at or after `b` in serial-number arithmetic (RFC 4034 §3.1.5).
pub(super) fn serial_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) >= 0
}

/// Whether `sig` is in its validity window and verifies `rrset` with one of `keys`.
fn verifies(sig: &RRSIG, owner: &Name, rrset: &[&Record], keys: &[DNSKEY]) -> bool {
    let input = sig.input();
    let now = now_secs();
    if !serial_after(now, input.sig_inception.get())
        || !serial_after(input.sig_expiration.get(), now)
    {
        return false;
    }
    keys.iter().any(|k| {
        k.algorithm() == input.algorithm
            && k.calculate_key_tag().ok() == Some(input.key_tag)
            && k.verify_rrsig(owner, rrset[0].dns_class, sig, rrset.iter().copied())
                .is_ok()
    })
}

/// The zone's DNSKEYs, if the validating recursor proves them secure.
async fn secure_keys(v: &Recursor<Upstreams>, zone: &Name) -> Option<Vec<DNSKEY>> {
    let r = v
        .resolve(
            Query::query(zone.clone(), RecordType::DNSKEY),
            Instant::now(),
            true,
        )
        .await
        .ok()?;
    let keys: Vec<&Record> = r
        .answers
        .iter()
        .filter(|r| r.record_type() == RecordType::DNSKEY && r.name == *zone)
        .collect();
    if keys.is_empty() || keys.iter().any(|r| r.proof != Proof::Secure) {
        return None;
    }
    Some(
        keys.iter()
            .filter_map(|r| match &r.data {
                RData::DNSSEC(DNSSECRData::DNSKEY(k)) => Some(k.clone()),
                _ => None,
            })
            .collect(),
    )
}

async fn wildcard(q: &Question, v: &Recursor<Upstreams>, raw: &Message) -> Option<Resolved> {
    if raw.metadata.response_code != ResponseCode::NoError {
        return None;
    }
    let rrset: Vec<&Record> = raw
        .answers
        .iter()
        .filter(|r| r.name == q.name && r.record_type() == q.qtype)
        .collect();
    // Only the plain case: the whole answer is one RRset at the query name.
    if rrset.is_empty()
        || raw.answers.iter().any(|r| {
            r.name != q.name
                || !matches!(r.record_type(), t if t == q.qtype || t == RecordType::RRSIG)
        })
    {
        return None;
    }
    let sig = raw.answers.iter().find_map(|r| match &r.data {
        RData::DNSSEC(DNSSECRData::RRSIG(s))
            if s.input().type_covered == q.qtype && s.input().num_labels < q.name.num_labels() =>
        {
            Some(s)
        }
        _ => None,
    })?;
    let signer = sig.input().signer_name.clone();
    let labels = sig.input().num_labels as usize;
    let closest = q.name.trim_to(labels);
    if !signer.zone_of(&closest) {
        return None;
    }
    let keys = secure_keys(v, &signer).await?;
    if !verifies(sig, &q.name, &rrset, &keys) {
        return None;
    }
    // No closer match: an NSEC (signed by the same zone) covers the next closer name.
    let next_closer = q.name.trim_to(labels + 1);
    let covered = raw.authorities.iter().any(|r| {
        let RData::DNSSEC(DNSSECRData::NSEC(nsec)) = &r.data else {
            return false;
        };
        let next = nsec.next_domain_name();
        let covers = if r.name < *next {
            r.name < next_closer && next_closer < *next
        } else {
            // The last NSEC of the zone wraps around to the apex.
            r.name < next_closer
        };
        if !covers {
            return false;
        }
        let nsec_set: Vec<&Record> = raw
            .authorities
            .iter()
            .filter(|x| x.name == r.name && x.record_type() == RecordType::NSEC)
            .collect();
        raw.authorities.iter().any(|x| match &x.data {
            RData::DNSSEC(DNSSECRData::RRSIG(s))
                if x.name == r.name && s.input().type_covered == RecordType::NSEC =>
            {
                verifies(s, &r.name, &nsec_set, &keys)
            }
            _ => false,
        })
    });
    if !covered {
        return None;
    }
    let mut m = Message::new(0, MessageType::Response, OpCode::Query);
    m.add_query(Query::query(q.name.clone(), q.qtype));
    m.metadata.response_code = ResponseCode::NoError;
    m.answers = raw.answers.clone();
    for r in m.answers.iter_mut() {
        r.proof = Proof::Secure;
    }
    m.authorities = raw
        .authorities
        .iter()
        .filter(|r| matches!(r.record_type(), RecordType::NSEC | RecordType::RRSIG))
        .cloned()
        .collect();
    debug!(name = %q.name, "NSEC-proven wildcard answer validated in our layer");
    Some(finish(q, m, Security::Secure))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dname_substitution() {
        let n = |s: &str| Name::from_ascii(s).unwrap();
        assert_eq!(
            substitute(
                &n("www.old.example.com."),
                &n("old.example.com."),
                &n("new.example.net.")
            ),
            Some(n("www.new.example.net."))
        );
        assert_eq!(
            substitute(&n("a.b.old.example.com."), &n("old.example.com."), &n(".")),
            Some(n("a.b."))
        );
    }
}
