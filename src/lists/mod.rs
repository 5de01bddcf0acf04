//! From list files to the live blocklist, and keeping it current while fraudwall runs.
//!
//! # How a change flows
//! 1. [`watch`] notices it: `notify` on `blocklists.dir` (the directory, never single files, so
//!    rename-replaces and symlink swaps are seen), debounced; the parent directory too, so a
//!    replaced directory is watched again; a stat poll as the backstop (or as the only mechanism
//!    with `watch: poll`, e.g. on NFS). SIGHUP, [`remote`] downloads and [`feeds`] (RPZ zones by
//!    zone transfer, written into the state directory) ask directly. Hidden and
//!    temporary files (`.foo.swp`, `.#foo`, `foo~`, `*.tmp`, `*.part`) and the state directory
//!    are ignored.
//! 2. The reloader task coalesces requests and runs one [`pipeline`] pass at a time on its own
//!    thread, off the async runtime (one thread, so one malloc arena: the memory of a pass is
//!    reused by the next instead of piling up across the blocking pool): each source file that
//!    has settled ([`guard::settled`]), or that the watcher saw closed after writing or renamed
//!    into the directory ([`watch::Written`]), is read, hashed, and compiled into its own FST in
//!    `<state_dir>/cache/<hash>.fst` unless that exists already, so one changed file does not
//!    re-parse the others. Lines appended to a line-per-entry list are compiled on their own,
//!    and so is what a feed's IXFR changed ([`feeds::patch`]).
//! 3. [`guard::refuses`] compares its entry count with the last accepted version; the per-source
//!    FSTs chosen are published at once as the layers of one snapshot, which answers as their
//!    merge will; once changes pause ([`pipeline::MERGE_DELAY`]) they are merged into a new
//!    `active.fst` (written beside the old one and renamed), which is opened and verified, then
//!    stored into the `ArcSwap`. Queries in flight keep the snapshot they loaded; the old
//!    mapping goes when its last reader drops it.
//!
//! # Rules
//! - A file that cannot be read or parsed at all (binary, permission denied, vanished while read,
//!   a damaged `.fst`) leaves its previous version serving; the error is logged once and counted
//!   in `fraudwall_reload_failures_total`.
//! - Shrink guard: a new version that loses more than `blocklists.max_shrink` (default 50 %) of
//!   the last accepted version's entries is refused and the previous version keeps serving,
//!   until the file changes again or an operator forces it: create `<state_dir>/force` and send
//!   SIGHUP (the flag is consumed by the next reload). `max_shrink: 1` turns the guard off.
//! - Deleting a list file is an intended removal and is not guarded: removing a file is an
//!   explicit act (an analyst's `rm`, a deploy tool dropping a list), while truncation is how
//!   copies and downloads fail. An unreadable directory, however, removes nothing.
//! - A compiled `.fst` (from `fraudwall compile`) dropped into the directory is verified and its
//!   lists are merged with the text lists, as one more source (no re-parsing). Lists merge in
//!   order: config lists, then text files by name, then `.fst` files by name; at the same name
//!   the first list wins, except that allow beats block.
//! - At start the last `active.fst` is served at once when it verifies, and the sources are
//!   checked in the background; with no valid state the lists are compiled before serving.
//!   Layers are never written down: a restart before their merge serves the last merge, and
//!   its first pass compiles what changed since.
//!
//! Log lines (a contract for operators and tests): `lists updated: N lists, M names in X ms
//! (served from K compiled files until they are merged)` (a change is enforced), `PATH: serial
//! A → B served as N patch(es) of what the IXFR changed: −G +A entries, E in all, in X ms` (a
//! feed's IXFR, before that line), `lists reloaded: N lists, M names in X ms` (merged, or
//! compiled at start),
//! `list refused by shrink guard: PATH: …`, `list not loaded: PATH…: REASON; the previous version
//! keeps serving`, `list removed: PATH`, `serving the last compiled lists: …`.

use std::path::PathBuf;

use anyhow::Context;
use tokio::sync::mpsc;

use crate::blocklist::{self, Blocklist, ListSpec, SharedBlocklist};

pub mod config;
pub mod feeds;
pub mod guard;
pub mod pipeline;
pub mod remote;
pub mod scan;
pub mod watch;

/// The text lists to compile: those named in the config, then every other list file in
/// `blocklists.dir` with the defaults (what `fraudwall compile --config` and `check` use).
pub fn specs(cfg: &BlocklistsConfig) -> Vec<ListSpec> {
    let scan = scan::Scan::read(cfg);
    if scan.dir_error.is_some() {
        tracing::warn!(dir = %cfg.dir.display(), "blocklists.dir cannot be read: nothing is blocked");
    }
    scan.specs()
}

/// Compiles every text list into a temporary file and opens it (`fraudwall check --config`).
pub fn load(cfg: &BlocklistsConfig) -> anyhow::Result<Blocklist> {
    let specs = specs(cfg);
    if specs.is_empty() {
        return Ok(Blocklist::empty());
    }
    // Never in the state directory: a running server may own it, and it may be read-only.
    let out = std::env::temp_dir().join(format!("fraudwall-check-{}.fst", std::process::id()));
    let mut sink = Vec::new();
    blocklist::cli::compile_cmd(&out, &specs, &mut sink).context("compiling lists")?;
    for line in String::from_utf8_lossy(&sink).lines() {
        tracing::info!("{line}");
    }
    let bl = Blocklist::open(&out).with_context(|| format!("opening {}", out.display()));
    // The mapping stays valid after the name is gone.
    let _ = std::fs::remove_file(&out);
    bl
}

/// Why a source could not be used in a reload pass. Each says what happened to which file; the
/// previous version of that source keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be looked at.
    #[error("{}: cannot stat: {source}", path.display())]
    Stat {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Reading, parsing, verifying, compiling or merging failed.
    #[error(transparent)]
    Blocklist(#[from] blocklist::Error),
    /// A file of the state directory could not be written.
    #[error(transparent)]
    Write(#[from] crate::atomic_file::Error),
    /// The state directory could not be made.
    #[error("cannot create {}: {source}", path.display())]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Why a reload pass runs. Passes asked for by a person (start, SIGHUP) read files at once;
/// the others first wait for files to settle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The first pass after start.
    Startup,
    /// The watcher saw a change in the directory.
    Files,
    /// The stat poll saw a change.
    Poll,
    /// A remote list was downloaded.
    Fetched,
    /// A file that was still changing is looked at again.
    Retry,
    /// SIGHUP.
    Sighup,
    /// A feed wrote a new zone (written whole and renamed into place: nothing to wait for).
    Feed,
    /// Changes paused: merge the layers being served ([`pipeline::MERGE_DELAY`]).
    Merge,
}

impl Trigger {
    /// Whether files must have settled before they are read.
    fn waits_for_settle(self) -> bool {
        !matches!(self, Trigger::Startup | Trigger::Sighup | Trigger::Feed)
    }

    /// Of two coalesced requests, the one to run.
    fn merge(self, other: Trigger) -> Trigger {
        if other.waits_for_settle() {
            self
        } else {
            other
        }
    }
}

pub use config::{BlocklistsConfig, RemoteList, WatchMode};

/// No list could be loaded at start.
#[derive(Debug, thiserror::Error)]
#[error(
    "no blocklist could be loaded ({why}); fraudwall will not serve DNS without its blocklist: \
     fix the lists or the state directory, or set blocklists.allow_empty: true to serve without one"
)]
pub struct StartError {
    /// The last problem the reloader reported.
    pub why: String,
}

/// A handle on the running reloader: ask it for a reload from anywhere.
#[derive(Clone, Debug)]
pub struct Reloader {
    tx: mpsc::UnboundedSender<Trigger>,
    /// Takes NOTIFYs for the feeds' zones (none without feeds).
    notifier: Option<std::sync::Arc<feeds::Notifier>>,
}

impl Reloader {
    /// Makes the live blocklist current and keeps it so: serves the last compiled state at once
    /// when it verifies (and checks the sources in the background), else fetches the remote
    /// lists that have no copy yet and compiles the lists before returning; then starts the
    /// watcher, the poll and the remote fetchers.
    ///
    /// Returns the handle and the live blocklist, which only the reloader can replace. Fails
    /// when no list at all could be loaded, unless `blocklists.allow_empty` says that serving
    /// unfiltered DNS is intended: fraudwall never fails open silently.
    pub async fn start(cfg: &BlocklistsConfig) -> Result<(Reloader, SharedBlocklist), StartError> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (live, publisher) = SharedBlocklist::new(Blocklist::empty());
        let mut p = pipeline::Pipeline::new(cfg.clone(), publisher);
        let mut feeds = feeds::Feeds::new(cfg, tx.clone(), &p.patches());
        let mut feed_waits = Vec::new();
        let first = if p.serve_last() {
            Some(Trigger::Startup)
        } else {
            let (_, waits) = tokio::join!(remote::fetch_missing(cfg), feeds.fetch_missing());
            feed_waits = waits;
            // The first pass below reads what they wrote.
            while rx.try_recv().is_ok() {}
            p = tokio::task::spawn_blocking(move || {
                run_pass(&mut p, Trigger::Startup);
                p
            })
            .await
            .expect("run_pass catches panics");
            None
        };
        let lists = live.load().lists().len();
        crate::metrics::set_lists_loaded(lists > 0);
        if lists == 0 {
            let why = p
                .last_problem()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("no list files in {}", cfg.dir.display()));
            if !cfg.allow_empty {
                return Err(StartError { why });
            }
            tracing::warn!(
                "serving without any list ({why}): nothing is blocked until one loads \
                 (blocklists.allow_empty is set)"
            );
        }
        let poll = match cfg.watch {
            WatchMode::Off => None,
            WatchMode::Notify | WatchMode::Poll => Some(cfg.poll_interval),
        };
        if cfg.watch == WatchMode::Notify {
            watch::spawn_watcher(cfg, tx.clone(), p.written());
        } else if cfg.watch == WatchMode::Poll {
            tracing::info!(
                "polling {} for list changes every {} ms",
                cfg.dir.display(),
                cfg.poll_interval.as_millis()
            );
        }
        for r in &cfg.remotes {
            remote::spawn(r.clone(), cfg.state_dir.clone(), tx.clone());
        }
        let notifier = (!cfg.feeds.is_empty()).then(|| feeds.spawn(feed_waits));
        tokio::spawn(run(p, rx, first, poll));
        Ok((Reloader { tx, notifier }, live))
    }

    /// What takes NOTIFYs for the feeds' zones (`None` without feeds).
    pub fn notifier(&self) -> Option<std::sync::Arc<feeds::Notifier>> {
        self.notifier.clone()
    }

    /// Asks for a reload; returns at once (passes are coalesced).
    pub fn reload(&self, why: Trigger) {
        let _ = self.tx.send(why);
    }
}

/// A pass parses and sorts whole lists: give the freed heap back to the system instead of
/// carrying the peak of the last compile for the life of the process.
fn release_heap() {
    crate::process::release_memory();
}

/// One reload pass, on whatever thread calls it. A pass that panics is logged and counted, the
/// pipeline is reset to what is on disk (as after a restart), and the lists being served stay;
/// the next trigger runs a pass again.
fn run_pass(p: &mut pipeline::Pipeline, trigger: Trigger) -> pipeline::Outcome {
    let pass = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if trigger != Trigger::Startup && crate::failpoint::fire("reload-panic") {
            panic!("failpoint reload-panic");
        }
        p.reload(trigger)
    }));
    let outcome = match pass {
        Ok(outcome) => outcome,
        Err(panic) => {
            tracing::error!(
                "list reload pass panicked ({}); the current lists keep serving and the reloader \
                 starts afresh: the next change or SIGHUP reloads",
                crate::process::panic_message(&*panic)
            );
            crate::metrics::worker_restarted("reload");
            crate::metrics::reload_failed();
            p.reset();
            pipeline::Outcome::default()
        }
    };
    release_heap();
    outcome
}

type Job = (
    pipeline::Pipeline,
    Trigger,
    tokio::sync::oneshot::Sender<(pipeline::Pipeline, pipeline::Outcome)>,
);

/// The thread reload passes run on: one thread, so one malloc arena (the memory of a pass is
/// reused by the next instead of piling up across the blocking pool). Started again if it is
/// ever gone; if no thread can be started, a pass runs on the blocking pool instead.
#[derive(Default)]
struct PassThread {
    jobs: Option<std::sync::mpsc::Sender<Job>>,
}

impl PassThread {
    fn start() -> std::io::Result<std::sync::mpsc::Sender<Job>> {
        let (tx, jobs) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("fraudwall-reload".into())
            .spawn(move || {
                for (mut p, trigger, reply) in jobs {
                    let outcome = run_pass(&mut p, trigger);
                    let _ = reply.send((p, outcome));
                }
            })?;
        Ok(tx)
    }

    async fn run(
        &mut self,
        p: pipeline::Pipeline,
        trigger: Trigger,
    ) -> (pipeline::Pipeline, pipeline::Outcome) {
        let mut job = (p, trigger);
        for _ in 0..2 {
            let jobs = match self.jobs.take() {
                Some(jobs) => jobs,
                None => match PassThread::start() {
                    Ok(jobs) => jobs,
                    Err(e) => {
                        tracing::warn!(
                            "cannot start the list reload thread: {e}; reloading on the blocking pool"
                        );
                        break;
                    }
                },
            };
            let (reply, done) = tokio::sync::oneshot::channel();
            match jobs.send((job.0, job.1, reply)) {
                Ok(()) => {
                    self.jobs = Some(jobs);
                    // run_pass catches panics, so the thread always answers.
                    return done.await.expect("the reload thread answers every job");
                }
                Err(std::sync::mpsc::SendError((p, trigger, _))) => {
                    tracing::error!("the list reload thread is gone; starting a new one");
                    crate::metrics::worker_restarted("reload");
                    job = (p, trigger);
                }
            }
        }
        let (mut p, trigger) = job;
        tokio::task::spawn_blocking(move || {
            let outcome = run_pass(&mut p, trigger);
            (p, outcome)
        })
        .await
        .expect("run_pass catches panics")
    }
}

/// The reloader task: one pass at a time, requests that arrive meanwhile coalesced into one.
async fn run(
    mut p: pipeline::Pipeline,
    mut rx: mpsc::UnboundedReceiver<Trigger>,
    mut next: Option<Trigger>,
    poll: Option<std::time::Duration>,
) {
    use tokio::time::{Instant, MissedTickBehavior, interval_at, sleep_until};
    let far = std::time::Duration::from_secs(86_400 * 365);
    let period = poll.unwrap_or(far);
    let mut ticks = interval_at(Instant::now() + period, period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut retry_at: Option<Instant> = None;
    let mut merge_at: Option<Instant> = None;
    let mut passes = PassThread::default();
    loop {
        let mut trigger = match next.take() {
            Some(t) => t,
            None => tokio::select! {
                t = rx.recv() => match t {
                    Some(t) => t,
                    None => return,
                },
                _ = ticks.tick(), if poll.is_some() => {
                    let cfg = p.config().clone();
                    let fp = tokio::task::spawn_blocking(move || scan::Scan::read(&cfg).fingerprint())
                        .await
                        .unwrap_or_default();
                    if fp == *p.fingerprint() {
                        continue;
                    }
                    Trigger::Poll
                }
                _ = sleep_until(retry_at.unwrap_or_else(|| Instant::now() + far)), if retry_at.is_some() => {
                    Trigger::Retry
                }
                _ = sleep_until(merge_at.unwrap_or_else(|| Instant::now() + far)), if merge_at.is_some() => {
                    Trigger::Merge
                }
            },
        };
        while let Ok(t) = rx.try_recv() {
            trigger = trigger.merge(t);
        }
        let outcome;
        (p, outcome) = passes.run(p, trigger).await;
        retry_at = outcome.retry_after.map(|d| Instant::now() + d);
        merge_at = outcome.merge_after.map(|d| Instant::now() + d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sighup_wins_when_coalesced() {
        assert_eq!(Trigger::Files.merge(Trigger::Sighup), Trigger::Sighup);
        assert_eq!(Trigger::Sighup.merge(Trigger::Files), Trigger::Sighup);
        assert_eq!(Trigger::Poll.merge(Trigger::Files), Trigger::Poll);
    }
}
