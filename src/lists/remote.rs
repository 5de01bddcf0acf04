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
    /// A 200 answer with an HTML page (a captive portal, a login or error page), not a list.
    #[error("the server sent an HTML page, not a list (a login or error page?)")]
    Html,
    /// The body does not have the pinned SHA-256.
    #[error("SHA-256 is {found}, the list's sha256 pin says {expected}")]
    Pin { expected: String, found: String },
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

/// The HTTP client for `list`: HTTPS only, redirects included (no downgrade to plain HTTP),
/// unless the list's own URL is `http://` (which config allows only with `allow_http`).
fn agent(list: &RemoteList) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(FETCH_TIMEOUT))
        .http_status_as_error(false)
        .https_only(!list.url.starts_with("http://"))
        .user_agent(concat!("fraudwall/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// One fetch on the blocking pool, logged; true when a new copy was written.
async fn fetch_logged(agent: &ureq::Agent, list: &RemoteList, state_dir: &Path) -> bool {
    let (a, l, s) = (agent.clone(), list.clone(), state_dir.to_path_buf());
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
            true
        }
        Ok(Fetched::NotModified) => {
            debug!("remote list not modified: {}", list.url);
            false
        }
        Err(e) => {
            warn!(
                "remote list fetch failed: {}: {e}; keeping the last copy",
                list.url
            );
            metrics::reload_failed();
            false
        }
    }
}

/// Fetches, all at once, the remote lists that have no copy on disk yet (a first start), so
/// that the first compile has them.
pub async fn fetch_missing(cfg: &super::BlocklistsConfig) {
    let missing = cfg.remotes.iter().filter(|r| !r.path.is_file());
    let fetches = missing.map(|r| async { fetch_logged(&agent(r), r, &cfg.state_dir).await });
    futures_util::future::join_all(fetches).await;
}

/// Fetches `list` now and then every `list.interval` until the reloader goes away.
pub fn spawn(list: RemoteList, state_dir: PathBuf, tx: UnboundedSender<Trigger>) {
    let agent = agent(&list);
    tokio::spawn(async move {
        loop {
            if fetch_logged(&agent, &list, &state_dir).await && tx.send(Trigger::Fetched).is_err() {
                return;
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
    let html =
        header("content-type").is_some_and(|t| t.to_ascii_lowercase().starts_with("text/html"));
    let body = resp
        .body_mut()
        .with_config()
        .limit(MAX_DOWNLOAD)
        .read_to_vec()
        .map_err(FetchError::Body)?;
    // A portal or error page served with 200 must not replace a list: its words would be
    // parsed as names (and the shrink guard would stop only some of it).
    if html || looks_like_html(&body) {
        return Err(FetchError::Html);
    }
    if let Some(expected) = &list.sha256 {
        let found = sha256_hex(&body);
        if !found.eq_ignore_ascii_case(expected) {
            return Err(FetchError::Pin {
                expected: expected.clone(),
                found,
            });
        }
    }
    // The download is the only copy until the next fetch: make it durable.
    if let Some(dir) = list.path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    atomic_file::write(&list.path, &body, Durability::Sync)?;
    let _ = std::fs::create_dir_all(state_dir.join("remote"));
    let json = serde_json::to_vec(&new).unwrap_or_default();
    if let Err(e) = atomic_file::write(&vpath, &json, Durability::Sync) {
        warn!("{e}");
    }
    Ok(Fetched::Updated(body.len()))
}

/// Whether a body starts like an HTML document (after a BOM and white space).
fn looks_like_html(body: &[u8]) -> bool {
    let body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    let head: Vec<u8> = body[start..]
        .iter()
        .take(14)
        .map(u8::to_ascii_lowercase)
        .collect();
    head.starts_with(b"<!doctype html") || head.starts_with(b"<html")
}

fn sha256_hex(body: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, body);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_recognised() {
        assert!(looks_like_html(b"\xef\xbb\xbf  \n<!DOCTYPE html><html>"));
        assert!(looks_like_html(b"<HTML><body>login</body>"));
        assert!(!looks_like_html(b"fraud.test\n<html>.test\n"));
        assert!(!looks_like_html(b""));
    }

    #[test]
    fn sha256_of_a_known_input() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    /// With https only (every list URL that is https://), a plain-HTTP address is refused
    /// before any connection: the same rule holds for a redirect to one.
    #[test]
    fn https_lists_never_fetch_plain_http() {
        let list = RemoteList {
            name: "l".into(),
            url: "https://lists.example/l.txt".into(),
            path: "/nonexistent/l.txt".into(),
            interval: std::time::Duration::from_secs(60),
            sha256: None,
        };
        let agent = agent(&list);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/l.txt", listener.local_addr().unwrap());
        listener.set_nonblocking(true).unwrap();
        assert!(agent.get(&url).call().is_err());
        assert!(listener.accept().is_err(), "no connection was made");
    }
}
