//! dnstap: every client query and answer, as protobuf over Frame Streams, to a collector that
//! ISPs already run (Vector, go-dnscollector, fstrm_capture, dnsdist).
//!
//! The engine calls [`Tap::client_query`] and [`Tap::client_response`]; each copies the
//! message into a [`Record`] and `try_send`s it into a bounded queue, so a slow, stalled or
//! absent collector never slows an answer: when the queue is full the record is dropped and
//! counted (`fraudwall_dnstap_dropped_total`). One tokio task, [`start`], connects (unix
//! socket or TCP), does the bidirectional fstrm handshake ([`fstrm`]), encodes the records
//! ([`proto`]) in batches, every 20 ms, and writes them; a lost or refused connection is retried with
//! exponential backoff (0.1 s doubling to 10 s), and a write that makes no progress for
//! [`STALL`] counts as a lost connection. On shutdown it drains the queue, sends STOP and
//! waits (briefly) for FINISH. Without a `dnstap:` section there is no tap and the engine pays
//! one branch per query.
//!
//! Every blocked query carries a dnstap `Policy`: type `fraudwall`, rule `<list>:<entry>`,
//! action (sinkhole → LOCAL_DATA, nxdomain → NXDOMAIN, nodata → NODATA, drop → DROP, log →
//! PASS; refused has no dnstap action and leaves it out), match QNAME, value the matched name
//! in wire format.
//!
//! ```yaml
//! dnstap:
//!   socket: /run/fraudwall/dnstap.sock   # or tcp: "127.0.0.1:6000" (exactly one)
//!   messages: [client_query, client_response]
//!   identity: null      # default: the host name
//!   version: null       # default: "fraudwall <version>"
//!   queue: 16384        # records held while the collector catches up
//! ```

pub mod fstrm;
pub mod proto;

use std::{
    io,
    net::SocketAddr,
    path::PathBuf,
    pin::Pin,
    time::{Duration, SystemTime},
};

use prost::Message as _;
use serde::Deserialize;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    sync::mpsc,
    task::JoinHandle,
};
use tracing::{info, warn};

use crate::{
    blocklist::Action,
    dns::Transport,
    metrics::{DNSTAP_DROPPED_TOTAL, DNSTAP_SENT_TOTAL},
    section::Check,
};

/// A write that makes no progress for this long means the collector has stalled: the
/// connection is dropped and made again.
pub const STALL: Duration = Duration::from_secs(5);
/// How long the handshake (connect, READY → ACCEPT) may take.
const HANDSHAKE: Duration = Duration::from_secs(5);
/// How long shutdown waits for the collector's FINISH.
const FINISH_WAIT: Duration = Duration::from_secs(1);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Bytes of frames gathered into one write.
const BATCH_BYTES: usize = 64 * 1024;
/// How often the writer empties the queue (see [`pump`]).
const TICK: Duration = Duration::from_millis(20);

/// The message types a section may ask for.
const MESSAGE_TYPES: &[&str] = &["client_query", "client_response"];

/// The `dnstap:` section as YAML spells it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDnstap {
    socket: Option<PathBuf>,
    tcp: Option<String>,
    messages: Vec<String>,
    identity: Option<String>,
    version: Option<String>,
    queue: usize,
}

impl Default for RawDnstap {
    fn default() -> Self {
        RawDnstap {
            socket: None,
            tcp: None,
            messages: MESSAGE_TYPES.iter().map(|s| s.to_string()).collect(),
            identity: None,
            version: None,
            queue: 16384,
        }
    }
}

/// Where the collector listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Unix(p) => write!(f, "unix:{}", p.display()),
            Target::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

/// The validated `dnstap:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnstapConfig {
    pub target: Target,
    pub client_query: bool,
    pub client_response: bool,
    pub identity: Vec<u8>,
    pub version: Vec<u8>,
    pub queue: usize,
}

impl RawDnstap {
    /// Validates the section: exactly one of `socket` and `tcp`, known message types, a queue.
    pub fn validate(self, check: &mut Check) -> DnstapConfig {
        let target = match (self.socket, self.tcp) {
            (Some(p), None) => Target::Unix(check.path(&p)),
            (None, Some(a)) => match a.parse() {
                Ok(a) => Target::Tcp(a),
                Err(_) => {
                    check.problem(
                        "tcp",
                        format!("{a:?} is not an address and port, e.g. \"127.0.0.1:6000\""),
                    );
                    Target::Tcp(SocketAddr::from(([127, 0, 0, 1], 6000)))
                }
            },
            (s, _) => {
                let which = if s.is_some() {
                    "both are set"
                } else {
                    "neither is set"
                };
                check.problem(
                    "",
                    format!("set exactly one of socket (a unix socket path) and tcp ({which})"),
                );
                Target::Unix(PathBuf::new())
            }
        };
        for m in &self.messages {
            if !MESSAGE_TYPES.contains(&m.as_str()) {
                let more = if m.starts_with("resolver_") {
                    " (upstream queries are not written yet)"
                } else {
                    ""
                };
                check.problem(
                    "messages",
                    format!(
                        "unknown message type {m:?}{more}; known: {}",
                        MESSAGE_TYPES.join(", ")
                    ),
                );
            }
        }
        if self.messages.is_empty() {
            check.problem("messages", "name at least one message type");
        }
        if self.queue == 0 {
            check.problem("queue", "must be at least 1");
        }
        let has = |t: &str| self.messages.iter().any(|m| m == t);
        DnstapConfig {
            target,
            client_query: has("client_query"),
            client_response: has("client_response"),
            identity: self.identity.unwrap_or_else(hostname).into_bytes(),
            version: self
                .version
                .unwrap_or_else(|| format!("fraudwall {}", env!("CARGO_PKG_VERSION")))
                .into_bytes(),
            queue: self.queue,
        }
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into a buffer we own.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Which side of a client exchange a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    ClientQuery,
    ClientResponse,
}

/// One message on its way to the writer: copied off the query path, encoded by the writer.
#[derive(Debug)]
pub struct Record {
    pub kind: Kind,
    pub transport: Transport,
    pub client: SocketAddr,
    pub time: SystemTime,
    pub message: Box<[u8]>,
    pub policy: Option<Box<proto::Policy>>,
}

/// The engine's handle: cheap to clone, never blocks.
#[derive(Clone, Debug)]
pub struct Tap {
    tx: mpsc::Sender<Record>,
    client_query: bool,
    client_response: bool,
}

impl Tap {
    /// Whether the engine should work out a `Policy` for blocks (some message type is on).
    pub fn wants_policy(&self) -> bool {
        self.client_query || self.client_response
    }

    /// Records a client's query as it arrived.
    pub fn client_query(
        &self,
        packet: &[u8],
        client: SocketAddr,
        transport: Transport,
        policy: Option<&proto::Policy>,
    ) {
        if self.client_query {
            self.send(Kind::ClientQuery, packet, client, transport, policy);
        }
    }

    /// Records the answer sent to a client.
    pub fn client_response(
        &self,
        answer: &[u8],
        client: SocketAddr,
        transport: Transport,
        policy: Option<&proto::Policy>,
    ) {
        if self.client_response {
            self.send(Kind::ClientResponse, answer, client, transport, policy);
        }
    }

    fn send(
        &self,
        kind: Kind,
        message: &[u8],
        client: SocketAddr,
        transport: Transport,
        policy: Option<&proto::Policy>,
    ) {
        // A full queue costs neither the copy nor the allocation.
        if self.tx.capacity() == 0 {
            metrics::counter!(DNSTAP_DROPPED_TOTAL).increment(1);
            return;
        }
        let record = Record {
            kind,
            transport,
            client,
            time: SystemTime::now(),
            message: message.into(),
            policy: policy.map(|p| Box::new(p.clone())),
        };
        if self.tx.try_send(record).is_err() {
            metrics::counter!(DNSTAP_DROPPED_TOTAL).increment(1);
        }
    }
}

/// The `Policy` of a block: list `list`, listed domain `entry`, the list's action, and the
/// name that matched (wire format).
pub fn policy(list: &str, entry: &str, action: Action, matched: &[u8]) -> proto::Policy {
    use proto::PolicyAction as A;
    let action = match action {
        Action::Sinkhole => Some(A::LocalData),
        Action::Nxdomain => Some(A::Nxdomain),
        Action::Nodata => Some(A::Nodata),
        Action::Drop => Some(A::Drop),
        Action::Log => Some(A::Pass),
        Action::Refused => None,
    };
    proto::Policy {
        r#type: Some("fraudwall".into()),
        rule: Some(format!("{list}:{entry}").into_bytes()),
        action: action.map(|a| a as i32),
        r#match: Some(proto::PolicyMatch::Qname as i32),
        value: Some(matched.to_vec()),
    }
}

/// The `Policy` of a block by an answer's address: as [`policy`], matched on the response IP
/// (`value` holds the address's 4 or 16 bytes).
pub fn policy_ip(list: &str, entry: &str, action: Action, addr: std::net::IpAddr) -> proto::Policy {
    let mut p = policy(list, entry, action, &[]);
    p.r#match = Some(proto::PolicyMatch::ResponseIp as i32);
    p.value = Some(match addr {
        std::net::IpAddr::V4(a) => a.octets().to_vec(),
        std::net::IpAddr::V6(a) => a.octets().to_vec(),
    });
    p
}

/// Encodes `r` as a `Dnstap` protobuf into `out` (cleared first).
pub fn encode(r: &Record, identity: &[u8], version: &[u8], out: &mut Vec<u8>) {
    use proto::{MessageType, SocketFamily, SocketProtocol};
    let (family, addr) = match r.client {
        SocketAddr::V4(a) => (SocketFamily::Inet, a.ip().octets().to_vec()),
        SocketAddr::V6(a) => (SocketFamily::Inet6, a.ip().octets().to_vec()),
    };
    let protocol = match r.transport {
        Transport::Udp => SocketProtocol::Udp,
        Transport::Tcp => SocketProtocol::Tcp,
        Transport::Tls => SocketProtocol::Dot,
        Transport::Https => SocketProtocol::Doh,
        Transport::Quic => SocketProtocol::Doq,
    };
    let since = r
        .time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let (sec, nsec) = (Some(since.as_secs()), Some(since.subsec_nanos()));
    let mut m = proto::Message {
        socket_family: Some(family as i32),
        socket_protocol: Some(protocol as i32),
        query_address: Some(addr),
        query_port: Some(u32::from(r.client.port())),
        policy: r.policy.as_deref().cloned(),
        ..Default::default()
    };
    match r.kind {
        Kind::ClientQuery => {
            m.r#type = MessageType::ClientQuery as i32;
            m.query_time_sec = sec;
            m.query_time_nsec = nsec;
            m.query_message = Some(r.message.to_vec());
        }
        Kind::ClientResponse => {
            m.r#type = MessageType::ClientResponse as i32;
            m.response_time_sec = sec;
            m.response_time_nsec = nsec;
            m.response_message = Some(r.message.to_vec());
        }
    }
    let d = proto::Dnstap {
        identity: (!identity.is_empty()).then(|| identity.to_vec()),
        version: (!version.is_empty()).then(|| version.to_vec()),
        extra: None,
        r#type: proto::DnstapType::Message as i32,
        message: Some(m),
    };
    out.clear();
    d.encode(out).expect("a Vec grows");
}

/// Starts the writer for `config`: the engine's [`Tap`], and the task, which ends (after STOP
/// and FINISH) once every clone of the tap is gone.
pub fn start(config: &DnstapConfig) -> (Tap, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(config.queue);
    let tap = Tap {
        tx,
        client_query: config.client_query,
        client_response: config.client_response,
    };
    let task = tokio::spawn(run(config.clone(), rx));
    (tap, task)
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

async fn connect(target: &Target) -> io::Result<Pin<Box<dyn Stream>>> {
    Ok(match target {
        Target::Unix(p) => Box::pin(tokio::net::UnixStream::connect(p).await?),
        Target::Tcp(a) => {
            let s = tokio::net::TcpStream::connect(a).await?;
            s.set_nodelay(true)?;
            Box::pin(s)
        }
    })
}

/// How a connection ended.
enum End {
    /// Every tap is gone and the queue is drained: STOP was sent.
    Done,
    /// The connection failed; make another.
    Lost(io::Error),
}

async fn run(config: DnstapConfig, mut rx: mpsc::Receiver<Record>) {
    let mut backoff = BACKOFF_MIN;
    let mut failing = false;
    loop {
        let conn = tokio::time::timeout(HANDSHAKE, async {
            let mut s = connect(&config.target).await?;
            fstrm::handshake(&mut s, proto::CONTENT_TYPE).await?;
            Ok::<_, io::Error>(s)
        })
        .await
        .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "no ACCEPT")));
        match conn {
            Ok(s) => {
                info!("dnstap: connected to {}", config.target);
                backoff = BACKOFF_MIN;
                failing = false;
                match pump(s, &mut rx, &config).await {
                    End::Done => return,
                    End::Lost(e) => warn!("dnstap: connection to {} lost: {e}", config.target),
                }
            }
            Err(e) if !failing => {
                // Said once per outage, not at every retry.
                warn!("dnstap: cannot connect to {}: {e}; retrying", config.target);
                failing = true;
            }
            Err(_) => {}
        }
        // Records wait in the queue (and new ones are dropped once it is full) until the
        // collector is back. Shutdown does not wait for it.
        let until = tokio::time::Instant::now() + backoff;
        while tokio::time::Instant::now() < until {
            if rx.is_closed() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50).min(backoff)).await;
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Writes records to an established connection until it fails or every tap is gone.
///
/// The queue is emptied every [`TICK`] rather than awaited record by record: a receiver
/// waiting on an empty queue is woken by the next `try_send`, a cross-thread wake-up (a
/// futex or eventfd syscall) for nearly every query, which cost more than the rest of the
/// tap together. Between ticks, a query only pushes into the queue and wakes nobody.
async fn pump(s: Pin<Box<dyn Stream>>, rx: &mut mpsc::Receiver<Record>, c: &DnstapConfig) -> End {
    let (mut rd, mut wr) = tokio::io::split(s);
    let mut frames = Vec::with_capacity(BATCH_BYTES + 4096);
    let mut payload = Vec::with_capacity(1024);
    let mut scrap = [0u8; 64];
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // A collector that goes away while we idle is noticed at once (EOF), not at the
        // next write.
        tokio::select! {
            _ = tick.tick() => {}
            n = rd.read(&mut scrap) => {
                return End::Lost(match n {
                    Ok(0) => io::Error::new(io::ErrorKind::UnexpectedEof, "closed by the collector"),
                    Ok(_) => io::Error::new(io::ErrorKind::InvalidData, "unexpected frame from the collector"),
                    Err(e) => e,
                });
            }
        }
        // Everything queued now, in writes of up to BATCH_BYTES.
        loop {
            frames.clear();
            let mut n = 0u64;
            let mut closed = false;
            while frames.len() < BATCH_BYTES {
                match rx.try_recv() {
                    Ok(r) => {
                        encode(&r, &c.identity, &c.version, &mut payload);
                        fstrm::data(&mut frames, &payload);
                        n += 1;
                    }
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        closed = true;
                        break;
                    }
                }
            }
            let more = frames.len() >= BATCH_BYTES;
            if n > 0 {
                match tokio::time::timeout(STALL, wr.write_all(&frames)).await {
                    Ok(Ok(())) => metrics::counter!(DNSTAP_SENT_TOTAL).increment(n),
                    Ok(Err(e)) => {
                        metrics::counter!(DNSTAP_DROPPED_TOTAL).increment(n);
                        return End::Lost(e);
                    }
                    Err(_) => {
                        metrics::counter!(DNSTAP_DROPPED_TOTAL).increment(n);
                        return End::Lost(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!(
                                "collector stalled: no write progress for {} s",
                                STALL.as_secs()
                            ),
                        ));
                    }
                }
            }
            if closed {
                return finish(&mut rd, &mut wr).await;
            }
            if !more {
                break;
            }
        }
    }
}

/// STOP, then FINISH from the collector (not waited for long).
async fn finish<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(rd: &mut R, wr: &mut W) -> End {
    let mut stop = Vec::new();
    fstrm::control(&mut stop, fstrm::STOP, None);
    let done = tokio::time::timeout(FINISH_WAIT, async {
        wr.write_all(&stop).await?;
        wr.flush().await?;
        fstrm::read_control(rd).await
    })
    .await;
    match done {
        Ok(Ok(c)) if c.kind == fstrm::FINISH => info!("dnstap: stopped"),
        Ok(Ok(c)) => warn!("dnstap: expected FINISH, got control frame type {}", c.kind),
        Ok(Err(e)) => warn!("dnstap: stopping: {e}"),
        Err(_) => warn!("dnstap: no FINISH from the collector"),
    }
    let _ = wr.shutdown().await;
    End::Done
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn validate(yaml: &str) -> Result<DnstapConfig, Vec<String>> {
        let raw: RawDnstap = serde_saphyr::from_str(yaml).map_err(|e| vec![e.to_string()])?;
        let mut check = Check::new(Path::new("/etc/fraudwall"));
        let c = check.section("dnstap", |c| raw.validate(c));
        if check.is_clean() {
            Ok(c)
        } else {
            Err(check
                .into_problems()
                .into_iter()
                .map(|p| p.to_string())
                .collect())
        }
    }

    #[test]
    fn exactly_one_target() {
        let c = validate("socket: dnstap.sock\n").unwrap();
        assert_eq!(c.target, Target::Unix("/etc/fraudwall/dnstap.sock".into()));
        assert!(c.client_query && c.client_response);
        let c = validate("tcp: \"127.0.0.1:6000\"\nmessages: [client_response]\n").unwrap();
        assert_eq!(c.target, Target::Tcp("127.0.0.1:6000".parse().unwrap()));
        assert!(!c.client_query && c.client_response);
        let both = validate("socket: a\ntcp: \"127.0.0.1:6000\"\n").unwrap_err();
        assert!(
            both[0].contains("exactly one") && both[0].contains("both"),
            "{both:?}"
        );
        let none = validate("queue: 5\n").unwrap_err();
        assert!(none[0].contains("neither"), "{none:?}");
        let bad = validate("tcp: localhost\n").unwrap_err();
        assert!(bad[0].starts_with("dnstap.tcp:"), "{bad:?}");
    }

    #[test]
    fn unknown_message_types_and_zero_queue_are_problems() {
        let e =
            validate("socket: a\nmessages: [client_query, auth_query]\nqueue: 0\n").unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].starts_with("dnstap.messages:") && e[0].contains("auth_query"));
        assert!(e[1].starts_with("dnstap.queue:"));
    }

    #[test]
    fn a_record_encodes_as_the_schema_says() {
        let r = Record {
            kind: Kind::ClientResponse,
            transport: Transport::Tls,
            client: "[2001:db8::7]:5300".parse().unwrap(),
            time: SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 5),
            message: Box::new([1, 2, 3]),
            policy: Some(Box::new(policy(
                "police",
                "evil.test",
                Action::Sinkhole,
                b"\x04evil\x04test\x00",
            ))),
        };
        let mut out = Vec::new();
        encode(&r, b"host", b"v", &mut out);
        let d = proto::Dnstap::decode(out.as_slice()).unwrap();
        assert_eq!(d.identity.as_deref(), Some(&b"host"[..]));
        let m = d.message.unwrap();
        assert_eq!(m.r#type, proto::MessageType::ClientResponse as i32);
        assert_eq!(m.socket_family, Some(proto::SocketFamily::Inet6 as i32));
        assert_eq!(m.socket_protocol, Some(proto::SocketProtocol::Dot as i32));
        assert_eq!(m.query_port, Some(5300));
        assert_eq!(m.response_time_sec, Some(1_700_000_000));
        assert_eq!(m.response_time_nsec, Some(5));
        assert_eq!(m.response_message.as_deref(), Some(&[1, 2, 3][..]));
        let p = m.policy.unwrap();
        assert_eq!(p.rule.as_deref(), Some(&b"police:evil.test"[..]));
        assert_eq!(p.action, Some(proto::PolicyAction::LocalData as i32));
    }
}
