//! Listeners. UDP is our own fast path: several `SO_REUSEPORT` sockets per address, each read
//! by one task that answers blocked and cached queries inline and spawns a task only for a
//! miss. TCP runs on hickory-server's `Server` with our [`RequestHandler`], sharing the engine.

pub mod handler;
pub mod report;
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
use tokio::net::{TcpListener, UdpSocket};
use tracing::{info, warn};

use handler::{Engine, Fast, Proto, Scratch};

/// Sockets bound for one listen address: `udp.len()` reuse-port UDP sockets and one TCP listener,
/// all on the same port (even when the config said port 0).
pub struct Bound {
    pub udp: Vec<UdpSocket>,
    pub tcp: TcpListener,
    pub addr: SocketAddr,
}

fn udp_socket(addr: SocketAddr) -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    // Large buffers ride out bursts without drops.
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    s.bind(&addr.into())?;
    UdpSocket::from_std(s.into())
}

fn tcp_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    TcpListener::from_std(s.into())
}

/// Binds `workers` UDP sockets and a TCP listener on `addr`, on one port.
pub fn bind(addr: SocketAddr, workers: usize) -> io::Result<Bound> {
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
        let mut udp = vec![first];
        for _ in 1..workers.max(1) {
            udp.push(udp_socket(actual)?);
        }
        return Ok(Bound {
            udp,
            tcp,
            addr: actual,
        });
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("no free port")))
}

/// Serves every bound address until `shutdown` completes.
pub async fn run(
    engine: Arc<Engine>,
    bound: Vec<Bound>,
    tcp_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let mut server = Server::new(TcpHandler {
        engine: engine.clone(),
    });
    let mut udp_tasks = tokio::task::JoinSet::new();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    for b in bound {
        for sock in b.udp {
            let sock = Arc::new(sock);
            let engine = engine.clone();
            let stop = stop_rx.clone();
            udp_tasks.spawn(udp_loop(sock, engine, stop));
        }
        info!("listening on udp {}", b.addr);
        server.register_listener(b.tcp, tcp_timeout, 64 * 1024);
        info!("listening on tcp {}", b.addr);
    }
    shutdown.await;
    info!("shutting down: finishing queries in flight");
    let _ = stop_tx.send(true);
    let _ = server.shutdown_gracefully().await;
    // Miss tasks hold their own engine handles and finish on their own; give them a moment.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while Arc::strong_count(&engine) > 1 + udp_tasks.len() && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    udp_tasks.shutdown().await;
    Ok(())
}

async fn udp_loop(
    sock: Arc<UdpSocket>,
    engine: Arc<Engine>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 65_535];
    let mut out = Vec::with_capacity(4096);
    let mut scratch = Scratch::default();
    loop {
        let (n, src) = tokio::select! {
            biased;
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    // ICMP errors from earlier sends surface here on Linux; keep serving.
                    warn!(error = %e, "udp receive error");
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let started = Instant::now();
        let packet = &buf[..n];
        match engine.answer_fast(packet, src, Proto::Udp, &mut out, &mut scratch) {
            Fast::Reply => {
                send(&sock, &out, src).await;
                count(Proto::Udp, &out, started);
            }
            Fast::ReplyAndPrefetch => {
                send(&sock, &out, src).await;
                count(Proto::Udp, &out, started);
                let engine = engine.clone();
                let packet = packet.to_vec();
                tokio::spawn(async move { engine.prefetch(&packet).await });
            }
            Fast::Drop => {}
            Fast::Miss => {
                let engine = engine.clone();
                let sock = sock.clone();
                let packet = packet.to_vec();
                tokio::spawn(async move {
                    if let Some(resp) = engine.answer(&packet, src, Proto::Udp).await {
                        send(&sock, &resp, src).await;
                        count(Proto::Udp, &resp, started);
                    }
                });
            }
        }
    }
}

/// Counts an answer by transport and RCODE, with its latency since the query arrived.
fn count(proto: Proto, answer: &[u8], started: Instant) {
    let rcode = answer.get(3).map_or(2, |b| u16::from(b & 0x0f));
    let protocol = match proto {
        Proto::Udp => crate::metrics::Protocol::Udp,
        Proto::Tcp => crate::metrics::Protocol::Tcp,
    };
    crate::metrics::record_query(protocol, rcode, started.elapsed());
}

async fn send(sock: &UdpSocket, bytes: &[u8], dst: SocketAddr) {
    // Almost always writable at once; only wait when the socket buffer is full.
    match sock.try_send_to(bytes, dst) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            let _ = sock.send_to(bytes, dst).await;
        }
        Err(_) => {}
    }
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
