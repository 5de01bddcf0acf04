//! Noticing changes in `blocklists.dir`: a `notify` watcher (debounced) on the directory and its
//! parent. (The stat poll compares [`super::scan::Fingerprint`]s.)
//!
//! The watcher runs on its own thread and only sends [`Trigger::Files`]; the reloader decides
//! what to do (after vector's `config/watcher.rs`). It watches the directory, not single files:
//! a watch on a file goes silent once an editor or deploy tool renames a new file over it. It
//! also watches the parent, and checks the directory's identity every second, so that a
//! directory that is replaced (deleted and re-created, renamed over, or a symlink swapped to a
//! new release) is watched again.
//!
//! A file closed after writing, or renamed into the directory, is complete: a second, raw
//! watcher reports those at once, naming the file in [`Written`], and the reloader reads it
//! without waiting for the debounce (which only protects against files still being written).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{EventKind, RecursiveMode, Watcher};
use notify_debouncer_full::{DebounceEventResult, new_debouncer};
use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, info, warn};

use super::scan::{dir_identity, is_list_file};
use super::{BlocklistsConfig, Trigger};

/// Files known to be complete (closed after writing, or renamed into the directory) since the
/// reloader last looked: it reads them without waiting for them to settle.
pub type Written = Arc<Mutex<HashSet<PathBuf>>>;

/// Starts the watcher thread. If `notify` cannot start, the stat poll still runs.
pub fn spawn_watcher(cfg: &BlocklistsConfig, tx: UnboundedSender<Trigger>, written: Written) {
    let dir = cfg.dir.clone();
    let state_dir = cfg.state_dir.clone();
    let debounce = cfg.debounce;
    let spawned = std::thread::Builder::new()
        .name("fraudwall-watch".into())
        .spawn(move || watch_loop(&dir, &state_dir, debounce, &tx, &written));
    if let Err(e) = spawned {
        warn!("cannot start the list watcher thread: {e}; relying on the stat poll");
    }
}

/// The list file a raw event says is complete, if any. `dir` and `state_dir` are absolute, as
/// `notify` makes the paths of its events.
fn completed<'a>(ev: &'a notify::Event, dir: &Path, state_dir: &Path) -> Option<&'a PathBuf> {
    let path = match ev.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write))
        | EventKind::Modify(ModifyKind::Name(RenameMode::To)) => ev.paths.first(),
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => ev.paths.last(),
        _ => None,
    }?;
    is_list_path(path, dir, state_dir).then_some(path)
}

/// Whether an event's `path` names a list file of `dir` (both absolute).
fn is_list_path(path: &Path, dir: &Path, state_dir: &Path) -> bool {
    path.parent() == Some(dir)
        && !path.starts_with(state_dir)
        && path
            .file_name()
            .is_some_and(|n| is_list_file(&n.to_string_lossy()))
}

fn watch_loop(
    dir: &Path,
    state_dir: &Path,
    debounce: Duration,
    tx: &UnboundedSender<Trigger>,
    written: &Written,
) {
    // `notify` reports absolute paths, whatever it was asked to watch.
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let (abs_dir, abs_state_dir) = (absolute(dir), absolute(state_dir));
    // Without it, complete files wait for the debounce like the rest.
    let mut fast = {
        let (tx, written) = (tx.clone(), Arc::clone(written));
        let (dir, abs_dir, abs_state_dir) =
            (dir.to_path_buf(), abs_dir.clone(), abs_state_dir.clone());
        notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            let Some(name) = ev
                .ok()
                .as_ref()
                .and_then(|ev| completed(ev, &abs_dir, &abs_state_dir))
                .and_then(|p| p.file_name().map(ToOwned::to_owned))
            else {
                return;
            };
            // Named as the reloader's scan names it.
            written
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(dir.join(name));
            let _ = tx.send(Trigger::Files);
        })
        .map_err(|e| debug!("no immediate watcher: {e}"))
        .ok()
    };
    let (etx, erx) = std::sync::mpsc::channel::<DebounceEventResult>();
    let mut debouncer = match new_debouncer(debounce, None, etx) {
        Ok(d) => d,
        Err(e) => {
            warn!(
                "cannot watch {}: {e}; relying on the stat poll",
                dir.display()
            );
            return;
        }
    };
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(p) = parent
        && let Err(e) = debouncer.watch(p, RecursiveMode::NonRecursive)
    {
        debug!("cannot watch {}: {e}", p.display());
    }
    let mut arm = |debouncer: &mut notify_debouncer_full::Debouncer<_, _>| {
        if let Some(fast) = fast.as_mut() {
            let _ = fast.unwatch(dir);
            let _ = fast.watch(dir, RecursiveMode::NonRecursive);
        }
        let _ = debouncer.unwatch(dir);
        match debouncer.watch(dir, RecursiveMode::NonRecursive) {
            Ok(()) => dir_identity(dir),
            Err(e) if dir.is_dir() => {
                warn!(
                    "cannot watch {}: {e}; relying on the stat poll (blocklists.poll_interval_ms)",
                    dir.display()
                );
                None
            }
            Err(e) => {
                debug!("cannot watch {} yet: {e}", dir.display());
                None
            }
        }
    };
    let mut ident = arm(&mut debouncer);
    info!(
        "watching {} for list changes (notify, debounce {} ms)",
        dir.display(),
        debounce.as_millis()
    );
    loop {
        let (mut fire, mut rearm) = (false, false);
        match erx.recv_timeout(Duration::from_secs(1)) {
            Ok(Ok(events)) => {
                for ev in &events {
                    if ev.need_rescan() {
                        fire = true;
                        continue;
                    }
                    if matches!(ev.kind, EventKind::Access(a) if a != AccessKind::Close(AccessMode::Write))
                    {
                        continue;
                    }
                    for p in &ev.paths {
                        if *p == abs_dir {
                            rearm = true;
                        } else if is_list_path(p, &abs_dir, &abs_state_dir) {
                            fire = true;
                        }
                    }
                }
            }
            Ok(Err(errors)) => {
                for e in errors {
                    warn!("list watcher: {e}; watching {} again", dir.display());
                }
                rearm = true;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                rearm = dir_identity(dir) != ident;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        }
        if rearm {
            let now = arm(&mut debouncer);
            if now != ident {
                info!("{} was replaced: watching the new directory", dir.display());
                ident = now;
            }
            fire = true;
        }
        if fire && tx.send(Trigger::Files).is_err() {
            return;
        }
        if tx.is_closed() {
            return;
        }
    }
}
