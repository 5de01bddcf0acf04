//! Blocked answers, written straight to wire format.
//!
//! Every blocked answer copies the client's question byte for byte (so mixed case survives),
//! carries RA, uses the short sinkhole TTL, and, when the query had EDNS, an Extended DNS Error
//! (RFC 8914) naming the list. What a list's action means for the engine (drop, log) is decided
//! above; this module only writes the four kinds of answer a block can have.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde::Deserialize;

use super::ede;
use super::wire::{self, Query, rcode, rtype};
use crate::section::Check;

/// `fraudwall.invalid.`: the MNAME of synthetic SOAs (`.invalid` can never resolve).
const MNAME: &[u8] = b"\x09fraudwall\x07invalid\x00";
/// `hostmaster.fraudwall.invalid.`: 30 bytes, not worth compressing onto MNAME.
const RNAME: &[u8] = b"\x0ahostmaster\x09fraudwall\x07invalid\x00";

/// The `sinkhole:` section as YAML spells it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSinkhole {
    pub ipv4: Ipv4Addr,
    pub ipv6: Ipv6Addr,
    pub ttl: u32,
}

impl Default for RawSinkhole {
    fn default() -> Self {
        RawSinkhole {
            ipv4: Ipv4Addr::LOCALHOST,
            ipv6: Ipv6Addr::LOCALHOST,
            ttl: 60,
        }
    }
}

impl RawSinkhole {
    /// Validates the section.
    pub fn validate(self, check: &mut Check) -> SinkholeConfig {
        if self.ttl == 0 {
            check.problem("ttl", "must be at least 1 second");
        }
        SinkholeConfig {
            ipv4: self.ipv4,
            ipv6: self.ipv6,
            ttl: self.ttl,
        }
    }
}

/// What blocked names are answered with, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkholeConfig {
    /// A of blocked names: an address of this host, where the warning page listens.
    pub ipv4: Ipv4Addr,
    /// AAAA of blocked names.
    pub ipv6: Ipv6Addr,
    /// TTL of blocked answers and of their synthetic SOA (its MINIMUM too).
    pub ttl: u32,
}

/// The kinds of blocked answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blocked {
    /// A → the sinkhole IPv4, AAAA → the sinkhole IPv6, ANY → both, anything else NODATA.
    Sinkhole,
    /// NXDOMAIN with the synthetic SOA.
    Nxdomain,
    /// NOERROR, no answer, the synthetic SOA.
    Nodata,
    /// REFUSED, nothing else.
    Refused,
}

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
    /// One of [`ede::LIST_CODES`].
    pub info_code: u16,
    pub extra_text: &'a str,
}

/// Writes the blocked answer for `q` into `out` (replacing what was there).
pub fn write(
    q: &Query<'_>,
    kind: Blocked,
    owner: SoaOwner<'_>,
    reason: Option<Reason<'_>>,
    sink: &SinkholeConfig,
    payload: u16,
    out: &mut Vec<u8>,
) {
    let (code, answers): (u8, &[u16]) = match kind {
        Blocked::Refused => (rcode::REFUSED, &[]),
        Blocked::Nxdomain => (rcode::NXDOMAIN, &[]),
        Blocked::Nodata => (rcode::NOERROR, &[]),
        Blocked::Sinkhole => match q.qtype {
            rtype::A => (rcode::NOERROR, &[rtype::A]),
            rtype::AAAA => (rcode::NOERROR, &[rtype::AAAA]),
            rtype::ANY => (rcode::NOERROR, &[rtype::A, rtype::AAAA]),
            _ => (rcode::NOERROR, &[]),
        },
    };
    let with_soa = answers.is_empty() && kind != Blocked::Refused;
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
            ede::put(&mut opts, r.info_code, r.extra_text);
        }
        wire::put_opt(out, payload, e.dnssec_ok, 0, &opts);
    }
}
