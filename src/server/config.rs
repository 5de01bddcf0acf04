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
    /// `proxy_protocol.from`: the peers that speak for their clients ([`super::proxy`]).
    pub proxy: super::proxy::ProxyFrom,
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
            proxy: Default::default(),
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

/// `tls:` as YAML spells it: the certificate DoT and DoH present.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// PEM chain, leaf first.
    pub cert: std::path::PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: std::path::PathBuf,
    /// How often the two files are checked for a new certificate, in seconds (SIGHUP checks at
    /// once).
    #[serde(default = "default_reload_secs")]
    pub reload_secs: u64,
    /// Seconds a client has to finish its TLS handshake.
    #[serde(default = "default_handshake_secs")]
    pub handshake_timeout_secs: u64,
}

fn default_reload_secs() -> u64 {
    10
}

fn default_handshake_secs() -> u64 {
    5
}

/// `dot:` as YAML spells it (RFC 7858, DNS over TLS).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDot {
    pub listen: Vec<SocketAddr>,
    pub idle_timeout_secs: u64,
}

impl Default for RawDot {
    fn default() -> Self {
        RawDot {
            listen: Vec::new(),
            idle_timeout_secs: 30,
        }
    }
}

/// `doh:` as YAML spells it (RFC 8484, DNS over HTTPS).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDoh {
    pub listen: Vec<SocketAddr>,
    pub path: String,
    pub idle_timeout_secs: u64,
    pub max_streams: u32,
}

impl Default for RawDoh {
    fn default() -> Self {
        RawDoh {
            listen: Vec::new(),
            path: "/dns-query".into(),
            idle_timeout_secs: 30,
            max_streams: 100,
        }
    }
}

/// `ddr:` as YAML spells it (RFC 9462, discovery of designated resolvers).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDdr {
    /// The name clients verify our certificate for: the SVCB TargetName.
    pub name: Option<String>,
}

/// The certificate files, validated.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
    pub reload: Duration,
    pub handshake_timeout: Duration,
}

/// DoT, DoH and DDR, validated.
#[derive(Debug, Clone)]
pub struct EncryptedConfig {
    /// Present when `dot` or `doh` listens (it is required then).
    pub tls: Option<TlsConfig>,
    pub dot_listen: Vec<SocketAddr>,
    pub dot_idle: Duration,
    pub doh_listen: Vec<SocketAddr>,
    /// The DoH path, `/dns-query` by default.
    pub doh_path: String,
    pub doh_idle: Duration,
    /// HTTP/2 streams one DoH connection may have open at once.
    pub doh_max_streams: u32,
    /// The SVCB TargetName of our DDR answer; `None`: DDR answers NODATA.
    pub ddr_name: Option<hickory_proto::rr::Name>,
}

impl Default for EncryptedConfig {
    /// No DoT, no DoH.
    fn default() -> Self {
        let mut check = Check::new(std::path::Path::new("."));
        validate_encrypted(
            None,
            RawDot::default(),
            RawDoh::default(),
            RawDdr::default(),
            &mut check,
        )
    }
}

/// Validates `tls:`, `dot:`, `doh:` and `ddr:` together: each listener needs the certificate,
/// and the certificate is loaded here, so `fraudwall config check` finds a bad one.
pub fn validate_encrypted(
    tls: Option<RawTls>,
    dot: RawDot,
    doh: RawDoh,
    ddr: RawDdr,
    check: &mut Check,
) -> EncryptedConfig {
    let mut loaded = None;
    let tls = tls.map(|t| {
        check.section("tls", |c| {
            let cert = c.file("cert", &t.cert);
            let key = c.file("key", &t.key);
            c.range("reload_secs", t.reload_secs, 1, 86_400);
            c.range("handshake_timeout_secs", t.handshake_timeout_secs, 1, 300);
            let cfg = TlsConfig {
                cert,
                key,
                reload: Duration::from_secs(t.reload_secs),
                handshake_timeout: Duration::from_secs(t.handshake_timeout_secs),
            };
            if c.is_clean() {
                match super::tls::load(&cfg) {
                    Ok(k) => loaded = Some(k),
                    Err(e) => c.problem(if e.is_key() { "key" } else { "cert" }, e.to_string()),
                }
            }
            cfg
        })
    });
    let serving = !dot.listen.is_empty() || !doh.listen.is_empty();
    if serving && tls.is_none() {
        check.problem(
            "tls",
            "dot or doh listens: tls.cert and tls.key are needed (a PEM chain and its key)",
        );
    }
    check.section("dot", |c| {
        c.range("idle_timeout_secs", dot.idle_timeout_secs, 1, 3600)
    });
    check.section("doh", |c| {
        c.range("idle_timeout_secs", doh.idle_timeout_secs, 1, 3600);
        c.range("max_streams", doh.max_streams, 1, 10_000);
        if !doh.path.starts_with('/') || doh.path.contains(['?', '#', '{', ' ']) {
            c.problem(
                "path",
                format!(
                    "{:?}: must start with / and have no query, '#', '{{' or space",
                    doh.path
                ),
            );
        }
    });
    let ddr_name = check.section("ddr", |c| {
        let name = ddr.name.as_deref()?;
        match hickory_proto::rr::Name::from_ascii(name) {
            Ok(n) if n.num_labels() > 0 => {
                // Clients verify the certificate for this name: a name it does not cover
                // would advertise endpoints no client can use.
                if let Some(k) = &loaded
                    && !super::tls::covers(k, name)
                {
                    c.problem(
                        "name",
                        format!("{name} is not a name of the certificate in tls.cert"),
                    );
                }
                let mut n = n.to_lowercase();
                n.set_fqdn(true);
                Some(n)
            }
            _ => {
                c.problem("name", format!("{name:?} is not a domain name"));
                None
            }
        }
    });
    EncryptedConfig {
        tls,
        dot_listen: dot.listen,
        dot_idle: Duration::from_secs(dot.idle_timeout_secs),
        doh_listen: doh.listen,
        doh_path: doh.path,
        doh_idle: Duration::from_secs(doh.idle_timeout_secs),
        doh_max_streams: doh.max_streams,
        ddr_name,
    }
}
