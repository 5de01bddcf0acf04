//! A reference Unbound resolving through the fakenet (`tests/fakenet/unbound.sh`): fake root
//! hints and fake trust anchor only. Listens on 127.0.0.1 on a random free port; killed on Drop.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::dig::{DigResult, dig};
use super::fakenet::Fakenet;

pub struct Unbound {
    port: u16,
    state_dir: PathBuf,
    /// `STATEDIR/unbound-PORT`: unbound.conf, unbound.log, unbound.pid
    pub dir: PathBuf,
}

impl Unbound {
    /// Starts Unbound; `extra_conf` is configuration text included inside its `server:` clause
    /// (e.g. `local-zone: "scam-shop.net." always_nxdomain` lines). Panics if it cannot start.
    pub fn start(fakenet: &Fakenet, extra_conf: Option<&str>) -> Unbound {
        Self::start_inner(fakenet, extra_conf.map(Extra::Text))
    }

    /// Like `start`, with the extra configuration in a file (included inside `server:`).
    pub fn start_with_conf_file(fakenet: &Fakenet, extra_conf_file: Option<&Path>) -> Unbound {
        Self::start_inner(fakenet, extra_conf_file.map(Extra::File))
    }

    fn start_inner(fakenet: &Fakenet, extra: Option<Extra<'_>>) -> Unbound {
        let script = Fakenet::script_dir().join("unbound.sh");
        let mut last_err = String::new();
        for _ in 0..10 {
            let port = free_port();
            let extra_file = match extra {
                None => None,
                Some(Extra::File(p)) => Some(p.to_path_buf()),
                Some(Extra::Text(t)) => {
                    let p = fakenet.state_dir.join(format!("unbound-extra-{port}.conf"));
                    std::fs::write(&p, t).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
                    Some(p)
                }
            };
            let mut cmd = Command::new("bash");
            cmd.arg(&script)
                .arg("start")
                .arg(&fakenet.state_dir)
                .arg(port.to_string());
            if let Some(f) = &extra_file {
                cmd.arg(f);
            }
            let out = cmd
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
            if out.status.success() {
                return Unbound {
                    port,
                    state_dir: fakenet.state_dir.clone(),
                    dir: fakenet.state_dir.join(format!("unbound-{port}")),
                };
            }
            last_err = format!(
                "`unbound.sh start {} {port}` failed ({}):\n{}{}",
                fakenet.state_dir.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            // a config error will not go away with another port
            if last_err.contains("checkconf") {
                break;
            }
        }
        panic!("unbound: {last_err}");
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `dig @this-unbound args...` (see `common::dig`).
    pub fn dig(&self, args: &[&str]) -> DigResult {
        dig(self.addr(), args)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("unbound.log")).unwrap_or_default()
    }
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(Fakenet::script_dir().join("unbound.sh"))
            .arg("stop")
            .arg(&self.state_dir)
            .arg(self.port.to_string())
            .output();
    }
}

#[derive(Clone, Copy)]
enum Extra<'a> {
    Text(&'a str),
    File(&'a Path),
}

/// A random port in 20000..32767 that is free for both UDP and TCP on 127.0.0.1 right now and
/// was not handed out before by this process.
///
/// Below the kernel's ephemeral range (32768..60999 by default) on purpose: a server that
/// listens with SO_REUSEPORT on an ephemeral port can have that port handed to a client that
/// also sets SO_REUSEPORT (dig does) as its source port, and such a client, connected to the
/// server's address from the server's own port, receives its own query back.
pub fn free_port() -> u16 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ (u64::from(std::process::id()) << 32)
            ^ COUNTER
                .fetch_add(1, Ordering::Relaxed)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        // splitmix64 finaliser
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let port = 20000 + (z % 12768) as u16;
        let a = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        if UdpSocket::bind(a).is_ok()
            && TcpListener::bind(a).is_ok()
            && GIVEN.lock().unwrap_or_else(|e| e.into_inner()).insert(port)
        {
            return port;
        }
    }
}
