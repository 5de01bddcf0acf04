//! The sections of the configuration the listeners own: `listen`, `server:` and `access:`.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use ipnet::IpNet;
use serde::Deserialize;

use crate::section::Check;

/// `server:` as YAML spells it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    pub udp_workers: usize,
    pub edns_udp_payload: u16,
    pub tcp_timeout_secs: u64,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            udp_workers: 0,
            edns_udp_payload: 1232,
            tcp_timeout_secs: 10,
        }
    }
}

/// Listener settings, validated.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Addresses served on both UDP and TCP.
    pub listen: Vec<SocketAddr>,
    /// UDP worker threads per listen address, sharing its socket; 0 = one per CPU.
    pub udp_workers: usize,
    /// Largest UDP answer we send (RFC 9715 / DNS flag day 2020: 1232).
    pub edns_udp_payload: u16,
    /// A TCP connection with no query for this long is closed.
    pub tcp_timeout: Duration,
}

impl RawServer {
    /// Validates `server:` together with the top-level `listen` (checked by the caller under
    /// its own key).
    pub fn validate(self, listen: Vec<SocketAddr>, check: &mut Check) -> ServerConfig {
        if self.edns_udp_payload < 512 {
            check.problem("edns_udp_payload", "must be at least 512");
        }
        ServerConfig {
            listen,
            udp_workers: self.udp_workers,
            edns_udp_payload: self.edns_udp_payload,
            tcp_timeout: Duration::from_secs(self.tcp_timeout_secs),
        }
    }
}

impl ServerConfig {
    /// UDP worker threads per address: as configured, or one per CPU.
    pub fn udp_threads(&self) -> usize {
        match self.udp_workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

/// `access:` as YAML spells it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAccess {
    pub allow: Vec<IpNet>,
}

impl Default for RawAccess {
    fn default() -> Self {
        // Loopback and private ranges only: never an open resolver by default.
        let allow = [
            "127.0.0.0/8",
            "::1/128",
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "100.64.0.0/10",
            "169.254.0.0/16",
            "fc00::/7",
            "fe80::/10",
        ];
        RawAccess {
            allow: allow.iter().map(|s| s.parse().expect("literal")).collect(),
        }
    }
}

/// Who may query.
#[derive(Debug, Clone)]
pub struct AccessConfig {
    pub allow: Vec<IpNet>,
}

impl RawAccess {
    /// Validates the section.
    pub fn validate(self, _check: &mut Check) -> AccessConfig {
        AccessConfig { allow: self.allow }
    }
}

impl AccessConfig {
    /// Whether `ip` may query. IPv4-mapped IPv6 clients are checked as IPv4.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.allow.iter().any(|net| net.contains(&ip))
    }
}
