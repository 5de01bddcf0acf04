//! The compiled file format: written by [`super::compile`] and [`super::merge`], read by
//! [`super::Blocklist::open`]. Everything that knows where a byte of a compiled file goes is
//! here.
//!
//! # File layout (format version 4, all integers little-endian)
//!
//! ```text
//! offset  size  field
//!      0     4  magic "FWBL"
//!      4     4  format version (u32) = 3
//!      8     4  table_len (u32): bytes of the list table
//!     12     4  CRC32 (crc32fast / IEEE) of the body = bytes [24, end)
//!     16     8  data_len (u64): bytes after the list table
//!     24     …  list table: u32 count, then per list:
//!                 str name, str path, u8 kind, u8 action, u8 format, u8 match_mode,
//!                 str category, u16 ede, u64 entries          (str = u32 length + UTF-8)
//! 24+table_len  shard directory: u32 shard count K, u64 distinct names, K × u64 FST length,
//!               u64 alternates length A (version 4; 0: none)
//!         …     K FST maps (fst 0.4 format, each with its own checksum), back to back
//!         …     A bytes: the alternates FST (below)
//! ```
//!
//! Large lists are split into shards built in parallel ([`super::shard`] says how keys are
//! assigned). Version 1 files, which have no directory and one FST of `data_len` bytes, are
//! still read. Version 2 has the same layout as 3 but assigned keys to shards by an older hash,
//! so a version 2 file is read only when it has one shard; a sharded one must be recompiled.
//! Version 3 is version 4 without the alternates length (and so without alternates).
//!
//! The FST maps reversed-label keys (`com.example.www`, so ancestors are prefixes) to a u64 with
//! two *verdict slots*: bits 0..32 hold the entry that covers "this name and below" (subtree),
//! bits 32..64 the entry for "this name exactly". Both can be present when different lists
//! disagree on the match mode. A slot is 0 when absent, else
//! `1 | allow << 1 | action << 2 | list_id << 5`. Subtree slots sit in the low bits because they
//! are by far the most common and small outputs take fewer bytes in the FST.
//!
//! A slot holds the entry that wins when every list applies. A policy group that does not apply
//! every list ([`crate::policy`]) may need the entries that lost: where two or more lists hold
//! a key in the same slot, the *alternates* FST holds every entry of that key, one per list and
//! slot, in merge order, under the keys `key ++ 0x00 ++ u16 big-endian index` (0x00 sorts below
//! every byte of a name, so these keys come in the order of their names). Each value is a
//! two-slot value like the main FST's with one slot set. Names held by one list only, which is
//! nearly all of them, cost nothing there.
//!
//! # Address prefixes
//!
//! Lists may also hold IP prefixes (RPZ `rpz-ip` triggers, address lines of lists marked
//! `ips`), matched against the addresses of answers. They live in the same FST under keys that
//! no name can have: [`IP_MARK`] (a `.`, which never starts a reversed-label key and which a
//! name walk never feeds at the start), then `4` or `6`, then the prefix's bits, one byte
//! (`0` or `1`) each: `198.18.0.0/15` is `.4` and fifteen bits. A lookup walks the address's
//! bits and every final state it meets is a covering prefix; the longest decides. These keys
//! use the subtree slot, sit in shard 0 only ([`super::shard`]) and are not one-label keys, so
//! the directory counts and checks of names apply to them unchanged. A file without them has
//! no `.` transition at the root of shard 0, which is what [`super::Blocklist::has_ips`] reads.
//!
//! A compiled file may come from anywhere (a list directory, a download), so reading one trusts
//! nothing in it: [`layout`] checks the header, checksum and directory against the file's size,
//! [`decode_table`] every count against the bytes left, and [`check_shards`] the structure of
//! every FST ([`super::verify`]) and the directory's name count against what the shards hold,
//! before anything is allocated from a count or walked. Where the keys are then enumerated (the
//! matcher's filter, a merge), each is checked to sit in its own shard and to name a list of the
//! file ([`check_value`]).

use std::io::{self, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::normalize::MAX_NAME;
use super::shard::{MAX_SHARDS, ShardedBuilder, across_shards};
use super::verify::{self, MAX_NAMES};
use super::{Action, Error, Format, ListInfo, ListKind, MatchMode};

/// The four bytes every compiled file starts with.
pub const MAGIC: [u8; 4] = *b"FWBL";
/// The format version this build writes.
pub const VERSION: u32 = 4;
/// The oldest format version this build reads.
pub const MIN_VERSION: u32 = 1;
/// Size of the fixed header before the list table.
pub const HEADER_LEN: usize = 24;
/// Most lists one file can hold (list ids are 16 bits).
pub const MAX_LISTS: usize = u16::MAX as usize;

/// fst's own checksum of an FST's bytes (CRC32C, masked as fst masks it), which the last four
/// bytes of every shard hold: for tools that edit a compiled file and must seal it again (the
/// crafted-file tests, the `fst_open` fuzz target).
pub fn fst_checksum(body: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &x in body {
        crc ^= u32::from(x);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    (!crc).rotate_right(15).wrapping_add(0xa282_ead8)
}

/// The first byte of every address-prefix key (see the module doc).
pub const IP_MARK: u8 = b'.';

/// Longest address-prefix key: the mark, the family and 128 bits.
pub(crate) const MAX_IP_KEY: usize = 2 + 128;

/// Writes the key of `net` (the mark, `4` or `6`, one `0`/`1` byte per prefix bit) into `key`.
/// `net` should have its host bits clear; they are not read.
pub(crate) fn ip_key(net: &ipnet::IpNet, key: &mut Vec<u8>) {
    key.push(IP_MARK);
    let (family, bits, len) = match net {
        ipnet::IpNet::V4(n) => (b'4', u128::from(n.addr().to_bits()) << 96, n.prefix_len()),
        ipnet::IpNet::V6(n) => (b'6', n.addr().to_bits(), n.prefix_len()),
    };
    key.push(family);
    for i in 0..len {
        key.push(if bits >> (127 - i) & 1 == 1 {
            b'1'
        } else {
            b'0'
        });
    }
}

/// The prefix an address-prefix key stands for; `None` when `key` is not one.
pub fn ip_of_key(key: &[u8]) -> Option<ipnet::IpNet> {
    let (&family, bits) = key.strip_prefix(&[IP_MARK])?.split_first()?;
    let mut v = 0u128;
    for (i, &b) in bits.iter().enumerate() {
        match b {
            b'0' => {}
            b'1' if i < 128 => v |= 1 << (127 - i),
            _ => return None,
        }
    }
    let len = u8::try_from(bits.len()).ok()?;
    match family {
        b'4' => ipnet::Ipv4Net::new(std::net::Ipv4Addr::from_bits((v >> 96) as u32), len)
            .ok()
            .map(ipnet::IpNet::V4),
        b'6' => ipnet::Ipv6Net::new(std::net::Ipv6Addr::from_bits(v), len)
            .ok()
            .map(ipnet::IpNet::V6),
        _ => None,
    }
}

/// Packs one verdict slot; see the module doc.
pub(crate) fn pack_slot(kind: ListKind, action: Action, list: u16) -> u32 {
    1 | (u32::from(kind == ListKind::Allow) << 1)
        | (u32::from(action.code()) << 2)
        | (u32::from(list) << 5)
}

/// Unpacks a slot; `None` when absent or carrying an action code this build does not know.
#[inline]
pub(crate) fn unpack_slot(slot: u32) -> Option<(ListKind, Action, u16)> {
    if slot & 1 == 0 {
        return None;
    }
    let kind = if slot & 2 != 0 {
        ListKind::Allow
    } else {
        ListKind::Block
    };
    let action = Action::from_code(((slot >> 2) & 7) as u8)?;
    Some((kind, action, (slot >> 5) as u16))
}

/// Checks that `key` holds no 0x00 byte and that both slots of its `value` name one of the
/// file's `lists` (action codes this build does not know are left to [`unpack_slot`], which
/// skips them).
pub(crate) fn check_value(key: &[u8], value: u64, lists: usize) -> Result<(), String> {
    // No name holds a 0x00 byte, and the alternates' keys (`key ++ 0x00 ++ index`) sort in
    // their names' order only because of it: a crafted key with one would make a merge write
    // alternates out of order.
    if key.contains(&0) {
        return Err(format!(
            "the entry {:?} holds a 0x00 byte, which no name has",
            String::from_utf8_lossy(key)
        ));
    }
    for slot in [value as u32, (value >> 32) as u32] {
        if slot & 1 == 1 && (slot >> 5) as usize >= lists {
            return Err(format!(
                "the entry {:?} names list #{}, the file has {lists}",
                String::from_utf8_lossy(key),
                slot >> 5
            ));
        }
    }
    Ok(())
}

fn slot_is_allow(slot: u32) -> bool {
    slot & 2 != 0
}

/// The merge rule for two entries landing in the same slot: first wins, allow beats block.
pub(crate) fn merge_slot(cur: u32, new: u32) -> u32 {
    if cur == 0 || (slot_is_allow(new) && !slot_is_allow(cur)) {
        new
    } else {
        cur
    }
}

/// A slot of one file with its list id moved up by `base`: how a list's entries keep pointing at
/// it when its table is appended after `base` other lists (the merge).
pub(crate) fn shift_slot(slot: u32, base: u32) -> u32 {
    if slot & 1 == 0 {
        0
    } else {
        (slot & 0x1f) | (((slot >> 5) + base) << 5)
    }
}

/// Longest key of the alternates FST: a name, the 0x00 and the u16 index.
pub(crate) const MAX_ALT_KEY: usize = MAX_NAME + 3;

/// Writes the alternates key of entry `i` of `key` into `buf`; `None` if `key` is too long to
/// be a name (then it has no alternates).
#[inline]
pub(crate) fn alt_key<'a>(buf: &'a mut [u8; MAX_ALT_KEY], key: &[u8], i: u16) -> Option<&'a [u8]> {
    let n = key.len();
    if n > MAX_NAME {
        return None;
    }
    buf[..n].copy_from_slice(key);
    buf[n] = 0;
    buf[n + 1..n + 3].copy_from_slice(&i.to_be_bytes());
    Some(&buf[..n + 3])
}

/// Every entry of one key, one per list and slot (each list's own entries merged by
/// [`merge_slot`]), in merge order: what the alternates FST holds for a key that two lists share.
#[derive(Clone, Debug, Default)]
pub(crate) struct KeyEntries {
    /// (exact slot, slot).
    entries: Vec<(bool, u32)>,
}

impl KeyEntries {
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    /// Adds one entry (ignored when `slot` is absent).
    pub(crate) fn add(&mut self, exact: bool, slot: u32) {
        if slot & 1 == 0 {
            return;
        }
        match self
            .entries
            .iter_mut()
            .find(|(e, s)| *e == exact && *s >> 5 == slot >> 5)
        {
            Some((_, s)) => *s = merge_slot(*s, slot),
            None => self.entries.push((exact, slot)),
        }
    }

    /// Whether lists share a slot: only then does the main value hide an entry.
    pub(crate) fn shared(&self) -> bool {
        let exact = self.entries.iter().filter(|e| e.0).count();
        exact > 1 || self.entries.len() - exact > 1
    }
}

/// Builds the alternates FST of a file from keys given in increasing order.
pub(crate) struct Alternates {
    builder: fst::MapBuilder<Vec<u8>>,
    buf: Box<[u8; MAX_ALT_KEY]>,
    keys: u64,
}

impl Alternates {
    fn new() -> Alternates {
        Alternates {
            builder: fst::MapBuilder::memory(),
            buf: Box::new([0; MAX_ALT_KEY]),
            keys: 0,
        }
    }

    /// Records every entry of `key` if lists share one of its slots.
    pub(crate) fn add(&mut self, key: &[u8], entries: &KeyEntries) -> Result<(), Error> {
        if !entries.shared() {
            return Ok(());
        }
        for (i, &(exact, slot)) in entries.entries.iter().enumerate() {
            let Some(k) = u16::try_from(i)
                .ok()
                .and_then(|i| alt_key(&mut self.buf, key, i))
            else {
                break;
            };
            let value = if exact {
                u64::from(slot) << 32
            } else {
                u64::from(slot)
            };
            self.builder
                .insert(k, value)
                .map_err(|source| Error::Build { source })?;
            self.keys += 1;
        }
        Ok(())
    }

    fn finish(self) -> Result<Vec<u8>, Error> {
        if self.keys == 0 {
            return Ok(Vec::new());
        }
        self.builder
            .into_inner()
            .map_err(|source| Error::Build { source })
    }
}

/// Writes a whole compiled file to `w`: header, the encoded list `table`, the FST split into
/// `shards` shards, whose keys `fill` inserts in strictly increasing order, and the alternates
/// `fill` records. Returns the number of distinct keys. Shared by [`compile`] and the
/// hot-reload merge.
pub(crate) fn write_file<W: Write + Seek>(
    w: &mut W,
    path: &Path,
    table: &[u8],
    shards: usize,
    fill: impl FnOnce(&mut ShardedBuilder, &mut Alternates) -> Result<(), Error>,
) -> Result<u64, Error> {
    let mut builder = ShardedBuilder::new(shards);
    let mut alternates = Alternates::new();
    fill(&mut builder, &mut alternates)?;
    let (fsts, keys) = builder.finish()?;
    write_built(w, path, table, fsts, keys, alternates.finish()?)
}

/// [`write_file`] for shards built elsewhere (in parallel, each from its own sorted keys) and
/// the alternates of every shard, in key order.
pub(crate) fn write_parts<W: Write + Seek>(
    w: &mut W,
    path: &Path,
    table: &[u8],
    fsts: Vec<Vec<u8>>,
    keys: u64,
    alts: Vec<(Box<[u8]>, KeyEntries)>,
) -> Result<u64, Error> {
    let mut alternates = Alternates::new();
    for (k, entries) in &alts {
        alternates.add(k, entries)?;
    }
    write_built(w, path, table, fsts, keys, alternates.finish()?)
}

fn write_built<W: Write + Seek>(
    w: &mut W,
    path: &Path,
    table: &[u8],
    fsts: Vec<Vec<u8>>,
    keys: u64,
    alts: Vec<u8>,
) -> Result<u64, Error> {
    let werr = |source: io::Error| Error::Write {
        path: path.to_path_buf(),
        source,
    };

    w.write_all(&[0u8; HEADER_LEN]).map_err(werr)?;
    let mut cw = CrcWriter {
        inner: &mut *w,
        crc: crc32fast::Hasher::new(),
        len: 0,
    };
    cw.write_all(table).map_err(werr)?;
    let mut dir = Vec::with_capacity(20 + 8 * fsts.len());
    dir.extend_from_slice(&(fsts.len() as u32).to_le_bytes());
    dir.extend_from_slice(&keys.to_le_bytes());
    for f in &fsts {
        dir.extend_from_slice(&(f.len() as u64).to_le_bytes());
    }
    dir.extend_from_slice(&(alts.len() as u64).to_le_bytes());
    cw.write_all(&dir).map_err(werr)?;
    for f in &fsts {
        cw.write_all(f).map_err(werr)?;
    }
    cw.write_all(&alts).map_err(werr)?;
    let data_len = cw.len - table.len() as u64;
    let crc = cw.crc.finalize();
    let mut header = [0u8; HEADER_LEN];
    header[0..4].copy_from_slice(&MAGIC);
    header[4..8].copy_from_slice(&VERSION.to_le_bytes());
    header[8..12].copy_from_slice(&(table.len() as u32).to_le_bytes());
    header[12..16].copy_from_slice(&crc.to_le_bytes());
    header[16..24].copy_from_slice(&data_len.to_le_bytes());
    w.seek(SeekFrom::Start(0)).map_err(werr)?;
    w.write_all(&header).map_err(werr)?;
    w.seek(SeekFrom::End(0)).map_err(werr)?;
    w.flush().map_err(werr)?;
    Ok(keys)
}

/// Where the parts of a compiled file are, after its header and checksum were checked.
#[derive(Debug)]
pub(crate) struct Layout {
    /// The list table.
    pub table: Range<usize>,
    /// Each FST shard.
    pub shards: Vec<Range<usize>>,
    /// Distinct names (`None` in version 1 files: the single FST's length).
    pub keys: Option<u64>,
    /// The alternates FST (version 4, when there is one).
    pub alts: Option<Range<usize>>,
}

/// Checks magic, version, lengths and the body checksum of a compiled file and finds its parts.
/// Only the structure of the FSTs is left to [`check_shards`].
pub(crate) fn layout(b: &[u8], path: &Path) -> Result<Layout, Error> {
    let corrupt = |reason: String| Error::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    if b.len() < HEADER_LEN {
        return Err(corrupt(format!(
            "file is {} bytes, shorter than the {HEADER_LEN}-byte header",
            b.len()
        )));
    }
    if b[0..4] != MAGIC {
        return Err(Error::BadMagic {
            path: path.to_path_buf(),
            found: b[0..4].to_vec(),
        });
    }
    let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    let u64_at = |o: usize| {
        let mut x = [0u8; 8];
        x.copy_from_slice(&b[o..o + 8]);
        u64::from_le_bytes(x)
    };
    let version = u32_at(4);
    if !(MIN_VERSION..=VERSION).contains(&version) {
        return Err(Error::Version {
            path: path.to_path_buf(),
            found: version,
            expected: VERSION,
        });
    }
    let table_len = u32_at(8) as u64;
    let crc = u32_at(12);
    let data_len = u64_at(16);
    let want = (HEADER_LEN as u64)
        .checked_add(table_len)
        .and_then(|x| x.checked_add(data_len));
    if want != Some(b.len() as u64) {
        return Err(corrupt(format!(
            "header says {HEADER_LEN}+{table_len}+{data_len} bytes but the file has {} (truncated?)",
            b.len()
        )));
    }
    let found = crc32fast::hash(&b[HEADER_LEN..]);
    if found != crc {
        return Err(Error::Checksum {
            path: path.to_path_buf(),
            expected: crc,
            found,
        });
    }
    let data = HEADER_LEN + table_len as usize;
    let table = HEADER_LEN..data;
    if version == 1 {
        return Ok(Layout {
            table,
            shards: std::iter::once(data..b.len()).collect(),
            keys: None,
            alts: None,
        });
    }
    let short = || corrupt("shard directory truncated".into());
    if b.len() - data < 12 {
        return Err(short());
    }
    let count = u32_at(data) as usize;
    let keys = u64_at(data + 4);
    if count == 0 || count > MAX_SHARDS {
        return Err(corrupt(format!("shard directory claims {count} shards")));
    }
    if version == 2 && count > 1 {
        return Err(Error::OldShards {
            path: path.to_path_buf(),
            shards: count,
        });
    }
    let dir_len = 12 + 8 * count + if version >= 4 { 8 } else { 0 };
    let mut at = data + dir_len;
    if at > b.len() {
        return Err(short());
    }
    let alt_len = if version >= 4 {
        u64_at(data + 12 + 8 * count)
    } else {
        0
    };
    let mut shards = Vec::with_capacity(count);
    for i in 0..count {
        let len = u64_at(data + 12 + 8 * i);
        let end = (at as u64)
            .checked_add(len)
            .filter(|&e| e <= b.len() as u64)
            .ok_or_else(|| corrupt(format!("shard {i} runs past the end of the file")))?
            as usize;
        shards.push(at..end);
        at = end;
    }
    let alts = if alt_len == 0 {
        None
    } else {
        let end = (at as u64)
            .checked_add(alt_len)
            .filter(|&e| e <= b.len() as u64)
            .ok_or_else(|| corrupt("the alternates run past the end of the file".into()))?
            as usize;
        let r = at..end;
        at = end;
        Some(r)
    };
    if at != b.len() {
        return Err(corrupt(format!(
            "{} bytes after the last shard",
            b.len() - at
        )));
    }
    Ok(Layout {
        table,
        shards,
        keys: Some(keys),
        alts,
    })
}

/// Checks the structure of every FST shard of a file laid out by [`layout`] and returns its
/// number of distinct names, which must agree with the directory: one-label names are copied
/// into every shard ([`super::shard`]), so the shards hold `names + (K - 1) × one_label` keys.
///
/// Runs inside `catch_unwind`: fst decodes nodes while it is checked, and should a crafted file
/// still find a panic in it, the file is refused with that reason instead of taking the process
/// down.
pub(crate) fn check_shards(b: &[u8], parts: &Layout, path: &Path) -> Result<u64, Error> {
    let corrupt = |reason: String| Error::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let mut checked: Vec<_> = across_shards(parts.shards.len(), Vec::new, |out, i| {
        let r = parts.shards[i].clone();
        out.push((i, catch_panic(|| verify::check(&b[r])).and_then(|r| r)));
    })
    .into_iter()
    .flatten()
    .collect();
    checked.sort_by_key(|(i, _)| *i);
    let mut facts = Vec::with_capacity(parts.shards.len());
    for (i, f) in checked {
        facts.push(f.map_err(|e| corrupt(format!("FST shard {i}: {e}")))?);
    }
    let ones = facts.first().map_or(0, |f| f.one_label);
    if let Some(i) = facts.iter().position(|f| f.one_label != ones) {
        return Err(corrupt(format!(
            "FST shard {i} holds {} one-label names, shard 0 holds {ones}; every shard holds all of them",
            facts[i].one_label
        )));
    }
    let keys: u64 = facts.iter().map(|f| f.keys).sum();
    let copies = ones * (facts.len() as u64).saturating_sub(1);
    let names = keys.checked_sub(copies).ok_or_else(|| {
        corrupt(format!(
            "the shards hold {keys} keys, fewer than their {copies} copies of one-label names"
        ))
    })?;
    if names > MAX_NAMES {
        return Err(corrupt(format!(
            "{names} names, more than the {MAX_NAMES} this build reads"
        )));
    }
    if let Some(claimed) = parts.keys
        && claimed != names
    {
        return Err(corrupt(format!(
            "shard directory claims {claimed} names but the shards hold {names}"
        )));
    }
    Ok(names)
}

/// Checks the alternates FST of a file laid out by [`layout`]: its structure, that every key is
/// a name followed by 0x00 and a two-byte index, and that every value is one slot naming one of
/// the file's `lists`. Runs inside `catch_unwind` like [`check_shards`].
pub(crate) fn check_alts(b: &[u8], parts: &Layout, lists: usize, path: &Path) -> Result<(), Error> {
    let Some(r) = parts.alts.clone() else {
        return Ok(());
    };
    let corrupt = |reason: String| Error::Corrupt {
        path: path.to_path_buf(),
        reason: format!("alternates: {reason}"),
    };
    let bytes = &b[r];
    catch_panic(|| {
        use fst::Streamer;
        verify::check_keys(bytes, MAX_ALT_KEY)?;
        let map = fst::Map::new(bytes).map_err(|e| e.to_string())?;
        let mut stream = map.stream();
        while let Some((key, value)) = stream.next() {
            let n = key.len();
            if n < 4 || key[n - 3] != 0 {
                return Err(format!(
                    "the key {:?} is not a name and an index",
                    String::from_utf8_lossy(key)
                ));
            }
            check_value(&key[..n - 3], value, lists)?;
            if (value & 1) + ((value >> 32) & 1) != 1 {
                return Err(format!(
                    "the entry of {:?} holds {value:#x}, not one slot",
                    String::from_utf8_lossy(&key[..n - 3])
                ));
            }
        }
        Ok(())
    })
    .and_then(|r| r)
    .map_err(corrupt)
}

/// A version 4 file without alternates rewritten as `version` (2 or 3): the directory without
/// its alternates length. For the tests of older versions.
#[cfg(test)]
pub(crate) fn downgrade(mut b: Vec<u8>, version: u32) -> Vec<u8> {
    let table_len = u32::from_le_bytes(b[8..12].try_into().unwrap()) as usize;
    let dir = HEADER_LEN + table_len;
    let count = u32::from_le_bytes(b[dir..dir + 4].try_into().unwrap()) as usize;
    let at = dir + 12 + 8 * count;
    assert_eq!(b[at..at + 8], [0; 8], "a file with alternates");
    b.drain(at..at + 8);
    b[4..8].copy_from_slice(&version.to_le_bytes());
    let data_len = (b.len() - dir) as u64;
    b[16..24].copy_from_slice(&data_len.to_le_bytes());
    let crc = crc32fast::hash(&b[HEADER_LEN..]);
    b[12..16].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Runs `f`, turning a panic into its message.
pub(crate) fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
        let msg = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        format!("check failed with a panic: {msg}")
    })
}

/// Hashes and counts what passes through, so the body CRC needs no second pass.
struct CrcWriter<W> {
    inner: W,
    crc: crc32fast::Hasher,
    len: u64,
}

impl<W: Write> Write for CrcWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn format_code(f: Format) -> u8 {
    Format::ALL.iter().position(|&x| x == f).unwrap_or(0) as u8
}

pub(crate) fn encode_table(lists: &[ListInfo]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&(lists.len() as u32).to_le_bytes());
    for l in lists {
        put_str(&mut t, &l.name);
        put_str(&mut t, &l.path.to_string_lossy());
        t.push(u8::from(l.kind == ListKind::Allow));
        t.push(l.action.code());
        t.push(format_code(l.format));
        t.push(u8::from(l.match_mode == MatchMode::Exact));
        put_str(&mut t, &l.category);
        t.extend_from_slice(&l.ede.to_le_bytes());
        t.extend_from_slice(&l.entries.to_le_bytes());
    }
    t
}

/// Fewest bytes one list takes in the table: three empty strings (u32 lengths), four u8 codes,
/// the EDE (u16) and the entry count (u64).
const MIN_LIST_BYTES: usize = 3 * 4 + 4 + 2 + 8;

/// Reads the list table written by [`encode_table`]; the error is a human-readable reason. Every
/// count is checked against the bytes left before anything is allocated for it.
pub(crate) fn decode_table(mut t: &[u8]) -> Result<Vec<ListInfo>, String> {
    fn take<'a>(t: &mut &'a [u8], n: usize, what: &str) -> Result<&'a [u8], String> {
        if t.len() < n {
            return Err(format!("list table truncated in {what}"));
        }
        let (a, b) = t.split_at(n);
        *t = b;
        Ok(a)
    }
    fn u32_(t: &mut &[u8], what: &str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            take(t, 4, what)?.try_into().unwrap_or_default(),
        ))
    }
    fn str_(t: &mut &[u8], what: &str) -> Result<String, String> {
        let n = u32_(t, what)? as usize;
        String::from_utf8(take(t, n, what)?.to_vec())
            .map_err(|_| format!("list table: {what} is not UTF-8"))
    }
    fn u8_(t: &mut &[u8], what: &str) -> Result<u8, String> {
        Ok(take(t, 1, what)?[0])
    }
    let count = u32_(&mut t, "list count")? as usize;
    if count > MAX_LISTS || count > t.len() / MIN_LIST_BYTES {
        return Err(format!(
            "list table claims {count} lists in {} bytes",
            t.len()
        ));
    }
    let mut lists = Vec::with_capacity(count);
    for _ in 0..count {
        let name = str_(&mut t, "name")?;
        let path = PathBuf::from(str_(&mut t, "path")?);
        let kind = if u8_(&mut t, "kind")? == 1 {
            ListKind::Allow
        } else {
            ListKind::Block
        };
        let code = u8_(&mut t, "action")?;
        let action =
            Action::from_code(code).ok_or_else(|| format!("unknown action code {code}"))?;
        let code = u8_(&mut t, "format")?;
        let format = *Format::ALL
            .get(code as usize)
            .ok_or_else(|| format!("unknown format code {code}"))?;
        let match_mode = if u8_(&mut t, "match mode")? == 1 {
            MatchMode::Exact
        } else {
            MatchMode::Subtree
        };
        let category = str_(&mut t, "category")?;
        let ede = u16::from_le_bytes(take(&mut t, 2, "ede")?.try_into().unwrap_or_default());
        let entries =
            u64::from_le_bytes(take(&mut t, 8, "entries")?.try_into().unwrap_or_default());
        lists.push(ListInfo {
            name,
            path,
            kind,
            action,
            category,
            ede,
            entries,
            format,
            match_mode,
        });
    }
    if !t.is_empty() {
        return Err(format!("{} unexpected bytes after the list table", t.len()));
    }
    Ok(lists)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_roundtrip() {
        for &a in &Action::ALL {
            for kind in [ListKind::Block, ListKind::Allow] {
                for list in [0u16, 1, 77, u16::MAX] {
                    assert_eq!(unpack_slot(pack_slot(kind, a, list)), Some((kind, a, list)));
                }
            }
        }
        assert_eq!(unpack_slot(0), None);
    }

    #[test]
    fn merge_rule() {
        let b0 = pack_slot(ListKind::Block, Action::Sinkhole, 0);
        let b1 = pack_slot(ListKind::Block, Action::Nxdomain, 1);
        let a2 = pack_slot(ListKind::Allow, Action::Sinkhole, 2);
        let a3 = pack_slot(ListKind::Allow, Action::Sinkhole, 3);
        assert_eq!(merge_slot(0, b1), b1);
        assert_eq!(merge_slot(b0, b1), b0);
        assert_eq!(merge_slot(b0, a2), a2);
        assert_eq!(merge_slot(a2, b0), a2);
        assert_eq!(merge_slot(a2, a3), a2);
    }

    #[test]
    fn a_list_count_is_checked_against_the_table_before_allocating() {
        let mut t = 65_535u32.to_le_bytes().to_vec();
        t.extend_from_slice(&[0; 100]);
        let e = decode_table(&t).unwrap_err();
        assert_eq!(e, "list table claims 65535 lists in 100 bytes");
        let one = encode_table(&[ListInfo {
            name: String::new(),
            path: PathBuf::new(),
            kind: ListKind::Block,
            action: Action::Sinkhole,
            category: String::new(),
            ede: 15,
            entries: 0,
            format: Format::Plain,
            match_mode: MatchMode::Subtree,
        }]);
        assert_eq!(
            one.len(),
            4 + MIN_LIST_BYTES,
            "the smallest list is what the check assumes"
        );
        assert_eq!(decode_table(&one).unwrap().len(), 1);
    }

    #[test]
    fn shifted_slots_keep_kind_and_action() {
        let block = |list: u32| 1 | (list << 5);
        assert_eq!(shift_slot(0, 7), 0);
        assert_eq!(shift_slot(block(1) | (3 << 2), 7), block(8) | (3 << 2));
        let a = pack_slot(ListKind::Allow, Action::Refused, 2);
        assert_eq!(
            unpack_slot(shift_slot(a, 3)),
            Some((ListKind::Allow, Action::Refused, 5))
        );
    }

    /// A key with a 0x00 byte would put its alternates out of order (fuzz seed
    /// `crash-nul-byte-key-breaks-alternates-order`): refused wherever keys are checked.
    #[test]
    fn keys_with_a_nul_byte_are_refused() {
        let value = u64::from(pack_slot(ListKind::Block, Action::Sinkhole, 0));
        assert!(check_value(b"com.example", value, 1).is_ok());
        let e = check_value(b"com.ex\0ample", value, 1).unwrap_err();
        assert!(e.contains("0x00"), "{e}");
        let mut buf = [0u8; MAX_ALT_KEY];
        let a = alt_key(&mut buf, b"com.a", 1).unwrap().to_vec();
        let b = alt_key(&mut buf, b"com.a.b", 0).unwrap().to_vec();
        assert!(
            a < b,
            "alternates of a name sort before those of the names below it"
        );
    }
}
