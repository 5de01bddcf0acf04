//! One reload pass: sources → per-source cached FSTs → shrink guard → merged `active.fst` →
//! verified → swapped into the live `ArcSwap`.
//!
//! State directory layout:
//! ```text
//! <state_dir>/active.fst        the merged blocklist being served (replaced by rename)
//! <state_dir>/manifest.json     which source versions it holds: path, content hash, entries
//! <state_dir>/cache/<hash>.fst  one compiled file per source version, named by content hash
//! <state_dir>/remote/*.json     ETag / Last-Modified of remote lists
//! <state_dir>/force             flag: the next reload skips the shrink guard (then deleted)
//! ```

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use fst::Streamer;
use serde::{Deserialize, Serialize};
use siphasher::sip128::{Hasher128, SipHasher13};
use tracing::{debug, error, info, warn};

use super::BlocklistsConfig;
use super::guard::{self, Stamp};
use super::watch::{self, Fingerprint};
use super::{Trigger, fst_files, text_specs};
use crate::blocklist::compile::{
    VERSION, decode_table, encode_table, layout, merge_slot, write_file,
};
use crate::blocklist::shard::shards_for;
use crate::blocklist::{self, Blocklist, Compiler, ListInfo, ListSpec, Publisher};
use crate::metrics;

/// Diagnostics logged per newly compiled list; the rest are summarised.
const MAX_LOGGED_DIAGNOSTICS: usize = 20;

/// One source of entries: a text list or a compiled `.fst`.
#[derive(Clone, Debug)]
pub enum Source {
    /// A text list, parsed by format.
    Text(ListSpec),
    /// A compiled blocklist dropped into the directory.
    Fst(PathBuf),
}

impl Source {
    /// The file.
    pub fn path(&self) -> &Path {
        match self {
            Source::Text(s) => &s.path,
            Source::Fst(p) => p,
        }
    }
}

/// Every source, in merge order: config lists, text files by name, `.fst` files by name.
pub fn sources(cfg: &BlocklistsConfig) -> Vec<Source> {
    let mut out: Vec<Source> = text_specs(cfg).into_iter().map(Source::Text).collect();
    out.extend(fst_files(cfg).into_iter().map(Source::Fst));
    out
}

/// One accepted version of one source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Version {
    /// The source file.
    path: PathBuf,
    /// Content hash; the cache file is `cache/<hash>.fst`.
    hash: String,
    /// Entries accepted from it: the shrink guard's baseline.
    entries: u64,
}

/// What `active.fst` was built from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Manifest {
    versions: Vec<Version>,
}

/// What a pass asks of the reloader.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Look again after this long: some file was still being written.
    pub retry_after: Option<Duration>,
    /// A new snapshot was stored.
    pub swapped: bool,
}

/// The reloader's state between passes.
pub struct Pipeline {
    cfg: BlocklistsConfig,
    live: Publisher,
    manifest: Manifest,
    /// Problems already reported (path + content hash or error), so that a broken file is
    /// logged and counted once rather than at every pass.
    reported: HashSet<String>,
    /// The stamp of each file at the previous look, for the settle check.
    seen: HashMap<PathBuf, Stamp>,
    /// The directory as of the start of the last pass (the poll compares against it).
    fingerprint: Fingerprint,
    /// List names given to the metrics, to zero those that disappear.
    metric_lists: HashSet<String>,
    /// Compiled versions refused by the shrink guard, kept in the cache (not compiled again at
    /// every pass) until their file changes.
    refused: HashMap<PathBuf, String>,
}

impl Pipeline {
    /// The state for `cfg`, with the manifest of the last run if there is one.
    pub fn new(cfg: BlocklistsConfig, live: Publisher) -> Pipeline {
        let manifest = fs::read(cfg.state_dir.join("manifest.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Pipeline {
            cfg,
            live,
            manifest,
            reported: HashSet::new(),
            seen: HashMap::new(),
            fingerprint: Fingerprint::default(),
            metric_lists: HashSet::new(),
            refused: HashMap::new(),
        }
    }

    /// The config this pipeline runs.
    pub fn config(&self) -> &BlocklistsConfig {
        &self.cfg
    }

    /// The directory as seen at the start of the last pass.
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    fn active_path(&self) -> PathBuf {
        self.cfg.state_dir.join("active.fst")
    }

    fn cache_path(&self, hash: &str) -> PathBuf {
        self.cfg.state_dir.join("cache").join(format!("{hash}.fst"))
    }

    /// Serves the last compiled `active.fst` if it verifies; false if there is none or it is
    /// damaged (then the lists must be compiled first).
    pub fn serve_last(&mut self) -> bool {
        let path = self.active_path();
        if !path.exists() {
            return false;
        }
        match Blocklist::open(&path) {
            Ok(bl) => {
                info!(
                    "serving the last compiled lists: {} lists, {} names from {}; checking the sources in the background",
                    bl.lists().len(),
                    bl.len(),
                    path.display()
                );
                self.publish(bl);
                true
            }
            Err(e) => {
                warn!("{e}; compiling the lists before serving");
                self.manifest = Manifest::default();
                false
            }
        }
    }

    /// One pass. Never fails as a whole: what cannot be used keeps its previous version.
    pub fn reload(&mut self, trigger: Trigger) -> Outcome {
        let started = Instant::now();
        self.fingerprint = watch::fingerprint(&self.cfg);
        let mut outcome = Outcome::default();
        if let Err(e) = fs::create_dir_all(self.cfg.state_dir.join("cache")) {
            self.report_once(
                format!("state\0{e}"),
                format!(
                    "cannot create {}: {e}; lists are not reloaded",
                    self.cfg.state_dir.display()
                ),
            );
            return outcome;
        }
        // A directory that is missing or unreadable removes nothing: it may be mid-swap (renamed
        // away, the new one not yet renamed in) or on a file system that hiccuped.
        let dir_ok = match fs::read_dir(&self.cfg.dir) {
            Ok(_) => {
                self.reported.retain(|k| !k.starts_with("dir\0"));
                true
            }
            Err(e) => {
                let msg = if e.kind() == std::io::ErrorKind::NotFound {
                    format!("blocklists.dir {} does not exist", self.cfg.dir.display())
                } else {
                    format!(
                        "{}: cannot read list directory: {e}",
                        self.cfg.dir.display()
                    )
                };
                if self.reported.insert(format!("dir\0{msg}")) {
                    warn!(
                        "{msg}; the {} lists loaded from it keep serving, new ones are loaded once it is back",
                        self.manifest.versions.len()
                    );
                }
                false
            }
        };
        let force = self.take_force_flag();
        let previous: HashMap<PathBuf, Version> = self
            .manifest
            .versions
            .iter()
            .map(|v| (v.path.clone(), v.clone()))
            .collect();
        let sources = sources(&self.cfg);
        if sources.is_empty() && trigger == Trigger::Startup {
            warn!(
                "no list files in {}: nothing is blocked until one is added",
                self.cfg.dir.display()
            );
        }
        let mut next = Vec::with_capacity(sources.len());
        let now = SystemTime::now();
        for src in &sources {
            let path = src.path();
            let prev = previous.get(path);
            match self.version_of(src, prev, trigger, force, now) {
                Step::Use(v) => next.push(v),
                Step::Keep => next.extend(prev.cloned()),
                Step::Wait => {
                    debug!(
                        "{} is still changing; looking again shortly",
                        path.display()
                    );
                    outcome.retry_after = Some(self.cfg.debounce);
                    next.extend(prev.cloned());
                }
                Step::Gone => {}
            }
        }
        for v in &self.manifest.versions {
            if !next.iter().any(|n| n.path == v.path) {
                if dir_ok {
                    info!("list removed: {}", v.path.display());
                } else {
                    next.push(v.clone());
                }
            }
        }
        if next == self.manifest.versions && self.live.current().path() == Some(&self.active_path())
        {
            if trigger == Trigger::Sighup {
                info!("lists unchanged");
            } else {
                debug!("lists unchanged");
            }
            return outcome;
        }
        let t = Instant::now();
        let merged = self.merge(&next);
        debug!(
            "merged {} sources in {} ms",
            next.len(),
            t.elapsed().as_millis()
        );
        match merged {
            Ok(bl) => {
                let (lists, names) = (bl.lists().len(), bl.len());
                self.publish(bl);
                metrics::reload_succeeded(SystemTime::now());
                info!(
                    "lists reloaded: {lists} lists, {names} names in {} ms",
                    started.elapsed().as_millis()
                );
                self.manifest.versions = next;
                self.save_manifest();
                self.collect_garbage();
                outcome.swapped = true;
            }
            Err(e) => {
                error!("lists not reloaded: {e}; the previous lists keep serving");
                metrics::reload_failed();
            }
        }
        outcome
    }

    /// Decides which version of one source goes into the next snapshot.
    fn version_of(
        &mut self,
        src: &Source,
        prev: Option<&Version>,
        trigger: Trigger,
        force: bool,
        now: SystemTime,
    ) -> Step {
        let path = src.path();
        let stamp = match fs::metadata(path) {
            Ok(m) => Stamp::of(&m),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = format!("{}\0", path.display());
                self.reported.retain(|k| !k.starts_with(&key));
                self.seen.remove(path);
                self.refused.remove(path);
                return Step::Gone;
            }
            Err(e) => {
                self.not_loaded(path, &format!("{e}"), &format!("cannot stat: {e}"));
                return Step::Keep;
            }
        };
        let before = self.seen.insert(path.to_path_buf(), stamp);
        if trigger.waits_for_settle() && !guard::settled(stamp, before, now, self.cfg.debounce) {
            return Step::Wait;
        }
        let data = match fs::read(path) {
            Ok(d) => d,
            Err(e) => {
                let err = blocklist::Error::ReadList {
                    path: path.to_path_buf(),
                    source: e,
                };
                self.not_loaded(path, &err.to_string(), &err.to_string());
                return Step::Keep;
            }
        };
        // A writer that got in while we read: the content may be torn, look again.
        if fs::metadata(path).map(|m| Stamp::of(&m)).ok() != Some(stamp) {
            return Step::Wait;
        }
        let t = Instant::now();
        let hash = content_hash(src, &data);
        let cache = self.cache_path(&hash);
        let entries = match prev {
            Some(p) if p.hash == hash && cache.is_file() => p.entries,
            _ => match cached_entries(&cache) {
                Some(n) => n,
                None => match compile_source(src, &data, &cache) {
                    Ok(n) => {
                        debug!(
                            "compiled {}: {n} entries in {} ms",
                            path.display(),
                            t.elapsed().as_millis()
                        );
                        n
                    }
                    Err(e) => {
                        self.not_loaded(path, &hash, &e);
                        return Step::Keep;
                    }
                },
            },
        };
        if let Some(p) = prev.filter(|p| p.hash != hash)
            && let Some(lost) = guard::refuses(p.entries, entries, self.cfg.max_shrink)
        {
            if force {
                warn!(
                    "shrink guard overridden by {}: accepting {} with {entries} entries (was {})",
                    self.cfg.state_dir.join("force").display(),
                    path.display(),
                    p.entries
                );
            } else {
                let msg = format!(
                    "list refused by shrink guard: {}: {entries} entries, was {} ({:.0} % lost, limit {:.0} %); \
                     the previous version keeps serving until the file changes again, or touch {} and send SIGHUP to accept it",
                    path.display(),
                    p.entries,
                    lost * 100.0,
                    self.cfg.max_shrink * 100.0,
                    self.cfg.state_dir.join("force").display()
                );
                self.report_once(format!("{}\0{hash}", path.display()), msg);
                self.refused.insert(path.to_path_buf(), hash);
                return Step::Keep;
            }
        }
        self.reported
            .retain(|k| !k.starts_with(&format!("{}\0", path.display())));
        self.refused.remove(path);
        Step::Use(Version {
            path: path.to_path_buf(),
            hash,
            entries,
        })
    }

    /// Logs (once per `path` and `key`) that a file could not be used, and counts a failure.
    fn not_loaded(&mut self, path: &Path, key: &str, reason: &str) {
        let reason = if reason.starts_with(&path.display().to_string()) {
            reason.to_string()
        } else {
            format!("{}: {reason}", path.display())
        };
        self.report_once(
            format!("{}\0{key}", path.display()),
            format!("list not loaded: {reason}; the previous version keeps serving"),
        );
    }

    fn report_once(&mut self, key: String, msg: String) {
        if self.reported.insert(key) {
            error!("{msg}");
            metrics::reload_failed();
        }
    }

    /// Whether `<state_dir>/force` exists; it is removed so that it applies to one pass.
    fn take_force_flag(&self) -> bool {
        let flag = self.cfg.state_dir.join("force");
        if flag.exists() {
            let _ = fs::remove_file(&flag);
            info!(
                "{} found: the shrink guard is off for this reload",
                flag.display()
            );
            true
        } else {
            false
        }
    }

    /// Merges the chosen versions into a new `active.fst` and opens (verifies) it. Each cache
    /// file's header and body checksum are checked here; the merged result is checked in full
    /// (FST structure included) when it is opened.
    ///
    /// The per-source FSTs are already sorted and normalised, so this is one streaming union
    /// (no parsing, no sorting): each key's slots are renumbered to the merged list table and
    /// combined with the compiler's rule (first list wins, allow beats block). The list table
    /// is encoded by the [`Compiler`] itself; the result is verified by [`Blocklist::open`]
    /// before it is served.
    fn merge(&self, versions: &[Version]) -> Result<Blocklist, String> {
        let mut files = Vec::with_capacity(versions.len());
        let mut bases = Vec::with_capacity(versions.len());
        let mut table = Compiler::new();
        for v in versions {
            let cache = self.cache_path(&v.hash);
            let at = |e: &dyn std::fmt::Display| format!("{}: {e}", cache.display());
            let bytes = fs::read(&cache).map_err(|e| at(&e))?;
            let parts = layout(&bytes, &cache).map_err(|e| e.to_string())?;
            let lists = decode_table(&bytes[parts.table]).map_err(|e| at(&e))?;
            bases.push(table.lists().len() as u32);
            for l in lists {
                table.add_list(l).map_err(|e| e.to_string())?;
            }
            files.push((cache, bytes, parts.shards));
        }
        if let [(_, bytes, _)] = &files[..] {
            // One source: the merged file would be this one byte for byte (its list ids need no
            // renumbering), so skip the union and the second FST build.
            self.replace_active(|w| {
                std::io::Write::write_all(w, bytes).map_err(|e| e.to_string())
            })?;
            return Blocklist::open(&self.active_path()).map_err(|e| e.to_string());
        }
        let table_bytes = encode_table(table.lists());
        let mut maps = Vec::new();
        // Which source each stream of the union comes from (a source has one per shard).
        let mut stream_source = Vec::new();
        for (src, (cache, bytes, shards)) in files.iter().enumerate() {
            for r in shards {
                let m = fst::Map::new(&bytes[r.clone()])
                    .map_err(|e| format!("{}: {e}", cache.display()))?;
                maps.push(m);
                stream_source.push(src);
            }
        }
        let upper_bound: u64 = maps.iter().map(|m| m.len() as u64).sum();
        let mut op = fst::map::OpBuilder::new();
        for m in &maps {
            op.push(m.stream());
        }
        let mut union = op.union();
        let shards = shards_for(upper_bound);
        self.replace_active(|w| {
            write_file(w, &self.active_path(), &table_bytes, shards, |builder| {
                let mut ivs: Vec<(usize, u64)> = Vec::new();
                while let Some((key, values)) = union.next() {
                    ivs.clear();
                    ivs.extend(values.iter().map(|iv| (stream_source[iv.index], iv.value)));
                    // Sources in merge order, whatever order the union yields them in.
                    ivs.sort_unstable_by_key(|iv| iv.0);
                    let (mut subtree, mut exact) = (0u32, 0u32);
                    for &(src, value) in &ivs {
                        let base = bases[src];
                        subtree = merge_slot(subtree, renumber(value as u32, base));
                        exact = merge_slot(exact, renumber((value >> 32) as u32, base));
                    }
                    builder.insert(key, u64::from(subtree) | (u64::from(exact) << 32))?;
                }
                Ok(())
            })
            .map(|_| ())
            .map_err(|e| e.to_string())
        })?;
        Blocklist::open(&self.active_path()).map_err(|e| e.to_string())
    }

    /// Writes a new `active.fst` with `write` into a temporary file beside it and renames it into
    /// place, so the file a running server has mapped is never modified.
    fn replace_active(
        &self,
        write: impl FnOnce(&mut std::io::BufWriter<fs::File>) -> Result<(), String>,
    ) -> Result<(), String> {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let tmp = self
            .cfg
            .state_dir
            .join(format!(".active.fst.tmp-{}-{nanos}", std::process::id()));
        let written = (|| -> Result<(), String> {
            let werr = |e: &dyn std::fmt::Display| format!("{}: {e}", tmp.display());
            let file = fs::File::options()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .map_err(|e| werr(&e))?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
            write(&mut w)?;
            std::io::Write::flush(&mut w).map_err(|e| werr(&e))?;
            // No fsync: this file is only a cache of the sources. After a crash a torn file
            // fails its CRC at start and the lists are compiled again before serving.
            drop(w);
            fs::rename(&tmp, self.active_path()).map_err(|e| werr(&e))?;
            Ok(())
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written
    }

    /// Stores `bl` as the live blocklist and updates the per-list metrics.
    fn publish(&mut self, bl: Blocklist) {
        let mut names = HashSet::new();
        for l in bl.lists() {
            metrics::set_list_entries(&l.name, l.entries);
            names.insert(l.name.clone());
        }
        for gone in self.metric_lists.difference(&names) {
            metrics::set_list_entries(gone, 0);
        }
        self.metric_lists = names;
        self.live.publish(bl);
    }

    fn save_manifest(&self) {
        let path = self.cfg.state_dir.join("manifest.json");
        let json = serde_json::to_vec_pretty(&self.manifest).unwrap_or_default();
        if let Err(e) = super::write_atomic(&path, &json) {
            warn!("{}: cannot write: {e}", path.display());
        }
    }

    /// Removes cached versions no longer in the manifest (mapped files stay valid until unmapped).
    fn collect_garbage(&self) {
        let keep: HashSet<String> = self
            .manifest
            .versions
            .iter()
            .map(|v| &v.hash)
            .chain(self.refused.values())
            .map(|h| format!("{h}.fst"))
            .collect();
        let Ok(rd) = fs::read_dir(self.cfg.state_dir.join("cache")) else {
            return;
        };
        for e in rd.flatten() {
            if !keep.contains(&*e.file_name().to_string_lossy()) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

/// The decision for one source in one pass.
enum Step {
    /// This version goes in.
    Use(Version),
    /// The previous version (if any) stays.
    Keep,
    /// Still being written: the previous version stays and the file is looked at again.
    Wait,
    /// The file is gone: the list is removed.
    Gone,
}

/// The cache key of a source version: its content, its settings (name, kind, action, …) and the
/// compiler's version, so a change to any of them compiles anew.
fn content_hash(src: &Source, data: &[u8]) -> String {
    use std::hash::Hasher;
    let mut h = SipHasher13::new_with_keys(0x6672_6175_6477_616c, 0x6c69_7374_7300_0001);
    h.write(format!("{}\0{VERSION}\0{src:?}\0", env!("CARGO_PKG_VERSION")).as_bytes());
    h.write(data);
    format!("{:032x}", h.finish128().as_u128())
}

/// Compiles one source version into `cache`; returns its entry count or the reason it cannot
/// be used.
fn compile_source(src: &Source, data: &[u8], cache: &Path) -> Result<u64, String> {
    match src {
        Source::Text(spec) => {
            let mut c = Compiler::new();
            let report = c.add_source(spec, data).map_err(|e| e.to_string())?;
            let d = &report.diagnostics;
            for diag in d.iter().take(MAX_LOGGED_DIAGNOSTICS) {
                warn!("{diag}");
            }
            if d.len() > MAX_LOGGED_DIAGNOSTICS {
                warn!(
                    "{}: … and {} more problems",
                    spec.path.display(),
                    d.len() - MAX_LOGGED_DIAGNOSTICS
                );
            }
            c.write(cache).map_err(|e| e.to_string())?;
            Ok(report.accepted)
        }
        Source::Fst(path) => {
            let lists = verify(data).map_err(|e| {
                // The engine names in-memory files "<memory>"; say which file it was.
                let e = e.to_string();
                let e = e.strip_prefix("<memory>: ").unwrap_or(&e).to_string();
                format!("{}: {e}", path.display())
            })?;
            super::write_atomic(cache, data).map_err(|e| format!("{}: {e}", cache.display()))?;
            Ok(lists.iter().map(|l| l.entries).sum())
        }
    }
}

/// Entry count of an already compiled version, if its cache file is there and verifies.
fn cached_entries(cache: &Path) -> Option<u64> {
    let bytes = fs::read(cache).ok()?;
    let lists = own_lists(&bytes, cache).ok()?;
    Some(lists.iter().map(|l| l.entries).sum())
}

/// The list table of a file this pipeline compiled into its cache, after checking its header and
/// body checksum (the full check, FST structure included, ran when it was written).
fn own_lists(bytes: &[u8], path: &Path) -> Result<Vec<ListInfo>, String> {
    let parts = layout(bytes, path).map_err(|e| e.to_string())?;
    decode_table(&bytes[parts.table]).map_err(|e| format!("{}: {e}", path.display()))
}

/// Verifies a compiled file with the engine's own checks; returns its list table.
fn verify(bytes: &[u8]) -> Result<Vec<ListInfo>, blocklist::Error> {
    Ok(Blocklist::from_bytes(bytes.to_vec())?.lists().to_vec())
}

/// A slot of a per-source file with its list id moved up by `base` (see `blocklist::compile`:
/// bit 0 present, bit 1 allow, bits 2..5 action, bits 5.. list id).
fn renumber(slot: u32, base: u32) -> u32 {
    if slot & 1 == 0 {
        0
    } else {
        (slot & 0x1f) | (((slot >> 5) + base) << 5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocklist::{Action, ListKind, MatchMode, SharedBlocklist};
    use crate::lists::specs;

    fn cfg(dir: &Path) -> BlocklistsConfig {
        let text = format!("blocklists:\n  dir: {}\n  debounce_ms: 50\n", dir.display());
        BlocklistsConfig::from_yaml(&text, dir)
    }

    fn verdict(live: &SharedBlocklist, name: &str) -> Option<ListKind> {
        live.load().lookup(name).map(|v| v.kind)
    }

    #[test]
    fn slots_renumber_and_merge_like_the_compiler() {
        let block = |list: u32| 1 | (list << 5);
        let allow = |list: u32| 1 | 2 | (list << 5);
        assert_eq!(renumber(0, 7), 0);
        assert_eq!(renumber(block(1) | (3 << 2), 7), block(8) | (3 << 2));
        assert_eq!(merge_slot(0, block(2)), block(2));
        assert_eq!(merge_slot(block(1), block(2)), block(1));
        assert_eq!(merge_slot(block(1), allow(2)), allow(2));
        assert_eq!(merge_slot(allow(1), block(0)), allow(1));
        assert_eq!(merge_slot(block(1), 0), block(1));
    }

    /// The streaming union must give every name the verdict a one-shot `compile` gives it.
    #[test]
    fn merged_file_matches_a_full_compile() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("a.txt"), "shop.test\n*.wild.test\nboth.test\n").unwrap();
        fs::write(d.join("allowlist.txt"), "ok.shop.test\nboth.test\n").unwrap();
        fs::write(
            d.join("b.hosts"),
            "0.0.0.0 shop.test\n0.0.0.0 exact.b.test\n0.0.0.0 deep.ok.shop.test\n",
        )
        .unwrap();
        fs::write(d.join("c.txt"), "adblock-like.test\nexact.b.test\n").unwrap();
        let text = format!(
            "blocklists:\n  dir: {}\n  lists:\n    - file: c.txt\n      match: exact\n      action: nxdomain\n",
            d.display()
        );
        let cfg = BlocklistsConfig::from_yaml(&text, d);
        let (live, publisher) = SharedBlocklist::new(Blocklist::empty());
        let mut p = Pipeline::new(cfg.clone(), publisher);
        p.reload(Trigger::Startup);
        let report = blocklist::compile(&d.join("full.fst"), &specs(&cfg)).unwrap();
        assert!(report.failed.is_empty());
        let full = Blocklist::open(&d.join("full.fst")).unwrap();
        let merged = live.load();
        assert_eq!(merged.len(), full.len());
        for n in [
            "shop.test",
            "www.shop.test",
            "ok.shop.test",
            "deep.ok.shop.test",
            "wild.test",
            "x.wild.test",
            "both.test",
            "exact.b.test",
            "sub.exact.b.test",
            "adblock-like.test",
            "www.adblock-like.test",
            "unlisted.test",
        ] {
            let (m, f) = (merged.lookup(n), full.lookup(n));
            let brief = |v: Option<crate::blocklist::Verdict>, bl: &Blocklist| {
                v.map(|v| {
                    (
                        v.kind,
                        v.action,
                        v.match_mode,
                        bl.list(&v).unwrap().name.clone(),
                    )
                })
            };
            assert_eq!(brief(m, &merged), brief(f, &full), "{n}");
        }
    }

    #[test]
    fn pass_merges_guards_and_removes() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let names: String = (0..100).map(|i| format!("n{i}.fraud.test\n")).collect();
        fs::write(d.join("big.txt"), &names).unwrap();
        fs::write(d.join("small.txt"), "small.test\n").unwrap();
        let (live, publisher) = SharedBlocklist::new(Blocklist::empty());
        let mut p = Pipeline::new(cfg(d), publisher);
        assert!(!p.serve_last());
        assert!(p.reload(Trigger::Startup).swapped);
        assert_eq!(verdict(&live, "n7.fraud.test"), Some(ListKind::Block));
        assert_eq!(verdict(&live, "small.test"), Some(ListKind::Block));

        // Unchanged: no new snapshot.
        assert!(!p.reload(Trigger::Sighup).swapped);

        // Cut to 10 %: refused, the old entries keep serving.
        let cut: String = (0..10).map(|i| format!("n{i}.fraud.test\n")).collect();
        fs::write(d.join("big.txt"), &cut).unwrap();
        p.reload(Trigger::Sighup);
        assert_eq!(verdict(&live, "n77.fraud.test"), Some(ListKind::Block));

        // Forced: accepted.
        fs::write(d.join(".fraudwall/force"), "").unwrap();
        assert!(p.reload(Trigger::Sighup).swapped);
        assert_eq!(verdict(&live, "n77.fraud.test"), None);
        assert_eq!(verdict(&live, "n7.fraud.test"), Some(ListKind::Block));

        // A binary file: the previous version stays.
        fs::write(d.join("small.txt"), b"\0\x01\x02").unwrap();
        p.reload(Trigger::Sighup);
        assert_eq!(verdict(&live, "small.test"), Some(ListKind::Block));

        // Removal is not guarded.
        fs::remove_file(d.join("small.txt")).unwrap();
        assert!(p.reload(Trigger::Sighup).swapped);
        assert_eq!(verdict(&live, "small.test"), None);

        // A restart serves the state at once and finds nothing to do.
        let (live2, publisher) = SharedBlocklist::new(Blocklist::empty());
        let mut p2 = Pipeline::new(cfg(d), publisher);
        assert!(p2.serve_last());
        assert_eq!(verdict(&live2, "n7.fraud.test"), Some(ListKind::Block));
        assert!(!p2.reload(Trigger::Startup).swapped);
    }

    #[test]
    fn fst_drop_merges_with_allow_winning() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut c = Compiler::new();
        let id = c
            .add_list(ListInfo {
                name: "workstation".into(),
                path: "ws.txt".into(),
                kind: ListKind::Block,
                action: Action::Nxdomain,
                category: "fraud".into(),
                ede: 15,
                entries: 0,
                format: blocklist::Format::Plain,
                match_mode: MatchMode::Subtree,
            })
            .unwrap();
        // Sharded like a large compiled list, with a one-label key that every shard holds.
        c.set_shards(3);
        let many: Vec<String> = (0..30).map(|i| format!("n{i}.test")).collect();
        for n in ["shop.fst.test", "ok.fst.test", "zz"]
            .into_iter()
            .chain(many.iter().map(String::as_str))
        {
            c.insert(id, n, ListKind::Block, MatchMode::Subtree, Action::Nxdomain)
                .unwrap();
        }
        fs::write(d.join("drop.fst"), c.to_bytes().unwrap()).unwrap();
        fs::write(d.join("allowlist.txt"), "ok.fst.test\n").unwrap();
        let (live, publisher) = SharedBlocklist::new(Blocklist::empty());
        let mut p = Pipeline::new(cfg(d), publisher);
        p.reload(Trigger::Startup);
        let v = live.load().lookup("www.shop.fst.test").unwrap();
        assert_eq!((v.kind, v.action), (ListKind::Block, Action::Nxdomain));
        assert_eq!(verdict(&live, "ok.fst.test"), Some(ListKind::Allow));
        for n in many.iter().map(String::as_str).chain(["a.b.zz"]) {
            assert_eq!(verdict(&live, n), Some(ListKind::Block), "{n}");
        }
        assert_eq!(live.load().len(), 2 + 1 + 30);
    }
}
