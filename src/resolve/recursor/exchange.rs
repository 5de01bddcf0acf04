//! One question to one authoritative server: a UDP datagram from a fresh socket on a random
//! port with a random ID (RFC 5452), the answer matched on address, port, ID and question, and
//! TCP when the answer comes back truncated.

use std::{
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use hickory_proto::{
    op::{Edns, Message, MessageType, OpCode, Query},
    rr::{DNSClass, Name, RecordType},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpStream, UdpSocket},
};

/// The EDNS payload size we advertise to authoritative servers (DNS flag day 2020).
pub const PAYLOAD: u16 = 1232;

/// How a question is asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ask {
    /// Send an OPT record (off only after a server answered FORMERR to one).
    pub edns: bool,
    /// Ask for DNSSEC records (DO).
    pub dnssec: bool,
}

/// Why no usable answer came back.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("timeout")]
    Timeout,
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("malformed answer: {0}")]
    Malformed(String),
}

/// Asks `server` for `name`/`qtype` and returns its answer. `timeout` bounds the whole
/// exchange (a TCP retry included).
pub async fn query(
    server: SocketAddr,
    name: &Name,
    qtype: RecordType,
    ask: Ask,
    timeout: Duration,
) -> Result<Message, ExchangeError> {
    let id: u16 = rand::random();
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(name.clone(), qtype));
    if ask.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(PAYLOAD);
        edns.set_dnssec_ok(ask.dnssec);
        m.set_edns(edns);
    }
    let bytes = m
        .to_vec()
        .map_err(|e| ExchangeError::Malformed(e.to_string()))?;
    let exchange = async {
        let answer = udp(server, &bytes, id, name, qtype).await?;
        if answer.metadata.truncation {
            return tcp(server, &bytes, id, name, qtype).await;
        }
        Ok(answer)
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| ExchangeError::Timeout)?
}

async fn udp(
    server: SocketAddr,
    query: &[u8],
    id: u16,
    name: &Name,
    qtype: RecordType,
) -> Result<Message, ExchangeError> {
    let local: SocketAddr = match server.ip() {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = UdpSocket::bind(local).await?;
    // Connected: the kernel drops datagrams from anyone but the server, and an ICMP error
    // (port unreachable) comes back as an error at once instead of a timeout.
    sock.connect(server).await?;
    sock.send(query).await?;
    let mut buf = [0u8; 4096];
    loop {
        let n = sock.recv(&mut buf).await?;
        if let Some(m) = matching(&buf[..n], id, name, qtype)? {
            return Ok(m);
        }
    }
}

async fn tcp(
    server: SocketAddr,
    query: &[u8],
    id: u16,
    name: &Name,
    qtype: RecordType,
) -> Result<Message, ExchangeError> {
    let mut s = TcpStream::connect(server).await?;
    s.set_nodelay(true)?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&(query.len() as u16).to_be_bytes());
    framed.extend_from_slice(query);
    s.write_all(&framed).await?;
    loop {
        let len = s.read_u16().await? as usize;
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).await?;
        if let Some(m) = matching(&body, id, name, qtype)? {
            return Ok(m);
        }
    }
}

/// The answer in `bytes` if it answers our question; `None` for a stray datagram.
fn matching(
    bytes: &[u8],
    id: u16,
    name: &Name,
    qtype: RecordType,
) -> Result<Option<Message>, ExchangeError> {
    if bytes.len() < 12 || u16::from_be_bytes([bytes[0], bytes[1]]) != id {
        return Ok(None);
    }
    let m = Message::from_vec(bytes).map_err(|e| ExchangeError::Malformed(e.to_string()))?;
    if m.metadata.message_type != MessageType::Response {
        return Ok(None);
    }
    // A FORMERR may come without the question; anything else must echo it.
    let ours = match m.queries.first() {
        Some(q) => q.name() == name && q.query_type() == qtype && q.query_class() == DNSClass::IN,
        None => m.metadata.response_code == hickory_proto::op::ResponseCode::FormErr,
    };
    if !ours {
        return Err(ExchangeError::Malformed(
            "the answer is for another question".into(),
        ));
    }
    Ok(Some(m))
}
