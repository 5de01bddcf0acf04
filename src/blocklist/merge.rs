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

use super::format::{self, encode_table, layout, merge_slot, shift_slot, write_file};
use super::shard::shards_for;
use super::{Error, ListInfo, MAX_LISTS};

/// One compiled file to merge, read into memory with its header, checksum and list table
/// checked (its FSTs are checked as the union reads them, and the result in full when opened).
#[derive(Debug)]
pub struct Part {
    path: PathBuf,
    bytes: Vec<u8>,
    shards: Vec<Range<usize>>,
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
        let parts = layout(&bytes, path)?;
        let lists = format::decode_table(&bytes[parts.table]).map_err(|reason| Error::Corrupt {
            path: path.to_path_buf(),
            reason,
        })?;
        Ok(Part {
            path: path.to_path_buf(),
            bytes,
            shards: parts.shards,
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
    // Which part each stream of the union comes from (a part has one per shard).
    let mut stream_part = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        for r in &p.shards {
            let m = fst::Map::new(&p.bytes[r.clone()]).map_err(|e| Error::Corrupt {
                path: p.path.clone(),
                reason: format!("FST shard: {e}"),
            })?;
            maps.push(m);
            stream_part.push(i);
        }
    }
    let upper_bound: u64 = maps.iter().map(|m| m.len() as u64).sum();
    let mut op = fst::map::OpBuilder::new();
    for m in &maps {
        op.push(m.stream());
    }
    let mut union = op.union();
    write_file(w, path, &table_bytes, shards_for(upper_bound), |builder| {
        let mut ivs: Vec<(usize, u64)> = Vec::new();
        while let Some((key, values)) = union.next() {
            ivs.clear();
            ivs.extend(values.iter().map(|iv| (stream_part[iv.index], iv.value)));
            // Parts in merge order, whatever order the union yields them in.
            ivs.sort_unstable_by_key(|iv| iv.0);
            let (mut subtree, mut exact) = (0u32, 0u32);
            for &(part, value) in &ivs {
                let base = bases[part];
                subtree = merge_slot(subtree, shift_slot(value as u32, base));
                exact = merge_slot(exact, shift_slot((value >> 32) as u32, base));
            }
            builder.insert(key, u64::from(subtree) | (u64::from(exact) << 32))?;
        }
        Ok(())
    })?;
    Ok(())
}
