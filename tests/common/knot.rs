//! Knot DNS (`knotd`, from Debian) as the primary of an RPZ feed, on a free loopback port with
//! its own directory: the RPZ zone (transfers signed with the test key, or unsigned for a
//! reference Unbound, which has no TSIG; a request signed with another secret is refused), IXFR from zone-file differences
//! (`zonefile-load: difference`), NOTIFY to an address when asked, and a zone `test.` whose
//! wildcard answers `A 198.18.0.9` (what names that are not blocked resolve to when fraudwall
//! forwards to it). Nothing outbound but the NOTIFYs. Killed on drop.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use super::fraudwall::spawn_owned;
use super::unbound::free_port;

/// The RPZ zone every feed test transfers.
pub const ZONE: &str = "rpz.fraud.test";
/// The TSIG key both sides share (base64).
pub const SECRET: &str = "ZnJhdWR3YWxsLWZlZWQtdGVzdHMtc2hhcmVkLXNlY3JldCE=";
/// Another key: what a fraudwall with the wrong secret has.
pub const WRONG_SECRET: &str = "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZyEhIQ==";
/// What names outside the feed resolve to (Knot's `*.test.` wildcard).
pub const PASS_ADDR: &str = "198.18.0.9";

/// Whether knotd and knotc are installed.
pub fn available() -> bool {
    ["knotd", "knotc"].iter().all(|b| {
        Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

pub struct Knot {
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// Where NOTIFYs go (`None`: no NOTIFY).
    notify: Option<SocketAddr>,
    child: Option<Child>,
}

/// An RPZ zone file: `serial`, SOA `refresh`/`retry` seconds, and its records (owner relative
/// to the zone, the rest of the line).
pub fn rpz_zone(serial: u32, refresh: u32, records: impl IntoIterator<Item = String>) -> String {
    let mut z = format!(
        "$ORIGIN {ZONE}.\n$TTL 60\n@ SOA localhost. hostmaster.{ZONE}. {serial} {refresh} {refresh} 86400 60\n\
         @ NS localhost.\n"
    );
    for r in records {
        z.push_str(&r);
        z.push('\n');
    }
    z
}

/// `n` policy records `{prefix}{i}.bad.test CNAME .` (NXDOMAIN), i from `from`.
pub fn nxdomain_records(prefix: &str, from: usize, n: usize) -> Vec<String> {
    (from..from + n)
        .map(|i| format!("{prefix}{i}.bad.test CNAME ."))
        .collect()
}

impl Knot {
    /// Starts knotd serving `zone_text` as the RPZ zone; NOTIFYs go to `notify` if given.
    pub fn start(zone_text: &str, notify: Option<SocketAddr>) -> Knot {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut k = Knot {
            dir,
            port: free_port(),
            notify,
            child: None,
        };
        k.write_zone(zone_text);
        std::fs::write(
            k.dir.path().join("test.zone"),
            "$ORIGIN test.\n$TTL 60\n@ SOA ns.test. hostmaster.test. 1 3600 600 86400 60\n\
             @ NS ns.test.\nns A 127.0.0.1\n* A 198.18.0.9\n",
        )
        .unwrap();
        k.write_conf(SECRET);
        k.run();
        k
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.port)
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("knot.conf")
    }

    /// Writes knot.conf with `secret` as the key fraudwall must use.
    pub fn write_conf(&self, secret: &str) {
        let d = self.dir.path().display();
        let (remote, notify) = match self.notify {
            Some(a) => (
                format!(
                    "remote:\n  - id: fraudwall\n    address: {}@{}\n",
                    a.ip(),
                    a.port()
                ),
                "    notify: fraudwall\n",
            ),
            None => (String::new(), ""),
        };
        let conf = format!(
            "server:\n    rundir: {d}\n    listen: 127.0.0.1@{port}\n    udp-workers: 1\n    tcp-workers: 2\n    background-workers: 1\n\
             log:\n  - target: {d}/knot.log\n    any: info\n\
             database:\n    storage: {d}/db\n\
             key:\n  - id: fraudwall-key\n    algorithm: hmac-sha256\n    secret: {secret}\n\
             {remote}\
             acl:\n  - id: fraudwall\n    address: 127.0.0.1\n    key: fraudwall-key\n    action: transfer\n\
             \x20 - id: unsigned\n    address: 127.0.0.1\n    action: transfer\n\
             template:\n  - id: default\n    storage: {d}\n    zonefile-sync: -1\n    zonefile-load: difference\n    journal-content: all\n    semantic-checks: off\n\
             zone:\n  - domain: {ZONE}\n    file: rpz.zone\n    acl: [fraudwall, unsigned]\n{notify}\
             \x20 - domain: test\n    file: test.zone\n",
            port = self.port
        );
        std::fs::write(self.conf(), conf).unwrap();
    }

    /// Writes the RPZ zone file (then [`Knot::reload`] to serve it).
    pub fn write_zone(&self, text: &str) {
        std::fs::write(self.dir.path().join("rpz.zone"), text).unwrap();
    }

    fn run(&mut self) {
        std::fs::create_dir_all(self.dir.path().join("db")).unwrap();
        let mut cmd = Command::new("knotd");
        cmd.arg("-c")
            .arg(self.conf())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.child = Some(spawn_owned(cmd).expect("spawn knotd"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.serial(ZONE).is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("knotd did not come up:\n{}", self.log());
    }

    /// Kills knotd.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills knotd, forgets its journal (so a zone file with a lower serial is served as is),
    /// and starts it again on the same port.
    pub fn restart_fresh(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(self.dir.path().join("db"));
        self.run();
    }

    /// Reloads the zone files (`knotc zone-reload`) and waits until the RPZ zone's serial is
    /// `serial`.
    pub fn reload(&self, serial: u32) {
        let out = Command::new("knotc")
            .arg("-c")
            .arg(self.conf())
            .args(["zone-reload", ZONE])
            .output()
            .expect("knotc");
        assert!(
            out.status.success(),
            "knotc zone-reload: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.serial(ZONE) == Some(serial) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("knotd did not load serial {serial}:\n{}", self.log());
    }

    /// The serial knotd serves for `zone` (over UDP, from 127.0.0.1).
    pub fn serial(&self, zone: &str) -> Option<u32> {
        let out = Command::new("kdig")
            .arg("@127.0.0.1")
            .args([
                "-p",
                &self.port.to_string(),
                zone,
                "SOA",
                "+short",
                "+time=1",
                "+retry=0",
            ])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace().nth(2)?.parse().ok()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("knot.log")).unwrap_or_default()
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Knot {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A TCP relay to `target` that passes at most `limit` bytes of each answer (then closes both
/// sides): a primary that dies in the middle of a transfer. `usize::MAX`: everything.
pub struct CuttingProxy {
    pub addr: SocketAddr,
    limit: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl CuttingProxy {
    pub fn start(target: SocketAddr) -> CuttingProxy {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let limit = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(usize::MAX));
        let lim = limit.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { continue };
                let Ok(mut up) = std::net::TcpStream::connect(target) else {
                    continue;
                };
                let limit = lim.load(Ordering::SeqCst);
                let (mut c2, mut u2) = (client.try_clone().unwrap(), up.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c2, &mut u2);
                });
                std::thread::spawn(move || {
                    let mut sent = 0usize;
                    let mut buf = [0u8; 16384];
                    while let Ok(n) = up.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        let n2 = n.min(limit - sent);
                        if client.write_all(&buf[..n2]).is_err() {
                            break;
                        }
                        sent += n2;
                        if sent >= limit {
                            break;
                        }
                    }
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    let _ = up.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        CuttingProxy { addr, limit }
    }

    /// Answers are cut after `bytes` from now on (`usize::MAX`: passed whole).
    pub fn cut_after(&self, bytes: usize) {
        self.limit.store(bytes, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Unbound with `rpz:` transferring [`ZONE`] from `knot` (no TSIG: Unbound has none); names
/// under `test.` (not its built-in NXDOMAIN zone here) asked from Knot as a stub zone, as
/// fraudwall forwards them; nothing outbound.
pub struct RpzUnbound {
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    child: Child,
}

impl RpzUnbound {
    pub fn start(knot: &Knot) -> RpzUnbound {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let d = dir.path().display();
        let conf = format!(
            "server:\n  interface: 127.0.0.1@{port}\n  port: {port}\n  do-daemonize: no\n  use-syslog: no\n\
             \x20 logfile: \"{d}/unbound.log\"\n  verbosity: 1\n  chroot: \"\"\n  username: \"\"\n\
             \x20 directory: \"{d}\"\n  pidfile: \"{d}/unbound.pid\"\n\
             \x20 module-config: \"respip iterator\"\n  do-not-query-localhost: no\n\
             \x20 access-control: 127.0.0.0/8 allow\n  prefetch: no\n\
             \x20 local-zone: \"test.\" nodefault\n\
             stub-zone:\n  name: \"test.\"\n  stub-addr: 127.0.0.1@{kport}\n\
             rpz:\n  name: {ZONE}\n  primary: 127.0.0.1@{kport}\n  zonefile: \"{d}/rpz.zone\"\n  rpz-log: yes\n\
             remote-control:\n  control-enable: no\n",
            kport = knot.port
        );
        let path = dir.path().join("unbound.conf");
        std::fs::write(&path, conf).unwrap();
        let mut cmd = Command::new("unbound");
        cmd.arg("-d")
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = spawn_owned(cmd).expect("spawn unbound");
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        RpzUnbound { dir, addr, child }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("unbound.log")).unwrap_or_default()
    }
}

impl Drop for RpzUnbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
