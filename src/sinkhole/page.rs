//! The warning page: the HTTP server behind the sinkhole address.
//!
//! A blocked name resolves to the sinkhole address, so the browser comes here with the blocked
//! name in `Host`. Whatever the host and path, GET/HEAD get a page that names the blocked site,
//! the reason (category and list), the time and an incident id the caller can quote to the
//! anti-fraud hotline, in Chinese and/or English by `Accept-Language`, with a "report a mistake"
//! form. Requests that are not page loads (images, scripts, XHR, `Accept` without `text/html`)
//! get a tiny plain-text answer with the same status. Hosts that are not blocked (someone typed
//! the address) get a generic page.
//!
//! # HTTPS
//!
//! Most fraud sites are reached over HTTPS, and a sinkholed name over HTTPS cannot show a valid
//! certificate: nobody but the site's owner can get one for that name, and fraudwall will not
//! forge one. So for `https://` links the user sees the browser's own connection error, not
//! this page. That is why the sinkhole address must be a local address of the host running
//! fraudwall (or a dedicated address routed to it) with nothing listening on 443: the kernel
//! answers the TLS connection with an immediate RST and the browser shows "connection refused"
//! at once instead of spinning until a timeout. Never point the sinkhole at an address that
//! silently drops packets. Plain `http://` links, typed names and HTTP-to-HTTPS redirects that
//! the fraud site itself would have done all land here and show the page. The blocked event
//! is logged by the resolver either way, so the ISP can still warn the customer. Pages served
//! from an operator portal name with a real certificate are the way to show the page over
//! HTTPS: configure `tls:` and run [`serve_tls`] beside [`serve`].
//!
//! Configuration (the `warning_page:` key of the main config; every key shown with its default):
//!
//! ```yaml
//! warning_page:
//!   # Addresses to serve the page on; normally port 80 of the sinkhole address(es).
//!   listen: ["127.0.0.1:8080"]
//!   # Who blocks: shown on the page ("Example Telecom 示例电信").
//!   operator: "您的网络服务提供商 Your Internet provider"
//!   # Anti-fraud hotline shown on the page (96110: China's national anti-fraud hotline).
//!   hotline: "96110"
//!   # Show the "report a mistake" form and accept POST /.fraudwall/report.
//!   report: true
//!   # Operator's own HTML template replacing the built-in one ({{placeholder}} substitution,
//!   # see src/sinkhole/page.html for the placeholders and sections).
//!   template: null
//!   # Where reports are appended, one JSON line each (parent folders are created).
//!   reports_file: "reports.jsonl"
//!   # The reports file is rotated when it would grow past this (reports_file.1, .2, ...),
//!   # keeping this many rotated files; a flood of reports cannot fill the disk.
//!   reports_max_bytes: 10485760
//!   reports_keep: 3
//!   # Largest report body accepted; larger gets 413.
//!   report_max_bytes: 4096
//!   # Reports accepted per client (IPv4 address or IPv6 /64) per minute; more gets 429.
//!   # 0 means no limit.
//!   report_rate_per_minute: 5
//!   # HTTP status of the page: 403 (default) or 451.
//!   status: 403
//!   # Offset of the times shown on the page, "+08:00" for China.
//!   utc_offset: "+00:00"
//!   # Concurrent connections; more are closed at once. Room for a flood of slow clients
//!   # beside real visitors (an idle connection costs a few KiB).
//!   max_connections: 4096
//!   # Concurrent connections from one client (an IPv4 address or an IPv6 /64).
//!   max_connections_per_client: 32
//!   # Seconds a request body (a report) may take to arrive; slower gets 408.
//!   body_timeout_secs: 5
//!   # Also serve the page over HTTPS for a portal name you hold a certificate for (see HTTPS
//!   # above: this cannot make blocked names show the page over HTTPS). null: off.
//!   tls: null
//!   #  listen: ["127.0.0.1:8443"]
//!   #  cert: /etc/fraudwall/portal.crt   # PEM chain, leaf first (required)
//!   #  key: /etc/fraudwall/portal.key    # PEM key (required)
//! ```

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Bytes};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::{PAGE_VIEWS_TOTAL, REPORTS_TOTAL};
use crate::section::Check;

/// The path the report form posts to. Under a dot-folder so it cannot collide with a real
/// path the user was trying to reach (which gets the warning page anyway).
pub const REPORT_PATH: &str = "/.fraudwall/report";

/// The built-in template.
pub const BUILTIN_TEMPLATE: &str = include_str!("page.html");

/// Longest host name kept from a request (the DNS limit).
const MAX_HOST_LEN: usize = 253;
/// Longest reason kept from a report, in characters.
const MAX_REASON_CHARS: usize = 2000;

/// The `warning_page:` section of the configuration.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WarningPageConfig {
    /// Listen addresses. Default `["127.0.0.1:8080"]`.
    pub listen: Vec<SocketAddr>,
    /// The operator's name shown on the page.
    pub operator: String,
    /// The anti-fraud hotline shown on the page. Default `96110`.
    pub hotline: String,
    /// Enable the report form and endpoint. Default `true`.
    pub report: bool,
    /// Operator template replacing the built-in one. Default none.
    pub template: Option<PathBuf>,
    /// Reports file (JSON lines). Default `reports.jsonl`.
    pub reports_file: PathBuf,
    /// Rotate the reports file before it grows past this many bytes. Default 10 MiB.
    pub reports_max_bytes: u64,
    /// Rotated reports files kept. Default 3.
    pub reports_keep: usize,
    /// Largest accepted report body in bytes. Default 4096.
    pub report_max_bytes: usize,
    /// Reports per client per minute, 0 for no limit. Default 5.
    pub report_rate_per_minute: u32,
    /// Status code of the page, 403 or 451. Default 403.
    pub status: u16,
    /// UTC offset of displayed times, `+HH:MM`. Default `+00:00`.
    pub utc_offset: String,
    /// Concurrent connection limit. Default 4096.
    pub max_connections: usize,
    /// Concurrent connections per client (IPv4 address, IPv6 /64). Default 32.
    pub max_connections_per_client: usize,
    /// Seconds a request body may take to arrive. Default 5.
    pub body_timeout_secs: u64,
    /// Serve the page over TLS too, for an operator portal name. Default none.
    pub tls: Option<TlsConfig>,
}

/// The `warning_page.tls:` section: a certificate for a name the operator owns.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Listen addresses. Default `["127.0.0.1:8443"]`.
    #[serde(default = "default_tls_listen")]
    pub listen: Vec<SocketAddr>,
    /// PEM certificate chain, leaf first. Required.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1). Required.
    pub key: PathBuf,
}

fn default_tls_listen() -> Vec<SocketAddr> {
    vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 8443))]
}

impl Default for WarningPageConfig {
    fn default() -> Self {
        WarningPageConfig {
            listen: vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 8080))],
            operator: "您的网络服务提供商 Your Internet provider".to_string(),
            hotline: "96110".to_string(),
            report: true,
            template: None,
            reports_file: PathBuf::from("reports.jsonl"),
            reports_max_bytes: 10 * 1024 * 1024,
            reports_keep: 3,
            report_max_bytes: 4096,
            report_rate_per_minute: 5,
            // 403 rather than 451: a 451 is cacheable by default (RFC 7725) and claims a legal
            // demand, which a protective block often is not; 403 says "refused" and is never
            // heuristically cached. Operators blocking under a legal order may choose 451.
            status: 403,
            utc_offset: "+00:00".to_string(),
            max_connections: 4096,
            max_connections_per_client: 32,
            body_timeout_secs: 5,
            tls: None,
        }
    }
}

impl WarningPageConfig {
    /// Validates the section: paths made absolute, and everything the page server checks when
    /// it starts (template readable, status, UTC offset, TLS certificate and key usable), so
    /// that `config check` fails where `serve` would.
    pub fn validate(mut self, check: &mut Check) -> WarningPageConfig {
        self.reports_file = check.path(&self.reports_file);
        if let Some(t) = &self.template {
            let t = check.path(t);
            if let Err(e) = std::fs::read_to_string(&t) {
                check.problem("template", format!("{}: {e}", t.display()));
            }
            self.template = Some(t);
        }
        if !matches!(self.status, 403 | 451) {
            check.problem("status", "must be 403 or 451");
        }
        if parse_offset(&self.utc_offset).is_none() {
            check.problem("utc_offset", "must look like +08:00 or -05:30");
        }
        check.range("max_connections", self.max_connections, 1, 1_000_000);
        // Not above the total (when the total itself makes sense).
        let most = if self.max_connections == 0 {
            usize::MAX
        } else {
            self.max_connections
        };
        check.range(
            "max_connections_per_client",
            self.max_connections_per_client,
            1,
            most,
        );
        check.range("body_timeout_secs", self.body_timeout_secs, 1, 600);
        check.range("report_max_bytes", self.report_max_bytes, 64, 1 << 20);
        if self.reports_max_bytes < self.report_max_bytes as u64 * 2 {
            check.problem(
                "reports_max_bytes",
                "must hold at least two reports (twice report_max_bytes)",
            );
        }
        if let Some(tls) = &mut self.tls {
            tls.cert = check.path(&tls.cert);
            tls.key = check.path(&tls.key);
            if let Err(e) = tls_acceptor(tls) {
                check.problem("tls", e.to_string());
            }
        }
        self
    }
}

/// Why a host is blocked, as the resolver's blocklist says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockInfo {
    /// The list's name.
    pub list: String,
    /// The list's category (`fraud`, `phishing`, …).
    pub category: String,
    /// The entry that matched (the host or a parent).
    pub entry: String,
}

/// Answers "is this host blocked, and why" for the page; the resolver implements it against
/// the live blocklist. Called with a lowercase host without port or trailing dot, which may be
/// anything a client sent (an IP literal, garbage): it must not panic on any input.
pub trait BlockLookup: Send + Sync + 'static {
    /// The block that applies to `host`, if any.
    fn lookup(&self, host: &str) -> Option<BlockInfo>;
}

/// The live blocklist answers for itself.
impl BlockLookup for crate::blocklist::SharedBlocklist {
    fn lookup(&self, host: &str) -> Option<BlockInfo> {
        let bl = self.load();
        let v = bl.lookup(host)?;
        if !v.is_block() {
            return None;
        }
        let list = bl.list(&v)?;
        Some(BlockInfo {
            list: list.name.clone(),
            category: list.category.clone(),
            entry: v.entry_name(host),
        })
    }
}

/// Why the page server could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A listen address could not be bound.
    #[error(
        "cannot listen for the warning page on {addr}: {source} (is the address local and the port free? check warning_page.listen)"
    )]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The operator template could not be read.
    #[error("cannot read warning page template {path}: {source}")]
    Template {
        /// The configured template.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The TLS certificate or key could not be loaded.
    #[error("warning_page.tls: cannot use {path}: {reason}")]
    Tls {
        /// The certificate or key file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A config value is out of range.
    #[error("warning_page.{key}: {reason}")]
    Config {
        /// The key.
        key: &'static str,
        /// What is wrong and what is accepted.
        reason: &'static str,
    },
}

/// Binds every `cfg.listen` address.
pub async fn bind(cfg: &WarningPageConfig) -> Result<Vec<TcpListener>, Error> {
    bind_all(&cfg.listen).await
}

/// Binds every `cfg.tls.listen` address (none when `tls` is not configured).
pub async fn bind_tls(cfg: &WarningPageConfig) -> Result<Vec<TcpListener>, Error> {
    match &cfg.tls {
        Some(tls) => bind_all(&tls.listen).await,
        None => Ok(Vec::new()),
    }
}

async fn bind_all(addrs: &[SocketAddr]) -> Result<Vec<TcpListener>, Error> {
    let mut listeners = Vec::with_capacity(addrs.len());
    for &addr in addrs {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        listeners.push(listener);
    }
    Ok(listeners)
}

/// Serves the warning page on `listeners` until `shutdown` completes, then lets open requests
/// finish (for up to 5 s). Logs `warning page listening on http ADDR` per listener.
pub async fn serve(
    listeners: Vec<TcpListener>,
    cfg: Arc<WarningPageConfig>,
    lookup: Arc<dyn BlockLookup>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    run(listeners, cfg, lookup, None, shutdown).await
}

/// Like [`serve`] but over TLS with the certificate of `cfg.tls` (for an operator portal name;
/// see the module doc on why blocked HTTPS names cannot get the page). Logs
/// `warning page listening on https ADDR`. Fails with [`Error::Config`] without `tls:`.
pub async fn serve_tls(
    listeners: Vec<TcpListener>,
    cfg: Arc<WarningPageConfig>,
    lookup: Arc<dyn BlockLookup>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let Some(tls) = &cfg.tls else {
        return Err(Error::Config {
            key: "tls",
            reason: "serve_tls needs warning_page.tls with cert and key",
        });
    };
    let acceptor = tls_acceptor(tls)?;
    run(listeners, cfg, lookup, Some(acceptor), shutdown).await
}

/// Loads the certificate chain and key of `tls` into an acceptor (HTTP/1.1 only).
pub fn tls_acceptor(tls: &TlsConfig) -> Result<tokio_rustls::TlsAcceptor, Error> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let tls_err = |path: &PathBuf, reason: String| Error::Tls {
        path: path.clone(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| tls_err(&tls.cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(tls_err(&tls.cert, "no CERTIFICATE block found".into()));
    }
    let key =
        PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| tls_err(&tls.key, e.to_string()))?;
    // An explicit provider: the process may link more than one, and picking by feature
    // unification would be luck.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| tls_err(&tls.key, e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

async fn run(
    listeners: Vec<TcpListener>,
    cfg: Arc<WarningPageConfig>,
    lookup: Arc<dyn BlockLookup>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let state = Arc::new(State::new(cfg, lookup)?);
    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    let permits = Arc::new(Semaphore::new(state.cfg.max_connections.max(1)));
    let per_client = crate::client::Caps::new(state.cfg.max_connections_per_client.max(1));
    let scheme = if tls.is_some() { "https" } else { "http" };
    for listener in listeners {
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            source,
        })?;
        tracing::info!("warning page listening on {scheme} {addr}");
        tracker.spawn(accept_loop(
            listener,
            Conns {
                state: state.clone(),
                token: token.clone(),
                tracker: tracker.clone(),
                permits: permits.clone(),
                per_client: per_client.clone(),
                tls: tls.clone(),
            },
        ));
    }
    shutdown.await;
    token.cancel();
    tracker.close();
    if tokio::time::timeout(Duration::from_secs(5), tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("warning page: connections still open after 5 s, closing them");
    }
    Ok(())
}

/// What every connection of one server shares.
#[derive(Clone)]
struct Conns {
    state: Arc<State>,
    token: CancellationToken,
    tracker: TaskTracker,
    permits: Arc<Semaphore>,
    per_client: crate::client::Caps,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

async fn accept_loop(listener: TcpListener, conns: Conns) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = conns.token.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // EMFILE and friends: back off rather than spin on the error.
                    tracing::warn!("warning page accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = conns.permits.clone().try_acquire_owned() else {
            // Over the limit: closing at once is kinder to the machine (and to the DNS server
            // sharing it) than queueing connections from a flood.
            tracing::debug!("warning page: connection limit reached, closing {peer}");
            continue;
        };
        let Some(place) = conns.per_client.admit(peer.ip()) else {
            tracing::debug!("warning page: per-client connection limit reached, closing {peer}");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conns2 = conns.clone();
        conns.tracker.spawn(async move {
            let _permit = (permit, place);
            match &conns2.tls {
                None => serve_conn(TokioIo::new(stream), peer.ip(), &conns2).await,
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(tls)) => serve_conn(TokioIo::new(tls), peer.ip(), &conns2).await,
                        Ok(Err(err)) => {
                            tracing::debug!("warning page: TLS handshake with {peer} failed: {err}")
                        }
                        Err(_) => {
                            tracing::debug!("warning page: TLS handshake with {peer} timed out")
                        }
                    }
                }
            }
        });
    }
}

async fn serve_conn<I>(io: I, client: IpAddr, conns: &Conns)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let state = conns.state.clone();
    let service = hyper::service::service_fn(move |req| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(handle(req, &state, client).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        // Caps request head size and count: anything bigger gets 431 from hyper.
        .max_header_size(8 * 1024)
        .max_headers(64)
        .serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = conns.token.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        }
    }
}

/// Everything a request needs, prepared once.
struct State {
    cfg: Arc<WarningPageConfig>,
    lookup: Arc<dyn BlockLookup>,
    template: String,
    status: StatusCode,
    offset: time::UtcOffset,
    limiter: RateLimiter,
    /// Serialises appends so two reports never interleave within a line.
    reports_lock: tokio::sync::Mutex<()>,
}

impl State {
    fn new(cfg: Arc<WarningPageConfig>, lookup: Arc<dyn BlockLookup>) -> Result<State, Error> {
        let template = match &cfg.template {
            None => BUILTIN_TEMPLATE.to_string(),
            Some(path) => std::fs::read_to_string(path).map_err(|source| Error::Template {
                path: path.clone(),
                source,
            })?,
        };
        let status = match cfg.status {
            403 => StatusCode::FORBIDDEN,
            451 => StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS,
            _ => {
                return Err(Error::Config {
                    key: "status",
                    reason: "must be 403 or 451",
                });
            }
        };
        let offset = parse_offset(&cfg.utc_offset).ok_or(Error::Config {
            key: "utc_offset",
            reason: "must look like +08:00 or -05:30",
        })?;
        let limiter = RateLimiter::new(cfg.report_rate_per_minute);
        Ok(State {
            cfg,
            lookup,
            template,
            status,
            offset,
            limiter,
            reports_lock: tokio::sync::Mutex::new(()),
        })
    }
}

fn parse_offset(s: &str) -> Option<time::UtcOffset> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1i8, &s[1..]),
        b'-' => (-1i8, &s[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let h: i8 = h.parse().ok()?;
    let m: i8 = m.parse().ok()?;
    if !(0..=14).contains(&h) || !(0..60).contains(&m) {
        return None;
    }
    time::UtcOffset::from_hms(sign * h, sign * m, 0).ok()
}

/// Which languages a response shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// Chinese only.
    Zh,
    /// English only.
    En,
    /// Both, Chinese first: the client asked for neither (or said nothing).
    Both,
}

impl Lang {
    /// Picks from an `Accept-Language` value: the higher-q of zh* and en* wins (the earlier
    /// one on a tie); neither present (or absent header) shows both.
    pub fn from_accept_language(value: Option<&str>) -> Lang {
        let Some(value) = value else {
            return Lang::Both;
        };
        let mut best: Option<(Lang, f32)> = None;
        for part in value.split(',') {
            let mut fields = part.split(';');
            let tag = fields.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = fields
                .filter_map(|f| f.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let lang = if tag == "zh" || tag.starts_with("zh-") {
                Lang::Zh
            } else if tag == "en" || tag.starts_with("en-") {
                Lang::En
            } else {
                continue;
            };
            if q > 0.0 && best.is_none_or(|(_, bq)| q > bq) {
                best = Some((lang, q));
            }
        }
        best.map_or(Lang::Both, |(lang, _)| lang)
    }

    fn tag(self) -> &'static str {
        match self {
            Lang::Zh | Lang::Both => "zh-CN",
            Lang::En => "en",
        }
    }

    fn zh(self) -> bool {
        self != Lang::En
    }

    fn en(self) -> bool {
        self != Lang::Zh
    }
}

async fn handle<B>(req: Request<B>, state: &State, client: IpAddr) -> Response<Full<Bytes>>
where
    B: Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let lang = Lang::from_accept_language(
        req.headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    if state.cfg.report && req.method() == Method::POST && req.uri().path() == REPORT_PATH {
        return report(req, state, client, lang).await;
    }
    // Any other method (a phishing form posting credentials, say) gets the page too, and its
    // body is never read: nothing a victim typed is received, let alone stored.
    let host = request_host(&req);
    let info = host.as_deref().and_then(|h| state.lookup.lookup(h));
    let host = host.unwrap_or_default();
    if !wants_html(req.method(), req.uri().path(), req.headers()) {
        metrics::counter!(PAGE_VIEWS_TOTAL, "kind" => "plain").increment(1);
        let body = match lang {
            Lang::Zh => format!("已拦截 {host}：疑似诈骗网站。\n"),
            Lang::En => format!("Blocked {host}: suspected fraud site.\n"),
            Lang::Both => format!("已拦截 Blocked {host}: suspected fraud site.\n"),
        };
        return response(state.status, "text/plain; charset=utf-8", body);
    }
    let now = SystemTime::now();
    let incident = incident_id(now, state.offset);
    let kind = if info.is_some() { "page" } else { "generic" };
    metrics::counter!(PAGE_VIEWS_TOTAL, "kind" => kind).increment(1);
    // The id the caller quotes to the hotline is only useful if it leads back to the client.
    tracing::info!(%client, host = %host, incident = %incident, blocked = info.is_some(), "warning page view");
    let page = render_page(state, lang, &host, info.as_ref(), now, &incident);
    response(state.status, "text/html; charset=utf-8", page)
}

fn render_page(
    state: &State,
    lang: Lang,
    host: &str,
    info: Option<&BlockInfo>,
    now: SystemTime,
    incident: &str,
) -> String {
    let empty = BlockInfo::default();
    let b = info.unwrap_or(&empty);
    let category_zh = category_zh(&b.category);
    let time = display_time(now, state.offset);
    let page = keep_sections(
        &state.template,
        &[
            ("zh", lang.zh()),
            ("en", lang.en()),
            ("blocked", info.is_some()),
            ("generic", info.is_none()),
            ("report", state.cfg.report),
        ],
    );
    substitute(&page, |name| {
        Some(match name {
            "host" => host,
            "list" => &b.list,
            "category" => &b.category,
            "category_zh" => category_zh.unwrap_or(&b.category),
            "entry" => &b.entry,
            "time" => &time,
            "incident" => incident,
            "operator" => &state.cfg.operator,
            "hotline" => &state.cfg.hotline,
            "report_path" => REPORT_PATH,
            "lang" => lang.tag(),
            _ => return None,
        })
    })
}

/// Chinese names for the common categories; others are shown as configured.
fn category_zh(category: &str) -> Option<&'static str> {
    Some(match category.to_ascii_lowercase().as_str() {
        "fraud" | "scam" => "诈骗网站",
        "phishing" => "钓鱼网站",
        "malware" => "恶意软件",
        "gambling" => "赌博网站",
        "investment" | "investment-fraud" => "投资理财诈骗",
        "impersonation" => "冒充官方网站",
        _ => return None,
    })
}

fn response(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Neither caches nor crawlers may take this for the real site's content.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "x-robots-tag",
        HeaderValue::from_static("noindex, nofollow"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Defence in depth behind the escaping: no script can run on this origin whatever slips
    // into the page, and the form can only post back here.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; \
             base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    resp
}

/// The host the client asked for: absolute-form URI authority, else `Host`; lowercase, without
/// port, brackets or trailing dot, at most 253 bytes.
fn request_host<B>(req: &Request<B>) -> Option<String> {
    let raw = match req.uri().host() {
        Some(h) => h.to_string(),
        None => req.headers().get(header::HOST)?.to_str().ok()?.to_string(),
    };
    let raw = raw.trim();
    let host = if let Some(rest) = raw.strip_prefix('[') {
        // [v6]:port
        rest.split(']').next().unwrap_or(rest)
    } else {
        match raw.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|c| c.is_ascii_digit()) && !h.contains(':') => h,
            _ => raw,
        }
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() {
        return None;
    }
    if host.len() > MAX_HOST_LEN {
        let mut end = MAX_HOST_LEN;
        while !host.is_char_boundary(end) {
            end -= 1;
        }
        return Some(host[..end].to_string());
    }
    Some(host)
}

/// Whether to answer with the HTML page rather than the tiny plain body.
fn wants_html(method: &Method, path: &str, headers: &HeaderMap) -> bool {
    const ASSETS: &[&str] = &[
        "js", "mjs", "css", "png", "jpg", "jpeg", "gif", "ico", "json", "svg", "webp", "avif",
        "woff", "woff2", "ttf", "otf", "map", "xml", "txt", "mp4", "webm", "mp3",
    ];
    if *method != Method::GET && *method != Method::HEAD && *method != Method::POST {
        return false;
    }
    if headers.contains_key("x-requested-with") {
        return false;
    }
    if let Some(dest) = headers.get("sec-fetch-dest").and_then(|v| v.to_str().ok())
        && !matches!(dest, "document" | "iframe" | "frame" | "embed" | "object")
    {
        return false;
    }
    let last = path.rsplit('/').next().unwrap_or("");
    if let Some((_, ext)) = last.rsplit_once('.')
        && ASSETS.iter().any(|a| a.eq_ignore_ascii_case(ext))
    {
        return false;
    }
    match headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) {
        Some(accept) => accept.to_ascii_lowercase().contains("text/html"),
        // No Accept at all: a simple client; the page is the useful answer.
        None => true,
    }
}

/// Removes every `<!--name-->…<!--/name-->` span whose flag is false, and the markers of kept
/// spans: inside `<title>` (text only, no comments) a browser would show them in the tab.
/// An unterminated span is left alone rather than eating the page.
fn keep_sections(template: &str, flags: &[(&str, bool)]) -> String {
    let mut out = template.to_string();
    for &(name, keep) in flags {
        let open = format!("<!--{name}-->");
        let close = format!("<!--/{name}-->");
        if keep {
            out = out.replace(&open, "").replace(&close, "");
            continue;
        }
        let mut result = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(start) = rest.find(&open) {
            let Some(len) = rest[start..].find(&close) else {
                break;
            };
            result.push_str(&rest[..start]);
            rest = &rest[start + len + close.len()..];
        }
        result.push_str(rest);
        out = result;
    }
    out
}

/// Replaces `{{name}}` with the HTML-escaped value; unknown names are left as they are.
fn substitute<'a>(template: &str, value: impl Fn(&str) -> Option<&'a str>) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let name = after[..end].trim();
                match value(name) {
                    Some(v) => escape_into(&mut out, v),
                    None => out.push_str(&rest[start..start + 2 + end + 2]),
                }
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// HTML escaping safe in text and in quoted attributes.
fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(&mut out, s);
    out
}

/// `20250102-030405-7K3M9Q`: the displayed (offset) time plus 30 random bits in Crockford base32 (no I, L, O, U),
/// short and unambiguous enough to read out over the phone.
fn incident_id(now: SystemTime, offset: time::UtcOffset) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    // Same clock as the time shown beside it, so the two never seem to disagree.
    let dt = time::OffsetDateTime::from(now).to_offset(offset);
    let mut bits: u32 = rand::random();
    let mut suffix = String::with_capacity(6);
    for _ in 0..6 {
        suffix.push(char::from(ALPHABET[(bits & 31) as usize]));
        bits >>= 5;
    }
    format!(
        "{:04}{:02}{:02}-{:02}{:02}{:02}-{suffix}",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

fn display_time(now: SystemTime, offset: time::UtcOffset) -> String {
    let dt = time::OffsetDateTime::from(now).to_offset(offset);
    let (h, m, _) = offset.as_hms();
    let sign = if offset.is_negative() { '-' } else { '+' };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC{sign}{:02}:{:02}",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        h.unsigned_abs(),
        m.unsigned_abs()
    )
}

#[derive(Serialize)]
struct ReportLine<'a> {
    time: &'a str,
    client: &'a str,
    host: &'a str,
    reason: &'a str,
    incident: &'a str,
}

async fn report<B>(
    req: Request<B>,
    state: &State,
    client: IpAddr,
    lang: Lang,
) -> Response<Full<Bytes>>
where
    B: Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let max = state.cfg.report_max_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return report_outcome("too_large", StatusCode::PAYLOAD_TOO_LARGE, lang, None);
    }
    if !state.limiter.allow(client, Instant::now()) {
        return report_outcome("rate_limited", StatusCode::TOO_MANY_REQUESTS, lang, None);
    }
    let request_host = request_host(&req).unwrap_or_default();
    // A body without Content-Length (chunked) is held to the same cap while it is read, and a
    // body that trickles in is cut off: a report is a few hundred bytes a browser sends at once.
    let timeout = Duration::from_secs(state.cfg.body_timeout_secs);
    let read = tokio::time::timeout(timeout, Limited::new(req.into_body(), max).collect());
    let body = match read.await {
        Err(_) => return report_outcome("timeout", StatusCode::REQUEST_TIMEOUT, lang, None),
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(err)) => {
            return if err.is::<http_body_util::LengthLimitError>() {
                report_outcome("too_large", StatusCode::PAYLOAD_TOO_LARGE, lang, None)
            } else {
                report_outcome("bad_request", StatusCode::BAD_REQUEST, lang, None)
            };
        }
    };
    let (mut host, mut reason, mut incident) = (String::new(), String::new(), String::new());
    for (key, value) in form_urlencoded::parse(&body) {
        match &*key {
            "host" => host = value.into_owned(),
            "reason" => reason = value.into_owned(),
            "incident" => incident = value.into_owned(),
            _ => {}
        }
    }
    let mut host = host.trim().to_ascii_lowercase();
    if host.is_empty() {
        host = request_host;
    }
    host = host.chars().take(MAX_HOST_LEN).collect();
    let reason: String = reason.trim().chars().take(MAX_REASON_CHARS).collect();
    let now = SystemTime::now();
    // Keep the id from the page the user saw, so the report joins up with the view; anything
    // that does not look like one of ours is replaced.
    let incident_ok = !incident.is_empty()
        && incident.len() <= 40
        && incident
            .bytes()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'-');
    if !incident_ok {
        incident = incident_id(now, state.offset);
    }
    let line = ReportLine {
        time: &crate::events::rfc3339_millis(now),
        client: &client.to_canonical().to_string(),
        host: &host,
        reason: &reason,
        incident: &incident,
    };
    let Ok(mut json) = serde_json::to_vec(&line) else {
        return report_outcome("error", StatusCode::INTERNAL_SERVER_ERROR, lang, None);
    };
    json.push(b'\n');
    let written = {
        let _guard = state.reports_lock.lock().await;
        append(&state.cfg, &json).await
    };
    match written {
        Ok(()) => {
            tracing::info!(%client, host = %host, incident = %incident, "warning page: mistake reported");
            report_outcome("accepted", StatusCode::OK, lang, Some((&host, &incident)))
        }
        Err(err) => {
            tracing::error!(
                "warning page: cannot append report to {}: {err}",
                state.cfg.reports_file.display()
            );
            report_outcome("error", StatusCode::INTERNAL_SERVER_ERROR, lang, None)
        }
    }
}

/// Appends a report line, rotating the file first when the line would take it past
/// `reports_max_bytes` (`reports.jsonl` → `.1` → `.2` …, the oldest beyond `reports_keep`
/// deleted).
async fn append(cfg: &WarningPageConfig, line: &[u8]) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let path = &cfg.reports_file;
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        tokio::fs::create_dir_all(parent).await?;
    }
    let size = tokio::fs::metadata(path).await.map_or(0, |m| m.len());
    if size > 0 && size + line.len() as u64 > cfg.reports_max_bytes {
        rotate(path, cfg.reports_keep).await?;
    }
    // Opened per report (reports are rare) so an external logrotate needs no signal.
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await?;
    file.write_all(line).await?;
    file.flush().await
}

async fn rotate(path: &std::path::Path, keep: usize) -> std::io::Result<()> {
    let numbered = |i: usize| {
        let mut p = path.as_os_str().to_owned();
        p.push(format!(".{i}"));
        PathBuf::from(p)
    };
    if keep == 0 {
        return tokio::fs::remove_file(path).await;
    }
    let _ = tokio::fs::remove_file(numbered(keep)).await;
    for i in (1..keep).rev() {
        let _ = tokio::fs::rename(numbered(i), numbered(i + 1)).await;
    }
    tokio::fs::rename(path, numbered(1)).await
}

/// The small bilingual page answering a report. Every outcome is always shown in both
/// languages: a thank-you must be understood even when the first language guess was wrong.
fn report_outcome(
    outcome: &'static str,
    status: StatusCode,
    _lang: Lang,
    accepted: Option<(&str, &str)>,
) -> Response<Full<Bytes>> {
    metrics::counter!(REPORTS_TOTAL, "outcome" => outcome).increment(1);
    let (zh, en) = match status {
        StatusCode::OK => (
            "谢谢！我们已收到您的误报反馈，会尽快核查。",
            "Thank you! We have received your report and will review it soon.",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "内容过长，请缩短后再提交。",
            "Your report is too long; please shorten it.",
        ),
        StatusCode::TOO_MANY_REQUESTS => (
            "提交过于频繁，请稍后再试。",
            "Too many reports; please try again in a minute.",
        ),
        StatusCode::BAD_REQUEST => (
            "无法读取您的提交，请重试。",
            "Your report could not be read; please try again.",
        ),
        _ => (
            "抱歉，暂时无法保存您的反馈，请拨打反诈专线。",
            "Sorry, your report could not be saved; please call the hotline.",
        ),
    };
    let details = match accepted {
        Some((host, incident)) => format!(
            "<p><code>{}</code> · <code>{}</code></p>",
            escape(host),
            escape(incident)
        ),
        None => String::new(),
    };
    let body = format!(
        "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{zh} {en}</title><style>body{{font:17px/1.6 system-ui,sans-serif;max-width:640px;\
         margin:60px auto;padding:0 20px;color:#111827}}h1{{font-size:24px}}</style></head>\
         <body><h1>{zh}</h1><p>{en}</p>{details}</body></html>"
    );
    response(status, "text/html; charset=utf-8", body)
}

/// A fixed one-minute window per client (IPv4 address or IPv6 /64, since one customer holds a
/// whole /64). Memory is bounded: stale windows are purged when the table grows, and when it is
/// still full (a flood from many addresses) new clients are refused rather than remembered.
struct RateLimiter {
    per_minute: u32,
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

const RATE_TABLE_MAX: usize = 65_536;

impl RateLimiter {
    fn new(per_minute: u32) -> Self {
        RateLimiter {
            per_minute,
            windows: Mutex::new(HashMap::new()),
        }
    }

    fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let key = crate::client::prefix(ip);
        const WINDOW: Duration = Duration::from_secs(60);
        // A poisoned lock only means another request panicked mid-update; the counts are
        // still usable.
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() >= RATE_TABLE_MAX / 2 && !windows.contains_key(&key) {
            windows.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
            if windows.len() >= RATE_TABLE_MAX {
                return false;
            }
        }
        let entry = windows.entry(key).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        if entry.1 >= self.per_minute {
            return false;
        }
        entry.1 += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_zh_en_or_both() {
        let cases = [
            (None, Lang::Both),
            (Some(""), Lang::Both),
            (Some("fr-FR,fr;q=0.9"), Lang::Both),
            (Some("zh-CN,zh;q=0.9,en;q=0.8"), Lang::Zh),
            (Some("en-US,en;q=0.9"), Lang::En),
            (Some("en-US,en;q=0.9,zh-CN;q=0.95"), Lang::En),
            (Some("en;q=0.5,zh-TW;q=0.8"), Lang::Zh),
            (Some("ZH-hk"), Lang::Zh),
            (Some("zh;q=0,en;q=0"), Lang::Both),
            (Some("de, en;q=0.3"), Lang::En),
        ];
        for (header, want) in cases {
            assert_eq!(Lang::from_accept_language(header), want, "{header:?}");
        }
    }

    fn host_of(host: &str) -> Option<String> {
        let req = Request::builder().header("host", host).body(()).unwrap();
        request_host(&req)
    }

    #[test]
    fn host_is_lowercased_and_port_stripped() {
        assert_eq!(
            host_of("WWW.Evil.Example:8080").as_deref(),
            Some("www.evil.example")
        );
        assert_eq!(host_of("evil.example.").as_deref(), Some("evil.example"));
        assert_eq!(host_of("[2001:DB8::1]:80").as_deref(), Some("2001:db8::1"));
        assert_eq!(host_of("").as_deref(), None);
        assert_eq!(host_of(&"a".repeat(600)).map(|h| h.len()), Some(253));
    }

    #[test]
    fn escaping_covers_text_and_attributes() {
        assert_eq!(
            escape("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
        let out = substitute("a{{x}}b{{unknown}}c{{", |n| (n == "x").then_some("<"));
        assert_eq!(out, "a&lt;b{{unknown}}c{{");
    }

    #[test]
    fn sections_are_removed_or_kept() {
        let t = "A<!--zh-->中<!--/zh--><!--en-->E<!--/en-->Z<!--zh-->文<!--/zh-->";
        assert_eq!(keep_sections(t, &[("zh", false), ("en", true)]), "AEZ");
        assert_eq!(
            keep_sections("x<!--zh-->no end", &[("zh", false)]),
            "x<!--zh-->no end"
        );
    }

    #[test]
    fn html_is_only_for_page_loads() {
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, HeaderValue::from_static(v));
            }
            m
        };
        let browser = h(&[("accept", "text/html,application/xhtml+xml,*/*;q=0.8")]);
        assert!(wants_html(&Method::GET, "/", &browser));
        assert!(wants_html(&Method::GET, "/login.php", &browser));
        assert!(!wants_html(&Method::GET, "/app.js", &browser));
        assert!(!wants_html(&Method::GET, "/logo.PNG", &browser));
        assert!(!wants_html(&Method::GET, "/", &h(&[("accept", "*/*")])));
        assert!(!wants_html(
            &Method::GET,
            "/",
            &h(&[
                ("accept", "text/html"),
                ("x-requested-with", "XMLHttpRequest")
            ])
        ));
        assert!(!wants_html(
            &Method::GET,
            "/",
            &h(&[("accept", "text/html"), ("sec-fetch-dest", "image")])
        ));
        assert!(wants_html(
            &Method::GET,
            "/",
            &h(&[("accept", "text/html"), ("sec-fetch-dest", "document")])
        ));
        assert!(wants_html(&Method::GET, "/", &HeaderMap::new()));
        assert!(!wants_html(&Method::DELETE, "/", &browser));
    }

    #[test]
    fn incident_ids_are_unique_and_readable() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_735_787_045);
        let a = incident_id(now, time::UtcOffset::UTC);
        assert!(a.starts_with("20250102-030405-"), "{a}");
        let b = incident_id(now, time::UtcOffset::from_hms(8, 0, 0).unwrap());
        assert!(b.starts_with("20250102-110405-"), "{b}");
        assert_eq!(a.len(), 22);
        let ids: std::collections::HashSet<_> = (0..200)
            .map(|_| incident_id(now, time::UtcOffset::UTC))
            .collect();
        assert!(ids.len() > 195);
    }

    #[test]
    fn rate_limit_is_per_client_and_per_minute() {
        let limiter = RateLimiter::new(2);
        let t = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(limiter.allow(a, t));
        assert!(limiter.allow(a, t));
        assert!(!limiter.allow(a, t));
        assert!(limiter.allow(b, t));
        assert!(limiter.allow(a, t + Duration::from_secs(61)));
        // Two addresses in one IPv6 /64 share a budget.
        let v6a: IpAddr = "2001:db8::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8::2".parse().unwrap();
        assert!(limiter.allow(v6a, t));
        assert!(limiter.allow(v6b, t));
        assert!(!limiter.allow(v6a, t));
    }

    #[test]
    fn offsets_parse() {
        assert_eq!(
            parse_offset("+08:00"),
            time::UtcOffset::from_hms(8, 0, 0).ok()
        );
        assert_eq!(
            parse_offset("-05:30"),
            time::UtcOffset::from_hms(-5, -30, 0).ok()
        );
        assert_eq!(parse_offset("08:00"), None);
        assert_eq!(parse_offset("+99:00"), None);
    }

    #[test]
    fn config_defaults_and_unknown_keys() {
        let cfg: WarningPageConfig = serde_saphyr::from_str("hotline: \"110\"\n").unwrap();
        assert_eq!(cfg.hotline, "110");
        assert_eq!(cfg.report_max_bytes, 4096);
        assert_eq!(cfg.listen, vec!["127.0.0.1:8080".parse().unwrap()]);
        assert!(serde_saphyr::from_str::<WarningPageConfig>("hotlin: x\n").is_err());
    }
}
