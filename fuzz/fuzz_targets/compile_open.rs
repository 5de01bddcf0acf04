//! What the compiler writes, the reader takes: any text list compiled (in any format, as a block
//! or an allow list, into 1 to 4 shards) must open, and every name parsed from it must look up
//! without panicking. A refusal here would mean a good list that serves nothing. Read in two
//! halves at once (as large files are), it must give the same report and the same bytes.
//!
//! Input: a control byte (bits 0–2: an index into `Format::ALL`, sniffed past its end, so 7
//! always sniffs; bit 3: allow list; bits 4 and 5 both set: 3 shards, else 1; bit 6: a trusted list; bit 7: address lines allowed), then the list. (Each shard builder costs fst's node registry,
//! about a millisecond to set up and drop: most inputs build one.)

#![no_main]

use std::path::PathBuf;

use fraudwall::blocklist::{
    Action, Blocklist, Compiler, Format, Guard, ListKind, ListSpec, MatchMode, source,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&control, list)) = data.split_first() else {
        return;
    };
    let spec = ListSpec {
        name: "fuzz".into(),
        path: PathBuf::from("fuzz.txt"),
        format: Format::ALL.get(usize::from(control & 7)).copied(),
        kind: if control & 8 != 0 {
            ListKind::Allow
        } else {
            ListKind::Block
        },
        action: Action::Sinkhole,
        match_mode: MatchMode::Subtree,
        category: "fraud".into(),
        ede: 15,
        // Bit 6: a trusted list (one-label and public-suffix lines load instead of refused).
        trusted: control & 0x40 != 0,
        guard: Guard::builtin(),
        ips: control & 0x80 != 0,
    };
    let shards = if control & 0x30 == 0x30 { 3 } else { 1 };
    let mut c = Compiler::new();
    c.set_shards(shards);
    let report = c.add_source(&spec, list);
    // Read in two halves at once (as a large file is), the list is the same list.
    let mut halves = Compiler::new();
    halves.set_shards(shards);
    halves.set_split_min(0);
    let halves_report = halves.add_source(&spec, list);
    let brief = |r: &Result<fraudwall::blocklist::ListReport, fraudwall::blocklist::Error>| {
        r.as_ref()
            .map(|r| {
                let d: Vec<String> = r.diagnostics.iter().map(|d| d.to_string()).collect();
                (r.stats, r.accepted, d, r.omitted_diagnostics)
            })
            .map_err(|e| e.to_string())
    };
    assert_eq!(brief(&report), brief(&halves_report), "read in halves");
    if report.is_err() {
        return;
    }
    let bytes = c.to_bytes().expect("the compiler writes what it accepted");
    assert!(
        halves.to_bytes().expect("the compiler writes what it accepted") == bytes,
        "read in halves, compiled to other bytes"
    );
    let bl = Blocklist::from_bytes(bytes)
        .unwrap_or_else(|e| panic!("a compiled list does not open: {e}"));
    if let Ok(parsed) = source::parse_bytes(list, &spec.path, spec.format) {
        for e in &parsed.entries {
            let _ = bl.lookup(&e.name);
            if let Some(net) = e.ip {
                let _ = bl.lookup_ip(net.addr());
                let _ = bl.matches_ip(net.broadcast());
            }
        }
    }
});
