//! Opening a compiled file and walking it: any bytes through `Blocklist::from_bytes`, then
//! lookups of arbitrary names. The same bytes also go through `Blocklist::check_for_layer` (the
//! quicker check a dropped `.fst` gets before it is served as a layer), whose result, layered,
//! must answer the same lookups without panicking even when the full check refuses the file,
//! also with every key of its own hidden, as a patch layered over it hides them.
//! Opening must refuse or succeed, never panic; a file that opened
//! must answer every lookup without panicking (each name's first 16 bytes are also looked up as
//! an IPv6 address and its first 4 as an IPv4 address, against the file's prefixes), and must also be accepted as a part of a merge
//! whose result opens and holds the same names.
//!
//! Input: a flags byte, the file's length (u16 LE), the file, then wire-form names to look up.
//! With flag bit 0 the harness first rewrites every checksum in the file (each FST shard's and
//! the body's), so that mutations reach the structure checks instead of stopping at a checksum.

#![no_main]

use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use fraudwall::blocklist::{Blocklist, Hidden};
use fraudwall::blocklist::format::fst_checksum;
use fraudwall::blocklist::merge::{Part, merge_into};
use libfuzzer_sys::fuzz_target;

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Rewrites the checksum of each FST shard the header and directory point at, then the body's.
fn fix_checksums(b: &mut [u8]) -> Option<()> {
    let version = u32_at(b, 4)?;
    let data = 24usize.checked_add(u32_at(b, 8)? as usize)?;
    let mut shards = Vec::new();
    if version == 1 {
        shards.push(data..b.len());
    } else {
        let count = (u32_at(b, data)? as usize).min(16);
        let mut at = data.checked_add(12 + 8 * count)?;
        for i in 0..count {
            let len = usize::try_from(u64_at(b, data + 12 + 8 * i)?).ok()?;
            let end = at.checked_add(len)?.min(b.len());
            shards.push(at..end);
            at = end;
        }
    }
    for r in shards {
        if r.len() >= 36 {
            let sum = fst_checksum(&b[r.start..r.end - 4]);
            b[r.end - 4..r.end].copy_from_slice(&sum.to_le_bytes());
        }
    }
    let crc = crc32fast::hash(b.get(24..)?);
    b[12..16].copy_from_slice(&crc.to_le_bytes());
    Some(())
}

fuzz_target!(|data: &[u8]| {
    let [flags, l0, l1, rest @ ..] = data else {
        return;
    };
    let len = usize::from(u16::from_le_bytes([*l0, *l1])).min(rest.len());
    let (file, mut names) = rest.split_at(len);
    let mut file = file.to_vec();
    if flags & 1 != 0 {
        let _ = fix_checksums(&mut file);
    }
    // Arbitrary wire names (each up to its terminating zero), and each as text.
    let mut all = Vec::new();
    while !names.is_empty() {
        let end = names
            .iter()
            .position(|&b| b == 0)
            .map_or(names.len(), |i| i + 1);
        let (name, tail) = names.split_at(end);
        names = tail;
        all.push(name);
    }
    if let Ok(layer) = Blocklist::check_for_layer(file.clone(), Path::new("drop.fst")) {
        let layer = Arc::new(layer);
        let layered = Blocklist::layered(&[Arc::clone(&layer)]).expect("one file's lists fit");
        probe(&layered, &all);
        for name in &all {
            let _ = layered.lookup_wire_for(name, |l| l % 2 == 0);
            let _ = layered.matches(&String::from_utf8_lossy(name));
        }
        // The same layer with every key of its own hidden (as a patch over it would): each
        // listed name is then read entry by entry, and nothing may be left to match.
        if layer.len() <= 10_000 {
            let hidden = Arc::new(Hidden::of(&[&layer]));
            let patched = Blocklist::layered_hiding(&[(layer, vec![hidden])])
                .expect("one file's lists fit");
            probe(&patched, &all);
            for name in &all {
                assert_eq!(patched.lookup_wire(name), None, "a hidden key matched");
                assert_eq!(patched.lookup_wire_for(name, |l| l % 2 == 0), None);
                let text = String::from_utf8_lossy(name);
                assert_eq!(patched.matches(&text), Vec::new(), "a hidden key matched");
                let mut b16 = [0u8; 16];
                let n = name.len().min(16);
                b16[..n].copy_from_slice(&name[..n]);
                let v4 = std::net::IpAddr::from([b16[0], b16[1], b16[2], b16[3]]);
                for addr in [v4, std::net::IpAddr::from(b16)] {
                    assert_eq!(patched.lookup_ip(addr), None, "a hidden prefix matched");
                }
            }
        }
    }
    let Ok(bl) = Blocklist::from_bytes(file.clone()) else {
        return;
    };
    probe(&bl, &all);
    // Whatever opens is a valid part of a merge; two copies merge to the same names. Skipped for
    // files with many names (a merge enumerates them: not what this target times) and for files
    // with more names than bytes, which open without enumerating theirs, so that a name outside
    // its shard is only found by a merge.
    if bl.len() <= 10_000 && bl.len() <= file.len() {
        let part = |name: &str| {
            Part::from_bytes(Path::new(name), file.clone())
                .unwrap_or_else(|e| panic!("opened, but refused as a part: {e}"))
        };
        let parts = [part("a.fst"), part("b.fst")];
        let mut out = Cursor::new(Vec::new());
        merge_into(&parts, &mut out, Path::new("merged.fst"))
            .unwrap_or_else(|e| panic!("a file that opened does not merge: {e}"));
        let merged = Blocklist::from_bytes(out.into_inner())
            .unwrap_or_else(|e| panic!("the merge of a file that opened does not open: {e}"));
        assert_eq!(merged.len(), bl.len());
        assert_eq!(merged.lists().len(), 2 * bl.lists().len());
    }
});

/// Every lookup of `names` (and of their first bytes as addresses) on `bl`: none may panic.
fn probe(bl: &Blocklist, names: &[&[u8]]) {
    for &name in names {
        if let Some(v) = bl.lookup_wire(name) {
            let _ = v.entry_name_wire(name);
            let _ = bl.list(&v);
        }
        let mut b16 = [0u8; 16];
        let n = name.len().min(16);
        b16[..n].copy_from_slice(&name[..n]);
        let v6 = std::net::IpAddr::from(b16);
        let v4 = std::net::IpAddr::from([b16[0], b16[1], b16[2], b16[3]]);
        for addr in [v4, v6] {
            let _ = bl.lookup_ip(addr);
            let _ = bl.lookup_ip_for(addr, |l| l % 2 == 0);
            let _ = bl.matches_ip(addr);
        }
        let text = String::from_utf8_lossy(name);
        if let Some(v) = bl.lookup(&text) {
            let _ = v.entry_name(&text);
        }
    }
}
