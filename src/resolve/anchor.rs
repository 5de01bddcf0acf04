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
    let read_error = |e: hickory_proto::serialize::txt::ParseError| AnchorError::Read {
        path: p.clone(),
        reason: e.to_string(),
    };
    let (dnskeys, rest) = split_dnskeys(&text);
    let keys = if dnskeys.is_empty() {
        TrustAnchors::empty()
    } else {
        dnskeys.parse::<TrustAnchors>().map_err(read_error)?
    };
    let (_, zone) = Parser::new(rest, Some(path.to_owned()), Some(Name::root()))
        .parse()
        .map_err(read_error)?;
    let mut ds = Vec::new();
    for r in zone.values().flat_map(RecordSet::records_without_rrsigs) {
        if let RData::DNSSEC(DNSSECRData::DS(d)) = &r.data {
            if !r.name.is_root() {
                return Err(AnchorError::NonRootDs {
                    path: p,
                    owner: r.name.to_string(),
                });
            }
            ds.push(d.clone());
        }
    }
    if ds.is_empty() && keys.is_empty() {
        return Err(AnchorError::Empty { path: p });
    }
    Ok(AnchorFile { keys, ds })
}

/// Splits anchor file text into its DNSKEY records, one per line, and the rest. hickory's zone
/// parser refuses DNSKEY records ("should be dynamically generated") and its trust anchor
/// parser refuses DS records, so each goes to the parser that reads it; before this, every
/// DNSKEY anchor file failed to load. A record in parentheses over several lines is joined.
fn split_dnskeys(text: &str) -> (String, String) {
    let (mut dnskeys, mut rest) = (String::new(), String::new());
    let mut record = String::new();
    let mut depth = 0i32;
    for line in text.lines() {
        // Base64 and hex hold no ';': the rest of the line is a comment.
        let data = line.split(';').next().unwrap_or("");
        depth += data.matches('(').count() as i32 - data.matches(')').count() as i32;
        record.push_str(line);
        record.push('\n');
        if depth > 0 {
            continue;
        }
        depth = 0;
        let is_dnskey = record
            .lines()
            .flat_map(|l| l.split(';').next().unwrap_or("").split_whitespace())
            .any(|t| t.eq_ignore_ascii_case("DNSKEY"));
        if is_dnskey {
            let tokens: Vec<&str> = record
                .lines()
                .flat_map(|l| l.split(';').next().unwrap_or("").split_whitespace())
                .filter(|t| *t != "(" && *t != ")")
                .collect();
            dnskeys.push_str(&tokens.join(" ").replace(['(', ')'], ""));
            dnskeys.push('\n');
        } else {
            rest.push_str(&record);
        }
        record.clear();
    }
    rest.push_str(&record);
    (dnskeys, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "WHqPUaJvOamLhQ1oj6PsGLMshevrXl3dU+F1HXBT0MwmI8V5V0GwJEG3FhPxUpUiTUIAxVxmSCzJquOOUWOgRQ==";

    fn parse(text: &str) -> Result<AnchorFile, AnchorError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("anchor");
        std::fs::write(&path, text).unwrap();
        parse_file(&path)
    }

    #[test]
    fn dnskey_ds_and_multi_line_records_load() {
        let text = format!(
            "; comment\n.\tIN\tDNSKEY\t257 3 13 {KEY} ;{{id = 52175 (ksk)}}\n\
             . 3600 IN DNSKEY ( 257 3 13\n   {KEY} ) ; again\n\
             . 3600 IN DS 17889 13 2 4dcf2294b6d122343ff30b89be41d108c5452ad25715070a2d751945c82401d1\n"
        );
        let file = parse(&text).unwrap();
        assert_eq!(file.keys.len(), 2);
        assert_eq!(file.ds.len(), 1);
        let only_key = parse(&format!(". 3600 IN DNSKEY 257 3 13 {KEY}\n")).unwrap();
        assert_eq!((only_key.keys.len(), only_key.ds.len()), (1, 0));
    }

    #[test]
    fn a_file_without_anchors_is_refused() {
        assert!(matches!(
            parse("; nothing\n"),
            Err(AnchorError::Empty { .. })
        ));
    }
}
