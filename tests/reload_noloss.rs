//! No query is lost and none sees a state that was never served, while a 50 000-name list is
//! swapped 20 times under a steady UDP load against the real binary: replaced by rename, and
//! every other time appended to in place (an analyst's `>>`, which the reloader compiles alone
//! and layers over the list until it merges them).
//!
//! Every name asked lives under `swap.test`, which a second list (`floor.txt`, action
//! `nxdomain`) blocks as a whole; the list being swapped (`swap.txt`, action `sinkhole`) names
//! some of them, and its most specific entry wins. So every answer is decided locally, with no
//! upstream, and says which version of `swap.txt` it was given from: a sinkhole address (listed)
//! or NXDOMAIN (not listed). Version `k` lists name `i` when `listed(i, k)`, plus a probe name of
//! its own; a version counts as enforced once its probe is answered with the sinkhole.
//!
//! A query sent at `s` and answered at `r` may be answered from any version that was live at some
//! instant of `[s, r]`: version `k` from its rename into the directory until version `k + 1` was
//! seen enforced. Anything else — SERVFAIL, a verdict no live version gives, a name of the steady
//! third list not blocked, no answer at all — fails the test.

mod common;

use std::collections::HashMap;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Fraudwall;

const NAMES: usize = 50_000;
const SWAPS: usize = 20;
/// The names the load asks for (a slice of the list whose membership changes between versions).
const ASKED: usize = 200;

/// Whether version `k` of `swap.txt` lists `n{i}.swap.test`. An even version lists about two
/// names in three, a different two in three each time (so no version shrinks past the shrink
/// guard); an odd version is the one before it with a quarter of the names it lacks appended.
fn listed(i: usize, k: usize) -> bool {
    let even = k - k % 2;
    !(i * 7 + even * 13).is_multiple_of(3) || (k % 2 == 1 && i % 4 == k % 4)
}

/// The whole file of version `k`.
fn version(k: usize) -> String {
    if k % 2 == 1 {
        return version(k - 1) + &appended(k);
    }
    let mut s = String::with_capacity(NAMES * 20);
    for i in 0..NAMES {
        if listed(i, k) {
            s.push_str(&format!("n{i}.swap.test\n"));
        }
    }
    s.push_str(&format!("probe{k}.swap.test\n"));
    s
}

/// What odd version `k` appends to the one before it.
fn appended(k: usize) -> String {
    let mut s = String::new();
    for i in 0..NAMES {
        if listed(i, k) && !listed(i, k - 1) {
            s.push_str(&format!("n{i}.swap.test\n"));
        }
    }
    s.push_str(&format!("probe{k}.swap.test\n"));
    s
}

fn query(id: u16, name: &str) -> Vec<u8> {
    let mut q = vec![(id >> 8) as u8, id as u8, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for l in name.split('.') {
        q.push(l.len() as u8);
        q.extend_from_slice(l.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Verdict {
    /// NOERROR with the sinkhole address: listed in `swap.txt` (or the steady list).
    Sinkhole,
    /// NXDOMAIN: only the floor list matched.
    Nxdomain,
    /// Anything else (SERVFAIL, REFUSED, an empty NOERROR, an unparsable packet).
    Other(u8),
}

fn verdict(r: &[u8]) -> (u16, Verdict) {
    if r.len() < 12 {
        return (0, Verdict::Other(255));
    }
    let id = u16::from_be_bytes([r[0], r[1]]);
    let rcode = r[3] & 0xf;
    let an = u16::from_be_bytes([r[6], r[7]]);
    let v = match (rcode, an) {
        (0, n) if n > 0 => Verdict::Sinkhole,
        (3, 0) => Verdict::Nxdomain,
        (rc, _) => Verdict::Other(rc),
    };
    (id, v)
}

/// What the load asked: which name (`Some(i)` for `n{i}.swap.test`, `None` for the steady
/// list's name), when it was sent, when and how it was answered.
struct Asked {
    name: Option<usize>,
    sent: Instant,
    answer: Option<(Instant, Verdict)>,
}

#[test]
fn fifty_thousand_names_swapped_twenty_times_lose_no_query_and_mix_no_versions() {
    let config = "listen: [\"127.0.0.1:0\"]\n\
         resolver:\n  mode: forward\n  forwarders:\n    - address: \"127.0.0.1:9\"\n\
         blocklists:\n  dir: lists\n  debounce_ms: 50\n  lists:\n    \
         - file: floor.txt\n      action: nxdomain\n    \
         - file: swap.txt\n      action: sinkhole\n    \
         - file: steady.txt\n      action: sinkhole\n";
    let first = version(0);
    let fw = Fraudwall::start(
        config,
        &[
            ("lists/floor.txt", "swap.test\n"),
            ("lists/swap.txt", &first),
            ("lists/steady.txt", "steady.example.test\n"),
        ],
    );
    let dir = fw.dir.path().join("lists");

    let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
    sock.connect(fw.addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let asked: Arc<Mutex<HashMap<u16, Asked>>> = Arc::default();
    // Probe answers: (version, when its probe was first answered with the sinkhole).
    let probe: Arc<Mutex<(usize, Option<Instant>)>> = Arc::new(Mutex::new((0, None)));
    let stop = Arc::new(AtomicBool::new(false));

    let receiver = {
        let (sock, asked, probe, stop) = (sock.clone(), asked.clone(), probe.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            let mut quiet_since = None::<Instant>;
            loop {
                let Ok(n) = sock.recv(&mut buf) else {
                    // Stopped, and nothing more for a second: the rest is lost.
                    if stop.load(Ordering::Relaxed) {
                        let since = *quiet_since.get_or_insert_with(Instant::now);
                        if since.elapsed() > Duration::from_secs(1) {
                            break;
                        }
                    }
                    continue;
                };
                quiet_since = None;
                let now = Instant::now();
                let (id, v) = verdict(&buf[..n]);
                if id >= 0xf000 {
                    let mut p = probe.lock().unwrap();
                    if u16::try_from(p.0).unwrap() == id - 0xf000 && v == Verdict::Sinkhole {
                        p.1.get_or_insert(now);
                    }
                    continue;
                }
                if let Some(a) = asked.lock().unwrap().get_mut(&id) {
                    a.answer.get_or_insert((now, v));
                }
            }
        })
    };
    let sender = {
        let (sock, asked, probe, stop) = (sock.clone(), asked.clone(), probe.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut id: u16 = 0;
            while !stop.load(Ordering::Relaxed) && id < 0xf000 {
                // Every 8th query asks the steady list's name; the others walk the asked names.
                let name = (!id.is_multiple_of(8)).then_some(usize::from(id) * 37 % ASKED);
                let qname = match name {
                    Some(i) => format!("n{i}.swap.test"),
                    None => "www.steady.example.test".to_string(),
                };
                let sent = Instant::now();
                asked.lock().unwrap().insert(
                    id,
                    Asked {
                        name,
                        sent,
                        answer: None,
                    },
                );
                sock.send(&query(id, &qname)).unwrap();
                if id.is_multiple_of(4) {
                    let k = probe.lock().unwrap().0;
                    let pid = 0xf000 + u16::try_from(k).unwrap();
                    sock.send(&query(pid, &format!("probe{k}.swap.test")))
                        .unwrap();
                }
                id += 1;
                std::thread::sleep(Duration::from_micros(1500));
            }
        })
    };

    // Wait for version 0 to be served, then swap in versions 1..=SWAPS. `live[k]` is when
    // version k may first have been served, `enforced[k]` when it was seen served.
    let wait_enforced = |k: usize| -> Instant {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let (v, Some(at)) = *probe.lock().unwrap()
                && v == k
            {
                return at;
            }
            assert!(
                Instant::now() < deadline,
                "version {k} not enforced within 60 s:\n{}",
                fw.log()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    let mut live = vec![Instant::now()];
    let mut enforced = vec![wait_enforced(0)];
    for k in 1..=SWAPS {
        if k % 2 == 1 {
            let tail = appended(k);
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(dir.join("swap.txt"))
                .unwrap();
            *probe.lock().unwrap() = (k, None);
            live.push(Instant::now());
            std::io::Write::write_all(&mut f, tail.as_bytes()).unwrap();
            drop(f);
        } else {
            let body = version(k);
            std::fs::write(dir.join(".swap.txt.tmp"), &body).unwrap();
            // Probe for the new version from now on; the old one stays live until it is seen.
            *probe.lock().unwrap() = (k, None);
            live.push(Instant::now());
            std::fs::rename(dir.join(".swap.txt.tmp"), dir.join("swap.txt")).unwrap();
        }
        enforced.push(wait_enforced(k));
        // Some load on the new version alone before the next swap.
        std::thread::sleep(Duration::from_millis(150));
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    receiver.join().unwrap();

    // Version k is live from live[k] until enforced[k + 1] (the last one until the end).
    let far = Instant::now() + Duration::from_secs(3600);
    let window = |k: usize| (live[k], enforced.get(k + 1).copied().unwrap_or(far));
    let asked = asked.lock().unwrap();
    let (mut lost, mut wrong) = (Vec::new(), Vec::new());
    let mut by_version = vec![0usize; SWAPS + 1];
    for (id, a) in asked.iter() {
        let Some((at, v)) = a.answer else {
            lost.push(*id);
            continue;
        };
        let Some(i) = a.name else {
            if v != Verdict::Sinkhole {
                wrong.push(format!("id {id}: steady name answered {v:?}"));
            }
            continue;
        };
        let candidates: Vec<usize> = (0..=SWAPS)
            .filter(|&k| {
                let (from, until) = window(k);
                from <= at && a.sent <= until
            })
            .collect();
        let fits = |k: &usize| {
            let want = if listed(i, *k) {
                Verdict::Sinkhole
            } else {
                Verdict::Nxdomain
            };
            v == want
        };
        match candidates.iter().find(|k| fits(k)) {
            Some(&k) => by_version[k] += 1,
            None => wrong.push(format!(
                "id {id}: n{i}.swap.test answered {v:?}; live versions {candidates:?} say {:?}",
                candidates.iter().map(|&k| listed(i, k)).collect::<Vec<_>>()
            )),
        }
    }
    let total = asked.len();
    let log = fw.log();
    println!(
        "{} layered updates, {} merges",
        log.matches("lists updated: ").count(),
        log.matches("lists reloaded: ").count()
    );
    println!(
        "{total} queries, {} lost, {} wrong; answered per version {by_version:?}",
        lost.len(),
        wrong.len()
    );
    assert!(
        total > 2000,
        "the load sent too few queries ({total}) to mean anything"
    );
    assert!(lost.is_empty(), "{} queries lost: {:?}", lost.len(), lost);
    assert!(
        wrong.is_empty(),
        "{} answers from no live version:\n{}",
        wrong.len(),
        wrong[..wrong.len().min(20)].join("\n")
    );
    // The swaps really happened: every version answered some of the load.
    assert!(
        by_version.iter().all(|&n| n > 0),
        "a version answered nothing: {by_version:?}"
    );
}
