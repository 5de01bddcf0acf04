//! No file, packet or visitor can take fraudwall down, fill its disk, or switch blocking off
//! silently: the real binary, real sockets, and (where a crash must be provoked) the
//! failpoints that debug builds read from `FRAUDWALL_FAILPOINTS`. Nothing here needs recursion:
//! the root hints point at a dead loopback address.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Fraudwall, dig, fraudwall::bin};

const HINTS: &str = ". 3600000 NS a.root.test.\na.root.test. 3600000 A 127.53.255.254\n";
const DEADLINE: Duration = Duration::from_secs(20);

/// The config of a fraudwall that needs no upstream; `extra` is appended at the top level.
fn config(extra: &str) -> String {
    format!(
        "listen: [\"127.0.0.1:0\"]\n\
         resolver:\n  root_hints: root.hints\n  allow_private_servers: true\n  dnssec: off\n  \
         timeout_ms: 800\n  server_timeout_ms: 200\n{extra}"
    )
}

fn start(extra: &str, files: &[(&str, &str)], env: &[(&str, &str)]) -> Fraudwall {
    let mut all = vec![("root.hints", HINTS)];
    all.extend_from_slice(files);
    Fraudwall::start_env(&config(extra), &all, env)
}

fn blocked(fw: &Fraudwall, name: &str) -> bool {
    dig(fw.addr, &[name, "A", "+time=2", "+tries=1"])
        .ede_codes()
        .contains(&15)
}

fn wait_for(fw: &Fraudwall, what: &str, cond: impl FnMut() -> bool) {
    fw.wait_for(what, DEADLINE, cond);
}

fn wait_log(fw: &Fraudwall, needle: &str) {
    wait_for(fw, &format!("log line {needle:?}"), || {
        fw.log().contains(needle)
    });
}

fn sighup(fw: &Fraudwall) {
    // SAFETY: kill with our own child's pid.
    unsafe { libc::kill(fw.pid() as i32, libc::SIGHUP) };
}

/// One plain HTTP/1.1 request; the status code and the body.
fn http(addr: SocketAddr, from: Option<IpAddr>, request: &str) -> std::io::Result<(u16, String)> {
    let mut s = connect_from(addr, from)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(request.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    Ok((status, body))
}

/// A TCP connection from a chosen loopback address (every 127/8 address is ours on Linux).
fn connect_from(addr: SocketAddr, from: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let Some(from) = from else {
        return TcpStream::connect_timeout(&addr, Duration::from_secs(5));
    };
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    s.bind(&SocketAddr::new(from, 0).into())?;
    s.connect_timeout(&addr.into(), Duration::from_secs(5))?;
    Ok(s.into())
}

/// The value of one metric series from a scrape of `/metrics`, 0 when absent.
fn metric(metrics: SocketAddr, series: &str) -> f64 {
    let (_, body) = http(
        metrics,
        None,
        "GET /metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

const METRICS: &str = "metrics:\n  listen: \"127.0.0.1:0\"\n";

fn metrics_addr(fw: &Fraudwall) -> SocketAddr {
    fw.logged_addr("metrics listening on http ")
        .expect("metrics endpoint logged")
}

#[test]
fn a_reload_pass_that_panics_is_replaced_and_sighup_keeps_working() {
    let fw = start(
        &format!("blocklists:\n  dir: lists\n  watch: off\n{METRICS}"),
        &[("lists/a.txt", "first.test\n")],
        &[("FRAUDWALL_FAILPOINTS", "reload-panic:1")],
    );
    assert!(blocked(&fw, "first.test"));
    std::fs::write(fw.dir.path().join("lists/a.txt"), "second.test\n").unwrap();
    sighup(&fw);
    wait_log(&fw, "list reload pass panicked (failpoint reload-panic)");
    assert!(blocked(&fw, "first.test"), "the lists being served stay");
    let restarts = "fraudwall_task_restarts_total{task=\"reload\"}";
    assert_eq!(metric(metrics_addr(&fw), restarts), 1.0);
    sighup(&fw);
    wait_for(&fw, "second.test to be blocked", || {
        blocked(&fw, "second.test")
    });
    assert!(!blocked(&fw, "first.test"));
}

#[test]
fn a_udp_worker_that_panics_is_replaced() {
    let fw = start(
        &format!("server:\n  udp_workers: 1\nblocklists:\n  dir: lists\n{METRICS}"),
        &[("lists/a.txt", "fraud.test\n")],
        &[("FRAUDWALL_FAILPOINTS", "udp-worker-panic:1")],
    );
    // The first datagram kills the only worker; without a replacement nothing more is read.
    let first = dig(fw.addr, &["fraud.test", "A", "+time=1", "+tries=1"]);
    assert!(first.ede_codes().is_empty(), "{first:?}");
    wait_log(
        &fw,
        "UDP worker udp-0 panicked (failpoint udp-worker-panic)",
    );
    assert!(blocked(&fw, "fraud.test"), "{}", fw.log());
    let restarts = "fraudwall_task_restarts_total{task=\"udp\"}";
    assert_eq!(metric(metrics_addr(&fw), restarts), 1.0);
}

/// Runs `fraudwall serve` expecting it to refuse to start; its exit code and log.
fn serve_fails(dir: &Path, yaml: &str) -> (i32, String) {
    std::fs::write(dir.join("root.hints"), HINTS).unwrap();
    let cfg = dir.join("fraudwall.yaml");
    std::fs::write(
        &cfg,
        format!("{yaml}metrics:\n  listen: null\nwarning_page:\n  listen: []\n"),
    )
    .unwrap();
    let mut child = Command::new(bin())
        .args(["serve", "--config"])
        .arg(&cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let end = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code().unwrap_or(-1);
        }
        if Instant::now() > end {
            // Still serving: the failure this test is about.
            let _ = child.kill();
            let _ = child.wait();
            break -1;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut log = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut log);
    (status, log)
}

/// A state directory that cannot be used (a file where its folder should be: root ignores
/// permissions, but not that) and no earlier compiled list: serving would mean serving
/// unfiltered DNS, so fraudwall refuses to start and says why, unless told that is intended.
#[test]
fn no_list_loaded_is_a_start_error_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("lists")).unwrap();
    std::fs::write(d.join("lists/a.txt"), "fraud.test\n").unwrap();
    std::fs::write(d.join("in-the-way"), "").unwrap();
    let yaml = config("blocklists:\n  dir: lists\n  state_dir: in-the-way/state\n");
    let (code, log) = serve_fails(d, &yaml);
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains("no blocklist could be loaded") && log.contains("in-the-way/state"),
        "{log}"
    );

    // Said to be intended: it serves, says so, and is not ready.
    let fw = start(
        &format!(
            "blocklists:\n  dir: lists\n  state_dir: in-the-way/state\n  allow_empty: true\n{METRICS}"
        ),
        &[("lists/a.txt", "fraud.test\n"), ("in-the-way", "")],
        &[],
    );
    assert!(
        fw.log().contains("serving without any list"),
        "{}",
        fw.log()
    );
    assert!(!blocked(&fw, "fraud.test"));
    let (status, body) = http(
        metrics_addr(&fw),
        None,
        "GET /ready HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(
        (status, body.as_str()),
        (503, "not ready: no lists loaded\n")
    );
}

/// The state directory goes bad after a good run: the last compiled list keeps serving.
#[test]
fn an_unusable_state_directory_falls_back_to_the_last_compiled_list() {
    let extra = format!("blocklists:\n  dir: lists\n{METRICS}");
    let fw = start(&extra, &[("lists/a.txt", "fraud.test\n")], &[]);
    assert!(blocked(&fw, "fraud.test"));
    let (status, _) = http(
        metrics_addr(&fw),
        None,
        "GET /ready HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(status, 200);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Keep the state, then break it: its cache folder becomes a file.
    let copy = |from: &Path, to: &Path| {
        let ok = Command::new("cp")
            .arg("-a")
            .arg(from)
            .arg(to)
            .status()
            .unwrap()
            .success();
        assert!(ok);
    };
    copy(&fw.dir.path().join("lists"), &d.join("lists"));
    drop(fw);
    let state = d.join("lists/.fraudwall");
    std::fs::remove_dir_all(state.join("cache")).unwrap();
    std::fs::write(state.join("cache"), "").unwrap();
    std::fs::write(d.join("root.hints"), HINTS).unwrap();
    let fw = Fraudwall::start(
        &config(&format!(
            "blocklists:\n  dir: {}\n{METRICS}",
            d.join("lists").display()
        )),
        &[("root.hints", HINTS)],
    );
    assert!(blocked(&fw, "fraud.test"), "{}", fw.log());
    assert!(
        fw.log().contains("serving the last compiled lists"),
        "{}",
        fw.log()
    );
    wait_log(&fw, "lists are not reloaded");
}

/// Over TCP the access list applies when a connection is accepted: an outsider's connection is
/// closed before a byte is read, not answered. And no client keeps more connections than its
/// cap.
#[test]
fn tcp_access_and_connection_caps_apply_at_accept() {
    let fw = start(
        &format!(
            "access:\n  allow: [127.0.0.1/32]\nserver:\n  tcp_max_per_client: 2\n\
             blocklists:\n  dir: lists\n{METRICS}"
        ),
        &[("lists/a.txt", "fraud.test\n")],
        &[],
    );
    let query = {
        let mut q = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x05fraud\x04test\x00\x00\x01\x00\x01");
        let mut framed = (q.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&q);
        framed
    };
    // Whether a connection from `from` is answered; false when it is closed unanswered.
    let answered = |s: &mut TcpStream| {
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        if s.write_all(&query).is_err() {
            return false;
        }
        let mut len = [0u8; 2];
        s.read_exact(&mut len).is_ok()
    };
    let outsider = Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));
    let mut s = connect_from(fw.addr, outsider).unwrap();
    assert!(
        !answered(&mut s),
        "an outsider's connection is closed, not answered"
    );
    let mut one = connect_from(fw.addr, None).unwrap();
    let mut two = connect_from(fw.addr, None).unwrap();
    assert!(answered(&mut one) && answered(&mut two));
    let mut three = connect_from(fw.addr, None).unwrap();
    assert!(!answered(&mut three), "a third connection is over the cap");
    drop(one);
    std::thread::sleep(Duration::from_millis(200));
    let mut again = connect_from(fw.addr, None).unwrap();
    assert!(
        answered(&mut again),
        "a place is given back when a connection ends"
    );
    let m = metrics_addr(&fw);
    assert_eq!(
        metric(m, "fraudwall_tcp_refused_total{reason=\"acl\"}"),
        1.0
    );
    assert_eq!(
        metric(m, "fraudwall_tcp_refused_total{reason=\"client_limit\"}"),
        1.0
    );
}

fn raise_fd_limit() {
    let lim = libc::rlimit {
        rlim_cur: 65_536,
        rlim_max: 65_536,
    };
    // SAFETY: setrlimit with a valid struct; failing leaves the limit as it was.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
}

/// 1,100 clients, each from its own address, open a report and send its body a byte at a
/// time: a new visitor still gets the warning page at once, and however many reports arrive
/// the reports file stays under its cap.
#[test]
fn slow_report_posts_cannot_lock_out_visitors_or_fill_the_disk() {
    raise_fd_limit();
    let fw = start(
        &format!(
            "blocklists:\n  dir: lists\nwarning_page:\n  listen: [\"127.0.0.1:0\"]\n  \
             reports_max_bytes: 8192\n  reports_keep: 2\n  body_timeout_secs: 3\n{METRICS}"
        ),
        &[("lists/a.txt", "fraud.test\n")],
        &[],
    );
    let page = fw
        .logged_addr("warning page listening on http ")
        .expect("page address logged");
    let addr = |i: usize| IpAddr::V4(Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250 + 1) as u8));
    let mut slow = Vec::new();
    for i in 0..1100 {
        let mut s = connect_from(page, Some(addr(i))).unwrap();
        let _ = s.write_all(
            b"POST /.fraudwall/report HTTP/1.1\r\nHost: www.fraud.test\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 200\r\n\r\nho",
        );
        slow.push(s);
    }
    // A visitor, while all of them hang on: the page, within a second.
    let started = Instant::now();
    let mut visitor = connect_from(page, Some(IpAddr::V4(Ipv4Addr::new(127, 9, 9, 9)))).unwrap();
    visitor
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    visitor
        .write_all(b"GET / HTTP/1.1\r\nHost: www.fraud.test\r\nAccept: text/html\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut head = String::new();
    BufReader::new(&visitor)
        .read_line(&mut head)
        .expect("the visitor gets an answer within a second");
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(slow);

    // Many complete reports, one per address (the per-client rate limit is 5 a minute).
    for i in 0..400 {
        let body = format!("host=www.fraud.test&reason=report+number+{i}+of+many");
        let req = format!(
            "POST /.fraudwall/report HTTP/1.1\r\nHost: www.fraud.test\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        http(page, Some(addr(1100 + i)), &req).unwrap();
    }
    let reports = fw.dir.path().join("reports.jsonl");
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    assert!(
        size(&reports) > 0 && size(&reports) <= 8192,
        "{}",
        size(&reports)
    );
    let rotated = |i: usize| fw.dir.path().join(format!("reports.jsonl.{i}"));
    assert!(size(&rotated(1)) > 0 && size(&rotated(1)) <= 8192);
    assert!(size(&rotated(2)) > 0 && size(&rotated(2)) <= 8192);
    assert!(
        !rotated(3).exists(),
        "only reports_keep rotated files are kept"
    );
}

/// A local HTTP server for remote lists: answers every request with the current status,
/// content type and body.
fn list_server(state: Arc<Mutex<(String, String)>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let (ctype, body) = state.lock().unwrap().clone();
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

fn sha256(body: &str) -> String {
    let out = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(body.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8_lossy(&out.stdout)[..64].to_string()
}

/// A captive portal's HTML served with 200, or a download that is not the pinned one, never
/// replaces a list: the last good copy keeps blocking.
#[test]
fn remote_html_pages_and_pin_mismatches_never_replace_a_list() {
    let html = Arc::new(Mutex::new((
        "text/plain".to_string(),
        "one.test\n".to_string(),
    )));
    let pinned = Arc::new(Mutex::new((
        "text/plain".to_string(),
        "pinned.test\n".to_string(),
    )));
    let (a, b) = (list_server(html.clone()), list_server(pinned.clone()));
    let fw = start(
        &format!(
            "blocklists:\n  dir: lists\n  lists:\n    - file: portal.txt\n      url: http://{a}/l\n      \
             allow_http: true\n      interval: 1s\n    - file: pinned.txt\n      url: http://{b}/l\n      \
             allow_http: true\n      interval: 1s\n      sha256: {}\n",
            sha256("pinned.test\n")
        ),
        &[],
        &[],
    );
    assert!(blocked(&fw, "one.test") && blocked(&fw, "pinned.test"));
    // Words of the page would be names; a page without the HTML content type is caught too.
    *html.lock().unwrap() = (
        "text/plain".into(),
        "<!DOCTYPE html>\n<html>\nlogin.example\n</html>\n".into(),
    );
    *pinned.lock().unwrap() = ("text/plain".into(), "other.test\n".into());
    wait_log(&fw, "the server sent an HTML page, not a list");
    wait_log(&fw, "the list's sha256 pin says");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(blocked(&fw, "one.test") && blocked(&fw, "pinned.test"));
    assert!(!blocked(&fw, "other.test"));
}

fn uid_of(user: &str) -> Option<u32> {
    let out = Command::new("id").args(["-u", user]).output().ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// Started as root with `server.user`, fraudwall binds its sockets, then runs as that user:
/// every thread, for good; and it still loads and reloads its lists.
#[test]
fn root_is_given_up_once_the_sockets_are_bound() {
    use std::os::unix::fs::{PermissionsExt, chown};
    // SAFETY: a plain getter.
    if unsafe { libc::geteuid() } != 0 {
        common::skip(
            "root_is_given_up_once_the_sockets_are_bound",
            "not running as root",
        );
        return;
    }
    let uid = uid_of("nobody").expect("Debian has the user nobody");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir(d.join("lists")).unwrap();
    std::fs::write(d.join("lists/a.txt"), "fraud.test\n").unwrap();
    std::fs::create_dir(d.join("state")).unwrap();
    chown(d.join("state"), Some(uid), None).unwrap();
    let fw = Fraudwall::start(
        &config(&format!(
            "server:\n  user: nobody\nblocklists:\n  dir: {}\n  state_dir: {}\n  watch: off\n\
             events:\n  target: {}\n",
            d.join("lists").display(),
            d.join("state").display(),
            d.join("state/blocked.jsonl").display()
        )),
        &[("root.hints", HINTS)],
    );
    assert!(fw.log().contains("switched to user nobody"), "{}", fw.log());
    let status = std::fs::read_to_string(format!("/proc/{}/status", fw.pid())).unwrap();
    let uids = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let want = format!("{uid}");
    assert!(
        uids.split_whitespace().skip(1).all(|u| u == want),
        "every uid is nobody's: {uids}"
    );
    for task in std::fs::read_dir(format!("/proc/{}/task", fw.pid())).unwrap() {
        let s = std::fs::read_to_string(task.unwrap().path().join("status")).unwrap();
        let line = s.lines().find(|l| l.starts_with("Uid:")).unwrap();
        assert!(line.split_whitespace().skip(1).all(|u| u == want), "{line}");
    }
    assert!(blocked(&fw, "fraud.test"));
    std::fs::write(d.join("lists/b.txt"), "later.test\n").unwrap();
    sighup(&fw);
    wait_for(&fw, "later.test to be blocked", || {
        blocked(&fw, "later.test")
    });
}

/// A listener on a port the kernel picked (`127.0.0.1:0`) does not share it: a client that
/// sets SO_REUSEPORT (dig does) cannot be given our port as its own source port. If it could,
/// a client connected to us from our own port would receive its query back instead of an
/// answer (seen once as a dig reply without QR, carrying dig's own cookie).
#[test]
fn a_picked_port_is_not_shared_with_reuseport_clients() {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let fw = start(
        "blocklists:\n  dir: lists\n",
        &[("lists/fraud.txt", "fraud.test\n")],
        &[],
    );
    let client = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    client.set_reuse_port(true).unwrap();
    let wildcard = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), fw.addr.port());
    let err = client
        .bind(&SockAddr::from(wildcard))
        .expect_err("a SO_REUSEPORT client could bind fraudwall's UDP port");
    assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE), "{err}");
    // And the listener still answers.
    assert_eq!(
        dig(fw.addr, &["version.test", "A", "+time=3"]).status,
        "SERVFAIL"
    );
}
