//! Guard rails on what a block list can block.
//!
//! One bad line in a feed (`com`, `paypal.com`) must not cut customers off most of the web or
//! from their bank. Unless its list is trusted (`trusted: true` in `blocklists.lists`), a block
//! entry is refused when
//! - it is a public suffix of the ICANN section of the Public Suffix List (`com`, `co.uk`,
//!   `gov.cn`), as embedded in the [`psl`] crate; or
//! - it covers a protected name: a subtree entry `X` covers `P` when `P` is `X` or below `X`; an
//!   exact entry covers only its own name. A protected `*.P` also protects every name below `P`,
//!   so an entry inside it is refused as well.
//!
//! Allow entries are never refused. A subtree block entry at a public suffix of the PSL's private
//! section (`github.io`) is kept, with a warning.
//!
//! The protected names are a plain list: one name per line, `#` comments, `*.name` for a name
//! and everything below it. The built-in one is `config/protected-names.txt`, compiled in;
//! `blocklists.protected_names` points at the operator's own file instead.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use siphasher::sip128::{Hasher128, SipHasher13};

use super::MatchMode;
use super::normalize::normalize_into;

/// The shipped protected names.
const BUILTIN: &str = include_str!("../../config/protected-names.txt");
/// How the built-in list is named in messages.
const BUILTIN_ORIGIN: &str = "built-in protected names";

type Map = HashMap<String, usize, foldhash::fast::RandomState>;

/// What untrusted block lists may not block. Cheap to clone (shared).
#[derive(Clone)]
pub struct Guard {
    inner: Arc<Protected>,
}

/// One protected name and where it was listed.
#[derive(Debug)]
struct Name {
    name: String,
    line: u64,
}

struct Protected {
    /// The file, or [`BUILTIN_ORIGIN`].
    origin: String,
    names: Vec<Name>,
    /// Each protected name and each of its ancestors → the first protected name at or below it
    /// (what a subtree entry at that name would cover).
    covered: Map,
    /// Each protected name → itself (what an exact entry would cover).
    exact: Map,
    /// Each `*.` protected name → itself (entries below it are refused).
    subtree: Map,
    /// Hash of the text, so that `Debug` changes when the content does.
    digest: u128,
}

/// Why a protected-names file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// The file could not be read.
    #[error("{}: cannot read protected names: {source}; check the path and its permissions", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A line is not a valid name.
    #[error("{origin}:{line}: {reason}; protected names are one name (or `*.name`) per line")]
    BadLine {
        /// The file.
        origin: String,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        reason: String,
    },
}

/// Why an entry is refused (see the module doc); its `Display` is the diagnostic's reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal<'a> {
    /// The entry, canonical.
    pub entry: &'a str,
    /// The protected name it would block (the entry itself for a public suffix).
    pub protected: &'a str,
    why: Why<'a>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Why<'a> {
    PublicSuffix,
    /// The entry is the protected name.
    IsProtected(&'a str, u64),
    /// The entry is above the protected name.
    Covers(&'a str, u64),
    /// The entry is below a protected `*.name`.
    Inside(&'a str, u64),
}

impl Refusal<'_> {
    /// True for a public suffix, false for a protected name.
    pub fn is_public_suffix(&self) -> bool {
        self.why == Why::PublicSuffix
    }
}

impl fmt::Display for Refusal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.entry;
        match self.why {
            Why::PublicSuffix => write!(
                f,
                "{e:?} is a public suffix (ICANN section of the Public Suffix List) and would block every name below it"
            ),
            Why::IsProtected(origin, line) => {
                write!(f, "{e:?} is a protected name ({origin}:{line})")
            }
            Why::Covers(origin, line) => write!(
                f,
                "{e:?} would block the protected name {:?} ({origin}:{line})",
                self.protected
            ),
            Why::Inside(origin, line) => write!(
                f,
                "{e:?} is inside the protected \"*.{}\" ({origin}:{line})",
                self.protected
            ),
        }
    }
}

impl Guard {
    /// The built-in protected names (`config/protected-names.txt`).
    pub fn builtin() -> Guard {
        static BUILT: OnceLock<Guard> = OnceLock::new();
        BUILT
            .get_or_init(|| {
                Guard::parse(BUILTIN, BUILTIN_ORIGIN)
                    .expect("config/protected-names.txt is valid (a unit test checks it)")
            })
            .clone()
    }

    /// The protected names in the file at `path`.
    pub fn load(path: &Path) -> Result<Guard, GuardError> {
        let text = std::fs::read_to_string(path).map_err(|source| GuardError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Guard::parse(&text, &path.display().to_string())
    }

    /// The protected names in `text`; `origin` names it in messages.
    pub fn parse(text: &str, origin: &str) -> Result<Guard, GuardError> {
        let mut p = Protected {
            origin: origin.to_string(),
            names: Vec::new(),
            covered: Map::default(),
            exact: Map::default(),
            subtree: Map::default(),
            digest: 0,
        };
        let mut canon = String::new();
        for (i, line) in text.lines().enumerate() {
            let line_no = i as u64 + 1;
            let raw = line.split('#').next().unwrap_or("").trim();
            if raw.is_empty() {
                continue;
            }
            let bad = |reason: String| GuardError::BadLine {
                origin: origin.to_string(),
                line: line_no,
                reason,
            };
            if raw.split_whitespace().nth(1).is_some() {
                return Err(bad(format!("more than one name on the line: {raw:?}")));
            }
            let info = normalize_into(raw, &mut canon).map_err(|e| bad(e.to_string()))?;
            let idx = p.names.len();
            p.names.push(Name {
                name: canon.clone(),
                line: line_no,
            });
            p.exact.entry(canon.clone()).or_insert(idx);
            if info.wildcard {
                p.subtree.entry(canon.clone()).or_insert(idx);
            }
            let mut at = canon.as_str();
            loop {
                p.covered.entry(at.to_string()).or_insert(idx);
                match at.split_once('.') {
                    Some((_, parent)) => at = parent,
                    None => break,
                }
            }
        }
        let mut h = SipHasher13::new_with_keys(0x7072_6f74_6563_7465, 0x645f_6e61_6d65_7300);
        std::hash::Hasher::write(&mut h, text.as_bytes());
        p.digest = h.finish128().as_u128();
        Ok(Guard { inner: Arc::new(p) })
    }

    /// Protected names listed.
    pub fn len(&self) -> usize {
        self.inner.names.len()
    }

    /// True when no name is protected (public suffixes still are).
    pub fn is_empty(&self) -> bool {
        self.inner.names.is_empty()
    }

    /// Where the names come from (a path, or "built-in protected names").
    pub fn origin(&self) -> &str {
        &self.inner.origin
    }

    /// Why a block entry for the canonical `name` (see [`super::normalize`]) with `mode` must be
    /// refused, or `None` if it may be loaded. Allocation-free: it runs once per entry.
    pub fn refuses<'a>(&'a self, name: &'a str, mode: MatchMode) -> Option<Refusal<'a>> {
        if is_icann_suffix(name) {
            return Some(Refusal {
                entry: name,
                protected: name,
                why: Why::PublicSuffix,
            });
        }
        let p = &*self.inner;
        let hit = match mode {
            MatchMode::Subtree => p.covered.get(name),
            MatchMode::Exact => p.exact.get(name),
        };
        if let Some(&i) = hit {
            let n = &p.names[i];
            let why = if n.name == name {
                Why::IsProtected(&p.origin, n.line)
            } else {
                Why::Covers(&p.origin, n.line)
            };
            return Some(Refusal {
                entry: name,
                protected: &n.name,
                why,
            });
        }
        if !p.subtree.is_empty() {
            let mut at = name;
            while let Some((_, parent)) = at.split_once('.') {
                if let Some(&i) = p.subtree.get(parent) {
                    let n = &p.names[i];
                    return Some(Refusal {
                        entry: name,
                        protected: &n.name,
                        why: Why::Inside(&p.origin, n.line),
                    });
                }
                at = parent;
            }
        }
        None
    }
}

/// Whether the canonical `name` is itself a public suffix of the ICANN section of the PSL.
pub fn is_icann_suffix(name: &str) -> bool {
    psl::suffix(name.as_bytes())
        .is_some_and(|s| s.typ() == Some(psl::Type::Icann) && s.as_bytes().len() == name.len())
}

/// Whether the canonical `name` is itself a public suffix of the PSL's private section
/// (`github.io`, `blogspot.com`): sites of many owners below it.
pub fn is_private_suffix(name: &str) -> bool {
    psl::suffix(name.as_bytes())
        .is_some_and(|s| s.typ() == Some(psl::Type::Private) && s.as_bytes().len() == name.len())
}

impl fmt::Debug for Guard {
    /// Names the content, not just the file: the reload cache keys compiled lists by it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &*self.inner;
        write!(
            f,
            "Guard({:?}, {} names, {:032x})",
            p.origin,
            p.names.len(),
            p.digest
        )
    }
}

impl Default for Guard {
    fn default() -> Guard {
        Guard::builtin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MatchMode::{Exact, Subtree};

    fn guard() -> Guard {
        Guard::parse(
            "# test\npaypal.com\nwww.gov.cn # comment\n*.windowsupdate.com\n\nBÜCHER.example\n",
            "p.txt",
        )
        .unwrap()
    }

    fn why(g: &Guard, name: &str, mode: MatchMode) -> Option<String> {
        g.refuses(name, mode).map(|r| r.to_string())
    }

    macro_rules! refusals {
        ($($name:ident: $entry:expr, $mode:expr => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                let got = why(&guard(), $entry, $mode);
                let want: Option<&str> = $want;
                match (got.as_deref(), want) {
                    (None, None) => {}
                    (Some(g), Some(w)) => assert!(g.contains(w), "{g:?} lacks {w:?}"),
                    (g, w) => panic!("{}: got {g:?}, want {w:?}", $entry),
                }
            }
        )*};
    }

    refusals! {
        tld: "com", Subtree => Some("\"com\" is a public suffix (ICANN");
        tld_exact: "com", Exact => Some("public suffix");
        second_level_suffix: "co.uk", Subtree => Some("public suffix");
        wildcard_rule_suffix: "foo.kawasaki.jp", Subtree => Some("public suffix");
        idn_suffix: "xn--fiqs8s", Subtree => Some("public suffix");
        gov_cn: "gov.cn", Subtree => Some("public suffix");
        registrable: "example.co.uk", Subtree => None;
        unknown_tld: "plaintld", Subtree => None;
        private_suffix_not_refused: "github.io", Subtree => None;
        protected_itself: "paypal.com", Subtree => Some("\"paypal.com\" is a protected name (p.txt:2)");
        protected_itself_exact: "paypal.com", Exact => Some("protected name");
        below_protected_is_allowed: "evil.paypal.com", Subtree => None;
        covers_deeper: "windowsupdate.com", Subtree => Some("is a protected name (p.txt:4)");
        exact_above_is_allowed: "x.www.gov.cn", Exact => None;
        inside_wildcard: "dl.delivery.windowsupdate.com", Exact => Some("is inside the protected \"*.windowsupdate.com\" (p.txt:4)");
        idn_protected: "xn--bcher-kva.example", Subtree => Some("p.txt:6");
        covers_idn: "example", Subtree => Some("would block the protected name \"xn--bcher-kva.example\" (p.txt:6)");
        exact_parent_allowed: "example", Exact => None;
        unrelated: "fraud.test", Subtree => None;
        lookalike: "paypal.com.evil.test", Subtree => None;
    }

    #[test]
    fn covering_names_the_first_protected_name_below() {
        let g = Guard::parse("a.b.test\nc.b.test\n", "x").unwrap();
        assert_eq!(
            why(&g, "b.test", Subtree).unwrap(),
            "\"b.test\" would block the protected name \"a.b.test\" (x:1)"
        );
        assert_eq!(why(&g, "b.test", Exact), None);
    }

    #[test]
    fn bad_lines_are_errors_with_their_line() {
        let e = Guard::parse("ok.test\nbad..test\n", "f.txt").unwrap_err();
        assert!(e.to_string().starts_with("f.txt:2: empty label"), "{e}");
        let e = Guard::parse("a.test b.test\n", "f.txt").unwrap_err();
        assert!(e.to_string().contains("f.txt:1: more than one name"), "{e}");
    }

    #[test]
    fn builtin_list_is_valid_and_protects_the_essentials() {
        let g = Guard::parse(BUILTIN, BUILTIN_ORIGIN).unwrap();
        assert!(g.len() > 50);
        for name in [
            "paypal.com",
            "www.gov.cn",
            "ocsp.digicert.com",
            "a.root-servers.net",
        ] {
            assert!(g.refuses(name, Exact).is_some(), "{name}");
        }
        assert!(g.refuses("fraudwall-demo.test", Subtree).is_none());
    }

    #[test]
    fn debug_changes_with_the_content() {
        let a = format!("{:?}", Guard::parse("a.test\n", "x").unwrap());
        let b = format!("{:?}", Guard::parse("b.test\n", "x").unwrap());
        assert_ne!(a, b);
        assert!(a.starts_with("Guard(\"x\", 1 names, "), "{a}");
    }
}
