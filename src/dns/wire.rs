//! DNS wire format on the hot path: parse only the header, the question and the OPT record of a
//! query, and write responses straight into a byte buffer. No allocation per query in the common
//! case; every length is checked, so any input gives an error value, never a panic.

/// Header flag bits (in the second 16-bit word).
pub mod flags {
    pub const QR: u16 = 0x8000;
    pub const AA: u16 = 0x0400;
    pub const TC: u16 = 0x0200;
    pub const RD: u16 = 0x0100;
    pub const RA: u16 = 0x0080;
    pub const AD: u16 = 0x0020;
    pub const CD: u16 = 0x0010;
}

/// Response codes we produce.
pub mod rcode {
    pub const NOERROR: u8 = 0;
    pub const FORMERR: u8 = 1;
    pub const SERVFAIL: u8 = 2;
    pub const NXDOMAIN: u8 = 3;
    pub const NOTIMP: u8 = 4;
    pub const REFUSED: u8 = 5;
    /// Extended RCODE 16: the upper 8 bits go in the OPT record.
    pub const BADVERS: u16 = 16;
}

/// Record types we need by number.
pub mod rtype {
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const AAAA: u16 = 28;
    pub const DNAME: u16 = 39;
    pub const OPT: u16 = 41;
    pub const RRSIG: u16 = 46;
    pub const IXFR: u16 = 251;
    pub const AXFR: u16 = 252;
    pub const ANY: u16 = 255;
}

/// Class IN.
pub const CLASS_IN: u16 = 1;
/// Longest wire-form name (RFC 1035 §2.3.4).
pub const MAX_NAME: usize = 255;

/// The EDNS part of a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EdnsInfo {
    /// Requestor's UDP payload size, at least 512.
    pub payload: u16,
    pub version: u8,
    pub dnssec_ok: bool,
}

/// A parsed query: borrowed slices of the packet.
#[derive(Clone, Copy, Debug)]
pub struct Query<'a> {
    pub id: u16,
    /// The raw flags word of the query.
    pub flags: u16,
    /// Question name in wire form, original case, ending with the root label.
    pub qname: &'a [u8],
    pub qtype: u16,
    pub qclass: u16,
    pub edns: Option<EdnsInfo>,
}

impl Query<'_> {
    /// An owned copy, for work that outlives the packet (a cache miss on its way upstream).
    pub fn owned(&self) -> OwnedQuery {
        OwnedQuery {
            id: self.id,
            flags: self.flags,
            qname: self.qname.into(),
            qtype: self.qtype,
            qclass: self.qclass,
            edns: self.edns,
        }
    }
    pub fn rd(&self) -> bool {
        self.flags & flags::RD != 0
    }
    pub fn cd(&self) -> bool {
        self.flags & flags::CD != 0
    }
    pub fn ad(&self) -> bool {
        self.flags & flags::AD != 0
    }
    pub fn dnssec_ok(&self) -> bool {
        self.edns.is_some_and(|e| e.dnssec_ok)
    }
    /// The question section bytes (name, type, class) as they arrived.
    pub fn question_len(&self) -> usize {
        self.qname.len() + 4
    }
}

/// A parsed query that owns its question name: what a cache miss carries from the fast path into
/// resolution, so that a packet is parsed once however far it travels.
#[derive(Clone, Debug)]
pub struct OwnedQuery {
    id: u16,
    flags: u16,
    qname: Box<[u8]>,
    qtype: u16,
    qclass: u16,
    edns: Option<EdnsInfo>,
}

impl OwnedQuery {
    /// The query, borrowed.
    pub fn as_query(&self) -> Query<'_> {
        Query {
            id: self.id,
            flags: self.flags,
            qname: &self.qname,
            qtype: self.qtype,
            qclass: self.qclass,
            edns: self.edns,
        }
    }
}

/// Why a packet is not a query we answer normally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    /// Too short for a header, or a response: never answer (no reflection).
    Drop,
    /// Answer with this RCODE, echoing the ID, opcode and RD; `question` is the parsed question
    /// when it could be read (so the answer can echo it).
    Error {
        id: u16,
        flags: u16,
        rcode: u8,
        question_end: Option<usize>,
    },
    /// EDNS version we do not speak (RFC 6891 §6.1.3): BADVERS with our OPT.
    BadVers {
        id: u16,
        flags: u16,
        question_end: usize,
    },
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Reads an uncompressed name starting at `at`; returns the offset just past it.
/// Compression pointers are not allowed in a question (nothing precedes it to point at).
pub fn name_end(b: &[u8], mut at: usize) -> Option<usize> {
    let start = at;
    loop {
        let len = *b.get(at)? as usize;
        if len == 0 {
            at += 1;
            break;
        }
        if len > 63 {
            return None;
        }
        at += 1 + len;
        if at - start >= MAX_NAME {
            return None;
        }
    }
    if at - start > MAX_NAME || at > b.len() {
        return None;
    }
    Some(at)
}

/// Parses a query packet the way Unbound's `worker_check_request` judges it: exactly one
/// question, no answer or authority records, at most one additional record which must be OPT.
pub fn parse_query(b: &[u8]) -> Result<Query<'_>, Reject> {
    #[cfg(test)]
    crate::probe::parsed();
    if b.len() < 12 {
        return Err(Reject::Drop);
    }
    let id = be16(b, 0).ok_or(Reject::Drop)?;
    let fl = be16(b, 2).ok_or(Reject::Drop)?;
    if fl & flags::QR != 0 {
        return Err(Reject::Drop);
    }
    let err = |rcode, question_end| Reject::Error {
        id,
        flags: fl,
        rcode,
        question_end,
    };
    let (qd, an, ns, ar) = (
        be16(b, 4).unwrap_or(0),
        be16(b, 6).unwrap_or(0),
        be16(b, 8).unwrap_or(0),
        be16(b, 10).unwrap_or(0),
    );
    let opcode = (fl >> 11) & 0xf;
    if qd != 1 {
        return Err(err(
            if opcode == 0 {
                rcode::FORMERR
            } else {
                rcode::NOTIMP
            },
            None,
        ));
    }
    let qend = name_end(b, 12).ok_or(err(rcode::FORMERR, None))?;
    let qtype = be16(b, qend).ok_or(err(rcode::FORMERR, None))?;
    let qclass = be16(b, qend + 2).ok_or(err(rcode::FORMERR, None))?;
    let question_end = qend + 4;
    if opcode != 0 {
        return Err(err(rcode::NOTIMP, Some(question_end)));
    }
    if an != 0 || ns != 0 || ar > 1 {
        return Err(err(rcode::FORMERR, Some(question_end)));
    }
    let mut edns = None;
    if ar == 1 {
        // The OPT record: root owner, TYPE 41, CLASS = payload, TTL = ext-rcode|version|flags.
        let at = question_end;
        let e = err(rcode::FORMERR, Some(question_end));
        if *b.get(at).ok_or(e)? != 0 || be16(b, at + 1).ok_or(e)? != rtype::OPT {
            return Err(e);
        }
        let payload = be16(b, at + 3).ok_or(e)?;
        let version = *b.get(at + 6).ok_or(e)?;
        let eflags = be16(b, at + 7).ok_or(e)?;
        let rdlen = be16(b, at + 9).ok_or(e)? as usize;
        let rdata = b.get(at + 11..at + 11 + rdlen).ok_or(e)?;
        // Options must tile the RDATA exactly.
        let mut o = 0;
        while o < rdata.len() {
            let olen = be16(rdata, o + 2).ok_or(e)? as usize;
            o += 4 + olen;
        }
        if o != rdata.len() {
            return Err(e);
        }
        if version != 0 {
            return Err(Reject::BadVers {
                id,
                flags: fl,
                question_end,
            });
        }
        edns = Some(EdnsInfo {
            payload: payload.max(512),
            version,
            dnssec_ok: eflags & 0x8000 != 0,
        });
    }
    Ok(Query {
        id,
        flags: fl,
        qname: &b[12..qend],
        qtype,
        qclass,
        edns,
    })
}

/// Lowercases an ASCII wire-form name into `out` (same length). The length bytes are < 64 and
/// never in `A..=Z`, so lowercasing every byte is safe.
pub fn lower_name(name: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend(name.iter().map(u8::to_ascii_lowercase));
}

/// Number of labels in a wire-form name (root = 0).
pub fn label_count(name: &[u8]) -> usize {
    let mut n = 0;
    let mut at = 0;
    while let Some(&len) = name.get(at) {
        if len == 0 {
            break;
        }
        n += 1;
        at += 1 + len as usize;
    }
    n
}

/// Byte offset within `name` where its last `labels` labels start.
pub fn suffix_offset(name: &[u8], labels: usize) -> usize {
    let total = label_count(name);
    let skip = total.saturating_sub(labels);
    let mut at = 0;
    for _ in 0..skip {
        at += 1 + name[at] as usize;
    }
    at
}

/// Presentation form of a wire name, for logs (`www.example.com`; root is `.`).
pub fn name_to_string(name: &[u8]) -> String {
    let mut s = String::with_capacity(name.len());
    let mut at = 0;
    while let Some(&len) = name.get(at) {
        if len == 0 {
            break;
        }
        if !s.is_empty() {
            s.push('.');
        }
        let end = (at + 1 + len as usize).min(name.len());
        for &c in &name[at + 1..end] {
            if c.is_ascii_graphic() && c != b'.' && c != b'\\' {
                s.push(c as char);
            } else {
                s.push_str(&format!("\\{c:03}"));
            }
        }
        at = end;
    }
    if s.is_empty() {
        s.push('.');
    }
    s
}

/// Writes a response header. `counts` = (qd, an, ns, ar).
pub fn put_header(out: &mut Vec<u8>, id: u16, flags: u16, counts: (u16, u16, u16, u16)) {
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    for c in [counts.0, counts.1, counts.2, counts.3] {
        out.extend_from_slice(&c.to_be_bytes());
    }
}

/// Response flags for a query: QR, opcode and RD/CD copied, RA set, the given RCODE.
pub fn response_flags(query_flags: u16, rcode: u8) -> u16 {
    flags::QR | (query_flags & (0x7800 | flags::RD | flags::CD)) | flags::RA | (rcode as u16 & 0xf)
}

/// Appends an OPT record: our payload size, DO echoed, upper RCODE bits, and options.
pub fn put_opt(out: &mut Vec<u8>, payload: u16, dnssec_ok: bool, ext_rcode: u8, options: &[u8]) {
    out.push(0);
    out.extend_from_slice(&rtype::OPT.to_be_bytes());
    out.extend_from_slice(&payload.to_be_bytes());
    out.push(ext_rcode);
    out.push(0); // version 0
    out.extend_from_slice(&(if dnssec_ok { 0x8000u16 } else { 0 }).to_be_bytes());
    out.extend_from_slice(&(options.len() as u16).to_be_bytes());
    out.extend_from_slice(options);
}

/// Builds an error answer for a rejected packet (FORMERR, NOTIMP, REFUSED, SERVFAIL, BADVERS).
/// Returns `None` for [`Reject::Drop`].
pub fn error_response(packet: &[u8], reject: Reject, payload: u16) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    match reject {
        Reject::Drop => return None,
        Reject::Error {
            id,
            flags,
            rcode: rcode::NOTIMP,
            ..
        } => {
            // An opcode we do not implement: the opcode and RD echoed, no other flag, no
            // section (what ISC's EDNS compliance tester expects, and Unbound answers).
            let fl = flags::QR | (flags & (0x7800 | flags::RD)) | u16::from(rcode::NOTIMP);
            put_header(&mut out, id, fl, (0, 0, 0, 0));
        }
        Reject::Error {
            id,
            flags,
            rcode,
            question_end,
        } => {
            let q = question_end.map(|end| &packet[12..end]);
            put_header(
                &mut out,
                id,
                response_flags(flags, rcode),
                (q.is_some() as u16, 0, 0, 0),
            );
            if let Some(q) = q {
                out.extend_from_slice(q);
            }
        }
        Reject::BadVers {
            id,
            flags,
            question_end,
        } => {
            put_header(&mut out, id, response_flags(flags, 0), (1, 0, 0, 1));
            out.extend_from_slice(&packet[12..question_end]);
            put_opt(&mut out, payload, false, (rcode::BADVERS >> 4) as u8, &[]);
        }
    }
    Some(out)
}

/// Answer to a well-formed query with only a header, the question and (if the query had EDNS)
/// an OPT record: REFUSED, SERVFAIL, or a truncated (TC) answer.
pub fn bare_response(
    q: &Query<'_>,
    rcode: u8,
    extra_flags: u16,
    payload: u16,
    ede: Option<(u16, &str)>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + q.question_len() + 32);
    let has_opt = q.edns.is_some();
    put_header(
        &mut out,
        q.id,
        response_flags(q.flags, rcode) | extra_flags,
        (1, 0, 0, has_opt as u16),
    );
    put_question(&mut out, q);
    if let Some(e) = q.edns {
        let mut opts = Vec::new();
        if let Some((code, text)) = ede {
            super::ede::put(&mut opts, code, text);
        }
        put_opt(&mut out, payload, e.dnssec_ok, 0, &opts);
    }
    out
}

/// Copies the question exactly as the client sent it (its case included).
pub fn put_question(out: &mut Vec<u8>, q: &Query<'_>) {
    out.extend_from_slice(q.qname);
    out.extend_from_slice(&q.qtype.to_be_bytes());
    out.extend_from_slice(&q.qclass.to_be_bytes());
}

/// Skips one resource record starting at `at` (name may be compressed); returns
/// (type, ttl offset, end).
pub fn skip_record(b: &[u8], at: usize) -> Option<(u16, usize, usize)> {
    let mut p = at;
    // Owner name: labels then a terminator or a pointer.
    loop {
        let len = *b.get(p)?;
        if len == 0 {
            p += 1;
            break;
        }
        if len & 0xc0 == 0xc0 {
            p += 2;
            break;
        }
        if len > 63 {
            return None;
        }
        p += 1 + len as usize;
    }
    let ty = be16(b, p)?;
    let ttl_at = p + 4;
    let rdlen = be16(b, p + 8)? as usize;
    let end = p + 10 + rdlen;
    if end > b.len() {
        return None;
    }
    Some((ty, ttl_at, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &[u8], qtype: u16, opt: Option<&[u8]>) -> Vec<u8> {
        let mut b = Vec::new();
        put_header(&mut b, 0x1234, flags::RD, (1, 0, 0, opt.is_some() as u16));
        b.extend_from_slice(name);
        b.extend_from_slice(&qtype.to_be_bytes());
        b.extend_from_slice(&CLASS_IN.to_be_bytes());
        if let Some(o) = opt {
            b.extend_from_slice(o);
        }
        b
    }

    const WWW: &[u8] = b"\x03WwW\x07example\x03com\x00";

    #[test]
    fn parses_plain_query() {
        let b = query(WWW, rtype::A, None);
        let q = parse_query(&b).unwrap();
        assert_eq!(q.id, 0x1234);
        assert_eq!(q.qname, WWW);
        assert_eq!(q.qtype, rtype::A);
        assert!(q.rd() && q.edns.is_none());
    }

    #[test]
    fn parses_edns_do() {
        let mut opt = Vec::new();
        put_opt(
            &mut opt,
            4096,
            true,
            0,
            &[0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8],
        );
        let b = query(WWW, rtype::AAAA, Some(&opt));
        let q = parse_query(&b).unwrap();
        assert_eq!(
            q.edns,
            Some(EdnsInfo {
                payload: 4096,
                version: 0,
                dnssec_ok: true
            })
        );
    }

    #[test]
    fn edns_version_1_is_badvers() {
        let mut opt = Vec::new();
        put_opt(&mut opt, 4096, false, 0, &[]);
        opt[6] = 1;
        let b = query(WWW, rtype::A, Some(&opt));
        let r = parse_query(&b).unwrap_err();
        assert!(matches!(r, Reject::BadVers { .. }));
        let resp = error_response(&b, r, 1232).unwrap();
        // ext-rcode 1 in the OPT TTL's first byte → RCODE 16 BADVERS.
        assert_eq!(resp[resp.len() - 6], 1);
    }

    #[test]
    fn rejects_garbage_without_panic() {
        assert_eq!(parse_query(b"short").unwrap_err(), Reject::Drop);
        let mut b = query(WWW, rtype::A, None);
        b[2] |= 0x80; // a response
        assert_eq!(parse_query(&b).unwrap_err(), Reject::Drop);
        let mut b = query(b"\xc0\x0c", rtype::A, None);
        assert!(matches!(
            parse_query(&b).unwrap_err(),
            Reject::Error {
                rcode: rcode::FORMERR,
                ..
            }
        ));
        b.truncate(14);
        assert!(parse_query(&b).is_err());
        // Every prefix and a sweep of byte flips: errors, never panics.
        let mut opt = Vec::new();
        put_opt(&mut opt, 1232, true, 0, &[0, 15, 0, 2, 0, 15]);
        let full = query(WWW, rtype::A, Some(&opt));
        for n in 0..full.len() {
            let _ = parse_query(&full[..n]);
        }
        for i in 0..full.len() {
            for v in [0u8, 0x3f, 0x40, 0xc0, 0xff] {
                let mut m = full.clone();
                m[i] = v;
                if let Err(r) = parse_query(&m) {
                    let _ = error_response(&m, r, 1232);
                }
            }
        }
    }

    #[test]
    fn unknown_opcodes_get_a_bare_notimp() {
        let mut b = query(WWW, rtype::A, None);
        // Opcode 15, with RD and CD set.
        b[2] = (15 << 3) | 0x01;
        b[3] = 0x10;
        let r = parse_query(&b).unwrap_err();
        let out = error_response(&b, r, 1232).unwrap();
        assert_eq!(out.len(), 12, "no section at all");
        assert_eq!(out[2], 0x80 | (15 << 3) | 0x01, "QR, the opcode and RD");
        assert_eq!(out[3], rcode::NOTIMP, "no RA, AD, CD or Z");
    }

    #[test]
    fn names() {
        assert_eq!(label_count(WWW), 3);
        assert_eq!(suffix_offset(WWW, 2), 4);
        assert_eq!(name_to_string(WWW), "WwW.example.com");
        assert_eq!(name_to_string(b"\x00"), ".");
        let mut out = Vec::new();
        lower_name(WWW, &mut out);
        assert_eq!(&out, b"\x03www\x07example\x03com\x00");
    }

    #[test]
    fn name_length_limits() {
        let mut long = Vec::new();
        for _ in 0..127 {
            long.extend_from_slice(b"\x01a");
        }
        long.push(0);
        assert_eq!(long.len(), 255);
        assert!(name_end(&long, 0).is_some());
        let mut too_long = vec![1, b'a'];
        too_long.extend_from_slice(&long);
        assert!(name_end(&too_long, 0).is_none());
    }
}
