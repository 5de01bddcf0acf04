//! Configuration: YAML text → [`raw`] serde structs → validated [`Config`].
//!
//! Parsing reports the first syntax or type error with its line and column (serde-saphyr);
//! validation then reports every remaining problem at once, each naming its key. Relative paths
//! are resolved against the directory of the config file. With no file at all,
//! [`Config::embedded_default`] is used.

pub mod raw;

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::{Path, PathBuf},
    time::Duration,
};

use ipnet::IpNet;

use crate::blocklist::{Action, ListKind, ListSpec, MatchMode};

pub use raw::{DnssecMode, Mode, WatchMode};

/// The config embedded in the binary: what `fraudwall serve` runs with no `--config`.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../config/default.yaml");

/// A problem found in a config file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read config: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// YAML syntax, an unknown key or a value of the wrong type (serde-saphyr gives line:column).
    #[error("{origin}: {message}")]
    Parse { origin: String, message: String },
    /// Semantic problems, all of them.
    #[error("{origin}: invalid configuration:\n{}", .problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        origin: String,
        problems: Vec<Problem>,
    },
}

/// One semantic problem: the dotted key and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}: {}", self.key, self.message),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

/// Validated configuration. Every path is absolute or relative to the working directory.
#[derive(Debug, Clone)]
pub struct Config {
    /// Addresses served on both UDP and TCP.
    pub listen: Vec<SocketAddr>,
    pub resolver: ResolverConfig,
    pub blocklists: BlocklistsConfig,
    pub sinkhole: SinkholeConfig,
    pub access: AccessConfig,
    pub server: ServerConfig,
    pub log: raw::LogConfig,
    pub warning_page: crate::sinkhole::page::WarningPageConfig,
    pub events: crate::events::EventLogConfig,
    pub metrics: crate::metrics::MetricsConfig,
}

/// How names are resolved.
#[derive(Debug, Clone)]
pub struct ResolverConfig {
    pub mode: Mode,
    /// Zone-format hints file; `None` = built-in IANA root hints.
    pub root_hints: Option<PathBuf>,
    /// File of DS or DNSKEY records; `None` = built-in root anchors.
    pub trust_anchor: Option<PathBuf>,
    pub dnssec: DnssecMode,
    pub allow_private_servers: bool,
    pub forwarders: Vec<raw::Forwarder>,
    /// Our own deadline for one client query (hickory's recursor has a fixed 5 s per server).
    pub timeout: Duration,
    /// How long one query to one authoritative server may take before the next is tried.
    pub server_timeout: Duration,
    pub cache: CacheConfig,
    /// Misses being resolved at once; beyond it, queries get SERVFAIL and are counted.
    pub max_inflight: usize,
    pub qname_minimisation: bool,
}

/// Answer cache sizing and TTL policy.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    pub max_bytes: usize,
    pub min_ttl: u32,
    pub max_ttl: u32,
    pub max_negative_ttl: u32,
    pub serve_stale: bool,
    pub stale_ttl: u32,
    pub stale_answer_ttl: u32,
    pub prefetch: bool,
}

/// Where lists come from.
#[derive(Debug, Clone)]
pub struct BlocklistsConfig {
    pub dir: PathBuf,
    /// Where compiled `.fst` files are written.
    pub state_dir: PathBuf,
    /// Lists named in the config; files in `dir` not named here are discovered with defaults.
    pub lists: Vec<ListSpec>,
    /// Answer NXDOMAIN for `use-application-dns.net` (Firefox's DoH canary).
    pub doh_canary: bool,
    /// Defaults for discovered lists.
    pub default_action: Action,
    pub default_ede: u16,
    /// How changes in `dir` are noticed.
    pub watch: WatchMode,
    /// Quiet time before a reload; a file changed more recently than this is not read yet.
    pub debounce: Duration,
    /// Stat poll of `dir` (backstop for `notify`, the mechanism for `poll`).
    pub poll_interval: Duration,
    /// Largest fraction (0..=1) of a list's entries one update may drop; 1 disables the guard.
    pub max_shrink: f64,
    /// Lists downloaded from a URL into their file in `dir`.
    pub remotes: Vec<RemoteList>,
}

/// A list fetched over HTTP(S) into its file in `blocklists.dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteList {
    /// The list's name (as in its [`ListSpec`]).
    pub name: String,
    pub url: String,
    /// Where the download is written (atomically) for the watcher to pick up.
    pub path: PathBuf,
    /// Time between checks.
    pub interval: Duration,
}

/// What blocked names are answered with.
#[derive(Debug, Clone)]
pub struct SinkholeConfig {
    pub ipv4: Ipv4Addr,
    pub ipv6: Ipv6Addr,
    pub ttl: u32,
}

/// Who may query.
#[derive(Debug, Clone)]
pub struct AccessConfig {
    pub allow: Vec<IpNet>,
}

/// Listener tuning.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// UDP worker threads per listen address, sharing its socket; 0 = one per CPU.
    pub udp_workers: usize,
    /// Largest UDP answer we send (RFC 9715 / DNS flag day 2020: 1232).
    pub edns_udp_payload: u16,
    pub tcp_timeout: Duration,
}

impl Config {
    /// The embedded default configuration, resolved against the working directory.
    pub fn embedded_default() -> Result<Config, ConfigError> {
        Config::from_str(EMBEDDED_DEFAULT, "<embedded default>", Path::new("."))
    }

    /// Reads and validates a config file; relative paths resolve against its directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let base = if base.as_os_str().is_empty() {
            Path::new(".")
        } else {
            base
        };
        Config::from_str(&text, &path.display().to_string(), base)
    }

    /// Parses and validates config text. `origin` names the text in errors.
    pub fn from_str(text: &str, origin: &str, base: &Path) -> Result<Config, ConfigError> {
        let raw: raw::RawConfig = if text.trim().is_empty() {
            raw::RawConfig::default()
        } else {
            serde_saphyr::from_str(text).map_err(|e| ConfigError::Parse {
                origin: origin.to_owned(),
                message: first_line(&e.to_string()),
            })?
        };
        validate(raw, text, origin, base)
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).to_owned()
}

/// Finds the line of a dotted key in the YAML text, for problems found after parsing.
/// Good enough for our two-level keys: it looks for each path segment in order.
fn line_of(text: &str, key: &str) -> Option<usize> {
    let mut from = 0;
    let lines: Vec<&str> = text.lines().collect();
    let mut found = None;
    for seg in key.split('.') {
        let seg = seg.split('[').next().unwrap_or(seg);
        let pat = format!("{seg}:");
        let idx = (from..lines.len()).find(|&i| {
            let t = lines[i].trim_start().trim_start_matches("- ");
            t.starts_with(&pat)
        })?;
        found = Some(idx + 1);
        from = idx + 1;
    }
    found
}

fn resolve_path(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_owned()
    } else {
        base.join(p)
    }
}

fn validate(
    raw: raw::RawConfig,
    text: &str,
    origin: &str,
    base: &Path,
) -> Result<Config, ConfigError> {
    let mut problems = Vec::new();
    let mut problem = |key: &str, message: String| {
        problems.push(Problem {
            key: key.to_owned(),
            line: line_of(text, key),
            message,
        })
    };

    if raw.listen.is_empty() {
        problem("listen", "at least one address is needed".into());
    }
    let r = &raw.resolver;
    if r.mode == Mode::Forward && r.forwarders.is_empty() {
        problem(
            "resolver.forwarders",
            "mode is forward but no forwarders are configured".into(),
        );
    }
    for f in &r.forwarders {
        if f.protocol == raw::ForwardProtocol::Tls && f.tls_name.is_none() {
            problem(
                "resolver.forwarders",
                format!(
                    "{}: tls needs tls_name (the server's certificate name)",
                    f.address
                ),
            );
        }
    }
    let root_hints = r.root_hints.as_ref().map(|p| resolve_path(base, p));
    if let Some(p) = &root_hints
        && r.mode == Mode::Recursive
        && !p.is_file()
    {
        problem(
            "resolver.root_hints",
            format!("{}: no such file", p.display()),
        );
    }
    let trust_anchor = r.trust_anchor.as_ref().map(|p| resolve_path(base, p));
    if let Some(p) = &trust_anchor
        && r.dnssec == DnssecMode::Validate
        && !p.is_file()
    {
        problem(
            "resolver.trust_anchor",
            format!("{}: no such file", p.display()),
        );
    }
    if r.timeout_ms < 100 {
        problem("resolver.timeout_ms", "must be at least 100".into());
    }
    if r.server_timeout_ms < 50 || r.server_timeout_ms > r.timeout_ms.max(50) {
        problem(
            "resolver.server_timeout_ms",
            "must be between 50 and resolver.timeout_ms".into(),
        );
    }
    let c = &r.cache;
    if c.min_ttl > c.max_ttl {
        problem(
            "resolver.cache.min_ttl",
            format!("{} is above max_ttl {}", c.min_ttl, c.max_ttl),
        );
    }
    if raw.sinkhole.ttl == 0 {
        problem("sinkhole.ttl", "must be at least 1 second".into());
    }
    if raw.server.edns_udp_payload < 512 {
        problem("server.edns_udp_payload", "must be at least 512".into());
    }

    let dir = resolve_path(base, &raw.blocklists.dir);
    let state_dir = raw
        .blocklists
        .state_dir
        .as_ref()
        .map(|p| resolve_path(base, p))
        .unwrap_or_else(|| dir.join(".fraudwall"));
    let mut lists = Vec::new();
    let mut remotes = Vec::new();
    let b = &raw.blocklists;
    if b.debounce_ms < 50 || b.debounce_ms > 60_000 {
        problem(
            "blocklists.debounce_ms",
            "must be between 50 and 60000".into(),
        );
    }
    if b.poll_interval_ms < 100 {
        problem("blocklists.poll_interval_ms", "must be at least 100".into());
    }
    if !(0.0..=1.0).contains(&b.max_shrink) {
        problem(
            "blocklists.max_shrink",
            format!("{} is not a fraction between 0 and 1", b.max_shrink),
        );
    }
    for (i, l) in raw.blocklists.lists.iter().enumerate() {
        let key = format!("blocklists.lists[{i}]");
        let path = resolve_path(&dir, &l.file);
        if !crate::sinkhole::answer::EDE_CODES.contains(&l.ede.unwrap_or(raw.blocklists.ede)) {
            problem(
                &format!("{key}.ede"),
                "must be 15 (Blocked), 16 (Censored) or 17 (Filtered)".into(),
            );
        }
        let name = l.name.clone().unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| format!("list{i}"))
        });
        if lists.iter().any(|s: &ListSpec| s.name == name) {
            problem(&key, format!("list name {name:?} is used twice"));
        }
        lists.push(ListSpec {
            name,
            path,
            format: l.format,
            kind: match l.kind {
                raw::Kind::Block => ListKind::Block,
                raw::Kind::Allow => ListKind::Allow,
            },
            action: l.action.unwrap_or(raw.blocklists.action),
            match_mode: match l.r#match {
                raw::Match::Subtree => MatchMode::Subtree,
                raw::Match::Exact => MatchMode::Exact,
            },
            category: l.category.clone().unwrap_or_else(|| "fraud".into()),
            ede: l.ede.unwrap_or(raw.blocklists.ede),
        });
        if let Some(url) = &l.url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                problem(
                    &format!("{key}.url"),
                    format!("{url:?}: only http:// and https:// URLs are fetched"),
                );
            }
            let interval = match l.interval.as_ref().map(raw::RawDuration::to_duration) {
                None => Duration::from_secs(3600),
                Some(Ok(d)) if d.as_secs() >= 1 => d,
                Some(Ok(_)) => {
                    problem(
                        &format!("{key}.interval"),
                        "must be at least 1 second".into(),
                    );
                    Duration::from_secs(1)
                }
                Some(Err(e)) => {
                    problem(&format!("{key}.interval"), e);
                    Duration::from_secs(1)
                }
            };
            let spec = lists.last().expect("just pushed");
            remotes.push(RemoteList {
                name: spec.name.clone(),
                url: url.clone(),
                path: spec.path.clone(),
                interval,
            });
        } else if l.interval.is_some() {
            problem(
                &format!("{key}.interval"),
                "interval needs url (it says how often the url is fetched)".into(),
            );
        }
    }
    if !crate::sinkhole::answer::EDE_CODES.contains(&raw.blocklists.ede) {
        problem(
            "blocklists.ede",
            "must be 15 (Blocked), 16 (Censored) or 17 (Filtered)".into(),
        );
    }
    let sinkhole_v4 = raw.sinkhole.ipv4;
    if sinkhole_v4.is_loopback() && raw.listen.iter().any(|a| !a.ip().is_loopback()) {
        tracing::warn!(
            "sinkhole.ipv4 is {sinkhole_v4} but fraudwall listens beyond loopback: customers' browsers \
             would connect to their own machine; set sinkhole.ipv4 to this host's address"
        );
    }

    let mut warning_page = raw.warning_page;
    warning_page.reports_file = resolve_path(base, &warning_page.reports_file);
    warning_page.template = warning_page.template.map(|p| resolve_path(base, &p));
    if let Some(tls) = &mut warning_page.tls {
        tls.cert = resolve_path(base, &tls.cert);
        tls.key = resolve_path(base, &tls.key);
    }
    if let Some(t) = &warning_page.template
        && !t.is_file()
    {
        problem(
            "warning_page.template",
            format!("{}: no such file", t.display()),
        );
    }
    let mut events = raw.events;
    if let crate::events::EventTarget::File(p) = &mut events.target {
        *p = resolve_path(base, p);
    }

    if !problems.is_empty() {
        return Err(ConfigError::Invalid {
            origin: origin.to_owned(),
            problems,
        });
    }

    Ok(Config {
        listen: raw.listen,
        resolver: ResolverConfig {
            mode: r.mode,
            root_hints,
            trust_anchor,
            dnssec: r.dnssec,
            allow_private_servers: r.allow_private_servers,
            forwarders: r.forwarders.clone(),
            timeout: Duration::from_millis(r.timeout_ms),
            server_timeout: Duration::from_millis(r.server_timeout_ms),
            cache: CacheConfig {
                max_bytes: c.max_mib * 1024 * 1024,
                min_ttl: c.min_ttl,
                max_ttl: c.max_ttl,
                max_negative_ttl: c.max_negative_ttl,
                serve_stale: c.serve_stale,
                stale_ttl: c.stale_ttl,
                stale_answer_ttl: c.stale_answer_ttl,
                prefetch: c.prefetch,
            },
            max_inflight: r.max_inflight,
            qname_minimisation: r.qname_minimisation,
        },
        blocklists: BlocklistsConfig {
            dir,
            state_dir,
            lists,
            doh_canary: raw.blocklists.doh_canary,
            default_action: raw.blocklists.action,
            default_ede: raw.blocklists.ede,
            watch: raw.blocklists.watch,
            debounce: Duration::from_millis(raw.blocklists.debounce_ms),
            poll_interval: Duration::from_millis(raw.blocklists.poll_interval_ms),
            max_shrink: raw.blocklists.max_shrink,
            remotes,
        },
        sinkhole: SinkholeConfig {
            ipv4: raw.sinkhole.ipv4,
            ipv6: raw.sinkhole.ipv6,
            ttl: raw.sinkhole.ttl,
        },
        access: AccessConfig {
            allow: raw.access.allow,
        },
        server: ServerConfig {
            udp_workers: raw.server.udp_workers,
            edns_udp_payload: raw.server.edns_udp_payload,
            tcp_timeout: Duration::from_secs(raw.server.tcp_timeout_secs),
        },
        log: raw.log,
        warning_page,
        events,
        metrics: raw.metrics,
    })
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

#[cfg(test)]
mod tests;
