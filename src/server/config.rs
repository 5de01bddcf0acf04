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
    pub tcp_max_connections: usize,
    pub tcp_max_per_client: usize,
    pub user: Option<String>,
    pub group: Option<String>,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            udp_workers: 0,
            edns_udp_payload: 1232,
            tcp_timeout_secs: 10,
            tcp_max_connections: 4096,
            tcp_max_per_client: 64,
            user: None,
            group: None,
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
    /// TCP connections open at once, over all clients; beyond it new ones are closed at once.
    pub tcp_max_connections: usize,
    /// TCP connections open at once from one client (an IPv4 address, an IPv6 /64).
    pub tcp_max_per_client: usize,
    /// Started as root: the user (and group) to switch to once every socket is bound.
    pub user: Option<String>,
    pub group: Option<String>,
}

impl RawServer {
    /// Validates `server:` together with the top-level `listen` (checked by the caller under
    /// its own key).
    pub fn validate(self, listen: Vec<SocketAddr>, check: &mut Check) -> ServerConfig {
        if self.edns_udp_payload < 512 {
            check.problem("edns_udp_payload", "must be at least 512");
        }
        check.range("udp_workers", self.udp_workers, 0, 256);
        check.range("tcp_timeout_secs", self.tcp_timeout_secs, 1, 3600);
        check.range(
            "tcp_max_connections",
            self.tcp_max_connections,
            1,
            1_000_000,
        );
        // Not above the total (when the total itself makes sense).
        let most = if self.tcp_max_connections == 0 {
            usize::MAX
        } else {
            self.tcp_max_connections
        };
        check.range("tcp_max_per_client", self.tcp_max_per_client, 1, most);
        if self.group.is_some() && self.user.is_none() {
            check.problem(
                "group",
                "needs user (the group is switched to with the user)",
            );
        }
        ServerConfig {
            listen,
            udp_workers: self.udp_workers,
            edns_udp_payload: self.edns_udp_payload,
            tcp_timeout: Duration::from_secs(self.tcp_timeout_secs),
            tcp_max_connections: self.tcp_max_connections,
            tcp_max_per_client: self.tcp_max_per_client,
            user: self.user,
            group: self.group,
        }
    }
}

impl Default for ServerConfig {
    /// The defaults of `server:`, with no listen address.
    fn default() -> Self {
        RawServer::default().validate(Vec::new(), &mut Check::new(std::path::Path::new(".")))
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
    /// Allow `0.0.0.0/0` or `::/0` in `allow`: serve the whole Internet, knowingly.
    pub open_resolver: bool,
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
            open_resolver: false,
        }
    }
}

/// Who may query.
#[derive(Debug, Clone)]
pub struct AccessConfig {
    pub allow: Vec<IpNet>,
}

impl RawAccess {
    /// Validates the section. An ACL that lets everyone in makes an open resolver, which DDoS
    /// reflection abuses within hours; it takes `open_resolver: true` to say so on purpose.
    pub fn validate(self, check: &mut Check) -> AccessConfig {
        if !self.open_resolver
            && let Some(all) = self.allow.iter().find(|net| net.prefix_len() == 0)
        {
            check.problem(
                "allow",
                format!(
                    "{all} lets every address on the Internet query: an open resolver, abused for \
                     DDoS reflection; list your customers' prefixes, or set \
                     access.open_resolver: true if this is really meant"
                ),
            );
        }
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
