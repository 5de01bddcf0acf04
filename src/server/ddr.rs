//! Discovery of Designated Resolvers (RFC 9462) and the rest of `resolver.arpa`.
//!
//! A client that knows only our address asks `_dns.resolver.arpa SVCB`; we answer with our own
//! encrypted endpoints, one SVCB record per transport and port: DoH first (SvcPriority 1,
//! `alpn=h2,http/1.1`, `dohpath={path}{?dns}`), then DoT (`alpn=dot`), each with its port and,
//! when the listeners are bound to specific addresses, `ipv4hint`/`ipv6hint`. The TargetName
//! is `ddr.name`, the name clients verify our certificate for. Without endpoints (no DoT or DoH,
//! or no `ddr.name`) the answer is NODATA, so clients stay on what they use.
//!
//! `resolver.arpa` is special-use (RFC 9462 §6.4): no query under it is ever forwarded or
//! recursed, whatever the mode: `resolver.arpa` and `_dns.resolver.arpa` have no other data
//! (NODATA), every other name under it does not exist (NXDOMAIN). Both carry a SOA owned by
//! `resolver.arpa`, so they are cached as negative answers.

use std::net::{IpAddr, SocketAddr};

use hickory_proto::{
    rr::{
        Name,
        rdata::{
            A, AAAA,
            svcb::{Alpn, IpHint, SVCB, SvcParamKey, SvcParamValue, Unknown},
        },
    },
    serialize::binary::{BinEncodable, BinEncoder},
};

use super::EncryptedConfig;
use crate::dns::wire::{self, Query};

/// `resolver.arpa.` in wire form.
const RESOLVER_ARPA: &[u8] = b"\x08resolver\x04arpa\x00";
/// `_dns.resolver.arpa.` in wire form.
const DNS_RESOLVER_ARPA: &[u8] = b"\x04_dns\x08resolver\x04arpa\x00";
/// SVCB's type code (RFC 9460).
pub const SVCB_TYPE: u16 = 64;
/// The `dohpath` SvcParamKey (RFC 9461), which hickory-proto 0.26 does not name.
const DOHPATH: u16 = 7;
/// TTL of our SVCB records: clients re-check this often.
const TTL: u32 = 300;

/// What a query under `resolver.arpa` gets.
#[derive(Debug, PartialEq, Eq)]
pub enum Local {
    /// Our SVCB records.
    Endpoints,
    /// NOERROR, no answer; the SOA owned by `resolver.arpa` (its offset in the qname).
    Nodata(usize),
    /// NXDOMAIN; the SOA owned by `resolver.arpa`.
    Nxdomain(usize),
}

/// The DDR answer, prepared once at start.
#[derive(Debug, Default, Clone)]
pub struct Ddr {
    /// The RDATA of each SVCB record, in priority order.
    records: Vec<Vec<u8>>,
}

impl Ddr {
    /// No endpoints: `_dns.resolver.arpa` is NODATA.
    pub fn none() -> Ddr {
        Ddr::default()
    }

    /// Our endpoints: `cfg`'s name and DoH path, and the addresses the DoH and DoT listeners
    /// are bound to (a configured port 0 has become a real one). None without `ddr.name`.
    pub fn new(cfg: &EncryptedConfig, doh: &[SocketAddr], dot: &[SocketAddr]) -> Ddr {
        let Some(target) = &cfg.ddr_name else {
            return Ddr::none();
        };
        let mut records = Vec::new();
        let mut priority = 1;
        let doh_alpn = || Alpn(vec!["h2".into(), "http/1.1".into()]);
        let dohpath = format!("{}{{?dns}}", cfg.doh_path);
        for (port, hints) in by_port(doh) {
            let mut params = vec![(SvcParamKey::Alpn, SvcParamValue::Alpn(doh_alpn()))];
            params.extend(port_and_hints(port, &hints));
            params.push((
                SvcParamKey::Unknown(DOHPATH),
                SvcParamValue::Unknown(Unknown(dohpath.as_bytes().to_vec())),
            ));
            records.push(rdata(priority, target, params));
            priority += 1;
        }
        for (port, hints) in by_port(dot) {
            let alpn = Alpn(vec!["dot".into()]);
            let mut params = vec![(SvcParamKey::Alpn, SvcParamValue::Alpn(alpn))];
            params.extend(port_and_hints(port, &hints));
            records.push(rdata(priority, target, params));
            priority += 1;
        }
        Ddr { records }
    }

    /// Whether endpoints are advertised.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// What `q` gets if its name is `resolver.arpa` or under it; `None` for every other name.
    pub fn local(&self, q: &Query<'_>) -> Option<Local> {
        // The common case, cheaply: the name does not even end in those bytes.
        let tail = q.qname.len().checked_sub(RESOLVER_ARPA.len())?;
        if !q.qname[tail..].eq_ignore_ascii_case(RESOLVER_ARPA) {
            return None;
        }
        let off = wire::suffix_offset(q.qname, 2);
        if !q.qname[off..].eq_ignore_ascii_case(RESOLVER_ARPA) {
            return None;
        }
        let ddr_name = q.qname.eq_ignore_ascii_case(DNS_RESOLVER_ARPA);
        Some(if ddr_name && q.qtype == SVCB_TYPE && !self.is_empty() {
            Local::Endpoints
        } else if ddr_name || off == 0 {
            Local::Nodata(off)
        } else {
            Local::Nxdomain(off)
        })
    }

    /// Writes our SVCB answer to `q` (see [`Ddr::local`]) into `out`.
    pub fn write(&self, q: &Query<'_>, payload: u16, out: &mut Vec<u8>) {
        out.clear();
        let flags = wire::response_flags(q.flags, wire::rcode::NOERROR) | wire::flags::AA;
        let counts = (1, self.records.len() as u16, 0, u16::from(q.edns.is_some()));
        wire::put_header(out, q.id, flags, counts);
        wire::put_question(out, q);
        for rdata in &self.records {
            out.extend_from_slice(&[0xc0, 12]); // the question's name
            out.extend_from_slice(&SVCB_TYPE.to_be_bytes());
            out.extend_from_slice(&wire::CLASS_IN.to_be_bytes());
            out.extend_from_slice(&TTL.to_be_bytes());
            out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            out.extend_from_slice(rdata);
        }
        if let Some(e) = q.edns {
            wire::put_opt(out, payload, e.dnssec_ok, 0, &[]);
        }
    }
}

/// The listen addresses grouped by port (in order of first appearance), with the specific
/// addresses of each (0.0.0.0 and :: say nothing a client can use).
fn by_port(listen: &[SocketAddr]) -> Vec<(u16, Vec<IpAddr>)> {
    let mut groups: Vec<(u16, Vec<IpAddr>)> = Vec::new();
    for a in listen {
        let i = match groups.iter().position(|(p, _)| *p == a.port()) {
            Some(i) => i,
            None => {
                groups.push((a.port(), Vec::new()));
                groups.len() - 1
            }
        };
        if !a.ip().is_unspecified() && !groups[i].1.contains(&a.ip()) {
            groups[i].1.push(a.ip());
        }
    }
    groups
}

fn port_and_hints(port: u16, hints: &[IpAddr]) -> Vec<(SvcParamKey, SvcParamValue)> {
    let mut params = vec![(SvcParamKey::Port, SvcParamValue::Port(port))];
    let v4: Vec<A> = hints
        .iter()
        .filter_map(|ip| match ip {
            IpAddr::V4(v4) => Some(A(*v4)),
            IpAddr::V6(_) => None,
        })
        .collect();
    let v6: Vec<AAAA> = hints
        .iter()
        .filter_map(|ip| match ip {
            IpAddr::V6(v6) => Some(AAAA(*v6)),
            IpAddr::V4(_) => None,
        })
        .collect();
    if !v4.is_empty() {
        params.push((SvcParamKey::Ipv4Hint, SvcParamValue::Ipv4Hint(IpHint(v4))));
    }
    if !v6.is_empty() {
        params.push((SvcParamKey::Ipv6Hint, SvcParamValue::Ipv6Hint(IpHint(v6))));
    }
    params
}

/// SVCB RDATA; the keys must be in ascending order (RFC 9460 §2.2), as the callers add them.
fn rdata(priority: u16, target: &Name, params: Vec<(SvcParamKey, SvcParamValue)>) -> Vec<u8> {
    let svcb = SVCB::new(priority, target.clone(), params);
    let mut buf = Vec::with_capacity(128);
    let mut enc = BinEncoder::new(&mut buf);
    svcb.emit(&mut enc)
        .expect("an SVCB record of a valid name and a few parameters encodes");
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::{
        rr::{RData, RecordType},
        serialize::binary::BinDecoder,
    };

    fn query(name: &[u8], qtype: u16) -> Vec<u8> {
        let mut b = Vec::new();
        wire::put_header(&mut b, 0, wire::flags::RD, (1, 0, 0, 0));
        b.extend_from_slice(name);
        b.extend_from_slice(&qtype.to_be_bytes());
        b.extend_from_slice(&wire::CLASS_IN.to_be_bytes());
        b
    }

    fn ddr() -> Ddr {
        let cfg = EncryptedConfig {
            ddr_name: Some(Name::from_ascii("dns.example.net.").unwrap()),
            ..EncryptedConfig::default()
        };
        let dot = [
            "198.18.0.53:853".parse().unwrap(),
            "[::]:853".parse().unwrap(),
        ];
        Ddr::new(&cfg, &["[2001:db8::53]:443".parse().unwrap()], &dot)
    }

    #[test]
    fn only_resolver_arpa_is_local() {
        let ddr = ddr();
        let local = |name: &[u8], t| ddr.local(&wire::parse_query(&query(name, t)).unwrap());
        assert_eq!(
            local(b"\x04_dns\x08resolver\x04arpa\x00", 64),
            Some(Local::Endpoints)
        );
        assert_eq!(
            local(b"\x04_DNS\x08Resolver\x04ARPA\x00", 64),
            Some(Local::Endpoints)
        );
        assert_eq!(
            local(b"\x04_dns\x08resolver\x04arpa\x00", 1),
            Some(Local::Nodata(5))
        );
        assert_eq!(
            local(b"\x08resolver\x04arpa\x00", 64),
            Some(Local::Nodata(0))
        );
        assert_eq!(
            local(b"\x01x\x08resolver\x04arpa\x00", 1),
            Some(Local::Nxdomain(2))
        );
        assert_eq!(local(b"\x09xresolver\x04arpa\x00", 64), None);
        assert_eq!(local(b"\x04arpa\x00", 64), None);
        assert_eq!(local(b"\x00", 2), None);
        let none = Ddr::none();
        let q = query(b"\x04_dns\x08resolver\x04arpa\x00", 64);
        assert_eq!(
            none.local(&wire::parse_query(&q).unwrap()),
            Some(Local::Nodata(5))
        );
    }

    #[test]
    fn records_carry_alpn_port_hints_and_dohpath() {
        let ddr = ddr();
        let text: Vec<String> = ddr
            .records
            .iter()
            .map(|r| {
                let mut d = BinDecoder::new(r);
                let len = hickory_proto::serialize::binary::Restrict::new(r.len() as u16);
                RData::read(&mut d, RecordType::SVCB, len)
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(text.len(), 2, "{text:?}");
        // (hickory shows the key it does not name, dohpath, as unknown7.)
        for (i, part) in [
            (0, "1 dns.example.net. "),
            (0, "alpn=h2,http/1.1"),
            (0, "port=443 "),
            (0, "ipv6hint=2001:db8::53"),
            (0, "unknown7=\"/dns-query{?dns}\""),
            (1, "2 dns.example.net. "),
            (1, "alpn=dot"),
            (1, "port=853 "),
            (1, "ipv4hint=198.18.0.53"),
        ] {
            assert!(text[i].contains(part), "{part} not in {}", text[i]);
        }
        assert!(
            !text[1].contains("ipv6hint"),
            "[::] is no hint: {}",
            text[1]
        );
    }
}
