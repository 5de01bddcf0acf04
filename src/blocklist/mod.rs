//! The blocklist engine: list sources → one memory-mapped FST → one-walk verdicts.
//!
//! CONTRACT (used by the resolver; keep these names and signatures):
//! - [`ListSpec`] describes one source list (from config or CLI).
//! - [`compile`] parses every source, normalises names and writes one `.fst` atomically.
//! - [`Blocklist::open`] memory-maps and verifies a compiled file; [`Blocklist::empty`] is the
//!   list that blocks nothing.
//! - [`Blocklist::lookup_wire`] is the hot-path query: wire-form name in, verdict out, no allocation.

use std::path::{Path, PathBuf};

/// What a blocked name gets as an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
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

/// Whether an entry covers names below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum MatchMode {
    /// The entry and every name below it.
    #[default]
    Subtree,
    /// The entry only.
    Exact,
}

/// Whether a list blocks or allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ListKind {
    #[default]
    Block,
    Allow,
}

/// Source formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Plain,
    Hosts,
    Adblock,
    Dnsmasq,
    Unbound,
    Rpz,
}

/// One source list.
#[derive(Clone, Debug)]
pub struct ListSpec {
    pub name: String,
    pub path: PathBuf,
    /// `None`: by extension, then sniffed from content.
    pub format: Option<Format>,
    pub kind: ListKind,
    pub action: Action,
    pub match_mode: MatchMode,
    pub category: String,
    /// RFC 8914 INFO-CODE for blocked answers (15 Blocked, 16 Censored, 17 Filtered).
    pub ede: u16,
}

/// The decision for one name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub kind: ListKind,
    pub action: Action,
    pub match_mode: MatchMode,
    /// Index into [`Blocklist::lists`].
    pub list: u16,
    /// How many labels of the query name the matched entry has (entry = last N labels).
    pub matched_labels: u8,
}

/// Metadata of a list inside a compiled file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListInfo {
    pub name: String,
    pub path: PathBuf,
    pub kind: ListKind,
    pub action: Action,
    pub category: String,
    pub ede: u16,
    pub entries: u64,
}

/// A compiled, verified, memory-mapped blocklist.
pub struct Blocklist {
    lists: Vec<ListInfo>,
}

impl Blocklist {
    pub fn empty() -> Self {
        Blocklist { lists: Vec::new() }
    }
    pub fn open(_path: &Path) -> std::io::Result<Self> {
        unimplemented!("blocklist engine")
    }
    pub fn lists(&self) -> &[ListInfo] {
        &self.lists
    }
    /// `name` is wire form (length-prefixed labels, terminated by 0), any case.
    pub fn lookup_wire(&self, _name: &[u8]) -> Option<Verdict> {
        None
    }
    pub fn lookup(&self, _name: &str) -> Option<Verdict> {
        None
    }
}

pub mod cli;

impl ListSpec {
    pub fn from_path(_p: &Path) -> ListSpec {
        unimplemented!()
    }
}

pub fn discover(_dir: &Path) -> Vec<ListSpec> {
    Vec::new()
}
