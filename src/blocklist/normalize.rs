//! Name normalisation: one canonical spelling per name, so that equal names become equal keys.
//!
//! Canonical form: ASCII lowercase, no trailing dot, Unicode converted to punycode, labels of
//! `[a-z0-9_-]` (underscores and leading/trailing hyphens occur in real lists and real queries, so
//! they are accepted), 1..=63 bytes per label, at most 253 bytes in all, and not an IP address.

use std::net::Ipv4Addr;

/// Longest label (RFC 1035).
pub const MAX_LABEL: usize = 63;
/// Longest name in text form without the trailing dot (RFC 1035: 255 wire bytes).
pub const MAX_NAME: usize = 253;

/// Why a name was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Nothing left after stripping `*.` and the trailing dot.
    #[error("empty name")]
    Empty,
    /// Two dots in a row, or a leading dot.
    #[error("empty label in {name:?}")]
    EmptyLabel {
        /// The offending name.
        name: String,
    },
    /// A label longer than 63 bytes.
    #[error("label of {len} bytes (limit {MAX_LABEL}) in {name:?}")]
    LabelTooLong {
        /// The name (truncated for display).
        name: String,
        /// Label length.
        len: usize,
    },
    /// A name longer than 253 bytes.
    #[error("name of {len} bytes (limit {MAX_NAME}): {name:?}")]
    NameTooLong {
        /// The name (truncated for display).
        name: String,
        /// Name length.
        len: usize,
    },
    /// A byte outside `[a-z0-9_-]` after case folding and punycode.
    #[error("invalid character {ch:?} in {name:?}")]
    BadChar {
        /// The name (truncated for display).
        name: String,
        /// The character.
        ch: char,
    },
    /// An IP address where a name was expected.
    #[error("{name:?} is an IP address, not a domain name")]
    IpAddress {
        /// The address.
        name: String,
    },
    /// A `*` that is not a leading `*.` label.
    #[error("wildcard is only supported as a leading `*.`: {name:?}")]
    Wildcard {
        /// The name.
        name: String,
    },
    /// Unicode that IDNA (UTS #46) refuses.
    #[error("invalid internationalised name {name:?}")]
    Idna {
        /// The name.
        name: String,
    },
}

/// What [`normalize_into`] learned about a valid name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameInfo {
    /// The raw name had a leading `*.` (so it is a subtree entry).
    pub wildcard: bool,
    /// Number of labels.
    pub labels: usize,
}

/// Shortens a name for error messages (300-character names should not flood the log).
fn shown(name: &str) -> String {
    const SHOW: usize = 80;
    if name.len() <= SHOW {
        return name.to_string();
    }
    let mut end = SHOW;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &name[..end])
}

/// Normalises `raw` into `out` (cleared first); see the module doc for the canonical form.
pub fn normalize_into(raw: &str, out: &mut String) -> Result<NameInfo, NameError> {
    out.clear();
    let mut s = raw.trim();
    let wildcard = s.starts_with("*.");
    if wildcard {
        s = &s[2..];
    }
    s = s.strip_suffix('.').unwrap_or(s);
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    if s.contains('*') {
        return Err(NameError::Wildcard { name: shown(raw) });
    }
    // Bound the work IDNA does on absurd inputs before anything else.
    if s.len() > 4 * MAX_NAME {
        return Err(NameError::NameTooLong {
            name: shown(s),
            len: s.len(),
        });
    }
    if s.is_ascii() {
        out.push_str(s);
        out.make_ascii_lowercase();
    } else {
        // UTS #46 maps case and compatibility forms, then punycodes each label.
        match idna::domain_to_ascii(s) {
            Ok(a) => out.push_str(&a),
            Err(_) => return Err(NameError::Idna { name: shown(s) }),
        }
    }
    let name = out.as_str();
    if name.len() > MAX_NAME {
        return Err(NameError::NameTooLong {
            name: shown(name),
            len: name.len(),
        });
    }
    let mut labels = 0;
    for label in name.split('.') {
        labels += 1;
        if label.is_empty() {
            return Err(NameError::EmptyLabel { name: shown(name) });
        }
        if label.len() > MAX_LABEL {
            return Err(NameError::LabelTooLong {
                name: shown(name),
                len: label.len(),
            });
        }
        if let Some(ch) = label
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
        {
            return Err(NameError::BadChar {
                name: shown(name),
                ch,
            });
        }
    }
    if name.parse::<Ipv4Addr>().is_ok() {
        return Err(NameError::IpAddress {
            name: name.to_string(),
        });
    }
    Ok(NameInfo { wildcard, labels })
}

/// Normalises `raw`, returning the canonical name and what was learned about it.
pub fn normalize(raw: &str) -> Result<(String, NameInfo), NameError> {
    let mut out = String::new();
    let info = normalize_into(raw, &mut out)?;
    Ok((out, info))
}

/// Appends the FST key of a canonical name: its labels in reverse order joined by `.`
/// (`www.example.com` → `com.example.www`), so that a name's ancestors are prefixes of its key.
pub fn push_reversed_key(name: &str, out: &mut Vec<u8>) {
    for (i, label) in name.rsplit('.').enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        out.extend_from_slice(label.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! ok {
        ($($raw:expr => $want:expr, $wild:expr;)*) => {$(
            let (n, info) = normalize($raw).unwrap_or_else(|e| panic!("{:?}: {e}", $raw));
            assert_eq!((n.as_str(), info.wildcard), ($want, $wild), "{:?}", $raw);
        )*};
    }

    #[test]
    fn accepts_and_canonicalises() {
        ok! {
            "Example.COM" => "example.com", false;
            "example.com." => "example.com", false;
            "*.Example.com" => "example.com", true;
            "  spaced.test\t" => "spaced.test", false;
            "konto_identity.example.com" => "konto_identity.example.com", false;
            "-lead.trail-.test" => "-lead.trail-.test", false;
            "bücher.de" => "xn--bcher-kva.de", false;
            "ПРИМЕР.рф" => "xn--e1afmkfd.xn--p1ai", false;
            "xn--p1ai" => "xn--p1ai", false;
            "1.2.3.4.in-addr.arpa" => "1.2.3.4.in-addr.arpa", false;
        }
    }

    #[test]
    fn rejects() {
        let long_label = format!("{}.test", "a".repeat(64));
        let long_name = format!("{}test", "abcdefghi.".repeat(30));
        for (raw, want) in [
            ("", "empty name"),
            ("*.", "empty name"),
            (".", "empty name"),
            ("a..b", "empty label"),
            (".a.b", "empty label"),
            ("a b.com", "invalid character ' '"),
            ("exa$mple.com", "invalid character '$'"),
            ("1.2.3.4", "IP address"),
            ("::1", "invalid character ':'"),
            ("a.*.com", "wildcard"),
            (long_label.as_str(), "label of 64 bytes"),
            (long_name.as_str(), "name of 304 bytes"),
        ] {
            let err = normalize(raw).unwrap_err().to_string();
            assert!(err.contains(want), "{raw:?}: {err}");
        }
    }

    #[test]
    fn reversed_key() {
        let mut k = Vec::new();
        push_reversed_key("www.example.com", &mut k);
        assert_eq!(k, b"com.example.www");
        k.clear();
        push_reversed_key("com", &mut k);
        assert_eq!(k, b"com");
    }
}
