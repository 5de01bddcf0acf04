//! The PROXY protocol, version 2 (haproxy's `proxy-protocol.txt`): who the client really is
//! when a load balancer (dnsdist with `useProxyProtocol`) sits in front.
//!
//! From a source in `proxy_protocol.from` every UDP datagram, and every TCP, DoT and DoH
//! connection (before its TLS handshake), must start with a v2 header; the address in it is the
//! client the access list, events, metrics and per-client caps see, while answers still go back
//! to the peer. A `LOCAL` header (dnsdist's health checks) and a `PROXY` header of family
//! `UNSPEC` stand for the peer itself. From any other source a header is refused, as PowerDNS
//! does with `proxy-protocol-from`: a forged header cannot pick its own address. Whatever is
//! dropped is counted by reason (`fraudwall_proxy_protocol_errors_total`), never a panic.
//! The text header of version 1 is not accepted: dnsdist only sends version 2.
//!
//! Parsing is the `ppp` crate's: it reads the header in place (no allocation, so the UDP batch
//! path stays cheap) and says precisely what is wrong with a bad one. With `from` empty nothing
//! here runs: no header is looked for at all.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use ipnet::IpNet;
use ppp::v2::{Addresses, Command, Header, ParseError};
use serde::Deserialize;
use tokio::{io::AsyncReadExt, net::TcpStream};

use crate::{dns::Transport, section::Check};

/// The 12 bytes every v2 header starts with.
pub const SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// Fixed part of a header: the signature, version and command, family, length.
const FIXED: usize = 16;
/// Largest variable part (addresses and TLVs) accepted; dnsdist's default cap for the headers
/// it accepts is the same 512 bytes. dnsdist itself sends 12 or 36 bytes and no TLVs.
pub const MAX_PAYLOAD: usize = 512;

/// `proxy_protocol:` as YAML spells it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawProxyProtocol {
    /// Sources that must send a header (dnsdist hosts); everyone else must not.
    pub from: Vec<String>,
}

/// Who must send a PROXY header; empty: the protocol is off.
#[derive(Debug, Clone, Default)]
pub struct ProxyFrom {
    nets: Vec<IpNet>,
}

impl RawProxyProtocol {
    /// Validates the section: every entry a prefix (or a bare address).
    pub fn validate(self, check: &mut Check) -> ProxyFrom {
        let mut nets = Vec::with_capacity(self.from.len());
        for (i, s) in self.from.iter().enumerate() {
            let parsed = s
                .parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from));
            match parsed {
                Ok(net) if net.prefix_len() == 0 => check.problem(
                    "from",
                    format!(
                        "{s} (entry {i}) trusts every address on the Internet to say who the \
                         client is; list the addresses of your dnsdist hosts"
                    ),
                ),
                Ok(net) => nets.push(net.trunc()),
                Err(_) => check.problem(
                    "from",
                    format!(
                        "{s:?} (entry {i}) is not an address prefix such as 10.53.0.0/24 or \
                         2001:db8::/64"
                    ),
                ),
            }
        }
        ProxyFrom { nets }
    }
}

impl ProxyFrom {
    /// Trusts exactly `nets` (tests, benches).
    pub fn new(nets: Vec<IpNet>) -> ProxyFrom {
        ProxyFrom { nets }
    }

    /// Whether any source is trusted (the protocol is on).
    #[inline]
    pub fn is_on(&self) -> bool {
        !self.nets.is_empty()
    }

    /// Whether `ip` must send a header. IPv4-mapped IPv6 peers are checked as IPv4.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// One UDP datagram from `peer`: the client it speaks for and the DNS message in it, or
    /// `None` (counted) when it must be dropped. Off, this is `(peer, packet)`.
    #[inline]
    pub fn datagram<'a>(
        &self,
        peer: SocketAddr,
        packet: &'a [u8],
    ) -> Option<(SocketAddr, &'a [u8])> {
        if !self.is_on() {
            return Some((peer, packet));
        }
        self.datagram_slow(peer, packet)
    }

    fn datagram_slow<'a>(
        &self,
        peer: SocketAddr,
        packet: &'a [u8],
    ) -> Option<(SocketAddr, &'a [u8])> {
        if !self.trusts(peer.ip()) {
            if packet.starts_with(SIGNATURE) {
                refuse(Transport::Udp, Reason::Untrusted, peer);
                return None;
            }
            return Some((peer, packet));
        }
        match parse(packet, peer) {
            Ok((client, len)) => Some((client, &packet[len..])),
            Err(reason) => {
                refuse(Transport::Udp, reason, peer);
                None
            }
        }
    }

    /// The start of a TCP, DoT or DoH connection from `peer`, before anything else is read.
    /// From a trusted peer: reads its header and returns the client it names. From another:
    /// looks (without reading) whether it starts with a header, and refuses it if so. `None`
    /// (counted): close the connection. `wait` bounds how long the header may take.
    pub async fn stream(
        &self,
        stream: &mut TcpStream,
        peer: SocketAddr,
        transport: Transport,
        wait: Duration,
    ) -> Option<SocketAddr> {
        if !self.is_on() {
            return Some(peer);
        }
        let trusted = self.trusts(peer.ip());
        let read = async {
            if trusted {
                read_header(stream, peer).await
            } else {
                match starts_with_header(stream).await {
                    Ok(false) => Ok(peer),
                    Ok(true) => Err(Reason::Untrusted),
                    Err(reason) => Err(reason),
                }
            }
        };
        let reason = match tokio::time::timeout(wait, read).await {
            Ok(Ok(client)) => return Some(client),
            Ok(Err(reason)) => reason,
            Err(_) if trusted => Reason::Timeout,
            // A silent client that sent no header: the TLS handshake or the idle timeout deals
            // with it as with any other.
            Err(_) => return Some(peer),
        };
        refuse(transport, reason, peer);
        None
    }
}

/// Why a datagram or a connection was dropped; the `reason` label of the metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No header from a source that must send one.
    Missing,
    /// A header from a source not in `proxy_protocol.from`.
    Untrusted,
    /// Shorter than its own length says (or than a header can be).
    Truncated,
    /// A variable part over [`MAX_PAYLOAD`] bytes.
    Oversized,
    /// A version, command, family or protocol the specification does not define, an address
    /// block too short for its family, or a UNIX socket address.
    Invalid,
    /// A connection that did not send its header in time.
    Timeout,
}

impl Reason {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Missing => "missing",
            Reason::Untrusted => "untrusted",
            Reason::Truncated => "truncated",
            Reason::Oversized => "oversized",
            Reason::Invalid => "invalid",
            Reason::Timeout => "timeout",
        }
    }
}

fn refuse(transport: Transport, reason: Reason, peer: SocketAddr) {
    tracing::debug!(
        peer = %peer,
        transport = transport.as_str(),
        reason = reason.as_str(),
        "PROXY header refused"
    );
    crate::metrics::proxy_protocol_error(transport.as_str(), reason.as_str());
}

/// Parses the header at the start of `buf`, sent by `peer`: the client it names and its
/// length in bytes.
pub fn parse(buf: &[u8], peer: SocketAddr) -> Result<(SocketAddr, usize), Reason> {
    if !buf.starts_with(SIGNATURE) {
        return Err(if SIGNATURE.starts_with(buf) {
            Reason::Truncated
        } else {
            Reason::Missing
        });
    }
    // The length is checked before ppp looks at it, so that an oversized header is told apart
    // from a truncated one (ppp would call both partial).
    if buf.len() >= FIXED && usize::from(u16::from_be_bytes([buf[14], buf[15]])) > MAX_PAYLOAD {
        return Err(Reason::Oversized);
    }
    let header = Header::try_from(buf).map_err(|e| match e {
        ParseError::Incomplete(_) | ParseError::Partial(..) => Reason::Truncated,
        _ => Reason::Invalid,
    })?;
    let len = header.header.len();
    if header.command == Command::Local {
        return Ok((peer, len));
    }
    let client = match header.addresses {
        Addresses::IPv4(a) => SocketAddr::from((a.source_address, a.source_port)),
        Addresses::IPv6(a) => SocketAddr::from((a.source_address, a.source_port)),
        // "The receiver must use the real connection endpoints" (§2.2).
        Addresses::Unspecified => peer,
        Addresses::Unix(_) => return Err(Reason::Invalid),
    };
    Ok((client, len))
}

/// Reads exactly one header off `stream` (nothing after it) and parses it.
async fn read_header(stream: &mut TcpStream, peer: SocketAddr) -> Result<SocketAddr, Reason> {
    let mut buf = [0u8; FIXED + MAX_PAYLOAD];
    let mut got = 0;
    // The signature first, a byte at a time only as far as it matches: a client that sent no
    // header is told from one that sent part of one.
    while got < FIXED {
        let n = stream
            .read(&mut buf[got..FIXED])
            .await
            .map_err(|_| Reason::Truncated)?;
        if n == 0 {
            // What came so far matched the signature (a mismatch returns below).
            return Err(if got == 0 {
                Reason::Missing
            } else {
                Reason::Truncated
            });
        }
        got += n;
        let sig = got.min(SIGNATURE.len());
        if buf[..sig] != SIGNATURE[..sig] {
            return Err(Reason::Missing);
        }
    }
    let payload = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if payload > MAX_PAYLOAD {
        return Err(Reason::Oversized);
    }
    stream
        .read_exact(&mut buf[FIXED..FIXED + payload])
        .await
        .map_err(|_| Reason::Truncated)?;
    parse(&buf[..FIXED + payload], peer).map(|(client, _)| client)
}

/// Whether the connection starts with the signature, looked at without reading it.
async fn starts_with_header(stream: &TcpStream) -> Result<bool, Reason> {
    let mut buf = [0u8; SIGNATURE.len()];
    loop {
        let n = stream.peek(&mut buf).await.map_err(|_| Reason::Truncated)?;
        if n == 0 || buf[..n] != SIGNATURE[..n] {
            return Ok(false);
        }
        if n == SIGNATURE.len() {
            return Ok(true);
        }
        // A prefix of the signature so far: peeking again at once would return the same bytes.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEER: &str = "127.0.0.1:40000";

    fn header(ver_cmd: u8, fam: u8, addrs: &[u8], tlv: &[u8]) -> Vec<u8> {
        let mut h = SIGNATURE.to_vec();
        h.push(ver_cmd);
        h.push(fam);
        h.extend_from_slice(&((addrs.len() + tlv.len()) as u16).to_be_bytes());
        h.extend_from_slice(addrs);
        h.extend_from_slice(tlv);
        h
    }

    fn v4() -> Vec<u8> {
        let mut a = vec![198, 18, 0, 7, 127, 0, 0, 1];
        a.extend_from_slice(&5555u16.to_be_bytes());
        a.extend_from_slice(&53u16.to_be_bytes());
        a
    }

    #[test]
    fn parses_what_dnsdist_sends() {
        let peer: SocketAddr = PEER.parse().unwrap();
        let mut p = header(0x21, 0x12, &v4(), &[]);
        p.extend_from_slice(b"dns message");
        let (client, len) = parse(&p, peer).unwrap();
        assert_eq!(client, "198.18.0.7:5555".parse().unwrap());
        assert_eq!(&p[len..], b"dns message");

        let mut a6 = Vec::new();
        a6.extend_from_slice(
            &"2001:db8::7"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
        );
        a6.extend_from_slice(&[0; 16]);
        a6.extend_from_slice(&[0x15, 0xb3, 0, 53]);
        let (client, _) = parse(&header(0x21, 0x21, &a6, &[]), peer).unwrap();
        assert_eq!(client, "[2001:db8::7]:5555".parse().unwrap());

        // LOCAL (health checks) and UNSPEC: the peer itself.
        assert_eq!(
            parse(&header(0x20, 0x00, &[], &[]), peer).unwrap(),
            (peer, 16)
        );
        assert_eq!(parse(&header(0x21, 0x00, &[], &[]), peer).unwrap().0, peer);
        // TLVs are skipped.
        let (client, len) = parse(&header(0x21, 0x12, &v4(), &[0x04, 0, 1, 9]), peer).unwrap();
        assert_eq!((client.port(), len), (5555, 32));
    }

    #[test]
    fn bad_headers_have_reasons() {
        let peer: SocketAddr = PEER.parse().unwrap();
        let good = header(0x21, 0x12, &v4(), &[]);
        let cases: &[(&[u8], Reason)] = &[
            (b"\x12\x34\x01\x00\x00\x01", Reason::Missing),
            (b"", Reason::Truncated),
            (&good[..5], Reason::Truncated),
            (&good[..15], Reason::Truncated),
            (&good[..20], Reason::Truncated),
            (&header(0x11, 0x12, &v4(), &[]), Reason::Invalid),
            (&header(0x23, 0x12, &v4(), &[]), Reason::Invalid),
            (&header(0x21, 0x42, &v4(), &[]), Reason::Invalid),
            (&header(0x21, 0x13, &v4(), &[]), Reason::Invalid),
            (&header(0x21, 0x12, &v4()[..6], &[]), Reason::Invalid),
            (&header(0x21, 0x21, &v4(), &[]), Reason::Invalid),
            (&header(0x21, 0x31, &[0; 216], &[]), Reason::Invalid),
            (&header(0x21, 0x12, &v4(), &[0; 501]), Reason::Oversized),
        ];
        for (bytes, want) in cases {
            assert_eq!(parse(bytes, peer), Err(*want), "{bytes:x?}");
        }
        // Exactly the cap is fine.
        assert!(parse(&header(0x21, 0x12, &v4(), &[0; 500]), peer).is_ok());
    }

    #[test]
    fn from_is_validated() {
        let raw = RawProxyProtocol {
            from: vec![
                "10.53.0.0/24".into(),
                "::1".into(),
                "nope".into(),
                "0.0.0.0/0".into(),
            ],
        };
        let mut c = Check::new(std::path::Path::new("."));
        let from = c.section("proxy_protocol", |c| raw.validate(c));
        let problems = c.into_problems();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems.iter().all(|p| p.key == "proxy_protocol.from"));
        assert!(from.trusts("10.53.0.9".parse().unwrap()));
        assert!(from.trusts("::ffff:10.53.0.9".parse().unwrap()));
        assert!(from.trusts("::1".parse().unwrap()));
        assert!(!from.trusts("10.53.1.9".parse().unwrap()));
        assert!(!ProxyFrom::default().is_on());
    }

    #[test]
    fn untrusted_datagrams_with_a_header_are_dropped() {
        let from = ProxyFrom::new(vec!["10.53.0.0/24".parse().unwrap()]);
        let me: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut p = header(0x21, 0x12, &v4(), &[]);
        p.extend_from_slice(b"q");
        assert_eq!(from.datagram(me, &p), None);
        assert_eq!(from.datagram(me, b"query"), Some((me, &b"query"[..])));
        let dnsdist: SocketAddr = "10.53.0.2:9".parse().unwrap();
        assert_eq!(from.datagram(dnsdist, b"query"), None);
        assert_eq!(
            from.datagram(dnsdist, &p),
            Some(("198.18.0.7:5555".parse().unwrap(), &b"q"[..]))
        );
    }
}
