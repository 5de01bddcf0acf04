//! The transports and the engine they share.
//!
//! - [`engine`]: parse → access control → blocklist → cache → resolver → answer, for every
//!   transport.
//! - [`udp`]: our own fast path: one socket per address, drained in batches by several
//!   threads that answer blocked and cached queries inline and hand only misses to the runtime.
//! - [`tcp`]: length-prefixed DNS with pipelining, over TCP and over TLS (DoT); answers are the
//!   engine's bytes as they are.
//! - [`doh`]: DNS over HTTPS, HTTP/2 and HTTP/1.1.
//! - [`tls`]: the certificate DoT and DoH present, reloaded when its files change.
//! - [`ddr`]: `resolver.arpa`, answered locally: our encrypted endpoints for DDR (RFC 9462).
//! - [`report`]: what a block leaves behind (event, metrics).
//! - [`proxy`]: the PROXY protocol v2: the client a trusted load balancer speaks for.
//!
//! [`bind`] and [`bind_stream`] make the sockets; [`serve`] serves them until the shutdown
//! future completes, so a caller (the binary, or a test) decides both.

mod config;
pub mod ddr;
pub mod doh;
pub mod engine;
pub mod proxy;
pub mod report;
mod tcp;
pub mod tls;
pub mod udp;

use std::{
    future::Future,
    io,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{info, warn};

pub use config::{
    AccessConfig, EncryptedConfig, RawAccess, RawDdr, RawDoh, RawDot, RawServer, RawTls,
    ServerConfig, TlsConfig, validate_encrypted,
};
use engine::Engine;

use crate::dns::Transport;

/// How long shutdown waits for answers still owed (misses being resolved, TCP answers being
/// written) before it gives up on them.
const DRAIN: Duration = Duration::from_secs(2);

/// Sockets bound for one listen address: one UDP socket and one TCP listener on the same port
/// (even when the config said port 0).
pub struct Bound {
    pub udp: std::net::UdpSocket,
    pub tcp: TcpListener,
    pub addr: SocketAddr,
}

fn udp_socket(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    // Lets a new process bind beside the old one during an in-place upgrade. Not on a port
    // the kernel picks: no successor could ask for it, and a SO_REUSEPORT socket on an
    // ephemeral port can be handed by the kernel to any same-user client that also sets
    // SO_REUSEPORT (dig does) as its own source port; a client "connected" to us from our
    // own port then receives its query back instead of our answer.
    if addr.port() != 0 {
        s.set_reuse_port(true)?;
    }
    s.set_nonblocking(true)?;
    // Large buffers ride out bursts (and moments the worker is not scheduled) without drops.
    // SO_RCVBUF is capped by net.core.rmem_max; as root, SO_RCVBUFFORCE is not (Unbound does
    // the same for `so-rcvbuf`).
    force_buffer(&s, libc::SO_RCVBUFFORCE, 4 << 20).or_else(|_| s.set_recv_buffer_size(4 << 20))?;
    force_buffer(&s, libc::SO_SNDBUFFORCE, 4 << 20).or_else(|_| s.set_send_buffer_size(4 << 20))?;
    s.bind(&addr.into())?;
    Ok(s.into())
}

fn force_buffer(s: &Socket, opt: libc::c_int, bytes: libc::c_int) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: setsockopt with a valid fd and a pointer to an int of the given size.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            opt,
            (&raw const bytes).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn tcp_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    // Lets a new process bind beside the old one during an in-place upgrade.
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    TcpListener::from_std(s.into())
}

/// Every listening socket: UDP+TCP per `listen` address, and the DoT and DoH listeners.
pub struct Listeners {
    pub dns: Vec<Bound>,
    pub dot: Vec<TcpListener>,
    pub doh: Vec<TcpListener>,
}

/// Binds a TCP listener alone (DoT, DoH). Must run inside a tokio runtime.
pub fn bind_stream(addr: SocketAddr) -> io::Result<TcpListener> {
    tcp_listener(addr)
}

/// Binds a UDP socket and a TCP listener on `addr`, on one port. Must run inside a tokio
/// runtime (the TCP listener registers with it).
pub fn bind(addr: SocketAddr) -> io::Result<Bound> {
    let mut last_err = None;
    // With port 0 the kernel picks a UDP port that may be taken for TCP: retry a few times.
    for _ in 0..16 {
        let first = udp_socket(addr)?;
        let actual = first.local_addr()?;
        let tcp = match tcp_listener(actual) {
            Ok(t) => t,
            Err(e) if addr.port() == 0 => {
                last_err = Some(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        return Ok(Bound {
            udp: first,
            tcp,
            addr: actual,
        });
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("no free port")))
}

/// Serves plain DNS on every bound address until `shutdown` completes: [`serve`] without DoT
/// or DoH.
pub async fn run(
    engine: Arc<Engine>,
    config: &ServerConfig,
    bound: Vec<Bound>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let listeners = Listeners {
        dns: bound,
        dot: Vec::new(),
        doh: Vec::new(),
    };
    let encrypted = EncryptedConfig::default();
    serve(engine, config, &encrypted, listeners, None, shutdown).await
}

/// Serves every bound address until `shutdown` completes: `config.udp_threads()` UDP workers
/// each, TCP, and DoT and DoH with `certs` (required when either listens). Then stops reading,
/// lets answers still owed go out (for up to 2 s) and returns. Connection caps are shared by
/// TCP, DoT and DoH.
pub async fn serve(
    engine: Arc<Engine>,
    config: &ServerConfig,
    encrypted: &EncryptedConfig,
    listeners: Listeners,
    certs: Option<Arc<tls::Certificates>>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let Listeners {
        dns: bound,
        dot,
        doh,
    } = listeners;
    if (!dot.is_empty() || !doh.is_empty()) && certs.is_none() {
        return Err(io::Error::other("dot and doh need a certificate (tls:)"));
    }
    let stop = CancellationToken::new();
    let tracker = TaskTracker::new();
    let mut workers = udp::Workers::default();
    let runtime = tokio::runtime::Handle::current();
    let admission = tcp::Admission::new(config);
    for b in bound {
        workers.spawn(
            b.udp,
            config.udp_threads(),
            &engine,
            &config.proxy,
            &runtime,
            &tracker,
        )?;
        info!("listening on udp {}", b.addr);
        tracker.spawn(tcp::serve(
            b.tcp,
            engine.clone(),
            admission.clone(),
            config.tcp_timeout,
            None,
            stop.clone(),
            tracker.clone(),
        ));
        info!("listening on tcp {}", b.addr);
    }
    if let Some(certs) = &certs {
        tracker.spawn(certs.clone().watch(stop.clone()));
    }
    for l in dot {
        let certs = certs.clone().expect("checked above");
        let tls = (certs.acceptor(&[b"dot"]), certs);
        let addr = l.local_addr()?;
        tracker.spawn(tcp::serve(
            l,
            engine.clone(),
            admission.clone(),
            encrypted.dot_idle,
            Some(tls),
            stop.clone(),
            tracker.clone(),
        ));
        info!("listening on dot {addr}");
    }
    if let Some(certs) = certs.as_ref().filter(|_| !doh.is_empty()) {
        let shared = Arc::new(doh::Doh {
            engine: engine.clone(),
            admission: admission.clone(),
            tls: (certs.acceptor(&[b"h2", b"http/1.1"]), certs.clone()),
            path: encrypted.doh_path.clone(),
            idle: encrypted.doh_idle,
            max_streams: encrypted.doh_max_streams,
            stop: stop.clone(),
            tracker: tracker.clone(),
        });
        for l in doh {
            let addr = l.local_addr()?;
            tracker.spawn(doh::serve(l, shared.clone()));
            info!("listening on doh {addr}");
        }
    }
    shutdown.await;
    info!("shutting down: finishing queries in flight");
    stop.cancel();
    let _ = tokio::task::spawn_blocking(move || workers.stop()).await;
    tracker.close();
    if tokio::time::timeout(DRAIN, tracker.wait()).await.is_err() {
        warn!("shutting down with {} tasks still resolving", tracker.len());
    }
    Ok(())
}

/// Counts an answer by transport and RCODE, with its latency since the query arrived.
pub(crate) fn count(transport: Transport, answer: &[u8], started: Instant) {
    let rcode = answer.get(3).map_or(2, |b| u16::from(b & 0x0f));
    crate::metrics::record_query(transport, rcode, started.elapsed());
}
