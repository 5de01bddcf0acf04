//! Trust anchors from a file of DS or DNSKEY records, as Unbound's `trust-anchor-file` reads.
//!
//! hickory's `TrustAnchors` only takes DNSKEYs. For a DS anchor we do what a resolver's priming
//! does: ask the root servers for the root DNSKEY RRset once at start and keep the keys whose
//! digest matches a configured DS. The validator then still requires that key to sign the
//! DNSKEY RRset, so a spoofed priming answer cannot introduce a key.

use std::{
    net::{IpAddr, SocketAddr},
    path::Path,
    time::Duration,
};

use hickory_proto::{
    dnssec::{TrustAnchors, rdata::DNSSECRData},
    op::{Edns, Message, MessageType, OpCode, Query},
    rr::{Name, RData, RecordSet, RecordType},
    serialize::txt::Parser,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpStream, UdpSocket},
};
use tracing::{info, warn};

/// Problems with a trust anchor file.
#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    #[error("{path}: cannot read trust anchor: {reason}")]
    Read { path: String, reason: String },
    #[error("{path}: no DS or DNSKEY records in trust anchor file")]
    Empty { path: String },
    #[error(
        "{path}: DS trust anchor for {owner}: only root DS anchors are supported; give the DNSKEY instead"
    )]
    NonRootDs { path: String, owner: String },
    #[error(
        "{path}: no root DNSKEY matching the DS anchor could be fetched from the root servers ({reason}); \
         check resolver.root_hints, or give the DNSKEY record instead of the DS"
    )]
    NoMatchingKey { path: String, reason: String },
}

/// What a trust anchor file holds: DNSKEY anchors, and root DS records still to be matched
/// against the root's keys.
pub struct AnchorFile {
    keys: TrustAnchors,
    ds: Vec<hickory_proto::dnssec::rdata::DS>,
}

/// Reads and parses an anchor file without asking anyone (what `config check` can check).
pub fn parse_file(path: &Path) -> Result<AnchorFile, AnchorError> {
    let p = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| AnchorError::Read {
        path: p.clone(),
        reason: e.to_string(),
    })?;
    let (_, zone) = Parser::new(text, Some(path.to_owned()), Some(Name::root()))
        .parse()
        .map_err(|e| AnchorError::Read {
            path: p.clone(),
            reason: e.to_string(),
        })?;
    let mut keys = TrustAnchors::empty();
    let mut ds = Vec::new();
    for r in zone.values().flat_map(RecordSet::records_without_rrsigs) {
        match &r.data {
            RData::DNSSEC(DNSSECRData::DNSKEY(k)) => {
                keys.insert_with_name(k.public_key(), r.name.clone().into());
            }
            RData::DNSSEC(DNSSECRData::DS(d)) => {
                if !r.name.is_root() {
                    return Err(AnchorError::NonRootDs {
                        path: p,
                        owner: r.name.to_string(),
                    });
                }
                ds.push(d.clone());
            }
            _ => {}
        }
    }
    if ds.is_empty() && keys.is_empty() {
        return Err(AnchorError::Empty { path: p });
    }
    Ok(AnchorFile { keys, ds })
}

/// Loads anchors from `path`; DS records are turned into keys by asking `roots`.
pub async fn load(path: &Path, roots: &[IpAddr]) -> Result<TrustAnchors, AnchorError> {
    let p = path.display().to_string();
    let AnchorFile {
        keys: mut anchors,
        ds: ds_list,
    } = parse_file(path)?;
    if ds_list.is_empty() {
        return Ok(anchors);
    }
    let mut last_err = String::from("no root server answered");
    for attempt in 0..3 {
        for &ip in roots {
            match fetch_root_dnskeys(ip).await {
                Ok(keys) => {
                    let mut matched = 0;
                    for key in &keys {
                        if ds_list
                            .iter()
                            .any(|ds| ds.covers(&Name::root(), key).unwrap_or(false))
                        {
                            anchors.insert(key.public_key());
                            matched += 1;
                        }
                    }
                    if matched > 0 {
                        info!(server = %ip, keys = matched, "root trust anchor primed from DS");
                        return Ok(anchors);
                    }
                    last_err = format!("{ip} returned no key matching the DS");
                }
                Err(e) => last_err = format!("{ip}: {e}"),
            }
        }
        warn!(attempt, error = %last_err, "priming the DS trust anchor failed; retrying");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(AnchorError::NoMatchingKey {
        path: p,
        reason: last_err,
    })
}

async fn fetch_root_dnskeys(
    ip: IpAddr,
) -> Result<Vec<hickory_proto::dnssec::rdata::DNSKEY>, String> {
    let mut m = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::root(), RecordType::DNSKEY));
    let mut edns = Edns::new();
    edns.set_max_payload(4096);
    edns.set_dnssec_ok(true);
    m.set_edns(edns);
    let bytes = m.to_vec().map_err(|e| e.to_string())?;
    let addr = SocketAddr::new(ip, 53);
    let bind: SocketAddr = if ip.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal")
    } else {
        "[::]:0".parse().expect("literal")
    };
    let sock = UdpSocket::bind(bind).await.map_err(|e| e.to_string())?;
    sock.send_to(&bytes, addr)
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 65535];
    let n = tokio::time::timeout(Duration::from_secs(2), sock.recv(&mut buf))
        .await
        .map_err(|_| "timeout".to_string())?
        .map_err(|e| e.to_string())?;
    let mut resp = Message::from_vec(&buf[..n]).map_err(|e| e.to_string())?;
    if resp.metadata.truncation {
        let mut tcp = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr))
            .await
            .map_err(|_| "tcp timeout".to_string())?
            .map_err(|e| e.to_string())?;
        let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        tcp.write_all(&framed).await.map_err(|e| e.to_string())?;
        let len = tcp.read_u16().await.map_err(|e| e.to_string())? as usize;
        let mut body = vec![0u8; len];
        tcp.read_exact(&mut body).await.map_err(|e| e.to_string())?;
        resp = Message::from_vec(&body).map_err(|e| e.to_string())?;
    }
    Ok(resp
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::DNSKEY(k)) if r.name.is_root() => Some(k.clone()),
            _ => None,
        })
        .collect())
}

fn rand_id() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    h.finish() as u16
}
