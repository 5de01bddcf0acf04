//! Resolution of cache misses: our own iterative resolver ([`recursor`]: from the root hints,
//! with DNSSEC validation, on hickory-proto's messages and signature checks), or hickory's stub
//! resolver against forwarders. Either way the outcome is a response-shaped [`Resolved`] under
//! one deadline, with CNAME loops caught.

pub mod anchor;
pub mod config;
pub mod recursor;

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::Path,
    sync::Arc,
    time::Instant,
};

use hickory_proto::{
    dnssec::rdata::DNSSECRData,
    op::{Message, MessageType, OpCode, Query, ResponseCode},
    rr::{Name, RData, RecordSet, RecordType},
    serialize::txt::Parser,
};
use hickory_resolver::{
    TokioResolver,
    config::{ConnectionConfig, NameServerConfig, ResolverConfig as HickoryResolverConfig},
    net::{DnsError, NetError, runtime::TokioRuntimeProvider},
};
use tracing::{debug, info, warn};

pub use config::{DnssecMode, ForwardProtocol, Forwarder, Mode, ResolverConfig};

/// The IANA root servers (named.root), for real deployments only: tests use loopback hints.
pub const IANA_ROOT_HINTS: [IpAddr; 26] = [
    IpAddr::V4(Ipv4Addr::new(198, 41, 0, 4)),
    IpAddr::V4(Ipv4Addr::new(170, 247, 170, 2)),
    IpAddr::V4(Ipv4Addr::new(192, 33, 4, 12)),
    IpAddr::V4(Ipv4Addr::new(199, 7, 91, 13)),
    IpAddr::V4(Ipv4Addr::new(192, 203, 230, 10)),
    IpAddr::V4(Ipv4Addr::new(192, 5, 5, 241)),
    IpAddr::V4(Ipv4Addr::new(192, 112, 36, 4)),
    IpAddr::V4(Ipv4Addr::new(198, 97, 190, 53)),
    IpAddr::V4(Ipv4Addr::new(192, 36, 148, 17)),
    IpAddr::V4(Ipv4Addr::new(192, 58, 128, 30)),
    IpAddr::V4(Ipv4Addr::new(193, 0, 14, 129)),
    IpAddr::V4(Ipv4Addr::new(199, 7, 83, 42)),
    IpAddr::V4(Ipv4Addr::new(202, 12, 27, 33)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0x503, 0xba3e, 0, 0, 0, 0x2, 0x30)),
    IpAddr::V6(Ipv6Addr::new(0x2801, 0x1b8, 0x10, 0, 0, 0, 0, 0xb)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0x500, 0x200, 0, 0, 0, 0, 0xb)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0x500, 0x2, 0, 0, 0, 0, 0xc)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0x500, 0x2d, 0, 0, 0, 0, 0xd)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0x500, 0xa8, 0, 0, 0, 0, 0xe)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0x500, 0x2f, 0, 0, 0, 0, 0xf)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0x500, 0x12, 0, 0, 0, 0, 0xd0d)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0x500, 0x1, 0, 0, 0, 0, 0x53)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0x7fe, 0, 0, 0, 0, 0, 0x53)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0x503, 0xc27, 0, 0, 0, 0x2, 0x30)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0x7fd, 0, 0, 0, 0, 0, 1)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0x500, 0x9f, 0, 0, 0, 0, 0x42)),
];

/// Most CNAME/DNAME links we follow in one answer, as Unbound's `max-restart` (11).
const MAX_CHAIN: usize = 11;

/// Errors building the resolver.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{path}: cannot read root hints: {reason}")]
    Hints { path: String, reason: String },
    #[error("{path}: no addresses in root hints")]
    NoHints { path: String },
    #[error("cannot build the forwarding resolver: {0}")]
    Forwarder(String),
    #[error(transparent)]
    Anchor(#[from] anchor::AnchorError),
}

/// The question being resolved and the client's DNSSEC wishes.
#[derive(Clone, Debug)]
pub struct Question {
    pub name: Name,
    pub qtype: RecordType,
    /// Client set DO: keep DNSSEC records in the answer.
    pub dnssec_ok: bool,
    /// Client set CD: return data even if validation fails.
    pub checking_disabled: bool,
}

impl Question {
    /// The question for a wire-form query name (any case: it is asked in lowercase). `None`
    /// when the name does not decode.
    pub fn from_wire(
        qname: &[u8],
        qtype: RecordType,
        dnssec_ok: bool,
        checking_disabled: bool,
    ) -> Option<Question> {
        use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
        let mut lower = [0u8; crate::dns::wire::MAX_NAME];
        let lower = lower.get_mut(..qname.len())?;
        for (l, c) in lower.iter_mut().zip(qname) {
            *l = c.to_ascii_lowercase();
        }
        let name = Name::read(&mut BinDecoder::new(lower)).ok()?;
        Some(Question {
            name,
            qtype,
            dnssec_ok,
            checking_disabled,
        })
    }
}

/// What the engine asks on a cache miss. [`Resolver`] is the real one; tests plug in a stub.
#[async_trait::async_trait]
pub trait Resolve: Send + Sync + 'static {
    /// Resolves one question. Never fails: a failure is a SERVFAIL-shaped [`Resolved`].
    async fn resolve(&self, q: &Question) -> Resolved;
}

/// DNSSEC status of a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    Secure,
    Insecure,
    Bogus,
}

/// A response-shaped result: `metadata.response_code`, the sections, and its security.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub message: Message,
    pub security: Security,
    /// Extended DNS Error to attach (RFC 8914), e.g. 6 DNSSEC Bogus.
    pub ede: Option<u16>,
}

// One per process: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
enum Upstream {
    Recursive(Arc<recursor::Recursor>),
    Forward(TokioResolver),
}

/// Resolves cache misses.
pub struct Resolver {
    upstream: Upstream,
    timeout: std::time::Duration,
}

impl Resolver {
    /// Builds the resolver from config; the recursor's caches get `cache_bytes`.
    pub async fn build(cfg: &ResolverConfig, cache_bytes: usize) -> Result<Resolver, ResolveError> {
        let upstream = match cfg.mode {
            Mode::Recursive => {
                let roots = match &cfg.root_hints {
                    Some(p) => read_hints(p)?,
                    None => IANA_ROOT_HINTS.to_vec(),
                };
                let anchors = match cfg.dnssec {
                    DnssecMode::Off => None,
                    DnssecMode::Validate => Some(match &cfg.trust_anchor {
                        Some(p) => {
                            let file = anchor::parse_file(p)?;
                            recursor::Anchors {
                                ds: file.ds,
                                keys: Arc::new(file.keys),
                            }
                        }
                        None => recursor::Anchors {
                            ds: Vec::new(),
                            keys: Arc::new(hickory_proto::dnssec::TrustAnchors::default()),
                        },
                    }),
                };
                info!(
                    roots = roots.len(),
                    validating = anchors.is_some(),
                    "recursive resolver ready"
                );
                Upstream::Recursive(recursor::Recursor::new(recursor::Options {
                    roots,
                    allow_private_servers: cfg.allow_private_servers,
                    qname_minimisation: cfg.qname_minimisation,
                    server_timeout: cfg.server_timeout,
                    anchors,
                    cache_bytes,
                    deadline: cfg.timeout,
                    max_per_zone: cfg.max_inflight_per_zone,
                }))
            }
            Mode::Forward => Upstream::Forward(build_forwarder(cfg)?),
        };
        Ok(Resolver {
            upstream,
            timeout: cfg.timeout,
        })
    }

    /// Whether answers can be Secure (AD) at all.
    pub fn is_validating(&self) -> bool {
        match &self.upstream {
            Upstream::Recursive(r) => r.is_validating(),
            Upstream::Forward(_) => false,
        }
    }

    /// Resolves one question within our deadline. Never fails: failures are SERVFAIL.
    pub async fn resolve(&self, q: &Question) -> Resolved {
        let started = Instant::now();
        let fut = self.resolve_inner(q);
        let mut resolved = match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r,
            Err(_) => {
                debug!(name = %q.name, qtype = %q.qtype, "resolution deadline passed");
                servfail(q)
            }
        };
        check_chain(q, &mut resolved);
        debug!(name = %q.name, qtype = %q.qtype, rcode = %resolved.message.metadata.response_code,
            elapsed_ms = started.elapsed().as_millis() as u64, "resolved");
        resolved
    }

    async fn resolve_inner(&self, q: &Question) -> Resolved {
        match &self.upstream {
            Upstream::Recursive(r) => r.resolve(q).await,
            Upstream::Forward(resolver) => {
                let r = resolver.lookup(q.name.clone(), q.qtype).await;
                from_forwarder(q, r)
            }
        }
    }
}

#[async_trait::async_trait]
impl Resolve for Resolver {
    async fn resolve(&self, q: &Question) -> Resolved {
        Resolver::resolve(self, q).await
    }
}

fn build_forwarder(cfg: &ResolverConfig) -> Result<TokioResolver, ResolveError> {
    let servers = cfg
        .forwarders
        .iter()
        .map(|f| {
            let mut conn = match f.protocol {
                ForwardProtocol::Udp => vec![ConnectionConfig::udp(), ConnectionConfig::tcp()],
                ForwardProtocol::Tcp => vec![ConnectionConfig::tcp()],
                ForwardProtocol::Tls => vec![ConnectionConfig::tls(Arc::from(
                    f.tls_name.clone().unwrap_or_default().as_str(),
                ))],
            };
            for c in &mut conn {
                c.port = f.address.port();
            }
            NameServerConfig::new(f.address.ip(), true, conn)
        })
        .collect();
    let mut builder = TokioResolver::builder_with_config(
        HickoryResolverConfig::from_name_servers(servers),
        TokioRuntimeProvider::default(),
    );
    if cfg
        .forwarders
        .iter()
        .any(|f| f.protocol == ForwardProtocol::Tls)
    {
        builder = builder.with_tls_config(tls_client_config()?);
    }
    let opts = builder.options_mut();
    opts.timeout = cfg.timeout / 2;
    opts.attempts = 2;
    opts.cache_size = 0; // our cache sits in front
    opts.edns0 = true;
    opts.preserve_intermediates = true;
    opts.ndots = 0;
    builder
        .build()
        .map_err(|e| ResolveError::Forwarder(e.to_string()))
}

/// Where the system's CA bundle is, as OpenSSL looks for it: `SSL_CERT_FILE`, else the
/// Debian/Ubuntu or the Red Hat path.
fn ca_bundle() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("SSL_CERT_FILE") {
        return Some(p.into());
    }
    [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
    ]
    .into_iter()
    .map(std::path::PathBuf::from)
    .find(|p| p.exists())
}

/// The TLS client of DoT forwarders: their certificates must chain to a CA of the system's
/// bundle ([`ca_bundle`]). hickory's own default trusts no CA at all unless it is built with
/// `webpki-roots` or the platform verifier, and we build it with neither: without this, every
/// DoT forwarder failed its handshake and every forwarded query was SERVFAIL.
fn tls_client_config() -> Result<rustls::ClientConfig, ResolveError> {
    use rustls_pki_types::{CertificateDer, pem::PemObject};
    let fail = |why: String| ResolveError::Forwarder(format!("DNS over TLS: {why}"));
    let path = ca_bundle().ok_or_else(|| {
        fail("no CA bundle (install ca-certificates, or set SSL_CERT_FILE)".into())
    })?;
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(&path)
        .map_err(|e| fail(format!("{}: {e}", path.display())))?;
    for cert in certs {
        let cert = cert.map_err(|e| fail(format!("{}: {e}", path.display())))?;
        // A bundle may hold certificates rustls cannot use; the others still count.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(fail(format!("{}: no CA certificates", path.display())));
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| fail(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

/// Reads root server addresses from a zone-format hints file.
pub fn read_hints(path: &Path) -> Result<Vec<IpAddr>, ResolveError> {
    let text = std::fs::read_to_string(path).map_err(|e| ResolveError::Hints {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let (_, zone) = Parser::new(text, Some(path.to_owned()), Some(Name::root()))
        .parse()
        .map_err(|e| ResolveError::Hints {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    let addrs: Vec<IpAddr> = zone
        .values()
        .flat_map(RecordSet::records_without_rrsigs)
        .filter_map(|r| r.data.ip_addr())
        .collect();
    if addrs.is_empty() {
        return Err(ResolveError::NoHints {
            path: path.display().to_string(),
        });
    }
    Ok(addrs)
}

/// A SERVFAIL result.
pub fn servfail(q: &Question) -> Resolved {
    let mut m = Message::new(0, MessageType::Response, OpCode::Query);
    m.metadata.response_code = ResponseCode::ServFail;
    m.add_query(Query::query(q.name.clone(), q.qtype));
    Resolved {
        message: m,
        security: Security::Insecure,
        ede: None,
    }
}

fn from_forwarder(q: &Question, r: Result<hickory_resolver::lookup::Lookup, NetError>) -> Resolved {
    let mut m = Message::new(0, MessageType::Response, OpCode::Query);
    m.add_query(Query::query(q.name.clone(), q.qtype));
    match r {
        Ok(lookup) => {
            let resp = lookup.message();
            m.metadata.response_code = resp.metadata.response_code;
            m.answers = resp.answers.clone();
            m.authorities = resp.authorities.clone();
        }
        Err(NetError::Dns(DnsError::NoRecordsFound(no))) => {
            m.metadata.response_code = if no.response_code == ResponseCode::NXDomain {
                ResponseCode::NXDomain
            } else {
                ResponseCode::NoError
            };
            if let Some(soa) = no.soa {
                let mut soa = soa.into_record_of_rdata();
                // RFC 2308 §5: negative TTL = min(SOA TTL, SOA MINIMUM).
                if let RData::SOA(s) = &soa.data {
                    soa.ttl = soa.ttl.min(s.minimum);
                }
                m.authorities.push(soa);
            }
        }
        Err(e) => {
            debug!(name = %q.name, qtype = %q.qtype, error = %e, "forwarding failed");
            m.metadata.response_code = ResponseCode::ServFail;
        }
    }
    finish(q, m, Security::Insecure)
}

/// Bogus without CD → SERVFAIL with no data and EDE 6 (a more specific code may replace it: see
/// `bogus.rs`); strip DNSSEC records unless DO; keep only what Unbound's `minimal-responses`
/// keeps (in the authority of positive answers only a wildcard's NSEC proof, no additional
/// section).
pub(crate) fn finish(q: &Question, mut m: Message, mut security: Security) -> Resolved {
    let mut ede = None;
    if security == Security::Bogus && !q.checking_disabled {
        m.metadata.response_code = ResponseCode::ServFail;
        m.answers.clear();
        m.authorities.clear();
        ede = Some(crate::dns::ede::DNSSEC_BOGUS);
    }
    if m.metadata.response_code == ResponseCode::ServFail && security != Security::Bogus {
        security = Security::Insecure;
    }
    let answered = m
        .answers
        .iter()
        .any(|r| r.record_type() == q.qtype || q.qtype == RecordType::ANY);
    if answered {
        // A wildcard answer's NSEC proof stays (for DO clients); NS records go. A chain that
        // ends without data keeps its SOA and proofs, like any negative answer.
        m.authorities.retain(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::RRSIG(s)) => {
                matches!(s.input().type_covered, RecordType::NSEC | RecordType::NSEC3)
            }
            _ => matches!(r.record_type(), RecordType::NSEC | RecordType::NSEC3),
        });
    }
    m.additionals.clear();
    let m = m.maybe_strip_dnssec_records(q.dnssec_ok);
    Resolved {
        message: m,
        security,
        ede,
    }
}

/// Unbound's answer to a CNAME chain that loops or runs longer than `max-restart` is SERVFAIL;
/// hickory returns NOERROR with the partial chain. Walk the chain from the query name.
fn check_chain(q: &Question, r: &mut Resolved) {
    let m = &r.message;
    if q.qtype == RecordType::CNAME || m.metadata.response_code == ResponseCode::ServFail {
        return;
    }
    let mut current = q.name.clone();
    let mut seen: Vec<Name> = vec![current.clone()];
    loop {
        let next = m.answers.iter().find_map(|rec| match &rec.data {
            RData::CNAME(c) if rec.name.eq_case(&current) || rec.name == current => {
                Some(c.0.clone())
            }
            _ => None,
        });
        let Some(next) = next else { break };
        if seen.contains(&next) || seen.len() > MAX_CHAIN {
            warn!(name = %q.name, "CNAME loop or overlong chain: SERVFAIL");
            *r = servfail(q);
            return;
        }
        seen.push(next.clone());
        current = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::{
        Record,
        rdata::{A, CNAME},
    };

    fn q(name: &str) -> Question {
        Question {
            name: Name::from_ascii(name).unwrap(),
            qtype: RecordType::A,
            dnssec_ok: false,
            checking_disabled: false,
        }
    }

    fn cname(from: &str, to: &str) -> Record {
        Record::from_rdata(
            Name::from_ascii(from).unwrap(),
            60,
            RData::CNAME(CNAME(Name::from_ascii(to).unwrap())),
        )
    }

    #[test]
    fn cname_loop_is_servfail() {
        let question = q("loop1.example.com.");
        let mut m = Message::new(0, MessageType::Response, OpCode::Query);
        m.answers = vec![
            cname("loop1.example.com.", "loop2.example.com."),
            cname("loop2.example.com.", "loop1.example.com."),
        ];
        let mut r = Resolved {
            message: m,
            security: Security::Insecure,
            ede: None,
        };
        check_chain(&question, &mut r);
        assert_eq!(r.message.metadata.response_code, ResponseCode::ServFail);
        assert!(r.message.answers.is_empty());
    }

    #[test]
    fn cname_chain_to_data_is_kept() {
        let question = q("a.example.com.");
        let mut m = Message::new(0, MessageType::Response, OpCode::Query);
        m.answers = vec![
            cname("a.example.com.", "b.example.net."),
            Record::from_rdata(
                Name::from_ascii("b.example.net.").unwrap(),
                60,
                RData::A(A::new(198, 18, 0, 1)),
            ),
        ];
        let mut r = Resolved {
            message: m,
            security: Security::Insecure,
            ede: None,
        };
        check_chain(&question, &mut r);
        assert_eq!(r.message.answers.len(), 2);
    }
}
