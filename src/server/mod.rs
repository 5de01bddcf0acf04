//! Listeners. UDP is our own fast path ([`udp`]): one socket per address, drained in batches by
//! several threads that answer blocked and cached queries inline and hand only misses to the
//! runtime. TCP runs on hickory-server's `Server` with our
//! [`RequestHandler`], sharing the engine.

pub mod handler;
pub mod report;
pub mod udp;
pub mod wire;

use std::{
    future::Future,
    io,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use hickory_proto::op::Message;
use hickory_server::{
    net::runtime::Time,
    server::{Request, RequestHandler, ResponseHandler, ResponseInfo, Server},
    zone_handler::MessageResponseBuilder,
};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tracing::{info, warn};

use handler::{Engine, Proto};

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
    // Lets a new process bind beside the old one during an in-place upgrade.
    s.set_reuse_port(true)?;
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

/// Binds a UDP socket and a TCP listener on `addr`, on one port.
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

/// Serves every bound address, with `udp_threads` UDP workers each, until `shutdown` completes.
pub async fn run(
    engine: Arc<Engine>,
    bound: Vec<Bound>,
    udp_threads: usize,
    tcp_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let mut server = Server::new(TcpHandler {
        engine: engine.clone(),
    });
    let mut workers = udp::Workers::default();
    for b in bound {
        workers.spawn(
            b.udp,
            udp_threads,
            &engine,
            &tokio::runtime::Handle::current(),
        )?;
        info!("listening on udp {}", b.addr);
        server.register_listener(b.tcp, tcp_timeout, 64 * 1024);
        info!("listening on tcp {}", b.addr);
    }
    shutdown.await;
    info!("shutting down: finishing queries in flight");
    let _ = server.shutdown_gracefully().await;
    drop(server); // its handler holds an engine handle
    let _ = tokio::task::spawn_blocking(move || workers.stop()).await;
    // Miss tasks hold their own engine handles and finish on their own; give them a moment.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while Arc::strong_count(&engine) > 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Counts an answer by transport and RCODE, with its latency since the query arrived.
pub(crate) fn count(proto: Proto, answer: &[u8], started: Instant) {
    let rcode = answer.get(3).map_or(2, |b| u16::from(b & 0x0f));
    let protocol = match proto {
        Proto::Udp => crate::metrics::Protocol::Udp,
        Proto::Tcp => crate::metrics::Protocol::Tcp,
    };
    crate::metrics::record_query(protocol, rcode, started.elapsed());
}

/// hickory-server request handler for TCP: the same engine, re-framed into hickory's response.
struct TcpHandler {
    engine: Arc<Engine>,
}

#[async_trait::async_trait]
impl RequestHandler for TcpHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let started = Instant::now();
        let answer = self
            .engine
            .answer(request.as_slice(), request.src(), Proto::Tcp)
            .await;
        if let Some(a) = &answer {
            count(Proto::Tcp, a, started);
        }
        let fallback = || {
            use hickory_proto::op::{Header, HeaderCounts, MessageType, Metadata, ResponseCode};
            let mut metadata = Metadata::new(
                request.metadata.id,
                MessageType::Response,
                request.metadata.op_code,
            );
            metadata.response_code = ResponseCode::ServFail;
            ResponseInfo::from(Header {
                metadata,
                counts: HeaderCounts::default(),
            })
        };
        let Some(bytes) = answer else {
            return fallback();
        };
        let Ok(msg) = Message::from_vec(&bytes) else {
            return fallback();
        };
        let builder = MessageResponseBuilder::new(&request.queries, msg.edns.as_ref());
        let response = builder.build(
            msg.metadata,
            msg.answers.iter(),
            msg.authorities.iter(),
            std::iter::empty(),
            msg.additionals.iter(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(e) => {
                warn!(error = %e, "tcp send failed");
                fallback()
            }
        }
    }
}
