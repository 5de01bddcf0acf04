//! RPZ feeds by zone transfer: a vendor's zone kept current from its primaries and served as
//! one more list.
//!
//! # How a feed flows
//! One task per feed ([`Runner`]) holds the zone's records in memory, one line per record
//! (owner, type, data, lowercase). It asks the primaries in order for an IXFR from its serial
//! (an AXFR when it has no zone, or when a primary cannot do IXFR) over [`xfr`]'s own TCP
//! exchange, TSIG-signed, every signed message verified. A good answer is applied (the diffs in
//! place, undone if one does not fit), passed through the shrink guard, and written atomically
//! as an RPZ zone file, `<state_dir>/feeds/<name>.rpz` — the last good zone — which the config
//! already names as a list (`feed:<name>`, format RPZ, the feed's action and category): the
//! feed asks the reloader for a pass ([`Trigger::Feed`]) and the pipeline compiles it like any
//! list. `<name>.json` beside it keeps the serial and the time of the last good check. An IXFR
//! also queues, before the file is renamed into place, the records of the owners it touched
//! before and after ([`patch`]): the pipeline serves those at the cost of the change, and
//! compiles the zone whole at the next merge.
//!
//! Checks run every SOA refresh (a failed one again after SOA retry), clamped to the feed's
//! `refresh_min`/`refresh_max`, minus up to a tenth at random so that many resolvers do not ask
//! at once; a NOTIFY for the zone from one of its primaries ([`Notifier`], fed by the query
//! engine) checks at once. At start the persisted zone is used at once (it is in the last
//! compiled blocklist) and brought up to date by IXFR from its serial.
//!
//! # Failures
//! A truncated transfer, a primary that goes away, a bad or missing TSIG, a serial that goes
//! backwards (RFC 1982 arithmetic) or a zone that lost more than `blocklists.max_shrink` of its
//! records changes nothing: the previous zone keeps serving; the failure is logged once per
//! reason (`feed NAME: ...; the previous zone keeps serving`) and counted in
//! `fraudwall_feed_transfers_total{result="failed"}`. When no check succeeded for the SOA
//! expire time, `after_expire: keep` (default) keeps the zone and says so; `drop` removes it
//! from the blocklist until a check succeeds again.

use std::{
    collections::BTreeSet,
    net::IpAddr,
    path::Path,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc::UnboundedSender};
use tracing::{info, warn};

use super::{BlocklistsConfig, Trigger};
use crate::atomic_file::{self, Durability};
use crate::metrics;

pub mod config;
pub mod patch;
pub mod xfr;

pub use config::{AfterExpire, Feed, RawFeed, TsigKey};
pub use patch::{Patch, Patches};
use xfr::{Soa, Transfer, XfrError};

/// Whether serial `a` is newer than `b` (RFC 1982 serial number arithmetic).
pub fn serial_newer(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000_0000
}

/// A zone name in wire form, lowercase (what a NOTIFY's question is compared with).
fn wire(name: &hickory_proto::rr::Name) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    out.push(0);
    out
}

/// What a NOTIFY gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyVerdict {
    /// From a primary of the zone's feed: its check runs now.
    Accepted,
    /// From anyone else, or for a zone we do not transfer.
    Refused,
}

/// Receives NOTIFY messages (RFC 1996) for the feeds' zones: the query engine hands each one
/// here, and a NOTIFY from a feed's primary wakes that feed.
#[derive(Debug, Default)]
pub struct Notifier {
    feeds: Vec<(Vec<u8>, Feed, Arc<Notify>)>,
    /// Refused NOTIFYs logged so far: the first few are, the rest only counted (a flood of
    /// them must not flood the log).
    refused_logged: std::sync::atomic::AtomicUsize,
}

/// Refused NOTIFYs that are logged; every one is counted.
const REFUSED_LOGGED: usize = 20;

impl Notifier {
    /// Judges a NOTIFY for `zone` (wire form, any case) from `from`, waking the feed if it
    /// is accepted; logged and counted either way.
    pub fn notify(&self, zone: &[u8], from: IpAddr) -> NotifyVerdict {
        let lower: Vec<u8> = zone.iter().map(u8::to_ascii_lowercase).collect();
        let mut known = None;
        for (z, feed, wake) in &self.feeds {
            if *z != lower {
                continue;
            }
            known = Some(feed);
            if feed.is_primary(from) {
                info!("feed {}: NOTIFY from {from}: checking now", feed.name);
                metrics::feed_notify(&feed.name, true);
                wake.notify_one();
                return NotifyVerdict::Accepted;
            }
        }
        let log = self
            .refused_logged
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            < REFUSED_LOGGED;
        let zone = crate::dns::wire::name_to_string(zone);
        match known {
            Some(feed) => {
                if log {
                    warn!(
                        "feed {}: NOTIFY for {zone} from {from}, which is not one of its primaries: refused",
                        feed.name
                    );
                }
                metrics::feed_notify(&feed.name, false);
            }
            None => {
                if log {
                    warn!("NOTIFY for {zone} from {from}: no feed has this zone: refused");
                }
                metrics::feed_notify("", false);
            }
        }
        NotifyVerdict::Refused
    }
}

/// `<name>.json`: what is not in the zone file.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    zone: String,
    serial: u32,
    /// Unix seconds of the last check that succeeded.
    last_success: u64,
}

/// The zone as the feed holds it.
#[derive(Debug, Clone)]
struct Zone {
    soa: Soa,
    records: BTreeSet<Box<str>>,
}

/// Why a check changed nothing.
#[derive(Debug, thiserror::Error)]
enum CheckError {
    #[error("{primary}: {error}")]
    Xfr {
        primary: std::net::SocketAddr,
        error: XfrError,
    },
    #[error("{primary}: serial went backwards: the primary has {theirs}, we have {ours}")]
    Backwards {
        primary: std::net::SocketAddr,
        theirs: u32,
        ours: u32,
    },
    #[error("{primary}: {why}; asking for the whole zone")]
    Ixfr {
        primary: std::net::SocketAddr,
        why: String,
    },
    #[error(
        "shrink guard: serial {serial} has {next} records, {lost:.0}% fewer than the {previous} of serial {old}"
    )]
    Shrink {
        serial: u32,
        old: u32,
        previous: usize,
        next: usize,
        lost: f64,
    },
    #[error("cannot write the zone: {0}")]
    Write(#[from] atomic_file::Error),
}

impl CheckError {
    fn reason(&self) -> &'static str {
        match self {
            CheckError::Xfr { error, .. } => error.reason(),
            CheckError::Backwards { .. } => "serial_backwards",
            CheckError::Ixfr { .. } => "ixfr",
            CheckError::Shrink { .. } => "shrink_guard",
            CheckError::Write(_) => "write",
        }
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// One feed's state and task.
pub struct Runner {
    feed: Feed,
    /// The zone name as record lines spell it (lowercase, trailing dot).
    origin: String,
    max_shrink: f64,
    zone: Option<Zone>,
    last_success: Option<SystemTime>,
    /// The last failure logged (logged again only when the reason changes).
    reported: Option<String>,
    /// Expired and, with `after_expire: drop`, removed from the blocklist.
    expired: bool,
    wake: Arc<Notify>,
    reload: UnboundedSender<Trigger>,
    /// Where what an IXFR changed goes, for the reloader to serve before the whole zone.
    patches: Patches,
}

impl Runner {
    fn new(
        feed: Feed,
        max_shrink: f64,
        reload: UnboundedSender<Trigger>,
        patches: Patches,
    ) -> Runner {
        let mut r = Runner {
            origin: feed.zone.to_string(),
            feed,
            max_shrink,
            zone: None,
            last_success: None,
            reported: None,
            expired: false,
            wake: Arc::new(Notify::new()),
            reload,
            patches,
        };
        r.load();
        r
    }

    /// Reads the persisted zone (and its sidecar) back.
    fn load(&mut self) {
        let Ok(text) = std::fs::read_to_string(&self.feed.path) else {
            return;
        };
        let mut soa = None;
        let mut records = BTreeSet::new();
        for l in text.lines() {
            if l.is_empty() || l.starts_with([';', '$']) {
                continue;
            }
            if soa.is_none() {
                soa = Soa::parse(l)
                    .filter(|_| l.split_whitespace().next() == Some(self.origin.as_str()));
                if soa.is_none() {
                    warn!(
                        "feed {}: {} does not start with the SOA of {}; transferring the whole zone",
                        self.feed.name,
                        self.feed.path.display(),
                        self.feed.zone
                    );
                    return;
                }
                continue;
            }
            records.insert(l.into());
        }
        let Some(soa) = soa else { return };
        let saved: Saved = std::fs::read(self.feed.state_path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        if saved.serial == soa.serial && saved.last_success > 0 {
            self.last_success = Some(UNIX_EPOCH + Duration::from_secs(saved.last_success));
        }
        info!(
            "feed {}: serving the last good zone {} serial {} ({} records) from {}",
            self.feed.name,
            self.feed.zone,
            soa.serial,
            records.len(),
            self.feed.path.display()
        );
        metrics::set_feed_zone(&self.feed.name, soa.serial, records.len());
        if let Some(t) = self.last_success {
            metrics::feed_succeeded(&self.feed.name, t);
        }
        self.zone = Some(Zone { soa, records });
    }

    /// One check against the primaries in order; returns how long to wait for the next.
    async fn check(&mut self) -> Duration {
        let mut errors = Vec::new();
        for &primary in &self.feed.primaries.clone() {
            match self.check_one(primary).await {
                Ok(()) => return self.succeeded(),
                Err(e) => errors.push(e),
            }
        }
        self.failed(errors)
    }

    async fn check_one(&mut self, primary: std::net::SocketAddr) -> Result<(), CheckError> {
        let f = &self.feed;
        let have = self.zone.as_ref().map(|z| z.soa.clone());
        let kind = if have.is_some() { "ixfr" } else { "axfr" };
        let got = xfr::transfer(primary, &f.zone, have.as_ref(), f.tsig.as_ref(), f.timeout).await;
        let got = match (got, &have) {
            // A primary that cannot serve IXFR (refused, not implemented, only an SOA back, a
            // diff that does not fit): the whole zone instead.
            (Err(e @ (XfrError::Rcode(_) | XfrError::Malformed(_))), Some(_)) => {
                metrics::feed_transfer(&f.name, "ixfr", false);
                info!(
                    "feed {}: IXFR from {primary}: {e}; asking for the whole zone",
                    f.name
                );
                xfr::transfer(primary, &f.zone, None, f.tsig.as_ref(), f.timeout)
                    .await
                    .map_err(|error| {
                        metrics::feed_transfer(&f.name, "axfr", false);
                        CheckError::Xfr { primary, error }
                    })?
            }
            (Err(error), _) => {
                metrics::feed_transfer(&f.name, kind, false);
                return Err(CheckError::Xfr { primary, error });
            }
            (Ok(t), _) => t,
        };
        let kind = match &got {
            Transfer::Full { .. } => "axfr",
            _ => "ixfr",
        };
        let result = self.apply(primary, got).await;
        metrics::feed_transfer(&self.feed.name, kind, result.is_ok());
        if let Err(CheckError::Ixfr { .. }) = &result {
            // Differences that do not fit our copy: start again from the whole zone.
            warn!("feed {}: {}", self.feed.name, result.as_ref().unwrap_err());
            let f = &self.feed;
            let full = xfr::transfer(primary, &f.zone, None, f.tsig.as_ref(), f.timeout)
                .await
                .map_err(|error| {
                    metrics::feed_transfer(&self.feed.name, "axfr", false);
                    CheckError::Xfr { primary, error }
                })?;
            let result = self.apply(primary, full).await;
            metrics::feed_transfer(&self.feed.name, "axfr", result.is_ok());
            return result;
        }
        result
    }

    /// Applies what a transfer brought, or says why not.
    async fn apply(
        &mut self,
        primary: std::net::SocketAddr,
        got: Transfer,
    ) -> Result<(), CheckError> {
        let ours = self.zone.as_ref().map(|z| z.soa.serial);
        let theirs = match &got {
            Transfer::UpToDate(soa)
            | Transfer::Full { soa, .. }
            | Transfer::Incremental { soa, .. } => soa.serial,
        };
        if let Some(ours) = ours {
            if serial_newer(ours, theirs) {
                return Err(CheckError::Backwards {
                    primary,
                    theirs,
                    ours,
                });
            }
            if ours == theirs {
                return Ok(());
            }
        }
        let previous = self.zone.as_ref().map_or(0, |z| z.records.len());
        let mut patch_of = None;
        let (zone, how) = match got {
            Transfer::UpToDate(_) => return Ok(()),
            Transfer::Full { soa, records } => {
                let records: BTreeSet<Box<str>> = records
                    .into_iter()
                    .filter(|r| self.in_zone(r))
                    .map(Into::into)
                    .collect();
                let n = records.len();
                (Zone { soa, records }, format!("AXFR, {n} records"))
            }
            Transfer::Incremental { soa, steps } => {
                let mut zone = self.zone.take().expect("IXFR only with a zone");
                let touched = patch::touched(&self.origin, &steps, &zone.records);
                let before = patch::records(&zone.records, &touched);
                let (mut added, mut deleted) = (0, 0);
                let mut undo: Vec<(bool, Box<str>)> = Vec::new();
                let mut bad = None;
                'steps: for step in &steps {
                    for d in &step.deleted {
                        if !self.in_zone(d) {
                            continue;
                        }
                        match zone.records.take(d.as_str()) {
                            Some(r) => {
                                undo.push((false, r));
                                deleted += 1;
                            }
                            None => {
                                bad = Some(format!(
                                    "IXFR {} → {} deletes a record we do not have ({d})",
                                    step.from, step.to
                                ));
                                break 'steps;
                            }
                        }
                    }
                    for a in &step.added {
                        if self.in_zone(a) && zone.records.insert(a.as_str().into()) {
                            undo.push((true, a.as_str().into()));
                            added += 1;
                        }
                    }
                }
                if let Some(why) = bad {
                    undo_all(&mut zone, undo);
                    self.zone = Some(zone);
                    return Err(CheckError::Ixfr { primary, why });
                }
                let old = std::mem::replace(&mut zone.soa, soa);
                let n = zone.records.len();
                if let Some(lost) =
                    super::guard::refuses(previous as u64, n as u64, self.max_shrink)
                {
                    zone.soa = old.clone();
                    undo_all(&mut zone, undo);
                    self.zone = Some(zone);
                    return Err(CheckError::Shrink {
                        serial: theirs,
                        old: old.serial,
                        previous,
                        next: n,
                        lost: lost * 100.0,
                    });
                }
                let after = patch::records(&zone.records, &touched);
                if before.len() + after.len() <= patch::MAX_RECORDS {
                    patch_of = Some(Patch {
                        from: old.serial,
                        to: zone.soa.serial,
                        before: patch::text(&self.origin, &old.text, &before),
                        after: patch::text(&self.origin, &zone.soa.text, &after),
                    });
                }
                (
                    zone,
                    format!(
                        "IXFR {} steps, +{added} −{deleted}, {n} records",
                        steps.len()
                    ),
                )
            }
        };
        if let Some(old) = &self.zone
            && let Some(lost) =
                super::guard::refuses(previous as u64, zone.records.len() as u64, self.max_shrink)
        {
            return Err(CheckError::Shrink {
                serial: theirs,
                old: old.soa.serial,
                previous,
                next: zone.records.len(),
                lost: lost * 100.0,
            });
        }
        let (records, serial) = (zone.records.len(), zone.soa.serial);
        // Queued before the file is renamed into place, so that a pass that reads the new file
        // finds it.
        if let Some(p) = patch_of {
            self.patches.push(&self.feed.path, p);
        }
        let (zone, written) = self.persist(zone, primary).await;
        // Not on disk, not served: the next check transfers the whole zone again.
        self.zone = zone.filter(|_| written.is_ok());
        written?;
        info!(
            "feed {}: zone {} serial {serial} from {primary} ({how}); reloading",
            self.feed.name, self.feed.zone
        );
        metrics::set_feed_zone(&self.feed.name, serial, records);
        let _ = self.reload.send(Trigger::Feed);
        Ok(())
    }

    /// Whether a record line is inside the zone and not at its apex (SOA and NS there are
    /// the zone's own, not policy).
    fn in_zone(&self, line: &str) -> bool {
        let owner = line.split(' ').next().unwrap_or("");
        let zone = self.origin.as_str();
        owner.len() > zone.len()
            && owner.ends_with(zone)
            && owner.as_bytes()[owner.len() - zone.len() - 1] == b'.'
    }

    /// Writes the zone file (on the blocking pool: a million lines take a while). The zone
    /// comes back unless the writer panicked.
    async fn persist(
        &self,
        zone: Zone,
        primary: std::net::SocketAddr,
    ) -> (Option<Zone>, Result<(), CheckError>) {
        let (path, name, origin) = (
            self.feed.path.clone(),
            self.feed.name.clone(),
            self.origin.clone(),
        );
        let joined = tokio::task::spawn_blocking(move || {
            let r = write_zone(&path, &name, &origin, &zone, primary);
            (zone, r)
        })
        .await;
        match joined {
            Ok((zone, r)) => (Some(zone), r.map_err(CheckError::from)),
            Err(e) => (
                None,
                Err(CheckError::Write(atomic_file::Error {
                    path: self.feed.path.clone(),
                    source: std::io::Error::other(e.to_string()),
                })),
            ),
        }
    }

    fn save_state(&self) {
        let Some(z) = &self.zone else { return };
        let saved = Saved {
            zone: self.feed.zone.to_string(),
            serial: z.soa.serial,
            last_success: self.last_success.map_or(0, unix),
        };
        let json = serde_json::to_vec(&saved).unwrap_or_default();
        if let Err(e) = atomic_file::write(&self.feed.state_path(), &json, Durability::Rebuildable)
        {
            warn!("feed {}: {e}", self.feed.name);
        }
    }

    fn succeeded(&mut self) -> Duration {
        let now = SystemTime::now();
        self.last_success = Some(now);
        metrics::feed_succeeded(&self.feed.name, now);
        if self.reported.take().is_some() {
            info!("feed {}: transfers work again", self.feed.name);
        }
        if self.expired {
            self.expired = false;
            info!("feed {}: no longer expired", self.feed.name);
            if self.feed.after_expire == AfterExpire::Drop
                && let Some(z) = &self.zone
            {
                let (path, name, origin) =
                    (&self.feed.path, &self.feed.name, self.feed.zone.to_string());
                if let Err(e) = write_zone(path, name, &origin, z, self.feed.primaries[0]) {
                    warn!("feed {name}: {e}");
                }
                let _ = self.reload.send(Trigger::Feed);
            }
        }
        self.save_state();
        let refresh = self.zone.as_ref().map_or(0, |z| z.soa.refresh);
        self.interval(refresh)
    }

    fn failed(&mut self, errors: Vec<CheckError>) -> Duration {
        let text = errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        let reasons: Vec<&str> = errors.iter().map(CheckError::reason).collect();
        let key = reasons.join(",");
        if self.reported.as_deref() != Some(key.as_str()) {
            let keeps = if self.zone.is_some() {
                "the previous zone keeps serving"
            } else {
                "the feed has no zone yet"
            };
            warn!("feed {}: {text}; {keeps}", self.feed.name);
            self.reported = Some(key);
        }
        self.check_expiry();
        let retry = self.zone.as_ref().map_or(0, |z| z.soa.retry);
        self.interval(retry)
    }

    fn check_expiry(&mut self) {
        let (Some(z), Some(last)) = (&self.zone, self.last_success) else {
            return;
        };
        let expire = Duration::from_secs(u64::from(z.soa.expire));
        if self.expired || last.elapsed().unwrap_or_default() < expire {
            return;
        }
        self.expired = true;
        match self.feed.after_expire {
            AfterExpire::Keep => warn!(
                "feed {}: no good check for the SOA expire time ({} s): keeping its last zone \
                 (serial {}) as after_expire: keep says",
                self.feed.name,
                expire.as_secs(),
                z.soa.serial
            ),
            AfterExpire::Drop => {
                warn!(
                    "feed {}: no good check for the SOA expire time ({} s): its zone is dropped \
                     until a transfer succeeds (after_expire: drop)",
                    self.feed.name,
                    expire.as_secs()
                );
                let _ = std::fs::remove_file(&self.feed.path);
                let _ = self.reload.send(Trigger::Feed);
            }
        }
    }

    /// `secs` (an SOA refresh or retry) within the feed's bounds, minus up to a tenth.
    fn interval(&self, secs: u32) -> Duration {
        let d = Duration::from_secs(u64::from(secs))
            .clamp(self.feed.refresh_min, self.feed.refresh_max);
        let jitter = d.mul_f64(rand::random::<f64>() / 10.0);
        (d - jitter).max(self.feed.refresh_min.min(Duration::from_secs(1)))
    }

    async fn run(mut self, mut wait: Duration) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
            }
            if self.reload.is_closed() {
                return;
            }
            wait = self.check().await;
        }
    }
}

fn undo_all(zone: &mut Zone, undo: Vec<(bool, Box<str>)>) {
    for (added, r) in undo.into_iter().rev() {
        if added {
            zone.records.remove(&r);
        } else {
            zone.records.insert(r);
        }
    }
}

/// The zone as an RPZ zone file the list parser reads: `$ORIGIN`, the SOA (its serial is what
/// `fraudwall check` names), then one record per line.
fn write_zone(
    path: &Path,
    name: &str,
    origin: &str,
    zone: &Zone,
    primary: std::net::SocketAddr,
) -> Result<(), atomic_file::Error> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let at = |source| atomic_file::Error {
        path: path.to_path_buf(),
        source,
    };
    atomic_file::replace(path, Durability::Sync, |w| {
        writeln!(
            w,
            "; feed {name}: zone {origin} serial {} from {primary}; rewritten by fraudwall on every change",
            zone.soa.serial
        )
        .map_err(at)?;
        writeln!(w, "$ORIGIN {origin}").map_err(at)?;
        writeln!(w, "{}", zone.soa.text).map_err(at)?;
        for r in &zone.records {
            writeln!(w, "{r}").map_err(at)?;
        }
        Ok::<_, atomic_file::Error>(())
    })
}

/// The feeds of `cfg`, each with its persisted zone loaded.
pub struct Feeds {
    runners: Vec<Runner>,
}

impl Feeds {
    /// Loads every feed's last good zone.
    pub fn new(
        cfg: &BlocklistsConfig,
        reload: UnboundedSender<Trigger>,
        patches: &Patches,
    ) -> Feeds {
        Feeds {
            runners: cfg
                .feeds
                .iter()
                .map(|f| Runner::new(f.clone(), cfg.max_shrink, reload.clone(), patches.clone()))
                .collect(),
        }
    }

    /// Transfers, all at once, the zones of feeds that have none on disk yet (a first start),
    /// so that the first compile has them.
    pub async fn fetch_missing(&mut self) -> Vec<Option<Duration>> {
        let checks = self.runners.iter_mut().map(|r| async move {
            if r.zone.is_none() {
                Some(r.check().await)
            } else {
                None
            }
        });
        futures_util::future::join_all(checks).await
    }

    /// Starts every feed's task (the first check at once, or after `waits`); the notifier
    /// wakes them.
    pub fn spawn(self, waits: Vec<Option<Duration>>) -> Arc<Notifier> {
        let mut notifier = Notifier::default();
        for (i, r) in self.runners.into_iter().enumerate() {
            notifier
                .feeds
                .push((wire(&r.feed.zone), r.feed.clone(), r.wake.clone()));
            let wait = waits.get(i).copied().flatten().unwrap_or_default();
            tokio::spawn(r.run(wait));
        }
        Arc::new(notifier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_arithmetic() {
        assert!(serial_newer(2, 1));
        assert!(!serial_newer(1, 2));
        assert!(!serial_newer(5, 5));
        assert!(serial_newer(0, u32::MAX), "wraps around");
        assert!(serial_newer(10, 0xffff_fff0));
        assert!(
            !serial_newer(0x8000_0000, 0),
            "2^31 apart is undefined: not newer"
        );
    }
}
