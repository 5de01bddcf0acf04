//! Blocklist engine benchmarks.
//!
//! Run:   cargo bench --bench blocklist
//! 10 M:  FRAUDWALL_BENCH_10M=1 cargo bench --bench blocklist
//! Quick: cargo bench --bench blocklist -- lookup/1M    (criterion filter)
//! Contended: FRAUDWALL_BENCH_CONTEND=1 cargo bench --bench blocklist -- lookup/1M
//!        (a thread streams through 256 MiB meanwhile, evicting the shared L3 as a busy
//!        neighbour on the host would)
//!
//! Synthetic lists are generated deterministically (seeded splitmix64) with realistic shapes:
//! registrable labels of 3–25 characters, a TLD mix, a quarter of the names under shared hosting
//! suffixes (000webhostapp.com, weebly.com, pp.ua, …) and 1–6 extra labels in front of some.
//! Besides the criterion lookups (wire-form input; a hit-heavy mix of exact hits / hits on an
//! ancestor / misses, and a DNS mix of 5 % listed and 95 % unlisted names; each against a `HashSet<String>`
//! walked suffix by suffix), the binary prints: compile time of the
//! list file, bytes per name on disk, a per-lookup p50/p99 and, when `../shared/data` exists, the
//! same figures for the real `fraud-union.txt`.

use std::collections::HashSet;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use fraudwall::blocklist::{Blocklist, ListSpec, compile};

/// splitmix64: tiny, seeded, good enough for shaping test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

const TLDS: &[&str] = &[
    "com", "com", "com", "com", "com", "com", "net", "org", "de", "ru", "xyz", "top", "shop",
    "info", "online", "co.uk", "com.br", "xn--p1ai", "store", "site", "cn", "in", "io", "app",
];
const SHARED: &[&str] = &[
    "000webhostapp.com",
    "weebly.com",
    "godaddysites.com",
    "web.app",
    "replit.app",
    "pp.ua",
    "us.kg",
    "workers.dev",
    "firebaseapp.com",
    "blogspot.com",
    "wixsite.com",
    "netlify.app",
];
const SUBS: &[&str] = &[
    "www", "login", "secure", "account", "verify", "app", "m", "mail", "cdn", "auth",
];
const WORDS: &[&str] = &[
    "secure", "login", "bank", "pay", "verify", "account", "update", "crypto", "wallet", "shop",
    "deal", "gift", "prize", "support", "help", "service", "online", "track", "parcel", "amazon",
    "paypal", "apple", "coin", "invest",
];

fn random_label(r: &mut Rng) -> String {
    // Real registrable labels: often word mashups, sometimes random strings, 3–25 chars.
    let mut s = String::new();
    if r.below(2) == 0 {
        let words = 1 + r.below(3);
        for i in 0..words {
            if i > 0 && r.below(3) == 0 {
                s.push('-');
            }
            s.push_str(r.pick(WORDS));
        }
        if r.below(3) == 0 {
            s.push_str(&r.below(1000).to_string());
        }
    } else {
        let len = 3 + r.below(8) + r.below(8) + r.below(7);
        const CH: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        for _ in 0..len {
            s.push(CH[r.below(CH.len() as u64) as usize] as char);
        }
    }
    s.truncate(63);
    s
}

fn random_name(r: &mut Rng) -> String {
    let base = if r.below(4) == 0 {
        format!("{}.{}", random_label(r), r.pick(SHARED))
    } else {
        format!("{}.{}", random_label(r), r.pick(TLDS))
    };
    let extra = match r.below(100) {
        0..60 => 0,
        60..85 => 1,
        85..95 => 2,
        _ => 3 + r.below(4),
    };
    let mut name = base;
    for _ in 0..extra {
        let sub = if r.below(2) == 0 {
            r.pick(SUBS).to_string()
        } else {
            random_label(r)
        };
        name = format!("{sub}.{name}");
    }
    name
}

fn names(n: usize, seed: u64) -> Vec<String> {
    let mut r = Rng(seed);
    (0..n).map(|_| random_name(&mut r)).collect()
}

fn to_wire(name: &str, r: &mut Rng) -> Vec<u8> {
    let mut w = Vec::with_capacity(name.len() + 2);
    for label in name.split('.') {
        w.push(label.len() as u8);
        // Queries arrive in any case (0x20 randomisation).
        w.extend(label.bytes().map(|b| {
            if r.below(4) == 0 {
                b.to_ascii_uppercase()
            } else {
                b
            }
        }));
    }
    w.push(0);
    w
}

/// A third exact hits, a third hits on an ancestor (`cdn.<listed>`), a third misses.
fn queries(listed: &[String], n: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut r = Rng(seed);
    (0..n)
        .map(|i| {
            let name = match i % 3 {
                0 => listed[r.below(listed.len() as u64) as usize].clone(),
                1 => format!(
                    "{}.{}",
                    r.pick(SUBS),
                    listed[r.below(listed.len() as u64) as usize]
                ),
                _ => random_name(&mut r),
            };
            to_wire(&name, &mut r)
        })
        .collect()
}

/// What a resolver sees: 5 % listed names, 95 % names that are not listed (neither they nor an
/// ancestor). The unlisted names come from the same generator as the list, so about a quarter
/// of its draws collide with a listed name or sit below one (the word-mashup labels repeat);
/// those are redrawn here, as they would make the "unlisted" share a quarter listed. The
/// returned count is how many draws were redrawn.
fn dns_mix(listed: &[String], set: &HashSet<String>, n: usize, seed: u64) -> (Vec<Vec<u8>>, usize) {
    let mut r = Rng(seed);
    let mut redrawn = 0;
    let mut buf = String::new();
    let queries = (0..n)
        .map(|i| {
            if i % 20 == 0 {
                let name = &listed[r.below(listed.len() as u64) as usize];
                return to_wire(name, &mut r);
            }
            loop {
                let name = random_name(&mut r);
                let wire = to_wire(&name, &mut r);
                if !hashset_lookup(set, &wire, &mut buf) {
                    return wire;
                }
                redrawn += 1;
            }
        })
        .collect();
    (queries, redrawn)
}

/// The obvious alternative: a set of names, walked from the full name up to the TLD.
fn hashset_lookup(set: &HashSet<String>, wire: &[u8], buf: &mut String) -> bool {
    buf.clear();
    let mut pos = 0;
    while let Some(&len) = wire.get(pos) {
        if len == 0 {
            break;
        }
        if !buf.is_empty() {
            buf.push('.');
        }
        let label = &wire[pos + 1..pos + 1 + len as usize];
        buf.extend(label.iter().map(|b| b.to_ascii_lowercase() as char));
        pos += 1 + len as usize;
    }
    let mut s = buf.as_str();
    loop {
        if set.contains(s) {
            return true;
        }
        match s.find('.') {
            Some(i) => s = &s[i + 1..],
            None => return false,
        }
    }
}

struct Fixture {
    label: String,
    bl: Blocklist,
    set: HashSet<String>,
    queries: Vec<Vec<u8>>,
    dns_mix: Vec<Vec<u8>>,
    _dir: tempfile::TempDir,
}

/// Writes `names` as a plain list, compiles it (timed) and prints size figures.
fn prepare(label: &str, names: Vec<String>, query_seed: u64) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join(format!("{label}.txt"));
    std::fs::write(&list, names.join("\n")).unwrap();
    let out = dir.path().join(format!("{label}.fst"));
    let t = Instant::now();
    let report = compile(&out, &[ListSpec::from_path(&list)]).unwrap();
    let secs = t.elapsed().as_secs_f64();
    let src = std::fs::metadata(&list).unwrap().len();
    println!(
        "[{label}] compile {} names from a {:.1} MB plain list: {secs:.2} s; {} distinct, {} bytes on disk = {:.2} B/name (source {:.1} B/name)",
        names.len(),
        src as f64 / 1e6,
        report.keys,
        report.bytes,
        report.bytes as f64 / report.keys as f64,
        src as f64 / report.keys as f64
    );
    let bl = Blocklist::open(&out).unwrap();
    let queries = queries(&names, 30_000, query_seed);
    let set: HashSet<String> = names.iter().cloned().collect();
    let (dns_mix, redrawn) = dns_mix(&names, &set, 30_000, query_seed + 1);
    println!(
        "[{label}] DNS mix: {redrawn} random names redrawn because they were listed or below a listed name"
    );
    drop(names);
    let f = Fixture {
        label: label.to_string(),
        bl,
        set,
        queries,
        dns_mix,
        _dir: dir,
    };
    percentiles(&f, &f.queries, "hit-heavy queries (2/3 listed)");
    percentiles(&f, &f.dns_mix, "DNS mix (5 % listed, 95 % unlisted)");
    f
}

/// Per-lookup latency distribution: each lookup timed alone, timer overhead subtracted. Twice:
/// interleaved (each FST lookup next to a HashSet lookup of the same name, which evicts the
/// other's cache lines, as the rest of a resolver's work would), and each structure in its own
/// passes over the queries.
fn percentiles(f: &Fixture, queries: &[Vec<u8>], what: &str) {
    let overhead = {
        let mut v: Vec<u64> = (0..20_000)
            .map(|_| {
                let t = Instant::now();
                black_box(());
                t.elapsed().as_nanos() as u64
            })
            .collect();
        v.sort_unstable();
        v[v.len() / 2]
    };
    let mut buf = String::new();
    let timed = |out: &mut Vec<u64>, lookup: &mut dyn FnMut()| {
        let t = Instant::now();
        lookup();
        out.push((t.elapsed().as_nanos() as u64).saturating_sub(overhead));
    };
    let n = queries.len() * 3;
    let (mut fst_ns, mut set_ns) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..3 {
        for q in queries {
            timed(&mut fst_ns, &mut || {
                black_box(f.bl.lookup_wire(black_box(q)));
            });
            timed(&mut set_ns, &mut || {
                black_box(hashset_lookup(&f.set, black_box(q), &mut buf));
            });
        }
    }
    let (mut fst_alone, mut set_alone) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..3 {
        for q in queries {
            timed(&mut fst_alone, &mut || {
                black_box(f.bl.lookup_wire(black_box(q)));
            });
        }
        for q in queries {
            timed(&mut set_alone, &mut || {
                black_box(hashset_lookup(&f.set, black_box(q), &mut buf));
            });
        }
    }
    let pct = |v: &mut Vec<u64>, p: f64| {
        v.sort_unstable();
        v[((v.len() as f64 * p) as usize).min(v.len() - 1)]
    };
    let hits = queries
        .iter()
        .filter(|q| f.bl.lookup_wire(q).is_some())
        .count();
    println!(
        "[{}] per-lookup latency, {what}, {} queries ({} hits; timer overhead {overhead} ns subtracted): fst p50 {} ns p99 {} ns | HashSet p50 {} ns p99 {} ns",
        f.label,
        queries.len(),
        hits,
        pct(&mut fst_ns, 0.5),
        pct(&mut fst_ns, 0.99),
        pct(&mut set_ns, 0.5),
        pct(&mut set_ns, 0.99),
    );
    println!(
        "[{}]   same, each structure in its own passes: fst p50 {} ns p99 {} ns | HashSet p50 {} ns p99 {} ns",
        f.label,
        pct(&mut fst_alone, 0.5),
        pct(&mut fst_alone, 0.99),
        pct(&mut set_alone, 0.5),
        pct(&mut set_alone, 0.99),
    );
}

fn bench_lookups(c: &mut Criterion, f: &Fixture) {
    let mut g = c.benchmark_group(format!("lookup/{}", f.label));
    g.measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    let mut i = 0;
    g.bench_function("fst", |b| {
        b.iter(|| {
            i = (i + 1) % f.queries.len();
            black_box(f.bl.lookup_wire(black_box(&f.queries[i])))
        })
    });
    let mut buf = String::new();
    g.bench_function("hashset", |b| {
        b.iter(|| {
            i = (i + 1) % f.queries.len();
            black_box(hashset_lookup(&f.set, black_box(&f.queries[i]), &mut buf))
        })
    });
    g.bench_function("fst-dns-mix", |b| {
        b.iter(|| {
            i = (i + 1) % f.dns_mix.len();
            black_box(f.bl.lookup_wire(black_box(&f.dns_mix[i])))
        })
    });
    g.bench_function("hashset-dns-mix", |b| {
        b.iter(|| {
            i = (i + 1) % f.dns_mix.len();
            black_box(hashset_lookup(&f.set, black_box(&f.dns_mix[i]), &mut buf))
        })
    });
    g.finish();
}

/// What serving lists as layers costs a query until they are merged: the same 1 M names as
/// one merged file, and as three layers (a 990 k list, a 10 k list, one appended name), looked
/// up with the same queries.
fn bench_layered(c: &mut Criterion, names: &[String], f: &Fixture) {
    let dir = tempfile::tempdir().unwrap();
    let parts: [&[String]; 3] = [
        &names[..990_000],
        &names[990_000..names.len() - 1],
        &names[names.len() - 1..],
    ];
    let mut specs = Vec::new();
    let mut layers = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let list = dir.path().join(format!("part{i}.txt"));
        std::fs::write(&list, part.join("\n")).unwrap();
        let out = dir.path().join(format!("part{i}.fst"));
        compile(&out, &[ListSpec::from_path(&list)]).unwrap();
        layers.push(std::sync::Arc::new(Blocklist::open(&out).unwrap()));
        specs.push(ListSpec::from_path(&list));
    }
    let out = dir.path().join("merged.fst");
    compile(&out, &specs).unwrap();
    let merged = Blocklist::open(&out).unwrap();
    let layered = Blocklist::layered(&layers).unwrap();
    for q in f.queries.iter().chain(&f.dns_mix) {
        assert_eq!(
            merged.lookup_wire(q).map(|v| (v.kind, v.matched_labels)),
            layered.lookup_wire(q).map(|v| (v.kind, v.matched_labels))
        );
    }
    // An IXFR-like patch over the merged file: 500 names gone, 500 new, their keys hidden
    // below.
    let file = |names: &[String], tag: &str| {
        let list = dir.path().join(format!("{tag}.txt"));
        std::fs::write(&list, names.join("\n")).unwrap();
        let out = dir.path().join(format!("{tag}.fst"));
        compile(&out, &[ListSpec::from_path(&list)]).unwrap();
        std::sync::Arc::new(Blocklist::open(&out).unwrap())
    };
    let added: Vec<String> = (0..500)
        .map(|i| format!("patched{i}.example.test"))
        .collect();
    let (gone, patch) = (file(&names[..500], "gone"), file(&added, "patch"));
    let hidden = std::sync::Arc::new(fraudwall::blocklist::Hidden::of(&[&gone, &patch]));
    let patched = Blocklist::layered_hiding(&[
        (
            std::sync::Arc::new(Blocklist::open(&out).unwrap()),
            vec![hidden],
        ),
        (patch, Vec::new()),
    ])
    .unwrap();
    assert!(patched.lookup(&names[0]).is_none() && patched.lookup(&added[0]).is_some());
    assert!(patched.lookup(&names[500]).is_some());
    let mut g = c.benchmark_group("layered/1M");
    g.measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    let mut i = 0;
    for (what, bl) in [
        ("merged", &merged),
        ("3-layers", &layered),
        ("patched", &patched),
    ] {
        g.bench_function(what, |b| {
            b.iter(|| {
                i = (i + 1) % f.queries.len();
                black_box(bl.lookup_wire(black_box(&f.queries[i])))
            })
        });
        g.bench_function(format!("{what}-dns-mix"), |b| {
            b.iter(|| {
                i = (i + 1) % f.dns_mix.len();
                black_box(bl.lookup_wire(black_box(&f.dns_mix[i])))
            })
        });
    }
    g.finish();
}

/// A busy neighbour: reads through 256 MiB, one cache line at a time, until the process ends.
fn contend() {
    std::thread::spawn(|| {
        let buf = vec![1u64; 32 << 20];
        let mut sum = 0u64;
        loop {
            for i in (0..buf.len()).step_by(8) {
                sum = sum.wrapping_add(buf[i]);
            }
            black_box(sum);
        }
    });
}

fn benches(c: &mut Criterion) {
    if std::env::var_os("FRAUDWALL_BENCH_CONTEND").is_some() {
        println!("contended: a thread streams through 256 MiB during the whole run");
        contend();
    }
    let one_m = prepare("1M", names(1_000_000, 1), 2);
    bench_lookups(c, &one_m);
    bench_layered(c, &names(1_000_000, 1), &one_m);

    // Compile time of 1 M names from a plain list file, under criterion too.
    {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("compile-1M.txt");
        std::fs::write(&list, names(1_000_000, 1).join("\n")).unwrap();
        let out = dir.path().join("compile-1M.fst");
        let specs = [ListSpec::from_path(&list)];
        let mut g = c.benchmark_group("compile");
        g.sample_size(10).measurement_time(Duration::from_secs(15));
        g.bench_function("1M", |b| b.iter(|| compile(&out, &specs).unwrap()));
        g.finish();
    }
    drop(one_m);

    if std::env::var_os("FRAUDWALL_BENCH_10M").is_some() {
        let ten_m = prepare("10M", names(10_000_000, 3), 4);
        bench_lookups(c, &ten_m);
    } else {
        println!("[10M] skipped; set FRAUDWALL_BENCH_10M=1 to run it");
    }

    let union = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/fraud-union.txt");
    if let Ok(text) = std::fs::read_to_string(&union) {
        let names: Vec<String> = text.lines().map(String::from).collect();
        let real = prepare("real-union", names, 5);
        bench_lookups(c, &real);
    } else {
        println!("[real-union] skipped: {} not found", union.display());
    }
}

criterion_group!(blocklist, benches);

fn main() {
    blocklist();
    Criterion::default().configure_from_args().final_summary();
}
