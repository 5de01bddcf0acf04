//! `mode: forward` over TCP and over TLS (RFC 7858), against a real Unbound as the upstream:
//! Unbound serves `www.fw.test` from `local-data` (nothing else, and never asks anyone), plain
//! DNS over TCP only on one port and DNS over TLS on another, with a certificate from a test CA
//! made here with the `openssl` CLI. Every port it leaves free (its UDP ports, port 53 of its
//! address) is held by a trap that counts what arrives, so a test sees where fraudwall's queries
//! went, not only that an answer came.

mod common;

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use common::{Fraudwall, dig, fraudwall::spawn_owned, unbound::free_port};

/// The name on the upstream's certificate.
const TLS_NAME: &str = "dot.fw.test";

/// A test CA and a server certificate for [`TLS_NAME`] signed by it (PEM files), made once per
/// test process.
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(d)
                .output()
                .expect("cannot run openssl (apt-get install openssl)");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2"],
                &["-subj", "/CN=fraudwall test CA"],
                &["-addext", "basicConstraints=critical,CA:TRUE"],
                &["-addext", "keyUsage=critical,keyCertSign"],
            ]
            .concat(),
        );
        openssl(
            &[
                &["req"][..],
                &ec,
                &["-keyout", "server.key", "-out", "server.csr"],
                &["-subj", &format!("/CN={TLS_NAME}")],
            ]
            .concat(),
        );
        std::fs::write(
            d.join("ext"),
            format!(
                "subjectAltName=DNS:{TLS_NAME}\nbasicConstraints=CA:FALSE\n\
                 extendedKeyUsage=serverAuth\n"
            ),
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext",
        ]);
        Pki {
            ca: d.join("ca.pem"),
            cert: d.join("server.pem"),
            key: d.join("server.key"),
            _dir: dir,
        }
    })
}

/// A loopback address of its own for each upstream (127.16.0.0/16, away from the fakenet's
/// 127.53.0.0/16), so that its port 53 can be trapped too.
fn own_address() -> Ipv4Addr {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = (std::process::id() % 250) * 256 + NEXT.fetch_add(1, Ordering::Relaxed) % 256;
    Ipv4Addr::new(127, 16, (n >> 8) as u8 + 1, n as u8)
}

/// Counts the datagrams and connections that reach sockets nobody should use.
struct Traps {
    hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Traps {
    fn new(udp: &[SocketAddr], tcp: &[SocketAddr]) -> Traps {
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for &a in udp {
            let s = UdpSocket::bind(a).unwrap_or_else(|e| panic!("trap udp {a}: {e}"));
            s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
            let (hits, stop) = (hits.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while !stop.load(Ordering::SeqCst) {
                    if s.recv_from(&mut buf).is_ok() {
                        hits.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }));
        }
        for &a in tcp {
            let l = TcpListener::bind(a).unwrap_or_else(|e| panic!("trap tcp {a}: {e}"));
            l.set_nonblocking(true).unwrap();
            let (hits, stop) = (hits.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    if l.accept().is_ok() {
                        hits.fetch_add(1, Ordering::SeqCst);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }));
        }
        Traps {
            hits,
            stop,
            threads,
        }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Traps {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Unbound as a forwarding target: TCP-only plain DNS on `tcp`, DNS over TLS on `tls`, both on
/// an address of its own; UDP off, so its UDP ports and its port 53 are trapped. Killed on drop.
struct Upstream {
    child: Child,
    dir: tempfile::TempDir,
    tcp: SocketAddr,
    tls: SocketAddr,
    traps: Traps,
    /// Queries Unbound counted at start (the harness's own check).
    base_queries: u64,
}

impl Upstream {
    fn start() -> Upstream {
        let pki = pki();
        let ip = own_address();
        let at = |port| SocketAddr::new(IpAddr::V4(ip), port);
        let (tcp, tls) = (at(free_port()), at(free_port()));
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let conf = dir.path().join("unbound.conf");
        std::fs::write(
            &conf,
            format!(
                "server:\n\
                 \x20 username: \"\"\n  chroot: \"\"\n  directory: \"{d}\"\n\
                 \x20 pidfile: \"{d}/unbound.pid\"\n  logfile: \"{d}/unbound.log\"\n\
                 \x20 use-syslog: no\n  verbosity: 1\n  num-threads: 1\n\
                 \x20 interface: {ip}@{tcp_port}\n  interface: {ip}@{tls_port}\n\
                 \x20 tls-port: {tls_port}\n\
                 \x20 tls-service-key: \"{key}\"\n  tls-service-pem: \"{cert}\"\n\
                 \x20 do-udp: no\n  do-ip6: no\n  access-control: 127.0.0.0/8 allow\n\
                 \x20 module-config: \"iterator\"\n\
                 \x20 # Answers only from local data; asks no one.\n\
                 \x20 local-zone: \".\" static\n\
                 \x20 local-data: \"www.fw.test. 300 IN A 198.18.9.53\"\n\
                 \x20 do-not-query-address: 0.0.0.0/0\n  do-not-query-address: ::/0\n\
                 \x20 extended-statistics: yes\n\
                 remote-control:\n  control-enable: yes\n\
                 \x20 control-interface: \"{d}/control.sock\"\n",
                tcp_port = tcp.port(),
                tls_port = tls.port(),
                key = pki.key.display(),
                cert = pki.cert.display(),
            ),
        )
        .unwrap();
        let mut cmd = Command::new("unbound");
        cmd.arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = spawn_owned(cmd).expect("spawn unbound (apt-get install unbound)");
        let traps = Traps::new(&[tcp, tls, at(53)], &[at(53)]);
        let mut up = Upstream {
            child,
            dir,
            tcp,
            tls,
            traps,
            base_queries: 0,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while up.control(&["status"]).is_none() {
            if let Ok(Some(status)) = up.child.try_wait() {
                panic!("unbound exited ({status}):\n{}", up.log());
            }
            assert!(Instant::now() < deadline, "unbound not up:\n{}", up.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        let direct = dig(up.tcp, &["+tcp", "www.fw.test", "A"]);
        assert_eq!(direct.answer_rdata("A"), ["198.18.9.53"], "{}", direct.raw);
        up.base_queries = up.stat("total.num.queries");
        up
    }

    /// Queries Unbound answered for fraudwall (those of [`Upstream::start`]'s check left out).
    fn queries(&self) -> u64 {
        self.stat("total.num.queries") - self.base_queries
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("unbound.conf")
    }

    /// `unbound-control ARGS`' output, `None` when it fails.
    fn control(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("unbound-control")
            .arg("-c")
            .arg(self.conf())
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// One counter of `unbound-control stats_noreset` (`total.num.queries`, `num.query.tls`,
    /// ...), 0 when absent.
    fn stat(&self, key: &str) -> u64 {
        let text = self.control(&["stats_noreset"]).expect("unbound stats");
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
            .unwrap_or(0)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("unbound.log")).unwrap_or_default()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fraudwall forwarding to one upstream; `trust_ca`: the process trusts the test CA (as
/// OpenSSL does, through `SSL_CERT_FILE`), else only the system's CAs.
fn start(address: SocketAddr, forwarder: &str, trust_ca: bool) -> Fraudwall {
    let cfg = format!(
        "listen: [\"127.0.0.1:0\"]\n\
         resolver:\n  mode: forward\n  timeout_ms: 3000\n\
         \x20 forwarders:\n    - address: \"{address}\"\n{forwarder}\
         blocklists:\n  dir: lists\n"
    );
    let files = [("lists/fraud.txt", "fraudwall-demo.test\n")];
    let ca = pki().ca.display().to_string();
    if trust_ca {
        Fraudwall::start_env(&cfg, &files, &[("SSL_CERT_FILE", &ca)])
    } else {
        Fraudwall::start(&cfg, &files)
    }
}

fn assert_answered(fw: &Fraudwall, up: &Upstream) {
    let r = dig(fw.addr, &["www.fw.test", "A"]);
    assert_eq!(r.status, "NOERROR", "{}\n{}", r.raw, fw.log());
    assert_eq!(r.answer_rdata("A"), ["198.18.9.53"], "{}", r.raw);
    assert!(!r.ad(), "forwarded answers are not validated");
    assert_eq!(up.traps.hits(), 0, "nothing reached a trapped port");
}

#[test]
fn forwarding_over_tcp_uses_tcp_only() {
    let up = Upstream::start();
    let fw = start(up.tcp, "      protocol: tcp\n", false);
    assert_answered(&fw, &up);
    assert!(up.queries() >= 1, "{}", up.log());
    assert_eq!(up.stat("num.query.tls"), 0);
    assert_eq!(up.stat("num.query.tcp"), up.stat("total.num.queries"));
}

#[test]
fn forwarding_over_tls_with_the_right_name_answers() {
    let up = Upstream::start();
    let fw = start(
        up.tls,
        &format!("      protocol: tls\n      tls_name: {TLS_NAME}\n"),
        true,
    );
    assert_answered(&fw, &up);
    let tls = up.stat("num.query.tls");
    assert!(tls >= 1, "{}", up.log());
    assert_eq!(tls, up.queries(), "every query over TLS");
}

/// The certificate does not name the server asked for: SERVFAIL, and no query leaves in the
/// clear instead (neither on the TLS port's UDP, nor on port 53, nor anywhere Unbound counts).
#[test]
fn forwarding_over_tls_to_a_mismatched_name_fails_closed() {
    let up = Upstream::start();
    let fw = start(
        up.tls,
        "      protocol: tls\n      tls_name: other.fw.test\n",
        true,
    );
    let r = dig(fw.addr, &["www.fw.test", "A", "+time=10"]);
    assert_eq!(r.status, "SERVFAIL", "{}\n{}", r.raw, fw.log());
    assert!(r.answer.is_empty());
    assert_eq!(up.traps.hits(), 0, "no plain DNS fallback");
    assert_eq!(up.queries(), 0, "no query reached unbound");
}

/// A certificate from a CA the process does not trust (no `SSL_CERT_FILE`: the system's CAs
/// only) fails closed the same way.
#[test]
fn forwarding_over_tls_to_an_untrusted_certificate_fails_closed() {
    let up = Upstream::start();
    let fw = start(
        up.tls,
        &format!("      protocol: tls\n      tls_name: {TLS_NAME}\n"),
        false,
    );
    let r = dig(fw.addr, &["www.fw.test", "A", "+time=10"]);
    assert_eq!(r.status, "SERVFAIL", "{}\n{}", r.raw, fw.log());
    assert_eq!(up.traps.hits(), 0, "no plain DNS fallback");
    assert_eq!(up.queries(), 0, "no query reached unbound");
}
