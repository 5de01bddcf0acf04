//! Compiling lists into one self-describing file ([`super::format`] says what is in it).
//!
//! # Duplicate names
//!
//! Within a slot the first entry wins (lists in the order given, then lines in file order), except
//! that an allow entry replaces a block entry: allow beats block at the same name and mode. The
//! exact and subtree slots are kept independently; the matcher decides between them.
//!
//! # Atomic replacement
//!
//! The file is written beside the target and renamed over it ([`crate::atomic_file`]), so a
//! file that a running server has memory-mapped is never modified in place.

use std::io::{Cursor, Seek, Write};
use std::path::{Path, PathBuf};

use super::format::{
    KeyEntries, MAX_LISTS, encode_table, ip_key, merge_slot, pack_slot, write_file,
};
use super::guard::{is_icann_suffix, is_private_suffix};
use super::keyhash::KeyHasher;
use super::normalize::{NameError, NameInfo, normalize_into, push_reversed_key};
use super::shard::{MAX_SHARDS, shards_for};
use super::source::{self, Diagnostic, ParseStats, RawEntry, Taken};
use super::{Action, Blocklist, Error, Format, ListInfo, ListKind, ListSpec, MatchMode};
use crate::atomic_file::{self, Durability};

/// What happened to one list during a compile.
#[derive(Clone, Debug)]
pub struct ListReport {
    /// The list's name.
    pub name: String,
    /// The source file.
    pub path: PathBuf,
    /// The format it was parsed as.
    pub format: Format,
    /// Line counts; `rejected` includes names that failed normalisation, `refused` the entries
    /// the guard rails refused.
    pub stats: ParseStats,
    /// Entries that made it into the compiled file (before cross-list de-duplication).
    pub accepted: u64,
    /// The first [`source::MAX_DIAGNOSTICS`] diagnostics, in file order (whole-file remarks
    /// first).
    pub diagnostics: Vec<Diagnostic>,
    /// Diagnostics beyond those, counted but not kept.
    pub omitted_diagnostics: u64,
}

impl ListReport {
    /// All diagnostics, kept or not: what "… and N more" counts from.
    pub fn diagnostics_total(&self) -> u64 {
        self.diagnostics.len() as u64 + self.omitted_diagnostics
    }
}

/// A list that could not be used at all; the others were still compiled.
#[derive(Debug)]
pub struct ListFailure {
    /// The list's name.
    pub name: String,
    /// The source file.
    pub path: PathBuf,
    /// Why it failed.
    pub error: Error,
}

/// The outcome of [`compile`].
#[derive(Debug)]
pub struct CompileReport {
    /// The compiled file.
    pub out: PathBuf,
    /// Lists compiled (in list-id order).
    pub lists: Vec<ListReport>,
    /// Lists that failed and are not in the file.
    pub failed: Vec<ListFailure>,
    /// Distinct names (FST keys) in the file.
    pub keys: u64,
    /// Size of the file in bytes.
    pub bytes: u64,
}

/// Sizes of a written file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteStats {
    /// Distinct names (FST keys).
    pub keys: u64,
    /// Total file size in bytes.
    pub bytes: u64,
}

/// Parses every list in `specs`, normalises the names and writes one compiled file to `out`
/// atomically. A list that cannot be used (unreadable, binary, no usable entry) is reported in
/// [`CompileReport::failed`] and the others are compiled anyway; only failing to write `out` is
/// an error.
pub fn compile(out: &Path, specs: &[ListSpec]) -> Result<CompileReport, Error> {
    if specs.len() > MAX_LISTS {
        return Err(Error::TooManyLists {
            count: specs.len(),
            max: MAX_LISTS,
        });
    }
    let mut c = Compiler::new();
    let mut lists = Vec::new();
    let mut failed = Vec::new();
    for spec in specs {
        match c.add_spec(spec) {
            Ok(r) => lists.push(r),
            Err(error) => failed.push(ListFailure {
                name: spec.name.clone(),
                path: spec.path.clone(),
                error,
            }),
        }
    }
    let ws = c.write(out)?;
    Ok(CompileReport {
        out: out.to_path_buf(),
        lists,
        failed,
        keys: ws.keys,
        bytes: ws.bytes,
    })
}

/// A remark for a block prefix so short that it covers a good part of the Internet.
fn short_prefix(net: &ipnet::IpNet) -> Option<String> {
    let (len, min) = match net {
        ipnet::IpNet::V4(n) => (n.prefix_len(), 16),
        ipnet::IpNet::V6(n) => (n.prefix_len(), 32),
    };
    (len < min).then(|| format!("{net} is a /{len}: it blocks every answer with an address in it"))
}

/// One normalised entry waiting to be sorted: its key lives in the compiler's arena, so millions
/// of entries cost one allocation rather than one each.
#[derive(Clone, Copy)]
struct Rec {
    off: u64,
    len: u16,
    exact: bool,
    slot: u32,
}

/// Accumulates lists and entries, then writes the compiled file.
///
/// [`compile`] is the usual entry point; the builder is public so tests and benches can add
/// names directly without writing source files.
#[derive(Default)]
pub struct Compiler {
    lists: Vec<ListInfo>,
    arena: Vec<u8>,
    recs: Vec<Rec>,
    buf: String,
    shards: Option<usize>,
}

impl Compiler {
    /// An empty compiler.
    pub fn new() -> Self {
        Self::default()
    }

    /// Splits the FST into `shards` shards (at most [`MAX_SHARDS`]) instead of the count
    /// [`shards_for`] picks from the list size; lets tests shard small lists.
    pub fn set_shards(&mut self, shards: usize) {
        self.shards = Some(shards.clamp(1, MAX_SHARDS));
    }

    /// Adds a list to the table and returns its id; its `entries` count is updated by
    /// [`Compiler::insert`].
    pub fn add_list(&mut self, info: ListInfo) -> Result<u16, Error> {
        if self.lists.len() >= MAX_LISTS {
            return Err(Error::TooManyLists {
                count: self.lists.len() + 1,
                max: MAX_LISTS,
            });
        }
        self.lists.push(info);
        Ok((self.lists.len() - 1) as u16)
    }

    /// Normalises `name` and adds it for list `list`. A leading `*.` forces `Subtree`. No guard
    /// rails apply here (tests and benches add names directly); list files go through
    /// [`Compiler::add_source`].
    ///
    /// # Panics
    /// If `list` was not returned by [`Compiler::add_list`].
    pub fn insert(
        &mut self,
        list: u16,
        name: &str,
        kind: ListKind,
        mode: MatchMode,
        action: Action,
    ) -> Result<NameInfo, NameError> {
        let info = normalize_into(name, &mut self.buf)?;
        let mode = if info.wildcard {
            MatchMode::Subtree
        } else {
            mode
        };
        self.push(list, kind, mode, action);
        Ok(info)
    }

    /// Adds the address prefix `net` (host bits cleared) for list `list`: answers with an
    /// address inside it get the entry's verdict ([`super::Blocklist::lookup_ip`]).
    ///
    /// # Panics
    /// If `list` was not returned by [`Compiler::add_list`].
    pub fn insert_ip(&mut self, list: u16, net: ipnet::IpNet, kind: ListKind, action: Action) {
        let off = self.arena.len() as u64;
        let mut key = Vec::with_capacity(2 + usize::from(net.prefix_len()));
        ip_key(&net.trunc(), &mut key);
        self.arena.extend_from_slice(&key);
        self.recs.push(Rec {
            off,
            len: key.len() as u16,
            exact: false,
            slot: pack_slot(kind, action, list),
        });
        self.lists[list as usize].entries += 1;
    }

    /// Adds the canonical name in `self.buf` for list `list`.
    fn push(&mut self, list: u16, kind: ListKind, mode: MatchMode, action: Action) {
        let off = self.arena.len() as u64;
        push_reversed_key(&self.buf, &mut self.arena);
        self.recs.push(Rec {
            off,
            len: self.buf.len() as u16,
            exact: mode == MatchMode::Exact,
            slot: pack_slot(kind, action, list),
        });
        self.lists[list as usize].entries += 1;
    }

    /// Reads, parses and adds one source list. On error nothing of the list is kept.
    pub fn add_spec(&mut self, spec: &ListSpec) -> Result<ListReport, Error> {
        let data = source::read_list(&spec.path)?;
        self.add_source(spec, &data)
    }

    /// Like [`Compiler::add_spec`] with the file content already in memory.
    ///
    /// Block entries the list's [`Guard`](super::Guard) refuses are not added (unless the list
    /// is trusted): they are counted in `stats.refused` and reported with
    /// [`Severity::Refused`](super::Severity::Refused). A list with lines but no usable entry is
    /// [`Error::NoEntries`].
    pub fn add_source(&mut self, spec: &ListSpec, data: &[u8]) -> Result<ListReport, Error> {
        let list = self.add_list(ListInfo {
            name: spec.name.clone(),
            path: spec.path.clone(),
            kind: spec.kind,
            action: spec.action,
            category: spec.category.clone(),
            ede: spec.ede,
            entries: 0,
            format: spec.format.unwrap_or(Format::Plain),
            match_mode: spec.match_mode,
        })?;
        let mark = (self.recs.len(), self.arena.len());
        let o = source::Options { ips: spec.ips };
        let visited = source::visit_with(data, &spec.path, spec.format, o, &mut |e: RawEntry<
            '_,
        >| {
            // An allow list only ever allows, whatever its lines say.
            let kind = match spec.kind {
                ListKind::Allow => ListKind::Allow,
                ListKind::Block => e.kind.unwrap_or(ListKind::Block),
            };
            let action = e.action.unwrap_or(spec.action);
            if let Some(net) = e.ip {
                self.insert_ip(list, net, kind, action);
                return match short_prefix(&net) {
                    Some(r) if kind == ListKind::Block => Taken::Warning(r),
                    _ => Taken::Accepted,
                };
            }
            let info = match normalize_into(e.name, &mut self.buf) {
                Ok(info) => info,
                Err(err) => return Taken::Rejected(err.to_string()),
            };
            let mode = if info.wildcard {
                MatchMode::Subtree
            } else {
                e.match_mode.unwrap_or(spec.match_mode)
            };
            let name = self.buf.as_str();
            let mut remark = None;
            if kind == ListKind::Block {
                if let Some(why) = spec.guard.refuses(name, mode) {
                    if !spec.trusted {
                        return Taken::Refused(format!(
                            "{why}; to load it anyway, mark the list `trusted: true` in blocklists.lists"
                        ));
                    }
                    remark = Some(format!("{why}; loaded because the list is trusted"));
                } else if mode == MatchMode::Subtree && is_private_suffix(name) {
                    remark = Some(format!(
                        "{name:?} is a public suffix (private section of the Public Suffix List): it blocks the sites of every owner below it"
                    ));
                } else if info.labels == 1 && !is_icann_suffix(name) {
                    remark = Some(format!("{name:?} blocks a whole TLD"));
                }
            }
            self.push(list, kind, mode, action);
            match remark {
                Some(r) => Taken::Warning(r),
                None => Taken::Accepted,
            }
        });
        let visited = match visited {
            Ok(v) => v,
            Err(err) => {
                self.recs.truncate(mark.0);
                self.arena.truncate(mark.1);
                self.lists.pop();
                return Err(err);
            }
        };
        let info = &mut self.lists[list as usize];
        info.format = visited.format;
        Ok(ListReport {
            name: spec.name.clone(),
            path: spec.path.clone(),
            format: visited.format,
            stats: visited.stats,
            accepted: info.entries,
            diagnostics: visited.diagnostics,
            omitted_diagnostics: visited.omitted_diagnostics,
        })
    }

    /// The lists added so far.
    pub fn lists(&self) -> &[ListInfo] {
        &self.lists
    }

    /// Builds the compiled file in memory (tests, benches, [`super::Blocklist::from_bytes`]).
    pub fn to_bytes(self) -> Result<Vec<u8>, Error> {
        let mut cur = Cursor::new(Vec::new());
        self.build(&mut cur, Path::new("<memory>"), None)?;
        Ok(cur.into_inner())
    }

    /// Builds the compiled file in memory and serves it as it is ([`Blocklist::file_bytes`]
    /// gives the bytes to store): what was just built is not checked again, and the Bloom
    /// filter is made from the keys as they are written, not by reading them back.
    pub fn into_blocklist(self) -> Result<Blocklist, Error> {
        let mut cur = Cursor::new(Vec::new());
        let mut hashes = Vec::new();
        self.build(&mut cur, Path::new("<memory>"), Some(&mut hashes))?;
        Blocklist::from_compiled(cur.into_inner(), &hashes)
    }

    /// Writes the compiled file to `path` atomically and durably (see [`crate::atomic_file`]).
    pub fn write(self, path: &Path) -> Result<WriteStats, Error> {
        atomic_file::replace(path, Durability::Sync, |w| {
            let keys = self.build(w, path, None)?;
            let bytes = w.stream_position().map_err(|source| Error::Write {
                path: path.to_path_buf(),
                source,
            })?;
            Ok(WriteStats { keys, bytes })
        })
    }

    /// Sorts, merges and writes header, list table and FST shards; returns the number of keys.
    /// With `hashes`, also pushes each distinct key's [`KeyHasher`] hash there.
    fn build<W: Write + Seek>(
        mut self,
        w: &mut W,
        path: &Path,
        mut hashes: Option<&mut Vec<(u64, u64)>>,
    ) -> Result<u64, Error> {
        let table = encode_table(&self.lists);
        let arena = &self.arena;
        let key = |r: &Rec| &arena[r.off as usize..r.off as usize + r.len as usize];
        // Ties keep insertion order (arena offsets grow), which the merge rule relies on.
        self.recs
            .sort_unstable_by(|a, b| key(a).cmp(key(b)).then(a.off.cmp(&b.off)));
        let recs = &self.recs;
        let shards = self.shards.unwrap_or_else(|| shards_for(recs.len() as u64));
        write_file(w, path, &table, shards, |builder, alternates| {
            let mut i = 0;
            let mut all = KeyEntries::default();
            while i < recs.len() {
                let k = key(&recs[i]);
                let (mut exact, mut subtree) = (0u32, 0u32);
                all.clear();
                while i < recs.len() && key(&recs[i]) == k {
                    let r = recs[i];
                    if r.exact {
                        exact = merge_slot(exact, r.slot);
                    } else {
                        subtree = merge_slot(subtree, r.slot);
                    }
                    all.add(r.exact, r.slot);
                    i += 1;
                }
                builder.insert(k, u64::from(subtree) | (u64::from(exact) << 32))?;
                if let Some(h) = hashes.as_deref_mut() {
                    let mut kh = KeyHasher::new();
                    kh.key(k);
                    h.push(kh.finish());
                }
                alternates.add(k, &all)?;
            }
            Ok(())
        })
    }
}
