//! The structural check of one FST shard from a file that may be hostile.
//!
//! fst 0.4 trusts its bytes: `Fst::new` takes the key count and the root address from the footer
//! as they are, and a node is decoded backwards from its last byte with unchecked arithmetic. On
//! crafted bytes a walk indexes out of range (a panic), and since an FST shares suffixes, a few
//! hundred bytes can encode 2^50 keys: whatever enumerates them never ends, and whatever is sized
//! from a claimed count does not fit in memory.
//!
//! [`check`] therefore decodes every node itself, with checked arithmetic, before anything walks
//! the shard, in work and memory linear in its size and without enumerating a key:
//!
//! - the nodes must tile the bytes between the 16-byte header and the 20-byte footer exactly, the
//!   root being the last one (this is how `fst::raw::Builder` writes them: each node is addressed
//!   by its last byte and written after every node it points to);
//! - every pack size, offset and transition target is in range, and a transition points at the
//!   last byte of an earlier node or at the empty final node (address 0), so the graph is a DAG
//!   and a walk always ends: there is no way to write a cycle that passes this check;
//! - inputs are strictly increasing and the 256-byte transition index of a large node agrees with
//!   them (`Node::find_input` reads the index, which no key stream ever looks at);
//! - every output is below 2^56, so the sum along any key of at most 253 bytes fits in a `u64`;
//! - keys are counted on the DAG (memoised, one visit per node) and must not exceed
//!   [`MAX_NAMES`]; the longest key must not exceed 253 bytes.
//!
//! Finally each node as fst decodes it is compared with ours, field by field, so a lookup on a
//! checked shard reads nothing that was not checked. The caller runs all of this inside
//! `catch_unwind` (see [`super::format::check_shards`]), so a mistake on either side is an error,
//! never a crash.

use std::collections::HashMap;

use fst::raw::Fst;

use super::normalize::MAX_NAME;

/// Most distinct names one compiled file may hold. The largest real lists hold tens of millions;
/// the cap bounds what a file that compresses very well can make a merge enumerate.
pub const MAX_NAMES: u64 = 1 << 28;

/// Bytes before the first node: fst's version and type, two u64.
const HEADER: usize = 16;
/// Bytes after the root node: key count and root address (u64 each), checksum (u32).
const FOOTER: usize = 20;
/// The fst format version this build checks (and writes).
const FST_VERSION: u64 = 3;
/// Outputs stay below this, so 254 of them (253 transitions and a final output) add up to less
/// than 2^64. Real values are below 2^53 (a 21-bit slot shifted by 32).
const MAX_OUTPUT: u64 = 1 << 56;
/// Nodes with more transitions than this carry a 256-byte index (fst format version 2 and up).
const INDEX_THRESHOLD: usize = 32;

/// What the check learned about one shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Facts {
    /// Keys in the shard, counted on its structure (equal to what its footer claims).
    pub keys: u64,
    /// Keys without a `.`: one-label names, which [`super::shard`] copies into every shard.
    pub one_label: u64,
}

/// One transition as decoded here; `inp` is `None` when the state byte holds it as an index into
/// fst's table of common inputs (then fst's decoding supplies it).
#[derive(Clone, Copy)]
struct Trans {
    inp: Option<u8>,
    out: u64,
    addr: usize,
}

/// One node as decoded here.
struct Decoded {
    /// Its first byte (fst calls it the end: nodes are read backwards).
    first: usize,
    is_final: bool,
    final_out: u64,
    /// Whether `find_input` goes through a 256-byte index.
    indexed: bool,
}

/// Checks one FST shard; the error is a reason for [`super::Error::Corrupt`].
pub(crate) fn check(b: &[u8]) -> Result<Facts, String> {
    check_keys(b, MAX_NAME)
}

/// Like [`check`] for an FST whose keys may be up to `max_key` bytes (the alternates FST of
/// [`super::format`], whose keys are a name and three bytes more).
pub(crate) fn check_keys(b: &[u8], max_key: usize) -> Result<Facts, String> {
    let n = b.len();
    if n < HEADER + FOOTER {
        return Err(format!("{n} bytes, too short for an FST"));
    }
    if u32::try_from(n).is_err() {
        return Err(format!("{n} bytes, larger than one shard can be"));
    }
    let version = le(b, 0, 8);
    if version != FST_VERSION {
        return Err(format!(
            "FST format version {version}, expected {FST_VERSION}"
        ));
    }
    let claimed = le(b, n - 20, 8);
    let root = le(b, n - 12, 8);
    let fst = Fst::new(b).map_err(|e| e.to_string())?;
    fst.verify().map_err(|e| e.to_string())?;

    if root == 0 {
        // The empty final node at the root: the shard holds the empty key and nothing else.
        if n != HEADER + FOOTER {
            return Err(format!("root address 0 in an FST of {n} bytes"));
        }
        return finish(1, 1, 0, claimed, max_key);
    }
    // The root is the last node written, right before the footer.
    if root != (n - FOOTER - 1) as u64 {
        return Err(format!(
            "root address {root}, expected {} (the last byte before the footer)",
            n - FOOTER - 1
        ));
    }
    let root = root as usize;

    // The nodes, from the root back to the header: each ends right before the next one starts.
    let mut trans = Vec::new();
    let mut nodes = NodeSet::new(n);
    let mut at = root;
    loop {
        let d = decode(b, at, &mut trans)?;
        nodes.insert(at);
        if d.first == HEADER {
            break;
        }
        at = d.first - 1;
    }
    nodes.seal();

    // Key counts and longest key below each node, in address order: a transition points at an
    // earlier node, so its counts are already known. Five bytes a node.
    let count = nodes.len();
    let mut keys = vec![0u32; count];
    let mut depth = vec![0u8; count];
    for (j, a) in nodes.iter().enumerate() {
        let d = decode(b, a, &mut trans)?;
        same_as_fst(&fst, a, &d, &mut trans)?;
        if !d.is_final && trans.is_empty() && a != root {
            return Err(format!(
                "node at byte {a} is a dead end (no key ends at or below it)"
            ));
        }
        let (mut k, mut dep) = (u64::from(d.is_final), 0u8);
        for t in &trans {
            let (tk, td) = if t.addr == 0 {
                // The empty final node: one key ends there.
                (1, 0)
            } else {
                let i = nodes.ordinal(t.addr).ok_or_else(|| {
                    format!(
                        "node at byte {a}: transition to byte {}, which is not the last byte of a node",
                        t.addr
                    )
                })?;
                (u64::from(keys[i]), depth[i])
            };
            k += tk;
            dep = dep.max(td.saturating_add(1));
            if k > MAX_NAMES {
                return Err(format!(
                    "node at byte {a} leads to more than {MAX_NAMES} names"
                ));
            }
        }
        keys[j] = k as u32;
        depth[j] = dep;
    }
    let last = count - 1;
    let longest = usize::from(depth[last]);
    if longest > max_key {
        return Err(too_long(longest, max_key));
    }
    // Checked throughout now, so fst's own walk is safe; keys end within 253 transitions.
    let ones = one_label_keys(&fst, root, &mut HashMap::new());
    finish(u64::from(keys[last]), ones, longest, claimed, max_key)
}

/// Keys below `addr` without a `.`: the paths that never take a `.` transition. From the root
/// these are the first labels of the keys (the TLDs), a few hundred nodes, so they are counted
/// apart rather than with four more bytes for every node.
fn one_label_keys(fst: &Fst<&[u8]>, addr: usize, memo: &mut HashMap<usize, u64>) -> u64 {
    if let Some(&n) = memo.get(&addr) {
        return n;
    }
    let node = fst.node(addr);
    let mut n = u64::from(node.is_final());
    for t in node.transitions() {
        if t.inp != b'.' {
            n += one_label_keys(fst, t.addr, memo);
        }
    }
    memo.insert(addr, n);
    n
}

/// The addresses of a shard's nodes (their last bytes) as a bitmap with a rank directory: which
/// bytes end a node, and the ordinal of each such node in address order, in O(1) and in about
/// a fifth of a byte per byte of FST.
struct NodeSet {
    bits: Vec<u64>,
    /// Set bits before each word of `bits`.
    rank: Vec<u32>,
}

impl NodeSet {
    fn new(bytes: usize) -> NodeSet {
        NodeSet {
            bits: vec![0; bytes.div_ceil(64)],
            rank: Vec::new(),
        }
    }

    fn insert(&mut self, a: usize) {
        self.bits[a / 64] |= 1 << (a % 64);
    }

    /// Builds the rank directory; no inserts after this.
    fn seal(&mut self) {
        let mut total = 0u32;
        self.rank = self
            .bits
            .iter()
            .map(|w| {
                let r = total;
                total += w.count_ones();
                r
            })
            .collect();
    }

    fn len(&self) -> usize {
        self.bits.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The ordinal of the node whose last byte is `a`, if one is.
    fn ordinal(&self, a: usize) -> Option<usize> {
        let word = *self.bits.get(a / 64)?;
        let bit = a % 64;
        if (word >> bit) & 1 == 0 {
            return None;
        }
        let below = (word & ((1u64 << bit) - 1)).count_ones();
        Some((self.rank[a / 64] + below) as usize)
    }

    /// Node addresses in increasing order.
    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.bits.iter().enumerate().flat_map(|(w, &word)| {
            let mut word = word;
            std::iter::from_fn(move || {
                if word == 0 {
                    return None;
                }
                let bit = word.trailing_zeros() as usize;
                word &= word - 1;
                Some(w * 64 + bit)
            })
        })
    }
}

fn too_long(longest: usize, max_key: usize) -> String {
    format!("a key of {longest} bytes or more (names have at most {max_key})")
}

fn finish(
    keys: u64,
    one_label: u64,
    longest: usize,
    claimed: u64,
    max_key: usize,
) -> Result<Facts, String> {
    if longest > max_key {
        return Err(too_long(longest, max_key));
    }
    if keys != claimed {
        return Err(format!("holds {keys} keys but its footer claims {claimed}"));
    }
    Ok(Facts { keys, one_label })
}

/// Little-endian unsigned integer of `len` (1..=8) bytes at `at`; the caller checked the range.
fn le(b: &[u8], at: usize, len: usize) -> u64 {
    b[at..at + len]
        .iter()
        .rev()
        .fold(0, |n, &x| (n << 8) | u64::from(x))
}

/// Decodes the node whose last byte is `a` (fst 0.4 format version 3) into `trans`, checking
/// that every byte fst would read for it lies between the header and `a`, and that every
/// transition points back before the node.
fn decode(b: &[u8], a: usize, trans: &mut Vec<Trans>) -> Result<Decoded, String> {
    trans.clear();
    let at = |what: &str| format!("node at byte {a}: {what}");
    // Steps back from the node's last byte; never below the first byte a node may use.
    let back = |pos: usize, by: usize, what: &str| {
        pos.checked_sub(by)
            .filter(|&p| p >= HEADER)
            .ok_or_else(|| at(&format!("{what} runs into the header")))
    };
    // Where a transition with this delta lands: 0 is the empty final node, else an address
    // before the node's first byte (the delta is taken from it).
    let target = |first: usize, delta: u64| -> Result<usize, String> {
        if delta == 0 {
            return Ok(0);
        }
        usize::try_from(delta)
            .ok()
            .and_then(|d| first.checked_sub(d))
            .filter(|&t| t >= HEADER)
            .ok_or_else(|| {
                at(&format!(
                    "transition delta {delta} points before the first node"
                ))
            })
    };
    if a < HEADER || a + FOOTER >= b.len() {
        return Err(at("outside the node area"));
    }
    let state = b[a];
    let common = state & 0b0011_1111;
    match state >> 6 {
        // One transition to the node written just before this one, no output.
        0b11 => {
            let inp = if common == 0 {
                Some(b[back(a, 1, "input")?])
            } else {
                None
            };
            let first = a - usize::from(inp.is_some());
            let addr = back(first, 1, "next node")?;
            trans.push(Trans { inp, out: 0, addr });
            Ok(Decoded {
                first,
                is_final: false,
                final_out: 0,
                indexed: false,
            })
        }
        // One transition, with an output and a delta.
        0b10 => {
            let inp = if common == 0 {
                Some(b[back(a, 1, "input")?])
            } else {
                None
            };
            let sizes_at = back(a, 1 + usize::from(inp.is_some()), "pack sizes")?;
            let (tsize, osize) = pack_sizes(b[sizes_at]).map_err(|e| at(&e))?;
            if tsize == 0 {
                return Err(at("transition pack size 0"));
            }
            let delta_at = back(sizes_at, tsize, "transition")?;
            let first = back(delta_at, osize, "output")?;
            let out = if osize == 0 { 0 } else { le(b, first, osize) };
            let addr = target(first, le(b, delta_at, tsize))?;
            trans.push(Trans {
                inp,
                out: bounded(out).map_err(|e| at(&e))?,
                addr,
            });
            Ok(Decoded {
                first,
                is_final: false,
                final_out: 0,
                indexed: false,
            })
        }
        // Any number of transitions (0 to 256), possibly final.
        _ => {
            let is_final = state & 0b0100_0000 != 0;
            let (ntrans, sizes_at) = if common != 0 {
                (usize::from(common), back(a, 1, "pack sizes")?)
            } else {
                let count_at = back(a, 1, "transition count")?;
                let c = usize::from(b[count_at]);
                // 1 is never a count here (one transition has its own states): it means 256.
                (if c == 1 { 256 } else { c }, back(a, 2, "pack sizes")?)
            };
            let (tsize, osize) = pack_sizes(b[sizes_at]).map_err(|e| at(&e))?;
            if ntrans > 0 && tsize == 0 {
                return Err(at("transition pack size 0"));
            }
            let indexed = ntrans > INDEX_THRESHOLD;
            let inputs_end = back(sizes_at, if indexed { 256 } else { 0 }, "index")?;
            let deltas_end = back(inputs_end, ntrans, "inputs")?;
            let outputs_end = back(deltas_end, ntrans * tsize, "transitions")?;
            let final_end = back(outputs_end, ntrans * osize, "outputs")?;
            let final_osize = if is_final { osize } else { 0 };
            let first = back(final_end, final_osize, "final output")?;
            let final_out = if final_osize == 0 {
                0
            } else {
                bounded(le(b, first, osize)).map_err(|e| at(&e))?
            };
            for i in 0..ntrans {
                let inp = b[inputs_end - i - 1];
                let delta = le(b, deltas_end - (i + 1) * tsize, tsize);
                let out = if osize == 0 {
                    0
                } else {
                    le(b, outputs_end - (i + 1) * osize, osize)
                };
                trans.push(Trans {
                    inp: Some(inp),
                    out: bounded(out).map_err(|e| at(&e))?,
                    addr: target(first, delta)?,
                });
            }
            if indexed {
                // Every present byte maps to its transition, every absent one to "none".
                let index = &b[inputs_end..sizes_at];
                let mut present = [false; 256];
                for (i, t) in trans.iter().enumerate() {
                    let inp = t.inp.unwrap_or_default();
                    present[usize::from(inp)] = true;
                    if usize::from(index[usize::from(inp)]) != i {
                        return Err(at(&format!(
                            "the transition index sends byte {inp} to transition {}, not {i}",
                            index[usize::from(inp)]
                        )));
                    }
                }
                for (byte, &i) in index.iter().enumerate() {
                    if !present[byte] && usize::from(i) < ntrans {
                        return Err(at(&format!(
                            "the transition index sends byte {byte}, which has no transition, to transition {i}"
                        )));
                    }
                }
            }
            Ok(Decoded {
                first,
                is_final,
                final_out,
                indexed,
            })
        }
    }
}

/// Transition and output pack sizes from their byte: at most 8 bytes each.
fn pack_sizes(v: u8) -> Result<(usize, usize), String> {
    let (t, o) = (usize::from(v >> 4), usize::from(v & 0x0f));
    if t > 8 || o > 8 {
        return Err(format!("pack sizes {t}/{o} (at most 8 bytes each)"));
    }
    Ok((t, o))
}

fn bounded(out: u64) -> Result<u64, String> {
    if out >= MAX_OUTPUT {
        return Err(format!("output {out} out of range"));
    }
    Ok(out)
}

/// Compares the node as fst decodes it with `d` and `trans` (filling in inputs held as common
/// input indexes), and checks that inputs increase and that `find_input` finds each transition
/// and nothing else: everything a lookup or a key stream reads of this node.
fn same_as_fst(fst: &Fst<&[u8]>, a: usize, d: &Decoded, trans: &mut [Trans]) -> Result<(), String> {
    let node = fst.node(a);
    let differs = |what: &str| format!("node at byte {a}: fst decodes its {what} differently");
    if node.len() != trans.len() {
        return Err(differs("transition count"));
    }
    if node.is_final() != d.is_final || node.final_output().value() != d.final_out {
        return Err(differs("final state"));
    }
    let mut prev: Option<u8> = None;
    for (i, t) in trans.iter_mut().enumerate() {
        let f = node.transition(i);
        if f.addr != t.addr || f.out.value() != t.out || t.inp.is_some_and(|x| x != f.inp) {
            return Err(differs(&format!("transition {i}")));
        }
        t.inp = Some(f.inp);
        if prev.is_some_and(|p| p >= f.inp) {
            return Err(format!(
                "node at byte {a}: inputs out of order at transition {i}"
            ));
        }
        prev = Some(f.inp);
        if node.find_input(f.inp) != Some(i) {
            return Err(differs(&format!("lookup of byte {}", f.inp)));
        }
    }
    if d.indexed {
        for byte in 0..=255u8 {
            if let Some(i) = node.find_input(byte)
                && trans.get(i).and_then(|t| t.inp) != Some(byte)
            {
                return Err(differs(&format!("lookup of byte {byte}")));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(keys: &[&[u8]]) -> Vec<u8> {
        let mut keys = keys.to_vec();
        keys.sort();
        let mut b = fst::MapBuilder::memory();
        for (i, k) in keys.iter().enumerate() {
            b.insert(k, i as u64 * 1000 + 7).unwrap();
        }
        b.into_inner().unwrap()
    }

    /// Rewrites the fst checksum after an edit, as a careful attacker would.
    fn resum(mut b: Vec<u8>) -> Vec<u8> {
        let n = b.len();
        let sum = crate::blocklist::format::fst_checksum(&b[..n - 4]);
        b[n - 4..].copy_from_slice(&sum.to_le_bytes());
        b
    }

    #[test]
    fn real_fsts_pass_with_exact_counts() {
        assert_eq!(
            check(&build(&[])).unwrap(),
            Facts {
                keys: 0,
                one_label: 0
            }
        );
        let f = check(&build(&[
            b"com",
            b"com.example",
            b"com.example.www",
            b"org",
        ]))
        .unwrap();
        assert_eq!(
            f,
            Facts {
                keys: 4,
                one_label: 2
            }
        );
        // Over 32 transitions: a node with an index.
        let wide: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b'x', b]).collect();
        let refs: Vec<&[u8]> = wide.iter().map(Vec::as_slice).collect();
        assert_eq!(check(&build(&refs)).unwrap().keys, 256);
        let mid: Vec<Vec<u8>> = (0..40u8).map(|b| vec![b'a' + b, b'.', b'z']).collect();
        let refs: Vec<&[u8]> = mid.iter().map(Vec::as_slice).collect();
        assert_eq!(
            check(&build(&refs)).unwrap(),
            Facts {
                keys: 40,
                one_label: 0
            }
        );
        // The empty key alone: the root is the empty final node.
        let mut b = fst::SetBuilder::memory();
        b.insert(b"").unwrap();
        assert_eq!(check(&b.into_inner().unwrap()).unwrap().keys, 1);
    }

    #[test]
    fn the_checksum_helper_matches_fst() {
        let good = build(&[b"com.example"]);
        assert_eq!(resum(good.clone()), good);
    }

    #[test]
    fn a_lying_footer_count_is_refused() {
        let mut b = build(&[b"com.a", b"com.b"]);
        let n = b.len();
        b[n - 20..n - 12].copy_from_slice(&(1u64 << 50).to_le_bytes());
        let e = check(&resum(b)).unwrap_err();
        assert!(
            e.contains("holds 2 keys but its footer claims 1125899906842624"),
            "{e}"
        );
    }

    #[test]
    fn exponentially_many_keys_are_counted_not_enumerated() {
        // 60 nodes of two transitions each, all to the next: 2^60 keys of 60 bytes in ~200 bytes.
        let mut b = vec![0u8; 16];
        b[0] = 3;
        let mut last = 0usize;
        for i in 0..60 {
            let first = b.len();
            // AnyTrans: inputs 'a', 'b'; deltas (1 byte each), no outputs; final only at the end.
            let delta = if i == 0 { 0 } else { (first - last) as u8 };
            b.extend_from_slice(&[
                delta,
                delta,
                b'b',
                b'a',
                0x10,
                2 | if i == 0 { 0x40 } else { 0 },
            ]);
            last = b.len() - 1;
        }
        // The leaves point at the empty final node and are final themselves: fine for counting.
        let root = last as u64;
        b.extend_from_slice(&0u64.to_le_bytes());
        b.extend_from_slice(&root.to_le_bytes());
        b.extend_from_slice(&[0; 4]);
        let e = check(&resum(b)).unwrap_err();
        assert!(e.contains("leads to more than 268435456 names"), "{e}");
    }

    #[test]
    fn bad_bytes_are_reasons_not_panics() {
        let good = build(&[b"com.example", b"com.example.www", b"org.shop", b"net"]);
        let n = good.len();
        // Every single-byte change in the node area, checksum fixed: never a panic, and when it
        // passes, the counts are still the real ones of what fst reads.
        for at in HEADER..n - FOOTER {
            for x in [0u8, 1, 0x3f, 0x40, 0x7f, 0x80, 0xbf, 0xc0, 0xff] {
                let mut b = good.clone();
                b[at] = x;
                let _ = check(&resum(b));
            }
        }
        let mut b = good.clone();
        b[n - 12..n - 4].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(check(&resum(b)).unwrap_err().contains("root address"));
        let mut b = good.clone();
        b[0] = 2;
        assert!(check(&resum(b)).unwrap_err().contains("version 2"));
        assert!(check(&good[..30]).unwrap_err().contains("too short"));
    }
}
