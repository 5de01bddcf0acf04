//! The blocklist engine: list sources → one memory-mapped FST → one-walk verdicts.
//!
//! How a list flows:
//!
//! 1. [`source`] parses one file in any supported [`Format`] into raw entries, reporting every
//!    bad line as `path:line: reason` while keeping the good ones.
//! 2. [`normalize`] folds case, strips the trailing dot and a leading `*.`, converts Unicode to
//!    punycode and validates each name; [`guard`] refuses block entries at a public suffix or
//!    over a protected name, unless the list is trusted.
//! 3. [`compile`] sorts all names of all lists as reversed-label keys (`com.example.www`), merges
//!    duplicates and writes one self-describing file (header + list table + FST) atomically.
//!    Large lists are split into FST shards built in parallel ([`shard`]); a query still walks
//!    exactly one of them.
//! 4. [`Blocklist::open`] memory-maps and verifies that file; [`Blocklist::lookup_wire`] answers a
//!    query with one walk of the FST and no allocation ([`matcher`]).
//! 5. [`cli`] holds the `compile` / `check` helpers the binary wires to subcommands.
//!
//! CONTRACT (used by the resolver; keep these names and signatures):
//! - [`ListSpec`] describes one source list (from config or CLI).
//! - [`compile()`] parses every source, normalises names and writes one `.fst` atomically.
//! - [`Blocklist::open`] memory-maps and verifies a compiled file; [`Blocklist::empty`] is the
//!   list that blocks nothing.
//! - [`Blocklist::lookup_wire`] is the hot-path query: wire-form name in, verdict out, no allocation.
//! - [`Blocklist::lookup_wire_for`] is the same over some of the lists only (a policy group's),
//!   exact because the file keeps every list's entry of the names lists share ([`format`]).
//!
//! Lists may also hold IP prefixes (RPZ `rpz-ip` triggers, address lines of lists with
//! [`ListSpec::ips`]); [`Blocklist::lookup_ip`] finds the longest one covering an answer's
//! address, in the same file ([`format`] says how).
//!
//! Matching semantics: the most specific matching entry decides; at the same name an allow entry
//! beats a block entry, and an exact entry beats a subtree entry of the same kind. An `Exact` entry
//! matches only its own name; a `Subtree` entry matches its name and every name below it.

use std::path::PathBuf;

pub mod cli;
pub mod compile;
mod error;
pub mod format;
pub mod guard;
mod keyhash;
mod layered;
pub mod matcher;
pub mod merge;
pub mod normalize;
pub mod shard;
mod shared;
pub mod source;
mod verify;

pub use compile::{CompileReport, Compiler, ListFailure, ListReport, compile};
pub use error::Error;
pub use format::MAX_LISTS;
pub use guard::Guard;
pub use layered::Hidden;
pub use matcher::{Blocklist, Match};
pub use shared::{Publisher, SharedBlocklist};
pub use source::{Diagnostic, ParseStats, Severity};

/// What a blocked name gets as an answer (spelled in config as `sinkhole`, `nxdomain`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A → sinkhole IPv4, AAAA → sinkhole IPv6, anything else NODATA.
    #[default]
    Sinkhole,
    /// NXDOMAIN.
    Nxdomain,
    /// NOERROR with no answer.
    Nodata,
    /// REFUSED.
    Refused,
    /// No answer at all.
    Drop,
    /// Answer normally, but record the hit.
    Log,
}

impl Action {
    /// All actions, in their on-disk code order (the index is the code).
    pub const ALL: [Action; 6] = [
        Action::Sinkhole,
        Action::Nxdomain,
        Action::Nodata,
        Action::Refused,
        Action::Drop,
        Action::Log,
    ];

    /// The 3-bit code stored in compiled files.
    pub(crate) fn code(self) -> u8 {
        self as u8
    }

    /// Inverse of [`Action::code`]; `None` for codes this version does not know.
    pub(crate) fn from_code(code: u8) -> Option<Action> {
        Action::ALL.get(code as usize).copied()
    }

    /// Lowercase name for logs and CLI output.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Sinkhole => "sinkhole",
            Action::Nxdomain => "nxdomain",
            Action::Nodata => "nodata",
            Action::Refused => "refused",
            Action::Drop => "drop",
            Action::Log => "log",
        }
    }
}

/// Whether an entry covers names below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum MatchMode {
    /// The entry and every name below it.
    #[default]
    Subtree,
    /// The entry only.
    Exact,
}

impl MatchMode {
    /// Lowercase name for logs and CLI output.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchMode::Subtree => "subtree",
            MatchMode::Exact => "exact",
        }
    }
}

/// Whether a list blocks or allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ListKind {
    /// Entries block the names they match.
    #[default]
    Block,
    /// Entries exempt the names they match from less specific block entries.
    Allow,
}

impl ListKind {
    /// Lowercase name for logs and CLI output.
    pub fn as_str(self) -> &'static str {
        match self {
            ListKind::Block => "block",
            ListKind::Allow => "allow",
        }
    }
}

/// Source formats (spelled in config as `plain`, `hosts`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// One name per line, `#` comments; a leading `*.` is allowed ("wildcard" lists).
    Plain,
    /// `/etc/hosts` style: a sink address followed by one or more names.
    Hosts,
    /// Adblock / AdGuard DNS rules: `||name^` blocks, `@@||name^` allows.
    Adblock,
    /// dnsmasq `address=/name/…`, `server=/name/`, `local=/name/`.
    Dnsmasq,
    /// unbound `local-zone: "name" type`.
    Unbound,
    /// A DNS Response Policy Zone file.
    Rpz,
    /// BIND `zone "name" { type master; file "…"; };` statements (null-zone lists).
    Bind,
}

impl Format {
    /// All formats, in their on-disk code order (the index is the code: append, never reorder).
    pub const ALL: [Format; 7] = [
        Format::Plain,
        Format::Hosts,
        Format::Adblock,
        Format::Dnsmasq,
        Format::Unbound,
        Format::Rpz,
        Format::Bind,
    ];

    /// Lowercase name for logs and CLI output.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Plain => "plain",
            Format::Hosts => "hosts",
            Format::Adblock => "adblock",
            Format::Dnsmasq => "dnsmasq",
            Format::Unbound => "unbound",
            Format::Rpz => "rpz",
            Format::Bind => "bind",
        }
    }
}

/// One source list.
#[derive(Clone, Debug)]
pub struct ListSpec {
    /// Short name shown in logs and verdict explanations.
    pub name: String,
    /// The source file.
    pub path: PathBuf,
    /// `None`: by extension, then sniffed from content.
    pub format: Option<Format>,
    /// Block or allow. An allow list only ever allows, whatever its lines say.
    pub kind: ListKind,
    /// Default action for entries whose format does not name one (only RPZ does).
    pub action: Action,
    /// Default match mode for entries whose format does not fix one (plain lists).
    pub match_mode: MatchMode,
    /// Free-form category (e.g. "fraud"), carried into the compiled list table.
    pub category: String,
    /// RFC 8914 INFO-CODE for blocked answers (15 Blocked, 16 Censored, 17 Filtered).
    pub ede: u16,
    /// A trusted list may block public suffixes and protected names ([`guard`]).
    pub trusted: bool,
    /// What an untrusted list may not block. Its `Debug` names its content, so a compiled
    /// version cached under the spec's `Debug` text is compiled again when the guard changes.
    pub guard: Guard,
    /// Plain-list lines may be IP addresses and prefixes (`198.51.100.7`, `198.51.100.0/24`),
    /// matched against the addresses of answers. A `# fraudwall: ips` comment at the top of
    /// the file turns it on too.
    pub ips: bool,
}

/// The decision for one name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Block or allow (allow verdicts are returned so callers can log them).
    pub kind: ListKind,
    /// What to answer (meaningful for blocks).
    pub action: Action,
    /// Whether the matched entry was exact or a subtree entry.
    pub match_mode: MatchMode,
    /// Index into [`Blocklist::lists`].
    pub list: u16,
    /// How many labels of the query name the matched entry has (entry = last N labels); for
    /// an address verdict ([`Blocklist::lookup_ip`]), the prefix length of the entry.
    pub matched_labels: u8,
}

impl Verdict {
    /// True when the verdict blocks the name.
    pub fn is_block(&self) -> bool {
        self.kind == ListKind::Block
    }

    /// The matched entry as text, for logs: the last [`Verdict::matched_labels`] labels of the
    /// text query name, lowercased, without trailing dot (e.g. `fraudwall-demo.test` for the query
    /// `WWW.Fraudwall-Demo.test.`).
    pub fn entry_name(&self, query: &str) -> String {
        matcher::entry_name(query, self.matched_labels)
    }

    /// Like [`Verdict::entry_name`] for a wire-form query; `None` if the name is malformed.
    pub fn entry_name_wire(&self, wire: &[u8]) -> Option<String> {
        matcher::entry_name_wire(wire, self.matched_labels)
    }
}

/// Metadata of a list inside a compiled file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListInfo {
    /// The list's name from its [`ListSpec`].
    pub name: String,
    /// The source path at compile time (used by `check` to find `file:line`).
    pub path: PathBuf,
    /// Block or allow list.
    pub kind: ListKind,
    /// Default action of the list.
    pub action: Action,
    /// Category, e.g. "fraud".
    pub category: String,
    /// RFC 8914 INFO-CODE for blocked answers.
    pub ede: u16,
    /// Accepted entries from this list (before cross-list de-duplication).
    pub entries: u64,
    /// The format the source was parsed as (after sniffing).
    pub format: Format,
    /// The list's default match mode.
    pub match_mode: MatchMode,
}
