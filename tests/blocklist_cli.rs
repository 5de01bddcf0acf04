//! The `compile` and `check` helpers, through their printed output; then the list-hardening
//! scenarios of issue #14 on the real binary (`fraudwall compile`, `check`, `serve`).

mod common;

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
            "plain (plain, {p}): 6 entries, 0 skipped, 4 rejected, 1 warnings\n  {p}:8: "
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
    check_cmd(&bl, &names, &mut buf).unwrap();
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
        "feed: FAILED, not compiled: {}: no usable entry: read as plain, 4 lines gave no entry (4 rejected, 0 skipped); first: line 1: ",
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

/// A fraudwall that needs no upstream (names not blocked fail quickly), the shrink guard off;
/// `files` are written into its directory.
fn serve(files: &[(&str, &str)]) -> Fraudwall {
    const HINTS: &str = ". 3600000 NS a.root.test.\na.root.test. 3600000 A 127.53.255.254\n";
    let mut all = vec![("root.hints", HINTS)];
    all.extend_from_slice(files);
    Fraudwall::start(
        "listen: [\"127.0.0.1:0\"]\n\
         resolver:\n  root_hints: root.hints\n  allow_private_servers: true\n  dnssec: off\n  \
         timeout_ms: 800\n  server_timeout_ms: 200\n\
         blocklists:\n  dir: lists\n  debounce_ms: 200\n  max_shrink: 1\n",
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
