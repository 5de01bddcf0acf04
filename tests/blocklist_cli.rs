//! The `compile` and `check` helpers, through their printed output; then the list-hardening
//! scenarios of issue #14 on the real binary (`fraudwall compile`, `check`, `serve`).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::fraudwall::bin;
use common::{Fraudwall, dig};
use fraudwall::blocklist::cli::{check_cmd, compile_cmd};
use fraudwall::blocklist::{Blocklist, ListSpec};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/lists")
        .join(name)
}

#[test]
fn compile_prints_counts_diagnostics_and_failures() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lists.fst");
    let specs = [
        ListSpec::from_path(&fixture("plain.txt")),
        ListSpec::from_path(&fixture("missing.txt")),
    ];
    let mut buf = Vec::new();
    let r = compile_cmd(&out, &specs, &mut buf).unwrap();
    let text = String::from_utf8(buf).unwrap();
    let p = fixture("plain.txt").display().to_string();
    assert!(
        text.starts_with(&format!(
            "plain (plain, {p}): 6 entries, 0 skipped, 4 rejected, 0 refused, 1 warnings\n  {p}:8: "
        )),
        "{text}"
    );
    assert!(text.contains("missing: FAILED, not compiled: "), "{text}");
    assert!(
        text.contains(&format!("wrote {}: 1 lists, 6 names, ", out.display())),
        "{text}"
    );
    assert!(
        text.trim_end().ends_with("B/name), 1 lists failed"),
        "{text}"
    );
    assert_eq!(r.keys, 6);
}

#[test]
fn compile_caps_printed_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("noisy.txt");
    let body: String = (0..25).map(|i| format!("10.0.0.{i}\n")).collect();
    std::fs::write(&list, format!("ok.test\n{body}")).unwrap();
    let mut buf = Vec::new();
    compile_cmd(
        &dir.path().join("o.fst"),
        &[ListSpec::from_path(&list)],
        &mut buf,
    )
    .unwrap();
    let text = String::from_utf8(buf).unwrap();
    assert_eq!(text.matches("is an IP address").count(), 20, "{text}");
    assert!(text.contains("  … and 5 more\n"), "{text}");
}

#[test]
fn check_explains_each_verdict_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lists.fst");
    let specs = [
        ListSpec::from_path(&fixture("hosts.txt")),
        ListSpec::from_path(&fixture("policy.rpz")),
        ListSpec::from_path(&fixture("allowlist.txt")),
    ];
    compile_cmd(&out, &specs, &mut Vec::new()).unwrap();
    let bl = Blocklist::open(&out).unwrap();
    let names: Vec<String> = [
        "WWW.Hosts-Three.test.",
        "www.good.hosts-one.test",
        "a.rpz-sub.test",
        "rpz-local.test",
        "example.test",
        "bad..name",
    ]
    .map(String::from)
    .to_vec();
    let mut buf = Vec::new();
    check_cmd(&bl, &specs, &names, &mut buf).unwrap();
    let text = String::from_utf8(buf).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let hosts = fixture("hosts.txt").display().to_string();
    let rpz = fixture("policy.rpz").display().to_string();
    let allow = fixture("allowlist.txt").display().to_string();
    assert_eq!(
        lines,
        [
            format!(
                "WWW.Hosts-Three.test.: BLOCKED by hosts-three.test (subtree) in list \"hosts\" [block list, category fraud, action sinkhole, ede 15] at {hosts}:8"
            ),
            format!(
                "www.good.hosts-one.test: ALLOWED by good.hosts-one.test (subtree) in list \"allowlist\" [allow list, category fraud, action sinkhole, ede 15] at {allow}:3"
            ),
            format!(
                "a.rpz-sub.test: BLOCKED by rpz-sub.test (subtree) in list \"policy\" [block list, category fraud, action nxdomain, ede 15] at {rpz}:12"
            ),
            format!(
                "rpz-local.test: BLOCKED by rpz-local.test (exact) in list \"policy\" [block list, category fraud, action sinkhole, ede 15] at {rpz}:16"
            ),
            "example.test: not listed".to_string(),
            "bad..name: invalid name: empty label in \"bad..name\"".to_string(),
        ]
    );
}

// --- The real binary ---------------------------------------------------------------------

/// Runs `fraudwall ARGS`; (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(args)
        .output()
        .expect("run fraudwall");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `fraudwall check --fst FST NAMES`'s output.
fn check_fst(fst: &Path, names: &[&str]) -> String {
    let mut args = vec!["check", "--fst", s(fst)];
    args.extend_from_slice(names);
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "{out}{err}");
    out
}

/// Issue #14: an RPZ file with an unclosed `(` parsed in quadratic time, then compiled to 0
/// names with exit status 0. Now the record is reported at its line and the rest is read.
#[test]
fn rpz_with_an_unclosed_paren_reports_its_line_and_keeps_the_records_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let zone = dir.path().join("policy.rpz");
    let mut text =
        String::from("$ORIGIN rpz.example.\n@ SOA localhost. root.localhost. ( 1 3600\n");
    for i in 0..5000 {
        text.push_str(&format!("n{i}.fraud.test CNAME .\n"));
    }
    std::fs::write(&zone, text).unwrap();
    let fst = dir.path().join("out.fst");
    let (code, out, err) = run(&["compile", "-o", s(&fst), s(&zone)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("{}:2: unclosed `(`", zone.display())),
        "{out}"
    );
    assert!(
        out.contains(": 5000 entries, 0 skipped, 1 rejected"),
        "{out}"
    );
    let out = check_fst(&fst, &["n0.fraud.test", "n4999.fraud.test"]);
    assert_eq!(out.matches("BLOCKED").count(), 2, "{out}");
}

/// Issue #14: a list of which every line is rejected compiled to an empty list, exit status 0.
#[test]
fn compile_fails_for_a_list_with_lines_but_no_usable_entry() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("feed.txt");
    std::fs::write(
        &page,
        "<!DOCTYPE html>\n<html><body>\n<p>Service unavailable</p>\n</body></html>\n",
    )
    .unwrap();
    let good = dir.path().join("good.txt");
    std::fs::write(&good, "good-list.test\n").unwrap();
    let fst = dir.path().join("out.fst");
    let (code, out, err) = run(&["compile", "-o", s(&fst), s(&page), s(&good)]);
    assert_eq!(code, 1, "{out}{err}");
    let want = format!(
        "feed: FAILED, not compiled: {}: no usable entry: read as plain, 4 lines gave no entry (4 rejected, 0 skipped, 0 refused); first: line 1: ",
        page.display()
    );
    assert!(out.contains(&want), "{out}");
    assert!(out.contains("; line 2: invalid character '<'"), "{out}");
    // The other list was compiled all the same.
    assert!(check_fst(&fst, &["good-list.test"]).contains("BLOCKED"));

    // An empty list, or one of comments only, is a valid empty list.
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "# filled by the nightly job\n").unwrap();
    let (code, out, err) = run(&["compile", "-o", s(&fst), s(&empty), s(&good)]);
    assert_eq!(code, 0, "{out}{err}");
}

/// Issue #14: a list line `com` blocked every .com name, with only a warning.
#[test]
fn compile_refuses_public_suffixes_and_protected_names() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("feed.txt");
    std::fs::write(
        &list,
        "evil.test\ncom\npaypal.com\nlogin.paypal.com.evil.test\n",
    )
    .unwrap();
    let fst = dir.path().join("out.fst");
    let (code, out, err) = run(&["compile", "-o", s(&fst), s(&list)]);
    assert_eq!(code, 0, "{out}{err}");
    let p = list.display();
    assert!(out.contains("feed (plain, "), "{out}");
    assert!(
        out.contains(": 2 entries, 0 skipped, 0 rejected, 2 refused"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "  {p}:2: refused: \"com\" is a public suffix (ICANN section of the Public Suffix List)"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "  {p}:3: refused: \"paypal.com\" is a protected name (built-in protected names:"
        )),
        "{out}"
    );
    let out = check_fst(
        &fst,
        &[
            "www.example.com",
            "www.paypal.com",
            "www.evil.test",
            "login.paypal.com.evil.test",
        ],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "www.example.com: not listed", "{out}");
    assert_eq!(lines[1], "www.paypal.com: not listed", "{out}");
    assert!(lines[2].starts_with("www.evil.test: BLOCKED"), "{out}");
    assert!(
        lines[3].starts_with("login.paypal.com.evil.test: BLOCKED"),
        "{out}"
    );
}

/// `trusted: true`, `protected_names:` and `format: bind` in the config, and `check --config`
/// explaining a refusal: which list, line and why.
#[test]
fn config_trusted_lists_own_protected_names_and_check_explains_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("lists")).unwrap();
    std::fs::write(
        d.join("lists/feed.txt"),
        "evil.test\ncom\nlogin.bank.test\n",
    )
    .unwrap();
    std::fs::write(d.join("lists/tlds.txt"), "org\n").unwrap();
    // Not sniffed as BIND (the keyword alone on its line): only `format: bind` reads it.
    std::fs::write(
        d.join("lists/zones.list"),
        "zone\n\"cfg-zone.test\"\n{ type master; file \"null.zone.file\"; };\n",
    )
    .unwrap();
    std::fs::write(d.join("protected.txt"), "*.bank.test\n").unwrap();
    let cfg = d.join("fraudwall.yaml");
    std::fs::write(
        &cfg,
        "blocklists:\n  dir: lists\n  protected_names: protected.txt\n  lists:\n    \
         - file: tlds.txt\n      trusted: true\n    - file: zones.list\n      format: bind\n",
    )
    .unwrap();
    let (code, out, err) = run(&["config", "check", s(&cfg)]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = run(&[
        "check",
        "--config",
        s(&cfg),
        "www.example.com",
        "login.bank.test",
        "x.org",
        "www.cfg-zone.test",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let feed = d.join("lists/feed.txt");
    let lines: Vec<&str> = out.lines().collect();
    let want = [
        format!(
            "www.example.com: would be BLOCKED by com (subtree) in list \"feed\" at {}:2, but that entry was refused: \"com\" is a public suffix",
            feed.display()
        ),
        "www.example.com: not listed".to_string(),
        format!(
            "login.bank.test: would be BLOCKED by login.bank.test (subtree) in list \"feed\" at {}:3, but that entry was refused: \"login.bank.test\" is inside the protected \"*.bank.test\" ({}:1)",
            feed.display(),
            d.join("protected.txt").display()
        ),
        "login.bank.test: not listed".to_string(),
        "x.org: BLOCKED by org (subtree) in list \"tlds\"".to_string(),
        "www.cfg-zone.test: BLOCKED by cfg-zone.test (subtree) in list \"zones\"".to_string(),
    ];
    assert_eq!(lines.len(), want.len(), "{out}");
    for (got, want) in lines.iter().zip(&want) {
        assert!(
            got.starts_with(want.as_str()),
            "{got}\n  does not start with\n{want}"
        );
    }

    // A protected-names file that cannot be used fails `config check`, naming the key and line.
    std::fs::write(d.join("protected.txt"), "ok.test\nnot a name\n").unwrap();
    let (code, _, err) = run(&["config", "check", s(&cfg)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("blocklists.protected_names"), "{err}");
    assert!(err.contains("protected.txt:2: more than one name"), "{err}");
}

/// Issue #14: BIND `zone "name" { type master; file "…"; };` lists were all rejected.
#[test]
fn compile_reads_bind_null_zone_lists() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("blackhole.txt");
    std::fs::write(
        &list,
        "// null zones\nzone \"bind-a.test\" { type master; file \"null.zone.file\"; };\n\
         zone \"bind-b.test\" { type primary; file \"/etc/bind/db.empty\"; }; zone \"bind-c.test\" {\n\
           type master; /* any file */ file \"x\";\n};\n",
    )
    .unwrap();
    let fst = dir.path().join("out.fst");
    let (code, out, err) = run(&["compile", "-o", s(&fst), s(&list)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("blackhole (bind, "), "{out}");
    assert!(out.contains(": 3 entries, 0 skipped, 0 rejected"), "{out}");
    let out = check_fst(&fst, &["bind-a.test", "www.bind-b.test", "a.b.bind-c.test"]);
    assert_eq!(out.matches("BLOCKED").count(), 3, "{out}");
    assert_eq!(out.matches("(subtree)").count(), 3, "{out}");
}

/// A fraudwall that needs no upstream (names not blocked fail quickly), the shrink guard off,
/// metrics on a free port; `files` are written into its directory.
fn serve(files: &[(&str, &str)]) -> Fraudwall {
    const HINTS: &str = ". 3600000 NS a.root.test.\na.root.test. 3600000 A 127.53.255.254\n";
    let mut all = vec![("root.hints", HINTS)];
    all.extend_from_slice(files);
    Fraudwall::start(
        "listen: [\"127.0.0.1:0\"]\n\
         resolver:\n  root_hints: root.hints\n  allow_private_servers: true\n  dnssec: off\n  \
         timeout_ms: 800\n  server_timeout_ms: 200\n\
         blocklists:\n  dir: lists\n  debounce_ms: 200\n  max_shrink: 1\n\
         metrics:\n  listen: \"127.0.0.1:0\"\n",
        &all,
    )
}

/// Blocked answers carry EDE 15 (Blocked).
fn blocked(fw: &Fraudwall, name: &str) -> bool {
    dig(fw.addr, &[name, "A", "+time=3"])
        .ede_codes()
        .contains(&15)
}

fn wait(fw: &Fraudwall, what: &str, cond: impl Fn() -> bool) {
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}\n--- log\n{}", fw.log());
}

/// Replaces a list through a hidden temporary file and a rename, as deploy tools do.
fn replace_list(fw: &Fraudwall, name: &str, body: &str) {
    let dir = fw.dir.path().join("lists");
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, body).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

/// Issue #14: in `serve`, a list replaced by a version of which nothing is usable keeps its
/// previous version. The shrink guard, which used to be the only thing in the way, is off.
#[test]
fn serve_keeps_a_list_whose_new_version_has_no_usable_entry() {
    let fw = serve(&[("lists/fraud.txt", "kept-one.test\nkept-two.test\n")]);
    wait(&fw, "kept-one.test blocked", || {
        blocked(&fw, "kept-one.test")
    });

    // An error page saved under the list's name.
    replace_list(
        &fw,
        "fraud.txt",
        "<html>\n<body>Service unavailable</body>\n</html>\n",
    );
    wait(&fw, "the new version to be read", || {
        fw.log().contains("no usable entry") || !blocked(&fw, "kept-one.test")
    });
    let log = fw.log();
    assert!(
        blocked(&fw, "kept-one.test") && blocked(&fw, "www.kept-two.test"),
        "the previous version must keep serving\n{log}"
    );
    assert!(log.contains("list not loaded: "), "{log}");
    assert!(
        log.contains("first: line 1: invalid character '<'"),
        "{log}"
    );

    // A good version again is taken.
    replace_list(&fw, "fraud.txt", "kept-one.test\nnew-three.test\n");
    wait(&fw, "new-three.test blocked", || {
        blocked(&fw, "new-three.test")
    });
    assert!(!blocked(&fw, "kept-two.test"));
}

/// Issue #14 in `serve`: the `com` line is refused, logged with its line, counted in
/// `fraudwall_list_entries_refused_total`, and the rest of the list is enforced.
#[test]
fn serve_refuses_a_public_suffix_logs_and_counts_it() {
    let fw = serve(&[("lists/fraud.txt", "kept-one.test\ncom\n")]);
    wait(&fw, "kept-one.test blocked", || {
        blocked(&fw, "kept-one.test")
    });
    assert!(
        !blocked(&fw, "www.example.com"),
        "`com` must have been refused"
    );
    let log = fw.log();
    assert!(
        log.contains("fraud.txt:2: refused: \"com\" is a public suffix"),
        "{log}"
    );
    let metrics = metrics_text(&fw);
    assert!(
        metrics.contains("fraudwall_list_entries_refused_total{list=\"fraud\"} 1"),
        "{metrics}"
    );
}

/// The `/metrics` text of `fw` (its address from the `metrics listening on http` log line).
fn metrics_text(fw: &Fraudwall) -> String {
    let log = fw.log();
    let addr = log
        .split("metrics listening on http ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no metrics address in the log\n{log}"));
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        conn,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    conn.read_to_string(&mut body).unwrap();
    body
}
