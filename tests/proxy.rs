//! The PROXY protocol v2 (`proxy_protocol.from`, src/server/proxy.rs) with the real binary:
//! the real dnsdist (`docker/dnsdist.conf`, `useProxyProtocol`) in front over UDP and TCP,
//! and headers built here by hand over UDP, TCP and DoT for what dnsdist never sends: an
//! address outside the access list, headers from an untrusted source, no header from a trusted
//! one, bad headers, an IPv6 client.
//!
//! The instances trust 127.0.0.1 (the hand-built headers) or 127.0.0.53 (dnsdist's source);
//! untrusted clients send from 127.0.0.2. Blocked names are answered locally (the upstream is
//! a socket that never answers), so no fakenet is needed.

mod common;

use std::{
    io::{ErrorKind, Read, Write},
    net::{IpAddr, SocketAddr, TcpStream, UdpSocket},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use common::{Fraudwall, dig, unbound::free_port};

const SINK4: &str = "198.18.255.1";
const SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The trusted source of the hand-built headers.
const TRUSTED: &str = "127.0.0.1";
/// A source not in `proxy_protocol.from`.
const UNTRUSTED: &str = "127.0.0.2";
/// dnsdist's source towards the backend (DNSDIST_BACKEND_SOURCE).
const DNSDIST_SOURCE: &str = "127.0.0.53";
const TLS_NAME: &str = "dns.fraudwall.test";

/// An instance on 127.0.0.1 (UDP, TCP and DoT) trusting `from` for PROXY headers, letting in
/// loopback and 2001:db8::/32, with `blocked.test` and `fraudwall-demo.test` listed.
fn start(from: &str, upstream: &UdpSocket) -> Fraudwall {
    let pki = pki();
    let cfg = format!(
        "listen: [\"127.0.0.1:0\"]\n\
         resolver:\n  mode: forward\n  forwarders:\n    - address: \"{}\"\n  dnssec: off\n\
         sinkhole:\n  ipv4: {SINK4}\n\
         access:\n  allow: [127.0.0.0/8, \"2001:db8::/32\"]\n\
         proxy_protocol:\n  from: [\"{from}\"]\n\
         server:\n  tcp_timeout_secs: 1\n\
         tls:\n  cert: {}\n  key: {}\n\
         dot:\n  listen: [\"127.0.0.1:0\"]\n\
         blocklists:\n  dir: lists\n\
         metrics:\n  listen: \"127.0.0.1:0\"\n",
        upstream.local_addr().unwrap(),
        pki.cert.display(),
        pki.key.display(),
    );
    Fraudwall::start(
        &cfg,
        &[("lists/fraud.txt", "blocked.test\nfraudwall-demo.test\n")],
    )
}

/// A socket that takes the upstream queries and never answers them.
fn silent_upstream() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").unwrap()
}

// --- what goes on the wire ---------------------------------------------------------------------

/// A v2 PROXY header for `client`, as dnsdist sends it (`stream`: TCP, else UDP).
fn header(client: SocketAddr, stream: bool) -> Vec<u8> {
    let proto = if stream { 0x01 } else { 0x02 };
    let mut addrs = Vec::new();
    let fam = match client.ip() {
        IpAddr::V4(ip) => {
            addrs.extend_from_slice(&ip.octets());
            addrs.extend_from_slice(&[127, 0, 0, 1]);
            0x10
        }
        IpAddr::V6(ip) => {
            addrs.extend_from_slice(&ip.octets());
            addrs.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
            0x20
        }
    };
    addrs.extend_from_slice(&client.port().to_be_bytes());
    addrs.extend_from_slice(&53u16.to_be_bytes());
    raw_header(0x21, fam | proto, &addrs, addrs.len() as u16)
}

/// Any header: version and command, family and protocol, the bytes after the fixed part and
/// the length it claims for them.
fn raw_header(ver_cmd: u8, fam: u8, body: &[u8], claimed: u16) -> Vec<u8> {
    let mut h = SIGNATURE.to_vec();
    h.push(ver_cmd);
    h.push(fam);
    h.extend_from_slice(&claimed.to_be_bytes());
    h.extend_from_slice(body);
    h
}

/// The header of command LOCAL (dnsdist's health checks): no client.
fn local_header() -> Vec<u8> {
    raw_header(0x20, 0x00, &[], 0)
}

/// A query for `name` A with `id`.
fn query(id: u16, name: &str) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    m
}

fn framed(m: &[u8]) -> Vec<u8> {
    let mut f = (m.len() as u16).to_be_bytes().to_vec();
    f.extend_from_slice(m);
    f
}

fn cat(a: &[u8], b: &[u8]) -> Vec<u8> {
    [a, b].concat()
}

/// (ID, RCODE, first A record) of an answer.
fn summary(m: &[u8]) -> (u16, u8, Option<String>) {
    let id = u16::from_be_bytes([m[0], m[1]]);
    let rcode = m[3] & 0x0f;
    let ancount = u16::from_be_bytes([m[6], m[7]]);
    let mut a = None;
    if ancount > 0 {
        // Question: name, type, class; then the first answer: pointer, type, class, TTL, len.
        let mut i = 12;
        while m[i] != 0 {
            i += 1 + m[i] as usize;
        }
        i += 5;
        if m.len() >= i + 16 && u16::from_be_bytes([m[i + 2], m[i + 3]]) == 1 {
            let ip = &m[i + 12..i + 16];
            a = Some(format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3]));
        }
    }
    (id, rcode, a)
}

// --- clients -----------------------------------------------------------------------------------

fn udp_from(ip: &str) -> UdpSocket {
    let s = UdpSocket::bind((ip, 0)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s
}

/// Sends `bytes` from `sock` and waits up to 3 s for one datagram back.
fn udp_exchange(sock: &UdpSocket, to: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    sock.send_to(bytes, to).unwrap();
    let mut buf = [0u8; 4096];
    match sock.recv_from(&mut buf) {
        Ok((n, _)) => Some(buf[..n].to_vec()),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
        Err(e) => panic!("udp receive: {e}"),
    }
}

/// A TCP connection to `to` from the loopback address `ip`.
fn tcp_from(ip: &str, to: SocketAddr) -> TcpStream {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::new(ip.parse().unwrap(), 0).into())
        .unwrap();
    s.connect_timeout(&to.into(), Duration::from_secs(5))
        .unwrap();
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Writes `bytes` (and, with `close`, ends our side) and reads: `Some(answer)` when one framed
/// answer came, `None` when the server closed the connection without one. Panics if the server
/// held the connection open for 5 s without a word.
fn tcp_exchange(mut s: TcpStream, bytes: &[u8], close: bool) -> Option<Vec<u8>> {
    // The server may already have closed: a failed write is part of the answer.
    let _ = s.write_all(bytes);
    if close {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return None,
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                if got.len() >= 2 && got.len() >= 2 + u16::from_be_bytes([got[0], got[1]]) as usize
                {
                    return Some(got[2..].to_vec());
                }
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return None,
            Err(e) => panic!("the server neither answered nor closed: {e}"),
        }
    }
}

/// Over DoT from `ip`: `prefix` before the TLS handshake, then `q` framed. `Ok(answer)`, or
/// `Err` when the connection was closed (the handshake fails).
fn dot_exchange(ip: &str, to: SocketAddr, prefix: &[u8], q: &[u8]) -> Result<Vec<u8>, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(SocketAddr::new(ip.parse().unwrap(), 0)).unwrap();
        let mut tcp = sock.connect(to).await.map_err(|e| e.to_string())?;
        tcp.write_all(prefix).await.map_err(|e| e.to_string())?;
        let name = rustls_pki_types::ServerName::try_from(TLS_NAME).unwrap();
        let work = async {
            let mut tls = connector()
                .connect(name, tcp)
                .await
                .map_err(|e| format!("handshake: {e}"))?;
            tls.write_all(&framed(q)).await.map_err(|e| e.to_string())?;
            let mut len = [0u8; 2];
            tls.read_exact(&mut len)
                .await
                .map_err(|e| format!("read: {e}"))?;
            let mut m = vec![0u8; u16::from_be_bytes(len) as usize];
            tls.read_exact(&mut m).await.map_err(|e| e.to_string())?;
            Ok(m)
        };
        tokio::time::timeout(Duration::from_secs(10), work)
            .await
            .expect("DoT: neither answered nor closed within 10 s")
    })
}

// --- TLS for DoT -------------------------------------------------------------------------------

struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("cannot run openssl (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test CA and a certificate for [`TLS_NAME`] it signed (EC P-256, the `openssl` CLI).
fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
        let args = |s: String| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
        let run = |s: String| {
            let a = args(s);
            openssl(d, &a.iter().map(String::as_str).collect::<Vec<_>>());
        };
        run(format!(
            "req -x509 {ec} -keyout ca.key -out ca.pem -days 3650 -subj /CN=proxy-test-CA \
             -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign"
        ));
        run(format!(
            "req {ec} -keyout srv.key -out srv.csr -subj /CN={TLS_NAME}"
        ));
        std::fs::write(
            d.join("srv.ext"),
            format!("subjectAltName=DNS:{TLS_NAME}\nextendedKeyUsage=serverAuth\n"),
        )
        .unwrap();
        run(
            "x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem \
             -days 3650 -extfile srv.ext"
                .to_owned(),
        );
        Pki {
            ca: d.join("ca.pem"),
            cert: d.join("srv.pem"),
            key: d.join("srv.key"),
            _dir: dir,
        }
    })
}

fn connector() -> tokio_rustls::TlsConnector {
    use rustls_pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&pki().ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"dot".to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

fn dot_addr(fw: &Fraudwall) -> SocketAddr {
    fw.logged_addr("listening on dot ")
        .expect("dot listener logged")
}

// --- what the instance says --------------------------------------------------------------------

fn proxy_errors(fw: &Fraudwall, transport: &str, reason: &str) -> f64 {
    fw.metric(&format!(
        "fraudwall_proxy_protocol_errors_total{{transport=\"{transport}\",reason=\"{reason}\"}}"
    ))
}

/// Waits (up to 10 s) for the counter to reach `want`, then checks it is exactly `want`.
fn expect_errors(fw: &Fraudwall, transport: &str, reason: &str, want: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = proxy_errors(fw, transport, reason);
    while got < want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        got = proxy_errors(fw, transport, reason);
    }
    assert_eq!(
        got,
        want,
        "fraudwall_proxy_protocol_errors_total{{transport={transport},reason={reason}}}\n{}",
        fw.log()
    );
}

/// Waits (up to 10 s) for a blocked event for `qname` and returns its client and protocol.
fn event_for(fw: &Fraudwall, qname: &str) -> (String, String) {
    let path = fw.dir.path().join("events.jsonl");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if let Some(line) = text
            .lines()
            .find(|l| l.contains(&format!("\"qname\":\"{qname}\"")))
        {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            return (
                v["client"].as_str().unwrap().to_owned(),
                v["protocol"].as_str().unwrap().to_owned(),
            );
        }
        assert!(
            Instant::now() < deadline,
            "no blocked event for {qname} within 10 s; events:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sinkholed(answer: &[u8], id: u16) {
    assert_eq!(
        summary(answer),
        (id, 0, Some(SINK4.to_owned())),
        "not the sinkhole answer"
    );
}

// --- dnsdist -----------------------------------------------------------------------------------

/// dnsdist running docker/dnsdist.conf; killed on drop.
struct Dnsdist {
    child: Child,
    addr: SocketAddr,
    web: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Dnsdist {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Dnsdist {
    fn start(backend: SocketAddr) -> Option<Dnsdist> {
        if Command::new("dnsdist").arg("--version").output().is_err() {
            common::skip("proxy::dnsdist", "dnsdist is not installed");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let conf = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docker/dnsdist.conf");
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let web = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let log = dir.path().join("dnsdist.log");
        let mut cmd = Command::new("dnsdist");
        cmd.args(["--supervised", "--disable-syslog", "-C"])
            .arg(&conf)
            .env("FRAUDWALL_BACKENDS", backend.to_string())
            .env("DNSDIST_LISTEN", addr.to_string())
            .env("DNSDIST_ACL", "127.0.0.0/8")
            .env("DNSDIST_WEBSERVER", web.to_string())
            .env("DNSDIST_WEBSERVER_ACL", "127.0.0.0/8")
            .env("DNSDIST_PROXY_PROTOCOL", "1")
            .env("DNSDIST_BACKEND_SOURCE", DNSDIST_SOURCE)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("err")).unwrap(),
            ));
        let child = common::fraudwall::spawn_owned(cmd).expect("spawn dnsdist");
        Some(Dnsdist {
            child,
            addr,
            web,
            log,
            _dir: dir,
        })
    }

    /// dnsdist's health check verdict on the backend: Some(up).
    fn backend_up(&self) -> Option<bool> {
        let mut s = TcpStream::connect_timeout(&self.web, Duration::from_secs(2)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
            .ok()?;
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        body.lines()
            .find(|l| l.starts_with("dnsdist_server_status{server=\"fraudwall-1\""))
            .map(|l| l.ends_with(" 1"))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

// --- the tests ---------------------------------------------------------------------------------

/// The real dnsdist with `useProxyProtocol` (docker/dnsdist.conf) in front: its health checks
/// (LOCAL headers) mark fraudwall up, and blocked queries sent through it from distinct
/// loopback addresses, over UDP and TCP, are logged with those addresses, not dnsdist's.
#[test]
fn dnsdist_in_front_names_the_real_client() {
    let up = silent_upstream();
    let fw = start(&format!("{DNSDIST_SOURCE}/32"), &up);
    let Some(dd) = Dnsdist::start(fw.addr) else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while dd.backend_up() != Some(true) {
        assert!(
            Instant::now() < deadline,
            "dnsdist never marked fraudwall up (health checks with a LOCAL header)\n\
             dnsdist: {}\nfraudwall: {}",
            dd.log(),
            fw.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for (from, proto, flag) in [
        ("127.0.0.77", "udp", "+notcp"),
        ("127.0.0.78", "tcp", "+tcp"),
    ] {
        let name = format!("{proto}.fraudwall-demo.test");
        let r = dig(dd.addr, &["-b", from, flag, &name, "A"]);
        assert_eq!(r.rcode(), "NOERROR", "{r:?}");
        assert_eq!(r.answer_rdata("A"), [SINK4], "{r:?}");
        assert_eq!(
            event_for(&fw, &name),
            (from.to_owned(), proto.to_owned()),
            "the event must name the client behind dnsdist"
        );
    }
    // Direct queries from elsewhere (no header) are still served.
    let r = dig(fw.addr, &["www.fraudwall-demo.test", "A"]);
    assert_eq!(r.answer_rdata("A"), [SINK4], "{r:?}");
    assert_eq!(event_for(&fw, "www.fraudwall-demo.test").0, "127.0.0.1");
    for t in ["udp", "tcp"] {
        for reason in ["missing", "untrusted", "truncated", "invalid", "oversized"] {
            assert_eq!(proxy_errors(&fw, t, reason), 0.0, "{t} {reason}");
        }
    }
}

/// The access list judges the client the header names, not the peer: the trusted peer
/// (127.0.0.1) is allowed, a client it speaks for outside the list is refused over UDP
/// (REFUSED) and TCP and DoT (closed at once, counted as an ACL refusal); inside the list it is
/// served and logged under its own address, IPv6 included.
#[test]
fn acl_applies_to_the_proxied_address() {
    let up = silent_upstream();
    let fw = start(&format!("{TRUSTED}/32"), &up);
    let outside: SocketAddr = "198.18.0.9:4242".parse().unwrap();
    let udp = udp_from(TRUSTED);

    let a = udp_exchange(
        &udp,
        fw.addr,
        &cat(&header(outside, false), &query(1, "a.blocked.test")),
    )
    .expect("an answer over UDP");
    assert_eq!(
        summary(&a),
        (1, 5, None),
        "REFUSED for a client outside access.allow"
    );

    let acl = "fraudwall_tcp_refused_total{reason=\"acl\"}";
    let before = fw.metric(acl);
    let q = framed(&query(2, "b.blocked.test"));
    let got = tcp_exchange(
        tcp_from(TRUSTED, fw.addr),
        &cat(&header(outside, true), &q),
        false,
    );
    assert_eq!(
        got, None,
        "the TCP connection of a client outside access.allow is closed"
    );
    let got = dot_exchange(
        TRUSTED,
        dot_addr(&fw),
        &header(outside, true),
        &query(3, "c.blocked.test"),
    );
    assert!(
        got.is_err(),
        "DoT for a client outside access.allow: {got:?}"
    );
    assert_eq!(fw.metric(acl) - before, 2.0);

    // Inside the list: served, and the event names the proxied client.
    let v4: SocketAddr = "127.0.0.9:5555".parse().unwrap();
    let a = udp_exchange(
        &udp,
        fw.addr,
        &cat(&header(v4, false), &query(4, "d.blocked.test")),
    )
    .expect("an answer over UDP");
    sinkholed(&a, 4);
    assert_eq!(
        event_for(&fw, "d.blocked.test"),
        ("127.0.0.9".into(), "udp".into())
    );

    let v6: SocketAddr = "[2001:db8::7]:5555".parse().unwrap();
    let a = udp_exchange(
        &udp,
        fw.addr,
        &cat(&header(v6, false), &query(5, "e.blocked.test")),
    )
    .expect("an answer over UDP");
    sinkholed(&a, 5);
    assert_eq!(
        event_for(&fw, "e.blocked.test"),
        ("2001:db8::7".into(), "udp".into())
    );

    let q = framed(&query(6, "f.blocked.test"));
    let a = tcp_exchange(
        tcp_from(TRUSTED, fw.addr),
        &cat(&header(v6, true), &q),
        false,
    )
    .expect("an answer over TCP");
    sinkholed(&a, 6);
    assert_eq!(
        event_for(&fw, "f.blocked.test"),
        ("2001:db8::7".into(), "tcp".into())
    );

    let a = dot_exchange(
        TRUSTED,
        dot_addr(&fw),
        &header(v4, true),
        &query(7, "g.blocked.test"),
    )
    .expect("an answer over DoT");
    sinkholed(&a, 7);
    assert_eq!(
        event_for(&fw, "g.blocked.test"),
        ("127.0.0.9".into(), "tls".into())
    );

    // LOCAL (a health check): the peer itself.
    let a = udp_exchange(
        &udp,
        fw.addr,
        &cat(&local_header(), &query(8, "h.blocked.test")),
    )
    .expect("an answer to a LOCAL header");
    sinkholed(&a, 8);
    assert_eq!(event_for(&fw, "h.blocked.test").0, TRUSTED);
}

/// A header from a source not in `proxy_protocol.from` is refused (it would let anyone pick
/// the address the ACL and the events see): the datagram is dropped, the connection closed,
/// counted as `untrusted`. The same source without a header is served as itself.
#[test]
fn headers_from_untrusted_sources_are_refused() {
    let up = silent_upstream();
    let fw = start(&format!("{TRUSTED}/32"), &up);
    let forged: SocketAddr = "127.0.0.99:1".parse().unwrap();
    let udp = udp_from(UNTRUSTED);
    let got = udp_exchange(
        &udp,
        fw.addr,
        &cat(&header(forged, false), &query(1, "a.blocked.test")),
    );
    assert_eq!(
        got, None,
        "a datagram with a header from an untrusted source is dropped"
    );
    expect_errors(&fw, "udp", "untrusted", 1.0);

    let q = framed(&query(2, "b.blocked.test"));
    let got = tcp_exchange(
        tcp_from(UNTRUSTED, fw.addr),
        &cat(&header(forged, true), &q),
        false,
    );
    assert_eq!(got, None);
    expect_errors(&fw, "tcp", "untrusted", 1.0);
    let got = dot_exchange(
        UNTRUSTED,
        dot_addr(&fw),
        &header(forged, true),
        &query(3, "c.blocked.test"),
    );
    assert!(got.is_err(), "{got:?}");
    expect_errors(&fw, "tls", "untrusted", 1.0);

    // Without a header: served, as itself.
    let a = udp_exchange(&udp, fw.addr, &query(4, "d.blocked.test")).expect("answer");
    sinkholed(&a, 4);
    assert_eq!(event_for(&fw, "d.blocked.test").0, UNTRUSTED);
    let a = tcp_exchange(
        tcp_from(UNTRUSTED, fw.addr),
        &framed(&query(5, "e.blocked.test")),
        false,
    )
    .expect("answer");
    sinkholed(&a, 5);
    let a =
        dot_exchange(UNTRUSTED, dot_addr(&fw), &[], &query(6, "f.blocked.test")).expect("answer");
    sinkholed(&a, 6);
    assert_eq!(
        event_for(&fw, "f.blocked.test"),
        (UNTRUSTED.into(), "tls".into())
    );
    assert!(fw.log().contains("PROXY header refused"), "{}", fw.log());
}

/// From a trusted source a header is required: a bare query is dropped over UDP, and a TCP or
/// DoT connection without one is closed; counted as `missing` (or `timeout` when nothing at
/// all arrives within the connection's idle timeout).
#[test]
fn trusted_sources_must_send_a_header() {
    let up = silent_upstream();
    let fw = start(&format!("{TRUSTED}/32"), &up);
    let udp = udp_from(TRUSTED);
    assert_eq!(
        udp_exchange(&udp, fw.addr, &query(1, "a.blocked.test")),
        None
    );
    expect_errors(&fw, "udp", "missing", 1.0);
    let got = tcp_exchange(
        tcp_from(TRUSTED, fw.addr),
        &framed(&query(2, "b.blocked.test")),
        false,
    );
    assert_eq!(got, None);
    expect_errors(&fw, "tcp", "missing", 1.0);
    let got = dot_exchange(TRUSTED, dot_addr(&fw), &[], &query(3, "c.blocked.test"));
    assert!(got.is_err(), "{got:?}");
    expect_errors(&fw, "tls", "missing", 1.0);
    // Connected, silent: closed after server.tcp_timeout_secs (1 s).
    assert_eq!(tcp_exchange(tcp_from(TRUSTED, fw.addr), &[], false), None);
    expect_errors(&fw, "tcp", "timeout", 1.0);
    let events = std::fs::read_to_string(fw.dir.path().join("events.jsonl")).unwrap_or_default();
    assert!(events.is_empty(), "nothing was answered: {events}");
}

/// Malformed, truncated and oversized headers from the trusted source are dropped and counted
/// by reason, exactly, over UDP and TCP; the instance keeps serving.
#[test]
fn bad_headers_are_dropped_and_counted() {
    let up = silent_upstream();
    let fw = start(&format!("{TRUSTED}/32"), &up);
    let client: SocketAddr = "127.0.0.9:5555".parse().unwrap();
    let good_udp = header(client, false);
    let good_tcp = header(client, true);
    let q = query(1, "a.blocked.test");
    let v4 = &good_udp[16..];

    // (what, the datagram, reason) over UDP.
    let udp_cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("signature cut short", good_udp[..8].to_vec(), "truncated"),
        ("fixed part cut short", good_udp[..14].to_vec(), "truncated"),
        (
            "length beyond the datagram",
            cat(&raw_header(0x21, 0x12, v4, 200), &q),
            "truncated",
        ),
        (
            "600-byte TLVs",
            cat(&raw_header(0x21, 0x12, &[0; 600], 600), &q),
            "oversized",
        ),
        (
            "65535-byte length",
            cat(&raw_header(0x21, 0x12, v4, 65535), &q),
            "oversized",
        ),
        (
            "version 1 in binary",
            cat(&raw_header(0x11, 0x12, v4, 12), &q),
            "invalid",
        ),
        (
            "command 3",
            cat(&raw_header(0x23, 0x12, v4, 12), &q),
            "invalid",
        ),
        (
            "family 4",
            cat(&raw_header(0x21, 0x42, v4, 12), &q),
            "invalid",
        ),
        (
            "IPv6 family, IPv4-sized block",
            cat(&raw_header(0x21, 0x22, v4, 12), &q),
            "invalid",
        ),
        (
            "UNIX family",
            cat(&raw_header(0x21, 0x32, &[0; 216], 216), &q),
            "invalid",
        ),
    ];
    let udp = udp_from(TRUSTED);
    let mut want = std::collections::BTreeMap::<&str, f64>::new();
    for (_, datagram, reason) in &udp_cases {
        udp.send_to(datagram, fw.addr).unwrap();
        *want.entry(reason).or_default() += 1.0;
    }
    for (reason, n) in &want {
        expect_errors(&fw, "udp", reason, *n);
    }
    // None was answered: the first datagram back is the answer to a good query sent now.
    let a =
        udp_exchange(&udp, fw.addr, &cat(&good_udp, &query(9, "z.blocked.test"))).expect("answer");
    assert_eq!(summary(&a).0, 9, "a bad header was answered: {udp_cases:?}");
    sinkholed(&a, 9);

    // Over TCP the header alone, then our side closed: what follows a header is not read.
    let tcp_cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("signature then EOF", good_tcp[..8].to_vec(), "truncated"),
        (
            "addresses cut short, then EOF",
            good_tcp[..20].to_vec(),
            "truncated",
        ),
        (
            "600-byte TLVs",
            raw_header(0x21, 0x11, &[0; 600], 600),
            "oversized",
        ),
        (
            "version 1 in binary",
            raw_header(0x11, 0x11, &good_tcp[16..], 12),
            "invalid",
        ),
        (
            "UNIX family",
            raw_header(0x21, 0x31, &[0; 216], 216),
            "invalid",
        ),
    ];
    let mut want = std::collections::BTreeMap::<&str, f64>::new();
    for (what, h, reason) in &tcp_cases {
        let got = tcp_exchange(tcp_from(TRUSTED, fw.addr), h, true);
        assert_eq!(got, None, "TCP, {what}: must be closed without an answer");
        *want.entry(reason).or_default() += 1.0;
    }
    for (reason, n) in &want {
        expect_errors(&fw, "tcp", reason, *n);
    }

    // Still serving.
    let a = tcp_exchange(
        tcp_from(TRUSTED, fw.addr),
        &cat(&good_tcp, &framed(&query(10, "y.blocked.test"))),
        false,
    )
    .expect("answer");
    sinkholed(&a, 10);
    assert!(!fw.log().contains("panicked"), "{}", fw.log());
}
