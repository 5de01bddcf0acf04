//! dnstap end to end: the real binary writes Frame Streams to Debian's `fstrm_capture` (over a
//! unix socket and over TCP, with the bidirectional handshake, which `fstrm_capture` requires),
//! Debian's `dnstap-ldns` decodes what it captured, and `protoc --decode` with the schema of
//! github.com/dnstap/dnstap.pb (`tests/fixtures/dnstap.proto`) reads the `Policy` of a block,
//! which dnstap-ldns 0.2.1 predates. Unbound's dnstap of the same queries is read by the same
//! decoder. A stalled collector costs no answer (drops are counted); a restarted one gets
//! frames again.

mod common;

use std::{
    net::{SocketAddr, UdpSocket},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::{Fakenet, Fraudwall, Unbound, dig, fraudwall::spawn_owned, skip};
use fraudwall::dnstap::proto;
use prost::Message as _;

const BENIGN: &str = "www.example.net";
/// Listed (as `example.com`) in the list `police`; resolves to 198.18.0.25 when not blocked.
const BLOCKED: &str = "mail.example.com";

fn tools_missing(test: &str) -> bool {
    for tool in ["fstrm_capture", "dnstap-ldns", "protoc"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            skip(
                test,
                &format!("{tool} not installed (fstrm-bin, dnstap-ldns, protobuf-compiler)"),
            );
            return true;
        }
    }
    false
}

/// `fstrm_capture` writing what it receives to `file`.
struct Capture {
    child: Child,
    file: PathBuf,
}

enum Listen<'a> {
    Unix(&'a Path),
    Tcp(u16),
}

impl Capture {
    fn start(listen: Listen<'_>, file: &Path) -> Capture {
        let mut cmd = Command::new("fstrm_capture");
        cmd.args(["-t", "protobuf:dnstap.Dnstap", "-w"])
            .arg(file)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        match listen {
            Listen::Unix(p) => {
                let _ = std::fs::remove_file(p);
                cmd.arg("-u").arg(p);
            }
            Listen::Tcp(port) => {
                cmd.args(["-a", "127.0.0.1", "-p", &port.to_string()]);
            }
        }
        let child = spawn_owned(cmd).expect("spawn fstrm_capture");
        let cap = Capture {
            child,
            file: file.to_owned(),
        };
        // It is listening once it has opened its output file.
        wait_for(
            || cap.file.exists(),
            "fstrm_capture to open its output file",
        );
        cap
    }

    /// SIGTERM, wait: the file is complete (fstrm_capture writes STOP and closes it).
    fn stop(mut self) -> PathBuf {
        signal(self.child.id(), libc::SIGTERM);
        let _ = self.child.wait();
        self.file.clone()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        signal(self.child.id(), libc::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: a plain syscall on a child of ours.
    unsafe { libc::kill(pid as libc::pid_t, sig) };
}

fn wait_for(mut f: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stops fraudwall with SIGTERM and waits until it has exited (STOP, FINISH on the way out).
fn stop(fw: &mut Fraudwall) {
    signal(fw.pid(), libc::SIGTERM);
    wait_for(|| !fw.is_running(), "fraudwall to exit");
}

fn fraudwall_with(net: &Fakenet, dnstap: &str, extra: &str) -> Fraudwall {
    let cfg = format!(
        "listen: [\"127.0.0.1:0\"]\n\
         resolver:\n  root_hints: {}\n  trust_anchor: {}\n  allow_private_servers: true\n\
         blocklists:\n  dir: lists\n  lists:\n    - file: police.txt\n      name: police\n\
         sinkhole:\n  ipv4: 198.18.0.53\n\
         metrics:\n  listen: \"127.0.0.1:0\"\n\
         dnstap:\n{dnstap}{extra}",
        net.hints.display(),
        net.trust_anchor.display()
    );
    Fraudwall::start(&cfg, &[("lists/police.txt", "example.com\n")])
}

fn connected(fw: &Fraudwall) -> usize {
    fw.log().matches("dnstap: connected").count()
}

/// The data frames of a Frame Streams file (control frames skipped).
fn frames(file: &Path) -> Vec<Vec<u8>> {
    let b = std::fs::read(file).unwrap();
    let mut out = Vec::new();
    let mut at = 0;
    let u32_at = |at: usize| u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize;
    // A file still being written may end inside a frame: stop there.
    while at + 8 <= b.len() {
        let len = u32_at(at);
        if len == 0 {
            at += 8 + u32_at(at + 4);
        } else if at + 4 + len > b.len() {
            break;
        } else {
            out.push(b[at + 4..at + 4 + len].to_vec());
            at += 4 + len;
        }
    }
    out
}

/// One message as dnstap-ldns prints it (`-y`): type, protocol, client address, query name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    kind: String,
    protocol: String,
    address: String,
    qname: String,
}

fn dnstap_ldns(file: &Path) -> Vec<Seen> {
    let out = Command::new("dnstap-ldns")
        .arg("-y")
        .arg("-r")
        .arg(file)
        .output()
        .expect("run dnstap-ldns");
    assert!(out.status.success(), "dnstap-ldns: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    text.split("\n---")
        .filter(|doc| doc.contains("message:"))
        .map(|doc| {
            let field = |key: &str| {
                doc.lines()
                    .find_map(|l| l.trim().strip_prefix(key))
                    .unwrap_or_default()
                    .trim()
                    .trim_matches('"')
                    .to_owned()
            };
            let qname = doc
                .lines()
                .skip_while(|l| !l.contains(";; QUESTION SECTION:"))
                .nth(1)
                .and_then(|l| l.trim().strip_prefix(';'))
                .and_then(|l| l.split_whitespace().next())
                .unwrap_or_default()
                .trim_end_matches('.')
                .to_ascii_lowercase();
            // The first "type:" line is the envelope's (MESSAGE); the message's follows.
            let kind = doc
                .lines()
                .filter_map(|l| l.trim().strip_prefix("type: "))
                .find(|t| *t != "MESSAGE")
                .unwrap_or_default()
                .to_owned();
            Seen {
                kind,
                protocol: field("socket_protocol: "),
                address: field("query_address: "),
                qname,
            }
        })
        .collect()
}

/// The message types and names in dnstap-ldns's reading, for `qname`.
fn kinds_for(seen: &[Seen], qname: &str) -> Vec<String> {
    seen.iter()
        .filter(|s| s.qname == qname)
        .map(|s| s.kind.clone())
        .collect()
}

/// `protoc --decode=dnstap.Dnstap` of one payload, with the upstream schema.
fn protoc_decode(payload: &[u8]) -> String {
    use std::io::Write;
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut child = Command::new("protoc")
        .arg("--decode=dnstap.Dnstap")
        .arg(format!("-I{}", fixtures.display()))
        .arg("dnstap.proto")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run protoc");
    child.stdin.take().unwrap().write_all(payload).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "protoc: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn qname_of(m: &proto::Message) -> String {
    let msg = m
        .query_message
        .as_deref()
        .or(m.response_message.as_deref())
        .unwrap();
    let mut name = Vec::new();
    let mut at = 12;
    while msg[at] != 0 {
        let len = msg[at] as usize;
        name.push(String::from_utf8_lossy(&msg[at + 1..at + 1 + len]).to_ascii_lowercase());
        at += 1 + len;
    }
    name.join(".")
}

/// Over a unix socket: CLIENT_QUERY and CLIENT_RESPONSE of a benign and a blocked name, over
/// UDP and TCP, as dnstap-ldns reads them; the blocked pair carries the Policy (protoc reads
/// it with the upstream schema), the benign one none.
#[test]
fn queries_and_answers_reach_fstrm_capture_and_decode() {
    let test = "dnstap::queries_and_answers_reach_fstrm_capture_and_decode";
    if tools_missing(test) {
        return;
    }
    let net = Fakenet::shared();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("dnstap.sock");
    let cap = Capture::start(Listen::Unix(&sock), &dir.path().join("out.fstrm"));
    let mut fw = fraudwall_with(net, &format!("  socket: {}\n", sock.display()), "");
    wait_for(|| connected(&fw) == 1, "fraudwall to connect");
    let benign = dig(fw.addr, &[BENIGN, "A"]);
    assert_eq!(benign.answer_rdata("A"), ["198.18.1.3"], "{}", benign.raw);
    let blocked = dig(fw.addr, &[BLOCKED, "A"]);
    assert_eq!(
        blocked.answer_rdata("A"),
        ["198.18.0.53"],
        "{}",
        blocked.raw
    );
    let tcp = dig(fw.addr, &["+tcp", BENIGN, "A"]);
    assert_eq!(tcp.answer_rdata("A"), ["198.18.1.3"], "{}", tcp.raw);
    stop(&mut fw);
    assert!(
        fw.log().contains("dnstap: stopped"),
        "no FINISH after STOP:\n{}",
        fw.log()
    );
    let file = cap.stop();

    let seen = dnstap_ldns(&file);
    assert_eq!(seen.len(), 6, "{seen:#?}");
    for s in &seen {
        assert_eq!(s.address, "127.0.0.1", "{s:?}");
    }
    let kinds = |name, proto: &str| -> Vec<String> {
        seen.iter()
            .filter(|s| s.qname == name && s.protocol == proto)
            .map(|s| s.kind.clone())
            .collect()
    };
    assert_eq!(kinds(BENIGN, "UDP"), ["CLIENT_QUERY", "CLIENT_RESPONSE"]);
    assert_eq!(kinds(BLOCKED, "UDP"), ["CLIENT_QUERY", "CLIENT_RESPONSE"]);
    assert_eq!(kinds(BENIGN, "TCP"), ["CLIENT_QUERY", "CLIENT_RESPONSE"]);

    // The Policy, read by protoc with the upstream schema.
    let payloads = frames(&file);
    assert_eq!(payloads.len(), 6);
    for p in &payloads {
        let m = proto::Dnstap::decode(p.as_slice())
            .unwrap()
            .message
            .unwrap();
        let text = protoc_decode(p);
        if qname_of(&m) == BLOCKED {
            for want in [
                "policy {",
                "type: \"fraudwall\"",
                "rule: \"police:example.com\"",
                "action: LOCAL_DATA",
                "match: QNAME",
                "value: \"\\004mail\\007example\\003com\\000\"",
            ] {
                assert!(text.contains(want), "no {want} in\n{text}");
            }
        } else {
            assert!(!text.contains("policy"), "{text}");
        }
    }
}

/// Over TCP (`fstrm_capture -a -p`): the same handshake and messages.
#[test]
fn frames_flow_over_tcp_too() {
    let test = "dnstap::frames_flow_over_tcp_too";
    if tools_missing(test) {
        return;
    }
    let net = Fakenet::shared();
    let dir = tempfile::tempdir().unwrap();
    let port = common::unbound::free_port();
    let cap = Capture::start(Listen::Tcp(port), &dir.path().join("out.fstrm"));
    let mut fw = fraudwall_with(
        net,
        &format!("  tcp: \"127.0.0.1:{port}\"\n  messages: [client_response]\n"),
        "",
    );
    wait_for(|| connected(&fw) == 1, "fraudwall to connect");
    let r = dig(fw.addr, &[BLOCKED, "AAAA"]);
    assert_eq!(r.status, "NOERROR", "{}", r.raw);
    stop(&mut fw);
    let seen = dnstap_ldns(&cap.stop());
    assert_eq!(kinds_for(&seen, BLOCKED), ["CLIENT_RESPONSE"], "{seen:#?}");
}

/// The same questions to Unbound with its dnstap on, captured by the same fstrm_capture and
/// read by the same dnstap-ldns: the same message types for the same names.
#[test]
fn unbounds_dnstap_reads_the_same() {
    let test = "dnstap::unbounds_dnstap_reads_the_same";
    if tools_missing(test) {
        return;
    }
    let net = Fakenet::shared();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("unbound.sock");
    let ub_cap = Capture::start(Listen::Unix(&sock), &dir.path().join("unbound.fstrm"));
    let extra = format!(
        "dnstap:\n  dnstap-enable: yes\n  dnstap-bidirectional: yes\n  \
         dnstap-socket-path: \"{}\"\n  dnstap-send-identity: yes\n  \
         dnstap-log-client-query-messages: yes\n  dnstap-log-client-response-messages: yes\n",
        sock.display()
    );
    let ub = Unbound::start(net, Some(&extra));
    let fw_sock = dir.path().join("fw.sock");
    let fw_cap = Capture::start(Listen::Unix(&fw_sock), &dir.path().join("fw.fstrm"));
    let mut fw = fraudwall_with(net, &format!("  socket: {}\n", fw_sock.display()), "");
    wait_for(|| connected(&fw) == 1, "fraudwall to connect");
    for name in [BENIGN, "www.insecure.org"] {
        assert_eq!(ub.dig(&[name, "A"]).status, "NOERROR");
        assert_eq!(dig(fw.addr, &[name, "A"]).status, "NOERROR");
    }
    stop(&mut fw);
    // Unbound's worker threads hand messages to its dnstap thread, which writes on a timer and
    // drops what it holds when stopped; fstrm_capture buffers its file, so arrival cannot be
    // polled. Give it time (not a measurement: a generous wait for a flush).
    std::thread::sleep(Duration::from_secs(3));
    drop(ub);
    let ub_seen = dnstap_ldns(&ub_cap.stop());
    let fw_seen = dnstap_ldns(&fw_cap.stop());
    let summary = |seen: &[Seen]| {
        seen.iter()
            .filter(|s| !s.qname.is_empty())
            .map(|s| (s.kind.clone(), s.protocol.clone(), s.qname.clone()))
            .collect::<std::collections::BTreeSet<(String, String, String)>>()
    };
    assert_eq!(summary(&fw_seen).len(), 4, "{fw_seen:#?}");
    assert_eq!(summary(&fw_seen), summary(&ub_seen), "fraudwall vs Unbound");
}

/// fstrm_capture stopped (SIGSTOP) after the handshake: the socket fills, then the queue;
/// every query is still answered, and the lost messages are counted.
#[test]
fn a_stalled_collector_costs_no_answer() {
    let test = "dnstap::a_stalled_collector_costs_no_answer";
    if tools_missing(test) {
        return;
    }
    let net = Fakenet::shared();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("dnstap.sock");
    let cap = Capture::start(Listen::Unix(&sock), &dir.path().join("out.fstrm"));
    let fw = fraudwall_with(
        net,
        &format!("  socket: {}\n  queue: 64\n", sock.display()),
        "",
    );
    wait_for(|| connected(&fw) == 1, "fraudwall to connect");
    signal(cap.child.id(), libc::SIGSTOP);
    // Blocked names are answered without upstream: nothing but the tap could slow them.
    let n = answer_all(fw.addr, 5000);
    assert_eq!(n, 5000, "answers lost with the collector stalled");
    let dropped = fw.metric("fraudwall_dnstap_dropped_total");
    assert!(
        dropped > 0.0,
        "nothing dropped: the test did not stall the collector"
    );
    let sent = fw.metric("fraudwall_dnstap_sent_total");
    assert!(
        sent < 10_000.0,
        "sent {sent}: the collector was not stalled"
    );
}

/// Sends `n` blocked queries over UDP one after another; returns how many were answered
/// (each waits up to 2 s, with one retry).
fn answer_all(server: SocketAddr, n: usize) -> usize {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut answered = 0;
    let mut buf = [0u8; 512];
    for i in 0..n {
        let id = (i % 65536) as u16;
        let mut q = Vec::new();
        q.extend_from_slice(&id.to_be_bytes());
        q.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        for label in format!("n{i}.{BLOCKED}").split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        for _try in 0..2 {
            s.send_to(&q, server).unwrap();
            match s.recv(&mut buf) {
                Ok(len) if len >= 2 && buf[..2] == id.to_be_bytes() => {
                    answered += 1;
                    break;
                }
                _ => continue,
            }
        }
    }
    answered
}

/// The collector restarts: fraudwall notices, reconnects (with backoff) and frames flow to
/// the new one.
#[test]
fn a_restarted_collector_gets_frames_again() {
    let test = "dnstap::a_restarted_collector_gets_frames_again";
    if tools_missing(test) {
        return;
    }
    let net = Fakenet::shared();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("dnstap.sock");
    let first = Capture::start(Listen::Unix(&sock), &dir.path().join("first.fstrm"));
    let mut fw = fraudwall_with(net, &format!("  socket: {}\n", sock.display()), "");
    wait_for(|| connected(&fw) == 1, "fraudwall to connect");
    assert_eq!(dig(fw.addr, &["one.example.com", "A"]).status, "NOERROR");
    // Frames leave in batches, after the answer: the collector stops once they are written.
    wait_for(
        || fw.metric("fraudwall_dnstap_sent_total") >= 2.0,
        "the query's frames to be sent",
    );
    let first = dnstap_ldns(&first.stop());
    assert_eq!(
        kinds_for(&first, "one.example.com"),
        ["CLIENT_QUERY", "CLIENT_RESPONSE"]
    );
    let second = Capture::start(Listen::Unix(&sock), &dir.path().join("second.fstrm"));
    wait_for(|| connected(&fw) == 2, "fraudwall to reconnect");
    assert_eq!(dig(fw.addr, &["two.example.com", "A"]).status, "NOERROR");
    stop(&mut fw);
    let second = dnstap_ldns(&second.stop());
    assert_eq!(
        kinds_for(&second, "two.example.com"),
        ["CLIENT_QUERY", "CLIENT_RESPONSE"],
        "{second:#?}\n{}",
        fw.log()
    );
}

/// `fraudwall config check`: an unknown message type, and a section naming both targets, are
/// problems with their key and line; a good section passes.
#[test]
fn config_check_names_dnstap_problems_with_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let check = |yaml: &str| {
        let p = dir.path().join("f.yaml");
        std::fs::write(&p, yaml).unwrap();
        let out = Command::new(common::fraudwall::bin())
            .args(["config", "check"])
            .arg(&p)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = check(
        "listen: [\"127.0.0.1:5399\"]\ndnstap:\n  socket: /run/t.sock\n  \
         messages: [client_query, auth_response]\n",
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("line 4: dnstap.messages") && err.contains("auth_response"),
        "{err}"
    );
    let (code, err) = check(
        "listen: [\"127.0.0.1:5399\"]\ndnstap:\n  socket: /run/t.sock\n  tcp: \"127.0.0.1:6000\"\n",
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("line 2: dnstap") && err.contains("exactly one"),
        "{err}"
    );
    let (code, err) = check("listen: [\"127.0.0.1:5399\"]\ndnstap:\n  tcp: \"127.0.0.1:6000\"\n");
    assert_eq!(code, Some(0), "{err}");
}

/// DoT and DoH (`kdig +tls`, `kdig +https`) go through the same taps: protoc reads
/// `socket_protocol: DOT` and `DOH` (dnstap-ldns 0.2.1 predates both values).
#[test]
fn dot_and_doh_are_tapped_with_their_protocol() {
    let test = "dnstap::dot_and_doh_are_tapped_with_their_protocol";
    if tools_missing(test) {
        return;
    }
    let net = Fakenet::shared();
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "30", "-subj", "/CN=dns.fraudwall.test"])
        .args([
            "-addext",
            "subjectAltName=DNS:dns.fraudwall.test,IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(tls.join("key.pem"))
        .arg("-out")
        .arg(tls.join("cert.pem"))
        .output()
        .expect("run openssl");
    assert!(out.status.success(), "{out:?}");
    let sock = dir.path().join("dnstap.sock");
    let cap = Capture::start(Listen::Unix(&sock), &dir.path().join("out.fstrm"));
    let extra = format!(
        "tls:\n  cert: {0}/cert.pem\n  key: {0}/key.pem\n\
         dot:\n  listen: [\"127.0.0.1:0\"]\ndoh:\n  listen: [\"127.0.0.1:0\"]\n",
        tls.display()
    );
    let mut fw = fraudwall_with(net, &format!("  socket: {}\n", sock.display()), &extra);
    wait_for(|| connected(&fw) == 1, "fraudwall to connect");
    let dot = fw
        .logged_addr("listening on dot ")
        .expect("dot address logged");
    let doh = fw
        .logged_addr("listening on doh ")
        .expect("doh address logged");
    for (server, mode) in [(dot, "+tls"), (doh, "+https")] {
        let out = Command::new("kdig")
            .arg(format!("@{}", server.ip()))
            .args(["-p", &server.port().to_string(), mode])
            .arg(format!("+tls-ca={}", tls.join("cert.pem").display()))
            .args(["+tls-hostname=dns.fraudwall.test", "+time=5", "+retry=0"])
            .args([BLOCKED, "A"])
            .output()
            .expect("run kdig (knot-dnsutils)");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("198.18.0.53"), "{mode}: {text}");
    }
    stop(&mut fw);
    let protocols: Vec<(String, String)> = frames(&cap.stop())
        .iter()
        .map(|p| {
            let text = protoc_decode(p);
            let field = |k: &str| {
                text.lines()
                    .find_map(|l| l.trim().strip_prefix(k))
                    .unwrap_or_default()
                    .to_owned()
            };
            // protoc prints fields by number: the message (14) before the envelope's type (15).
            (field("type: "), field("socket_protocol: "))
        })
        .collect();
    let want = |t: &str, p: &str| (t.to_owned(), p.to_owned());
    assert_eq!(
        protocols,
        [
            want("CLIENT_QUERY", "DOT"),
            want("CLIENT_RESPONSE", "DOT"),
            want("CLIENT_QUERY", "DOH"),
            want("CLIENT_RESPONSE", "DOH"),
        ]
    );
}
