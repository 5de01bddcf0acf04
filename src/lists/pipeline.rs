//! One reload pass: sources → per-source cached FSTs → shrink guard → served at once as layers
//! of those files → merged `active.fst` → verified → swapped into the live `ArcSwap`.
//!
//! A change is enforced as soon as its own source is compiled: the pass publishes the
//! per-source files as one layered snapshot ([`Blocklist::layered`], answering exactly as their
//! merge will), and merges them a moment later, once changes have paused ([`MERGE_DELAY`]),
//! since a layered snapshot costs a lookup per source. Text lines appended to a list (how
//! analysts add names) are compiled on their own and layered over the list's last compiled
//! version; the merge compiles the list whole again. So is a feed's IXFR: the records of the
//! owners it touched ([`super::feeds::patch`]) are compiled on their own and layered over the
//! zone's last compiled version, in which the keys they replace are hidden
//! ([`crate::blocklist::Hidden`]).
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
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use siphasher::sip128::{Hasher128, SipHasher13};
use tracing::{debug, error, info, warn};

use super::feeds::{Patch, Patches, serial_newer, xfr::Soa};
use super::guard;
use super::scan::{Fingerprint, Scan, Scanned, Source};
use super::watch::Written;
use super::{BlocklistsConfig, Error, Trigger};
use crate::atomic_file::{self, Durability};
use crate::blocklist::format::VERSION;
use crate::blocklist::merge::{Part, merge_into};
use crate::blocklist::{self, Blocklist, Compiler, Format, Hidden, ListSpec, Publisher, source};
use crate::metrics;

/// Diagnostics logged per newly compiled list; the rest are summarised.
const MAX_LOGGED_DIAGNOSTICS: usize = 20;

/// How long changes must pause before layers are merged: a burst of appends is layered, then
/// merged once.
pub const MERGE_DELAY: Duration = Duration::from_secs(1);
/// Longest a layered snapshot is served while changes keep coming, before a merge runs anyway.
const MAX_LAYERED: Duration = Duration::from_secs(10);
/// When a merge failed, the next try.
const MERGE_RETRY: Duration = Duration::from_secs(30);
/// Appends layered over one list before it is compiled whole again at once.
const MAX_APPENDS: usize = 16;

/// One accepted version of one source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Version {
    /// The source file.
    path: PathBuf,
    /// Content hash; the cache file is `cache/<hash>.fst`.
    hash: String,
    /// Entries accepted from it: the shrink guard's baseline.
    entries: u64,
    /// Bytes of the file it was read from: lines appended after them are an append.
    #[serde(default)]
    len: u64,
    /// Set for a version made by appends and not yet compiled whole (only ever in memory): it
    /// is served as this compiled version of the list, then one compiled file per append.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    base: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    appends: Vec<String>,
    /// The SOA serial of a feed's zone file: what its patches apply to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    serial: Option<u32>,
}

impl Version {
    /// The compiled files (cache names) that serve this version, in list-table order.
    fn files(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.base.as_deref().unwrap_or(&self.hash))
            .chain(self.appends.iter().map(String::as_str))
    }
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
    /// Layers are being served: merge them after this long, unless another pass comes first.
    pub merge_after: Option<Duration>,
}

/// The reloader's state between passes.
pub struct Pipeline {
    cfg: BlocklistsConfig,
    live: Publisher,
    /// What `active.fst` holds (and `manifest.json` says).
    manifest: Manifest,
    /// What the live snapshot holds: the manifest's versions, or newer ones served as layers
    /// until the next merge.
    served: Vec<Version>,
    /// Since when layers have been served.
    layered_since: Option<Instant>,
    /// When layers were last published.
    last_change: Instant,
    /// Compiled files opened for layered snapshots, by cache name, kept between passes so that
    /// a change opens only what changed.
    opened: HashMap<String, Arc<Blocklist>>,
    /// The sources of the last pass, by path: what a merge compiles appended lists from.
    sources: HashMap<PathBuf, Source>,
    /// Files the watcher saw completed: read without waiting for them to settle.
    written: Written,
    /// What the feeds' IXFRs changed, to serve before their zones are compiled whole.
    patches: Patches,
    /// The keys each patch file replaces in the files under it, by cache name.
    hidden: HashMap<String, Arc<Hidden>>,
    /// Versions (content hashes) of dropped `.fst` files that passed the check of their
    /// structure but failed the full one: not served again until the file changes.
    rejected: HashSet<String>,
    /// Problems already reported (path + content hash or error), so that a broken file is
    /// logged and counted once rather than at every pass.
    reported: HashSet<String>,
    /// The stamp of each file at the previous look, for the settle check.
    seen: HashMap<PathBuf, guard::Stamp>,
    /// The stamp of each file when the version served was read from it: a file that still has
    /// it is not read again (but at start and on SIGHUP).
    read_at: HashMap<PathBuf, guard::Stamp>,
    /// The directory as of the start of the last pass (the poll compares against it).
    fingerprint: Fingerprint,
    /// List names given to the metrics, to zero those that disappear.
    metric_lists: HashSet<String>,
    /// Compiled versions refused by the shrink guard, kept in the cache (not compiled again at
    /// every pass) until their file changes.
    refused: HashMap<PathBuf, String>,
    /// The last problem reported, for the start-up error when nothing could be loaded.
    last_problem: Option<String>,
}

impl Pipeline {
    /// The state for `cfg`, with the manifest of the last run if there is one.
    pub fn new(cfg: BlocklistsConfig, live: Publisher) -> Pipeline {
        let manifest = read_manifest(&cfg);
        Pipeline {
            cfg,
            live,
            served: manifest.versions.clone(),
            manifest,
            layered_since: None,
            last_change: Instant::now(),
            opened: HashMap::new(),
            sources: HashMap::new(),
            written: Written::default(),
            patches: Patches::default(),
            hidden: HashMap::new(),
            rejected: HashSet::new(),
            reported: HashSet::new(),
            seen: HashMap::new(),
            read_at: HashMap::new(),
            fingerprint: Fingerprint::default(),
            metric_lists: HashSet::new(),
            refused: HashMap::new(),
            last_problem: None,
        }
    }

    /// Forgets everything but what is on disk, as a restart would: after a pass that panicked,
    /// whatever it left half-done in memory is not trusted.
    pub fn reset(&mut self) {
        self.manifest = read_manifest(&self.cfg);
        // Whatever is live stays live; the next pass compares the sources with what is on disk
        // and serves anew whatever differs.
        self.served = self.manifest.versions.clone();
        self.layered_since = None;
        self.opened.clear();
        self.reported.clear();
        self.seen.clear();
        self.read_at.clear();
        self.refused.clear();
        self.fingerprint = Fingerprint::default();
    }

    /// The last problem this pipeline reported.
    pub fn last_problem(&self) -> Option<&str> {
        self.last_problem.as_deref()
    }

    /// Where the watcher names files it saw completed (closed after writing, renamed in).
    pub fn written(&self) -> Written {
        Arc::clone(&self.written)
    }

    /// Where the feeds queue what their IXFRs changed.
    pub fn patches(&self) -> Patches {
        self.patches.clone()
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
                self.publish(bl, &HashMap::new());
                true
            }
            Err(e) => {
                warn!("{e}; compiling the lists before serving");
                self.manifest = Manifest::default();
                self.served.clear();
                false
            }
        }
    }

    /// One pass. Never fails as a whole: what cannot be used keeps its previous version.
    pub fn reload(&mut self, trigger: Trigger) -> Outcome {
        let started = Instant::now();
        let scan = Scan::read(&self.cfg);
        self.fingerprint = scan.fingerprint();
        let mut outcome = Outcome::default();
        if let Err(source) = fs::create_dir_all(self.cfg.state_dir.join("cache")) {
            let e = Error::StateDir {
                path: self.cfg.state_dir.clone(),
                source,
            };
            self.report_once(
                format!("state\0{e}"),
                format!("{e}; lists are not reloaded"),
            );
            return outcome;
        }
        // A directory that is missing or unreadable removes nothing: it may be mid-swap (renamed
        // away, the new one not yet renamed in) or on a file system that hiccuped.
        let dir_ok = match &scan.dir_error {
            None => {
                self.reported.retain(|k| !k.starts_with("dir\0"));
                true
            }
            Some(e) => {
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
                        self.served.len()
                    );
                }
                false
            }
        };
        let force = self.take_force_flag();
        let previous: HashMap<PathBuf, Version> = self
            .served
            .iter()
            .map(|v| (v.path.clone(), v.clone()))
            .collect();
        self.sources = scan
            .sources
            .iter()
            .map(|s| (s.source.path().to_path_buf(), s.source.clone()))
            .collect();
        let sources = &scan.sources;
        if sources.is_empty() && trigger == Trigger::Startup {
            warn!(
                "no list files in {}: nothing is blocked until one is added",
                self.cfg.dir.display()
            );
        }
        let mut next = Vec::with_capacity(sources.len());
        let now = SystemTime::now();
        let written = std::mem::take(&mut *self.written.lock().unwrap_or_else(|e| e.into_inner()));
        for src in sources {
            let path = src.source.path();
            let prev = previous.get(path);
            let settle = trigger.waits_for_settle() && !written.contains(path);
            let reread = matches!(trigger, Trigger::Startup | Trigger::Sighup);
            match self.version_of(src, prev, settle, reread, force, now) {
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
        for v in &self.served {
            if !next.iter().any(|n| n.path == v.path) {
                if dir_ok {
                    info!("list removed: {}", v.path.display());
                } else {
                    next.push(v.clone());
                }
            }
        }
        let changed = next != self.served;
        // At start nothing is served yet, or the last merge is: merge at once.
        let layered = changed && trigger != Trigger::Startup && self.publish_layers(&next, started);
        if changed {
            self.served = next;
            if layered {
                outcome.swapped = true;
                self.layered_since.get_or_insert_with(Instant::now);
                self.last_change = Instant::now();
            }
        }
        let merged = self.served == self.manifest.versions
            && self.live.current().path() == Some(&self.active_path());
        if merged {
            if !changed {
                if trigger == Trigger::Sighup {
                    info!("lists unchanged");
                } else {
                    debug!("lists unchanged");
                }
            }
            self.layered_since = None;
            self.warm();
            return outcome;
        }
        // Layers wait for changes to pause; anything else out of step (a change that could not
        // be layered, a merge that failed) is merged now.
        let merge_now = matches!(trigger, Trigger::Merge | Trigger::Startup)
            || !self.live.current().is_layered()
            || self
                .layered_since
                .is_some_and(|t| t.elapsed() >= MAX_LAYERED);
        if !merge_now {
            outcome.merge_after = Some(MERGE_DELAY.saturating_sub(self.last_change.elapsed()));
            return outcome;
        }
        if self.merge_served(started) {
            outcome.swapped = true;
            // What was compiled in this pass is open already; at start the rest is opened here.
            self.warm();
        } else {
            outcome.merge_after = Some(MERGE_RETRY);
        }
        outcome
    }

    /// Publishes `versions` as layers of their compiled files; false (and logged) if some file
    /// cannot be opened, which leaves the merge to serve them.
    fn publish_layers(&mut self, versions: &[Version], started: Instant) -> bool {
        let mut files = Vec::new();
        for v in versions {
            let names: Vec<&str> = v.files().collect();
            for (i, h) in names.iter().enumerate() {
                // A patch hides the keys it replaces in the files under it.
                let hidden: Vec<Arc<Hidden>> = names[i + 1..]
                    .iter()
                    .filter_map(|later| self.hidden.get(*later).cloned())
                    .collect();
                files.push((h.to_string(), hidden));
            }
        }
        let layered = files
            .into_iter()
            .map(|(h, hidden)| Ok((self.open_cached(&h)?, hidden)))
            .collect::<Result<Vec<_>, Error>>()
            .and_then(|files| Ok(Blocklist::layered_hiding(&files)?));
        match layered {
            Ok(bl) => {
                let (lists, names) = (bl.lists().len(), bl.len());
                let files = versions.iter().flat_map(Version::files).count();
                let totals = self.layered_totals(versions);
                self.publish(bl, &totals);
                metrics::reload_succeeded(SystemTime::now());
                info!(
                    "lists updated: {lists} lists, {names} names in {} ms (served from {files} compiled files until they are merged)",
                    started.elapsed().as_millis(),
                );
                true
            }
            Err(e) => {
                warn!("{e}; merging the lists before serving the change");
                false
            }
        }
    }

    /// The compiled file `hash` of the cache, opened (and verified) once and kept.
    fn open_cached(&mut self, hash: &str) -> Result<Arc<Blocklist>, Error> {
        if let Some(bl) = self.opened.get(hash) {
            return Ok(Arc::clone(bl));
        }
        let bl = Arc::new(Blocklist::open(&self.cache_path(hash))?);
        self.opened.insert(hash.to_owned(), Arc::clone(&bl));
        Ok(bl)
    }

    /// Opens the compiled files of what is served, so that the next change opens only its own;
    /// forgets files no longer served.
    fn warm(&mut self) {
        let keep: HashSet<String> = self
            .served
            .iter()
            .flat_map(Version::files)
            .map(str::to_owned)
            .collect();
        self.opened.retain(|h, _| keep.contains(h));
        self.hidden.retain(|h, _| keep.contains(h));
        for h in keep {
            if let Err(e) = self.open_cached(&h) {
                debug!("{e}");
            }
        }
    }

    /// Compiles appended lists whole, merges what is served into a new `active.fst` and serves
    /// it; false if that failed (what is live stays).
    fn merge_served(&mut self, started: Instant) -> bool {
        self.check_fully();
        let mut whole = self.served.clone();
        for v in whole.iter_mut().filter(|v| v.base.is_some()) {
            if let Err(e) = self.compile_whole(v) {
                debug!("{e}; merging later");
                return false;
            }
        }
        let t = Instant::now();
        let merged = self.merge(&whole);
        debug!(
            "merged {} sources in {} ms",
            whole.len(),
            t.elapsed().as_millis()
        );
        match merged {
            Ok(bl) => {
                let (lists, names) = (bl.lists().len(), bl.len());
                self.publish(bl, &HashMap::new());
                metrics::reload_succeeded(SystemTime::now());
                info!(
                    "lists reloaded: {lists} lists, {names} names in {} ms",
                    started.elapsed().as_millis()
                );
                self.manifest.versions = whole.clone();
                self.served = whole;
                self.layered_since = None;
                self.save_manifest();
                self.collect_garbage();
                true
            }
            Err(e) => {
                error!("lists not merged: {e}; the lists being served keep serving");
                metrics::reload_failed();
                false
            }
        }
    }

    /// Checks in full the files served after a check of their structure only (dropped `.fst`
    /// files, [`Blocklist::check_for_layer`]); one that fails is withdrawn, its previous version
    /// (if any) served again.
    fn check_fully(&mut self) {
        let partly: Vec<String> = self
            .opened
            .iter()
            .filter(|(_, bl)| bl.is_partly_checked())
            .map(|(h, _)| h.clone())
            .collect();
        let mut failed = Vec::new();
        for h in partly {
            match Blocklist::open(&self.cache_path(&h)) {
                Ok(bl) => {
                    self.opened.insert(h, Arc::new(bl));
                }
                Err(e) => {
                    self.opened.remove(&h);
                    failed.push((h, e));
                }
            }
        }
        if failed.is_empty() {
            return;
        }
        for (h, e) in failed {
            let Some(v) = self.served.iter().position(|v| v.hash == h) else {
                continue;
            };
            let path = self.served[v].path.clone();
            let e = Error::from(e);
            self.not_loaded(&path, &h, &e);
            let _ = fs::remove_file(self.cache_path(&h));
            self.rejected.insert(h);
            match self.manifest.versions.iter().find(|m| m.path == path) {
                Some(prev) => self.served[v] = prev.clone(),
                None => {
                    self.served.remove(v);
                }
            }
        }
        let served = self.served.clone();
        self.publish_layers(&served, Instant::now());
    }

    /// Compiles a version made by appends whole, from its file as it was then.
    fn compile_whole(&mut self, v: &mut Version) -> Result<(), String> {
        let src = self
            .sources
            .get(&v.path)
            .ok_or_else(|| format!("{} is gone", v.path.display()))?;
        let data = fs::read(&v.path).map_err(|e| format!("{}: {e}", v.path.display()))?;
        let then = usize::try_from(v.len)
            .ok()
            .and_then(|n| data.get(..n))
            .filter(|d| content_hash(src, d) == v.hash)
            .ok_or_else(|| format!("{} changed again", v.path.display()))?;
        let cache = self.cache_path(&v.hash);
        let entries = match cached_entries(&cache) {
            Some(n) => n,
            None => {
                let (n, bl) = compile_source(src, then, &cache).map_err(|e| e.to_string())?;
                self.opened.insert(v.hash.clone(), Arc::new(bl));
                n
            }
        };
        v.entries = entries;
        v.base = None;
        v.appends.clear();
        Ok(())
    }

    /// Decides which version of one source goes into the next snapshot.
    fn version_of(
        &mut self,
        scanned: &Scanned,
        prev: Option<&Version>,
        settle: bool,
        reread: bool,
        force: bool,
        now: SystemTime,
    ) -> Step {
        let src = &scanned.source;
        let path = src.path();
        let stamp = match &scanned.stamp {
            Ok(stamp) => *stamp,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = format!("{}\0", path.display());
                self.reported.retain(|k| !k.starts_with(&key));
                self.seen.remove(path);
                self.read_at.remove(path);
                self.refused.remove(path);
                return Step::Gone;
            }
            Err(e) => {
                let err = Error::Stat {
                    path: path.to_path_buf(),
                    source: std::io::Error::new(e.kind(), e.to_string()),
                };
                self.not_loaded(path, &e.to_string(), &err);
                return Step::Keep;
            }
        };
        let before = self.seen.insert(path.to_path_buf(), stamp);
        if let Some(p) = prev
            && !reread
            && self.read_at.get(path) == Some(&stamp)
        {
            return Step::Use(p.clone());
        }
        if settle && !guard::settled(stamp, before, now, self.cfg.debounce) {
            return Step::Wait;
        }
        let data = match fs::read(path) {
            Ok(d) => d,
            Err(source) => {
                let err = Error::from(blocklist::Error::ReadList {
                    path: path.to_path_buf(),
                    source,
                });
                self.not_loaded(path, &err.to_string(), &err);
                return Step::Keep;
            }
        };
        // A writer that got in while we read: the content may be torn, look again.
        if fs::metadata(path).map(|m| guard::Stamp::of(&m)).ok() != Some(stamp) {
            return Step::Wait;
        }
        let t = Instant::now();
        let hash = content_hash(src, &data);
        if let Some(p) = prev {
            if p.hash == hash && p.files().all(|h| self.cache_path(h).is_file()) {
                self.refused.remove(path);
                self.read_at.insert(path.to_path_buf(), stamp);
                return Step::Use(p.clone());
            }
            if let Some(v) = self.patched(src, p, &data, &hash, t) {
                self.reported
                    .retain(|k| !k.starts_with(&format!("{}\0", path.display())));
                self.read_at.insert(path.to_path_buf(), stamp);
                return Step::Use(v);
            }
            if let Some(v) = self.appended(src, p, &data, &hash) {
                debug!(
                    "compiled the lines appended to {}: {} entries in {} ms",
                    path.display(),
                    v.entries - p.entries,
                    t.elapsed().as_millis()
                );
                self.reported
                    .retain(|k| !k.starts_with(&format!("{}\0", path.display())));
                self.read_at.insert(path.to_path_buf(), stamp);
                return Step::Use(v);
            }
        }
        if self.rejected.contains(&hash) {
            return Step::Keep;
        }
        let cache = self.cache_path(&hash);
        let entries = match cached_entries(&cache) {
            Some(n) => n,
            None => match compile_source(src, &data, &cache) {
                Ok((n, bl)) => {
                    debug!(
                        "compiled {}: {n} entries in {} ms",
                        path.display(),
                        t.elapsed().as_millis()
                    );
                    // Checked (or built) in memory: served from the cache without reading it
                    // back.
                    self.opened.insert(hash.clone(), Arc::new(bl));
                    n
                }
                Err(e) => {
                    self.not_loaded(path, &hash, &e);
                    return Step::Keep;
                }
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
        self.read_at.insert(path.to_path_buf(), stamp);
        let serial = self.is_feed(path).then(|| zone_serial(&data)).flatten();
        if let Some(serial) = serial {
            self.patches.served(path, serial);
        }
        Step::Use(Version {
            path: path.to_path_buf(),
            hash,
            entries,
            len: data.len() as u64,
            base: None,
            appends: Vec::new(),
            serial,
        })
    }

    /// Whether `path` is the zone file of a feed.
    fn is_feed(&self, path: &Path) -> bool {
        self.cfg.feeds.iter().any(|f| f.path == path)
    }

    /// The version of a feed's zone file that its queued IXFR patches lead to from `prev`:
    /// each patch is compiled on its own into a file layered over the zone's last compiled
    /// version, hiding there the keys it touched ([`Hidden`]). `None` when the patches from
    /// `prev`'s serial to the file's are not all queued, or one does not compile cleanly (the
    /// zone is then compiled whole, which also reports its problems with their lines).
    fn patched(
        &mut self,
        src: &Source,
        prev: &Version,
        data: &[u8],
        hash: &str,
        started: Instant,
    ) -> Option<Version> {
        let Source::Text(spec) = src else {
            return None;
        };
        let (from, to) = (prev.serial?, zone_serial(data)?);
        if !self.is_feed(&prev.path) || !serial_newer(to, from) {
            return None;
        }
        let chain = self.patches.chain(&prev.path, from, to)?;
        if prev.appends.len() + chain.len() > MAX_APPENDS {
            return None;
        }
        let mut spec = spec.clone();
        spec.format = Some(Format::Rpz);
        let base = prev.base.clone().unwrap_or_else(|| prev.hash.clone());
        self.open_cached(&base).ok()?;
        let mut appends = prev.appends.clone();
        let (mut gone, mut added) = (0, 0);
        let mut at = prev.hash.clone();
        for p in &chain {
            let name = content_hash(
                src,
                &[at.as_bytes(), b"\0ixfr\0", p.after.as_bytes()].concat(),
            );
            let (g, a) = self.compile_patch(&spec, p, &name)?;
            (gone, added) = (gone + g, added + a);
            appends.push(name.clone());
            at = name;
        }
        let entries = (prev.entries + added).saturating_sub(gone);
        info!(
            "{}: serial {from} → {to} served as {} patch{} of what the IXFR changed: −{gone} +{added} entries, {entries} in all, in {} ms",
            prev.path.display(),
            chain.len(),
            if chain.len() == 1 { "" } else { "es" },
            started.elapsed().as_millis()
        );
        Some(Version {
            path: prev.path.clone(),
            hash: hash.to_owned(),
            entries,
            len: data.len() as u64,
            base: Some(base),
            appends,
            serial: Some(to),
        })
    }

    /// Compiles one patch into cache file `name`, kept open with the keys it hides; returns
    /// the entries it removes and adds.
    fn compile_patch(&mut self, spec: &ListSpec, p: &Patch, name: &str) -> Option<(u64, u64)> {
        let quiet = |text: &str| {
            let mut c = Compiler::new();
            let report = c.add_source(spec, text.as_bytes()).ok()?;
            // A problem with a line; not the remark that a side is empty (all added, or all
            // removed), which is how most IXFRs are.
            let clean = report.omitted_diagnostics == 0
                && report.diagnostics.iter().all(|d| d.line.is_none());
            clean.then_some(())?;
            Some((report.accepted, c.into_blocklist().ok()?))
        };
        let (gone, before) = quiet(&p.before)?;
        let (added, after) = quiet(&p.after)?;
        let cache = self.cache_path(name);
        atomic_file::write(&cache, after.file_bytes()?, Durability::Rebuildable).ok()?;
        let after = after.remapped(&cache).ok()?;
        let hidden = Hidden::of(&[&before, &after]);
        self.hidden.insert(name.to_owned(), Arc::new(hidden));
        self.opened.insert(name.to_owned(), Arc::new(after));
        Some((gone, added))
    }

    /// The version of a text list whose new content is its previous content with lines
    /// appended: only those lines are compiled, into a file layered over the previous version.
    /// `None` when the change is anything else, or the format keeps state across lines (RPZ,
    /// BIND), or the appended lines do not compile on their own: then the list is compiled
    /// whole, which also reports its problems.
    fn appended(
        &mut self,
        src: &Source,
        prev: &Version,
        data: &[u8],
        hash: &str,
    ) -> Option<Version> {
        let Source::Text(spec) = src else {
            return None;
        };
        let old = usize::try_from(prev.len).ok().filter(|&n| n > 0)?;
        if data.len() <= old || data[old - 1] != b'\n' || prev.appends.len() >= MAX_APPENDS {
            return None;
        }
        if content_hash(src, &data[..old]) != prev.hash {
            return None;
        }
        let base = prev.base.clone().unwrap_or_else(|| prev.hash.clone());
        let format = self.open_cached(&base).ok()?.lists().first()?.format;
        if !matches!(
            format,
            Format::Plain | Format::Hosts | Format::Adblock | Format::Dnsmasq | Format::Unbound
        ) {
            return None;
        }
        let mut appended = spec.clone();
        appended.format = Some(format);
        appended.ips |= format == Format::Plain && source::declares_ips(&data[..old]);
        let tail = &data[old..];
        let name = content_hash(src, &[prev.hash.as_bytes(), b"\0+\0", tail].concat());
        let cache = self.cache_path(&name);
        let lines_before = data[..old].iter().filter(|&&b| b == b'\n').count() as u64;
        let entries = match cached_entries(&cache) {
            Some(n) if self.open_cached(&name).is_ok() => n,
            _ => {
                let (n, bl) = compile_text(&appended, tail, lines_before).ok()?;
                atomic_file::write(&cache, bl.file_bytes()?, Durability::Rebuildable).ok()?;
                self.opened
                    .insert(name.clone(), Arc::new(bl.remapped(&cache).ok()?));
                n
            }
        };
        let mut appends = prev.appends.clone();
        appends.push(name);
        Some(Version {
            path: prev.path.clone(),
            hash: hash.to_owned(),
            entries: prev.entries + entries,
            len: data.len() as u64,
            base: Some(base),
            appends,
            serial: None,
        })
    }

    /// Logs (once per `path` and `key`) that a file could not be used, and counts a failure.
    fn not_loaded(&mut self, path: &Path, key: &str, err: &Error) {
        let reason = err.to_string();
        let reason = if reason.starts_with(&path.display().to_string()) {
            reason
        } else {
            format!("{}: {reason}", path.display())
        };
        self.report_once(
            format!("{}\0{key}", path.display()),
            format!("list not loaded: {reason}; the previous version keeps serving"),
        );
    }

    fn report_once(&mut self, key: String, msg: String) {
        self.last_problem = Some(msg.clone());
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

    /// Merges the chosen versions into a new `active.fst` ([`crate::blocklist::merge`]),
    /// written beside the old one and renamed into place, and opens (verifies) it. Each cache
    /// file's header and body checksum are checked here; the merged result is checked in full
    /// (FST structure included) when it is opened.
    fn merge(&self, versions: &[Version]) -> Result<Blocklist, Error> {
        let parts = versions
            .iter()
            .map(|v| Part::read(&self.cache_path(&v.hash)))
            .collect::<Result<Vec<_>, _>>()?;
        let active = self.active_path();
        // Rebuildable: this file is only a cache of the sources. After a crash a torn file fails
        // its checksum at start and the lists are compiled again before serving.
        atomic_file::replace(&active, Durability::Rebuildable, |w| {
            merge_into(&parts, w, &active).map_err(Error::from)
        })?;
        Ok(Blocklist::open(&active)?)
    }

    /// The entries of each list served as several files (appends, patches) as its version
    /// counts them: a patch's file counts what it adds, not what it hides below.
    fn layered_totals(&self, versions: &[Version]) -> HashMap<String, u64> {
        versions
            .iter()
            .filter_map(|v| {
                let base = self.opened.get(v.base.as_deref()?)?;
                Some((base.lists().first()?.name.clone(), v.entries))
            })
            .collect()
    }

    /// Stores `bl` as the live blocklist and updates the per-list metrics; `totals` has the
    /// entry counts of lists served as several files.
    fn publish(&mut self, bl: Blocklist, totals: &HashMap<String, u64>) {
        // A list served with its appends as layers appears once per layer: add them up.
        let mut entries: HashMap<&str, u64> = HashMap::new();
        for l in bl.lists() {
            *entries.entry(&l.name).or_default() += l.entries;
        }
        for (name, n) in totals {
            if let Some(e) = entries.get_mut(name.as_str()) {
                *e = *n;
            }
        }
        let mut names = HashSet::new();
        for (name, n) in entries {
            metrics::set_list_entries(name, n);
            names.insert(name.to_owned());
        }
        for gone in self.metric_lists.difference(&names) {
            metrics::set_list_entries(gone, 0);
        }
        self.metric_lists = names;
        metrics::set_lists_loaded(!bl.lists().is_empty());
        self.live.publish(bl);
    }

    fn save_manifest(&self) {
        let path = self.cfg.state_dir.join("manifest.json");
        let json = serde_json::to_vec_pretty(&self.manifest).unwrap_or_default();
        if let Err(e) = atomic_file::write(&path, &json, Durability::Sync) {
            warn!("{e}");
        }
    }

    /// Removes cached versions no longer in the manifest (mapped files stay valid until unmapped).
    fn collect_garbage(&self) {
        let keep: HashSet<String> = self
            .manifest
            .versions
            .iter()
            .chain(&self.served)
            .flat_map(Version::files)
            .chain(self.refused.values().map(String::as_str))
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

/// The manifest of the last run, if there is a readable one.
fn read_manifest(cfg: &BlocklistsConfig) -> Manifest {
    fs::read(cfg.state_dir.join("manifest.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
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

/// Compiles one source version into `cache`; returns its entry count and the list, served
/// from `cache`, or the reason it cannot be used.
fn compile_source(src: &Source, data: &[u8], cache: &Path) -> Result<(u64, Blocklist), Error> {
    let (entries, bl) = match src {
        Source::Text(spec) => compile_text(spec, data, 0)?,
        Source::Fst(path) => {
            // This file came from outside: its structure is checked before it is served, its
            // entries one by one before it is merged (`merge_served`).
            let bl = Blocklist::check_for_layer(data.to_vec(), path)?;
            (bl.lists().iter().map(|l| l.entries).sum(), bl)
        }
    };
    let bytes = bl.file_bytes().unwrap_or_default();
    // The cache is compiled again if a crash tears it (its checksum fails): no fsync.
    atomic_file::write(cache, bytes, Durability::Rebuildable)?;
    Ok((entries, bl.remapped(cache)?))
}

/// Compiles a text list (or the lines appended to one, which start after `lines_before`
/// lines of the file) in memory; returns its entry count and the list.
fn compile_text(
    spec: &ListSpec,
    data: &[u8],
    lines_before: u64,
) -> Result<(u64, Blocklist), Error> {
    let mut c = Compiler::new();
    let report = c.add_source(spec, data);
    // Refusals count whether or not the list was usable.
    let refused = match &report {
        Ok(r) => r.stats.refused,
        Err(blocklist::Error::NoEntries { stats, .. }) => stats.refused,
        Err(_) => 0,
    };
    if refused > 0 {
        metrics::list_entries_refused(&spec.name, refused);
    }
    let mut report = report?;
    for diag in report.diagnostics.iter_mut().take(MAX_LOGGED_DIAGNOSTICS) {
        diag.line = diag.line.map(|l| l + lines_before);
        warn!("{diag}");
    }
    let total = report.diagnostics_total();
    if total > MAX_LOGGED_DIAGNOSTICS as u64 {
        warn!(
            "{}: … and {} more problems",
            spec.path.display(),
            total - MAX_LOGGED_DIAGNOSTICS as u64
        );
    }
    Ok((report.accepted, c.into_blocklist()?))
}

/// The SOA serial at the top of a feed's zone file (after comments and `$` directives).
fn zone_serial(data: &[u8]) -> Option<u32> {
    let head = &data[..data.len().min(4096)];
    String::from_utf8_lossy(head)
        .lines()
        .find(|l| !l.is_empty() && !l.starts_with([';', '$']))
        .and_then(Soa::parse)
        .map(|soa| soa.serial)
}

/// Entry count of an already compiled version, if its cache file is there and its header and
/// body checksum hold (the full check, FST structure included, ran when it was written).
fn cached_entries(cache: &Path) -> Option<u64> {
    Part::read(cache).ok().map(|p| p.entries())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocklist::{Action, ListInfo, ListKind, MatchMode, SharedBlocklist};
    use crate::lists::specs;

    fn cfg(dir: &Path) -> BlocklistsConfig {
        let text = format!("blocklists:\n  dir: {}\n  debounce_ms: 50\n", dir.display());
        BlocklistsConfig::from_yaml(&text, dir)
    }

    fn verdict(live: &SharedBlocklist, name: &str) -> Option<ListKind> {
        live.load().lookup(name).map(|v| v.kind)
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
        // Served as layers until changes pause, then merged.
        assert!(live.load().is_layered());
        assert!(p.reload(Trigger::Merge).swapped);
        assert!(!live.load().is_layered());
        assert_eq!(verdict(&live, "small.test"), None);
        assert_eq!(verdict(&live, "n7.fraud.test"), Some(ListKind::Block));

        // A restart serves the state at once and finds nothing to do.
        let (live2, publisher) = SharedBlocklist::new(Blocklist::empty());
        let mut p2 = Pipeline::new(cfg(d), publisher);
        assert!(p2.serve_last());
        assert_eq!(verdict(&live2, "n7.fraud.test"), Some(ListKind::Block));
        assert!(!p2.reload(Trigger::Startup).swapped);
    }

    /// Lines appended to a list are compiled alone and layered over its last compiled version;
    /// the merge compiles it whole. Other changes compile the list whole at once.
    #[test]
    fn appended_lines_are_served_before_the_merge() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let names: String = (0..100).map(|i| format!("n{i}.fraud.test\n")).collect();
        let list = format!("# fraudwall: ips\n{names}");
        fs::write(d.join("big.txt"), &list).unwrap();
        fs::write(d.join("allowlist.txt"), "ok.late.test\n").unwrap();
        fs::write(
            d.join("zone.rpz"),
            "$ORIGIN rpz.test.\nrpz.test. SOA a. b. 1 1 1 1 1\nz.test CNAME .\n",
        )
        .unwrap();
        let (live, publisher) = SharedBlocklist::new(Blocklist::empty());
        let mut p = Pipeline::new(cfg(d), publisher);
        assert!(p.reload(Trigger::Startup).swapped);
        let big = |p: &Pipeline| {
            p.served
                .iter()
                .find(|v| v.path.ends_with("big.txt"))
                .unwrap()
                .clone()
        };

        // Two appends: names (one allowed by the allowlist) and an address, as the header says.
        let list = format!("{list}late.test\n");
        fs::write(d.join("big.txt"), &list).unwrap();
        assert!(p.reload(Trigger::Sighup).swapped);
        let list = format!("{list}198.18.5.0/24\nlater.test\n");
        fs::write(d.join("big.txt"), &list).unwrap();
        assert!(p.reload(Trigger::Sighup).swapped);
        let v = big(&p);
        assert_eq!(
            (v.base.is_some(), v.appends.len(), v.entries),
            (true, 2, 103)
        );
        let check = |live: &SharedBlocklist| {
            assert_eq!(verdict(live, "www.late.test"), Some(ListKind::Block));
            assert_eq!(verdict(live, "ok.late.test"), Some(ListKind::Allow));
            assert_eq!(verdict(live, "later.test"), Some(ListKind::Block));
            assert_eq!(verdict(live, "n7.fraud.test"), Some(ListKind::Block));
            assert_eq!(verdict(live, "z.test"), Some(ListKind::Block));
            let ip = live.load().lookup_ip("198.18.5.9".parse().unwrap());
            assert_eq!(ip.map(|v| v.kind), Some(ListKind::Block));
            let bl = live.load();
            let v = bl.lookup("later.test").unwrap();
            assert_eq!(bl.list(&v).unwrap().name, "big");
        };
        assert!(live.load().is_layered());
        check(&live);

        // A restart before the merge serves the last merge, then compiles what changed.
        let (live2, publisher) = SharedBlocklist::new(Blocklist::empty());
        let mut p2 = Pipeline::new(cfg(d), publisher);
        assert!(p2.serve_last());
        assert_eq!(verdict(&live2, "later.test"), None);
        assert!(p2.reload(Trigger::Startup).swapped);
        assert!(!live2.load().is_layered());
        check(&live2);

        // The merge compiles the list whole.
        assert!(p.reload(Trigger::Merge).swapped);
        assert!(!live.load().is_layered());
        check(&live);
        let v = big(&p);
        assert_eq!((v.base, v.appends.len(), v.entries), (None, 0, 103));

        // Anything but an append compiles the list whole (and is layered until merged).
        fs::write(d.join("big.txt"), list.replace("n7.fraud", "n7.changed")).unwrap();
        assert!(p.reload(Trigger::Sighup).swapped);
        assert!(big(&p).base.is_none());
        assert_eq!(verdict(&live, "n7.fraud.test"), None);
        assert_eq!(verdict(&live, "n7.changed.test"), Some(ListKind::Block));
        // So does an append to a zone, whose lines depend on what comes before them.
        let zone = fs::read_to_string(d.join("zone.rpz")).unwrap();
        fs::write(d.join("zone.rpz"), format!("{zone}y.test CNAME .\n")).unwrap();
        assert!(p.reload(Trigger::Sighup).swapped);
        assert_eq!(verdict(&live, "y.test"), Some(ListKind::Block));
        let zone = p
            .served
            .iter()
            .find(|v| v.path.ends_with("zone.rpz"))
            .unwrap();
        assert!(zone.base.is_none());
        assert!(p.reload(Trigger::Merge).swapped);
        assert_eq!(verdict(&live, "n7.changed.test"), Some(ListKind::Block));
    }

    /// A feed's IXFR is served as a patch over the zone's compiled file, answering as the zone
    /// compiled whole does (which the merge then does), patches chain, and a missing patch
    /// means a whole compile.
    #[test]
    fn ixfr_patches_are_served_as_the_whole_zone_would_be() {
        use crate::lists::feeds::{patch, xfr::Diff};
        use std::collections::BTreeSet;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir(d.join("lists")).unwrap();
        fs::write(d.join("lists/other.txt"), "c.test\nbulk.test\n").unwrap();
        let text = format!(
            "blocklists:\n  dir: {}\n  state_dir: {}\n  feeds:\n    - name: afc\n      zone: rpz.test\n      \
             primaries: ['127.0.0.1:5300']\n      allow_unsigned: true\n",
            d.join("lists").display(),
            d.join("state").display()
        );
        let cfg = BlocklistsConfig::from_yaml(&text, d);
        let feed = cfg.feeds[0].path.clone();
        fs::create_dir_all(feed.parent().unwrap()).unwrap();
        let origin = "rpz.test.";
        let soa = |serial: u32| format!("rpz.test. soa a. b. {serial} 1 1 1 1");
        // A record as the feed keeps it: the owner made absolute.
        let line = |l: &str| {
            let (owner, rest) = l.split_once(' ').unwrap();
            format!("{owner}.{origin} {rest}")
        };
        let mut zone: BTreeSet<Box<str>> = [
            "a.test cname .",
            "*.b.test cname .",
            "c.test cname rpz-passthru.",
            "32.1.7.18.198.rpz-ip cname .",
        ]
        .iter()
        .map(|l| line(l).into())
        .chain((0..100).map(|i| line(&format!("n{i}.bulk.test cname .")).into()))
        .collect();
        let write = |zone: &BTreeSet<Box<str>>, serial: u32| {
            let mut t = format!("; feed afc\n$ORIGIN {origin}\n{}\n", soa(serial));
            for r in zone {
                t.push_str(&format!("{r}\n"));
            }
            fs::write(&feed, t).unwrap();
        };
        write(&zone, 1);
        let (live, publisher) = SharedBlocklist::new(Blocklist::empty());
        let mut p = Pipeline::new(cfg, publisher);
        assert!(p.reload(Trigger::Startup).swapped);
        // What the feed's runner does with an IXFR: the patch, then the zone file.
        let ixfr =
            |p: &Pipeline, zone: &mut BTreeSet<Box<str>>, from, del: &[&str], add: &[&str]| {
                let step = Diff {
                    from,
                    to: from + 1,
                    deleted: del.iter().map(|l| line(l)).collect(),
                    added: add.iter().map(|l| line(l)).collect(),
                };
                let touched = patch::touched(origin, std::slice::from_ref(&step), zone);
                let before = patch::records(zone, &touched);
                for l in &step.deleted {
                    assert!(zone.remove(l.as_str()), "{l}");
                }
                zone.extend(step.added.iter().map(|l| l.as_str().into()));
                let after = patch::records(zone, &touched);
                p.patches().push(
                    &feed,
                    Patch {
                        from,
                        to: from + 1,
                        before: patch::text(origin, &soa(from), &before),
                        after: patch::text(origin, &soa(from + 1), &after),
                    },
                );
                write(zone, from + 1);
            };
        let afc = |p: &Pipeline| p.served.iter().find(|v| v.path == feed).unwrap().clone();
        assert_eq!(afc(&p).serial, Some(1));
        let names = [
            "a.test",
            "x.a.test",
            "b.test",
            "x.b.test",
            "c.test",
            "new.test",
            "n5.bulk.test",
            "n7.bulk.test",
            "bulk.test",
            "none.test",
        ];
        let addrs = ["198.18.7.1", "198.18.9.5", "198.18.10.1"];
        let answers = |live: &SharedBlocklist| {
            let bl = live.load();
            let mut out: Vec<String> = names
                .iter()
                .map(|n| {
                    let v = bl.lookup(n).map(|v| {
                        (
                            bl.list(&v).unwrap().name.clone(),
                            v.kind,
                            v.action,
                            v.match_mode,
                            v.matched_labels,
                        )
                    });
                    format!("{n} {v:?}")
                })
                .collect();
            out.extend(addrs.iter().map(|a| {
                let v = bl.lookup_ip(a.parse().unwrap()).map(|v| {
                    (
                        bl.list(&v).unwrap().name.clone(),
                        v.kind,
                        v.action,
                        v.matched_labels,
                    )
                });
                format!("{a} {v:?}")
            }));
            out
        };

        ixfr(
            &p,
            &mut zone,
            1,
            &[
                "a.test cname .",
                "c.test cname rpz-passthru.",
                "32.1.7.18.198.rpz-ip cname .",
            ],
            &[
                "*.a.test a 198.18.0.1",
                "c.test cname .",
                "new.test cname .",
                "24.0.9.18.198.rpz-ip cname .",
            ],
        );
        assert!(p.reload(Trigger::Feed).swapped);
        let v = afc(&p);
        assert_eq!(
            (v.base.is_some(), v.appends.len(), v.serial),
            (true, 1, Some(2))
        );
        assert!(live.load().is_layered());
        assert_eq!(verdict(&live, "c.test"), Some(ListKind::Block));
        assert_eq!(verdict(&live, "new.test"), Some(ListKind::Block));
        assert!(
            live.load()
                .lookup_ip("198.18.7.1".parse().unwrap())
                .is_none()
        );
        ixfr(
            &p,
            &mut zone,
            2,
            &["new.test cname .", "n5.bulk.test cname ."],
            &["n5.bulk.test cname *.", "b.test cname rpz-passthru."],
        );
        assert!(p.reload(Trigger::Feed).swapped);
        let v = afc(&p);
        assert_eq!(
            (v.base.is_some(), v.appends.len(), v.serial),
            (true, 2, Some(3))
        );
        assert_eq!(verdict(&live, "new.test"), None);
        // Most IXFRs only add, or only remove.
        ixfr(&p, &mut zone, 3, &[], &["only.added.test cname ."]);
        assert!(p.reload(Trigger::Feed).swapped);
        ixfr(&p, &mut zone, 4, &["n7.bulk.test cname ."], &[]);
        assert!(p.reload(Trigger::Feed).swapped);
        let v = afc(&p);
        assert_eq!(
            (v.base.is_some(), v.appends.len(), v.serial),
            (true, 4, Some(5))
        );
        // One entry per record, not counting what the patches hide.
        assert_eq!(v.entries, zone.len() as u64);
        assert_eq!(p.layered_totals(&p.served)["feed:afc"], v.entries);
        assert_eq!(verdict(&live, "only.added.test"), Some(ListKind::Block));
        // No longer the feed's: other.txt's `bulk.test` is what blocks it now.
        let bl = live.load();
        let v = bl.lookup("n7.bulk.test").unwrap();
        assert_eq!(bl.list(&v).unwrap().name, "other");
        let patched = answers(&live);
        assert!(p.reload(Trigger::Merge).swapped);
        assert!(!live.load().is_layered());
        assert_eq!(afc(&p).base, None);
        assert_eq!(answers(&live), patched, "the merge compiles the zone whole");
        assert_eq!(afc(&p).entries, zone.len() as u64);

        // A patch that never arrived: the zone is compiled whole.
        zone.insert(line("late.test cname .").into());
        write(&zone, 6);
        assert!(p.reload(Trigger::Feed).swapped);
        let v = afc(&p);
        assert_eq!((v.base.is_some(), v.serial), (false, Some(6)));
        assert_eq!(verdict(&live, "late.test"), Some(ListKind::Block));
    }

    /// A dropped `.fst` is served once its structure is checked; the full check before the merge
    /// withdraws one whose entries name lists it lacks, and it stays out until it changes.
    #[test]
    fn a_dropped_fst_that_fails_the_full_check_is_withdrawn_before_the_merge() {
        use crate::blocklist::format::pack_slot;
        use crate::blocklist::matcher::tests::v1_file;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("base.txt"), "base.test\n").unwrap();
        let (live, publisher) = SharedBlocklist::new(Blocklist::empty());
        let mut p = Pipeline::new(cfg(d), publisher);
        assert!(p.reload(Trigger::Startup).swapped);
        let ok = pack_slot(ListKind::Block, Action::Sinkhole, 0);
        let stray = pack_slot(ListKind::Block, Action::Nxdomain, 3);
        fs::write(
            d.join("drop.fst"),
            v1_file(&[(b"test.good", ok), (b"test.stray", stray)]),
        )
        .unwrap();
        assert!(p.reload(Trigger::Sighup).swapped);
        assert!(live.load().is_layered());
        assert_eq!(verdict(&live, "good.test"), Some(ListKind::Block));
        assert_eq!(verdict(&live, "stray.test"), None);

        p.reload(Trigger::Merge);
        assert!(!live.load().is_layered());
        assert_eq!(verdict(&live, "good.test"), None);
        assert_eq!(verdict(&live, "base.test"), Some(ListKind::Block));
        let problem = p.last_problem().unwrap().to_string();
        assert!(
            problem.contains("drop.fst") && problem.contains("names list #3"),
            "{problem}"
        );
        assert!(!p.reload(Trigger::Sighup).swapped);
        assert_eq!(verdict(&live, "good.test"), None);

        // A good version of the file is served again.
        fs::write(d.join("drop.fst"), v1_file(&[(b"test.good", ok)])).unwrap();
        assert!(p.reload(Trigger::Sighup).swapped);
        assert_eq!(verdict(&live, "good.test"), Some(ListKind::Block));
        p.reload(Trigger::Merge);
        assert!(!live.load().is_layered());
        assert_eq!(verdict(&live, "good.test"), Some(ListKind::Block));
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
