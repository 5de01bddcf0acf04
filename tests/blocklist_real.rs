//! The engine against real public lists in `../shared/data` (see its README.md).
//!
//! Every list under `fraud/` is compiled with the defaults `discover` would give it; then every
//! name of `fraud-union.txt` must be blocked, and the benign names of `benign-top.txt` must be
//! blocked exactly where `benign-fraud-overlap.tsv` says (columns: rank, name, `exact` or
//! `subdomain-of`, the fraud entry, its source lists), except where the built-in guard rails
//! refuse the entry (the real phishing feed lists `www.ccb.com`, a bank's own site). When the data is absent the same assertions
//! run on the miniature copy in `tests/fixtures/lists/mini-data`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use fraudwall::blocklist::{Blocklist, Guard, ListSpec, MatchMode, Severity, compile};

fn mini_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lists/mini-data")
}

fn data_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let real = manifest.join("../shared/data");
    if real.join("fraud-union.txt").is_file() {
        println!("using real data in {}", real.display());
        real
    } else {
        let mini = mini_dir();
        println!(
            "{} is missing: running the same assertions on the fixtures in {}",
            real.display(),
            mini.display()
        );
        mini
    }
}

fn list_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            list_files(&p, out);
        } else if !p.file_name().unwrap().to_string_lossy().starts_with('.') {
            out.push(p);
        }
    }
}

fn names(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

#[test]
fn real_lists_block_the_union_and_only_the_known_benign_overlap() {
    check_data(&data_dir());
}

/// The fallback itself must keep working even on machines that have the real data.
#[test]
fn mini_data_passes_the_same_assertions() {
    check_data(&mini_dir());
}

fn check_data(data: &Path) {
    let mut files = Vec::new();
    list_files(&data.join("fraud"), &mut files);
    let specs: Vec<ListSpec> = files.iter().map(|p| ListSpec::from_path(p)).collect();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("fraud.fst");
    let t = Instant::now();
    let report = compile(&out, &specs).unwrap();
    println!(
        "compiled {} lists in {:.2?}: {} names, {} bytes, {:.1} B/name",
        report.lists.len(),
        t.elapsed(),
        report.keys,
        report.bytes,
        report.bytes as f64 / report.keys as f64
    );
    for l in &report.lists {
        println!(
            "  {:<40} {:<8} {:>7} entries {:>3} skipped {:>3} rejected",
            l.name,
            l.format.as_str(),
            l.accepted,
            l.stats.skipped,
            l.stats.rejected
        );
        for d in l.diagnostics.iter().take(3) {
            println!("    {d}");
        }
    }
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert!(report.lists.iter().all(|l| l.accepted > 0));
    let bl = Blocklist::open(&out).unwrap();

    // Every union name is blocked, except the entries the guard rails refuse, which are reported.
    let union = names(&data.join("fraud-union.txt"));
    let guard = Guard::builtin();
    let refused: HashSet<&str> = union
        .iter()
        .map(String::as_str)
        .filter(|n| guard.refuses(n, MatchMode::Subtree).is_some())
        .collect();
    println!("refused by the guard rails: {refused:?}");
    for n in &refused {
        let reported = report.lists.iter().any(|l| {
            l.diagnostics
                .iter()
                .any(|d| d.severity == Severity::Refused && d.reason.starts_with(&format!("{n:?}")))
        });
        assert!(reported, "{n} refused but not reported");
    }
    let missed: Vec<&String> = union
        .iter()
        .filter(|n| !bl.lookup(n).is_some_and(|v| v.is_block()) && !refused.contains(n.as_str()))
        .collect();
    println!(
        "fraud-union: {} names, {} not blocked",
        union.len(),
        missed.len()
    );
    assert!(
        missed.is_empty(),
        "not blocked: {:?}",
        &missed[..missed.len().min(20)]
    );

    // Benign names are blocked exactly where the overlap file says, by the entry it names.
    let mut overlap: HashMap<String, (String, String)> = HashMap::new();
    for line in std::fs::read_to_string(data.join("benign-fraud-overlap.tsv"))
        .unwrap()
        .lines()
    {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        assert!(cols.len() >= 4, "bad overlap line {line:?}");
        overlap.insert(
            cols[1].to_string(),
            (cols[2].to_string(), cols[3].to_string()),
        );
    }
    let benign = names(&data.join("benign-top.txt"));
    let mut wrong = Vec::new();
    let mut blocked = 0;
    for name in &benign {
        let v = bl.lookup(name).filter(|v| v.is_block());
        blocked += usize::from(v.is_some());
        let ok = match (overlap.get(name), v) {
            (None, None) => true,
            (Some((_, entry)), None) => refused.contains(entry.as_str()),
            (Some((how, entry)), Some(v)) => {
                let exact = v.matched_labels as usize == name.split('.').count();
                v.entry_name(name) == *entry && exact == (how == "exact")
            }
            _ => false,
        };
        if !ok {
            wrong.push((
                name.clone(),
                overlap.get(name).cloned(),
                v.map(|v| v.entry_name(name)),
            ));
        }
    }
    println!(
        "benign: {} names, {blocked} blocked, {} expected by the overlap file",
        benign.len(),
        overlap.len()
    );
    assert!(
        wrong.is_empty(),
        "{} mismatches, first: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(20)]
    );
    let unblocked = overlap
        .values()
        .filter(|(_, entry)| refused.contains(entry.as_str()))
        .count();
    assert_eq!(blocked, overlap.len() - unblocked);
}
