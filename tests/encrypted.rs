//! Encrypted DNS served by the real binary (issue #17), with real clients: `kdig +tls` (DoT),
//! `kdig +https` / `+https-get` (DoH POST / GET), `dig` for UDP, TCP and DDR, `curl` for HTTP
//! statuses and `--doh-url`, `openssl s_client` for what a refused client sees, and a rustls
//! client for pipelining and certificate swaps. Benign names resolve through the fakenet.
//!
//! The test CA and the server certificates are made here with the `openssl` CLI (EC P-256),
//! for `dns.fraudwall.test` and 127.0.0.1, and a second one for `dns2.fraudwall.test`.

mod common;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use common::{Fakenet, Fraudwall, dig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NAME: &str = "dns.fraudwall.test";
const NAME2: &str = "dns2.fraudwall.test";

/// The test PKI: a CA, a server certificate for [`NAME`] and one for [`NAME2`].
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    cert: String,
    key: String,
    cert2: String,
    key2: String,
}

fn openssl(dir: &Path, args: &[&str]) {
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

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509"];
        ca.extend(ec);
        ca.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "3650",
            "-subj",
            "/CN=fraudwall test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(d, &ca);
        for (stem, name) in [("srv", NAME), ("srv2", NAME2)] {
            let (key, csr, crt, ext) = (
                format!("{stem}.key"),
                format!("{stem}.csr"),
                format!("{stem}.pem"),
                format!("{stem}.ext"),
            );
            let mut req = vec!["req"];
            req.extend(ec);
            let subj = format!("/CN={name}");
            req.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
            openssl(d, &req);
            std::fs::write(
                d.join(&ext),
                format!(
                    "subjectAltName=DNS:{name},IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
                     extendedKeyUsage=serverAuth\n"
                ),
            )
            .unwrap();
            openssl(
                d,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-out",
                    &crt,
                    "-days",
                    "3650",
                    "-extfile",
                    &ext,
                ],
            );
        }
        let read = |f: &str| std::fs::read_to_string(d.join(f)).unwrap();
        Pki {
            ca: d.join("ca.pem"),
            cert: read("srv.pem"),
            key: read("srv.key"),
            cert2: read("srv2.pem"),
            key2: read("srv2.key"),
            _dir: dir,
        }
    })
}

/// The lists of the block matrix: one per action.
const LISTS: &[(&str, &str)] = &[
    ("lists/fraud.txt", "scam-shop.net\n"),
    ("lists/phish.txt", "phish.example.com\n"),
    ("lists/nodata.txt", "nodata.example.com\n"),
    ("lists/refused.txt", "refused.example.com\n"),
    ("lists/dropped.txt", "dropped.example.com\n"),
];

/// A fraudwall resolving the fakenet, with DoT and DoH on loopback port 0 and `extra` config;
/// `dot_extra` and `doh_extra` are added to the `dot:` and `doh:` sections.
fn config(dot_extra: &str, doh_extra: &str, extra: &str) -> String {
    let net = Fakenet::shared();
    format!(
        "listen: [\"127.0.0.1:0\"]\n\
         resolver:\n  root_hints: {}\n  trust_anchor: {}\n  allow_private_servers: true\n\
         blocklists:\n  dir: lists\n  lists:\n\
         \x20   - file: phish.txt\n      action: nxdomain\n      category: phishing\n      ede: 16\n\
         \x20   - file: nodata.txt\n      action: nodata\n\
         \x20   - file: refused.txt\n      action: refused\n\
         \x20   - file: dropped.txt\n      action: drop\n\
         tls:\n  cert: tls/cert.pem\n  key: tls/key.pem\n  reload_secs: 1\n  handshake_timeout_secs: 2\n\
         dot:\n  listen: [\"127.0.0.1:0\"]\n{dot_extra}\
         doh:\n  listen: [\"127.0.0.1:0\"]\n{doh_extra}\
         {extra}",
        net.hints.display(),
        net.trust_anchor.display()
    )
}

/// A running fraudwall and its DoT and DoH addresses.
struct Server {
    fw: Fraudwall,
    dot: SocketAddr,
    doh: SocketAddr,
}

fn start(extra: &str) -> Server {
    start_dot(extra, "")
}

fn start_dot(extra: &str, dot_extra: &str) -> Server {
    start_with(extra, dot_extra, "")
}

fn start_with(extra: &str, dot_extra: &str, doh_extra: &str) -> Server {
    let p = pki();
    let mut files: Vec<(&str, &str)> = LISTS.to_vec();
    files.push(("tls/cert.pem", &p.cert));
    files.push(("tls/key.pem", &p.key));
    let fw = Fraudwall::start(&config(dot_extra, doh_extra, extra), &files);
    let dot = logged(&fw, "listening on dot ");
    let doh = logged(&fw, "listening on doh ");
    Server { fw, dot, doh }
}

/// The address a log line names, waiting for it to be logged.
fn logged(fw: &Fraudwall, prefix: &str) -> SocketAddr {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(a) = fw.logged_addr(prefix) {
            return a;
        }
        assert!(
            Instant::now() < deadline,
            "no '{prefix}' in the log:\n{}",
            fw.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One server for the tests that do not restart or reconfigure it.
fn shared() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| start(&format!("ddr:\n  name: {NAME}\n")))
}

/// What one client saw, reduced to what must be equal on every transport.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Essence {
    status: String,
    /// `name TYPE rdata`, sorted.
    answer: Vec<String>,
    authority_types: Vec<String>,
    ede: Vec<u16>,
}

fn essence_of_dig(r: &common::DigResult) -> Essence {
    let mut auth = r.authority_types();
    auth.sort();
    Essence {
        status: r.status.clone(),
        answer: r.normalized_answer(),
        authority_types: auth,
        ede: r.ede_codes(),
    }
}

/// Parses kdig's output (its own format, not dig's).
fn parse_kdig(raw: &str) -> Essence {
    let mut e = Essence {
        status: "NO-RESPONSE".into(),
        answer: Vec::new(),
        authority_types: Vec::new(),
        ede: Vec::new(),
    };
    let mut section = "";
    for line in raw.lines() {
        if let Some(s) = line.split("status: ").nth(1)
            && line.contains("->>HEADER<<-")
        {
            e.status = s.split(';').next().unwrap_or("").trim().to_string();
        } else if let Some(s) = line.strip_prefix(";; EDE: ") {
            let code = s.split(|c: char| !c.is_ascii_digit()).next().unwrap_or("");
            e.ede.push(code.parse().unwrap_or(u16::MAX));
        } else if let Some(s) = line
            .strip_prefix(";; ")
            .and_then(|l| l.strip_suffix(" SECTION:"))
        {
            section = if s == "ANSWER" || s == "AUTHORITY" {
                s
            } else {
                ""
            };
        } else if line.trim().is_empty() || line.starts_with(';') {
            if line.trim().is_empty() {
                section = "";
            }
        } else if !section.is_empty() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() >= 4 {
                if section == "ANSWER" {
                    let rdata = f[4..].join(" ");
                    e.answer
                        .push(format!("{} {} {}", f[0].to_lowercase(), f[3], rdata));
                } else {
                    e.authority_types.push(f[3].to_string());
                }
            }
        }
    }
    e.answer.sort();
    e.authority_types.sort();
    e
}

/// Runs kdig against `server` with `mode` (`+tls`, `+https`, `+https-get`) trusting the test
/// CA; returns its output.
fn kdig(server: SocketAddr, mode: &str, args: &[&str]) -> String {
    kdig_for(server, mode, NAME, args)
}

fn kdig_for(server: SocketAddr, mode: &str, hostname: &str, args: &[&str]) -> String {
    let out = Command::new("kdig")
        .arg(format!("@{}", server.ip()))
        .arg("-p")
        .arg(server.port().to_string())
        .arg(mode)
        .arg(format!("+tls-ca={}", pki().ca.display()))
        .arg(format!("+tls-hostname={hostname}"))
        .args(["+time=5", "+retry=0"])
        .args(args)
        .output()
        .expect("cannot run kdig (apt-get install knot-dnsutils)");
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    s
}

/// One query over UDP, TCP, DoT, DoH POST and DoH GET: what each transport answered.
fn over_every_transport(
    s: &Server,
    name: &str,
    qtype: &str,
) -> Vec<(&'static str, Essence, String)> {
    let udp = dig(s.fw.addr, &[name, qtype]);
    let tcp = dig(s.fw.addr, &[name, qtype, "+tcp"]);
    let mut out = vec![
        ("udp", essence_of_dig(&udp), udp.raw.clone()),
        ("tcp", essence_of_dig(&tcp), tcp.raw.clone()),
    ];
    for (label, server, mode) in [
        ("dot", s.dot, "+tls"),
        ("doh-post", s.doh, "+https"),
        ("doh-get", s.doh, "+https-get"),
    ] {
        let raw = kdig(server, mode, &[name, qtype]);
        out.push((label, parse_kdig(&raw), raw));
    }
    out
}

/// The same blocked and benign names over every transport: identical RCODE, answer, authority
/// types and EDE; the blocked ones answered as their list says.
#[test]
fn block_matrix_is_identical_on_udp_tcp_dot_and_doh() {
    let s = shared();
    let cases: &[(&str, &str, &str, &[u16])] = &[
        // name, type, expected status, expected EDE
        ("www.scam-shop.net", "A", "NOERROR", &[15]),
        ("www.scam-shop.net", "AAAA", "NOERROR", &[15]),
        ("login.phish.example.com", "A", "NXDOMAIN", &[16]),
        ("nodata.example.com", "A", "NOERROR", &[15]),
        ("refused.example.com", "A", "REFUSED", &[15]),
        ("use-application-dns.net", "A", "NXDOMAIN", &[]),
        ("www.example.com", "A", "NOERROR", &[]),
    ];
    for &(name, qtype, status, ede) in cases {
        let seen = over_every_transport(s, name, qtype);
        let (_, first, _) = &seen[0];
        assert_eq!(
            first.status, status,
            "{name} {qtype} over udp:\n{}",
            seen[0].2
        );
        assert_eq!(first.ede, ede, "{name} {qtype} over udp:\n{}", seen[0].2);
        for (transport, e, raw) in &seen[1..] {
            assert_eq!(
                e, first,
                "{name} {qtype}: {transport} differs from udp:\n{raw}"
            );
        }
    }
    // The sinkhole answer and the benign answer, spelled out once.
    let seen = over_every_transport(s, "www.scam-shop.net", "A");
    assert_eq!(
        seen[4].1.answer,
        ["www.scam-shop.net. A 127.0.0.1"],
        "{}",
        seen[4].2
    );
    let seen = over_every_transport(s, "www.example.com", "A");
    assert_eq!(
        seen[3].1.answer,
        ["www.example.com. A 198.18.0.10"],
        "{}",
        seen[3].2
    );
    // Events name the transport.
    wait_for_events(&s.fw, &["\"protocol\":\"tls\"", "\"protocol\":\"https\""]);
}

/// DDR (RFC 9462): `_dns.resolver.arpa SVCB` lists our DoH and DoT endpoints with their real
/// ports, the name of the certificate, the alpn, the dohpath and the address hint; other names
/// under resolver.arpa are answered locally (our synthetic SOA), never by the root.
#[test]
fn ddr_advertises_our_endpoints_and_resolver_arpa_stays_local() {
    let s = shared();
    let r = dig(s.fw.addr, &["_dns.resolver.arpa", "SVCB"]);
    assert_eq!(r.status, "NOERROR", "{}", r.raw);
    let svcb = r.answer_rdata("SVCB");
    assert_eq!(svcb.len(), 2, "{}", r.raw);
    assert_eq!(
        svcb[0],
        format!(
            "1 {NAME}. alpn=\"h2,http/1.1\" port={} ipv4hint=127.0.0.1 key7=\"/dns-query{{?dns}}\"",
            s.doh.port()
        )
    );
    assert_eq!(
        svcb[1],
        format!(
            "2 {NAME}. alpn=\"dot\" port={} ipv4hint=127.0.0.1",
            s.dot.port()
        )
    );
    // The same over DoH, as a browser would ask once upgraded.
    let raw = kdig(s.doh, "+https", &["_dns.resolver.arpa", "SVCB"]);
    assert_eq!(parse_kdig(&raw).answer.len(), 2, "{raw}");
    // Other names: local negative answers whose SOA is ours (the fakenet root would answer
    // NXDOMAIN for resolver.arpa too, but with its own SOA at the root).
    for (name, qtype, status) in [
        ("x.resolver.arpa", "A", "NXDOMAIN"),
        ("resolver.arpa", "SOA", "NOERROR"),
        ("_dns.resolver.arpa", "A", "NOERROR"),
    ] {
        let r = dig(s.fw.addr, &[name, qtype]);
        assert_eq!(r.status, status, "{name}: {}", r.raw);
        assert!(r.answer.is_empty(), "{name}: {}", r.raw);
        let soa = &r.authority[0];
        assert_eq!(
            (soa.name.as_str(), soa.rtype.as_str()),
            ("resolver.arpa.", "SOA"),
            "{}",
            r.raw
        );
        assert!(soa.rdata.starts_with("fraudwall.invalid."), "{}", r.raw);
    }
}

/// Without `ddr.name` there is nothing to advertise: NODATA, still local.
#[test]
fn ddr_without_a_name_is_nodata() {
    let s = start("");
    let r = dig(s.fw.addr, &["_dns.resolver.arpa", "SVCB"]);
    assert_eq!(
        (r.status.as_str(), r.answer.len()),
        ("NOERROR", 0),
        "{}",
        r.raw
    );
    assert_eq!(r.authority_types(), ["SOA"], "{}", r.raw);
    assert!(s.fw.log().contains("ddr.name is not set"), "{}", s.fw.log());
}

/// curl with the test CA: the status of each kind of bad request.
fn curl_status(s: &Server, args: &[&str], path: &str) -> String {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{http_version}",
            "--max-time",
            "10",
        ])
        .arg("--cacert")
        .arg(&pki().ca)
        .arg("--resolve")
        .arg(format!("{NAME}:{}:127.0.0.1", s.doh.port()))
        .args(args)
        .arg(format!("https://{NAME}:{}{path}", s.doh.port()))
        .output()
        .expect("cannot run curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn doh_bad_requests_get_the_right_http_status() {
    let s = shared();
    let ct = "content-type: application/dns-message";
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big");
    std::fs::write(&big, vec![0u8; 70_000]).unwrap();
    let big_arg = format!("@{}", big.display());
    // www.example.com A, ID 0 (RFC 8484 §4.1.1), base64url.
    let good = "AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB";
    for (args, path, want) in [
        (vec![], format!("/dns-query?dns={good}"), "200 2"),
        (
            vec!["--http1.1"],
            format!("/dns-query?dns={good}"),
            "200 1.1",
        ),
        (vec![], "/dns-query?dns=***".to_string(), "400 2"),
        (vec![], "/dns-query".to_string(), "400 2"),
        (vec![], "/dns-query?dns=AAAB".to_string(), "400 2"),
        (
            vec!["-H", "content-type: text/plain", "--data-binary", "x"],
            "/dns-query".into(),
            "415 2",
        ),
        (vec!["-X", "POST"], "/dns-query".into(), "415 2"),
        // HTTP/1.1: curl reports the early 413 reliably (over h2 it may see the stream reset
        // that follows it before the status).
        (
            vec!["--http1.1", "-H", ct, "--data-binary", &big_arg],
            "/dns-query".into(),
            "413 1.1",
        ),
        (vec![], format!("/other?dns={good}"), "404 2"),
        (vec!["-X", "PUT"], "/dns-query".into(), "405 2"),
    ] {
        assert_eq!(curl_status(s, &args, &path), want, "curl {args:?} {path}");
    }
    // The answer: the DNS media type, cacheable for its smallest TTL.
    let out = Command::new("curl")
        .args(["-s", "-D", "-", "-o", "/dev/null", "--cacert"])
        .arg(&pki().ca)
        .arg("--resolve")
        .arg(format!("{NAME}:{}:127.0.0.1", s.doh.port()))
        .arg(format!(
            "https://{NAME}:{}/dns-query?dns={good}",
            s.doh.port()
        ))
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(
        head.contains("content-type: application/dns-message"),
        "{head}"
    );
    assert!(head.contains("cache-control: max-age="), "{head}");
}

/// curl resolving through our DoH (`--doh-url`, the test CA trusted) opens a blocked site and
/// lands on the warning page.
#[test]
fn curl_over_doh_lands_on_the_warning_page() {
    let s = start(&format!(
        "ddr:\n  name: {NAME}\n\
         warning_page:\n  listen: [\"127.0.0.1:0\"]\n  reports_file: reports.jsonl\n"
    ));
    let page = logged(&s.fw, "warning page listening on http ");
    let out = Command::new("curl")
        // Bound to loopback: were the name not blocked, curl could not reach its real address
        // (198.18.0.0/15) off this machine.
        .args(["-s", "--max-time", "10", "--interface", "lo"])
        .args(["-H", "Accept: text/html"])
        .arg("--cacert")
        .arg(&pki().ca)
        .arg("--doh-url")
        .arg(format!("https://127.0.0.1:{}/dns-query", s.doh.port()))
        .arg(format!("http://www.scam-shop.net:{}/", page.port()))
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        body.contains("www.scam-shop.net") && body.contains("已拦截"),
        "not the warning page ({}):\n{body}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.fw.log()
    );
    wait_for_events(&s.fw, &["\"protocol\":\"https\""]);
}

/// Waits until the event log (written off the query path) holds every one of `needles`.
fn wait_for_events(fw: &Fraudwall, needles: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events =
            std::fs::read_to_string(fw.dir.path().join("events.jsonl")).unwrap_or_default();
        if needles.iter().all(|n| events.contains(n)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "events lack {needles:?}:\n{events}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A client outside the access list is closed at accept: no TLS handshake, no certificate.
#[test]
fn acl_refuses_dot_and_doh_before_the_handshake() {
    let s = start("access:\n  allow: [\"10.0.0.0/8\"]\n");
    for addr in [s.dot, s.doh] {
        let out = Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &addr.to_string(),
                "-servername",
                NAME,
            ])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !text.contains("BEGIN CERTIFICATE"),
            "{addr}: a certificate was sent:\n{text}"
        );
        assert!(
            text.contains("no peer certificate available"),
            "{addr}:\n{text}"
        );
    }
    let log = s.fw.log();
    for t in ["transport=\"tls\"", "transport=\"https\""] {
        assert!(
            log.lines()
                .any(|l| l.contains("connection refused") && l.contains("acl") && l.contains(t)),
            "no acl refusal with {t}:\n{log}"
        );
    }
    assert!(
        !log.contains("tls handshake"),
        "a handshake was attempted:\n{log}"
    );
}

/// A rustls client trusting the test CA, offering ALPN `dot`.
fn connector() -> tokio_rustls::TlsConnector {
    connector_alpn(b"dot")
}

/// A rustls client trusting the test CA, offering `alpn`.
fn connector_alpn(alpn: &[u8]) -> tokio_rustls::TlsConnector {
    use rustls_pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&pki().ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut config = config;
    config.alpn_protocols = vec![alpn.to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

type Dot = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

async fn dot_connect(addr: SocketAddr, name: &str) -> std::io::Result<Dot> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls_pki_types::ServerName::try_from(name.to_string()).unwrap();
    connector().connect(name, tcp).await
}

/// A query for `name` A with `id`, framed for TCP.
fn framed_query(id: u16, name: &str) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    let mut f = (m.len() as u16).to_be_bytes().to_vec();
    f.extend(m);
    f
}

/// Reads one framed answer: (ID, RCODE).
async fn read_answer(s: &mut Dot) -> (u16, u8) {
    let mut len = [0u8; 2];
    tokio::time::timeout(Duration::from_secs(15), s.read_exact(&mut len))
        .await
        .expect("an answer within 15 s")
        .unwrap();
    let mut m = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut m).await.unwrap();
    (u16::from_be_bytes([m[0], m[1]]), m[3] & 0xf)
}

/// RFC 7766 over DoT: queries written at once on one connection are all answered, and a
/// blocked name asked after a name that must be resolved is answered first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_pipelines_and_answers_out_of_order() {
    let s = shared();
    let mut c = dot_connect(s.dot, NAME).await.expect("handshake");
    assert_eq!(c.get_ref().1.alpn_protocol(), Some(&b"dot"[..]));
    // A name no one asked yet: resolved through the fakenet (root, com, example.com).
    let fresh = format!("nx-{}.example.com", std::process::id());
    let mut batch = framed_query(1, &fresh);
    for id in 2..=4 {
        batch.extend(framed_query(id, "www.scam-shop.net"));
    }
    c.write_all(&batch).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(read_answer(&mut c).await);
    }
    let mut ids: Vec<u16> = got.iter().map(|a| a.0).collect();
    assert_ne!(ids[0], 1, "answers in order: {got:?}");
    ids.sort();
    assert_eq!(ids, [1, 2, 3, 4], "{got:?}");
    assert!(got.contains(&(1, 3)), "the fresh name is NXDOMAIN: {got:?}");
}

/// A new certificate is picked up without a restart: new connections get it, a connection
/// opened before keeps answering. A broken file afterwards keeps the last good one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_swap_keeps_open_connections() {
    let s = start("metrics:\n  listen: \"127.0.0.1:0\"\n");
    let metrics = logged(&s.fw, "metrics listening on http ");
    let mut old = dot_connect(s.dot, NAME).await.expect("first certificate");
    old.write_all(&framed_query(7, "www.scam-shop.net"))
        .await
        .unwrap();
    assert_eq!(read_answer(&mut old).await, (7, 0));
    assert!(
        dot_connect(s.dot, NAME2).await.is_err(),
        "the second name is not served yet"
    );

    // Deploy the second certificate the way tools do: written beside, renamed into place.
    let tls = s.fw.dir.path().join("tls");
    let p = pki();
    for (file, body) in [("key.pem", &p.key2), ("cert.pem", &p.cert2)] {
        std::fs::write(tls.join("new"), body).unwrap();
        std::fs::rename(tls.join("new"), tls.join(file)).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while dot_connect(s.dot, NAME2).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "new certificate not served:\n{}",
            s.fw.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        dot_connect(s.dot, NAME).await.is_err(),
        "the old certificate is gone"
    );
    // kdig agrees.
    let raw = kdig_for(s.dot, "+tls", NAME2, &["www.scam-shop.net", "A"]);
    assert_eq!(parse_kdig(&raw).status, "NOERROR", "{raw}");
    // The connection opened before the swap still answers.
    old.write_all(&framed_query(8, "www.scam-shop.net"))
        .await
        .unwrap();
    assert_eq!(read_answer(&mut old).await, (8, 0));

    // A broken certificate: logged, counted, and the last good one stays.
    std::fs::write(tls.join("new"), "-----BEGIN CERTIFICATE-----\ngarbage\n").unwrap();
    std::fs::rename(tls.join("new"), tls.join("cert.pem")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !s
        .fw
        .log()
        .contains("cert.pem: cannot use as certificate chain")
    {
        assert!(
            Instant::now() < deadline,
            "no reload failure logged:\n{}",
            s.fw.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        s.fw.log().contains("tls certificate reload failed"),
        "{}",
        s.fw.log()
    );
    let scrape = Command::new("curl")
        .args(["-s", &format!("http://{metrics}/metrics")])
        .output()
        .unwrap();
    let failures = String::from_utf8_lossy(&scrape.stdout)
        .lines()
        .find_map(|l| {
            l.strip_prefix("fraudwall_tls_reload_failures_total ")?
                .trim()
                .parse::<f64>()
                .ok()
        });
    assert!(failures.is_some_and(|n| n >= 1.0), "{failures:?}");
    // DoT answers are counted as such.
    let dot_answers = String::from_utf8_lossy(&scrape.stdout)
        .lines()
        .find_map(|l| {
            l.strip_prefix("fraudwall_queries_total{protocol=\"tls\",rcode=\"NOERROR\"} ")?
                .trim()
                .parse::<f64>()
                .ok()
        });
    assert!(dot_answers.is_some_and(|n| n >= 3.0), "{dot_answers:?}");
    let mut c = dot_connect(s.dot, NAME2)
        .await
        .expect("the last good certificate");
    c.write_all(&framed_query(9, "www.scam-shop.net"))
        .await
        .unwrap();
    assert_eq!(read_answer(&mut c).await, (9, 0));
}

/// A certificate that cannot be used stops the start, naming the file; so does
/// `fraudwall config check`.
#[test]
fn bad_certificate_at_start_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cert.pem"), &pki().cert).unwrap();
    // The key of the other certificate: does not match.
    std::fs::write(dir.path().join("key.pem"), &pki().key2).unwrap();
    std::fs::write(
        dir.path().join("fw.yaml"),
        "tls:\n  cert: cert.pem\n  key: key.pem\ndot:\n  listen: [\"127.0.0.1:0\"]\n",
    )
    .unwrap();
    let out = Command::new(common::fraudwall::bin())
        .args(["config", "check"])
        .arg(dir.path().join("fw.yaml"))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("tls.key") && text.contains("key.pem") && text.contains("line 3"),
        "{text}"
    );
    // A DDR name the certificate does not cover: no client could verify it.
    std::fs::write(dir.path().join("key.pem"), &pki().key).unwrap();
    std::fs::write(
        dir.path().join("fw.yaml"),
        "tls:\n  cert: cert.pem\n  key: key.pem\nddr:\n  name: other.fraudwall.test\n",
    )
    .unwrap();
    let out = Command::new(common::fraudwall::bin())
        .args(["config", "check"])
        .arg(dir.path().join("fw.yaml"))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && text.contains("line 5: ddr.name"),
        "{text}"
    );
    // DoT without a certificate.
    std::fs::write(
        dir.path().join("fw.yaml"),
        "doh:\n  listen: [\"127.0.0.1:0\"]\n",
    )
    .unwrap();
    let out = Command::new(common::fraudwall::bin())
        .args(["config", "check"])
        .arg(dir.path().join("fw.yaml"))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && text.contains("tls"), "{text}");
}

/// Whether the server closed `c` within `within` (reads return EOF or an error).
async fn closed_within(c: &mut Dot, within: Duration) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(within, c.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

/// A DoT connection that sends no complete query is closed after `dot.idle_timeout_secs`, also
/// when it trickles the bytes of a frame that never completes (slowloris); one that keeps
/// asking stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_idle_connections_are_closed_even_when_trickling() {
    let s = start_dot("", "  idle_timeout_secs: 2\n");
    // Silent: closed after the idle timeout (the bound is generous: it checks the timeout, not
    // a speed).
    let mut silent = dot_connect(s.dot, NAME).await.expect("handshake");
    assert!(closed_within(&mut silent, Duration::from_secs(15)).await);
    // Trickling: a frame that announces 100 bytes, sent one byte a second.
    let mut slow = dot_connect(s.dot, NAME).await.expect("handshake");
    let started = Instant::now();
    slow.write_all(&[0, 100]).await.unwrap();
    let mut closed = false;
    while started.elapsed() < Duration::from_secs(20) {
        if slow.write_all(&[0]).await.is_err()
            || closed_within(&mut slow, Duration::from_secs(1)).await
        {
            closed = true;
            break;
        }
    }
    assert!(closed, "a trickling client kept its connection open");
    // Asking: a query every second keeps a connection open past the timeout.
    let mut busy = dot_connect(s.dot, NAME).await.expect("handshake");
    for id in 0..4 {
        busy.write_all(&framed_query(id, "www.scam-shop.net"))
            .await
            .unwrap();
        assert_eq!(read_answer(&mut busy).await, (id, 0));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// CVE-2023-44487: a client that opens HTTP/2 streams and resets them at once is cut off
/// (GOAWAY, ENHANCE_YOUR_CALM) instead of making the server work for each; DoH keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doh_rapid_reset_flood_is_cut_off() {
    let s = shared();
    let tcp = tokio::net::TcpStream::connect(s.doh).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from(NAME).unwrap();
    let tls = connector_alpn(b"h2").connect(name, tcp).await.unwrap();
    let (mut client, conn) = h2::client::handshake(tls).await.expect("h2 handshake");
    let conn = tokio::spawn(conn);
    let uri = format!("https://{NAME}/dns-query?dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB");
    let mut refused = false;
    for _ in 0..5_000 {
        client = match client.ready().await {
            Ok(c) => c,
            Err(_) => {
                refused = true;
                break;
            }
        };
        let req = hyper::Request::get(uri.as_str()).body(()).unwrap();
        match client.send_request(req, true) {
            Ok((_, mut stream)) => stream.send_reset(h2::Reason::CANCEL),
            Err(_) => {
                refused = true;
                break;
            }
        }
    }
    let ended = tokio::time::timeout(Duration::from_secs(15), conn).await;
    // Cut off: the GOAWAY's reason, or, when the server's close overtook the client's reading
    // of it, an I/O error on the closed connection. An unprotected server would keep the
    // connection (a timeout here) or end it cleanly.
    match ended {
        Ok(Ok(Err(e))) => assert!(
            e.reason() == Some(h2::Reason::ENHANCE_YOUR_CALM)
                || (e.reason().is_none() && e.is_io()),
            "{e:?}"
        ),
        other => panic!("the flooding connection was not cut off (refused: {refused}): {other:?}"),
    }
    let raw = kdig(s.doh, "+https", &["www.scam-shop.net", "A"]);
    assert_eq!(parse_kdig(&raw).status, "NOERROR", "{raw}");
}

/// Garbage instead of a TLS handshake, and a client that connects and never starts one: both
/// are closed (the silent one after `tls.handshake_timeout_secs`), and DoT and DoH keep
/// serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_stalled_handshakes_are_closed() {
    let s = start("");
    for addr in [s.dot, s.doh] {
        for i in 0..50u8 {
            let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
            let junk: Vec<u8> = (0..512u16)
                .map(|b| (b as u8).wrapping_mul(31).wrapping_add(i))
                .collect();
            let _ = c.write_all(&junk).await;
            let mut buf = [0u8; 256];
            // The server answers with an alert or just closes; either way the read ends.
            let r = tokio::time::timeout(Duration::from_secs(15), async {
                while let Ok(n) = c.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            })
            .await;
            assert!(r.is_ok(), "{addr}: garbage connection left open");
        }
        let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut buf = [0u8; 16];
        let r = tokio::time::timeout(Duration::from_secs(15), silent.read(&mut buf)).await;
        assert!(
            matches!(r, Ok(Ok(0)) | Ok(Err(_))),
            "{addr}: a client that never handshakes is not closed"
        );
    }
    let raw = kdig(s.dot, "+tls", &["www.scam-shop.net", "A"]);
    assert_eq!(parse_kdig(&raw).status, "NOERROR", "{raw}");
    let raw = kdig(s.doh, "+https", &["www.scam-shop.net", "A"]);
    assert_eq!(parse_kdig(&raw).status, "NOERROR", "{raw}");
}

/// A DoH connection with no request for `doh.idle_timeout_secs` is closed, even while the
/// client keeps it busy with HTTP/2 pings; one with requests stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doh_idle_connections_are_closed_despite_pings() {
    let s = start_with("", "", "  idle_timeout_secs: 2\n");
    let h2_connect = || async {
        let tcp = tokio::net::TcpStream::connect(s.doh).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from(NAME).unwrap();
        let tls = connector_alpn(b"h2").connect(name, tcp).await.unwrap();
        h2::client::handshake(tls).await.expect("h2 handshake")
    };
    let (_client, mut conn) = h2_connect().await;
    let mut pings = conn.ping_pong().expect("ping_pong");
    let conn = tokio::spawn(conn);
    let pinger = tokio::spawn(async move {
        while pings.ping(h2::Ping::opaque()).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let ended = tokio::time::timeout(Duration::from_secs(15), conn).await;
    assert!(ended.is_ok(), "pings kept an idle DoH connection open");
    pinger.abort();

    // Requests keep it open past the timeout.
    let (client, conn) = h2_connect().await;
    let conn = tokio::spawn(conn);
    let uri = format!("https://{NAME}/dns-query?dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB");
    let mut client = client;
    for _ in 0..4 {
        client = client.ready().await.expect("connection still open");
        let req = hyper::Request::get(uri.as_str()).body(()).unwrap();
        let (resp, _) = client.send_request(req, true).unwrap();
        assert_eq!(resp.await.expect("an answer").status(), 200);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(!conn.is_finished());
}

/// Headless Chromium whose only resolver is fraudwall's DoH endpoint (secure mode: no fallback
/// to the system resolver), with the test CA trusted through an NSS database in a throwaway
/// `$HOME`. No `--host-resolver-rules`: the browser resolves the blocked name itself, gets the
/// sinkhole address (127.0.0.1) and lands on the warning page. The same run with a wrong DoH
/// path, or without the CA, must not reach the page: what reaches it went through DoH.
///
/// Needs `chromium` and `certutil` (tests/browser/install.sh); without them it is skipped
/// (`common::skip`: a failure under `tests/run.sh`).
#[test]
fn chromium_over_doh_lands_on_the_warning_page() {
    const HOST: &str = "www.fraudwall-demo.test";
    let find = |names: &[&str]| {
        let path = std::env::var_os("PATH")?;
        names
            .iter()
            .flat_map(|n| std::env::split_paths(&path).map(move |d| d.join(n)))
            .find(|p| p.is_file())
    };
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| find(&["chromium", "chromium-browser", "google-chrome"]));
    let (Some(chromium), Some(certutil)) = (chromium, find(&["certutil"])) else {
        common::skip(
            "chromium_over_doh_lands_on_the_warning_page",
            "chromium or certutil not found: run tests/browser/install.sh",
        );
        return;
    };

    let p = pki();
    // Nothing to forward to (port 9 on loopback): every name the browser may ask besides the
    // blocked one fails here instead of leaving the machine.
    let fw = Fraudwall::start(
        "listen: [\"127.0.0.1:0\"]\n\
         resolver:\n  mode: forward\n  forwarders: [{address: \"127.0.0.1:9\"}]\n\
         blocklists:\n  dir: lists\n\
         sinkhole:\n  ipv4: 127.0.0.1\n\
         tls:\n  cert: tls/cert.pem\n  key: tls/key.pem\n\
         doh:\n  listen: [\"127.0.0.1:0\"]\n\
         warning_page:\n  listen: [\"127.0.0.1:0\"]\n",
        &[
            ("lists/fraud.txt", "fraudwall-demo.test\n"),
            ("tls/cert.pem", &p.cert),
            ("tls/key.pem", &p.key),
        ],
    );
    let doh = logged(&fw, "listening on doh ");
    let page = logged(&fw, "warning page listening on http ");
    let url = format!("http://{HOST}:{}/", page.port());

    // A HOME whose NSS database trusts the test CA (Chromium on Linux reads $HOME/.pki/nssdb).
    let trusting_home = tempfile::tempdir().unwrap();
    let nssdb = trusting_home.path().join(".pki/nssdb");
    std::fs::create_dir_all(&nssdb).unwrap();
    let db = format!("sql:{}", nssdb.display());
    for args in [
        vec!["-d", &db, "-N", "--empty-password"],
        vec!["-d", &db, "-A", "-t", "C,,", "-n", "fraudwall-test-ca"]
            .into_iter()
            .chain(["-i", p.ca.to_str().unwrap()])
            .collect(),
    ] {
        let out = Command::new(&certutil).args(&args).output().unwrap();
        assert!(out.status.success(), "certutil {args:?}: {out:?}");
    }
    let empty_home = tempfile::tempdir().unwrap();

    // One browser run: a fresh profile whose Local State sets DoH (the prefs behind
    // chrome://settings/security "Use secure DNS"), the DOM of `url` on stdout.
    let browse = |home: &Path, template: &str| -> String {
        let profile = tempfile::tempdir().unwrap();
        std::fs::write(
            profile.path().join("Local State"),
            format!(r#"{{"dns_over_https":{{"mode":"secure","templates":"{template}"}}}}"#),
        )
        .unwrap();
        let mut child = Command::new(&chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--no-proxy-server",
                "--dump-dom",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(&url)
            .env("HOME", home)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start chromium");
        let mut stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
            s
        });
        let deadline = Instant::now() + Duration::from_secs(90);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium did not finish within 90 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        reader.join().unwrap()
    };
    let events = || std::fs::read_to_string(fw.dir.path().join("events.jsonl")).unwrap_or_default();
    let good = format!("https://127.0.0.1:{}/dns-query", doh.port());

    // DoH broken for the browser: a path fraudwall does not serve (404), or a certificate it
    // does not trust. Secure mode must not fall back, so no page and no query reaches us.
    let wrong_path = format!("https://127.0.0.1:{}/not-dns-query", doh.port());
    for (what, home, template) in [
        (
            "a wrong DoH path",
            trusting_home.path(),
            wrong_path.as_str(),
        ),
        ("an untrusted CA", empty_home.path(), good.as_str()),
    ] {
        let dom = browse(home, template);
        assert!(
            !dom.contains("Blocked: suspected fraud site"),
            "the warning page loaded with {what}:\n{dom}"
        );
    }
    assert!(
        !events().contains(HOST),
        "blocked queries answered although DoH was unusable:\n{}",
        events()
    );

    let dom = browse(trusting_home.path(), &good);
    assert!(
        dom.contains("Blocked: suspected fraud site"),
        "Chromium did not land on the warning page:\n{dom}\n{}",
        fw.log()
    );
    assert!(
        dom.contains(HOST),
        "the page names the blocked host:\n{dom}"
    );
    let title = dom
        .split("<title>")
        .nth(1)
        .and_then(|t| t.split("</title>").next())
        .unwrap_or_default();
    assert!(
        title.contains("Blocked: suspected fraud site") && !title.contains("&lt;"),
        "the tab title shows markup: {title:?}"
    );
    // The browser's own query, answered over DoH: the event names the transport.
    wait_for_events(
        &fw,
        &[&format!(
            "\"qname\":\"{HOST}\",\"qtype\":\"A\",\"action\":\"sinkhole\""
        )],
    );
    let ev = events();
    for line in ev.lines().filter(|l| l.contains(HOST)) {
        assert!(
            line.contains("\"protocol\":\"https\""),
            "not over DoH: {line}"
        );
    }
}
