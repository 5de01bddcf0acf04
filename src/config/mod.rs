//! Configuration: YAML text → each section's serde shape → each section validated by its owner
//! → [`Config`].
//!
//! Every section belongs to the module that uses it ([`crate::section`] says how): `resolver:`
//! to [`crate::resolve`], `resolver.cache:` to [`crate::dns::cache`], `blocklists:` to
//! [`crate::lists`], `sinkhole:` to [`crate::dns::blocked`], `listen`, `server:`, `access:`,
//! `tls:`, `dot:`, `doh:`, `ddr:` and `proxy_protocol:` to [`crate::server`], `warning_page:`
//! to [`crate::sinkhole::page`], `events:` to [`crate::events`], `dnstap:` to
//! [`crate::dnstap`], `metrics:` to [`crate::metrics`], `log:` to [`crate::logging`], `policy:`
//! to [`crate::policy`]. This
//! module only assembles them and reports.
//!
//! Parsing reports the first syntax or type error with its line and column (serde-saphyr);
//! validation then reports every remaining problem at once, each naming its key and line.
//! Relative paths are resolved against the directory of the config file. With no file at all,
//! [`Config::embedded_default`] is used.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use serde::Deserialize;

use crate::{
    dns::{
        blocked::{RawSinkhole, SinkholeConfig},
        cache::CacheConfig,
    },
    dnstap::{DnstapConfig, RawDnstap},
    events::EventLogConfig,
    lists::config::{BlocklistsConfig, RawBlocklists},
    logging::LogConfig,
    metrics::MetricsConfig,
    policy::{PolicyConfig, RawPolicy},
    resolve::config::{RawResolver, ResolverConfig},
    section::Check,
    server::{
        AccessConfig, EncryptedConfig, RawAccess, RawDdr, RawDoh, RawDot, RawServer, RawTls,
        ServerConfig, proxy::RawProxyProtocol,
    },
    sinkhole::page::WarningPageConfig,
};

pub use crate::section::Problem;

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

/// The whole file, as YAML spells it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    listen: Vec<SocketAddr>,
    resolver: RawResolver,
    blocklists: RawBlocklists,
    sinkhole: RawSinkhole,
    access: RawAccess,
    server: RawServer,
    tls: Option<RawTls>,
    dot: RawDot,
    doh: RawDoh,
    ddr: RawDdr,
    proxy_protocol: RawProxyProtocol,
    log: LogConfig,
    warning_page: WarningPageConfig,
    events: EventLogConfig,
    dnstap: Option<RawDnstap>,
    metrics: MetricsConfig,
    policy: RawPolicy,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            listen: vec!["127.0.0.1:5353".parse().expect("literal")],
            resolver: Default::default(),
            blocklists: Default::default(),
            sinkhole: Default::default(),
            access: Default::default(),
            server: Default::default(),
            tls: None,
            dot: Default::default(),
            doh: Default::default(),
            ddr: Default::default(),
            proxy_protocol: Default::default(),
            log: Default::default(),
            warning_page: Default::default(),
            events: Default::default(),
            dnstap: None,
            metrics: Default::default(),
            policy: Default::default(),
        }
    }
}

/// Validated configuration: each section as its owner validated it. Every path is absolute or
/// relative to the working directory.
#[derive(Debug, Clone)]
pub struct Config {
    pub resolver: ResolverConfig,
    pub blocklists: BlocklistsConfig,
    pub sinkhole: SinkholeConfig,
    pub access: AccessConfig,
    /// `listen`, `server:` and `proxy_protocol:`.
    pub server: ServerConfig,
    /// `tls:`, `dot:`, `doh:` and `ddr:`.
    pub encrypted: EncryptedConfig,
    pub log: LogConfig,
    pub warning_page: WarningPageConfig,
    pub events: EventLogConfig,
    /// `dnstap:`; absent, nothing is tapped.
    pub dnstap: Option<DnstapConfig>,
    pub metrics: MetricsConfig,
    /// `policy:`: client groups and the lists that apply to them.
    pub policy: PolicyConfig,
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
        let raw: RawConfig = if text.trim().is_empty() {
            RawConfig::default()
        } else {
            serde_saphyr::from_str(text).map_err(|e| ConfigError::Parse {
                origin: origin.to_owned(),
                message: first_line(&e.to_string()),
            })?
        };
        let mut check = Check::new(base);
        let config = raw.validate(&mut check);
        if check.is_clean() {
            return Ok(config);
        }
        let problems = check
            .into_problems()
            .into_iter()
            .map(|p| Problem {
                line: line_of(text, &p.key),
                ..p
            })
            .collect();
        Err(ConfigError::Invalid {
            origin: origin.to_owned(),
            problems,
        })
    }

    /// The answer cache's section (`resolver.cache`).
    pub fn cache(&self) -> &CacheConfig {
        &self.resolver.cache
    }
}

impl RawConfig {
    /// Every section validated by its owner, in file order, then what spans sections.
    fn validate(self, check: &mut Check) -> Config {
        if self.listen.is_empty() {
            check.problem("listen", "at least one address is needed");
        }
        let resolver = check.section("resolver", |c| self.resolver.validate(c));
        let blocklists = check.section("blocklists", |c| self.blocklists.validate(c));
        let sinkhole = check.section("sinkhole", |c| self.sinkhole.validate(c));
        let access = check.section("access", |c| self.access.validate(c));
        let mut server = check.section("server", |c| self.server.validate(self.listen, c));
        server.proxy = check.section("proxy_protocol", |c| self.proxy_protocol.validate(c));
        let encrypted =
            crate::server::validate_encrypted(self.tls, self.dot, self.doh, self.ddr, check);
        let log = check.section("log", |c| self.log.validate(c));
        let warning_page = check.section("warning_page", |c| self.warning_page.validate(c));
        let events = check.section("events", |c| self.events.validate(c));
        let dnstap = self
            .dnstap
            .map(|d| check.section("dnstap", |c| d.validate(c)));
        let metrics = check.section("metrics", |c| self.metrics.validate(c));
        let policy = check.section("policy", |c| self.policy.validate(&blocklists.lists, c));
        let v4 = sinkhole.ipv4;
        if v4.is_loopback() && server.listen.iter().any(|a| !a.ip().is_loopback()) {
            tracing::warn!(
                "sinkhole.ipv4 is {v4} but fraudwall listens beyond loopback: customers' \
                 browsers would connect to their own machine; set sinkhole.ipv4 to this host's \
                 address"
            );
        }
        Config {
            resolver,
            blocklists,
            sinkhole,
            access,
            server,
            encrypted,
            log,
            warning_page,
            events,
            dnstap,
            metrics,
            policy,
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).to_owned()
}

/// Finds the line of a dotted key in the YAML text, for problems found after parsing.
/// Good enough for our nested keys: it looks for each path segment in order, and for a
/// segment with an index (`groups[2]`) at that item of a block sequence (`- ` lines); the
/// items of a flow sequence (`[a, b]`) share its line.
fn line_of(text: &str, key: &str) -> Option<usize> {
    let mut from = 0;
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut found = None;
    for seg in key.split('.') {
        let (name, index) = match seg.split_once('[') {
            Some((n, i)) => (n, i.trim_end_matches(']').parse::<usize>().ok()),
            None => (seg, None),
        };
        let pat = format!("{name}:");
        let idx = (from..lines.len()).find(|&i| {
            let t = lines[i].trim_start().trim_start_matches("- ");
            t.starts_with(&pat)
        })?;
        found = Some(idx + 1);
        from = idx + 1;
        let Some(want) = index else { continue };
        let (mut seen, mut item_indent) = (0, None);
        for (j, l) in lines.iter().enumerate().skip(idx + 1) {
            let t = l.trim_start();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let item = t.starts_with("- ")
                && indent(l) >= indent(lines[idx])
                && item_indent.is_none_or(|i| i == indent(l));
            if indent(l) <= indent(lines[idx]) && !item {
                break;
            }
            if item {
                item_indent = Some(indent(l));
                if seen == want {
                    found = Some(j + 1);
                    from = j;
                    break;
                }
                seen += 1;
            }
        }
    }
    found
}

#[cfg(test)]
mod tests;
