//! The ground floor: DNS messages as bytes. Everything above (transports, the engine, the
//! resolver) reads and writes DNS through here, so there is one codec, one answer cache and one
//! list of Extended DNS Error codes.
//!
//! - [`wire`]: parse a query (header, question, OPT) and write responses straight into a byte
//!   buffer, without allocation on the common path.
//! - [`cache`]: wire-format answers keyed by (name, type, class, DO, CD), TTLs counted down,
//!   serve-stale, prefetch hints.
//! - [`blocked`]: the answer a blocked name gets (sinkhole addresses, NXDOMAIN, NODATA, REFUSED)
//!   with its synthetic SOA and EDE.
//! - [`ede`]: the Extended DNS Error codes we send (RFC 8914) and the option writer.

pub mod blocked;
pub mod cache;
pub mod ede;
pub mod wire;

/// The transport a query arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Plain DNS over UDP.
    Udp,
    /// Plain DNS over TCP.
    Tcp,
    /// DNS over TLS (RFC 7858).
    Tls,
    /// DNS over HTTPS (RFC 8484).
    Https,
    /// DNS over QUIC (RFC 9250).
    Quic,
}

impl Transport {
    /// Every transport, in a fixed order (metrics index by it).
    pub const ALL: [Transport; 5] = [
        Transport::Udp,
        Transport::Tcp,
        Transport::Tls,
        Transport::Https,
        Transport::Quic,
    ];

    /// Label for logs, events and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Https => "https",
            Transport::Quic => "quic",
        }
    }

    /// Whether answers are limited by the client's EDNS payload size (datagram transports).
    pub fn is_datagram(self) -> bool {
        self == Transport::Udp
    }
}
