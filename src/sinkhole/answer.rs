//! Blocked answers, written straight to wire format.
//!
//! Every blocked answer copies the client's question byte for byte (so mixed case survives),
//! carries RA, uses the short sinkhole TTL, and, when the query had EDNS, an Extended DNS Error
//! (RFC 8914) naming the list. hickory 0.26 has no EDE type, so the option is written raw.

use crate::blocklist::Action;
use crate::config::SinkholeConfig;
use crate::server::wire::{self, Query, rcode, rtype};

/// INFO-CODEs a list may use: 15 Blocked, 16 Censored, 17 Filtered.
pub const EDE_CODES: [u16; 3] = [15, 16, 17];

/// `fraudwall.invalid.`: the MNAME of synthetic SOAs (`.invalid` can never resolve).
const MNAME: &[u8] = b"\x09fraudwall\x07invalid\x00";
/// `hostmaster.fraudwall.invalid.`, compressed onto MNAME by the caller's offsets is not worth
/// it: 30 bytes.
const RNAME: &[u8] = b"\x0ahostmaster\x09fraudwall\x07invalid\x00";

/// Owner of the synthetic SOA: the listed entry, like the apex of a local zone.
#[derive(Clone, Copy, Debug)]
pub enum SoaOwner<'a> {
    /// The entry is the query name's suffix starting at this byte offset of the qname.
    InQuestion(usize),
    /// The entry is some other name (CNAME cloaking: a target's entry), in wire form.
    Name(&'a [u8]),
}

/// Why an answer is blocked, for the EDE option.
#[derive(Clone, Copy, Debug)]
pub struct Reason<'a> {
    pub info_code: u16,
    pub extra_text: &'a str,
}

/// Writes the answer for `action` into `out`; `false` means send nothing ([`Action::Drop`]).
/// [`Action::Log`] is not a block and must not reach here; it is answered as NODATA if it does.
pub fn blocked_response(
    q: &Query<'_>,
    action: Action,
    owner: SoaOwner<'_>,
    reason: Option<Reason<'_>>,
    sink: &SinkholeConfig,
    payload: u16,
    out: &mut Vec<u8>,
) -> bool {
    let (code, answers): (u8, &[u16]) = match action {
        Action::Drop => return false,
        Action::Refused => (rcode::REFUSED, &[]),
        Action::Nxdomain => (rcode::NXDOMAIN, &[]),
        Action::Nodata | Action::Log => (rcode::NOERROR, &[]),
        Action::Sinkhole => match q.qtype {
            rtype::A => (rcode::NOERROR, &[rtype::A]),
            rtype::AAAA => (rcode::NOERROR, &[rtype::AAAA]),
            rtype::ANY => (rcode::NOERROR, &[rtype::A, rtype::AAAA]),
            _ => (rcode::NOERROR, &[]),
        },
    };
    let with_soa = answers.is_empty() && action != Action::Refused;
    out.clear();
    wire::put_header(
        out,
        q.id,
        wire::response_flags(q.flags, code),
        (
            1,
            answers.len() as u16,
            with_soa as u16,
            q.edns.is_some() as u16,
        ),
    );
    wire::put_question(out, q);
    for &t in answers {
        out.extend_from_slice(&[0xc0, 12]); // pointer to the question name
        out.extend_from_slice(&t.to_be_bytes());
        out.extend_from_slice(&wire::CLASS_IN.to_be_bytes());
        out.extend_from_slice(&sink.ttl.to_be_bytes());
        if t == rtype::A {
            out.extend_from_slice(&4u16.to_be_bytes());
            out.extend_from_slice(&sink.ipv4.octets());
        } else {
            out.extend_from_slice(&16u16.to_be_bytes());
            out.extend_from_slice(&sink.ipv6.octets());
        }
    }
    if with_soa {
        match owner {
            SoaOwner::InQuestion(off) => {
                let ptr = 0xc000 | (12 + off) as u16;
                out.extend_from_slice(&ptr.to_be_bytes());
            }
            SoaOwner::Name(name) => out.extend(name.iter().map(u8::to_ascii_lowercase)),
        }
        out.extend_from_slice(&rtype::SOA.to_be_bytes());
        out.extend_from_slice(&wire::CLASS_IN.to_be_bytes());
        out.extend_from_slice(&sink.ttl.to_be_bytes());
        let rdlen = MNAME.len() + RNAME.len() + 20;
        out.extend_from_slice(&(rdlen as u16).to_be_bytes());
        out.extend_from_slice(MNAME);
        out.extend_from_slice(RNAME);
        // serial, refresh, retry, expire, minimum (= negative-caching TTL, RFC 2308)
        for v in [1u32, 3600, 600, 86_400, sink.ttl] {
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
    if let Some(e) = q.edns {
        let mut opts = Vec::with_capacity(64);
        if let Some(r) = reason {
            wire::put_ede(&mut opts, r.info_code, r.extra_text);
        }
        wire::put_opt(out, payload, e.dnssec_ok, 0, &opts);
    }
    true
}
