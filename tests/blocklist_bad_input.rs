//! Bad input never panics: each case gives a clear error or warning with its location.

use std::path::{Path, PathBuf};

use fraudwall::blocklist::{Blocklist, Error, ListSpec, Severity, compile, source};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/lists/bad")
        .join(name)
}

fn parse(name: &str) -> source::Parsed {
    source::parse(&fixture(name), None).unwrap()
}

#[test]
fn binary_file_is_an_error_for_that_file() {
    let err = source::parse(&fixture("binary.gz"), None).unwrap_err();
    assert!(
        matches!(err, Error::BinaryList { offset: 3, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("binary.gz: byte 3: binary data") && msg.contains("decompress"),
        "{msg}"
    );
}

#[test]
fn empty_file_warns() {
    let p = parse("empty.txt");
    assert!(p.entries.is_empty());
    assert_eq!(p.diagnostics.len(), 1);
    assert_eq!(p.diagnostics[0].severity, Severity::Warning);
    assert!(
        p.diagnostics[0]
            .to_string()
            .ends_with("empty.txt: warning: file is empty; no entries loaded")
    );
}

#[test]
fn comments_only_file_warns() {
    let p = parse("comments-only.txt");
    assert!(p.entries.is_empty());
    assert!(p.diagnostics[0].to_string().ends_with(
        "comments-only.txt: warning: no entries (only comments, blank lines and directives)"
    ));
}

#[test]
fn invalid_utf8_line_is_rejected_others_kept() {
    let p = parse("invalid-utf8.txt");
    let names: Vec<_> = p.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["utf8-ok.test", "utf8-ok-two.test"]);
    assert!(
        p.diagnostics[0]
            .to_string()
            .ends_with("invalid-utf8.txt:2: invalid UTF-8 at byte 5 of the line")
    );
}

#[test]
fn megabyte_line_is_rejected_others_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long-line.txt");
    let mut data = b"before.test\n".to_vec();
    data.extend(std::iter::repeat_n(b'a', 1 << 20));
    data.extend_from_slice(b"\nafter.test\n");
    std::fs::write(&path, &data).unwrap();
    let p = source::parse(&path, None).unwrap();
    assert_eq!(p.entries.len(), 2);
    let d = p.diagnostics[0].to_string();
    assert!(
        d.ends_with("long-line.txt:2: line is 1048576 bytes long (limit 4096)"),
        "{d}"
    );
}

#[test]
fn three_hundred_character_name_is_rejected_at_compile() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.fst");
    let r = compile(&out, &[ListSpec::from_path(&fixture("long-name.txt"))]).unwrap();
    let d = r.lists[0].diagnostics[0].to_string();
    assert!(
        d.contains("long-name.txt:3: name of 300 bytes (limit 253): \"aaaa"),
        "{d}"
    );
    assert!(d.len() < 300, "the message shortens the name: {d}");
    let bl = Blocklist::open(&out).unwrap();
    assert!(bl.lookup("long-ok.test").is_some());
}

#[test]
fn unreadable_list_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.fst");
    let specs = [
        ListSpec::from_path(&fixture("missing.txt")),
        ListSpec::from_path(&fixture("binary.gz")),
        ListSpec::from_path(&fixture("long-name.txt")),
        ListSpec::from_path(dir.path()),
    ];
    let r = compile(&out, &specs).unwrap();
    let failed: Vec<_> = r.failed.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        failed,
        [
            "missing",
            "binary",
            dir.path().file_stem().unwrap().to_str().unwrap()
        ]
    );
    assert!(
        r.failed[0]
            .error
            .to_string()
            .contains("missing.txt: cannot read list")
    );
    let bl = Blocklist::open(&out).unwrap();
    assert_eq!(bl.lists().len(), 1);
    assert_eq!(bl.lookup("long-ok.test").unwrap().list, 0);
}

#[test]
fn damaged_compiled_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.fst");
    compile(&out, &[ListSpec::from_path(&fixture("long-name.txt"))]).unwrap();
    let good = std::fs::read(&out).unwrap();
    let bad = dir.path().join("bad.fst");
    let open = |bytes: &[u8]| {
        std::fs::write(&bad, bytes).unwrap();
        Blocklist::open(&bad).unwrap_err()
    };

    let mut b = good.clone();
    b[0] = b'X';
    assert!(matches!(open(&b), Error::BadMagic { .. }));
    let mut b = good.clone();
    b[4] = 9;
    assert!(matches!(
        open(&b),
        Error::Version {
            found: 9,
            expected: 3,
            ..
        }
    ));
    // A shard directory that lies, under a checksum that matches it.
    let table_len = u32::from_le_bytes(good[8..12].try_into().unwrap()) as usize;
    let dir_at = 24 + table_len;
    let resum = |mut b: Vec<u8>| {
        let crc = crc32fast::hash(&b[24..]);
        b[12..16].copy_from_slice(&crc.to_le_bytes());
        b
    };
    let mut b = good.clone();
    b[dir_at..dir_at + 4].copy_from_slice(&17u32.to_le_bytes());
    let e = open(&resum(b));
    assert!(e.to_string().contains("claims 17 shards"), "{e}");
    let mut b = good.clone();
    b[dir_at + 12..dir_at + 20].copy_from_slice(&u64::MAX.to_le_bytes());
    let e = open(&resum(b));
    assert!(e.to_string().contains("runs past the end"), "{e}");
    let mut b = good.clone();
    let last = b.len() - 10;
    b[last] ^= 0xff;
    let e = open(&b);
    assert!(matches!(e, Error::Checksum { .. }), "{e:?}");
    assert!(e.to_string().contains("recompile"));
    assert!(matches!(
        open(&good[..good.len() - 1]),
        Error::Corrupt { .. }
    ));
    assert!(matches!(open(&good[..10]), Error::Corrupt { .. }));
    assert!(matches!(open(b""), Error::Corrupt { .. }));
    assert!(matches!(open(&[0u8; 4096]), Error::BadMagic { .. }));
    let e = Blocklist::open(&dir.path().join("nope.fst")).unwrap_err();
    assert!(matches!(e, Error::Open { .. }) && e.to_string().contains("fraudwall compile"));
    // The original still opens: compiled files are replaced, never edited.
    assert!(Blocklist::open(&out).is_ok());
}

#[test]
fn recompiling_replaces_the_file_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.fst");
    compile(&out, &[ListSpec::from_path(&fixture("long-name.txt"))]).unwrap();
    let old = Blocklist::open(&out).unwrap();
    compile(&out, &[ListSpec::from_path(&fixture("invalid-utf8.txt"))]).unwrap();
    // The old mapping still sees the old contents; the new file has the new ones.
    assert!(old.lookup("long-ok.test").is_some());
    let new = Blocklist::open(&out).unwrap();
    assert!(new.lookup("long-ok.test").is_none() && new.lookup("utf8-ok.test").is_some());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["out.fst"]);
}
