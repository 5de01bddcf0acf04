//! Proofs that something does not exist, from NSEC (RFC 4035 §5.4) or NSEC3 (RFC 5155 §8)
//! records whose signatures were already checked: NXDOMAIN, NODATA (also at an empty
//! non-terminal and through a wildcard), no DS at a delegation, and the proof that a wildcard
//! answer's own name does not exist.

use data_encoding::BASE32HEX_NOPAD;
use hickory_proto::{
    dnssec::{
        Nsec3HashAlgorithm,
        rdata::{NSEC, NSEC3},
    },
    rr::{Name, RecordType},
};

/// NSEC3 iterations above which a proof is not trusted (RFC 9276 §3.2; Unbound's default).
const MAX_NSEC3_ITERATIONS: u16 = 150;

/// The outcome of a denial proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proof {
    Secure,
    /// Proven only up to an opt-out span (or NSEC3 parameters we do not trust): insecure.
    Insecure,
    Bogus(&'static str),
}

/// Whether the NSEC at `owner` (with its `next`) covers `name`: `owner` < `name` < `next` in
/// canonical order, the last NSEC of the zone (whose next is the apex) covering everything
/// after its owner. An NSEC at a delegation point or a DNAME covers nothing below its owner:
/// those names live in another zone (or are rewritten), which this chain cannot speak for
/// (RFC 4035 §5.4, RFC 6672 §5.3.4.1).
pub fn nsec_covers(owner: &Name, nsec: &NSEC, name: &Name, zone: &Name) -> bool {
    if !zone.zone_of(name) || owner >= name || below_cut(owner, nsec, name) {
        return false;
    }
    let next = nsec.next_domain_name();
    name < next || next <= owner
}

/// Whether `name` lies below `owner` where the NSEC shows a zone cut or a DNAME.
fn below_cut(owner: &Name, nsec: &NSEC, name: &Name) -> bool {
    let types = nsec.type_set();
    let cut = (types.contains(RecordType::NS) && !types.contains(RecordType::SOA))
        || types.contains(RecordType::DNAME);
    cut && owner != name && owner.zone_of(name)
}

/// Whether the NSEC at `owner` proves that `owner` has no `qtype` records (nor a CNAME that
/// would answer instead). An NSEC at a delegation (NS without SOA) only speaks for the DS.
pub fn nsec_lacks(owner: &Name, nsec: &NSEC, qtype: RecordType) -> bool {
    let types = nsec.type_set();
    let _ = owner;
    if types.contains(RecordType::NS) && !types.contains(RecordType::SOA) && qtype != RecordType::DS
    {
        return false;
    }
    !types.contains(qtype) && (qtype == RecordType::CNAME || !types.contains(RecordType::CNAME))
}

/// The closest encloser of `name` given an NSEC from `owner` to `next` that covers it: the
/// longer of the names' common ancestors with the owner and with the next name.
pub fn closest_encloser(name: &Name, owner: &Name, next: &Name) -> Name {
    let common = |a: &Name| {
        let mut n = name.base_name();
        while !n.is_root() && !n.zone_of(a) {
            n = n.base_name();
        }
        n
    };
    let (a, b) = (common(owner), common(next));
    if a.num_labels() >= b.num_labels() {
        a
    } else {
        b
    }
}

/// NXDOMAIN: an NSEC covers the name, and one covers the wildcard at its closest encloser.
pub fn nsec_nxdomain(name: &Name, zone: &Name, nsecs: &[(&Name, &NSEC)]) -> Proof {
    let Some((owner, nsec)) = nsecs.iter().find(|(o, n)| nsec_covers(o, n, name, zone)) else {
        return Proof::Bogus("no NSEC covers the name");
    };
    let ce = closest_encloser(name, owner, nsec.next_domain_name());
    let Ok(wildcard) = ce.prepend_label("*") else {
        return Proof::Bogus("no wildcard name");
    };
    if nsecs
        .iter()
        .any(|(o, n)| nsec_covers(o, n, &wildcard, zone))
    {
        Proof::Secure
    } else {
        Proof::Bogus("no NSEC denies the wildcard")
    }
}

/// NODATA: an NSEC at the name without the type; or the name is an empty non-terminal
/// (an NSEC covers it and its next name is below it); or a wildcard at the closest encloser
/// matches without the type.
pub fn nsec_nodata(name: &Name, qtype: RecordType, zone: &Name, nsecs: &[(&Name, &NSEC)]) -> Proof {
    if let Some((o, n)) = nsecs.iter().find(|(o, _)| *o == name) {
        return if nsec_lacks(o, n, qtype) {
            Proof::Secure
        } else {
            Proof::Bogus("the NSEC at the name lists the type")
        };
    }
    for (o, n) in nsecs {
        if !nsec_covers(o, n, name, zone) {
            continue;
        }
        let next = n.next_domain_name();
        if name.zone_of(next) && next != name {
            return Proof::Secure;
        }
        let ce = closest_encloser(name, o, next);
        let Ok(wildcard) = ce.prepend_label("*") else {
            continue;
        };
        if let Some((wo, wn)) = nsecs.iter().find(|(wo, _)| **wo == wildcard)
            && nsec_lacks(wo, wn, qtype)
        {
            return Proof::Secure;
        }
    }
    Proof::Bogus("nothing proves the type absent")
}

/// Some NSEC covers `name` (the next closer name of a wildcard answer).
pub fn nsec_covers_any(name: &Name, nsecs: &[(&Name, &NSEC)]) -> Proof {
    let covered = nsecs.iter().any(|(o, n)| {
        // The zone is not known here: the covering test itself bounds the span.
        let next = n.next_domain_name();
        *o < name && (name < next || next <= *o) && !below_cut(o, n, name)
    });
    if covered {
        Proof::Secure
    } else {
        Proof::Bogus("no NSEC covers the wildcard's next closer name")
    }
}

/// One NSEC3 decoded for comparisons: its owner's hash and the next hash.
struct Hashed<'a> {
    owner: Vec<u8>,
    nsec3: &'a NSEC3,
}

fn hashed<'a>(zone: &Name, nsec3s: &[(&Name, &'a NSEC3)]) -> Vec<Hashed<'a>> {
    nsec3s
        .iter()
        .filter(|(o, _)| o.base_name() == *zone)
        .filter_map(|(o, n)| {
            let label = o.iter().next()?;
            let owner = BASE32HEX_NOPAD.decode(&label.to_ascii_uppercase()).ok()?;
            Some(Hashed { owner, nsec3: n })
        })
        .collect()
}

/// H(name) with the parameters of `n`.
fn hash_with(n: &NSEC3, name: &Name) -> Option<Vec<u8>> {
    let Nsec3HashAlgorithm::SHA1 = n.hash_algorithm();
    Nsec3HashAlgorithm::SHA1
        .hash(n.salt(), name, n.iterations())
        .ok()
        .map(|d| d.as_ref().to_vec())
}

/// Whether the NSEC3 `h` covers `hash`: between its owner and next hash, or, for the last
/// NSEC3 of the chain (its next is the first), after its owner or before its next.
fn covers3(h: &Hashed<'_>, hash: &[u8]) -> bool {
    let (owner, next) = (h.owner.as_slice(), h.nsec3.next_hashed_owner_name());
    if owner < next {
        owner < hash && hash < next
    } else {
        owner < hash || hash < next
    }
}

/// The owner name an NSEC3 record of `zone` with the parameters of `n` has for `name`: the
/// base32hex of its hash, a label under the zone. Lowercase, so that canonical order of these
/// names is the order of the hashes. `None` if the parameters are not ones we trust.
pub fn nsec3_owner(zone: &Name, n: &NSEC3, name: &Name) -> Option<Name> {
    if n.iterations() > MAX_NSEC3_ITERATIONS {
        return None;
    }
    let hash = hash_with(n, name)?;
    let label = BASE32HEX_NOPAD.encode(&hash).to_ascii_lowercase();
    zone.prepend_label(label).ok()
}

/// Whether the NSEC3 parameters can be trusted at all.
fn usable(set: &[Hashed<'_>]) -> bool {
    set.iter()
        .all(|h| h.nsec3.iterations() <= MAX_NSEC3_ITERATIONS)
}

/// The NSEC3 matching `name`, if any.
fn matching<'a, 'b>(set: &'b [Hashed<'a>], name: &Name) -> Option<&'b Hashed<'a>> {
    let first = set.first()?;
    let h = hash_with(first.nsec3, name)?;
    set.iter().find(|x| x.owner == h)
}

/// The NSEC3 covering `name`, if any.
fn covering<'a, 'b>(set: &'b [Hashed<'a>], name: &Name) -> Option<&'b Hashed<'a>> {
    let first = set.first()?;
    let h = hash_with(first.nsec3, name)?;
    set.iter().find(|x| covers3(x, &h))
}

/// The closest provable encloser of `name` (RFC 5155 §8.3): the deepest ancestor matched by an
/// NSEC3, with the NSEC3 that covers the next closer name. An encloser at a delegation point
/// or with a DNAME proves nothing: the name is not in this zone.
fn closest_provable<'a, 'b>(
    set: &'b [Hashed<'a>],
    name: &Name,
    zone: &Name,
) -> Option<(Name, &'b Hashed<'a>)> {
    let mut next_closer = name.clone();
    let mut ce = name.base_name();
    while zone.zone_of(&ce) {
        if let Some(m) = matching(set, &ce) {
            let types = m.nsec3.type_set();
            if types.contains(RecordType::DNAME)
                || (types.contains(RecordType::NS) && !types.contains(RecordType::SOA))
            {
                return None;
            }
            let cover = covering(set, &next_closer)?;
            return Some((ce, cover));
        }
        if ce == *zone {
            break;
        }
        next_closer = ce.clone();
        ce = ce.base_name();
    }
    None
}

/// NXDOMAIN by NSEC3: a closest encloser proof and the wildcard at it covered. An opt-out
/// span covering the next closer name makes it insecure (RFC 5155 §9.2).
pub fn nsec3_nxdomain(name: &Name, zone: &Name, nsec3s: &[(&Name, &NSEC3)]) -> Proof {
    let set = hashed(zone, nsec3s);
    if set.is_empty() {
        return Proof::Bogus("no NSEC3 of the zone");
    }
    if !usable(&set) {
        return Proof::Insecure;
    }
    let Some((ce, cover)) = closest_provable(&set, name, zone) else {
        return Proof::Bogus("no closest encloser proof");
    };
    let Ok(wildcard) = ce.prepend_label("*") else {
        return Proof::Bogus("no wildcard name");
    };
    if covering(&set, &wildcard).is_none() {
        return Proof::Bogus("no NSEC3 denies the wildcard");
    }
    if cover.nsec3.opt_out() {
        Proof::Insecure
    } else {
        Proof::Secure
    }
}

/// NODATA by NSEC3: an NSEC3 matching the name without the type; for DS, a closest encloser
/// proof whose next closer name is in an opt-out span (an unsigned delegation: insecure); or
/// the wildcard at the closest encloser matched without the type.
pub fn nsec3_nodata(
    name: &Name,
    qtype: RecordType,
    zone: &Name,
    nsec3s: &[(&Name, &NSEC3)],
) -> Proof {
    let set = hashed(zone, nsec3s);
    if set.is_empty() {
        return Proof::Bogus("no NSEC3 of the zone");
    }
    if !usable(&set) {
        return Proof::Insecure;
    }
    if let Some(m) = matching(&set, name) {
        let types = m.nsec3.type_set();
        let delegation = types.contains(RecordType::NS)
            && !types.contains(RecordType::SOA)
            && qtype != RecordType::DS;
        return if !delegation
            && !types.contains(qtype)
            && (qtype == RecordType::CNAME || !types.contains(RecordType::CNAME))
        {
            Proof::Secure
        } else {
            Proof::Bogus("the NSEC3 at the name lists the type")
        };
    }
    let Some((ce, cover)) = closest_provable(&set, name, zone) else {
        return Proof::Bogus("no closest encloser proof");
    };
    if qtype == RecordType::DS && cover.nsec3.opt_out() {
        return Proof::Insecure;
    }
    let Ok(wildcard) = ce.prepend_label("*") else {
        return Proof::Bogus("no wildcard name");
    };
    match matching(&set, &wildcard) {
        Some(w)
            if !w.nsec3.type_set().contains(qtype)
                && !w.nsec3.type_set().contains(RecordType::CNAME) =>
        {
            Proof::Secure
        }
        _ => Proof::Bogus("nothing proves the type absent"),
    }
}

/// Some NSEC3 covers `name` (the next closer name of a wildcard answer).
pub fn nsec3_covers_any(name: &Name, zone: &Name, nsec3s: &[(&Name, &NSEC3)]) -> Proof {
    let set = hashed(zone, nsec3s);
    if !usable(&set) {
        return Proof::Insecure;
    }
    match covering(&set, name) {
        Some(c) if c.nsec3.opt_out() => Proof::Insecure,
        Some(_) => Proof::Secure,
        None => Proof::Bogus("no NSEC3 covers the wildcard's next closer name"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::Name;

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn nsec(next: &str, types: &[RecordType]) -> NSEC {
        NSEC::new(n(next), types.iter().copied())
    }

    #[test]
    fn nsec_cover_and_wrap() {
        let zone = n("example.com.");
        let a = nsec("d.example.com.", &[RecordType::A]);
        assert!(nsec_covers(
            &n("b.example.com."),
            &a,
            &n("c.example.com."),
            &zone
        ));
        assert!(!nsec_covers(
            &n("b.example.com."),
            &a,
            &n("e.example.com."),
            &zone
        ));
        // The last NSEC points back at the apex and covers everything after it.
        let last = nsec("example.com.", &[RecordType::A]);
        assert!(nsec_covers(
            &n("y.example.com."),
            &last,
            &n("z.example.com."),
            &zone
        ));
    }

    #[test]
    fn nxdomain_needs_the_wildcard_denied() {
        let zone = n("example.com.");
        let (o1, o2) = (n("example.com."), n("b.example.com."));
        let apex = nsec("a.example.com.", &[RecordType::SOA, RecordType::NS]);
        let b = nsec("d.example.com.", &[RecordType::A]);
        // c.example.com: covered by b→d; *.example.com: covered by apex→a.
        let proof = nsec_nxdomain(&n("c.example.com."), &zone, &[(&o1, &apex), (&o2, &b)]);
        assert_eq!(proof, Proof::Secure);
        let only = nsec_nxdomain(&n("c.example.com."), &zone, &[(&o2, &b)]);
        assert!(matches!(only, Proof::Bogus(_)));
    }

    #[test]
    fn nodata_at_the_name_and_at_an_empty_non_terminal() {
        let zone = n("example.com.");
        let www = n("www.example.com.");
        let at = nsec(
            "x.example.com.",
            &[RecordType::A, RecordType::RRSIG, RecordType::NSEC],
        );
        assert_eq!(
            nsec_nodata(&www, RecordType::AAAA, &zone, &[(&www, &at)]),
            Proof::Secure
        );
        assert!(matches!(
            nsec_nodata(&www, RecordType::A, &zone, &[(&www, &at)]),
            Proof::Bogus(_)
        ));
        // b.example.com is an empty non-terminal: a → x.b covers it.
        let a = n("a.example.com.");
        let ent = nsec("x.b.example.com.", &[RecordType::A]);
        assert_eq!(
            nsec_nodata(&n("b.example.com."), RecordType::A, &zone, &[(&a, &ent)]),
            Proof::Secure
        );
    }

    #[test]
    fn an_nsec_at_a_cut_covers_nothing_below_it() {
        let root = Name::root();
        // The root's NSEC at org (an unsigned delegation) runs to test: names under org
        // are in org's zone, not proven absent by the root's chain.
        let org = n("org.");
        let cut = nsec(
            "test.",
            &[RecordType::NS, RecordType::RRSIG, RecordType::NSEC],
        );
        assert!(!nsec_covers(&org, &cut, &n("www.insecure.org."), &root));
        assert!(nsec_covers(&org, &cut, &n("pizza."), &root));
        let dname = nsec("test.", &[RecordType::DNAME, RecordType::RRSIG]);
        assert!(!nsec_covers(&org, &dname, &n("a.org."), &root));
        // The apex of a zone (SOA and NS) covers names below it as usual.
        let apex = nsec(
            "b.org.",
            &[RecordType::NS, RecordType::SOA, RecordType::RRSIG],
        );
        assert!(nsec_covers(&org, &apex, &n("a.org."), &org));
        assert_eq!(
            nsec_covers_any(&n("www.insecure.org."), &[(&org, &cut)]),
            Proof::Bogus("no NSEC covers the wildcard's next closer name")
        );
    }

    #[test]
    fn closest_encloser_from_owner_or_next() {
        assert_eq!(
            closest_encloser(
                &n("x.y.example.com."),
                &n("a.example.com."),
                &n("z.example.com.")
            ),
            n("example.com.")
        );
        assert_eq!(
            closest_encloser(
                &n("x.b.example.com."),
                &n("a.b.example.com."),
                &n("c.example.com.")
            ),
            n("b.example.com.")
        );
    }
}

#[cfg(test)]
mod hash_tests {
    use super::*;

    /// The hash of ldns-nsec3-hash (-t 0, no salt) for a name of the test hierarchy.
    #[test]
    fn nsec3_hash_matches_ldns() {
        let h = Nsec3HashAlgorithm::SHA1
            .hash(&[], &Name::from_ascii("new.example.net.").unwrap(), 0)
            .unwrap();
        assert_eq!(
            BASE32HEX_NOPAD.encode(h.as_ref()).to_ascii_lowercase(),
            "4auk71tso3m56hg92q135pg71l6dpr2v"
        );
    }
}
