//! The `resolver:` section of the configuration: how misses are resolved.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use serde::Deserialize;

use crate::dns::cache::{CacheConfig, RawCache};
use crate::section::Check;

/// `resolver.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Iterative resolution from the root hints.
    #[default]
    Recursive,
    /// Send every miss to `resolver.forwarders`.
    Forward,
}

/// `resolver.dnssec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DnssecMode {
    /// Validate; bogus answers become SERVFAIL unless the client sets CD.
    #[default]
    Validate,
    /// No validation, no AD bit.
    Off,
}

/// One upstream of `mode: forward`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Forwarder {
    /// `ip:port`.
    pub address: SocketAddr,
    #[serde(default)]
    pub protocol: ForwardProtocol,
    /// Certificate name for `tls`.
    #[serde(default)]
    pub tls_name: Option<String>,
}

/// Transport to a forwarder.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum ForwardProtocol {
    /// UDP, retried over TCP when truncated.
    #[default]
    Udp,
    Tcp,
    /// DNS over TLS (RFC 7858).
    Tls,
}

/// `resolver:` as YAML spells it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawResolver {
    pub mode: Mode,
    pub root_hints: Option<PathBuf>,
    pub trust_anchor: Option<PathBuf>,
    pub dnssec: DnssecMode,
    pub allow_private_servers: bool,
    pub forwarders: Vec<Forwarder>,
    pub timeout_ms: u64,
    pub server_timeout_ms: u64,
    pub max_inflight: usize,
    pub max_inflight_per_client: usize,
    pub max_inflight_per_zone: usize,
    pub qname_minimisation: bool,
    pub cache: RawCache,
}

impl Default for RawResolver {
    fn default() -> Self {
        RawResolver {
            mode: Mode::Recursive,
            root_hints: None,
            trust_anchor: None,
            dnssec: DnssecMode::Validate,
            allow_private_servers: false,
            forwarders: Vec::new(),
            timeout_ms: 10_000,
            server_timeout_ms: 1_500,
            max_inflight: 10_000,
            max_inflight_per_client: 200,
            max_inflight_per_zone: 100,
            qname_minimisation: true,
            cache: RawCache::default(),
        }
    }
}

/// How names are resolved, validated.
#[derive(Debug, Clone)]
pub struct ResolverConfig {
    pub mode: Mode,
    /// Zone-format hints file; `None` = built-in IANA root hints.
    pub root_hints: Option<PathBuf>,
    /// File of DS or DNSKEY records; `None` = built-in root anchors.
    pub trust_anchor: Option<PathBuf>,
    pub dnssec: DnssecMode,
    pub allow_private_servers: bool,
    pub forwarders: Vec<Forwarder>,
    /// The deadline for one client query, everything it needs included.
    pub timeout: Duration,
    /// How long one query to one authoritative server may take before the next is tried.
    pub server_timeout: Duration,
    /// The answer cache in front of the resolver.
    pub cache: CacheConfig,
    /// Misses being resolved at once; beyond it, queries get SERVFAIL and are counted.
    pub max_inflight: usize,
    /// Misses of one client (IPv4 address, IPv6 /64) resolved at once; beyond it that client's
    /// misses get SERVFAIL, so that one infected router cannot take every slot.
    pub max_inflight_per_client: usize,
    /// Queries outstanding to the servers of one zone; beyond it lookups there fail at once, so
    /// that a flood against one slow or silent zone cannot take every slot.
    pub max_inflight_per_zone: usize,
    pub qname_minimisation: bool,
}

impl RawResolver {
    /// Validates the section. Hint and anchor files are read and parsed here, so that a file
    /// `serve` could not use fails `config check` too.
    pub fn validate(self, check: &mut Check) -> ResolverConfig {
        if self.mode == Mode::Forward && self.forwarders.is_empty() {
            check.problem(
                "forwarders",
                "mode is forward but no forwarders are configured",
            );
        }
        for f in &self.forwarders {
            if f.protocol == ForwardProtocol::Tls && f.tls_name.is_none() {
                check.problem(
                    "forwarders",
                    format!(
                        "{}: tls needs tls_name (the server's certificate name)",
                        f.address
                    ),
                );
            }
        }
        let root_hints = self.root_hints.as_ref().map(|p| check.path(p));
        if let Some(p) = &root_hints
            && self.mode == Mode::Recursive
            && let Err(e) = super::read_hints(p)
        {
            check.problem("root_hints", e.to_string());
        }
        let trust_anchor = self.trust_anchor.as_ref().map(|p| check.path(p));
        if let Some(p) = &trust_anchor
            && self.mode == Mode::Recursive
            && self.dnssec == DnssecMode::Validate
            && let Err(e) = super::anchor::parse_file(p)
        {
            check.problem("trust_anchor", e.to_string());
        }
        check.range("max_inflight", self.max_inflight, 1, 10_000_000);
        check.range(
            "max_inflight_per_zone",
            self.max_inflight_per_zone,
            1,
            1_000_000,
        );
        if self.timeout_ms < 100 {
            check.problem("timeout_ms", "must be at least 100");
        }
        if self.server_timeout_ms < 50 || self.server_timeout_ms > self.timeout_ms.max(50) {
            check.problem(
                "server_timeout_ms",
                "must be between 50 and resolver.timeout_ms",
            );
        }
        let cache = check.section("cache", |c| self.cache.validate(c));
        ResolverConfig {
            mode: self.mode,
            root_hints,
            trust_anchor,
            dnssec: self.dnssec,
            allow_private_servers: self.allow_private_servers,
            forwarders: self.forwarders,
            timeout: Duration::from_millis(self.timeout_ms),
            server_timeout: Duration::from_millis(self.server_timeout_ms),
            cache,
            max_inflight: self.max_inflight,
            max_inflight_per_client: self.max_inflight_per_client,
            max_inflight_per_zone: self.max_inflight_per_zone,
            qname_minimisation: self.qname_minimisation,
        }
    }
}
