//! Bad input never panics: each case gives a clear error or warning with its location.
//!
//! The second half is about compiled files that may be hostile: crafted `.fst` files with valid
//! checksums, given to the real binary (`fraudwall check --fst`, and dropped into a running
//! server's list directory). Each must be refused with its reason; none may abort, panic, hang or
//! stop the server.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Fraudwall, dig};
use fraudwall::blocklist::{
    Action, Blocklist, Compiler, Error, Format, ListInfo, ListKind, ListSpec, MatchMode, Severity,
    compile, format::fst_checksum, source,
};

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
            expected: 4,
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

// ---------------------------------------------------------------------------------------------
// Crafted compiled files.

/// A list-table entry for the crafted files.
fn info(name: &str, kind: ListKind) -> ListInfo {
    ListInfo {
        name: name.into(),
        path: PathBuf::from(format!("{name}.txt")),
        kind,
        action: Action::Sinkhole,
        category: "fraud".into(),
        ede: 15,
        entries: 0,
        format: Format::Plain,
        match_mode: MatchMode::Subtree,
    }
}

/// A real compiled file (format 3, one shard) blocking `names`.
fn compiled(names: &[&str]) -> Vec<u8> {
    let mut c = Compiler::new();
    let l = c.add_list(info("fraud", ListKind::Block)).unwrap();
    for n in names {
        c.insert(l, n, ListKind::Block, MatchMode::Subtree, Action::Sinkhole)
            .unwrap();
    }
    c.to_bytes().unwrap()
}

fn table_len(file: &[u8]) -> usize {
    u32::from_le_bytes(file[8..12].try_into().unwrap()) as usize
}

/// Where the FST of a one-shard format 3 or 4 file starts: header, table, directory of one
/// shard (version 4 adds the alternates length, 0 here, after the shard lengths).
fn fst_start(file: &[u8]) -> usize {
    let version = u32::from_le_bytes(file[4..8].try_into().unwrap());
    let alternates = if version >= 4 { 8 } else { 0 };
    24 + table_len(file) + 4 + 8 + 8 + alternates
}

/// Rewrites the body checksum of a compiled file after an edit, as a careful attacker would.
fn resum(mut file: Vec<u8>) -> Vec<u8> {
    let crc = crc32fast::hash(&file[24..]);
    file[12..16].copy_from_slice(&crc.to_le_bytes());
    file
}

/// Rewrites the fst checksum at the end of the one-shard `file`, then the file's.
fn resum_fst(mut file: Vec<u8>) -> Vec<u8> {
    let n = file.len();
    let sum = fst_checksum(&file[fst_start(&file)..n - 4]);
    file[n - 4..].copy_from_slice(&sum.to_le_bytes());
    resum(file)
}

/// An FST assembled by hand: fst's version 3 header, `nodes` from byte 16 (the last byte is the
/// root node's), a footer claiming `keys` keys, and a valid checksum.
fn hand_fst(nodes: &[u8], keys: u64) -> Vec<u8> {
    let mut b = 3u64.to_le_bytes().to_vec();
    b.extend_from_slice(&0u64.to_le_bytes());
    b.extend_from_slice(nodes);
    let root = (b.len() - 1) as u64;
    b.extend_from_slice(&keys.to_le_bytes());
    b.extend_from_slice(&root.to_le_bytes());
    let sum = fst_checksum(&b);
    b.extend_from_slice(&sum.to_le_bytes());
    b
}

/// A format 3 file with the list table of a real one around `fst`, its directory claiming `names`.
fn wrap(fst: &[u8], names: u64) -> Vec<u8> {
    let real = compiled(&["base.test"]);
    let mut b = real[..24 + table_len(&real)].to_vec();
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&names.to_le_bytes());
    b.extend_from_slice(&(fst.len() as u64).to_le_bytes());
    b.extend_from_slice(fst);
    let data_len = (b.len() - 24 - table_len(&real)) as u64;
    b[16..24].copy_from_slice(&data_len.to_le_bytes());
    b[4..8].copy_from_slice(&3u32.to_le_bytes());
    resum(b)
}

/// The file of issue #14: a real compiled file whose shard directory claims 2^50 names.
fn claims_2_pow_50_names() -> Vec<u8> {
    let mut b = compiled(&["base.test", "shop.test", "bank-login.test"]);
    let at = 24 + table_len(&b) + 4;
    b[at..at + 8].copy_from_slice(&(1u64 << 50).to_le_bytes());
    resum(b)
}

/// A version 1 file (no directory: the name count comes from the FST) whose FST's footer claims
/// 2^50 keys.
fn v1_fst_claims_2_pow_50_keys() -> Vec<u8> {
    let real = compiled(&["base.test", "shop.test"]);
    let fst_at = fst_start(&real);
    let mut fst = real[fst_at..].to_vec();
    let n = fst.len();
    fst[n - 20..n - 12].copy_from_slice(&(1u64 << 50).to_le_bytes());
    let sum = fst_checksum(&fst[..n - 4]);
    fst[n - 4..].copy_from_slice(&sum.to_le_bytes());
    let mut b = real[..24 + table_len(&real)].to_vec();
    b.extend_from_slice(&fst);
    b[4..8].copy_from_slice(&1u32.to_le_bytes());
    b[16..24].copy_from_slice(&(fst.len() as u64).to_le_bytes());
    resum(b)
}

/// A real file whose FST's root address points far past its end.
fn root_past_the_end() -> Vec<u8> {
    let mut b = compiled(&["base.test", "shop.test"]);
    let n = b.len();
    b[n - 12..n - 4].copy_from_slice(&(1u64 << 40).to_le_bytes());
    resum_fst(b)
}

/// One node with one transition whose delta points 200 bytes before the first node.
fn transition_before_the_first_node() -> Vec<u8> {
    // fst's one-transition node, read backwards from its state byte: delta (1 byte), pack sizes
    // (transition 1 byte, no output), the input byte, the state (one transition, explicit input).
    let fst = hand_fst(&[200, 0x10, b'a', 0b10_000000], 1);
    wrap(&fst, 1)
}

/// A node whose transitions lead back to itself. fst computes where a node starts with unchecked
/// subtraction; a node claiming more output bytes than lie before it wraps that start around,
/// and an 8-byte delta from the wrapped start can land anywhere, the node itself included. A
/// stream of its keys then never ends.
fn transition_to_itself() -> Vec<u8> {
    // Any-transitions node at byte 400: 32 transitions, 8-byte deltas, 8-byte outputs. Below its
    // state byte: pack sizes, 32 inputs, 32 deltas, then 256 bytes of outputs, which would start
    // before byte 0: the node's start is 400 - 545, wrapped.
    const AT: usize = 400;
    let mut nodes = vec![0u8; AT + 1 - 16];
    let mut put =
        |at: usize, bytes: &[u8]| nodes[at - 16..at - 16 + bytes.len()].copy_from_slice(bytes);
    put(AT, &[32]); // state: not final, 32 transitions
    put(AT - 1, &[0x88]); // pack sizes: 8-byte deltas, 8-byte outputs
    for i in 0..32 {
        put(AT - 2 - i, &[b'a' + i as u8]); // inputs, transition 0 at the top
        let delta = 545u64.wrapping_neg(); // start (AT - 545) minus delta = AT
        put(AT - 1 - 32 - 8 * (i + 1), &delta.to_le_bytes());
    }
    wrap(&hand_fst(&nodes, 1), 1)
}

/// A real file whose node of more than 32 transitions (it has a 256-byte index) sends the byte
/// `q`, which has no transition, to the transition of `a`: a key stream never sees it, a lookup
/// of `q.bad.test` follows it to `a.bad.test`.
fn index_sends_q_to_a() -> Vec<u8> {
    let mut c = Compiler::new();
    let block = c.add_list(info("fraud", ListKind::Block)).unwrap();
    let allow = c.add_list(info("allowlist", ListKind::Allow)).unwrap();
    c.insert(
        allow,
        "bad.test",
        ListKind::Allow,
        MatchMode::Subtree,
        Action::Sinkhole,
    )
    .unwrap();
    let labels: Vec<u8> = (b'0'..=b'9')
        .chain(b'a'..=b'z')
        .filter(|&b| b != b'q')
        .collect();
    assert!(labels.len() > 32);
    for &l in &labels {
        let name = format!("{}.bad.test", l as char);
        c.insert(
            block,
            &name,
            ListKind::Block,
            MatchMode::Subtree,
            Action::Sinkhole,
        )
        .unwrap();
    }
    let mut b = c.to_bytes().unwrap();
    // The index: 256 bytes giving each present byte its transition number, 255 for the others.
    let want: Vec<u8> = (0..=255u8)
        .map(|x| labels.iter().position(|&l| l == x).map_or(255, |i| i as u8))
        .collect();
    let at = (fst_start(&b)..b.len() - 256)
        .find(|&i| b[i..i + 256] == want[..])
        .expect("the transition index");
    b[at + usize::from(b'q')] = b[at + usize::from(b'a')];
    resum_fst(b)
}

/// Sixty nodes of two transitions each, every one to the next: 2^60 keys of 60 bytes in about
/// 400 bytes, under a directory and a footer that both claim 5.
fn two_pow_60_keys() -> Vec<u8> {
    let mut nodes = Vec::new();
    let mut last = 0usize;
    for i in 0..60 {
        let first = 16 + nodes.len();
        // Deltas (1 byte each), inputs, pack sizes (1-byte deltas, no outputs), state (final
        // for the leaves, two transitions).
        let delta = if i == 0 { 0 } else { (first - last) as u8 };
        let state = if i == 0 { 0x42 } else { 0x02 };
        nodes.extend_from_slice(&[delta, delta, b'b', b'a', 0x10, state]);
        last = 16 + nodes.len() - 1;
    }
    wrap(&hand_fst(&nodes, 5), 5)
}

/// Runs `fraudwall check --fst FILE names…` for at most 30 s: (exit code, stdout, stderr);
/// the code is `None` when the process was killed or died of a signal.
fn check_fst(file: &Path, names: &[&str]) -> (Option<i32>, String, String) {
    let mut child = Command::new(common::fraudwall::bin())
        .args(["check", "--fst"])
        .arg(file)
        .args(names)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (mut out, mut err) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    match status {
        None => (None, out, format!("{err}\n(killed after 30 s)")),
        Some(st) => (st.code(), out, err),
    }
}

/// `check --fst` refuses the file with exit status 1 and a message giving `reason`: no abort, no
/// panic, no hang, and no verdict.
fn refused_by_check(name: &str, bytes: &[u8], reason: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    std::fs::write(&file, bytes).unwrap();
    let (code, out, err) = check_fst(&file, &["q.bad.test", "base.test"]);
    let said = format!("exit {code:?}\n--- stdout\n{out}\n--- stderr\n{err}");
    assert_eq!(code, Some(1), "{said}");
    assert!(out.is_empty(), "{said}");
    assert!(
        err.contains(&format!("{name}: corrupt blocklist: ")) && err.contains("recompile"),
        "{said}"
    );
    assert!(err.contains(reason), "want {reason:?}: {said}");
    assert!(!err.contains("panicked"), "{said}");
}

#[test]
fn check_refuses_a_directory_claiming_2_pow_50_names() {
    refused_by_check(
        "claims.fst",
        &claims_2_pow_50_names(),
        "shard directory claims 1125899906842624 names but the shards hold 3",
    );
}

#[test]
fn check_refuses_a_version_1_file_whose_fst_claims_2_pow_50_keys() {
    refused_by_check(
        "v1.fst",
        &v1_fst_claims_2_pow_50_keys(),
        "FST shard 0: holds 2 keys but its footer claims 1125899906842624",
    );
}

#[test]
fn check_refuses_a_root_address_past_the_end() {
    refused_by_check(
        "root.fst",
        &root_past_the_end(),
        "FST shard 0: root address 1099511627776, expected",
    );
}

#[test]
fn check_refuses_a_transition_before_the_first_node() {
    refused_by_check(
        "delta.fst",
        &transition_before_the_first_node(),
        "FST shard 0: node at byte 19: transition delta 200 points before the first node",
    );
}

#[test]
fn check_refuses_a_node_that_leads_back_to_itself() {
    refused_by_check(
        "cycle.fst",
        &transition_to_itself(),
        "FST shard 0: node at byte 400: outputs runs into the header",
    );
}

#[test]
fn check_refuses_a_transition_index_that_disagrees_with_the_transitions() {
    refused_by_check(
        "index.fst",
        &index_sends_q_to_a(),
        "the transition index sends byte 113, which has no transition, to transition",
    );
}

#[test]
fn check_refuses_2_pow_60_keys_in_400_bytes_without_enumerating_them() {
    let t = Instant::now();
    refused_by_check(
        "many.fst",
        &two_pow_60_keys(),
        "leads to more than 268435456 names",
    );
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
}

// ---------------------------------------------------------------------------------------------
// The same files given to a running server.

const HINTS: &str = ". 3600000 NS a.root.test.\na.root.test. 3600000 A 127.53.255.254\n";

/// A fraudwall that needs no upstream, its list directory `lists` (absolute or relative to its
/// own temporary directory).
fn serve(lists: &str, files: &[(&str, &str)]) -> Fraudwall {
    let config = format!(
        "listen: [\"127.0.0.1:0\"]\n\
         resolver:\n  root_hints: root.hints\n  allow_private_servers: true\n  dnssec: off\n  \
         timeout_ms: 800\n  server_timeout_ms: 200\n\
         blocklists:\n  dir: {lists}\n  debounce_ms: 200\n"
    );
    let mut all = vec![("root.hints", HINTS)];
    all.extend_from_slice(files);
    Fraudwall::start(&config, &all)
}

/// Blocked answers carry EDE 15 (Blocked); anything else (here SERVFAIL) is not blocked.
fn blocked(fw: &Fraudwall, name: &str) -> bool {
    dig(fw.addr, &[name, "A", "+time=3"])
        .ede_codes()
        .contains(&15)
}

fn wait_for(fw: &Fraudwall, what: &str, cond: impl FnMut() -> bool) {
    fw.wait_for(what, Duration::from_secs(20), cond);
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

#[test]
fn crafted_fst_drops_are_refused_and_the_previous_version_keeps_blocking() {
    let mut fw = serve("lists", &[("lists/base.txt", "base.test\n")]);
    let dir = fw.dir.path().join("lists");
    wait_for(&fw, "base.test to be blocked", || blocked(&fw, "base.test"));
    // A good compiled file first: the version that must survive the bad ones.
    write_renamed(&dir.join("drop.fst"), &compiled(&["compiled-list.test"]));
    wait_for(&fw, "compiled-list.test to be blocked", || {
        blocked(&fw, "compiled-list.test")
    });

    for (bytes, reason) in [
        (
            claims_2_pow_50_names(),
            "claims 1125899906842624 names but the shards hold 3",
        ),
        (
            v1_fst_claims_2_pow_50_keys(),
            "footer claims 1125899906842624",
        ),
        (root_past_the_end(), "root address 1099511627776"),
        (
            transition_before_the_first_node(),
            "transition delta 200 points before the first node",
        ),
        (
            transition_to_itself(),
            "node at byte 400: outputs runs into the header",
        ),
        (index_sends_q_to_a(), "the transition index sends byte 113"),
        (two_pow_60_keys(), "leads to more than 268435456 names"),
    ] {
        write_renamed(&dir.join("drop.fst"), &bytes);
        wait_for(&fw, &format!("the refusal {reason:?}"), || {
            fw.log().contains(reason)
        });
        assert!(fw.is_running(), "{}", fw.log());
        assert!(blocked(&fw, "compiled-list.test"), "{}", fw.log());
        assert!(blocked(&fw, "base.test"), "{}", fw.log());
        assert!(!blocked(&fw, "q.bad.test"), "{}", fw.log());
    }
    assert!(!fw.log().contains("panicked"), "{}", fw.log());
}

#[test]
fn a_crafted_fst_in_the_list_directory_at_start_does_not_stop_the_server() {
    // What made every restart abort while the file was there.
    let lists = tempfile::tempdir().unwrap();
    std::fs::write(lists.path().join("base.txt"), "base.test\n").unwrap();
    std::fs::write(lists.path().join("crafted.fst"), claims_2_pow_50_names()).unwrap();
    let mut fw = serve(&lists.path().display().to_string(), &[]);
    wait_for(&fw, "base.test to be blocked", || blocked(&fw, "base.test"));
    wait_for(&fw, "the refusal", || {
        fw.log()
            .contains("crafted.fst: corrupt blocklist: shard directory claims 1125899906842624")
    });
    assert!(fw.is_running(), "{}", fw.log());
}
