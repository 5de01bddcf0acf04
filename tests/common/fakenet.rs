//! The fake Internet: a DNS hierarchy of NSD servers on 127.53.x.y:53 (see tests/fakenet/README.md).
//!
//! `Fakenet::shared()` brings it up once per test process (fresh keys) with
//! `tests/fakenet/fakenet.sh up <target>/fakenet` and leaves it running after the process exits, so
//! the state dir can be inspected. The addresses are fixed, so only one fakenet can run per
//! machine: test processes serialise on an exclusive lock (`/tmp/fakenet-harness.lock`, held for
//! the life of the process) and take over the addresses from any previous fakenet.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Server addresses of the hierarchy (all port 53).
pub mod addrs {
    use std::net::Ipv4Addr;
    pub const ROOT_A: Ipv4Addr = Ipv4Addr::new(127, 53, 0, 1);
    pub const ROOT_B: Ipv4Addr = Ipv4Addr::new(127, 53, 0, 2);
    pub const COM_A: Ipv4Addr = Ipv4Addr::new(127, 53, 1, 1);
    pub const COM_B: Ipv4Addr = Ipv4Addr::new(127, 53, 1, 2);
    pub const NET: Ipv4Addr = Ipv4Addr::new(127, 53, 2, 1);
    pub const ORG: Ipv4Addr = Ipv4Addr::new(127, 53, 3, 1);
    pub const TEST: Ipv4Addr = Ipv4Addr::new(127, 53, 4, 1);
    pub const EXAMPLE_COM_1: Ipv4Addr = Ipv4Addr::new(127, 53, 10, 1);
    pub const EXAMPLE_COM_2: Ipv4Addr = Ipv4Addr::new(127, 53, 10, 2);
    /// bogus.com, badds.com, expired.com and future.com
    pub const BOGUS: Ipv4Addr = Ipv4Addr::new(127, 53, 11, 1);
    pub const EXAMPLE_NET: Ipv4Addr = Ipv4Addr::new(127, 53, 20, 1);
    pub const CDNPROV: Ipv4Addr = Ipv4Addr::new(127, 53, 21, 1);
    pub const SCAM_SHOP: Ipv4Addr = Ipv4Addr::new(127, 53, 22, 1);
    /// ns1.lame.net: an NSD serving no zone (REFUSED)
    pub const LAME_NS1: Ipv4Addr = Ipv4Addr::new(127, 53, 23, 1);
    /// ns2.lame.net: serves lame.net
    pub const LAME_NS2: Ipv4Addr = Ipv4Addr::new(127, 53, 23, 2);
    pub const INSECURE_ORG: Ipv4Addr = Ipv4Addr::new(127, 53, 30, 1);
    /// ns.example.net, serves oob.org
    pub const OOB_ORG: Ipv4Addr = Ipv4Addr::new(127, 53, 30, 2);
    pub const FRAUDWALL_DEMO: Ipv4Addr = Ipv4Addr::new(127, 53, 40, 1);
    pub const LOAD: Ipv4Addr = Ipv4Addr::new(127, 53, 41, 1);
    /// ns1/ns2.dead.net: nothing listens
    pub const DEAD_1: Ipv4Addr = Ipv4Addr::new(127, 53, 99, 1);
    pub const DEAD_2: Ipv4Addr = Ipv4Addr::new(127, 53, 99, 2);
    /// ns1.negttl.net: negttl.net (SOA TTL 120 below its MINIMUM 900)
    pub const NEGTTL: Ipv4Addr = Ipv4Addr::new(127, 53, 50, 1);
    /// ns1.optout.net: optout.net (NSEC3 opt-out)
    pub const OPTOUT: Ipv4Addr = Ipv4Addr::new(127, 53, 50, 2);
    /// ns1.unsigned.optout.net: unsigned.optout.net (insecure delegation in the opt-out zone)
    pub const OPTOUT_CHILD: Ipv4Addr = Ipv4Addr::new(127, 53, 50, 3);
    /// ed25519.net (algorithm 15) and rsasha256.net (algorithm 8)
    pub const ALGORITHMS: Ipv4Addr = Ipv4Addr::new(127, 53, 50, 4);
    /// ns1.flaky.net / ns1.steady.net: a relay to FLAKY_NS2 that drops flaky.net queries
    pub const FLAKY_NS1: Ipv4Addr = Ipv4Addr::new(127, 53, 51, 1);
    /// ns1.rawsoa.net: a relay to FLAKY_NS2 that gives negative answers the SOA's own TTL (3600)
    pub const RAWSOA_RELAY: Ipv4Addr = Ipv4Addr::new(127, 53, 51, 3);
    /// ns2.flaky.net: serves flaky.net, steady.net and rawsoa.net
    pub const FLAKY_NS2: Ipv4Addr = Ipv4Addr::new(127, 53, 51, 2);
    /// ns1/ns2.silent.net: read every query, never answer
    pub const SILENT_1: Ipv4Addr = Ipv4Addr::new(127, 53, 98, 1);
    pub const SILENT_2: Ipv4Addr = Ipv4Addr::new(127, 53, 98, 2);
    /// ns1.v6only.net (AAAA only): an NSD on [::1]:53 serving v6only.net
    pub const V6ONLY: std::net::Ipv6Addr = std::net::Ipv6Addr::LOCALHOST;
}

pub struct Fakenet {
    /// `<target>/fakenet` (or `$FAKENET_STATE_DIR`)
    pub state_dir: PathBuf,
    /// zone-format root hints (`. NS a.root-servers.test.` + loopback glue)
    pub hints: PathBuf,
    /// the root KSK as a DS record (Unbound `trust-anchor-file`)
    pub trust_anchor: PathBuf,
    /// the same KSK as a DNSKEY record
    pub trust_anchor_dnskey: PathBuf,
    /// dnsperf query file (`name A` lines) for the load bench
    pub queries_benign: PathBuf,
    /// `STATEDIR/env` as a map (ROOT_HINTS, TRUST_ANCHOR, NS_*, SERVERS, ...)
    pub env: BTreeMap<String, String>,
    _lock: File,
}

impl Fakenet {
    /// The fakenet of this test process, brought up on first use. Panics (with the script's
    /// output) if it cannot be brought up.
    pub fn shared() -> &'static Fakenet {
        static SHARED: OnceLock<Fakenet> = OnceLock::new();
        SHARED.get_or_init(|| Fakenet::up().unwrap_or_else(|e| panic!("fakenet: {e}")))
    }

    /// Repository's `tests/fakenet` directory (scripts, zone templates).
    pub fn script_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fakenet")
    }

    /// Default state dir: `$FAKENET_STATE_DIR`, else `<target dir>/fakenet`.
    pub fn default_state_dir() -> PathBuf {
        if let Some(d) = std::env::var_os("FAKENET_STATE_DIR") {
            return PathBuf::from(d);
        }
        // test binaries live in <target>/<profile>/deps/
        if let Ok(exe) = std::env::current_exe()
            && let Some(target) = exe.ancestors().nth(3)
            && target.join("CACHEDIR.TAG").exists()
        {
            return target.join("fakenet");
        }
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fakenet")
    }

    fn up() -> Result<Fakenet, String> {
        let lock_path = "/tmp/fakenet-harness.lock";
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(lock_path)
            .map_err(|e| format!("cannot open {lock_path}: {e}"))?;
        if lock.try_lock().is_err() {
            eprintln!(
                "fakenet: waiting for another test process that uses the fakenet ({lock_path})"
            );
            lock.lock()
                .map_err(|e| format!("cannot lock {lock_path}: {e}"))?;
        }

        let state_dir = Self::default_state_dir();
        std::fs::create_dir_all(&state_dir)
            .map_err(|e| format!("cannot create {}: {e}", state_dir.display()))?;
        let script = Self::script_dir().join("fakenet.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg("up")
            .arg(&state_dir)
            .env("FAKENET_TAKEOVER", "1")
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if !out.status.success() {
            return Err(format!(
                "`{} up {}` failed ({}); stdout:\n{}\nstderr:\n{}",
                script.display(),
                state_dir.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let env_text = std::fs::read_to_string(state_dir.join("env"))
            .map_err(|e| format!("cannot read {}/env: {e}", state_dir.display()))?;
        let env: BTreeMap<String, String> = env_text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
            .collect();
        let path = |k: &str| -> Result<PathBuf, String> {
            env.get(k)
                .map(PathBuf::from)
                .ok_or_else(|| format!("{k} missing from {}/env", state_dir.display()))
        };
        Ok(Fakenet {
            hints: path("ROOT_HINTS")?,
            trust_anchor: path("TRUST_ANCHOR")?,
            trust_anchor_dnskey: path("TRUST_ANCHOR_DNSKEY")?,
            queries_benign: path("QUERIES_BENIGN")?,
            env,
            state_dir,
            _lock: lock,
        })
    }

    /// All IPv4 NSD server addresses (port 53), from `env`'s SERVERS (which also has `::1`).
    pub fn servers(&self) -> Vec<Ipv4Addr> {
        self.env
            .get("SERVERS")
            .map(|s| {
                s.split_whitespace()
                    .filter_map(|a| a.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `SocketAddr` of a server on port 53.
    pub fn ns(addr: Ipv4Addr) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(addr), 53)
    }

    /// The root KSK as one line of zone text (`. 3600 IN DNSKEY 257 3 13 ...`).
    pub fn root_dnskey_text(&self) -> String {
        std::fs::read_to_string(&self.trust_anchor_dnskey)
            .expect("read root.dnskey")
            .trim()
            .to_string()
    }

    /// The root KSK's DS as one line of zone text (`. 3600 IN DS tag 13 2 hex`).
    pub fn root_ds_text(&self) -> String {
        std::fs::read_to_string(&self.trust_anchor)
            .expect("read root.anchor")
            .trim()
            .to_string()
    }
}
