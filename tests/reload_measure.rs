//! Measures a live reload of a 200 000-name list (ignored by default; numbers, not assertions
//! about timing):
//!
//! ```text
//! cargo test --release --test reload_measure -- --ignored --nocapture
//! ```
//!
//! Prints, per reload, the time from the rename of the new file into the list directory to the
//! first answer that enforces it, the server's own `lists reloaded … in X ms`, VmRSS at steady
//! state and VmHWM (peak, reset before the reloads via /proc/PID/clear_refs) during the reloads,
//! and the queries sent/answered by a 1 kqps UDP loop running throughout. The only assertion is
//! that every query of that loop was answered.

mod common;

use std::collections::HashSet;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Fraudwall;

const HINTS: &str = ". 3600000 NS a.root.test.\na.root.test. 3600000 A 127.53.255.254\n";
const NAMES: usize = 200_000;

fn query(id: u16, name: &str) -> Vec<u8> {
    let mut q = vec![(id >> 8) as u8, id as u8, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for l in name.split('.') {
        q.push(l.len() as u8);
        q.extend_from_slice(l.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// (id, blocked: NOERROR with an answer) of a response.
fn parse(r: &[u8]) -> Option<(u16, bool)> {
    if r.len() < 12 {
        return None;
    }
    let id = u16::from_be_bytes([r[0], r[1]]);
    let rcode = r[3] & 0xf;
    let an = u16::from_be_bytes([r[6], r[7]]);
    Some((id, rcode == 0 && an > 0))
}

fn status(pid: &str, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn pid(fw: &Fraudwall) -> String {
    let needle = fw
        .dir
        .path()
        .join("fraudwall.yaml")
        .to_string_lossy()
        .into_owned();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&needle) {
            return e.file_name().to_string_lossy().into_owned();
        }
    }
    panic!("fraudwall process not found");
}

fn big_list(extra: &str) -> String {
    let mut s = String::with_capacity(NAMES * 28);
    for i in 0..NAMES {
        s.push_str(&format!("shop{i}.scam{}.test\n", i % 997));
    }
    s.push_str(extra);
    s
}

#[test]
#[ignore = "measurement: run with --release --ignored --nocapture"]
fn reload_200k_names_under_query_load() {
    let config = "listen: [\"127.0.0.1:0\"]\n\
         resolver:\n  root_hints: root.hints\n  allow_private_servers: true\n  dnssec: off\n  \
         timeout_ms: 800\n  server_timeout_ms: 200\n\
         log:\n  level: info\n\
         blocklists:\n  dir: lists\n";
    let fw = Fraudwall::start(
        config,
        &[
            ("root.hints", HINTS),
            ("lists/big.txt", &big_list("")),
            ("lists/small.txt", "steady.test\n"),
        ],
    );
    let pid = pid(&fw);
    let dir = fw.dir.path().join("lists");

    // The load: 1 query per ms for a blocked name, every answer checked.
    let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
    sock.connect(fw.addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(Mutex::new(HashSet::<u16>::new()));
    let answered = Arc::new(Mutex::new((0u64, 0u64))); // (blocked answers, other answers)
    let target = Arc::new(Mutex::new(None::<(String, Instant, u16)>));
    let enforced = Arc::new(Mutex::new(None::<Instant>));
    let rx = {
        let (sock, stop, sent, answered) =
            (sock.clone(), stop.clone(), sent.clone(), answered.clone());
        let (target, enforced) = (target.clone(), enforced.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !stop.load(Ordering::Relaxed) || !sent.lock().unwrap().is_empty() {
                let Ok(n) = sock.recv(&mut buf) else {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    continue;
                };
                let Some((id, blocked)) = parse(&buf[..n]) else {
                    continue;
                };
                if id >= 0xf000 {
                    // A probe for the newly added name.
                    if blocked && target.lock().unwrap().is_some() {
                        enforced.lock().unwrap().get_or_insert(Instant::now());
                    }
                    continue;
                }
                sent.lock().unwrap().remove(&id);
                let mut a = answered.lock().unwrap();
                if blocked { a.0 += 1 } else { a.1 += 1 }
            }
        })
    };
    let tx = {
        let (sock, stop, sent, target) = (sock.clone(), stop.clone(), sent.clone(), target.clone());
        std::thread::spawn(move || {
            let mut id: u16 = 0;
            let mut total = 0u64;
            let mut next_probe = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                id = (id + 1) % 0xf000;
                sent.lock().unwrap().insert(id);
                let _ = sock.send(&query(id, "shop12345.scam381.test"));
                total += 1;
                if Instant::now() >= next_probe {
                    if let Some((name, _, probe)) = target.lock().unwrap().as_mut() {
                        *probe = probe.wrapping_add(1).max(0xf000);
                        let _ = sock.send(&query(*probe, name));
                    }
                    next_probe = Instant::now() + Duration::from_millis(5);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            total
        })
    };

    std::thread::sleep(Duration::from_secs(1));
    println!(
        "steady state: VmRSS {} kB, VmHWM since start {} kB",
        status(&pid, "VmRSS:"),
        status(&pid, "VmHWM:")
    );
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
    println!("VmHWM reset to {} kB", status(&pid, "VmHWM:"));

    for round in 0..5 {
        let name = format!("new{round}.dropped.test");
        let body = big_list(&format!("{name}\n"));
        std::fs::write(dir.join(".big.txt.tmp"), &body).unwrap();
        *enforced.lock().unwrap() = None;
        let t0 = Instant::now();
        *target.lock().unwrap() = Some((name.clone(), t0, 0xf000));
        std::fs::rename(dir.join(".big.txt.tmp"), dir.join("big.txt")).unwrap();
        let deadline = t0 + Duration::from_secs(30);
        let at = loop {
            if let Some(at) = *enforced.lock().unwrap() {
                break at;
            }
            assert!(Instant::now() < deadline, "not enforced:\n{}", fw.log());
            std::thread::sleep(Duration::from_millis(2));
        };
        *target.lock().unwrap() = None;
        println!(
            "round {round}: dropped → enforced in {} ms; VmRSS {} kB, VmHWM {} kB",
            at.duration_since(t0).as_millis(),
            status(&pid, "VmRSS:"),
            status(&pid, "VmHWM:")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    stop.store(true, Ordering::Relaxed);
    let total = tx.join().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    rx.join().unwrap();
    let (blocked, other) = *answered.lock().unwrap();
    let lost = sent.lock().unwrap().len();
    for l in fw.log().lines().filter(|l| {
        l.contains("lists reloaded") || l.contains("compiled ") || l.contains("merged ")
    }) {
        println!("server: {}", l.split("fraudwall::").nth(1).unwrap_or(l));
    }
    println!(
        "query loop: {total} sent, {blocked} answered blocked, {other} answered otherwise, {lost} unanswered"
    );
    println!(
        "after: VmRSS {} kB, VmHWM {} kB",
        status(&pid, "VmRSS:"),
        status(&pid, "VmHWM:")
    );
    assert_eq!((other, lost), (0, 0), "queries failed during reloads");
}
