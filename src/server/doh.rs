//! DNS over HTTPS (RFC 8484): HTTP/2 and HTTP/1.1 over TLS (ALPN `h2`, `http/1.1`).
//!
//! `GET {path}?dns=BASE64URL` and `POST {path}` with `Content-Type: application/dns-message`
//! carry one DNS message each; the answer is the engine's bytes, `application/dns-message`,
//! with `Cache-Control: max-age=` the smallest TTL in it. HTTP/2 streams of one connection are
//! answered concurrently, inside the connection's own task ([`Streams`]): the answers to what
//! one read brought in go out in one TLS record and one write. What a client gets wrong is an
//! HTTP status, never a panic: no `dns` parameter or bad base64url 400, a message that is no
//! DNS query 400, another content type 415, a body over 65535 bytes 413, a body that does not
//! arrive within the idle timeout 408, another path 404, another method 405.
//!
//! Connections are admitted like TCP ones (access list, caps in total and per client prefix)
//! before the handshake. HTTP/2 streams per connection are capped (`doh.max_streams`), and so
//! are streams a client opens and resets at once (CVE-2023-44487, "rapid reset"). A connection
//! with no request in progress and none started for `doh.idle_timeout_secs` is closed
//! gracefully; pings and empty frames do not count as requests, so they cannot keep it open.
//!
//! RFC 8484 §4.1 asks clients to send DNS ID 0 (so answers cache well): the engine answers
//! with the ID it was given, whatever it is, and nothing here keys on it.

use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use futures_util::{StreamExt, stream::FuturesUnordered};

use http_body_util::{BodyExt, Full, Limited};
use hyper::{
    Method, Request, Response, StatusCode,
    body::{Bytes, Incoming},
    header,
};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::conn::auto,
};
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{debug, warn};

use super::{
    count,
    engine::{Engine, Fast, Scratch},
    tcp::{Admission, Tls},
    tls,
};
use crate::dns::{Transport, wire};

/// The media type of DNS messages over HTTP.
pub const DNS_MESSAGE: &str = "application/dns-message";
/// The largest DNS message (and so the largest POST body) accepted.
const MAX_MESSAGE: usize = 65_535;
/// HTTP/2 streams a client may open and reset before we read them; beyond it the connection is
/// closed (hyper's guard against CVE-2023-44487).
const MAX_PENDING_RESETS: usize = 20;
/// How long open requests may take to finish once a connection is being closed.
const GRACE: Duration = Duration::from_secs(5);

/// What every DoH connection of one server shares.
pub(super) struct Doh {
    pub engine: Arc<Engine>,
    pub admission: Arc<Admission>,
    pub tls: Tls,
    pub path: String,
    pub idle: Duration,
    pub max_streams: u32,
    pub stop: CancellationToken,
    pub tracker: TaskTracker,
}

/// Accepts connections on `listener` until `doh.stop` is cancelled.
pub(super) async fn serve(listener: TcpListener, doh: Arc<Doh>) {
    loop {
        let accepted = tokio::select! {
            _ = doh.stop.cancelled() => return,
            r = listener.accept() => r,
        };
        let (mut stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e, "doh accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Refused before the handshake: a refused client costs no TLS work.
        let early = match doh.admission.accept(peer, &doh.engine) {
            Ok(a) => a,
            Err(reason) => {
                debug!(client = %peer, reason, transport = "https", "connection refused");
                crate::metrics::tcp_refused(reason);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let doh2 = doh.clone();
        doh.tracker.spawn(async move {
            let (engine, idle) = (&doh2.engine, doh2.idle);
            let arrived =
                doh2.admission
                    .arrive(&mut stream, peer, early, engine, Transport::Https, idle);
            let arrived = tokio::select! {
                _ = doh2.stop.cancelled() => None,
                a = arrived => a,
            };
            let Some((client, admitted)) = arrived else {
                return;
            };
            let (acceptor, certs) = &doh2.tls;
            let handshake = tls::handshake(acceptor, certs, stream, peer);
            let stream = tokio::select! {
                _ = doh2.stop.cancelled() => None,
                s = handshake => s,
            };
            if let Some(stream) = stream {
                connection(TokioIo::new(stream), client, &doh2).await;
            }
            drop(admitted);
        });
    }
}

/// When a connection last had a request, and how many it has now.
struct Activity {
    state: Mutex<(tokio::time::Instant, usize)>,
}

/// One request in progress; ends it on drop (also when the client resets the stream).
struct InProgress(Arc<Activity>);

impl Activity {
    fn start(self: &Arc<Self>) -> InProgress {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.1 += 1;
        InProgress(self.clone())
    }

    /// When the connection becomes idle if nothing happens until then.
    fn deadline(&self, idle: Duration) -> tokio::time::Instant {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.1 > 0 {
            tokio::time::Instant::now() + idle
        } else {
            s.0 + idle
        }
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        let mut s = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        s.1 -= 1;
        s.0 = tokio::time::Instant::now();
    }
}

type Stream = Pin<Box<dyn Future<Output = ()> + Send>>;

/// hyper's executor for the HTTP/2 streams of one connection: instead of a tokio task per
/// stream, the streams are queued here and polled by the connection's own task ([`drive`]).
/// With a task per stream, each answer woke the connection task on its own and went out in a
/// TLS record and a `writev` of its own (the profile: one `writev` per request, the kernel's
/// TCP send path a quarter of the CPU); polled together, the answers ready at once are
/// flushed together.
#[derive(Clone, Default)]
struct Streams(Arc<Mutex<Vec<Stream>>>);

impl<F> hyper::rt::Executor<F> for Streams
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, fut: F) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Box::pin(fut));
    }
}

/// Polls the connection `conn` and the streams it hands to `queue` until the connection ends.
/// A stream that waits (a cache miss being resolved) waits alone; the others go on.
async fn drive<C>(
    mut conn: Pin<&mut C>,
    queue: &Streams,
    running: &mut FuturesUnordered<Stream>,
) -> C::Output
where
    C: Future,
{
    std::future::poll_fn(|cx: &mut Context<'_>| {
        loop {
            // Reads requests, starts streams (into `queue`), writes what the streams answered.
            if let Poll::Ready(r) = conn.as_mut().poll(cx) {
                return Poll::Ready(r);
            }
            let mut progress = false;
            for s in queue.0.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
                running.push(s);
                progress = true;
            }
            while let Poll::Ready(Some(())) = running.poll_next_unpin(cx) {
                progress = true;
            }
            // Answers were buffered: poll the connection again so that it writes them.
            if !progress {
                return Poll::Pending;
            }
        }
    })
    .await
}

async fn connection<I>(io: I, peer: SocketAddr, doh: &Arc<Doh>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity {
        state: Mutex::new((tokio::time::Instant::now(), 0)),
    });
    let service = {
        let (doh, activity) = (doh.clone(), activity.clone());
        hyper::service::service_fn(move |req| {
            let (doh, in_progress) = (doh.clone(), activity.start());
            async move {
                let response = handle(req, peer, &doh).await;
                drop(in_progress);
                Ok::<_, Infallible>(response)
            }
        })
    };
    let queue = Streams::default();
    let mut running = FuturesUnordered::new();
    let mut builder = auto::Builder::new(queue.clone());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(doh.idle)
        .max_headers(64);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(doh.max_streams)
        .max_pending_accept_reset_streams(MAX_PENDING_RESETS)
        .max_local_error_reset_streams(1024)
        // A DNS message and its headers fit in far less; caps what one request can hold.
        .max_header_list_size(16 * 1024)
        .max_send_buf_size(256 * 1024);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    loop {
        let deadline = activity.deadline(doh.idle);
        tokio::select! {
            r = drive(conn.as_mut(), &queue, &mut running) => {
                if let Err(e) = r {
                    debug!(client = %peer, error = %e, "doh connection ended");
                }
                return;
            }
            _ = doh.stop.cancelled() => break,
            _ = tokio::time::sleep_until(deadline) => {
                if activity.deadline(doh.idle) <= tokio::time::Instant::now() {
                    debug!(client = %peer, "doh connection idle: closing");
                    break;
                }
            }
        }
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(GRACE, drive(conn.as_mut(), &queue, &mut running)).await;
}

/// Answers one request; every error is an HTTP status.
async fn handle(req: Request<Incoming>, peer: SocketAddr, doh: &Doh) -> Response<Full<Bytes>> {
    if req.uri().path() != doh.path {
        return status(StatusCode::NOT_FOUND, "not found\n");
    }
    let packet = match *req.method() {
        Method::GET => match dns_param(req.uri().query()) {
            Ok(p) => p,
            Err(why) => return status(StatusCode::BAD_REQUEST, why),
        },
        Method::POST => match post_body(req, doh.idle).await {
            Ok(p) => p,
            Err(e) => return e,
        },
        _ => {
            let mut r = status(StatusCode::METHOD_NOT_ALLOWED, "use GET or POST\n");
            r.headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("GET, POST"));
            return r;
        }
    };
    if packet.len() < 12 {
        return status(StatusCode::BAD_REQUEST, "not a DNS message\n");
    }
    let started = Instant::now();
    let engine = &doh.engine;
    let mut out = Vec::with_capacity(512);
    let answer = match engine.answer_fast(
        &packet,
        peer,
        Transport::Https,
        &mut out,
        &mut Scratch::default(),
    ) {
        Fast::Reply => Some(out),
        Fast::ReplyAndRefresh(miss) => {
            let engine = engine.clone();
            doh.tracker.spawn(async move { engine.refresh(miss).await });
            Some(out)
        }
        Fast::Drop => None,
        Fast::Miss(miss) => engine.resolve(miss).await,
    };
    let Some(answer) = answer else {
        // Garbage the engine would not answer over UDP either; or a list whose action is
        // `drop`: over HTTP something must be answered, and it is no DNS answer.
        return if wire::parse_query(&packet).is_err() {
            status(StatusCode::BAD_REQUEST, "not a DNS query\n")
        } else {
            status(StatusCode::BAD_GATEWAY, "no answer\n")
        };
    };
    count(Transport::Https, &answer, started);
    let cache = match min_ttl(&answer) {
        Some(ttl) => format!("max-age={ttl}"),
        None => "no-store".to_owned(),
    };
    let mut r = Response::new(Full::new(Bytes::from(answer)));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(DNS_MESSAGE),
    );
    if let Ok(v) = header::HeaderValue::from_str(&cache) {
        h.insert(header::CACHE_CONTROL, v);
    }
    r
}

/// The message of a GET: the `dns` parameter, base64url without padding (padding tolerated).
fn dns_param(query: Option<&str>) -> Result<Bytes, &'static str> {
    let value = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "dns")
        .map(|(_, v)| v)
        .ok_or("no dns parameter\n")?;
    let decoded = data_encoding::BASE64URL_NOPAD
        .decode(value.trim_end_matches('=').as_bytes())
        .map_err(|_| "the dns parameter is not base64url\n")?;
    Ok(Bytes::from(decoded))
}

/// The message of a POST, or the status that says why there is none.
async fn post_body(
    req: Request<Incoming>,
    timeout: Duration,
) -> Result<Bytes, Response<Full<Bytes>>> {
    let media_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if !media_type.is_some_and(|t| t.eq_ignore_ascii_case(DNS_MESSAGE)) {
        return Err(status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/dns-message\n",
        ));
    }
    let too_large = || status(StatusCode::PAYLOAD_TOO_LARGE, "larger than 65535 bytes\n");
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if announced.is_some_and(|n| n > MAX_MESSAGE as u64) {
        return Err(too_large());
    }
    let body = Limited::new(req.into_body(), MAX_MESSAGE);
    match tokio::time::timeout(timeout, body.collect()).await {
        Err(_) => Err(status(StatusCode::REQUEST_TIMEOUT, "body too slow\n")),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(_)) => Err(status(StatusCode::BAD_REQUEST, "body not read\n")),
        Ok(Ok(b)) => Ok(b.to_bytes()),
    }
}

fn status(code: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The smallest TTL of the records of a DNS message (OPT aside): how long the HTTP answer may
/// be cached (RFC 8484 §5.1). `None`: no record (an error answer), so it should not be.
pub fn min_ttl(msg: &[u8]) -> Option<u32> {
    let count = |i: usize| u16::from_be_bytes([msg[4 + 2 * i], msg[5 + 2 * i]]) as usize;
    if msg.len() < 12 {
        return None;
    }
    let mut at = 12;
    for _ in 0..count(0) {
        at = wire::name_end(msg, at)? + 4;
    }
    let mut min = None::<u32>;
    for _ in 0..count(1) + count(2) + count(3) {
        let (ty, ttl_at, end) = wire::skip_record(msg, at)?;
        if ty != wire::rtype::OPT {
            let ttl = u32::from_be_bytes(msg.get(ttl_at..ttl_at + 4)?.try_into().ok()?);
            min = Some(min.map_or(ttl, |m| m.min(ttl)));
        }
        at = end;
    }
    min
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_parameter_is_base64url() {
        // RFC 8484 §4.1.1's example query (www.example.com A, ID 0).
        let p = dns_param(Some("dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB")).unwrap();
        assert_eq!(&p[..4], &[0, 0, 1, 0]);
        assert_eq!(p.len(), 33);
        // Padding is tolerated; other parameters are ignored.
        assert_eq!(dns_param(Some("ct=x&dns=AAAB==")).unwrap().len(), 3);
        assert!(
            dns_param(Some("dns=AA%2FB")).is_err(),
            "'/' is not base64url"
        );
        assert!(dns_param(Some("dns=A")).is_err());
        assert!(dns_param(Some("x=1")).is_err());
        assert!(dns_param(None).is_err());
    }

    #[test]
    fn min_ttl_skips_opt_and_needs_records() {
        let mut m = Vec::new();
        wire::put_header(&mut m, 0, wire::flags::QR, (1, 2, 0, 1));
        m.extend_from_slice(b"\x01a\x00\x00\x01\x00\x01");
        for ttl in [300u32, 60] {
            m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
            m.extend_from_slice(&ttl.to_be_bytes());
            m.extend_from_slice(&[0, 4, 198, 18, 0, 1]);
        }
        wire::put_opt(&mut m, 1232, false, 0, &[]);
        assert_eq!(min_ttl(&m), Some(60));
        let mut bare = Vec::new();
        wire::put_header(&mut bare, 0, wire::flags::QR, (1, 0, 0, 0));
        bare.extend_from_slice(b"\x01a\x00\x00\x01\x00\x01");
        assert_eq!(min_ttl(&bare), None);
        assert_eq!(min_ttl(&m[..20]), None, "truncated");
    }
}
