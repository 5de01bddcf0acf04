//! Writes the seed corpus of every fuzz target (`fuzz/seeds/<target>/`) from the repository's
//! list fixtures and sample lists. Ignored by default: the seeds are committed, and this runs
//! only when they should change (a new fixture, a new file format version):
//!
//! ```text
//! cargo test --test fuzz_seeds -- --ignored
//! ```
//!
//! Each seed's input layout is the one its target documents in `fuzz/fuzz_targets/`. Inputs that
//! once crashed a target are kept beside the generated seeds as `crash-*` and never regenerated.

use std::path::{Path, PathBuf};

use fraudwall::blocklist::{
    Action, Compiler, Format, ListInfo, ListKind, ListSpec, MatchMode, source,
};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, RecordType};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The list files seeds are made of: the fixtures and the sample lists, at most 4 KiB of each.
fn lists() -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut dirs = vec![
        root().join("tests/fixtures/lists"),
        root().join("blocklists"),
    ];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                let mut data = std::fs::read(&p).unwrap();
                data.truncate(4096);
                files.push((p, data));
            }
        }
    }
    files.sort();
    files
}

/// Replaces the generated seeds of `target` with `seeds` (named by index and what they are).
/// Other files there (`crash-*`: inputs that once crashed a target) are kept.
fn write(target: &str, seeds: &[(String, Vec<u8>)]) {
    let dir = root().join("fuzz/seeds").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(&dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        let generated = name.len() > 4
            && name.as_bytes()[..3].iter().all(u8::is_ascii_digit)
            && name.as_bytes()[3] == b'-';
        if generated {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
    for (i, (what, bytes)) in seeds.iter().enumerate() {
        let name: String = what
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        std::fs::write(dir.join(format!("{i:03}-{name}")), bytes).unwrap();
    }
}

fn wire(name: &str) -> Vec<u8> {
    let mut w = Vec::new();
    for l in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        w.push(l.len() as u8);
        w.extend_from_slice(l.as_bytes());
    }
    w.push(0);
    w
}

fn query(id: u16, name: &str, qtype: RecordType, edns: Option<(u16, bool)>) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if let Some((payload, dnssec_ok)) = edns {
        let mut e = Edns::new();
        e.set_max_payload(payload);
        e.set_dnssec_ok(dnssec_ok);
        m.edns = Some(e);
    }
    m.to_vec().unwrap()
}

fn packet_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    let mut add = |what: &str, control: u8, packet: Vec<u8>| {
        let mut s = vec![control];
        s.extend_from_slice(&packet);
        seeds.push((what.to_string(), s));
    };
    let names = [
        "fraud.test.",
        "WWW.Fraud.TEST.",
        "ok.fraud.test.",
        "exact.test.",
        "sub.exact.test.",
        "nx.test.",
        "drop.test.",
        "refused.test.",
        "nodata.test.",
        "log.test.",
        "www.example.com.",
        "use-application-dns.net.",
    ];
    for (i, name) in names.iter().enumerate() {
        let qtype = [RecordType::A, RecordType::AAAA, RecordType::TXT][i % 3];
        let edns = (i % 2 == 0).then_some((1232, i % 4 == 0));
        add(name, i as u8 & 7, query(i as u16, name, qtype, edns));
    }
    for upstream in 0..8u8 {
        let q = query(
            100 + u16::from(upstream),
            "miss.example.",
            RecordType::A,
            None,
        );
        add(&format!("upstream-{upstream}"), upstream, q.clone());
        add(&format!("upstream-{upstream}-tcp"), upstream | 8, q);
    }
    add(
        "large-udp",
        4,
        query(200, "big.example.", RecordType::TXT, Some((4096, false))),
    );
    add(
        "small-payload",
        4,
        query(201, "big.example.", RecordType::TXT, Some((100, false))),
    );
    add(
        "outside-acl",
        16,
        query(202, "fraud.test.", RecordType::A, None),
    );
    add("axfr", 0, query(203, "fraud.test.", RecordType::AXFR, None));
    add("any", 1, query(204, "www.example.", RecordType::ANY, None));
    let mut chaos = Message::new(205, MessageType::Query, OpCode::Query);
    let mut q = Query::query(Name::from_ascii("version.bind.").unwrap(), RecordType::TXT);
    q.set_query_class(DNSClass::CH);
    chaos.add_query(q);
    add("chaos", 0, chaos.to_vec().unwrap());
    // Raw, malformed or unusual packets.
    let header = |id: u8, flags: [u8; 2], qd: u8, ar: u8| {
        vec![0, id, flags[0], flags[1], 0, qd, 0, 0, 0, 0, 0, ar]
    };
    let question = |name: &str, qtype: u8| {
        let mut q = wire(name);
        q.extend_from_slice(&[0, qtype, 0, 1]);
        q
    };
    let mut p = header(1, [1, 0], 2, 0);
    p.extend(question("a.test", 1));
    p.extend(question("b.test", 1));
    add("two-questions", 0, p);
    let mut p = header(2, [1, 0], 1, 0);
    p.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
    add("compressed-qname", 0, p);
    let mut p = header(3, [0x81, 0x80], 1, 0);
    p.extend(question("fraud.test", 1));
    add("a-response", 0, p);
    let mut p = header(4, [0x20, 0], 1, 0);
    p.extend(question("fraud.test", 6));
    add("opcode-notify", 0, p);
    let mut p = header(5, [1, 0], 1, 1);
    p.extend(question("fraud.test", 1));
    p.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 1, 0, 0, 0, 0]);
    add("edns-version-1", 0, p);
    let mut p = header(6, [1, 0], 1, 1);
    p.extend(question("fraud.test", 1));
    p.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0x80, 0, 0, 12]);
    p.extend_from_slice(&[0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
    add("edns-cookie", 0, p);
    let mut p = header(7, [1, 0], 1, 0);
    p.extend(question("fraud.test", 1));
    p.truncate(p.len() - 3);
    add("truncated-question", 0, p);
    add("short-header", 0, vec![0, 8, 1, 0, 0]);
    add("empty", 0, Vec::new());
    seeds
}

/// A compiled file of `spec`'s list, or of several lists in `shards` shards.
fn compiled(specs: &[(ListSpec, Vec<u8>)], shards: usize) -> Option<Vec<u8>> {
    let mut c = Compiler::new();
    c.set_shards(shards);
    for (spec, data) in specs {
        c.add_source(spec, data).ok()?;
    }
    c.to_bytes().ok()
}

fn info(name: &str, kind: ListKind) -> ListInfo {
    ListInfo {
        name: name.into(),
        path: format!("{name}.txt").into(),
        kind,
        action: Action::Sinkhole,
        category: "fraud".into(),
        ede: 15,
        entries: 0,
        format: Format::Plain,
        match_mode: MatchMode::Subtree,
    }
}

fn fst_seed(flags: u8, file: &[u8], names: &[&str]) -> Vec<u8> {
    let mut s = vec![flags];
    s.extend_from_slice(&(file.len() as u16).to_le_bytes());
    s.extend_from_slice(file);
    for n in names {
        s.extend(wire(n));
    }
    s
}

fn fst_seeds(lists: &[(PathBuf, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    let probes = [
        "www.fraud-demo.test",
        "bad.test",
        "x.y.bad.test",
        "Example.COM",
        "zz",
        "a.b.c.d.e.f.g.h",
    ];
    for (path, data) in lists {
        let spec = ListSpec::from_path(path);
        let Some(file) = compiled(&[(spec.clone(), data.clone())], 1) else {
            continue;
        };
        // Names of the list itself, to hit the matching paths.
        let listed: Vec<String> = source::parse_bytes(data, path, None)
            .map(|p| p.entries.iter().take(8).map(|e| e.name.clone()).collect())
            .unwrap_or_default();
        let mut names: Vec<&str> = listed.iter().map(String::as_str).collect();
        names.extend_from_slice(&probes);
        let stem = path.file_name().unwrap().to_string_lossy();
        seeds.push((format!("{stem}"), fst_seed(0, &file, &names)));
        seeds.push((format!("{stem}-fix"), fst_seed(1, &file, &names)));
    }
    // Several lists in three shards, with one-label names copied into every shard.
    let mut c = Compiler::new();
    c.set_shards(3);
    let b = c.add_list(info("block", ListKind::Block)).unwrap();
    let a = c.add_list(info("allow", ListKind::Allow)).unwrap();
    for i in 0..40 {
        let name = format!("n{i}.shop{}.test", i % 7);
        c.insert(
            b,
            &name,
            ListKind::Block,
            MatchMode::Exact,
            Action::Nxdomain,
        )
        .unwrap();
    }
    for (list, name, kind) in [
        (b, "zz", ListKind::Block),
        (b, "bad.test", ListKind::Block),
        (a, "ok.bad.test", ListKind::Allow),
    ] {
        c.insert(list, name, kind, MatchMode::Subtree, Action::Sinkhole)
            .unwrap();
    }
    let file = c.to_bytes().unwrap();
    let names = ["n3.shop3.test", "x.ok.bad.test", "q.zz", "n9.shop2.test"];
    seeds.push(("three-shards".into(), fst_seed(1, &file, &names)));
    // Denser than its bytes: opens without the filter.
    let mut c = Compiler::new();
    let b = c.add_list(info("block", ListKind::Block)).unwrap();
    for i in 0..3000 {
        c.insert(
            b,
            &format!("{i}.bad.test"),
            ListKind::Block,
            MatchMode::Exact,
            Action::Sinkhole,
        )
        .unwrap();
    }
    let file = c.to_bytes().unwrap();
    seeds.push((
        "dense".into(),
        fst_seed(1, &file, &["2999.bad.test", "3000.bad.test", "bad.test"]),
    ));
    // A transition index (a node of more than 32 transitions).
    let mut c = Compiler::new();
    let b = c.add_list(info("block", ListKind::Block)).unwrap();
    for l in (b'0'..=b'9').chain(b'a'..=b'z') {
        let name = format!("{}.wide.test", l as char);
        c.insert(
            b,
            &name,
            ListKind::Block,
            MatchMode::Subtree,
            Action::Sinkhole,
        )
        .unwrap();
    }
    let file = c.to_bytes().unwrap();
    seeds.push((
        "indexed".into(),
        fst_seed(1, &file, &["q.wide.test", "Z.wide.test", "-.wide.test"]),
    ));
    // Version 1: no directory.
    let mut v1 = compiled(
        &[(
            ListSpec::from_path(Path::new("v1.txt")),
            b"old.test\n".to_vec(),
        )],
        1,
    )
    .unwrap();
    let table_len = u32::from_le_bytes(v1[8..12].try_into().unwrap()) as usize;
    let dir = 24 + table_len;
    // Version 1 has no directory: the shard count, name count, one shard length and (version
    // 4) the alternates length go.
    v1.drain(dir..dir + 28);
    v1[4..8].copy_from_slice(&1u32.to_le_bytes());
    let data_len = (v1.len() - dir) as u64;
    v1[16..24].copy_from_slice(&data_len.to_le_bytes());
    let crc = crc32fast::hash(&v1[24..]);
    v1[12..16].copy_from_slice(&crc.to_le_bytes());
    seeds.push(("version-1".into(), fst_seed(1, &v1, &["www.old.test"])));
    seeds
}

/// The compile_open target's format bits: an index into `Format::ALL`, 7 to sniff.
fn format_code(f: Option<Format>) -> u8 {
    f.and_then(|f| Format::ALL.iter().position(|&x| x == f))
        .map_or(7, |i| i as u8)
}

#[test]
#[ignore = "writes fuzz/seeds; run when the seeds should change"]
fn regenerate_fuzz_seeds() {
    let lists = lists();
    let text: Vec<(String, Vec<u8>)> = lists
        .iter()
        .map(|(p, d)| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                d.clone(),
            )
        })
        .collect();
    write("lists", &text);

    let mut rpz: Vec<(String, Vec<u8>)> = text
        .iter()
        .filter(|(n, _)| n.ends_with(".rpz"))
        .cloned()
        .collect();
    for (what, zone) in [
        (
            "soa-in-parentheses",
            "$TTL 300\n@ IN SOA ns.rpz. admin.rpz. (\n  1 ; serial\n  3600 600 86400 60 )\n  IN NS ns.rpz.\nbad.test CNAME .\n",
        ),
        (
            "origin-and-actions",
            "$ORIGIN rpz.example.\nnx.test CNAME .\n*.wild.test CNAME .\nnodata.test CNAME *.\nok.test CNAME rpz-passthru.\ndrop.test CNAME rpz-drop.\nsink.test A 198.18.0.1\n",
        ),
        (
            "unclosed-parenthesis",
            "@ SOA ns. admin. ( 1 2 3 4 5\nbad.test CNAME .\nother.test CNAME .\n",
        ),
        (
            "comments-and-blanks",
            "; comment\n\n   \nbad.test 60 IN CNAME . ; why\n",
        ),
    ] {
        rpz.push((what.into(), zone.as_bytes().to_vec()));
    }
    write("rpz", &rpz);

    write("packet", &packet_seeds());
    write("fst_open", &fst_seeds(&lists));

    let mut compile = Vec::new();
    for (path, data) in &lists {
        let detected = source::detect_format(path, data);
        let stem = path.file_name().unwrap().to_string_lossy();
        for (what, control) in [
            ("", format_code(Some(detected))),
            ("-sniffed-allow-3-shards", 7 | 8 | (3 << 4)),
        ] {
            let mut s = vec![control];
            s.extend_from_slice(data);
            compile.push((format!("{stem}{what}"), s));
        }
    }
    write("compile_open", &compile);
}
