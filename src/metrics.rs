//! Prometheus metrics: the metric names, the `/metrics` endpoint and cheap hot-path helpers.
//!
//! Every metric goes through the [`metrics`] facade, so hickory's own metrics (its `metrics`
//! features are enabled) land in the same registry and on the same endpoint as ours.
//!
//! Configuration (the `metrics:` key of the main config; every key shown with its default):
//!
//! ```yaml
//! metrics:
//!   # Address of the Prometheus endpoint (`GET /metrics`). `null` turns metrics off: no
//!   # recorder is installed and every helper in this module becomes a no-op.
//!   # Keep it on loopback or a management network: the endpoint has no authentication.
//!   listen: "127.0.0.1:9153"
//!   # Upper bounds (seconds) of the answer latency histogram buckets, ascending.
//!   latency_buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
//!                     0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]
//! ```
//!
//! Call [`install`] once at start, inside the tokio runtime and before anything records, so
//! the pre-registered hot-path handles point at the real recorder.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::Deserialize;
use tokio::task::JoinHandle;

use crate::blocklist::Action;
use crate::dns::Transport;
use crate::section::Check;

/// DNS queries answered, labels `protocol` (udp, tcp, tls, https, quic) and `rcode`
/// (NOERROR, NXDOMAIN, SERVFAIL, …, or `other`).
pub const QUERIES_TOTAL: &str = "fraudwall_queries_total";
/// Queries refused by the blocklist, labels `list`, `category` and `action`.
pub const BLOCKED_TOTAL: &str = "fraudwall_blocked_total";
/// Blocks (and `log` hits) per policy group, label `group` (the groups of `policy.groups` and
/// `default`: bounded by the config).
pub const POLICY_BLOCKED_TOTAL: &str = "fraudwall_policy_blocked_total";
/// Answers served from the cache.
pub const CACHE_HITS_TOTAL: &str = "fraudwall_cache_hits_total";
/// Lookups that missed the cache.
pub const CACHE_MISSES_TOTAL: &str = "fraudwall_cache_misses_total";
/// Time from receiving a query to sending its answer (histogram, seconds), label `protocol`.
pub const ANSWER_LATENCY_SECONDS: &str = "fraudwall_answer_latency_seconds";
/// Entries in each loaded list (gauge), label `list`.
pub const LIST_ENTRIES: &str = "fraudwall_list_entries";
/// Unix time (seconds) of the last successful blocklist reload (gauge).
pub const LAST_RELOAD_TIMESTAMP_SECONDS: &str = "fraudwall_last_reload_timestamp_seconds";
/// Blocklist reloads that failed (the previous lists stay in service).
pub const RELOAD_FAILURES_TOTAL: &str = "fraudwall_reload_failures_total";
/// List entries refused by the guard rails (a public suffix, a protected name), label `list`;
/// counted when a new version of the list is compiled.
pub const LIST_ENTRIES_REFUSED_TOTAL: &str = "fraudwall_list_entries_refused_total";
/// Warning page responses, label `kind`: `page` (HTML for a blocked host), `generic` (HTML for
/// a host that is not blocked), `plain` (small response to a non-HTML request).
pub const PAGE_VIEWS_TOTAL: &str = "fraudwall_warning_page_views_total";
/// "Report a mistake" submissions, label `outcome`: `accepted`, `too_large`, `rate_limited`,
/// `bad_request`, `error`.
pub const REPORTS_TOTAL: &str = "fraudwall_reports_total";
/// Blocked events lost: the event log queue was full, or writing the line failed.
pub const EVENTS_DROPPED_TOTAL: &str = "fraudwall_events_dropped_total";
/// Blocked events written to the event log.
pub const EVENTS_WRITTEN_TOTAL: &str = "fraudwall_events_written_total";
/// dnstap messages lost: the queue to the collector was full, or their write failed.
pub const DNSTAP_DROPPED_TOTAL: &str = "fraudwall_dnstap_dropped_total";
/// dnstap messages written to the collector.
pub const DNSTAP_SENT_TOTAL: &str = "fraudwall_dnstap_sent_total";
/// Serial of each feed's zone being served (gauge), label `feed`.
pub const FEED_SERIAL: &str = "fraudwall_feed_serial";
/// Records in each feed's zone (gauge), label `feed`.
pub const FEED_RECORDS: &str = "fraudwall_feed_records";
/// Unix time (seconds) of each feed's last good check (gauge), label `feed`: alert on
/// `time() - fraudwall_feed_last_success_timestamp_seconds`.
pub const FEED_LAST_SUCCESS: &str = "fraudwall_feed_last_success_timestamp_seconds";
/// Zone transfers, labels `feed`, `kind` (`axfr`, `ixfr`) and `result` (`ok`, `failed`); an
/// IXFR that found the zone current is an `ixfr` `ok`.
pub const FEED_TRANSFERS_TOTAL: &str = "fraudwall_feed_transfers_total";
/// NOTIFY messages, labels `feed` (empty for a zone no feed has) and `result` (`accepted`,
/// `refused`).
pub const FEED_NOTIFIES_TOTAL: &str = "fraudwall_feed_notifies_total";
/// Recursive lookups refused because the recursor's queue was full.
pub const RECURSOR_QUEUE_FULL_TOTAL: &str = "fraudwall_recursor_queue_full_total";
/// Recursive lookups that timed out.
pub const RECURSOR_TIMEOUTS_TOTAL: &str = "fraudwall_recursor_timeouts_total";

/// Tasks that panicked and were replaced, by task (`udp`, `reload`).
pub const TASK_RESTARTS_TOTAL: &str = "fraudwall_task_restarts_total";
/// Misses refused or upstream queries not sent at a fairness cap, by `limit` (client, zone).
pub const RECURSOR_LIMITED_TOTAL: &str = "fraudwall_recursor_limited_total";
/// Negative answers synthesised from validated NSEC records (RFC 8198).
pub const NSEC_SYNTHESISED_TOTAL: &str = "fraudwall_nsec_synthesised_total";
/// TCP connections (plain, DoT and DoH) closed at accept, by reason (`acl`, `limit`, `client_limit`).
pub const TCP_REFUSED_TOTAL: &str = "fraudwall_tcp_refused_total";
/// Datagrams and connections dropped for their PROXY protocol header, by `transport` and
/// `reason` (`missing`, `untrusted`, `truncated`, `oversized`, `invalid`, `timeout`).
pub const PROXY_PROTOCOL_ERRORS_TOTAL: &str = "fraudwall_proxy_protocol_errors_total";
/// Reloads of the DoT/DoH certificate that failed (the previous certificate stays in service).
pub const TLS_RELOAD_FAILURES_TOTAL: &str = "fraudwall_tls_reload_failures_total";
/// 1 when a compiled blocklist is being served, 0 when none could be loaded.
pub const LISTS_LOADED: &str = "fraudwall_lists_loaded";

/// Default latency buckets: 50 µs (a cache hit on loopback) to 5 s (a slow recursion that is
/// about to time out).
pub const DEFAULT_LATENCY_BUCKETS: [f64; 16] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0,
];

/// The `metrics:` section of the configuration.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Address of the `/metrics` endpoint; `None` disables metrics. Default `127.0.0.1:9153`.
    pub listen: Option<SocketAddr>,
    /// Latency histogram bucket bounds in seconds. Default [`DEFAULT_LATENCY_BUCKETS`].
    pub latency_buckets: Vec<f64>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 9153))),
            latency_buckets: DEFAULT_LATENCY_BUCKETS.to_vec(),
        }
    }
}

impl MetricsConfig {
    /// Validates the section.
    pub fn validate(self, check: &mut Check) -> MetricsConfig {
        if !buckets_ok(&self.latency_buckets) {
            check.problem(
                "latency_buckets",
                "must be a non-empty ascending list of positive seconds",
            );
        }
        self
    }
}

fn buckets_ok(buckets: &[f64]) -> bool {
    let ascending = buckets.windows(2).all(|w| w[0] < w[1]);
    !buckets.is_empty() && ascending && buckets[0] > 0.0
}

/// Why metrics could not be started.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The endpoint address could not be bound.
    #[error(
        "cannot listen for metrics on {addr}: {source} (is another process using the port? change metrics.listen)"
    )]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Another metrics recorder was installed first.
    #[error(
        "a different metrics recorder is already installed; metrics::install must be the only one"
    )]
    RecorderAlreadySet,
    /// The bucket list is empty or not ascending.
    #[error("metrics.latency_buckets must be a non-empty ascending list of positive seconds")]
    BadBuckets,
    /// `install` was called outside a tokio runtime.
    #[error("metrics::install must be called inside a tokio runtime")]
    NoRuntime,
}

/// A running metrics endpoint. Dropping it stops the endpoint (the recorder stays installed).
#[derive(Debug)]
pub struct MetricsHandle {
    prometheus: PrometheusHandle,
    local_addr: SocketAddr,
    server: JoinHandle<()>,
}

impl MetricsHandle {
    /// The address the endpoint actually listens on (useful when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The current exposition text, exactly what a scrape returns.
    pub fn render(&self) -> String {
        self.prometheus.render()
    }
}

impl Drop for MetricsHandle {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The global recorder's handle and the pre-registered hot-path handles, set by the first
/// successful [`install`].
static INSTALLED: OnceLock<Installed> = OnceLock::new();

struct Installed {
    prometheus: PrometheusHandle,
    hot: Hot,
}

/// Installs the global Prometheus recorder (once per process; later calls reuse it) and starts
/// the `/metrics` endpoint on `cfg.listen`, logging `metrics listening on http ADDR`.
///
/// Returns `Ok(None)` when `cfg.listen` is `None`: nothing is installed and every helper here
/// is a no-op.
pub fn install(cfg: &MetricsConfig) -> Result<Option<MetricsHandle>, Error> {
    let Some(addr) = cfg.listen else {
        return Ok(None);
    };
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
    let installed = match INSTALLED.get() {
        Some(installed) => installed,
        None => {
            let prometheus = install_recorder(&cfg.latency_buckets)?;
            describe();
            // A concurrent install may have won the race; its recorder is the global one then.
            INSTALLED.get_or_init(|| Installed {
                prometheus,
                hot: Hot::register(),
            })
        }
    };
    let listener = bind(addr)?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| Error::Bind { addr, source })?;
    let listener = {
        let _guard = runtime.enter();
        tokio::net::TcpListener::from_std(listener)
            .map_err(|source| Error::Bind { addr, source })?
    };
    tracing::info!("metrics listening on http {local_addr}");
    let prometheus = installed.prometheus.clone();
    let server = runtime.spawn(serve(listener, prometheus.clone()));
    Ok(Some(MetricsHandle {
        prometheus,
        local_addr,
        server,
    }))
}

fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, Error> {
    let listener =
        std::net::TcpListener::bind(addr).map_err(|source| Error::Bind { addr, source })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| Error::Bind { addr, source })?;
    Ok(listener)
}

fn install_recorder(buckets: &[f64]) -> Result<PrometheusHandle, Error> {
    if !buckets_ok(buckets) {
        return Err(Error::BadBuckets);
    }
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(ANSWER_LATENCY_SECONDS.to_string()), buckets)
        .map_err(|_| Error::BadBuckets)?;
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|_| Error::RecorderAlreadySet)?;
    // Histograms are only folded into their buckets during upkeep; without this the recorder's
    // internal buffers would grow between scrapes.
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(QUERIES_TOTAL, "DNS queries answered, by protocol and rcode");
    describe_counter!(BLOCKED_TOTAL, "Queries refused by the blocklist");
    describe_counter!(CACHE_HITS_TOTAL, "Answers served from the cache");
    describe_counter!(CACHE_MISSES_TOTAL, "Lookups that missed the cache");
    describe_histogram!(
        ANSWER_LATENCY_SECONDS,
        metrics::Unit::Seconds,
        "Time from query to answer"
    );
    describe_gauge!(LIST_ENTRIES, "Entries in each loaded list");
    describe_gauge!(
        LAST_RELOAD_TIMESTAMP_SECONDS,
        "Unix time of the last successful blocklist reload"
    );
    describe_counter!(RELOAD_FAILURES_TOTAL, "Blocklist reloads that failed");
    describe_counter!(
        LIST_ENTRIES_REFUSED_TOTAL,
        "List entries refused as public suffixes or protected names"
    );
    describe_counter!(PAGE_VIEWS_TOTAL, "Warning page responses");
    describe_counter!(REPORTS_TOTAL, "Report-a-mistake submissions");
    describe_counter!(EVENTS_DROPPED_TOTAL, "Blocked events dropped (queue full)");
    describe_counter!(EVENTS_WRITTEN_TOTAL, "Blocked events written to the log");
    describe_counter!(
        DNSTAP_DROPPED_TOTAL,
        "dnstap messages dropped (queue full or write failed)"
    );
    describe_counter!(
        DNSTAP_SENT_TOTAL,
        "dnstap messages written to the collector"
    );
    describe_counter!(
        RECURSOR_QUEUE_FULL_TOTAL,
        "Recursive lookups refused: queue full"
    );
    describe_counter!(RECURSOR_TIMEOUTS_TOTAL, "Recursive lookups that timed out");
    describe_counter!(
        TASK_RESTARTS_TOTAL,
        "Tasks that panicked and were replaced, by task"
    );
    describe_counter!(
        RECURSOR_LIMITED_TOTAL,
        "Misses refused or upstream queries not sent at a fairness cap, by limit"
    );
    describe_counter!(
        NSEC_SYNTHESISED_TOTAL,
        "Negative answers synthesised from validated NSEC records (RFC 8198)"
    );
    describe_counter!(
        TCP_REFUSED_TOTAL,
        "TCP connections closed at accept, by reason"
    );
    describe_counter!(
        PROXY_PROTOCOL_ERRORS_TOTAL,
        "Datagrams and connections dropped for their PROXY header, by transport and reason"
    );
    describe_counter!(
        TLS_RELOAD_FAILURES_TOTAL,
        "DoT/DoH certificate reloads that failed (the previous certificate stays)"
    );
    describe_gauge!(FEED_SERIAL, "Serial of each feed's zone being served");
    describe_gauge!(FEED_RECORDS, "Records in each feed's zone");
    describe_gauge!(
        FEED_LAST_SUCCESS,
        "Unix time of each feed's last successful check"
    );
    describe_counter!(
        FEED_TRANSFERS_TOTAL,
        "Zone transfers of each feed, by kind and result"
    );
    describe_counter!(FEED_NOTIFIES_TOTAL, "NOTIFY messages, by feed and result");
    describe_gauge!(
        LISTS_LOADED,
        "1 when a compiled blocklist is served, 0 when none could be loaded"
    );
}

/// Connections the endpoint serves at once; beyond it new ones are closed at once. Scrapers
/// and probes need a handful; a flood must not exhaust the process's descriptors.
const MAX_CONNECTIONS: usize = 64;
/// The longest a connection may live, however slowly it is used.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(30);

async fn serve(listener: tokio::net::TcpListener, handle: PrometheusHandle) {
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!("metrics endpoint accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            continue;
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let handle = handle.clone();
                async move { Ok::<_, Infallible>(respond(&req, &handle)) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, conn).await;
            drop(permit);
        });
    }
}

fn respond<B>(req: &Request<B>, handle: &PrometheusHandle) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let (status, content_type, body) = if !matches!(path, "/metrics" | "/health" | "/ready") {
        (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: try /metrics, /health or /ready\n".to_string(),
        )
    } else if req.method() != Method::GET && req.method() != Method::HEAD {
        (StatusCode::METHOD_NOT_ALLOWED, "text/plain", String::new())
    } else if path == "/health" {
        // Liveness: the process runs and answers HTTP.
        (StatusCode::OK, "text/plain", "alive\n".to_string())
    } else if path == "/ready" {
        // Readiness: a blocklist is loaded, so DNS answers are filtered.
        if LOADED.load(Ordering::Relaxed) {
            (
                StatusCode::OK,
                "text/plain",
                "ready: lists loaded\n".to_string(),
            )
        } else {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                "not ready: no lists loaded\n".to_string(),
            )
        }
    } else {
        (
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            handle.render(),
        )
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    resp
}

/// Rcode label values indexed by rcode number; anything past the end is `other`.
const RCODES: [&str; 11] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
    "NXRRSET", "NOTAUTH", "NOTZONE",
];
const RCODE_SLOTS: usize = RCODES.len() + 1;

/// Handles registered once so the per-query path does no key building or allocation.
struct Hot {
    queries: Vec<Counter>,
    latency: Vec<Histogram>,
    cache_hits: Counter,
    cache_misses: Counter,
    queue_full: Counter,
    timeouts: Counter,
}

impl Hot {
    fn register() -> Hot {
        let mut queries = Vec::with_capacity(Transport::ALL.len() * RCODE_SLOTS);
        let mut latency = Vec::with_capacity(Transport::ALL.len());
        for protocol in Transport::ALL {
            for rcode in RCODES.iter().copied().chain(["other"]) {
                queries.push(metrics::counter!(QUERIES_TOTAL, "protocol" => protocol.as_str(), "rcode" => rcode));
            }
            latency
                .push(metrics::histogram!(ANSWER_LATENCY_SECONDS, "protocol" => protocol.as_str()));
        }
        Hot {
            queries,
            latency,
            cache_hits: metrics::counter!(CACHE_HITS_TOTAL),
            cache_misses: metrics::counter!(CACHE_MISSES_TOTAL),
            queue_full: metrics::counter!(RECURSOR_QUEUE_FULL_TOTAL),
            timeouts: metrics::counter!(RECURSOR_TIMEOUTS_TOTAL),
        }
    }
}

fn hot() -> Option<&'static Hot> {
    INSTALLED.get().map(|i| &i.hot)
}

/// Counts one answered query and records its latency. `rcode` is the numeric response code
/// (e.g. `u16::from(ResponseCode)`). Lock- and allocation-free.
#[inline]
pub fn record_query(protocol: Transport, rcode: u16, latency: Duration) {
    if let Some(hot) = hot() {
        let p = Transport::ALL
            .iter()
            .position(|&x| x == protocol)
            .unwrap_or(0);
        let r = usize::from(rcode).min(RCODES.len());
        if let Some(counter) = hot.queries.get(p * RCODE_SLOTS + r) {
            counter.increment(1);
        }
        if let Some(histogram) = hot.latency.get(p) {
            histogram.record(latency.as_secs_f64());
        }
    }
}

/// Counts a cache hit.
#[inline]
pub fn cache_hit() {
    if let Some(hot) = hot() {
        hot.cache_hits.increment(1);
    }
}

/// Counts a cache miss.
#[inline]
pub fn cache_miss() {
    if let Some(hot) = hot() {
        hot.cache_misses.increment(1);
    }
}

/// Counts a lookup refused because the recursor queue was full.
#[inline]
pub fn recursor_queue_full() {
    if let Some(hot) = hot() {
        hot.queue_full.increment(1);
    }
}

/// Counts a miss refused, or an upstream query not sent, because a fairness cap was reached
/// (`limit`: `client` for `resolver.max_inflight_per_client`, `zone` for
/// `resolver.max_inflight_per_zone`).
pub fn recursor_limited(limit: &'static str) {
    metrics::counter!(RECURSOR_LIMITED_TOTAL, "limit" => limit).increment(1);
}

/// Counts a recursive lookup that timed out.
#[inline]
pub fn recursor_timeout() {
    if let Some(hot) = hot() {
        hot.timeouts.increment(1);
    }
}

/// The block counter of one policy group, registered once (`crate::policy::Policy::new`) so
/// that counting a block is an atomic add.
pub fn policy_group_counter(group: &str) -> Counter {
    metrics::counter!(POLICY_BLOCKED_TOTAL, "group" => group.to_string())
}

/// Sets the entry count of one list (call after each reload; allocates, not for the hot path).
pub fn set_list_entries(list: &str, entries: u64) {
    metrics::gauge!(LIST_ENTRIES, "list" => list.to_string()).set(entries as f64);
}

/// Records a successful reload at `at`.
pub fn reload_succeeded(at: SystemTime) {
    let secs = at
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    metrics::gauge!(LAST_RELOAD_TIMESTAMP_SECONDS).set(secs);
}

/// Counts a task that panicked and was replaced (`task`: `udp` for a UDP worker, `reload` for
/// a list reload pass).
pub fn worker_restarted(task: &'static str) {
    metrics::counter!(TASK_RESTARTS_TOTAL, "task" => task).increment(1);
}

/// Whether a blocklist is loaded, for `/ready` (which must answer without a recorder too).
static LOADED: AtomicBool = AtomicBool::new(false);

/// The serial and record count of the zone a feed serves.
pub fn set_feed_zone(feed: &str, serial: u32, records: usize) {
    metrics::gauge!(FEED_SERIAL, "feed" => feed.to_string()).set(f64::from(serial));
    metrics::gauge!(FEED_RECORDS, "feed" => feed.to_string()).set(records as f64);
}

/// A feed's check succeeded at `at`.
pub fn feed_succeeded(feed: &str, at: SystemTime) {
    let secs = at
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    metrics::gauge!(FEED_LAST_SUCCESS, "feed" => feed.to_string()).set(secs);
}

/// Counts one zone transfer of a feed (`kind`: `axfr` or `ixfr`).
pub fn feed_transfer(feed: &str, kind: &'static str, ok: bool) {
    let result = if ok { "ok" } else { "failed" };
    metrics::counter!(FEED_TRANSFERS_TOTAL, "feed" => feed.to_string(), "kind" => kind, "result" => result)
        .increment(1);
}

/// Counts a NOTIFY for a feed's zone (`feed` empty: a zone no feed has).
pub fn feed_notify(feed: &str, accepted: bool) {
    let result = if accepted { "accepted" } else { "refused" };
    metrics::counter!(FEED_NOTIFIES_TOTAL, "feed" => feed.to_string(), "result" => result)
        .increment(1);
}

/// Counts a negative answer synthesised from a validated NSEC chain (RFC 8198) instead of
/// asked upstream.
pub fn nsec_synthesised() {
    metrics::counter!(NSEC_SYNTHESISED_TOTAL).increment(1);
}

/// Counts a TCP connection closed as soon as it was accepted (`reason`: `acl`, `limit`,
/// `client_limit`).
pub fn tcp_refused(reason: &'static str) {
    metrics::counter!(TCP_REFUSED_TOTAL, "reason" => reason).increment(1);
}

/// Counts a datagram or connection dropped for its PROXY header ([`crate::server::proxy`]).
pub fn proxy_protocol_error(transport: &'static str, reason: &'static str) {
    metrics::counter!(PROXY_PROTOCOL_ERRORS_TOTAL, "transport" => transport, "reason" => reason)
        .increment(1);
}

/// Counts a failed reload of the DoT/DoH certificate.
pub fn tls_reload_failed() {
    metrics::counter!(TLS_RELOAD_FAILURES_TOTAL).increment(1);
}

/// Sets whether lists are loaded (1) or fraudwall serves without any (0).
pub fn set_lists_loaded(loaded: bool) {
    LOADED.store(loaded, Ordering::Relaxed);
    metrics::gauge!(LISTS_LOADED).set(if loaded { 1.0 } else { 0.0 });
}

/// Counts a failed reload.
pub fn reload_failed() {
    metrics::counter!(RELOAD_FAILURES_TOTAL).increment(1);
}

/// Counts the entries of one list refused by the guard rails (once per compiled version).
pub fn list_entries_refused(list: &str, refused: u64) {
    metrics::counter!(LIST_ENTRIES_REFUSED_TOTAL, "list" => list.to_string()).increment(refused);
}

/// The label value of a blocklist action.
pub fn action_label(action: Action) -> &'static str {
    action.as_str()
}

/// Every action, in the order the per-list counter arrays use.
const ACTIONS: [Action; 6] = Action::ALL;

/// `fraudwall_blocked_total` handles for every (list, action), keyed by list index.
///
/// Build one per loaded blocklist (at reload, where allocating is fine) in the same order as
/// the blocklist's lists; [`BlockedCounters::record`] is then an index and an atomic add.
#[derive(Clone, Debug, Default)]
pub struct BlockedCounters {
    by_list: Arc<[[Counter; 6]]>,
}

impl BlockedCounters {
    /// Registers the counters for `lists`, given as `(name, category)` in list-index order.
    pub fn new<'a>(lists: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        // Deduplicate by name+category so two lists sharing labels share series.
        let mut seen: HashMap<(String, String), [Counter; 6]> = HashMap::new();
        let by_list = lists
            .into_iter()
            .map(|(name, category)| {
                seen.entry((name.to_string(), category.to_string()))
                    .or_insert_with(|| {
                        ACTIONS.map(|action| {
                            metrics::counter!(BLOCKED_TOTAL,
                                "list" => name.to_string(),
                                "category" => category.to_string(),
                                "action" => action_label(action))
                        })
                    })
                    .clone()
            })
            .collect();
        BlockedCounters { by_list }
    }

    /// Counts one blocked query for list `list_index`; an unknown index is ignored.
    #[inline]
    pub fn record(&self, list_index: usize, action: Action) {
        if let Some(counters) = self.by_list.get(list_index) {
            let slot = ACTIONS.iter().position(|&a| a == action).unwrap_or(0);
            counters[slot].increment(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_documents_itself() {
        let cfg = MetricsConfig::default();
        assert_eq!(cfg.listen, Some("127.0.0.1:9153".parse().unwrap()));
        assert_eq!(cfg.latency_buckets.first(), Some(&0.00005));
        assert_eq!(cfg.latency_buckets.last(), Some(&5.0));
    }

    #[test]
    fn config_rejects_unknown_keys() {
        let err = serde_saphyr::from_str::<MetricsConfig>("listen: null\nbogus: 1\n");
        assert!(err.is_err());
        let cfg: MetricsConfig = serde_saphyr::from_str("listen: null\n").unwrap();
        assert_eq!(cfg.listen, None);
    }

    #[test]
    fn every_name_has_the_prefix() {
        for name in [
            QUERIES_TOTAL,
            BLOCKED_TOTAL,
            CACHE_HITS_TOTAL,
            CACHE_MISSES_TOTAL,
            ANSWER_LATENCY_SECONDS,
            LIST_ENTRIES,
            LAST_RELOAD_TIMESTAMP_SECONDS,
            RELOAD_FAILURES_TOTAL,
            LIST_ENTRIES_REFUSED_TOTAL,
            PAGE_VIEWS_TOTAL,
            REPORTS_TOTAL,
            EVENTS_DROPPED_TOTAL,
            EVENTS_WRITTEN_TOTAL,
            DNSTAP_DROPPED_TOTAL,
            DNSTAP_SENT_TOTAL,
            RECURSOR_QUEUE_FULL_TOTAL,
            RECURSOR_TIMEOUTS_TOTAL,
        ] {
            assert!(name.starts_with("fraudwall_"), "{name}");
        }
    }

    #[test]
    fn helpers_without_install_are_noops() {
        record_query(Transport::Udp, 3, Duration::from_millis(1));
        record_query(Transport::Quic, 999, Duration::from_millis(1));
        BlockedCounters::new([("a", "fraud")]).record(7, Action::Log);
    }
}
