//! Reading an authoritative server's answer: grouping records into RRsets with their
//! signatures, and deciding what kind of answer it is.

use hickory_proto::{
    dnssec::rdata::DNSSECRData,
    op::{Message, ResponseCode},
    rr::{Name, RData, Record, RecordType},
    serialize::binary::{BinDecodable, BinDecoder},
};

/// Records of one owner and type, and the RRSIGs that cover them.
#[derive(Debug, Default, Clone)]
pub struct Group {
    pub records: Vec<Record>,
    pub sigs: Vec<Record>,
}

/// The RRsets of a section, in the order their first record appears.
#[derive(Debug, Default)]
pub struct Groups(pub Vec<((Name, RecordType), Group)>);

impl Groups {
    /// Groups `records`; an RRSIG goes with the type it covers at its owner.
    pub fn of(records: &[Record]) -> Groups {
        let mut out: Vec<((Name, RecordType), Group)> = Vec::new();
        for r in records {
            let key = match covered(r) {
                Some(t) => (r.name.clone(), t),
                None => (r.name.clone(), r.record_type()),
            };
            let slot = match out.iter().position(|(k, _)| *k == key) {
                Some(i) => &mut out[i].1,
                None => {
                    out.push((key, Group::default()));
                    &mut out.last_mut().expect("just pushed").1
                }
            };
            if covered(r).is_some() {
                slot.sigs.push(r.clone());
            } else {
                slot.records.push(r.clone());
            }
        }
        // An RRSIG without records (nothing to cover) is dropped.
        out.retain(|(_, g)| !g.records.is_empty());
        Groups(out)
    }

    /// The RRset of `name`/`rtype`.
    pub fn get(&self, name: &Name, rtype: RecordType) -> Option<&Group> {
        self.0
            .iter()
            .find(|((n, t), _)| *t == rtype && n == name)
            .map(|(_, g)| g)
    }

    /// Every RRset of type `rtype`.
    pub fn of_type(&self, rtype: RecordType) -> impl Iterator<Item = (&Name, &Group)> {
        self.0
            .iter()
            .filter(move |((_, t), _)| *t == rtype)
            .map(|((n, _), g)| (n, g))
    }
}

/// The type an RRSIG covers; `None` for anything else.
pub fn covered(r: &Record) -> Option<RecordType> {
    match &r.data {
        RData::DNSSEC(DNSSECRData::RRSIG(s)) => Some(s.input().type_covered),
        _ => None,
    }
}

/// The target of a DNAME record (hickory 0.26 keeps DNAME as unknown RDATA).
pub fn dname_target(r: &Record) -> Option<Name> {
    if r.record_type() != RecordType::DNAME {
        return None;
    }
    let RData::Unknown { rdata, .. } = &r.data else {
        return None;
    };
    Name::read(&mut BinDecoder::new(&rdata.anything)).ok()
}

/// The target of a CNAME record.
pub fn cname_target(r: &Record) -> Option<&Name> {
    match &r.data {
        RData::CNAME(c) => Some(&c.0),
        _ => None,
    }
}

/// `name` with its `owner` suffix replaced by `target` (DNAME substitution, RFC 6672).
pub fn substitute(name: &Name, owner: &Name, target: &Name) -> Option<Name> {
    let keep = usize::from(name.num_labels() - owner.num_labels());
    let prefix: Vec<&[u8]> = name.iter().take(keep).collect();
    let mut n = Name::from_labels(prefix).ok()?;
    n.set_fqdn(false);
    n.append_name(target).ok()
}

/// What kind of answer a server gave to `target`/`qtype`, asked of the servers of `zone`.
#[derive(Debug)]
pub enum Kind {
    /// Records of the asked type at the name (or of any type, for ANY).
    Data,
    /// A CNAME at the name (asked for another type).
    Cname,
    /// A DNAME at an ancestor of the name; the synthesised CNAME may come with it.
    Dname(Name),
    /// The name does not exist.
    NxDomain,
    /// The name exists but has no records of the type.
    NoData,
    /// Go ask the servers of this child zone.
    Referral(Name),
    /// Not an answer we can use from this server: lame, a referral upward or sideways, junk.
    Lame(&'static str),
}

/// Classifies `m`, the answer of a server of `zone` to `target`/`qtype`.
pub fn classify(m: &Message, zone: &Name, target: &Name, qtype: RecordType) -> Kind {
    match m.metadata.response_code {
        ResponseCode::NoError | ResponseCode::NXDomain => {}
        ResponseCode::Refused => return Kind::Lame("REFUSED"),
        ResponseCode::ServFail => return Kind::Lame("SERVFAIL"),
        ResponseCode::NotAuth => return Kind::Lame("NOTAUTH"),
        ResponseCode::NotImp => return Kind::Lame("NOTIMP"),
        ResponseCode::FormErr => return Kind::Lame("FORMERR"),
        _ => return Kind::Lame("unexpected RCODE"),
    }
    let at_target = |r: &Record| r.name == *target;
    let data = m.answers.iter().any(|r| {
        at_target(r)
            && covered(r).is_none()
            && (r.record_type() == qtype || qtype == RecordType::ANY)
    });
    if data {
        return Kind::Data;
    }
    // A DNAME before a CNAME: the CNAME at the name is the one synthesised from the DNAME.
    if let Some(d) = m.answers.iter().find(|r| {
        r.record_type() == RecordType::DNAME
            && r.name != *target
            && r.name.zone_of(target)
            && zone.zone_of(&r.name)
    }) {
        return Kind::Dname(d.name.clone());
    }
    if qtype != RecordType::CNAME
        && m.answers
            .iter()
            .any(|r| at_target(r) && r.record_type() == RecordType::CNAME)
    {
        return Kind::Cname;
    }
    if m.metadata.response_code == ResponseCode::NXDomain {
        return Kind::NxDomain;
    }
    if !m.answers.is_empty() {
        // Answers, but none for this name: a server answering some other question.
        return Kind::Lame("answer for another name");
    }
    // A referral: NS records for a zone below the one asked, above or at the name.
    let ns_owner = m
        .authorities
        .iter()
        .find(|r| r.record_type() == RecordType::NS)
        .map(|r| r.name.clone());
    let soa = m
        .authorities
        .iter()
        .any(|r| r.record_type() == RecordType::SOA);
    if let Some(owner) = ns_owner
        && !soa
    {
        if owner != *zone && zone.zone_of(&owner) && owner.zone_of(target) {
            return Kind::Referral(owner);
        }
        if owner == *zone && m.metadata.authoritative {
            // NS of the zone itself beside an empty answer: NODATA from a server that adds
            // its NS records to every answer.
            return Kind::NoData;
        }
        return Kind::Lame("referral upward or sideways");
    }
    if m.metadata.authoritative || soa {
        return Kind::NoData;
    }
    Kind::Lame("empty answer that is not authoritative")
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::{
        op::{MessageType, OpCode},
        rr::rdata::{A, NS, SOA},
    };

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn msg(answers: Vec<Record>, auth: Vec<Record>, rcode: ResponseCode, aa: bool) -> Message {
        let mut m = Message::new(1, MessageType::Response, OpCode::Query);
        m.metadata.response_code = rcode;
        m.metadata.authoritative = aa;
        m.answers = answers;
        m.authorities = auth;
        m
    }

    fn a(name: &str) -> Record {
        Record::from_rdata(n(name), 300, RData::A(A::new(198, 18, 0, 1)))
    }

    fn ns(name: &str, target: &str) -> Record {
        Record::from_rdata(n(name), 300, RData::NS(NS(n(target))))
    }

    fn soa(name: &str) -> Record {
        Record::from_rdata(
            n(name),
            300,
            RData::SOA(SOA::new(n("ns.x."), n("h.x."), 1, 2, 3, 4, 5)),
        )
    }

    #[test]
    fn kinds() {
        let (zone, t) = (n("example.com."), n("www.example.com."));
        let k = |m: &Message| classify(m, &zone, &t, RecordType::A);
        assert!(matches!(
            k(&msg(
                vec![a("www.example.com.")],
                vec![],
                ResponseCode::NoError,
                true
            )),
            Kind::Data
        ));
        assert!(matches!(
            k(&msg(
                vec![],
                vec![soa("example.com.")],
                ResponseCode::NXDomain,
                true
            )),
            Kind::NxDomain
        ));
        assert!(matches!(
            k(&msg(
                vec![],
                vec![soa("example.com.")],
                ResponseCode::NoError,
                true
            )),
            Kind::NoData
        ));
        let referral = msg(
            vec![],
            vec![ns("www.example.com.", "ns.www.example.com.")],
            ResponseCode::NoError,
            false,
        );
        assert!(matches!(k(&referral), Kind::Referral(z) if z == t));
        let upward = msg(
            vec![],
            vec![ns("com.", "a.gtld.")],
            ResponseCode::NoError,
            false,
        );
        assert!(matches!(k(&upward), Kind::Lame(_)));
        assert!(matches!(
            k(&msg(vec![], vec![], ResponseCode::Refused, false)),
            Kind::Lame(_)
        ));
    }

    #[test]
    fn dname_substitution() {
        assert_eq!(
            substitute(
                &n("www.old.example.com."),
                &n("old.example.com."),
                &n("new.example.net.")
            )
            .unwrap(),
            n("www.new.example.net.")
        );
    }
}
