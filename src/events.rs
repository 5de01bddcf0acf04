//! The blocked-event log: one JSON line per blocked query, written off the hot path.
//!
//! The resolver calls [`EventSink::record`], which never blocks: the event goes into a bounded
//! queue, and when the queue is full it is dropped and counted ([`EventSink::dropped`] and
//! `fraudwall_events_dropped_total`). A dedicated writer thread serialises the events, batches
//! the writes (letting a burst gather for 50 ms so a block never costs a wake-up of its own),
//! flushes after each batch and rotates the file by size.
//!
//! Configuration (the `events:` key of the main config; every key shown with its default):
//!
//! ```yaml
//! events:
//!   # Write blocked events at all.
//!   enabled: true
//!   # "stdout" or a file path. A file is the default because an ISP must keep these records
//!   # to warn the customer, and stdout usually carries the daemon's own log lines too.
//!   # Use "stdout" in containers whose log collector keeps and rotates the output.
//!   target: "blocked.jsonl"
//!   # Events held in memory while the writer catches up; beyond this they are dropped and
//!   # counted (fraudwall_events_dropped_total), never slowing DNS answers down.
//!   queue: 65536
//!   # Rotate the file when the next line would take it past this size: blocked.jsonl ->
//!   # blocked.jsonl.1 -> ... -> blocked.jsonl.<keep>. 0 never rotates (use external logrotate
//!   # with copytruncate then).
//!   rotate_bytes: 104857600   # 100 MiB
//!   # Rotated files kept; the oldest beyond this is deleted.
//!   keep: 5
//!   # How the client address is written:
//!   #   full      203.0.113.7 (default: the ISP must find the customer to warn them)
//!   #   truncate  203.0.113.0/24, 2001:db8:aa:bb00::/56 (statistics without identifying)
//!   #   hash      keyed SipHash-2-4 of the address, 32 hex digits: the same client gives the
//!   #             same value under the same key, so analysts can correlate events without
//!   #             seeing addresses. Pseudonymous only: whoever holds the key can test guesses.
//!   client_privacy: full
//!   # Key for client_privacy: hash, 32 hex digits (e.g. `openssl rand -hex 16`). When absent,
//!   # a random key is made at start (with a warning) and hashes change at every restart.
//!   hash_key: null
//! ```
//!
//! A line looks like
//! `{"time":"2025-01-02T03:04:05.678Z","client":"203.0.113.7","qname":"login.evil.example","qtype":"A","action":"sinkhole","list":"police","entry":"evil.example","category":"fraud","protocol":"udp","group":"default"}`.
//! A block by an answer's address (a listed IP prefix) adds the address, and its `entry` is the
//! prefix: `…,"entry":"198.18.7.0/24",…,"group":"default","ip":"198.18.7.9"}`.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::hash::Hasher as _;
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use serde::{Deserialize, Deserializer, Serialize};
use siphasher::sip128::{Hasher128, SipHasher24};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::metrics::{EVENTS_DROPPED_TOTAL, EVENTS_WRITTEN_TOTAL};
use crate::section::Check;

/// Where events are written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventTarget {
    /// Standard output (no rotation).
    Stdout,
    /// An append-only file, rotated by size.
    File(PathBuf),
}

impl<'de> Deserialize<'de> for EventTarget {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() {
            return Err(serde::de::Error::custom(
                "events.target must be \"stdout\" or a file path",
            ));
        }
        Ok(if s == "stdout" {
            EventTarget::Stdout
        } else {
            EventTarget::File(PathBuf::from(s))
        })
    }
}

/// How the client address appears in the log.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ClientPrivacy {
    /// The full address. Default: the point of the log is that the ISP can warn the customer
    /// who nearly reached a fraud site, which needs the address.
    #[default]
    Full,
    /// IPv4 truncated to /24, IPv6 to /56, written with the prefix length.
    Truncate,
    /// A keyed SipHash-2-4 of the address as 32 hex digits.
    Hash,
}

/// The `events:` section of the configuration.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EventLogConfig {
    /// Write events at all. Default `true`.
    pub enabled: bool,
    /// Where to write. Default the file `blocked.jsonl`.
    pub target: EventTarget,
    /// Queue capacity in events. Default 65536.
    pub queue: usize,
    /// Rotation size in bytes, 0 for never. Default 100 MiB.
    pub rotate_bytes: u64,
    /// Rotated files kept. Default 5.
    pub keep: usize,
    /// Client address treatment. Default [`ClientPrivacy::Full`].
    pub client_privacy: ClientPrivacy,
    /// Hash key, 32 hex digits, for [`ClientPrivacy::Hash`]. Default none (random per start).
    pub hash_key: Option<String>,
}

impl Default for EventLogConfig {
    fn default() -> Self {
        EventLogConfig {
            enabled: true,
            target: EventTarget::File(PathBuf::from("blocked.jsonl")),
            queue: 65536,
            rotate_bytes: 100 * 1024 * 1024,
            keep: 5,
            client_privacy: ClientPrivacy::Full,
            hash_key: None,
        }
    }
}

impl EventLogConfig {
    /// Validates the section: the target made absolute (its folder is made when the log
    /// starts), and the values [`EventLog::start`] refuses.
    pub fn validate(mut self, check: &mut Check) -> EventLogConfig {
        if let EventTarget::File(p) = &mut self.target {
            *p = check.path(p);
        }
        if self.enabled && self.queue == 0 {
            check.problem("queue", "must be at least 1");
        }
        if let Some(k) = &self.hash_key
            && parse_key(k).is_err()
        {
            check.problem(
                "hash_key",
                "must be 32 hex digits (128 bits), e.g. from `openssl rand -hex 16`",
            );
        }
        self
    }
}

/// One blocked query.
#[derive(Clone, Debug)]
pub struct BlockEvent {
    /// When the query was answered.
    pub time: SystemTime,
    /// The client's address.
    pub client: IpAddr,
    /// The query name as asked (lowercase, no trailing dot).
    pub qname: String,
    /// The query type, e.g. `"A"`.
    pub qtype: String,
    /// What the client got: `"sinkhole"`, `"nxdomain"`, … (see `metrics::action_label`).
    pub action: &'static str,
    /// The name of the list that matched.
    pub list: Arc<str>,
    /// The list entry that matched (the name itself or a parent).
    pub entry: String,
    /// The list's category.
    pub category: Arc<str>,
    /// The transport: `"udp"`, `"tcp"`, `"tls"`, `"https"`, `"quic"`.
    pub protocol: &'static str,
    /// The client's policy group (`policy.groups`), `"default"` when it is in none.
    pub group: Arc<str>,
    /// The answer address that matched, when the block is by address (`entry` is then the
    /// listed prefix); the line has no `ip` otherwise.
    pub ip: Option<IpAddr>,
}

/// Why the event log could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The log file (or its folder) could not be opened for appending.
    #[error(
        "cannot open event log {path}: {source} (check events.target and its folder's permissions)"
    )]
    Open {
        /// The configured file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// `hash_key` is not 32 hex digits.
    #[error("events.hash_key must be 32 hex digits (128 bits), e.g. from `openssl rand -hex 16`")]
    BadHashKey,
    /// `queue` is 0.
    #[error("events.queue must be at least 1")]
    ZeroQueue,
}

/// The entry point: builds the sink and its writer.
#[derive(Debug)]
pub struct EventLog;

impl EventLog {
    /// Opens the target and spawns the writer on a blocking thread.
    ///
    /// The writer drains the queue, flushes and ends once every [`EventSink`] clone has been
    /// dropped: drop them at shutdown, then await the handle to know every event is on disk.
    /// With `enabled: false` the sink discards everything and the handle finishes at once.
    /// Must be called inside a tokio runtime.
    pub fn start(cfg: &EventLogConfig) -> Result<(EventSink, JoinHandle<()>), Error> {
        let (sink, writer) = Self::channel(cfg)?;
        let handle = match writer {
            Some(writer) => tokio::task::spawn_blocking(move || writer.run()),
            None => tokio::spawn(async {}),
        };
        Ok((sink, handle))
    }

    /// Like [`EventLog::start`] but hands the writer back instead of running it (`None` when
    /// disabled), for callers that run it on their own thread, and for tests that need a
    /// writer that is not draining.
    pub fn channel(cfg: &EventLogConfig) -> Result<(EventSink, Option<EventWriter>), Error> {
        if !cfg.enabled {
            return Ok((EventSink::disabled(), None));
        }
        if cfg.queue == 0 {
            return Err(Error::ZeroQueue);
        }
        let privacy = Privacy::new(cfg.client_privacy, cfg.hash_key.as_deref())?;
        let output = Output::open(&cfg.target)?;
        let (tx, rx) = mpsc::channel(cfg.queue);
        let dropped = Arc::new(AtomicU64::new(0));
        let sink = EventSink {
            tx: Some(tx),
            dropped: dropped.clone(),
        };
        let writer = EventWriter {
            rx,
            output,
            privacy,
            rotate_bytes: cfg.rotate_bytes,
            keep: cfg.keep,
            line: Vec::with_capacity(512),
        };
        Ok((sink, Some(writer)))
    }
}

/// The handle the resolver records events through. Cheap to clone.
#[derive(Clone, Debug)]
pub struct EventSink {
    tx: Option<mpsc::Sender<BlockEvent>>,
    dropped: Arc<AtomicU64>,
}

impl EventSink {
    /// A sink that discards every event (event log disabled).
    pub fn disabled() -> Self {
        EventSink {
            tx: None,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Queues `ev` for writing. Never blocks or waits: when the queue is full (or the writer is
    /// gone) the event is dropped and counted.
    pub fn record(&self, ev: BlockEvent) {
        let Some(tx) = &self.tx else { return };
        if tx.try_send(ev).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            // Not pre-registered: this is the overload path, and the facade lookup is cheap next
            // to the event we just lost.
            metrics::counter!(EVENTS_DROPPED_TOTAL).increment(1);
        }
    }

    /// Events dropped so far by this sink and its clones.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// How long the writer lets events gather after the first of a burst.
const LINGER: std::time::Duration = std::time::Duration::from_millis(50);

/// The writer half: serialises, batches, rotates. Run it with [`EventWriter::run`] on a thread
/// where blocking file I/O is acceptable.
#[derive(Debug)]
pub struct EventWriter {
    rx: mpsc::Receiver<BlockEvent>,
    output: Output,
    privacy: Privacy,
    rotate_bytes: u64,
    keep: usize,
    line: Vec<u8>,
}

impl EventWriter {
    /// Writes events until every sink is dropped and the queue is empty, then flushes.
    ///
    /// It blocks, so run it on its own thread or `spawn_blocking`; tokio panics if it is called
    /// from inside an async task.
    pub fn run(mut self) {
        while let Some(ev) = self.rx.blocking_recv() {
            self.write(&ev);
            // Let a burst gather before draining it: a blocked query then costs the resolver a
            // queue push, not a wake-up of this thread and a write syscall each (at 1 000
            // blocks/s that was 1 000 context switches/s on the query path's cores). Lines
            // still reach the file within LINGER of the block.
            std::thread::sleep(LINGER);
            while let Ok(ev) = self.rx.try_recv() {
                self.write(&ev);
            }
            if let Err(err) = self.output.flush() {
                tracing::error!("event log flush failed: {err}");
            }
        }
        if let Err(err) = self.output.flush() {
            tracing::error!("event log flush failed: {err}");
        }
    }

    fn write(&mut self, ev: &BlockEvent) {
        self.line.clear();
        let line = Line {
            time: &rfc3339_millis(ev.time),
            client: &self.privacy.render(ev.client),
            qname: &ev.qname,
            qtype: &ev.qtype,
            action: ev.action,
            list: &ev.list,
            entry: &ev.entry,
            category: &ev.category,
            protocol: ev.protocol,
            group: &ev.group,
            ip: ev.ip,
        };
        if serde_json::to_writer(&mut self.line, &line).is_err() {
            // Only a non-string map key could fail here; there is none, but never panic.
            return;
        }
        self.line.push(b'\n');
        if self.rotate_bytes > 0 {
            let len = self.line.len() as u64;
            if self.output.size > 0 && self.output.size + len > self.rotate_bytes {
                self.output.rotate(self.keep);
            }
        }
        match self.output.write_all(&self.line) {
            Ok(()) => metrics::counter!(EVENTS_WRITTEN_TOTAL).increment(1),
            Err(err) => {
                tracing::error!("event log write failed, event lost: {err}");
                metrics::counter!(EVENTS_DROPPED_TOTAL).increment(1);
            }
        }
    }
}

#[derive(Serialize)]
struct Line<'a> {
    time: &'a str,
    client: &'a str,
    qname: &'a str,
    qtype: &'a str,
    action: &'a str,
    list: &'a str,
    entry: &'a str,
    category: &'a str,
    protocol: &'a str,
    group: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<IpAddr>,
}

/// `2025-01-02T03:04:05.678Z`. Hand-rolled: it runs once per event and needs no locale or
/// format parsing.
pub(crate) fn rfc3339_millis(t: SystemTime) -> String {
    let dt = time::OffsetDateTime::from(t);
    let mut s = String::with_capacity(24);
    let _ = write!(
        s,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.millisecond()
    );
    s
}

#[derive(Debug)]
enum Privacy {
    Full,
    Truncate,
    Hash([u8; 16]),
}

impl Privacy {
    fn new(mode: ClientPrivacy, key: Option<&str>) -> Result<Privacy, Error> {
        Ok(match mode {
            ClientPrivacy::Full => Privacy::Full,
            ClientPrivacy::Truncate => Privacy::Truncate,
            ClientPrivacy::Hash => Privacy::Hash(match key {
                Some(hex) => parse_key(hex)?,
                None => {
                    tracing::warn!(
                        "events.client_privacy is hash but events.hash_key is not set: using a \
                         random key, so client hashes will change at every restart"
                    );
                    rand::random()
                }
            }),
        })
    }

    fn render(&self, ip: IpAddr) -> String {
        // A v4 client on a dual-stack socket arrives as ::ffff:a.b.c.d; log it as v4 so the
        // same customer looks the same whichever socket they used.
        let ip = ip.to_canonical();
        match self {
            Privacy::Full => ip.to_string(),
            Privacy::Truncate => match ip {
                IpAddr::V4(v4) => {
                    let masked = u32::from(v4) & !0xff;
                    format!("{}/24", Ipv4Addr::from(masked))
                }
                IpAddr::V6(v6) => {
                    let masked = u128::from(v6) & !((1u128 << 72) - 1);
                    format!("{}/56", Ipv6Addr::from(masked))
                }
            },
            Privacy::Hash(key) => {
                let mut h = SipHasher24::new_with_key(key);
                match ip {
                    IpAddr::V4(v4) => h.write(&v4.octets()),
                    IpAddr::V6(v6) => h.write(&v6.octets()),
                }
                format!("{:032x}", h.finish128().as_u128())
            }
        }
    }
}

fn parse_key(hex: &str) -> Result<[u8; 16], Error> {
    let hex = hex.trim();
    if hex.len() != 32 || !hex.is_ascii() {
        return Err(Error::BadHashKey);
    }
    let mut key = [0u8; 16];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| Error::BadHashKey)?;
    }
    Ok(key)
}

#[derive(Debug)]
struct Output {
    kind: OutputKind,
    /// Bytes in the current file, for rotation.
    size: u64,
}

#[derive(Debug)]
enum OutputKind {
    Stdout(BufWriter<io::Stdout>),
    File {
        path: PathBuf,
        /// `None` after a failed reopen; the next rotation or write tries again.
        file: Option<BufWriter<File>>,
    },
}

impl Output {
    fn open(target: &EventTarget) -> Result<Output, Error> {
        match target {
            EventTarget::Stdout => Ok(Output {
                kind: OutputKind::Stdout(BufWriter::with_capacity(64 * 1024, io::stdout())),
                size: 0,
            }),
            EventTarget::File(path) => {
                let file = open_append(path).map_err(|source| Error::Open {
                    path: path.clone(),
                    source,
                })?;
                let size = file.metadata().map(|m| m.len()).unwrap_or(0);
                Ok(Output {
                    kind: OutputKind::File {
                        path: path.clone(),
                        file: Some(BufWriter::with_capacity(64 * 1024, file)),
                    },
                    size,
                })
            }
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut self.kind {
            OutputKind::Stdout(w) => w.write_all(buf)?,
            OutputKind::File { path, file } => {
                if file.is_none() {
                    let f = open_append(path)?;
                    self.size = f.metadata().map(|m| m.len()).unwrap_or(0);
                    *file = Some(BufWriter::with_capacity(64 * 1024, f));
                }
                if let Some(w) = file {
                    w.write_all(buf)?;
                }
            }
        }
        self.size += buf.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.kind {
            OutputKind::Stdout(w) => w.flush(),
            OutputKind::File { file: Some(w), .. } => w.flush(),
            OutputKind::File { file: None, .. } => Ok(()),
        }
    }

    /// `path` → `path.1` → … → `path.keep`, then a fresh `path`. Failures are logged and
    /// writing goes on in whatever file can be opened: losing rotation beats losing events.
    fn rotate(&mut self, keep: usize) {
        let OutputKind::File { path, file } = &mut self.kind else {
            return;
        };
        if let Some(mut w) = file.take()
            && let Err(err) = w.flush()
        {
            tracing::error!("event log flush before rotation failed: {err}");
        }
        if keep == 0 {
            if let Err(err) = std::fs::remove_file(&*path) {
                tracing::warn!(
                    "event log rotation: cannot remove {}: {err}",
                    path.display()
                );
            }
        } else {
            // The oldest is overwritten by the rename below; renaming from the top down keeps
            // every generation until its slot is free.
            for i in (1..keep).rev() {
                let from = numbered(path, i);
                if from.exists()
                    && let Err(err) = std::fs::rename(&from, numbered(path, i + 1))
                {
                    tracing::warn!(
                        "event log rotation: cannot rename {}: {err}",
                        from.display()
                    );
                }
            }
            if let Err(err) = std::fs::rename(&*path, numbered(path, 1)) {
                tracing::warn!(
                    "event log rotation: cannot rename {}: {err}",
                    path.display()
                );
            }
        }
        self.size = 0;
        match open_append(path) {
            Ok(f) => {
                self.size = f.metadata().map(|m| m.len()).unwrap_or(0);
                *file = Some(BufWriter::with_capacity(64 * 1024, f));
            }
            Err(err) => tracing::error!("event log: cannot reopen {}: {err}", path.display()),
        }
    }
}

fn numbered(path: &Path, n: usize) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

fn open_append(path: &Path) -> io::Result<File> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn truncate_masks_v4_to_24_and_v6_to_56() {
        let p = Privacy::Truncate;
        assert_eq!(p.render(ip("203.0.113.77")), "203.0.113.0/24");
        assert_eq!(p.render(ip("::ffff:203.0.113.77")), "203.0.113.0/24");
        assert_eq!(
            p.render(ip("2001:db8:aa:bbcc:1:2:3:4")),
            "2001:db8:aa:bb00::/56"
        );
    }

    #[test]
    fn hash_is_stable_per_key_and_differs_across_keys() {
        let a = Privacy::new(
            ClientPrivacy::Hash,
            Some("000102030405060708090a0b0c0d0e0f"),
        )
        .unwrap();
        let b = Privacy::new(
            ClientPrivacy::Hash,
            Some("ff0102030405060708090a0b0c0d0e0f"),
        )
        .unwrap();
        let x = a.render(ip("198.51.100.1"));
        assert_eq!(x.len(), 32);
        assert!(x.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(x, a.render(ip("198.51.100.1")));
        assert_ne!(x, a.render(ip("198.51.100.2")));
        assert_ne!(x, b.render(ip("198.51.100.1")));
    }

    #[test]
    fn bad_hash_keys_are_rejected() {
        for key in [
            "",
            "abc",
            "zz0102030405060708090a0b0c0d0e0f",
            "é0102030405060708090a0b0c0d0e0",
        ] {
            assert!(parse_key(key).is_err(), "{key}");
        }
    }

    #[test]
    fn time_is_rfc3339_utc_with_millis() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_735_787_045_678);
        assert_eq!(rfc3339_millis(t), "2025-01-02T03:04:05.678Z");
    }

    #[test]
    fn config_parses_and_rejects_unknown_keys() {
        let cfg: EventLogConfig =
            serde_saphyr::from_str("target: stdout\nclient_privacy: truncate\n").unwrap();
        assert_eq!(cfg.target, EventTarget::Stdout);
        assert_eq!(cfg.client_privacy, ClientPrivacy::Truncate);
        assert_eq!(cfg.queue, 65536);
        assert!(serde_saphyr::from_str::<EventLogConfig>("queue: 1\nqueu: 2\n").is_err());
        let cfg: EventLogConfig = serde_saphyr::from_str("target: /var/log/x.jsonl\n").unwrap();
        assert_eq!(cfg.target, EventTarget::File("/var/log/x.jsonl".into()));
    }
}
