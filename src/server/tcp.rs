//! DNS over TCP (RFC 1035 §4.2.2, RFC 7766) and over TLS (RFC 7858): two-byte length, then
//! the message. DoT is the same connection handling inside a TLS stream.
//!
//! Each connection is one task that reads and writes. It answers what the fast path can at
//! once, every complete query of a read in turn, and writes those answers together; a miss is
//! resolved in a task of its own whose answer comes back over a channel and is written when
//! it arrives, so pipelined queries are answered concurrently and may be answered out of order
//! (RFC 7766 §6.2.1.1). A query answered from the cache therefore costs no task wake-up
//! beyond the socket's own. Connections from clients outside the access
//! list, and beyond the caps (in total, and per client prefix), are closed as soon as they are
//! accepted, before any TLS handshake; from a load balancer in `proxy_protocol.from`, as soon
//! as its PROXY header ([`super::proxy`]) has named the client. A connection is closed when no complete query has
//! arrived for `server.tcp_timeout_secs` (`dot.idle_timeout_secs` for DoT; bytes of a frame
//! that never completes do not extend it), when the client sends a zero-length frame, when the
//! client closes its side (after the answers still owed are written), or at shutdown.

use std::{
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::{Buf, BytesMut};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore, mpsc},
};
use tokio_rustls::TlsAcceptor;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{debug, warn};

use super::{
    ServerConfig, count,
    engine::{Engine, Fast, Scratch},
    proxy::ProxyFrom,
    tls::{self, Certificates},
};
use crate::client::{Caps, Place};
use crate::dns::Transport;

/// Queries of one connection being resolved at once; the reader waits beyond it.
const MAX_PIPELINED: usize = 64;
/// Answers of misses waiting to be written before their tasks wait.
const WRITE_QUEUE: usize = 64;
/// What one read asks room for: a query, or a few pipelined ones.
const READ_BUF: usize = 1024;
/// Less room than this left in the read buffer, and it grows by READ_BUF first.
const READ_MIN: usize = 256;
/// Answers gathered into one write, usually.
const WRITE_BUF: usize = 4096;

/// Who may keep a connection open: the access list, a cap over all clients and a cap per
/// client prefix ([`crate::client::prefix`]), applied when a connection is accepted, before
/// anything is read from it.
pub(super) struct Admission {
    total: Arc<Semaphore>,
    per_client: Caps,
    /// Peers whose connections start with a PROXY header naming the client; those are
    /// admitted by that client once the header is read.
    proxy: ProxyFrom,
}

/// A connection's places under the caps; given back when the connection ends.
pub(super) struct Admitted {
    _total: OwnedSemaphorePermit,
    _client: Place,
}

impl Admission {
    pub(super) fn new(config: &ServerConfig) -> Arc<Admission> {
        Arc::new(Admission {
            total: Arc::new(Semaphore::new(config.tcp_max_connections)),
            per_client: Caps::new(config.tcp_max_per_client),
            proxy: config.proxy.clone(),
        })
    }

    /// At accept: places for a connection from `peer` now, or why there are none. `Ok(None)`:
    /// `peer` is a load balancer; the client its PROXY header names is admitted by
    /// [`Admission::arrive`].
    pub(super) fn accept(
        &self,
        peer: SocketAddr,
        engine: &Engine,
    ) -> Result<Option<Admitted>, &'static str> {
        if self.proxy.is_on() && self.proxy.trusts(peer.ip()) {
            return Ok(None);
        }
        self.admit(peer.ip(), engine).map(Some)
    }

    /// Before anything else is read from the connection (and before a TLS handshake): the
    /// client it serves (the peer, or the one its PROXY header names) and its places, or
    /// `None` (counted) to close it. `early`: what [`Admission::accept`] gave.
    pub(super) async fn arrive(
        &self,
        stream: &mut TcpStream,
        peer: SocketAddr,
        early: Option<Admitted>,
        engine: &Engine,
        transport: Transport,
        wait: Duration,
    ) -> Option<(SocketAddr, Admitted)> {
        let client = self.proxy.stream(stream, peer, transport, wait).await?;
        if let Some(admitted) = early {
            return Some((client, admitted));
        }
        match self.admit(client.ip(), engine) {
            Ok(admitted) => Some((client, admitted)),
            Err(reason) => {
                debug!(client = %client, peer = %peer, reason, transport = transport.as_str(), "connection refused");
                crate::metrics::tcp_refused(reason);
                None
            }
        }
    }

    /// Places for a connection from `ip`, or why there are none.
    pub(super) fn admit(&self, ip: IpAddr, engine: &Engine) -> Result<Admitted, &'static str> {
        if !engine.access().allows(ip) {
            return Err("acl");
        }
        let total = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| "limit")?;
        let client = self.per_client.admit(ip).ok_or("client_limit")?;
        Ok(Admitted {
            _total: total,
            _client: client,
        })
    }
}

/// With TLS (DoT): the acceptor (ALPN `dot`) and the live certificate.
pub(super) type Tls = (TlsAcceptor, Arc<Certificates>);

/// Accepts connections on `listener` until `stop` is cancelled; every connection runs on
/// `tracker` so that shutdown can wait for the answers still owed. With `tls`, each admitted
/// connection does its handshake first (bounded by `tls.handshake_timeout_secs`).
pub(super) async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    admission: Arc<Admission>,
    idle: Duration,
    tls: Option<Tls>,
    stop: CancellationToken,
    tracker: TaskTracker,
) {
    let transport = if tls.is_some() {
        Transport::Tls
    } else {
        Transport::Tcp
    };
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((mut stream, peer)) => {
                // Refused connections are closed at once: no handshake, no buffer, no task.
                let early = match admission.accept(peer, &engine) {
                    Ok(a) => a,
                    Err(reason) => {
                        debug!(client = %peer, reason, transport = transport.as_str(), "connection refused");
                        crate::metrics::tcp_refused(reason);
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let (engine, admission) = (engine.clone(), admission.clone());
                let (stop, conn_tracker) = (stop.clone(), tracker.clone());
                let tls = tls.clone();
                tracker.spawn(async move {
                    let arrived =
                        admission.arrive(&mut stream, peer, early, &engine, transport, idle);
                    let arrived = tokio::select! {
                        _ = stop.cancelled() => None,
                        a = arrived => a,
                    };
                    let Some((client, admitted)) = arrived else {
                        return;
                    };
                    let conn = Connection {
                        engine,
                        client,
                        idle,
                        transport,
                        stop,
                        tracker: conn_tracker,
                    };
                    match tls {
                        None => conn.run(stream).await,
                        Some((acceptor, certs)) => {
                            let handshake = tls::handshake(&acceptor, &certs, stream, peer);
                            let done = tokio::select! {
                                _ = conn.stop.cancelled() => None,
                                t = handshake => t,
                            };
                            if let Some(stream) = done {
                                conn.run(stream).await;
                            }
                        }
                    }
                    drop(admitted);
                });
            }
            Err(e) => {
                // Out of descriptors or memory: back off instead of spinning.
                warn!(error = %e, "tcp accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

struct Connection {
    engine: Arc<Engine>,
    /// The client: the peer, or the one its PROXY header named.
    client: SocketAddr,
    idle: Duration,
    transport: Transport,
    stop: CancellationToken,
    tracker: TaskTracker,
}

impl Connection {
    /// Serves the connection until the client closes it, it idles, or shutdown; then writes
    /// the answers still owed and closes it.
    async fn run<S>(self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        tokio::pin!(stream);
        let transport = self.transport;
        // Answers of misses, from their tasks.
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(WRITE_QUEUE);
        let pipelined = Arc::new(Semaphore::new(MAX_PIPELINED));
        let mut scratch = Scratch::default();
        // Allocated as queries come: an idle connection holds no buffers.
        let mut input = BytesMut::new();
        let mut output = Vec::new();
        let mut out = Vec::new();
        // One timer for the idle timeout, moved on only when it fires: resetting it at every
        // query would cost two timer-wheel operations per query.
        let mut last_query = tokio::time::Instant::now();
        let idle = tokio::time::sleep_until(last_query + self.idle);
        tokio::pin!(idle);
        'serve: loop {
            // Every complete query in the buffer: the fast path answers at once, into
            // `output`; a miss goes to a task of its own.
            while let Some(packet) = next_frame(&mut input) {
                let Some(packet) = packet else {
                    // A zero-length frame: nothing a DNS client sends.
                    break 'serve;
                };
                last_query = tokio::time::Instant::now();
                let started = Instant::now();
                out.clear();
                match self.engine.answer_fast(
                    &packet,
                    self.client,
                    transport,
                    &mut out,
                    &mut scratch,
                ) {
                    Fast::Reply => {
                        count(transport, &out, started);
                        frame(&mut output, &out);
                    }
                    Fast::ReplyAndRefresh(miss) => {
                        count(transport, &out, started);
                        frame(&mut output, &out);
                        let engine = self.engine.clone();
                        self.tracker
                            .spawn(async move { engine.refresh(miss).await });
                    }
                    Fast::Drop => {}
                    Fast::Miss(miss) => {
                        // Beyond MAX_PIPELINED misses in flight, wait (answers of earlier
                        // ones are written meanwhile, so they can finish).
                        let permit = loop {
                            if let Ok(p) = pipelined.clone().try_acquire_owned() {
                                break p;
                            }
                            let Some(answer) = rx.recv().await else {
                                break 'serve;
                            };
                            frame(&mut output, &answer);
                            if !self.write(&mut stream, &mut output).await {
                                return;
                            }
                        };
                        let (engine, tx) = (self.engine.clone(), tx.clone());
                        self.tracker.spawn(async move {
                            if let Some(answer) = engine.resolve(miss).await {
                                count(transport, &answer, started);
                                let _ = tx.send(answer).await;
                            }
                            drop(permit);
                        });
                    }
                }
            }
            // What is ready goes out in one write.
            while let Ok(answer) = rx.try_recv() {
                frame(&mut output, &answer);
            }
            if !self.write(&mut stream, &mut output).await {
                return;
            }
            if input.capacity() - input.len() < READ_MIN {
                input.reserve(READ_BUF);
            }
            tokio::select! {
                _ = self.stop.cancelled() => break,
                Some(answer) = rx.recv() => frame(&mut output, &answer),
                r = stream.read_buf(&mut input) => match r {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                },
                _ = idle.as_mut() => {
                    let deadline = last_query + self.idle;
                    if deadline <= tokio::time::Instant::now() {
                        debug!(client = %self.client, transport = transport.as_str(), "connection idle: closing");
                        break;
                    }
                    idle.as_mut().reset(deadline);
                }
            }
        }
        // The answers still owed, as their misses finish; then close.
        drop(tx);
        while let Some(answer) = rx.recv().await {
            frame(&mut output, &answer);
            while let Ok(answer) = rx.try_recv() {
                frame(&mut output, &answer);
            }
            if !self.write(&mut stream, &mut output).await {
                return;
            }
        }
        let _ = self.write(&mut stream, &mut output).await;
        let _ = stream.shutdown().await;
    }

    /// Writes and empties `output`; false when the connection is gone, or when the client
    /// takes none of it for the idle timeout.
    async fn write<S: AsyncWrite>(&self, stream: &mut Pin<&mut S>, output: &mut Vec<u8>) -> bool {
        if output.is_empty() {
            return true;
        }
        let written = tokio::time::timeout(self.idle, stream.write_all(output)).await;
        output.clear();
        if output.capacity() > 4 * WRITE_BUF {
            output.shrink_to(WRITE_BUF);
        }
        matches!(written, Ok(Ok(())))
    }
}

/// Takes the next complete frame off the front of `input`: `Some(Some(message))`, or
/// `Some(None)` for a zero-length frame; `None` until a whole frame has arrived.
fn next_frame(input: &mut BytesMut) -> Option<Option<BytesMut>> {
    if input.len() < 2 {
        return None;
    }
    let len = u16::from_be_bytes([input[0], input[1]]) as usize;
    if len == 0 {
        return Some(None);
    }
    if input.len() < 2 + len {
        input.reserve(2 + len - input.len());
        return None;
    }
    input.advance(2);
    Some(Some(input.split_to(len)))
}

fn frame(buf: &mut Vec<u8>, answer: &[u8]) {
    // Engine answers over TCP are at most 65535 bytes (its TCP size limit).
    let len = u16::try_from(answer.len()).unwrap_or(u16::MAX);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(&answer[..len as usize]);
}
