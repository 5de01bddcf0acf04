//! `blocklists.feeds`: RPZ zones fetched by zone transfer from a vendor's primaries.

use std::{
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    time::Duration,
};

use hickory_proto::rr::{Name, rdata::tsig::TsigAlgorithm};
use serde::Deserialize;

use crate::blocklist::{Action, Format, Guard, ListKind, ListSpec, MatchMode};
use crate::dns::ede;
use crate::lists::config::RawDuration;
use crate::section::Check;

/// One entry of `blocklists.feeds` as YAML spells it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFeed {
    /// Names the feed in logs, metrics and verdicts (`feed:<name>`), and its file.
    pub name: String,
    /// The RPZ zone to transfer.
    pub zone: String,
    /// `ip:port` (or a bare IP, port 53) of each primary, tried in order.
    pub primaries: Vec<String>,
    #[serde(default)]
    pub tsig: Option<RawTsig>,
    /// Transfer without TSIG (anyone on the path could alter the zone).
    #[serde(default)]
    pub allow_unsigned: bool,
    #[serde(default)]
    pub action: Option<Action>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub ede: Option<u16>,
    /// Lower bound of the SOA refresh and retry intervals (default 30s).
    #[serde(default)]
    pub refresh_min: Option<RawDuration>,
    /// Upper bound of the SOA refresh and retry intervals (default 1d).
    #[serde(default)]
    pub refresh_max: Option<RawDuration>,
    /// What happens when no check succeeded for the SOA expire time.
    #[serde(default)]
    pub after_expire: AfterExpire,
    /// Longest silence from a primary within one transfer (default 30s).
    #[serde(default)]
    pub timeout: Option<RawDuration>,
}

/// `tsig:` of a feed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTsig {
    pub name: String,
    pub algorithm: String,
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    #[serde(default)]
    pub secret: Option<String>,
}

/// `after_expire:` of a feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AfterExpire {
    /// Keep blocking with the last zone (logged and visible in the metrics).
    #[default]
    Keep,
    /// Stop using the zone until a transfer succeeds again.
    Drop,
}

/// A TSIG key, validated.
#[derive(Clone, PartialEq, Eq)]
pub struct TsigKey {
    pub name: Name,
    pub algorithm: TsigAlgorithm,
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret: configs are logged in debug output.
        write!(f, "TsigKey({} {})", self.name, self.algorithm)
    }
}

/// A feed, validated.
#[derive(Debug, Clone)]
pub struct Feed {
    pub name: String,
    /// The zone, fully qualified, lowercase.
    pub zone: Name,
    pub primaries: Vec<SocketAddr>,
    pub tsig: Option<TsigKey>,
    /// The list name its entries carry (`feed:<name>`).
    pub list: String,
    /// The zone as an RPZ file: `<state_dir>/feeds/<name>.rpz`.
    pub path: PathBuf,
    pub refresh_min: Duration,
    pub refresh_max: Duration,
    pub after_expire: AfterExpire,
    pub timeout: Duration,
}

impl Feed {
    /// Whether `ip` is one of the feed's primaries (who may NOTIFY it).
    pub fn is_primary(&self, ip: IpAddr) -> bool {
        self.primaries.iter().any(|p| p.ip() == ip)
    }

    /// The sidecar with the serial and the time of the last good check.
    pub fn state_path(&self) -> PathBuf {
        self.path.with_extension("json")
    }
}

fn duration(
    check: &mut Check,
    key: &str,
    raw: Option<&RawDuration>,
    default: Duration,
) -> Duration {
    match raw.map(RawDuration::to_duration) {
        None => default,
        Some(Ok(d)) if d.as_secs() >= 1 => d,
        Some(Ok(_)) => {
            check.problem(key, "must be at least 1 second");
            default
        }
        Some(Err(e)) => {
            check.problem(key, e);
            default
        }
    }
}

/// An `ip:port` or a bare IP (port 53).
fn primary(text: &str) -> Option<SocketAddr> {
    text.parse::<SocketAddr>().ok().or_else(|| {
        text.parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, 53))
    })
}

fn algorithm(text: &str) -> Option<TsigAlgorithm> {
    match text.trim_end_matches('.').to_ascii_lowercase().as_str() {
        "hmac-sha256" => Some(TsigAlgorithm::HmacSha256),
        "hmac-sha384" => Some(TsigAlgorithm::HmacSha384),
        "hmac-sha512" => Some(TsigAlgorithm::HmacSha512),
        _ => None,
    }
}

impl RawTsig {
    fn validate(self, check: &mut Check) -> Option<TsigKey> {
        let name = match Name::from_ascii(&self.name) {
            Ok(mut n) if !self.name.is_empty() => {
                n.set_fqdn(true);
                Some(n.to_lowercase())
            }
            _ => {
                check.problem("name", format!("{:?} is not a key name", self.name));
                None
            }
        };
        let algo = algorithm(&self.algorithm);
        if algo.is_none() {
            check.problem(
                "algorithm",
                format!(
                    "{:?}: use hmac-sha256, hmac-sha384 or hmac-sha512",
                    self.algorithm
                ),
            );
        }
        let text = match (self.secret, self.secret_file) {
            (Some(s), None) => Some(s),
            (None, Some(p)) => {
                let p = check.path(&p);
                match std::fs::read_to_string(&p) {
                    Ok(t) => Some(secret_from_file(&t)),
                    Err(e) => {
                        check.problem("secret_file", format!("{}: {e}", p.display()));
                        None
                    }
                }
            }
            (Some(_), Some(_)) => {
                check.problem("secret", "give secret or secret_file, not both");
                None
            }
            (None, None) => {
                check.problem("", "needs secret_file (or secret): the base64 key");
                None
            }
        };
        let secret = text.and_then(
            |t| match data_encoding::BASE64.decode(t.trim().as_bytes()) {
                Ok(s) if !s.is_empty() => Some(s),
                _ => {
                    check.problem("secret", "is not a base64 key (as tsig-keygen prints it)");
                    None
                }
            },
        );
        Some(TsigKey {
            name: name?,
            algorithm: algo?,
            secret: secret?,
        })
    }
}

/// The base64 secret of a key file: the whole file, or the `secret "…";` of a BIND/Knot key
/// file (what `tsig-keygen` and `keymgr -t` print).
fn secret_from_file(text: &str) -> String {
    for line in text.lines() {
        let l = line.trim();
        for word in ["secret", "secret:"] {
            if let Some(rest) = l.strip_prefix(word)
                && rest.starts_with([' ', '\t'])
            {
                return rest
                    .trim()
                    .trim_end_matches(';')
                    .trim_matches('"')
                    .to_string();
            }
        }
    }
    text.trim().to_string()
}

impl RawFeed {
    /// Validates entry `i` of `blocklists.feeds` into the feed and the list its zone becomes.
    pub fn validate(
        self,
        state_dir: &Path,
        default_action: Action,
        guard: &Guard,
        check: &mut Check,
    ) -> Option<(Feed, ListSpec)> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            check.problem(
                "name",
                format!(
                    "{:?}: use 1 to 64 letters, digits, - and _ (it names a file)",
                    self.name
                ),
            );
        }
        let zone = match Name::from_ascii(&self.zone) {
            Ok(mut z) if !self.zone.trim_matches('.').is_empty() => {
                z.set_fqdn(true);
                Some(z.to_lowercase())
            }
            _ => {
                check.problem("zone", format!("{:?} is not a zone name", self.zone));
                None
            }
        };
        let mut primaries = Vec::new();
        for p in &self.primaries {
            match primary(p) {
                Some(a) => primaries.push(a),
                None => check.problem(
                    "primaries",
                    format!("{p:?} is not an address like 192.0.2.1:53 or [2001:db8::1]:53"),
                ),
            }
        }
        if self.primaries.is_empty() {
            check.problem("primaries", "at least one primary is needed");
        }
        let tsig = match self.tsig {
            Some(t) => Some(check.section("tsig", |c| t.validate(c))?),
            None => {
                if !self.allow_unsigned {
                    check.problem(
                        "tsig",
                        "a feed needs a TSIG key (the zone decides what your customers can \
                         reach); set allow_unsigned: true to transfer without one",
                    );
                }
                None
            }
        };
        let ede = self.ede.unwrap_or(ede::BLOCKED);
        if !ede::LIST_CODES.contains(&ede) {
            check.problem(
                "ede",
                "must be 15 (Blocked), 16 (Censored) or 17 (Filtered)",
            );
        }
        let refresh_min = duration(
            check,
            "refresh_min",
            self.refresh_min.as_ref(),
            Duration::from_secs(30),
        );
        let refresh_max = duration(
            check,
            "refresh_max",
            self.refresh_max.as_ref(),
            Duration::from_secs(86_400),
        );
        if refresh_max < refresh_min {
            check.problem("refresh_max", "must not be below refresh_min");
        }
        let timeout = duration(
            check,
            "timeout",
            self.timeout.as_ref(),
            Duration::from_secs(30),
        );
        let path = state_dir.join("feeds").join(format!("{}.rpz", self.name));
        let list = format!("feed:{}", self.name);
        let spec = ListSpec {
            name: list.clone(),
            path: path.clone(),
            format: Some(Format::Rpz),
            kind: ListKind::Block,
            action: self.action.unwrap_or(default_action),
            match_mode: MatchMode::Exact,
            category: self.category.unwrap_or_else(|| "fraud".into()),
            ede,
            trusted: false,
            // rpz-ip triggers need no switch; that is for plain lists.
            ips: false,
            guard: guard.clone(),
        };
        let feed = Feed {
            name: self.name,
            zone: zone?,
            primaries,
            tsig,
            list,
            path,
            refresh_min,
            refresh_max,
            after_expire: self.after_expire,
            timeout,
        };
        Some((feed, spec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate(yaml: &str) -> Result<Feed, Vec<String>> {
        let raw: RawFeed = serde_saphyr::from_str(yaml).expect("yaml");
        let mut check = Check::new(Path::new("/etc/fraudwall"));
        let out = check.section("feeds[0]", |c| {
            raw.validate(Path::new("/state"), Action::Sinkhole, &Guard::builtin(), c)
        });
        if check.is_clean() {
            Ok(out.expect("clean check gives a feed").0)
        } else {
            Err(check
                .into_problems()
                .into_iter()
                .map(|p| p.to_string())
                .collect())
        }
    }

    #[test]
    fn a_good_feed() {
        let f = validate(
            "name: afc\nzone: RPZ.Fraud.Example\nprimaries: ['127.0.0.1:5300', '::1']\n\
             tsig: { name: k, algorithm: hmac-sha256, secret: 'c2VjcmV0' }\n",
        )
        .unwrap();
        assert_eq!(f.zone.to_string(), "rpz.fraud.example.");
        assert_eq!(f.primaries[1], "[::1]:53".parse().unwrap());
        assert_eq!(f.tsig.unwrap().secret, b"secret");
        assert_eq!(f.path, Path::new("/state/feeds/afc.rpz"));
        assert_eq!(f.list, "feed:afc");
    }

    #[test]
    fn every_bad_value_is_named() {
        let e = validate(
            "name: 'a b'\nzone: z\nprimaries: ['nowhere']\n\
             tsig: { name: k, algorithm: hmac-md5, secret: '!!' }\n",
        )
        .unwrap_err();
        let all = e.join("\n");
        for key in [
            "feeds[0].name",
            "feeds[0].primaries",
            "feeds[0].tsig.algorithm",
            "feeds[0].tsig.secret",
        ] {
            assert!(all.contains(key), "{key} missing in {all}");
        }
        let e = validate("name: a\nzone: z\nprimaries: ['127.0.0.1']\n").unwrap_err();
        assert!(
            e[0].contains("feeds[0].tsig: a feed needs a TSIG key"),
            "{e:?}"
        );
        assert!(
            validate("name: a\nzone: z\nprimaries: ['127.0.0.1']\nallow_unsigned: true\n").is_ok()
        );
    }

    #[test]
    fn key_files_as_tsig_keygen_writes_them() {
        let bind = "key \"k\" {\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0\";\n};\n";
        assert_eq!(secret_from_file(bind), "c2VjcmV0");
        let knot = "key:\n  - id: k\n    algorithm: hmac-sha256\n    secret: c2VjcmV0\n";
        assert_eq!(secret_from_file(knot), "c2VjcmV0");
        assert_eq!(secret_from_file("c2VjcmV0\n"), "c2VjcmV0");
    }
}
