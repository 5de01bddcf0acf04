//! What per-customer policy groups cost a query.
//!
//! Run:   cargo bench --bench policy
//! Quick: cargo bench --bench policy -- group_of      (criterion filter)
//!
//! A blocklist of three lists (200 k names in `afc`, 100 k in `police`, a tenth of them also in
//! `afc`, and 20 k in a group-only `kids` list) and a policy of 2 000 groups, each with an IPv4
//! /24 and an IPv6 /48 (plus a few nested prefixes, so the longest match has work to do).
//! Criterion measures, per query:
//! - `group_of`: the prefix → group lookup alone (IPv4 in a group, IPv4 in none, IPv6);
//! - `verdict`: the blocklist lookup without policy (`lookup_wire`) beside the lookup through
//!   the client's group (`Policy::verdict`), for names no list holds (most queries), listed
//!   names whose list applies, and names whose winning list the group excludes (the re-walk).
//!
//! Before criterion runs, the binary counts heap allocations (a counting global allocator)
//! over 300 k `Policy::verdict` calls of every kind above and prints them: the claim is zero,
//! and the bench stops if it is not.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, criterion_group};
use fraudwall::blocklist::{Action, Blocklist, Compiler, Format, ListInfo, ListKind, MatchMode};
use fraudwall::policy::{GroupConfig, Policy, PolicyConfig};

/// Counts allocations, for the allocation check.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn name(r: &mut Rng, tag: &str) -> String {
    let len = 5 + r.next() % 15;
    let label: String = (0..len)
        .map(|_| (b'a' + (r.next() % 26) as u8) as char)
        .collect();
    format!("{label}.{tag}.test")
}

fn wire(name: &str) -> Vec<u8> {
    let mut w = Vec::new();
    for l in name.split('.') {
        w.push(l.len() as u8);
        w.extend_from_slice(l.as_bytes());
    }
    w.push(0);
    w
}

fn info(name: &str) -> ListInfo {
    ListInfo {
        name: name.into(),
        path: PathBuf::from(name),
        kind: ListKind::Block,
        action: Action::Sinkhole,
        category: "fraud".into(),
        ede: 15,
        entries: 0,
        format: Format::Plain,
        match_mode: MatchMode::Subtree,
    }
}

struct Fixture {
    bl: Blocklist,
    policy: Policy,
    /// Names no list holds.
    unlisted: Vec<Vec<u8>>,
    /// Names of `afc` only (applies to the default group).
    listed: Vec<Vec<u8>>,
    /// Names in `afc` and `police`, asked by a group that excludes `afc` (the re-walk).
    excluded: Vec<Vec<u8>>,
    /// A client in a group, one in none, one IPv6 client in a group.
    in_group: IpAddr,
    in_none: IpAddr,
    v6: IpAddr,
}

fn fixture() -> Fixture {
    let mut r = Rng(7);
    let mut c = Compiler::new();
    let (afc, police, kids) = (
        c.add_list(info("afc")).unwrap(),
        c.add_list(info("police")).unwrap(),
        c.add_list(info("kids")).unwrap(),
    );
    let add = |c: &mut Compiler, l, n: &str| {
        c.insert(l, n, ListKind::Block, MatchMode::Subtree, Action::Sinkhole)
            .unwrap();
    };
    let afc_names: Vec<String> = (0..200_000).map(|_| name(&mut r, "afc")).collect();
    for n in &afc_names {
        add(&mut c, afc, n);
    }
    let shared: Vec<String> = afc_names.iter().step_by(20).cloned().collect();
    for n in &shared {
        add(&mut c, police, n);
    }
    for _ in 0..90_000 {
        add(&mut c, police, &name(&mut r, "police"));
    }
    for _ in 0..20_000 {
        add(&mut c, kids, &name(&mut r, "kids"));
    }
    let bl = Blocklist::from_bytes(c.to_bytes().unwrap()).unwrap();

    let mut groups = Vec::new();
    for i in 0..2_000u32 {
        let v4 = format!("100.{}.{}.0/24", 64 + (i >> 8), i & 255);
        let v6 = format!("2001:db8:{:x}::/48", i);
        let mut clients = vec![v4.parse().unwrap(), v6.parse().unwrap()];
        if i % 100 == 0 {
            // A nested, longer prefix inside another group's /24.
            clients = vec![
                format!("100.{}.{}.128/25", 64 + ((i + 1) >> 8), (i + 1) & 255)
                    .parse()
                    .unwrap(),
            ];
        }
        groups.push(GroupConfig {
            name: format!("g{i}"),
            clients,
            lists: None,
            extra_lists: if i % 2 == 0 {
                vec!["kids".into()]
            } else {
                Vec::new()
            },
            exclude_lists: if i % 2 == 1 {
                vec!["afc".into()]
            } else {
                Vec::new()
            },
            actions: Vec::new(),
        });
    }
    let policy = Policy::new(&PolicyConfig {
        group_only: vec!["kids".into()],
        groups,
    });
    let unlisted = (0..10_000).map(|_| wire(&name(&mut r, "benign"))).collect();
    let listed = afc_names[..10_000]
        .iter()
        .map(|n| wire(&format!("www.{n}")))
        .collect();
    let excluded = shared[..5_000]
        .iter()
        .map(|n| wire(&format!("www.{n}")))
        .collect();
    Fixture {
        bl,
        policy,
        unlisted,
        listed,
        excluded,
        // 100.64.3.0/24 is g3 (odd: excludes afc); 100.99.0.0 is in no group.
        in_group: "100.64.3.9".parse().unwrap(),
        in_none: "100.99.0.1".parse().unwrap(),
        v6: "2001:db8:3::1".parse().unwrap(),
    }
}

/// The allocation check: every kind of query through `Policy::verdict`, counted.
fn allocation_check(f: &Fixture) {
    let before = ALLOCS.load(Ordering::Relaxed);
    let mut blocked = 0u64;
    for round in 0..10 {
        for (names, ip) in [
            (&f.unlisted, f.in_group),
            (&f.listed, f.in_none),
            (&f.listed, f.in_group),
            (&f.excluded, f.in_group),
            (&f.excluded, f.v6),
        ] {
            for n in names.iter().skip(round * 500).take(6_000) {
                blocked += u64::from(f.policy.verdict(&f.bl, ip, n).is_some());
            }
        }
    }
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    println!(
        "allocation check: 300000 Policy::verdict calls ({blocked} listed), {allocs} allocations"
    );
    assert_eq!(allocs, 0, "the policy path allocates");
    assert_eq!(
        f.policy
            .verdict(&f.bl, f.in_group, &f.excluded[0])
            .map(|(v, _)| v.list),
        Some(1),
        "a name of afc and police, for a group excluding afc, is police's"
    );
}

fn benches(c: &mut Criterion) {
    let f = fixture();
    allocation_check(&f);
    let mut g = c.benchmark_group("group_of");
    for (what, ip) in [
        ("v4_in_group", f.in_group),
        ("v4_in_none", f.in_none),
        ("v6_in_group", f.v6),
    ] {
        g.bench_function(what, |b| {
            b.iter(|| black_box(f.policy.group_of(black_box(ip))))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("verdict");
    for (what, names, ip) in [
        ("unlisted", &f.unlisted, f.in_group),
        ("listed_applies", &f.listed, f.in_none),
        ("listed_excluded_rewalk", &f.excluded, f.in_group),
    ] {
        let mut i = 0;
        g.bench_function(format!("{what}/lookup_wire"), |b| {
            b.iter(|| {
                i = (i + 1) % names.len();
                black_box(f.bl.lookup_wire(black_box(&names[i])))
            })
        });
        let mut i = 0;
        g.bench_function(format!("{what}/policy"), |b| {
            b.iter(|| {
                i = (i + 1) % names.len();
                black_box(f.policy.verdict(&f.bl, ip, black_box(&names[i])))
            })
        });
    }
    g.finish();
}

criterion_group!(policy, benches);

fn main() {
    policy();
    Criterion::default().configure_from_args().final_summary();
}
