//! The `blocklists:` section of the configuration: where lists come from and how they are kept
//! current.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;

use crate::blocklist::{Action, Format, Guard, ListKind, ListSpec, MatchMode};
use crate::dns::ede;
use crate::section::Check;

/// `blocklists:` as YAML spells it.
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
    /// Quiet time after the last change before a reload (and how long a file must be
    /// unchanged); files notify saw closed after writing or renamed in are read at once.
    pub debounce_ms: u64,
    /// Stat poll of `dir`: the backstop under `watch: notify`, the only source under `watch: poll`.
    pub poll_interval_ms: u64,
    /// Largest fraction of a list's entries one update may drop before it is refused.
    pub max_shrink: f64,
    /// Serve even when no list could be loaded at start (otherwise `serve` fails).
    pub allow_empty: bool,
    /// Names untrusted lists may not block; absent: the built-in `config/protected-names.txt`.
    pub protected_names: Option<PathBuf>,
    /// RPZ zones kept current by zone transfer.
    pub feeds: Vec<super::feeds::RawFeed>,
}

impl Default for RawBlocklists {
    fn default() -> Self {
        RawBlocklists {
            dir: "blocklists".into(),
            state_dir: None,
            lists: Vec::new(),
            doh_canary: true,
            action: Action::Sinkhole,
            ede: ede::BLOCKED,
            watch: WatchMode::Notify,
            debounce_ms: 300,
            poll_interval_ms: 30_000,
            max_shrink: 0.5,
            allow_empty: false,
            protected_names: None,
            feeds: Vec::new(),
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
    pub fn to_duration(&self) -> Result<Duration, String> {
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
        Ok(Duration::from_secs(secs))
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
    /// Accept a plain `http://` url (a list can be altered in transit over plain HTTP).
    #[serde(default)]
    pub allow_http: bool,
    /// The download must have this SHA-256 (64 hex digits), or it is refused.
    #[serde(default)]
    pub sha256: Option<String>,
    /// May block public suffixes and protected names.
    #[serde(default)]
    pub trusted: bool,
    /// Lines may be IP addresses and prefixes, matched against answers' A/AAAA addresses.
    #[serde(default)]
    pub ips: bool,
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

/// Where lists come from, validated.
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
    /// Serve even when no list could be loaded at start.
    pub allow_empty: bool,
    /// Lists downloaded from a URL into their file in `dir`.
    pub remotes: Vec<RemoteList>,
    /// What untrusted lists may not block (every spec carries it; discovered lists too).
    pub guard: Guard,
    /// RPZ feeds by zone transfer; each also has its spec (`feed:<name>`) in `lists`.
    pub feeds: Vec<super::feeds::Feed>,
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
    /// The SHA-256 a download must have (lowercase hex), if pinned.
    pub sha256: Option<String>,
}

const EDE_CODES_MSG: &str = "must be 15 (Blocked), 16 (Censored) or 17 (Filtered)";

impl RawBlocklists {
    /// Validates the section.
    pub fn validate(self, check: &mut Check) -> BlocklistsConfig {
        let dir = check.path(&self.dir);
        let state_dir = self
            .state_dir
            .as_ref()
            .map(|p| check.path(p))
            .unwrap_or_else(|| dir.join(".fraudwall"));
        if self.debounce_ms < 50 || self.debounce_ms > 60_000 {
            check.problem("debounce_ms", "must be between 50 and 60000");
        }
        if self.poll_interval_ms < 100 {
            check.problem("poll_interval_ms", "must be at least 100");
        }
        if !(0.0..=1.0).contains(&self.max_shrink) {
            check.problem(
                "max_shrink",
                format!("{} is not a fraction between 0 and 1", self.max_shrink),
            );
        }
        if !ede::LIST_CODES.contains(&self.ede) {
            check.problem("ede", EDE_CODES_MSG);
        }
        let guard = match &self.protected_names {
            None => Guard::builtin(),
            Some(p) => Guard::load(&check.path(p)).unwrap_or_else(|e| {
                check.problem("protected_names", e.to_string());
                Guard::builtin()
            }),
        };
        let mut lists: Vec<ListSpec> = Vec::new();
        let mut remotes = Vec::new();
        for (i, l) in self.lists.into_iter().enumerate() {
            check.section(&format!("lists[{i}]"), |check| {
                let (mut spec, remote) = l.validate(i, &dir, self.action, self.ede, check);
                spec.guard = guard.clone();
                if lists.iter().any(|s| s.name == spec.name) {
                    check.problem("", format!("list name {:?} is used twice", spec.name));
                }
                remotes.extend(remote);
                lists.push(spec);
            });
        }
        let mut feeds: Vec<super::feeds::Feed> = Vec::new();
        for (i, f) in self.feeds.into_iter().enumerate() {
            check.section(&format!("feeds[{i}]"), |check| {
                let Some((feed, spec)) = f.validate(&state_dir, self.action, &guard, check) else {
                    return;
                };
                if feeds.iter().any(|o| o.name == feed.name) {
                    check.problem("name", format!("feed name {:?} is used twice", feed.name));
                }
                if lists.iter().any(|s| s.name == spec.name) {
                    check.problem("name", format!("list name {:?} is used twice", spec.name));
                }
                lists.push(spec);
                feeds.push(feed);
            });
        }
        BlocklistsConfig {
            dir,
            state_dir,
            lists,
            doh_canary: self.doh_canary,
            default_action: self.action,
            default_ede: self.ede,
            watch: self.watch,
            debounce: Duration::from_millis(self.debounce_ms),
            poll_interval: Duration::from_millis(self.poll_interval_ms),
            max_shrink: self.max_shrink,
            allow_empty: self.allow_empty,
            remotes,
            guard,
            feeds,
        }
    }
}

impl RawList {
    /// Validates entry `i` of `blocklists.lists` (files relative to `dir`, defaults from the
    /// section) into its spec and, with a `url`, its download.
    fn validate(
        self,
        i: usize,
        dir: &Path,
        default_action: Action,
        default_ede: u16,
        check: &mut Check,
    ) -> (ListSpec, Option<RemoteList>) {
        let path = crate::section::resolve(dir, &self.file);
        let ede = self.ede.unwrap_or(default_ede);
        if !ede::LIST_CODES.contains(&ede) {
            check.problem("ede", EDE_CODES_MSG);
        }
        let name = self.name.clone().unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| format!("list{i}"))
        });
        let spec = ListSpec {
            name,
            path,
            format: self.format,
            kind: match self.kind {
                Kind::Block => ListKind::Block,
                Kind::Allow => ListKind::Allow,
            },
            action: self.action.unwrap_or(default_action),
            match_mode: match self.r#match {
                Match::Subtree => MatchMode::Subtree,
                Match::Exact => MatchMode::Exact,
            },
            category: self.category.unwrap_or_else(|| "fraud".into()),
            ede,
            trusted: self.trusted,
            guard: Guard::builtin(),
            ips: self.ips,
        };
        let Some(url) = self.url else {
            if self.interval.is_some() {
                check.problem(
                    "interval",
                    "interval needs url (it says how often the url is fetched)",
                );
            }
            for (key, set) in [
                ("allow_http", self.allow_http),
                ("sha256", self.sha256.is_some()),
            ] {
                if set {
                    check.problem(key, format!("{key} needs url (it is about the download)"));
                }
            }
            return (spec, None);
        };
        if url.starts_with("http://") {
            if !self.allow_http {
                check.problem(
                    "url",
                    format!(
                        "{url:?}: plain http can be altered on the way; use https://, or set \
                         allow_http: true for this list"
                    ),
                );
            }
        } else if !url.starts_with("https://") {
            check.problem("url", format!("{url:?}: only https:// URLs are fetched"));
        }
        let sha256 = self.sha256.map(|h| h.trim().to_ascii_lowercase());
        if let Some(h) = &sha256
            && (h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            check.problem(
                "sha256",
                "must be 64 hex digits (a SHA-256, e.g. from sha256sum)",
            );
        }
        let interval = match self.interval.as_ref().map(RawDuration::to_duration) {
            None => Duration::from_secs(3600),
            Some(Ok(d)) if d.as_secs() >= 1 => d,
            Some(Ok(_)) => {
                check.problem("interval", "must be at least 1 second");
                Duration::from_secs(1)
            }
            Some(Err(e)) => {
                check.problem("interval", e);
                Duration::from_secs(1)
            }
        };
        let remote = RemoteList {
            name: spec.name.clone(),
            url,
            path: spec.path.clone(),
            interval,
            sha256,
        };
        (spec, Some(remote))
    }
}

#[cfg(test)]
impl BlocklistsConfig {
    /// The section from YAML text that has it under a top-level `blocklists:` key, relative
    /// paths resolved against `base` (tests).
    pub(crate) fn from_yaml(text: &str, base: &Path) -> BlocklistsConfig {
        #[derive(Deserialize)]
        struct Doc {
            blocklists: RawBlocklists,
        }
        let doc: Doc = serde_saphyr::from_str(text).expect("test YAML");
        let mut check = Check::new(base);
        let cfg = check.section("blocklists", |c| doc.blocklists.validate(c));
        assert!(check.is_clean(), "{:?}", check.into_problems());
        cfg
    }
}
