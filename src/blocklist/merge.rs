//! Merging compiled files into one, without parsing or sorting anything again.
//!
//! Each part is already sorted and normalised, so the merge is one streaming union of their
//! FSTs: each key's slots are moved to the merged list table ([`format::shift_slot`]) and
//! combined with the compiler's rule ([`format::merge_slot`]: first list wins, allow beats
//! block). Parts merge in the order given. The hot-reload pipeline merges one compiled file per
//! source this way; the result is verified by [`super::Blocklist::open`] before it is served.

use std::io::{Seek, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use fst::Streamer;

use super::format::{
    self, KeyEntries, MAX_ALT_KEY, alt_key, encode_table, layout, merge_slot, shift_slot,
    write_file,
};
use super::shard::{belongs, shards_for};
use super::{Error, ListInfo, MAX_LISTS};

/// One compiled file to merge, read into memory and checked as [`super::Blocklist::open`] checks
/// a file (header, checksum, list table, the structure of every FST), so that the union cannot be
/// led astray by a crafted part; the result is checked again when it is opened.
#[derive(Debug)]
pub struct Part {
    path: PathBuf,
    bytes: Vec<u8>,
    shards: Vec<Range<usize>>,
    /// The alternates FST, if the file has one ([`format`]).
    alts: Option<Range<usize>>,
    lists: Vec<ListInfo>,
}

impl Part {
    /// Reads and checks `path`.
    pub fn read(path: &Path) -> Result<Part, Error> {
        let bytes = std::fs::read(path).map_err(|source| Error::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Part::from_bytes(path, bytes)
    }

    /// Checks a file already in memory; `path` names it in errors.
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Part, Error> {
        let corrupt = |reason| Error::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        let (parts, lists) = format::catch_panic(|| {
            let parts = layout(&bytes, path)?;
            let lists = format::decode_table(&bytes[parts.table.clone()]).map_err(corrupt)?;
            format::check_shards(&bytes, &parts, path)?;
            format::check_alts(&bytes, &parts, lists.len(), path)?;
            Ok::<_, Error>((parts, lists))
        })
        .map_err(corrupt)??;
        Ok(Part {
            path: path.to_path_buf(),
            bytes,
            shards: parts.shards,
            alts: parts.alts,
            lists,
        })
    }

    /// The lists in the file.
    pub fn lists(&self) -> &[ListInfo] {
        &self.lists
    }

    /// Entries accepted into the file, over all its lists.
    pub fn entries(&self) -> u64 {
        self.lists.iter().map(|l| l.entries).sum()
    }
}

/// Writes the merge of `parts` as one compiled file to `w` (`path` names it in errors).
pub fn merge_into<W: Write + Seek>(parts: &[Part], w: &mut W, path: &Path) -> Result<(), Error> {
    let werr = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    if let [one] = parts {
        // One part: the merge would be this file byte for byte (its list ids need no moving),
        // so skip the union and the second FST build.
        return w.write_all(&one.bytes).map_err(werr);
    }
    let mut table = Vec::new();
    let mut bases = Vec::with_capacity(parts.len());
    for p in parts {
        bases.push(table.len() as u32);
        table.extend(p.lists.iter().cloned());
    }
    if table.len() > MAX_LISTS {
        return Err(Error::TooManyLists {
            count: table.len(),
            max: MAX_LISTS,
        });
    }
    let table_bytes = encode_table(&table);
    let mut maps = Vec::new();
    // Which part and shard each stream of the union comes from (a part has one per shard).
    let mut stream_part = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        for (shard, r) in p.shards.iter().enumerate() {
            let m = fst::Map::new(&p.bytes[r.clone()]).map_err(|e| Error::Corrupt {
                path: p.path.clone(),
                reason: format!("FST shard: {e}"),
            })?;
            maps.push(m);
            stream_part.push((i, shard));
        }
    }
    let upper_bound: u64 = maps.iter().map(|m| m.len() as u64).sum();
    let mut op = fst::map::OpBuilder::new();
    for m in &maps {
        op.push(m.stream());
    }
    let mut union = op.union();
    let alts = parts
        .iter()
        .map(|p| {
            p.alts
                .clone()
                .map(|r| {
                    fst::raw::Fst::new(&p.bytes[r]).map_err(|e| Error::Corrupt {
                        path: p.path.clone(),
                        reason: format!("alternates: {e}"),
                    })
                })
                .transpose()
        })
        .collect::<Result<Vec<_>, _>>()?;
    write_file(
        w,
        path,
        &table_bytes,
        shards_for(upper_bound),
        |builder, alternates| {
            let mut ivs: Vec<(usize, u64)> = Vec::new();
            let mut all = KeyEntries::default();
            let mut buf = [0u8; MAX_ALT_KEY];
            while let Some((key, values)) = union.next() {
                ivs.clear();
                for iv in values {
                    let (part, shard) = stream_part[iv.index];
                    let p = &parts[part];
                    let corrupt = |reason| Error::Corrupt {
                        path: p.path.clone(),
                        reason,
                    };
                    if !belongs(key, shard, p.shards.len()) {
                        return Err(corrupt(format!(
                            "the entry {:?} is in FST shard {shard}, not in the one its name hashes to",
                            String::from_utf8_lossy(key)
                        )));
                    }
                    format::check_value(key, iv.value, p.lists.len()).map_err(corrupt)?;
                    ivs.push((part, iv.value));
                }
                // Parts in merge order, whatever order the union yields them in.
                ivs.sort_unstable_by_key(|iv| iv.0);
                let (mut subtree, mut exact) = (0u32, 0u32);
                all.clear();
                for &(part, value) in &ivs {
                    let base = bases[part];
                    subtree = merge_slot(subtree, shift_slot(value as u32, base));
                    exact = merge_slot(exact, shift_slot((value >> 32) as u32, base));
                    // The part's own alternates of this key, if its lists share it, else its value.
                    let mut own = 0u16;
                    if let Some(alts) = &alts[part] {
                        while let Some(v) = alt_key(&mut buf, key, own).and_then(|k| alts.get(k)) {
                            let v = v.value();
                            all.add(false, shift_slot(v as u32, base));
                            all.add(true, shift_slot((v >> 32) as u32, base));
                            own = own.saturating_add(1);
                            if own == u16::MAX {
                                break;
                            }
                        }
                    }
                    if own == 0 {
                        all.add(false, shift_slot(value as u32, base));
                        all.add(true, shift_slot((value >> 32) as u32, base));
                    }
                }
                builder.insert(key, u64::from(subtree) | (u64::from(exact) << 32))?;
                alternates.add(key, &all)?;
            }
            Ok(())
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::blocklist::format::fst_checksum;
    use crate::blocklist::format::{HEADER_LEN, pack_slot};
    use crate::blocklist::{Action, Compiler, Format, ListKind, MatchMode};

    fn info(name: &str) -> ListInfo {
        ListInfo {
            name: name.into(),
            path: PathBuf::from(name),
            kind: ListKind::Block,
            action: Action::Sinkhole,
            category: "fraud".into(),
            ede: 15,
            entries: 1,
            format: Format::Plain,
            match_mode: MatchMode::Subtree,
        }
    }

    fn file(name: &str) -> Vec<u8> {
        let mut c = Compiler::new();
        let l = c.add_list(info("l")).unwrap();
        c.insert(
            l,
            name,
            ListKind::Block,
            MatchMode::Subtree,
            Action::Sinkhole,
        )
        .unwrap();
        c.to_bytes().unwrap()
    }

    /// Rewrites the body checksum after an edit.
    fn resum(mut b: Vec<u8>) -> Vec<u8> {
        let crc = crc32fast::hash(&b[HEADER_LEN..]);
        b[12..16].copy_from_slice(&crc.to_le_bytes());
        b
    }

    #[test]
    fn a_part_is_checked_like_an_opened_file() {
        let good = file("a.test");
        let table_len = u32::from_le_bytes(good[8..12].try_into().unwrap()) as usize;
        let mut b = good.clone();
        let at = HEADER_LEN + table_len + 4;
        b[at..at + 8].copy_from_slice(&(1u64 << 50).to_le_bytes());
        let e = Part::from_bytes(Path::new("p.fst"), resum(b)).unwrap_err();
        assert!(
            e.to_string()
                .contains("shard directory claims 1125899906842624 names but the shards hold 1"),
            "{e}"
        );
        assert!(Part::from_bytes(Path::new("p.fst"), good).is_ok());
    }

    #[test]
    fn an_entry_naming_a_list_its_part_lacks_fails_the_merge() {
        // One list in the table, an entry that names list #3: shifted into the merged table it
        // would name another part's list.
        let mut c = Compiler::new();
        let l = c.add_list(info("l")).unwrap();
        c.insert(
            l,
            "b.test",
            ListKind::Block,
            MatchMode::Subtree,
            Action::Sinkhole,
        )
        .unwrap();
        let mut b = c.to_bytes().unwrap();
        let (ok, stray) = (
            pack_slot(ListKind::Block, Action::Sinkhole, 0),
            pack_slot(ListKind::Block, Action::Sinkhole, 3),
        );
        // The value is the FST's only output; swap it in place (same pack size) and fix both
        // checksums: fst's own and the file's.
        let table_len = u32::from_le_bytes(b[8..12].try_into().unwrap()) as usize;
        let fst_at = HEADER_LEN + table_len + 28;
        let pos = (fst_at..b.len())
            .find(|&i| b[i] == ok as u8)
            .expect("the output byte");
        b[pos] = stray as u8;
        let n = b.len();
        let sum = fst_checksum(&b[fst_at..n - 4]);
        b[n - 4..].copy_from_slice(&sum.to_le_bytes());
        let parts = [
            Part::from_bytes(Path::new("a.fst"), file("a.test")).unwrap(),
            Part::from_bytes(Path::new("b.fst"), resum(b)).unwrap(),
        ];
        let e = merge_into(&parts, &mut Cursor::new(Vec::new()), Path::new("out.fst")).unwrap_err();
        assert!(
            e.to_string().contains(
                "b.fst: corrupt blocklist: the entry \"test.b\" names list #3, the file has 1"
            ),
            "{e}"
        );
    }
}
