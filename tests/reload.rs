//! Live list reloads, end to end: the real `fraudwall serve`, files dropped into its list
//! directory the ways analysts and tools do it, and the real `dig` polling until the change is
//! enforced (deadlines, no fixed sleeps). Nothing here needs recursion: the root hints point at a
//! dead loopback address, so blocked names are answered from the blocklist alone and names that
//! are not blocked fail quickly.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Fraudwall, dig};

const HINTS: &str = ". 3600000 NS a.root.test.\na.root.test. 3600000 A 127.53.255.254\n";
const DEADLINE: Duration = Duration::from_secs(20);

/// A fraudwall that needs no upstream; `extra` is appended under `blocklists:`.
fn start(extra: &str, files: &[(&str, &str)]) -> Fraudwall {
    let config = format!(
        "listen: [\"127.0.0.1:0\"]\n\
         resolver:\n  root_hints: root.hints\n  allow_private_servers: true\n  dnssec: off\n  \
         timeout_ms: 800\n  server_timeout_ms: 200\n\
         blocklists:\n  dir: lists\n  debounce_ms: 200\n{extra}"
    );
    let mut all = vec![("root.hints", HINTS)];
    all.extend_from_slice(files);
    Fraudwall::start(&config, &all)
}

fn lists(fw: &Fraudwall) -> PathBuf {
    fw.dir.path().join("lists")
}

/// Blocked answers carry EDE 15 (Blocked); anything else (here SERVFAIL) is not blocked.
fn blocked(fw: &Fraudwall, name: &str) -> bool {
    dig(fw.addr, &[name, "A", "+time=3"])
        .ede_codes()
        .contains(&15)
}

fn wait_for(fw: &Fraudwall, what: &str, cond: impl FnMut() -> bool) {
    fw.wait_for(what, DEADLINE, cond);
}

fn wait_blocked(fw: &Fraudwall, name: &str) {
    wait_for(fw, &format!("{name} to be blocked"), || blocked(fw, name));
}

fn wait_unblocked(fw: &Fraudwall, name: &str) {
    wait_for(fw, &format!("{name} to be unblocked"), || {
        !blocked(fw, name)
    });
}

fn wait_log(fw: &Fraudwall, needle: &str) {
    wait_for(fw, &format!("log line {needle:?}"), || {
        fw.log().contains(needle)
    });
}

/// Writes through a hidden temporary file and a rename, as rsync and deploy tools do.
fn write_renamed(path: &Path, body: &[u8]) {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&tmp, body).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn names(prefix: &str, n: usize) -> String {
    (0..n)
        .map(|i| format!("{prefix}{i}.fraud.test\n"))
        .collect()
}

/// The pid of this test's fraudwall (the only process whose command line names its config).
fn pid(fw: &Fraudwall) -> String {
    let cfg = fw.dir.path().join("fraudwall.yaml");
    let needle = cfg.to_string_lossy().into_owned();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&needle) {
            return e.file_name().to_string_lossy().into_owned();
        }
    }
    panic!("fraudwall process not found");
}

fn sighup(fw: &Fraudwall) {
    let st = Command::new("kill")
        .args(["-HUP", &pid(fw)])
        .status()
        .unwrap();
    assert!(st.success());
}

fn count(fw: &Fraudwall, needle: &str) -> usize {
    fw.log().matches(needle).count()
}

#[test]
fn files_dropped_by_cp_rename_and_symlink_swap_are_enforced() {
    let fw = start("", &[("lists/base.txt", "base.test\nvictim-shop.test\n")]);
    let dir = lists(&fw);
    wait_blocked(&fw, "base.test");

    // cp from elsewhere (writes the file in place: create, write, close).
    let src = fw.dir.path().join("outside.txt");
    std::fs::write(&src, "copied.test\n").unwrap();
    let st = Command::new("cp")
        .arg(&src)
        .arg(dir.join("copied.txt"))
        .status()
        .unwrap();
    assert!(st.success());
    wait_blocked(&fw, "copied.test");

    // Write a hidden temp file, then rename it into place.
    write_renamed(&dir.join("renamed.txt"), b"renamed.test\n");
    wait_blocked(&fw, "renamed.test");

    // A deploy tool's symlink, then an atomic swap of the symlink to a new release.
    let rel = fw.dir.path().join("releases");
    std::fs::create_dir(&rel).unwrap();
    std::fs::write(rel.join("v1.txt"), "release-one.test\n").unwrap();
    std::fs::write(rel.join("v2.txt"), "release-two.test\n").unwrap();
    std::os::unix::fs::symlink(rel.join("v1.txt"), dir.join("current.txt")).unwrap();
    wait_blocked(&fw, "release-one.test");
    std::os::unix::fs::symlink(rel.join("v2.txt"), dir.join(".current.txt.new")).unwrap();
    std::fs::rename(dir.join(".current.txt.new"), dir.join("current.txt")).unwrap();
    wait_blocked(&fw, "release-two.test");
    wait_unblocked(&fw, "release-one.test");

    // Removing a file removes its list.
    std::fs::remove_file(dir.join("copied.txt")).unwrap();
    wait_unblocked(&fw, "copied.test");
    assert!(fw.log().contains("list removed: "), "{}", fw.log());

    // A false positive: an allowlist dropped in un-blocks the name, the rest stays blocked.
    write_renamed(&dir.join("allow-rollback.txt"), b"victim-shop.test\n");
    wait_unblocked(&fw, "victim-shop.test");
    assert!(blocked(&fw, "base.test"));

    // Editor and temp files are not lists.
    std::fs::write(dir.join(".base.txt.swp"), "swap-file.test\n").unwrap();
    std::fs::write(dir.join("base.txt~"), "backup-file.test\n").unwrap();
    std::fs::write(dir.join("partial.tmp"), "temp-file.test\n").unwrap();
    write_renamed(&dir.join("marker.txt"), b"marker.test\n");
    wait_blocked(&fw, "marker.test");
    for n in ["swap-file.test", "backup-file.test", "temp-file.test"] {
        assert!(!blocked(&fw, n), "{n} came from an ignored file");
    }
    assert!(fw.log().contains("lists reloaded: "), "{}", fw.log());
}

#[test]
fn broken_files_keep_the_previous_version_and_the_shrink_guard_holds() {
    let fw = start("", &[("lists/fraud.txt", &names("n", 100))]);
    let dir = lists(&fw);
    wait_blocked(&fw, "n50.fraud.test");

    // A binary file (e.g. a gzip saved under the list's name): refused, the old list serves.
    write_renamed(
        &dir.join("fraud.txt"),
        b"\x1f\x8b\x08\0\0\0\0\0\0\x03binary",
    );
    wait_log(&fw, "binary data");
    assert!(fw.log().contains("list not loaded: "), "{}", fw.log());
    assert!(blocked(&fw, "n50.fraud.test"));

    // A good version again (one more name) is taken.
    write_renamed(&dir.join("fraud.txt"), names("n", 101).as_bytes());
    wait_blocked(&fw, "n100.fraud.test");

    // Truncated to 10 % mid-line: refused by the shrink guard, the old entries keep serving.
    let mut cut = names("n", 10);
    cut.push_str("n10.fra");
    write_renamed(&dir.join("fraud.txt"), cut.as_bytes());
    wait_log(&fw, "list refused by shrink guard: ");
    assert!(blocked(&fw, "n50.fraud.test"));
    assert!(blocked(&fw, "n100.fraud.test"));

    // Forced by the operator: flag file + SIGHUP.
    std::fs::write(dir.join(".fraudwall/force"), "").unwrap();
    sighup(&fw);
    wait_unblocked(&fw, "n50.fraud.test");
    assert!(blocked(&fw, "n5.fraud.test"));
    assert!(fw.log().contains("shrink guard overridden"), "{}", fw.log());
}

#[test]
fn a_compiled_fst_drop_is_verified_and_merged() {
    let fw = start("", &[("lists/text.txt", "text-list.test\n")]);
    let dir = lists(&fw);
    wait_blocked(&fw, "text-list.test");

    let ws = fw.dir.path().join("workstation");
    std::fs::create_dir(&ws).unwrap();
    std::fs::write(ws.join("compiled.txt"), "compiled-list.test\n").unwrap();
    let out = Command::new(common::fraudwall::bin())
        .arg("compile")
        .arg("-o")
        .arg(ws.join("drop.fst"))
        .arg(ws.join("compiled.txt"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let fst = std::fs::read(ws.join("drop.fst")).unwrap();

    // Half of it (an interrupted copy): the checksum fails, nothing changes.
    write_renamed(&dir.join("drop.fst"), &fst[..fst.len() / 2]);
    wait_log(&fw, "drop.fst: ");
    assert!(!blocked(&fw, "compiled-list.test"));

    // The whole file, by cp: enforced next to the text list.
    let st = Command::new("cp")
        .arg(ws.join("drop.fst"))
        .arg(dir.join("drop.fst"))
        .status()
        .unwrap();
    assert!(st.success());
    wait_blocked(&fw, "compiled-list.test");
    assert!(blocked(&fw, "text-list.test"));
}

#[test]
fn sighup_reloads_when_watching_is_off() {
    let fw = start("  watch: off\n", &[("lists/a.txt", "first.test\n")]);
    wait_blocked(&fw, "first.test");
    std::fs::write(lists(&fw).join("b.txt"), "second.test\n").unwrap();
    sighup(&fw);
    wait_blocked(&fw, "second.test");
    assert!(fw.log().contains("SIGHUP received"), "{}", fw.log());
}

#[test]
fn a_missing_directory_is_a_warning_and_is_watched_once_created() {
    // The state directory elsewhere, so that nothing creates the list directory for us; and
    // serving without a list said to be intended (without it fraudwall refuses to start).
    let fw = start("  state_dir: state\n  allow_empty: true\n", &[]);
    assert!(fw.log().contains("nothing is blocked"), "{}", fw.log());
    assert!(!lists(&fw).exists());
    let dir = lists(&fw);
    std::fs::create_dir(&dir).unwrap();
    write_renamed(&dir.join("late.txt"), b"late.test\n");
    wait_blocked(&fw, "late.test");
    // And a replaced directory is watched again.
    let next = fw.dir.path().join("lists.new");
    std::fs::create_dir(&next).unwrap();
    std::fs::write(next.join("late.txt"), "late.test\n").unwrap();
    std::fs::rename(&dir, fw.dir.path().join("lists.old")).unwrap();
    std::fs::rename(&next, &dir).unwrap();
    write_renamed(&dir.join("later.txt"), b"later.test\n");
    wait_blocked(&fw, "later.test");
    assert!(blocked(&fw, "late.test"));
}

#[test]
fn polling_mode_picks_up_changes() {
    let fw = start(
        "  watch: poll\n  poll_interval_ms: 200\n",
        &[("lists/a.txt", "polled-a.test\n")],
    );
    wait_blocked(&fw, "polled-a.test");
    write_renamed(&lists(&fw).join("b.txt"), b"polled-b.test\n");
    wait_blocked(&fw, "polled-b.test");
}

/// A list server on 127.0.0.1 that honours If-None-Match and can be told to fail.
#[derive(Default)]
struct ListServer {
    body: String,
    etag: String,
    fail: bool,
    /// (If-None-Match sent, status answered) per request.
    seen: Vec<(Option<String>, u16)>,
}

fn serve_lists(state: Arc<Mutex<ListServer>>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut inm = None;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.split_once(':')
                    && k.eq_ignore_ascii_case("if-none-match")
                {
                    inm = Some(v.trim().to_string());
                }
            }
            let mut s = state.lock().unwrap();
            let (status, body) = if s.fail {
                (500, String::new())
            } else if inm.as_deref() == Some(s.etag.as_str()) {
                (304, String::new())
            } else {
                (200, s.body.clone())
            };
            s.seen.push((inm, status));
            let reason = match status {
                200 => "OK",
                304 => "Not Modified",
                _ => "Internal Server Error",
            };
            let mut w = conn;
            let _ = write!(
                w,
                "HTTP/1.1 {status} {reason}\r\nETag: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                s.etag,
                if status == 304 { 0 } else { body.len() }
            );
        }
    });
    addr
}

#[test]
fn remote_lists_are_fetched_conditionally_and_survive_a_failing_server() {
    let state = Arc::new(Mutex::new(ListServer {
        body: "remote-one.test\n".into(),
        etag: "\"v1\"".into(),
        ..Default::default()
    }));
    let addr = serve_lists(state.clone());
    let fw = start(
        &format!(
            "  lists:\n    - file: remote.txt\n      url: http://{addr}/remote.txt\n      allow_http: true\n      interval: 1s\n"
        ),
        &[],
    );
    wait_blocked(&fw, "remote-one.test");
    wait_log(&fw, "remote list fetched: ");

    // The next checks are conditional and answered 304; nothing is reloaded for them.
    let reloads = count(&fw, "lists reloaded: ");
    wait_for(&fw, "two 304 answers", || {
        let s = state.lock().unwrap();
        s.seen
            .iter()
            .filter(|(inm, st)| inm.as_deref() == Some("\"v1\"") && *st == 304)
            .count()
            >= 2
    });
    assert_eq!(count(&fw, "lists reloaded: "), reloads, "{}", fw.log());
    assert_eq!(count(&fw, "remote list fetched: "), 1, "{}", fw.log());

    // A failing server: the last copy keeps serving.
    state.lock().unwrap().fail = true;
    let served = state.lock().unwrap().seen.len();
    wait_for(&fw, "a 500 answer", || {
        state.lock().unwrap().seen[served..]
            .iter()
            .any(|(_, st)| *st == 500)
    });
    wait_log(&fw, "remote list fetch failed: ");
    assert!(blocked(&fw, "remote-one.test"));

    // A new version on the server is fetched and enforced.
    {
        let mut s = state.lock().unwrap();
        s.fail = false;
        s.body = "remote-two.test\n".into();
        s.etag = "\"v2\"".into();
    }
    wait_blocked(&fw, "remote-two.test");
    wait_unblocked(&fw, "remote-one.test");
}

/// A file closed after writing (an analyst's `>>`) or renamed into the directory is read at
/// once: with a debounce and a poll far longer than the deadline, only the immediate path can
/// enforce these. The config is run from its own directory, so `blocklists.dir` stays relative
/// (the watcher must still recognise the absolute paths notify reports).
#[test]
fn appended_and_renamed_lists_are_enforced_without_the_debounce() {
    let config = "listen: [\"127.0.0.1:0\"]\n\
         resolver:\n  root_hints: root.hints\n  allow_private_servers: true\n  dnssec: off\n  \
         timeout_ms: 800\n  server_timeout_ms: 200\n\
         blocklists:\n  dir: lists\n  debounce_ms: 60000\n  poll_interval_ms: 600000\n\
         metrics:\n  listen: \"127.0.0.1:0\"\n";
    let fw = Fraudwall::start_relative(
        config,
        &[("root.hints", HINTS), ("lists/big.txt", &names("n", 5000))],
    );
    assert!(blocked(&fw, "n7.fraud.test"));
    assert!(
        fw.log().contains("watching ./lists for list changes"),
        "{}",
        fw.log()
    );
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(lists(&fw).join("big.txt"))
        .unwrap();
    std::io::Write::write_all(&mut f, b"appended.test\n").unwrap();
    drop(f);
    wait_blocked(&fw, "appended.test");
    wait_log(
        &fw,
        "compiled the lines appended to ./lists/big.txt: 1 entries",
    );
    // Served as the list and its append until the merge, merged after: one count either way.
    assert_eq!(fw.metric("fraudwall_list_entries{list=\"big\"}"), 5001.0);
    write_renamed(&lists(&fw).join("new.txt"), b"renamed-in.test\n");
    wait_blocked(&fw, "renamed-in.test");
    assert!(blocked(&fw, "n4999.fraud.test"));
}
