//! Lists downloaded from a URL: fetched every `interval` with conditional requests (ETag /
//! If-Modified-Since), written atomically into the list directory, and from there handled like
//! any other list file (settle check, shrink guard, previous version kept on failure). A failed
//! download changes nothing: the last good copy keeps serving.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, info, warn};

use super::{RemoteList, Trigger};
use crate::atomic_file::{self, Durability};
use crate::metrics;

/// Largest list accepted from a server.
pub const MAX_DOWNLOAD: u64 = 512 << 20;
/// Deadline for one whole download.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(120);

/// The validators of the last download, kept in `<state_dir>/remote/<file>.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Validators {
    url: String,
    etag: Option<String>,
    last_modified: Option<String>,
}

/// Why a fetch changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// No answer: connection, TLS, timeout.
    #[error("{0}")]
    Request(#[source] ureq::Error),
    /// An answer other than 200 or 304.
    #[error("HTTP {0}")]
    Status(u16),
    /// The body broke off, or was larger than [`MAX_DOWNLOAD`].
    #[error("reading the body: {0}")]
    Body(#[source] ureq::Error),
    /// The copy could not be written into the list directory.
    #[error(transparent)]
    Write(#[from] atomic_file::Error),
    /// The fetch task itself failed.
    #[error("fetch task failed: {0}")]
    Task(String),
}

/// What one fetch did.
#[derive(Debug, PartialEq, Eq)]
pub enum Fetched {
    /// A new copy of this many bytes was written.
    Updated(usize),
    /// 304 Not Modified: nothing was written.
    NotModified,
}

/// Fetches `list` now and then every `list.interval` until the reloader goes away.
pub fn spawn(list: RemoteList, state_dir: PathBuf, tx: UnboundedSender<Trigger>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(FETCH_TIMEOUT))
        .http_status_as_error(false)
        .user_agent(concat!("fraudwall/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    tokio::spawn(async move {
        loop {
            let (a, l, s) = (agent.clone(), list.clone(), state_dir.clone());
            let result = tokio::task::spawn_blocking(move || fetch(&a, &l, &s))
                .await
                .unwrap_or_else(|e| Err(FetchError::Task(e.to_string())));
            match result {
                Ok(Fetched::Updated(n)) => {
                    info!(
                        "remote list fetched: {} → {}: {n} bytes",
                        list.url,
                        list.path.display()
                    );
                    if tx.send(Trigger::Fetched).is_err() {
                        return;
                    }
                }
                Ok(Fetched::NotModified) => debug!("remote list not modified: {}", list.url),
                Err(e) => {
                    warn!(
                        "remote list fetch failed: {}: {e}; keeping the last copy",
                        list.url
                    );
                    metrics::reload_failed();
                }
            }
            tokio::time::sleep(list.interval).await;
            if tx.is_closed() {
                return;
            }
        }
    });
}

/// One conditional GET. Validators are only sent while the last copy is still on disk.
pub fn fetch(
    agent: &ureq::Agent,
    list: &RemoteList,
    state_dir: &Path,
) -> Result<Fetched, FetchError> {
    let file = list
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| list.name.clone());
    let vpath = state_dir.join("remote").join(format!("{file}.json"));
    let old: Validators = std::fs::read(&vpath)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(|v: &Validators| v.url == list.url && list.path.is_file())
        .unwrap_or_default();
    let mut req = agent.get(&list.url);
    if let Some(etag) = &old.etag {
        req = req.header("If-None-Match", etag);
    }
    if let Some(lm) = &old.last_modified {
        req = req.header("If-Modified-Since", lm);
    }
    let mut resp = req.call().map_err(FetchError::Request)?;
    match resp.status().as_u16() {
        304 => return Ok(Fetched::NotModified),
        200 => {}
        s => return Err(FetchError::Status(s)),
    }
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let new = Validators {
        url: list.url.clone(),
        etag: header("etag"),
        last_modified: header("last-modified"),
    };
    let body = resp
        .body_mut()
        .with_config()
        .limit(MAX_DOWNLOAD)
        .read_to_vec()
        .map_err(FetchError::Body)?;
    // The download is the only copy until the next fetch: make it durable.
    atomic_file::write(&list.path, &body, Durability::Sync)?;
    let _ = std::fs::create_dir_all(state_dir.join("remote"));
    let json = serde_json::to_vec(&new).unwrap_or_default();
    if let Err(e) = atomic_file::write(&vpath, &json, Durability::Sync) {
        warn!("{e}");
    }
    Ok(Fetched::Updated(body.len()))
}
