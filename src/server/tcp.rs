//! DNS over TCP (RFC 1035 §4.2.2, RFC 7766) and over TLS (RFC 7858): two-byte length, then
//! the message. DoT is the same connection handling inside a TLS stream.
//!
//! Each connection has a reader and a writer task. The reader takes queries one after another
//! and answers what the fast path can at once; a miss is resolved in a task of its own, so
//! pipelined queries are answered concurrently and may be answered out of order (RFC 7766
//! §6.2.1.1). Every answer goes to the writer as the engine wrote it, with its length in front;
//! the writer gathers what is ready into one write. Connections from clients outside the access
//! list, and beyond the caps (in total, and per client prefix), are closed as soon as they are
//! accepted, before any TLS handshake; from a load balancer in `proxy_protocol.from`, as soon
//! as its PROXY header ([`super::proxy`]) has named the client. A connection is closed when no complete query has
//! arrived for `server.tcp_timeout_secs` (`dot.idle_timeout_secs` for DoT; bytes of a frame
//! that never completes do not extend it), when the client sends a zero-length frame, when the
//! client closes its side (after the answers still owed are written), or at shutdown.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::{Duration, Instant},
};

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
/// Answers waiting for the writer before the reader waits.
const WRITE_QUEUE: usize = 64;

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
    async fn run<S>(self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (reader, writer) = tokio::io::split(stream);
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let writing = self.tracker.spawn(write_answers(writer, rx));
        self.read_queries(reader, tx).await;
        // The writer ends when the reader and every miss task have dropped their senders.
        let _ = writing.await;
    }

    async fn read_queries(&self, mut reader: impl AsyncRead + Unpin, tx: mpsc::Sender<Vec<u8>>) {
        let transport = self.transport;
        let pipelined = Arc::new(Semaphore::new(MAX_PIPELINED));
        let mut scratch = Scratch::default();
        let mut packet = Vec::with_capacity(512);
        loop {
            let read = tokio::select! {
                _ = self.stop.cancelled() => return,
                r = tokio::time::timeout(self.idle, read_frame(&mut reader, &mut packet)) => r,
            };
            match read {
                Err(_) => {
                    debug!(client = %self.client, transport = transport.as_str(), "connection idle: closing");
                    return;
                }
                Ok(Err(_)) | Ok(Ok(false)) => return,
                Ok(Ok(true)) => {}
            }
            let started = Instant::now();
            let mut out = Vec::with_capacity(512);
            let fast =
                self.engine
                    .answer_fast(&packet, self.client, transport, &mut out, &mut scratch);
            match fast {
                Fast::Reply => {
                    count(transport, &out, started);
                    if tx.send(out).await.is_err() {
                        return;
                    }
                }
                Fast::ReplyAndRefresh(miss) => {
                    count(transport, &out, started);
                    let engine = self.engine.clone();
                    self.tracker
                        .spawn(async move { engine.refresh(miss).await });
                    if tx.send(out).await.is_err() {
                        return;
                    }
                }
                Fast::Drop => {}
                Fast::Miss(miss) => {
                    let Ok(permit) = pipelined.clone().acquire_owned().await else {
                        return;
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
    }
}

/// Reads one length-prefixed message into `packet`. `Ok(false)`: the client closed the
/// connection, or sent a zero-length frame (nothing a DNS client sends).
async fn read_frame(
    reader: &mut (impl AsyncRead + Unpin),
    packet: &mut Vec<u8>,
) -> std::io::Result<bool> {
    let mut len = [0u8; 2];
    match reader.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(e),
    }
    let len = u16::from_be_bytes(len) as usize;
    if len == 0 {
        return Ok(false);
    }
    packet.resize(len, 0);
    reader.read_exact(packet).await?;
    Ok(true)
}

/// Writes answers as they come, each with its length in front; what is ready at once goes out
/// in one write.
async fn write_answers(mut writer: impl AsyncWrite + Unpin, mut rx: mpsc::Receiver<Vec<u8>>) {
    let mut buf = Vec::with_capacity(4096);
    while let Some(first) = rx.recv().await {
        buf.clear();
        frame(&mut buf, &first);
        while let Ok(next) = rx.try_recv() {
            frame(&mut buf, &next);
        }
        if writer.write_all(&buf).await.is_err() {
            return;
        }
    }
    let _ = writer.shutdown().await;
}

fn frame(buf: &mut Vec<u8>, answer: &[u8]) {
    // Engine answers over TCP are at most 65535 bytes (its TCP size limit).
    let len = u16::try_from(answer.len()).unwrap_or(u16::MAX);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(&answer[..len as usize]);
}
