//! Property test of the matcher against a naive reference model.
//!
//! A name is blocked iff it or an ancestor is listed (respecting exact/subtree) and no equally or
//! more specific allow entry matches it. Labels come from a tiny alphabet (`a`, `b`, `ab`, `b-`)
//! so that nesting, duplicates across lists, mixed modes and string-prefix-but-not-label-prefix
//! collisions (`a` vs `ab`) are frequent.

use std::path::PathBuf;

use fraudwall::blocklist::{
    Action, Blocklist, Compiler, Format, ListInfo, ListKind, MatchMode, Verdict,
};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Entry {
    labels: Vec<&'static str>,
    kind: ListKind,
    mode: MatchMode,
    action: Action,
    list: u16,
}

const LISTS: u16 = 3;

fn label() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["a", "b", "ab", "b-"])
}

fn name(max: usize) -> impl Strategy<Value = Vec<&'static str>> {
    prop::collection::vec(label(), 1..=max)
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        name(3),
        prop::bool::weighted(0.3),
        prop::bool::ANY,
        prop::sample::select(Action::ALL.to_vec()),
        0..LISTS,
    )
        .prop_map(|(labels, allow, exact, action, list)| Entry {
            labels,
            kind: if allow {
                ListKind::Allow
            } else {
                ListKind::Block
            },
            mode: if exact {
                MatchMode::Exact
            } else {
                MatchMode::Subtree
            },
            action,
            list,
        })
}

/// Compiles `entries` into `shards` FST shards.
fn build(entries: &[Entry], shards: usize) -> Blocklist {
    let mut c = Compiler::new();
    c.set_shards(shards);
    for i in 0..LISTS {
        c.add_list(ListInfo {
            name: format!("l{i}"),
            path: PathBuf::from(format!("l{i}.txt")),
            kind: ListKind::Block,
            action: Action::Sinkhole,
            category: "fraud".into(),
            ede: 15,
            entries: 0,
            format: Format::Plain,
            match_mode: MatchMode::Subtree,
        })
        .unwrap();
    }
    for e in entries {
        c.insert(e.list, &e.labels.join("."), e.kind, e.mode, e.action)
            .unwrap();
    }
    Blocklist::from_bytes(c.to_bytes().unwrap()).unwrap()
}

/// Entries that match `q`, with the number of labels they match at.
fn matching<'e>(entries: &'e [Entry], q: &[&str]) -> impl Iterator<Item = &'e Entry> {
    entries.iter().filter(move |e| {
        let n = e.labels.len();
        n <= q.len()
            && q[q.len() - n..] == e.labels[..]
            && (e.mode == MatchMode::Subtree || n == q.len())
    })
}

/// The documented rules, spelled out naively: deepest match decides; at that name allow beats
/// block, then exact beats subtree; within one (mode) the first entry wins unless a later allow
/// replaces a block.
fn reference(entries: &[Entry], q: &[&str]) -> Option<Verdict> {
    let depth = matching(entries, q).map(|e| e.labels.len()).max()?;
    let at: Vec<&Entry> = matching(entries, q)
        .filter(|e| e.labels.len() == depth)
        .collect();
    let slot = |mode| {
        let mut cur: Option<&Entry> = None;
        for e in at.iter().filter(|e| e.mode == mode) {
            match cur {
                None => cur = Some(e),
                Some(c) if c.kind == ListKind::Block && e.kind == ListKind::Allow => cur = Some(e),
                _ => {}
            }
        }
        cur
    };
    let chosen = match (slot(MatchMode::Exact), slot(MatchMode::Subtree)) {
        (Some(e), Some(s)) if e.kind == ListKind::Block && s.kind == ListKind::Allow => s,
        (Some(e), _) => e,
        (None, Some(s)) => s,
        (None, None) => unreachable!(),
    };
    Some(Verdict {
        kind: chosen.kind,
        action: chosen.action,
        match_mode: chosen.mode,
        list: chosen.list,
        matched_labels: depth as u8,
    })
}

fn wire(q: &[&str], upper: &[bool]) -> Vec<u8> {
    let mut w = Vec::new();
    for (i, l) in q.iter().enumerate() {
        w.push(l.len() as u8);
        if upper.get(i).copied().unwrap_or(false) {
            w.extend(l.to_ascii_uppercase().bytes());
        } else {
            w.extend(l.bytes());
        }
    }
    w.push(0);
    w
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn matcher_agrees_with_reference(
        entries in prop::collection::vec(entry(), 0..24),
        queries in prop::collection::vec((name(5), prop::collection::vec(prop::bool::ANY, 5)), 1..24),
        shards in 1..4usize,
    ) {
        let bl = build(&entries, shards);
        for (q, upper) in &queries {
            let got = bl.lookup_wire(&wire(q, upper));
            // The core property, stated independently of tie-breaking details.
            let deepest = |k| matching(&entries, q).filter(|e| e.kind == k).map(|e| e.labels.len()).max();
            let blocked = match (deepest(ListKind::Block), deepest(ListKind::Allow)) {
                (Some(b), Some(a)) => b > a,
                (Some(_), None) => true,
                _ => false,
            };
            prop_assert_eq!(got.is_some_and(|v| v.is_block()), blocked, "query {:?}", q);
            prop_assert_eq!(got, reference(&entries, q), "query {:?}", q);
            prop_assert_eq!(bl.lookup(&q.join(".")), got);
        }
    }

    #[test]
    fn lookup_wire_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let bl = build(&[Entry { labels: vec!["a"], kind: ListKind::Block, mode: MatchMode::Subtree, action: Action::Sinkhole, list: 0 }], 2);
        let _ = bl.lookup_wire(&bytes);
        if let Ok(s) = std::str::from_utf8(&bytes) {
            let _ = bl.lookup(s);
        }
    }
}
