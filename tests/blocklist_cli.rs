//! The `compile` and `check` helpers, through their printed output.

use std::path::{Path, PathBuf};

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
