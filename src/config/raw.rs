//! The YAML shape of the config, as serde sees it. Every key has a named default here and is
//! documented in `config/fraudwall.example.yaml`; unknown keys are rejected.

use std::{
    net::{Ipv4Addr, Ipv6Addr, SocketAddr},
    path::PathBuf,
};

use ipnet::IpNet;
use serde::Deserialize;

use crate::blocklist::{Action, Format};

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub listen: Vec<SocketAddr>,
    pub resolver: RawResolver,
    pub blocklists: RawBlocklists,
    pub sinkhole: RawSinkhole,
    pub access: RawAccess,
    pub server: RawServer,
    pub log: LogConfig,
    pub warning_page: crate::sinkhole::page::WarningPageConfig,
    pub events: crate::events::EventLogConfig,
    pub metrics: crate::metrics::MetricsConfig,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            listen: vec!["127.0.0.1:5353".parse().expect("literal")],
            resolver: RawResolver::default(),
            blocklists: RawBlocklists::default(),
            sinkhole: RawSinkhole::default(),
            access: RawAccess::default(),
            server: RawServer::default(),
            log: LogConfig::default(),
            warning_page: Default::default(),
            events: Default::default(),
            metrics: Default::default(),
        }
    }
}

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

/// `resolver:`.
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
            qname_minimisation: true,
            cache: RawCache::default(),
        }
    }
}

/// `resolver.cache:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawCache {
    pub max_mib: usize,
    pub min_ttl: u32,
    pub max_ttl: u32,
    pub max_negative_ttl: u32,
    pub serve_stale: bool,
    pub stale_ttl: u32,
    pub stale_answer_ttl: u32,
    pub prefetch: bool,
}

impl Default for RawCache {
    fn default() -> Self {
        RawCache {
            max_mib: 256,
            min_ttl: 0,
            max_ttl: 86_400,
            max_negative_ttl: 3_600,
            serve_stale: true,
            stale_ttl: 86_400,
            stale_answer_ttl: 30,
            prefetch: true,
        }
    }
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

/// `blocklists:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawBlocklists {
    pub dir: PathBuf,
    pub state_dir: Option<PathBuf>,
    pub lists: Vec<RawList>,
    pub doh_canary: bool,
    pub action: Action,
    pub ede: u16,
    /// How changes in `dir` are noticed.
    pub watch: WatchMode,
    /// Quiet time after the last change before a reload (and how long a file must be unchanged).
    pub debounce_ms: u64,
    /// Stat poll of `dir`: the backstop under `watch: notify`, the only source under `watch: poll`.
    pub poll_interval_ms: u64,
    /// Largest fraction of a list's entries one update may drop before it is refused.
    pub max_shrink: f64,
}

impl Default for RawBlocklists {
    fn default() -> Self {
        RawBlocklists {
            dir: "blocklists".into(),
            state_dir: None,
            lists: Vec::new(),
            doh_canary: true,
            action: Action::Sinkhole,
            ede: 15,
            watch: WatchMode::Notify,
            debounce_ms: 300,
            poll_interval_ms: 30_000,
            max_shrink: 0.5,
        }
    }
}

/// `blocklists.watch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum WatchMode {
    /// inotify (via `notify`) on the directory, with the stat poll as a backstop.
    #[default]
    Notify,
    /// Only the stat poll every `poll_interval_ms` (NFS and other file systems without inotify).
    Poll,
    /// No watching: lists reload on SIGHUP (and after a remote list is fetched) only.
    Off,
}

/// A duration as whole seconds (`300`) or with a unit (`90s`, `15m`, `1h`, `1d`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum RawDuration {
    Secs(u64),
    Text(String),
}

impl RawDuration {
    /// The duration, or why the text is not one.
    pub fn to_duration(&self) -> Result<std::time::Duration, String> {
        let secs = match self {
            RawDuration::Secs(s) => *s,
            RawDuration::Text(t) => {
                let t = t.trim();
                let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
                let (n, unit) = t.split_at(split);
                let n: u64 = n
                    .parse()
                    .map_err(|_| format!("{t:?} is not a duration like 300, 90s, 15m, 1h or 1d"))?;
                let mul = match unit.trim() {
                    "" | "s" => 1,
                    "m" => 60,
                    "h" => 3600,
                    "d" => 86_400,
                    u => return Err(format!("unknown unit {u:?} (use s, m, h or d)")),
                };
                n.saturating_mul(mul)
            }
        };
        Ok(std::time::Duration::from_secs(secs))
    }
}

/// One entry of `blocklists.lists`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawList {
    /// Relative to `blocklists.dir`.
    pub file: PathBuf,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub format: Option<Format>,
    #[serde(default)]
    pub kind: Kind,
    #[serde(default)]
    pub action: Option<Action>,
    #[serde(default)]
    pub r#match: Match,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub ede: Option<u16>,
    /// Download the list from here into `file` (http or https).
    #[serde(default)]
    pub url: Option<String>,
    /// How often `url` is checked (conditional requests); default 1h.
    #[serde(default)]
    pub interval: Option<RawDuration>,
}

/// `kind:` of a list.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    #[default]
    Block,
    Allow,
}

/// `match:` of a list.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Match {
    #[default]
    Subtree,
    Exact,
}

/// `sinkhole:`.
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

/// `access:`.
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

/// `server:`.
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

/// `log:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` filter, e.g. `info` or `fraudwall=debug,info`.
    pub level: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// `log.format`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}
