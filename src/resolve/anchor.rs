//! Trust anchors from a file of DS or DNSKEY records, as Unbound's `trust-anchor-file` reads.
//!
//! DNSKEY anchors are keys the root's DNSKEY RRset must contain; DS anchors are matched by
//! digest against the root's keys when the recursor first fetches them. Either way the vouched
//! key must sign the root's DNSKEY RRset, so a spoofed answer cannot introduce a key.

use std::path::Path;

use hickory_proto::{
    dnssec::{TrustAnchors, rdata::DNSSECRData},
    rr::{Name, RData, RecordSet},
    serialize::txt::Parser,
};

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
}

/// What a trust anchor file holds: DNSKEY anchors, and root DS records that the recursor
/// matches against the root's keys when it first asks for them.
pub struct AnchorFile {
    pub keys: TrustAnchors,
    pub ds: Vec<hickory_proto::dnssec::rdata::DS>,
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
