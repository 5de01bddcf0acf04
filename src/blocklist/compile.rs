//! Compiling lists into one self-describing file ([`super::format`] says what is in it).
//!
//! # Duplicate names
//!
//! Within a slot the first entry wins (lists in the order given, then lines in file order), except
//! that an allow entry replaces a block entry: allow beats block at the same name and mode. The
//! exact and subtree slots are kept independently; the matcher decides between them.
//!
//! # On every core
//!
//! A large file's two halves are read at once, each into a compiler of its own, the second
//! appended after the first ([`source::visit_split`]); a file of several shards is split by
//! shard before it is sorted, and each shard is sorted and built on its own
//! ([`super::shard::across_shards`]). Either way the output is the bytes of one pass: the
//! entries keep their file order, and a shard's keys are the ones a sorted pass sends it.
//!
//! # Atomic replacement
//!
//! The file is written beside the target and renamed over it ([`crate::atomic_file`]), so a
//! file that a running server has memory-mapped is never modified in place.

use std::io::{Cursor, Seek, Write};
use std::path::{Path, PathBuf};

use super::format::{
    KeyEntries, MAX_LISTS, encode_table, ip_key, merge_slot, pack_slot, write_file, write_parts,
};
use super::guard::{is_icann_suffix, is_private_suffix};
use super::keyhash::KeyHasher;
use super::normalize::{NameError, NameInfo, normalize_into, push_reversed_key};
use super::shard::{MAX_SHARDS, across_shards, in_every_shard, shard_of_key, shards_for};
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
    /// Build the shards in one sorted pass (tests compare the two ways).
    sequential: bool,
    /// Files from this size on are read in two halves at once ([`source::visit_split`];
    /// default [`SPLIT_MIN`]).
    split_min: Option<usize>,
}

/// Bytes of list from which its two halves are read at once: below it a second thread costs
/// more than it saves.
const SPLIT_MIN: usize = 1 << 20;

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

    /// Reads files from `bytes` on in two halves at once (default 1 MiB; tests and fuzzing
    /// set it low to compare the two ways).
    pub fn set_split_min(&mut self, bytes: usize) {
        self.split_min = Some(bytes);
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
        // The second half of a large file goes to a compiler of its own, on another thread;
        // its entries are appended after the first half's, in file order, as one pass adds them.
        let mut half = Compiler {
            lists: self.lists.clone(),
            ..Compiler::default()
        };
        let visited = source::visit_split(
            data,
            &spec.path,
            spec.format,
            o,
            self.split_min.unwrap_or(SPLIT_MIN),
            &mut |e| self.take(spec, list, e),
            &mut |e| half.take(spec, list, e),
        );
        if visited.is_ok() {
            self.append(half, list);
        }
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

    /// Adds one entry of `spec`'s list `list`, and says what became of it.
    fn take(&mut self, spec: &ListSpec, list: u16, e: RawEntry<'_>) -> Taken {
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
    }

    /// Appends the entries `half` took for list `list` (the second half of its file) after
    /// this compiler's own.
    fn append(&mut self, half: Compiler, list: u16) {
        let base = self.arena.len() as u64;
        self.arena.extend_from_slice(&half.arena);
        self.recs.extend(half.recs.into_iter().map(|mut r| {
            r.off += base;
            r
        }));
        // `half` started with this list empty.
        self.lists[list as usize].entries += half.lists[list as usize].entries;
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
        hashes: Option<&mut Vec<(u64, u64)>>,
    ) -> Result<u64, Error> {
        let table = encode_table(&self.lists);
        let shards = self
            .shards
            .unwrap_or_else(|| shards_for(self.recs.len() as u64));
        if shards > 1 && !self.sequential {
            let built = self.build_shards(shards, hashes.is_some())?;
            if let Some(h) = hashes {
                h.extend(built.hashes);
            }
            return write_parts(w, path, &table, built.fsts, built.keys, built.alts);
        }
        let arena = &self.arena;
        let key = |r: &Rec| &arena[r.off as usize..r.off as usize + r.len as usize];
        sort(&mut self.recs, arena);
        let recs = &self.recs;
        let mut hashes = hashes;
        write_file(w, path, &table, shards, |builder, alternates| {
            each_key(recs, &key, |k, value, all| {
                builder.insert(k, value)?;
                if let Some(h) = hashes.as_deref_mut() {
                    h.push(key_hash(k));
                }
                alternates.add(k, all)
            })
        })
    }

    /// Sorts and builds each shard on its own, on every core: the entries are split by shard
    /// first (a one-label key goes to all), so each shard's sort and FST build runs alone. The
    /// shards are the ones one sorted pass through a [`super::shard`] builder makes, byte for
    /// byte; only the alternates, few, are gathered and sorted across shards at the end.
    fn build_shards(self, shards: usize, hashes: bool) -> Result<Built, Error> {
        use std::sync::Mutex;
        let arena = &self.arena;
        let key = |r: &Rec| &arena[r.off as usize..r.off as usize + r.len as usize];
        let mut parts: Vec<Vec<Rec>> = (0..shards)
            .map(|_| Vec::with_capacity(self.recs.len() / shards + 1024))
            .collect();
        for r in &self.recs {
            match shard_of_key(key(r), shards) {
                Some(s) => parts[s].push(*r),
                None => parts.iter_mut().for_each(|p| p.push(*r)),
            }
        }
        drop(self.recs);
        let parts: Vec<Mutex<Vec<Rec>>> = parts.into_iter().map(Mutex::new).collect();
        let done = across_shards(shards, Vec::new, |out: &mut Vec<_>, i| {
            let mut recs = std::mem::take(&mut *parts[i].lock().unwrap_or_else(|e| e.into_inner()));
            sort(&mut recs, arena);
            // A one-label key is in every shard but counts, hashes and has alternates once.
            let once = |k: &[u8]| i == 0 || !in_every_shard(k);
            let mut b = fst::MapBuilder::memory();
            let mut part = Built::default();
            let r = each_key(&recs, &key, |k, value, all| {
                b.insert(k, value)
                    .map_err(|source| Error::Build { source })?;
                if once(k) {
                    part.keys += 1;
                    if hashes {
                        part.hashes.push(key_hash(k));
                    }
                    if all.shared() {
                        part.alts.push((Box::from(k), all.clone()));
                    }
                }
                Ok(())
            })
            .and_then(|()| b.into_inner().map_err(|source| Error::Build { source }));
            out.push((
                i,
                r.map(|fst| {
                    part.fsts.push(fst);
                    part
                }),
            ));
        });
        let mut parts: Vec<(usize, Result<Built, Error>)> = done.into_iter().flatten().collect();
        parts.sort_by_key(|(i, _)| *i);
        let mut all = Built::default();
        for (_, part) in parts {
            let part = part?;
            all.fsts.extend(part.fsts);
            all.keys += part.keys;
            all.hashes.extend(part.hashes);
            all.alts.extend(part.alts);
        }
        all.alts.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(all)
    }
}

/// The shards of a file, built apart ([`Compiler::build_shards`]).
#[derive(Default)]
struct Built {
    fsts: Vec<Vec<u8>>,
    keys: u64,
    hashes: Vec<(u64, u64)>,
    /// Keys that lists share, with all their entries, in key order once gathered.
    alts: Vec<(Box<[u8]>, KeyEntries)>,
}

/// Sorts entries by key; ties keep insertion order (arena offsets grow), which the merge rule
/// relies on.
fn sort(recs: &mut [Rec], arena: &[u8]) {
    let key = |r: &Rec| &arena[r.off as usize..r.off as usize + r.len as usize];
    recs.sort_unstable_by(|a, b| key(a).cmp(key(b)).then(a.off.cmp(&b.off)));
}

/// Calls `f(key, value, entries)` for each distinct key of sorted `recs`: the value holds the
/// key's subtree and exact slots (each merged over its entries), `entries` every entry.
fn each_key<'a>(
    recs: &[Rec],
    key: &impl Fn(&Rec) -> &'a [u8],
    mut f: impl FnMut(&'a [u8], u64, &KeyEntries) -> Result<(), Error>,
) -> Result<(), Error> {
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
        f(k, u64::from(subtree) | (u64::from(exact) << 32), &all)?;
    }
    Ok(())
}

fn key_hash(k: &[u8]) -> (u64, u64) {
    let mut kh = KeyHasher::new();
    kh.key(k);
    kh.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocklist::matcher::tests::info as list;

    /// A file read in two halves at once compiles to the same bytes, and reports the same
    /// counts, diagnostics (line numbers, order, the cap) and errors, as one pass over it.
    #[test]
    fn a_file_read_in_halves_is_the_file_read_once() {
        let mut plain = String::from("\u{feff}# fraudwall: ips\r\n# comment\n\n");
        let mut hosts = String::from("# hosts\n127.0.0.1 localhost\n");
        let mut adblock = String::from("[Adblock Plus 2.0]\n! title\n");
        let mut dnsmasq = String::new();
        let mut unbound = String::from("server:\n");
        for i in 0..3000 {
            plain.push_str(&match i % 7 {
                0 => format!("bad name {i}\n"),
                1 => format!("198.18.{}.0/24\n", i % 250),
                2 => "com\n".to_string(),
                3 => format!("*.w{i}.test\r\n"),
                4 => "\u{00e9}\u{00e9}.test\n".to_string(),
                5 => format!("x{}\n", "y".repeat(if i % 500 == 5 { 70_000 } else { 3 })),
                _ => format!("n{i}.example.test # note\n"),
            });
            hosts.push_str(&format!("0.0.0.0 h{i}.test h{i}.example\n"));
            hosts.push_str(if i % 9 == 0 { "not-an-ip x.test\n" } else { "" });
            adblock.push_str(&format!("||a{i}.test^\n"));
            adblock.push_str(if i % 11 == 0 { "/banner/*\n" } else { "" });
            dnsmasq.push_str(&format!("address=/d{i}.test/0.0.0.0\n"));
            unbound.push_str(&format!("local-zone: \"u{i}.test.\" always_nxdomain\n"));
        }
        let mut bytes: Vec<(&str, Vec<u8>)> = vec![
            ("l.txt", plain.into_bytes()),
            ("l.hosts", hosts.into_bytes()),
            ("l.txt", adblock.into_bytes()),
            ("l.txt", dnsmasq.into_bytes()),
            ("l.conf", unbound.into_bytes()),
            ("l.txt", b"bad name\nworse name\n".repeat(50)),
            // The header in the second half: comments up to it.
            (
                "l.txt",
                [
                    b"# c\n".repeat(100),
                    b"# fraudwall: ips\n198.18.1.0/24\na.test\n".to_vec(),
                ]
                .concat(),
            ),
        ];
        bytes[0].1.extend_from_slice(b"\xff\xfe.test\nlast.test");
        for (file, data) in &bytes {
            let compile = |split_min: usize| {
                let mut c = Compiler::new();
                c.set_split_min(split_min);
                let spec = ListSpec::from_path(Path::new(file));
                let report = c.add_source(&spec, data).map(|r| {
                    let diags: Vec<String> = r.diagnostics.iter().map(|d| d.to_string()).collect();
                    (r.stats, r.accepted, r.format, diags, r.omitted_diagnostics)
                });
                let report = report.map_err(|e| e.to_string());
                let bytes = report.is_ok().then(|| c.to_bytes().unwrap());
                (report, bytes)
            };
            let (once, halves) = (compile(usize::MAX), compile(0));
            assert_eq!(once.0, halves.0, "{file}");
            assert!(once.1 == halves.1, "{file}: the same bytes");
        }
    }

    /// Shards sorted and built apart, in parallel, are the bytes that one sorted pass through
    /// the sharded builder makes, with the same key hashes for the filter.
    #[test]
    fn shards_built_apart_are_the_bytes_of_one_pass() {
        let build = |sequential: bool| {
            let mut c = Compiler::new();
            c.set_shards(5);
            c.sequential = sequential;
            let a = c.add_list(list("a", ListKind::Block)).unwrap();
            let b = c.add_list(list("b", ListKind::Block)).unwrap();
            let ok = c.add_list(list("ok", ListKind::Allow)).unwrap();
            for i in (0..20_000).rev() {
                let n = format!("n{i}.site{}.test", i % 97);
                c.insert(a, &n, ListKind::Block, MatchMode::Subtree, Action::Sinkhole)
                    .unwrap();
                if i % 10 == 0 {
                    // Shared keys: alternates.
                    c.insert(b, &n, ListKind::Block, MatchMode::Exact, Action::Nxdomain)
                        .unwrap();
                    c.insert(
                        ok,
                        &n,
                        ListKind::Allow,
                        MatchMode::Subtree,
                        Action::Sinkhole,
                    )
                    .unwrap();
                }
            }
            // One-label keys go to every shard, shared ones too; addresses to shard 0.
            for tld in ["test", "zz", "example"] {
                c.insert(a, tld, ListKind::Block, MatchMode::Exact, Action::Sinkhole)
                    .unwrap();
                c.insert(b, tld, ListKind::Block, MatchMode::Exact, Action::Drop)
                    .unwrap();
            }
            c.insert_ip(
                a,
                "198.18.0.0/15".parse().unwrap(),
                ListKind::Block,
                Action::Sinkhole,
            );
            let mut out = Cursor::new(Vec::new());
            let mut hashes = Vec::new();
            let keys = c
                .build(&mut out, Path::new("<memory>"), Some(&mut hashes))
                .unwrap();
            hashes.sort();
            (out.into_inner(), keys, hashes)
        };
        let (one_pass, apart) = (build(true), build(false));
        assert_eq!(one_pass.1, 20_000 + 3 + 1);
        assert_eq!(one_pass.2.len() as u64, one_pass.1);
        assert!(one_pass.0 == apart.0, "the same bytes");
        assert_eq!(one_pass.1, apart.1);
        assert_eq!(one_pass.2, apart.2);
        let bl = Blocklist::from_bytes(apart.0).unwrap();
        assert!(bl.lookup("www.n7.site7.test").is_some());
        assert!(bl.matches("n10.site10.test").len() >= 3, "alternates kept");
    }
}
