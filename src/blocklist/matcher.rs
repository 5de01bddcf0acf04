//! The memory-mapped blocklist and its one-walk matcher.
//!
//! A query walks the FST once over its labels in reverse (`com`, `.`, `example`, `.`, `www`),
//! lowercasing bytes on the fly. Keys are reversed-label names, so every listed ancestor of the
//! query is a prefix of its key: checking `is_final` at each label boundary sees all of them in
//! one pass, from the least to the most specific. The deepest applicable entry wins.
//!
//! Most queries name nothing listed. For them a Bloom filter over every key, built when the file
//! is opened, answers from a few hash probes per label boundary instead of the FST walk (whose
//! cost is one node decode per byte of the name); only a possible match walks the FST, so the
//! answer is always the FST's.

use std::fs::File;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fst::raw::{Fst, Output};

use super::format::{
    HEADER_LEN, IP_MARK, MAX_ALT_KEY, MAX_IP_KEY, alt_key, catch_panic, check_alts, check_shards,
    check_value, decode_table, layout, unpack_slot,
};
use super::keyhash::KeyHasher;
use super::layered::{Hidden, Layers};
use super::shard::{belongs, in_every_shard, shard_of};
use super::{Error, ListInfo, ListKind, MatchMode, Verdict};

/// Most labels a wire-form name can have (255 bytes, each label at least 2 bytes).
pub const MAX_LABELS: usize = 128;
/// Longest wire-form name including the terminating zero (RFC 1035).
const MAX_WIRE: usize = 255;

/// The bytes behind one FST shard: a memory map or an owned buffer, restricted to its range.
struct FstBytes {
    data: Arc<Backing>,
    start: usize,
    end: usize,
}

enum Backing {
    Mmap(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Mmap(m) => m,
            Backing::Owned(v) => v,
        }
    }
}

impl AsRef<[u8]> for FstBytes {
    fn as_ref(&self) -> &[u8] {
        &self.data.bytes()[self.start..self.end]
    }
}

/// A compiled, verified, memory-mapped blocklist.
///
/// Immutable and `Send + Sync`: share it behind an `Arc`/`ArcSwap` and swap in a new one on reload.
pub struct Blocklist {
    lists: Vec<ListInfo>,
    /// The FST shards (none when nothing is listed); see [`super::shard`].
    shards: Vec<Fst<FstBytes>>,
    /// Distinct names over all shards.
    keys: usize,
    filter: Prefilter,
    /// Every entry of the keys that lists share ([`super::format`]): read only for policy
    /// groups that do not apply the list whose entry won.
    alts: Option<Fst<FstBytes>>,
    /// Whether shard 0 holds address prefixes ([`super::format`]): without them an answer's
    /// addresses cost one branch.
    has_ips: bool,
    path: Option<PathBuf>,
    /// Set when this is several files served as one until they are merged ([`super::layered`]);
    /// then the fields above are empty, but for the combined list table.
    pub(super) layers: Option<Layers>,
    /// Only the structure was checked ([`Blocklist::check_for_layer`]).
    partly_checked: bool,
}

/// One entry that a name matches, as [`Blocklist::matches`] lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Match {
    /// Block or allow.
    pub kind: ListKind,
    /// The entry's action.
    pub action: super::Action,
    /// Exact entries only match the name itself.
    pub match_mode: MatchMode,
    /// Index into [`Blocklist::lists`].
    pub list: u16,
    /// Labels of the entry (the last N labels of the name).
    pub matched_labels: u8,
}

/// Bits of Bloom filter per key, and bits set per key: about 0.5 % false positives.
const FILTER_BITS_PER_KEY: usize = 12;
const FILTER_PROBES: u64 = 4;
/// Most names per byte of FST for which the filter is built (real lists take 10–20 bytes a name).
const FILTER_MAX_NAMES_PER_BYTE: usize = 1;

/// A blocked Bloom filter over the FST's keys (hashed as [`KeyHasher`] sees them): all the bits
/// of one key live in one 64-byte block, so a probe costs one cache line, not one per bit.
/// Without blocks there is no filter and every name may be listed.
struct Prefilter {
    blocks: Box<[[u64; 8]]>,
}

impl Prefilter {
    /// An empty filter for `keys` keys.
    fn sized(keys: usize) -> Prefilter {
        let n = (keys.max(1) * FILTER_BITS_PER_KEY).div_ceil(512);
        Prefilter {
            blocks: vec![[0u64; 8]; n].into_boxed_slice(),
        }
    }

    /// No filter: every probe says "maybe".
    fn none() -> Prefilter {
        Prefilter {
            blocks: Box::new([]),
        }
    }

    /// Builds the filter of checked shards holding `keys` names (sized from it, so the caller
    /// checked it against the file). Every key goes through here once, so this is also where
    /// each key is checked to name one of the file's `lists` and to sit in its own shard, and
    /// one-label keys to be the same in every shard (which makes the name count exact: the
    /// directory's count assumes both).
    fn build<D: AsRef<[u8]> + Sync>(
        shards: &[Fst<D>],
        keys: usize,
        lists: usize,
    ) -> Result<Prefilter, String> {
        use fst::Streamer;
        // Each thread fills its own filter; they are OR-ed together at the end.
        type Found = Vec<(usize, Result<Vec<(Vec<u8>, u64)>, String>)>;
        let parts = super::shard::across_shards(
            shards.len(),
            || (Prefilter::sized(keys), Found::new()),
            |(f, found), i| {
                let mut stream = shards[i].stream();
                // This shard's one-label entries, which must be shard 0's exactly.
                let mut ones = Vec::new();
                let mut problem = None;
                while let Some((key, value)) = stream.next() {
                    let value = value.value();
                    let name = || String::from_utf8_lossy(key);
                    if let Err(e) = check_value(key, value, lists) {
                        problem = Some(e);
                        break;
                    }
                    if !belongs(key, i, shards.len()) {
                        problem = Some(format!(
                            "the entry {:?} is in FST shard {i}, not in the one its name hashes to",
                            name()
                        ));
                        break;
                    }
                    if in_every_shard(key) {
                        ones.push((key.to_vec(), value));
                    }
                    let mut h = KeyHasher::new();
                    h.key(key);
                    f.insert(h.finish());
                }
                found.push((i, problem.map_or(Ok(ones), Err)));
            },
        );
        let mut f = Prefilter::sized(keys);
        let mut found = Vec::new();
        for (part, part_found) in parts {
            for (mine, theirs) in f.blocks.iter_mut().zip(part.blocks.iter()) {
                for (a, b) in mine.iter_mut().zip(theirs) {
                    *a |= b;
                }
            }
            found.extend(part_found);
        }
        found.sort_by_key(|(i, _)| *i);
        let mut everywhere = None;
        for (i, ones) in found {
            let ones = ones?;
            match &everywhere {
                None => everywhere = Some(ones),
                Some(first) if *first == ones => {}
                Some(first) => {
                    return Err(match ones.iter().find(|o| !first.contains(o)) {
                        Some((k, _)) => format!(
                            "the one-label entry {:?} of FST shard {i} is not shard 0's (every shard holds the same)",
                            String::from_utf8_lossy(k)
                        ),
                        None => format!(
                            "FST shard {i} lacks one-label entries of shard 0 (every shard holds the same)"
                        ),
                    });
                }
            }
        }
        Ok(f)
    }

    /// The block of a key: the first hash scaled to the block count.
    #[inline]
    fn block(&self, (a, _): (u64, u64)) -> usize {
        ((a as u128 * self.blocks.len() as u128) >> 64) as usize
    }

    /// The `i`th of a key's bits in its block, from 9 bits of the second hash: (word, bit).
    #[inline]
    fn bit(b: u64, i: u64) -> (usize, u64) {
        let bit = (b >> (i * 9)) & 511;
        ((bit / 64) as usize, bit % 64)
    }

    fn insert(&mut self, h: (u64, u64)) {
        let block = self.block(h);
        for i in 0..FILTER_PROBES {
            let (word, bit) = Self::bit(h.1, i);
            self.blocks[block][word] |= 1 << bit;
        }
    }

    /// Branch-free: all probes are read and combined, since a short-circuit on a random bit
    /// would be a mispredicted branch about half the time.
    #[inline]
    fn may_contain(&self, h: (u64, u64)) -> bool {
        if self.blocks.is_empty() {
            return true;
        }
        let words = &self.blocks[self.block(h)];
        let mut all = 1;
        for i in 0..FILTER_PROBES {
            let (word, bit) = Self::bit(h.1, i);
            all &= words[word] >> bit;
        }
        all & 1 == 1
    }
}

impl std::fmt::Debug for Blocklist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blocklist")
            .field("path", &self.path)
            .field("lists", &self.lists.len())
            .field("names", &self.len())
            .finish()
    }
}

impl Blocklist {
    /// The list that blocks nothing.
    pub fn empty() -> Self {
        Blocklist {
            lists: Vec::new(),
            shards: Vec::new(),
            keys: 0,
            filter: Prefilter::none(),
            alts: None,
            has_ips: false,
            path: None,
            layers: None,
            partly_checked: false,
        }
    }

    /// Several compiled files served as one, answering as their merge would
    /// ([`super::layered`]): the lists are theirs in the order given.
    pub fn layered(files: &[Arc<Blocklist>]) -> Result<Self, Error> {
        let files: Vec<_> = files.iter().map(|f| (Arc::clone(f), Vec::new())).collect();
        Blocklist::layered_hiding(&files)
    }

    /// [`Blocklist::layered`], with the keys in each file that later files replace: a patch's
    /// keys hidden in the files it patches ([`super::layered`]).
    pub fn layered_hiding(files: &[(Arc<Blocklist>, Vec<Arc<Hidden>>)]) -> Result<Self, Error> {
        let (layers, lists) = Layers::new(files)?;
        Ok(Blocklist {
            lists,
            keys: layers.len(),
            has_ips: layers.has_ips(),
            layers: Some(layers),
            ..Blocklist::empty()
        })
    }

    /// Whether this is several files not yet merged ([`Blocklist::layered`]).
    pub fn is_layered(&self) -> bool {
        self.layers.is_some()
    }

    /// Memory-maps and verifies a compiled file: magic, version, lengths, body CRC32, list table,
    /// and the structure of every FST shard, so that no bytes can make opening or a lookup
    /// panic, loop or allocate beyond the file's size ([`super::format`] lists the checks).
    pub fn open(path: &Path) -> Result<Self, Error> {
        let oerr = |source| Error::Open {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(oerr)?;
        let len = file.metadata().map_err(oerr)?.len();
        if len < HEADER_LEN as u64 {
            return Err(Error::Corrupt {
                path: path.to_path_buf(),
                reason: format!("file is {len} bytes, shorter than the {HEADER_LEN}-byte header"),
            });
        }
        // SAFETY: compiled files are only ever replaced by rename, never modified in place
        // (see `compile`), so the mapped bytes do not change under us.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(oerr)?;
        let mut bl = Self::from_backing(Backing::Mmap(map), path)?;
        bl.path = Some(path.to_path_buf());
        Ok(bl)
    }

    /// This list, served from `path` instead of memory: a copy of the bytes it was checked in
    /// (as a compiled file written to the cache after its check). The file's bytes are compared
    /// with the checked ones, which costs a read of the file rather than a second check.
    pub fn remapped(self, path: &Path) -> Result<Self, Error> {
        let oerr = |source| Error::Open {
            path: path.to_path_buf(),
            source,
        };
        let differs = || Error::Corrupt {
            path: path.to_path_buf(),
            reason: "not the bytes that were checked".into(),
        };
        let Some(first) = self.shards.first() else {
            return Err(differs());
        };
        let old = Arc::clone(&first.as_inner().data);
        let file = File::open(path).map_err(oerr)?;
        // SAFETY: as in `open`: compiled files are only replaced by rename.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(oerr)?;
        if map[..] != *old.bytes() {
            return Err(differs());
        }
        // SAFETY: as in `load`: read-only, file-backed, never modified in place.
        let _ = unsafe { map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
        let data = Arc::new(Backing::Mmap(map));
        let again = |f: &Fst<FstBytes>| {
            let b = f.as_inner();
            Fst::new(FstBytes {
                data: Arc::clone(&data),
                start: b.start,
                end: b.end,
            })
            .map_err(|e| Error::Corrupt {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })
        };
        Ok(Blocklist {
            shards: self.shards.iter().map(again).collect::<Result<_, _>>()?,
            keys: self.keys,
            alts: self.alts.as_ref().map(again).transpose()?,
            lists: self.lists,
            filter: self.filter,
            has_ips: self.has_ips,
            path: Some(path.to_path_buf()),
            layers: None,
            partly_checked: self.partly_checked,
        })
    }

    /// Loads a compiled file from outside, held in memory, to serve as a layer only
    /// ([`Blocklist::layered`]), checked enough for that in a fraction of the time of the full
    /// check: its header, checksum, list table and the structure of every FST shard are checked
    /// as [`Blocklist::open`] checks them, so that no bytes can make a lookup panic, loop or
    /// allocate. The checks of each entry (that it names a list the file has, that it sits in
    /// its shard) are not made: layers ignore an entry that names no list of its file, and an
    /// entry outside its shard is never reached. Nor is the Bloom filter built: every query
    /// walks the FST. The full check runs before the file is merged
    /// ([`Blocklist::is_partly_checked`]).
    pub fn check_for_layer(bytes: Vec<u8>, path: &Path) -> Result<Self, Error> {
        let corrupt = |reason: String| Error::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        catch_panic(|| {
            let data = Backing::Owned(bytes);
            let parts = layout(data.bytes(), path)?;
            let lists = decode_table(&data.bytes()[parts.table.clone()]).map_err(corrupt)?;
            let keys = check_shards(data.bytes(), &parts, path)?;
            check_alts(data.bytes(), &parts, lists.len(), path)?;
            let keys = usize::try_from(keys).map_err(|_| corrupt(format!("{keys} names")))?;
            let mut bl = Self::assemble(data, parts, lists, keys, path, |_, _, _| {
                Ok(Prefilter::none())
            })?;
            bl.partly_checked = true;
            Ok(bl)
        })
        .unwrap_or_else(|reason| Err(corrupt(reason)))
    }

    /// Whether only the structure of this file was checked ([`Blocklist::check_for_layer`]).
    pub fn is_partly_checked(&self) -> bool {
        self.partly_checked
    }

    /// Verifies (as [`Blocklist::open`] does) and loads a compiled file held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, Error> {
        Self::from_backing(Backing::Owned(bytes), Path::new("<memory>"))
    }

    /// Like [`Blocklist::from_bytes`] for bytes read from `path`, which errors name.
    pub fn from_file_bytes(bytes: Vec<u8>, path: &Path) -> Result<Self, Error> {
        Self::from_backing(Backing::Owned(bytes), path)
    }

    /// Checks everything in the bytes before using any of it ([`super::format`] says what), all
    /// inside `catch_unwind`: whatever the bytes, the result is a list or an error.
    fn from_backing(data: Backing, path: &Path) -> Result<Self, Error> {
        catch_panic(|| Self::load(data, path)).unwrap_or_else(|reason| {
            Err(Error::Corrupt {
                path: path.to_path_buf(),
                reason,
            })
        })
    }

    fn load(data: Backing, path: &Path) -> Result<Self, Error> {
        let corrupt = |reason: String| Error::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        let parts = layout(data.bytes(), path)?;
        let lists = decode_table(&data.bytes()[parts.table.clone()]).map_err(corrupt)?;
        let keys = check_shards(data.bytes(), &parts, path)?;
        check_alts(data.bytes(), &parts, lists.len(), path)?;
        let keys = usize::try_from(keys).map_err(|_| corrupt(format!("{keys} names")))?;
        Self::assemble(data, parts, lists, keys, path, |shards, keys, lists| {
            Prefilter::build(shards, keys, lists)
        })
    }

    /// A file this process's [`super::Compiler`] just built in memory, given the hashes of its
    /// keys ([`KeyHasher`], one per distinct key): served without checking again what was just
    /// built, and with its filter made from the hashes rather than by reading every key back.
    pub(super) fn from_compiled(bytes: Vec<u8>, hashes: &[(u64, u64)]) -> Result<Self, Error> {
        let path = Path::new("<compiled>");
        let data = Backing::Owned(bytes);
        let parts = layout(data.bytes(), path)?;
        let lists =
            decode_table(&data.bytes()[parts.table.clone()]).map_err(|reason| Error::Corrupt {
                path: path.to_path_buf(),
                reason,
            })?;
        Self::assemble(data, parts, lists, hashes.len(), path, |_, keys, _| {
            let mut f = Prefilter::sized(keys);
            for &h in hashes {
                f.insert(h);
            }
            Ok(f)
        })
    }

    /// The list over checked `data`: its shards, alternates and filter.
    fn assemble(
        data: Backing,
        parts: super::format::Layout,
        lists: Vec<ListInfo>,
        keys: usize,
        path: &Path,
        filter: impl FnOnce(&[Fst<FstBytes>], usize, usize) -> Result<Prefilter, String>,
    ) -> Result<Self, Error> {
        let corrupt = |reason: String| Error::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        let data = Arc::new(data);
        let mut shards = Vec::with_capacity(parts.shards.len());
        let mut fst_bytes = 0usize;
        for (i, r) in parts.shards.into_iter().enumerate() {
            fst_bytes += r.len();
            let bytes = FstBytes {
                data: Arc::clone(&data),
                start: r.start,
                end: r.end,
            };
            let fst = Fst::new(bytes).map_err(|e| corrupt(format!("FST shard {i}: {e}")))?;
            shards.push(fst);
        }
        let alts = match parts.alts {
            Some(r) => {
                let bytes = FstBytes {
                    data: Arc::clone(&data),
                    start: r.start,
                    end: r.end,
                };
                Some(Fst::new(bytes).map_err(|e| corrupt(format!("alternates: {e}")))?)
            }
            None => None,
        };
        // The filter costs memory and time per name; a file that holds more names than bytes
        // (only a crafted or machine-enumerated list compresses that well) goes without it, so
        // that opening stays bounded by the file's size. Its queries all walk the FST.
        let filter = if keys <= fst_bytes.saturating_mul(FILTER_MAX_NAMES_PER_BYTE) {
            filter(&shards, keys, lists.len()).map_err(corrupt)?
        } else {
            Prefilter::none()
        };
        if let Backing::Mmap(map) = &*data {
            // Building the filter read every page of the FST; from now on only listed names
            // touch it. Let those pages go from our resident set (they stay in the page cache
            // and come back on the next access) instead of pinning the whole list in RSS.
            // SAFETY: the mapping is read-only and file-backed: dropped pages are re-read from
            // the file, which is never modified in place.
            let _ = unsafe { map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
        }
        let has_ips = shards
            .first()
            .is_some_and(|f| f.root().find_input(IP_MARK).is_some());
        Ok(Blocklist {
            lists,
            shards,
            keys,
            filter,
            alts,
            has_ips,
            path: None,
            layers: None,
            partly_checked: false,
        })
    }

    /// The bytes of the compiled file this was loaded from (`None` for [`Blocklist::empty`] and
    /// layered lists).
    pub fn file_bytes(&self) -> Option<&[u8]> {
        self.shards.first().map(|f| f.as_inner().data.bytes())
    }

    /// The lists in the file, indexed by [`Verdict::list`].
    pub fn lists(&self) -> &[ListInfo] {
        &self.lists
    }

    /// The list a verdict came from.
    pub fn list(&self, v: &Verdict) -> Option<&ListInfo> {
        self.lists.get(v.list as usize)
    }

    /// The file this was opened from (`None` for [`Blocklist::empty`] and in-memory lists).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Distinct names in the FST.
    pub fn len(&self) -> usize {
        self.keys
    }

    /// True when nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The hot-path query. `name` is wire form (length-prefixed labels, terminated by 0), any
    /// case; bytes after the terminator are ignored. Malformed names (compression pointers,
    /// labels over 63 bytes, over 255 bytes, missing terminator) return `None`, never panic.
    /// Allocation-free.
    pub fn lookup_wire(&self, name: &[u8]) -> Option<Verdict> {
        #[cfg(test)]
        crate::probe::looked_up();
        if self.shards.is_empty() {
            return self.layers.as_ref()?.lookup_wire(name);
        }
        let mut starts = [0u8; MAX_LABELS];
        let n = label_starts(name, &mut starts)?;
        let shard = self.candidate(name, &starts[..n])?;
        walk(shard, name, &starts[..n])
    }

    /// Whether any suffix of the name (at a label boundary) may be a key, and if so the shard
    /// that holds every key the name can match: the one its last two labels hash to (the hash
    /// the Bloom probe of that suffix computes anyway), or any shard for a one-label name, since
    /// one-label keys are in all of them.
    #[inline]
    fn candidate(&self, name: &[u8], starts: &[u8]) -> Option<&Fst<FstBytes>> {
        let n = starts.len();
        let mut h = KeyHasher::new();
        let mut shard = &self.shards[0];
        let mut tld_maybe = false;
        for depth in 0..n {
            let at = starts[n - 1 - depth] as usize;
            // A label with a `.` inside hashes as one label, so it matches no key's labels
            // (at worst a false positive, which the walk settles: see `walk`).
            h.label(&name[at + 1..at + 1 + name[at] as usize]);
            let own = h.finish();
            if depth == 1 {
                shard = &self.shards[shard_of(own, self.shards.len())];
            }
            if tld_maybe || self.filter.may_contain(own) {
                if depth == 0 && n > 1 {
                    // The shard is chosen by the next suffix's hash.
                    tld_maybe = true;
                    continue;
                }
                return Some(shard);
            }
        }
        None
    }

    /// Like [`Blocklist::lookup_wire`] for a text name: trailing dot optional, any case, Unicode
    /// names are converted to punycode (that path allocates).
    pub fn lookup(&self, name: &str) -> Option<Verdict> {
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.is_ascii() {
            return self.lookup_ascii(name);
        }
        let ascii = idna::domain_to_ascii(name).ok()?;
        self.lookup_ascii(&ascii)
    }

    fn lookup_ascii(&self, name: &str) -> Option<Verdict> {
        with_wire(name, |w| self.lookup_wire(w)).flatten()
    }

    /// The verdict for a client of a policy group ([`crate::policy`]) to which only the lists
    /// `applies` accepts apply: the same rules as [`Blocklist::lookup_wire`] (the most specific
    /// entry decides, allow beats block, exact beats subtree), over those lists' entries only.
    ///
    /// When the entry that wins over all lists is of an applied list, it also wins over the
    /// applied lists alone, and this costs one `applies` call more than `lookup_wire`. Only
    /// otherwise is the name walked again, reading the entries that lost ([`super::format`]'s
    /// alternates). Allocation-free.
    pub fn lookup_wire_for(&self, name: &[u8], applies: impl Fn(u16) -> bool) -> Option<Verdict> {
        if let Some(layers) = &self.layers {
            return layers.lookup_wire_for(name, &applies);
        }
        let v = self.lookup_wire(name)?;
        if applies(v.list) {
            return Some(v);
        }
        self.decide_entries(name, &applies, |_| false)
    }

    /// The verdict over the entries of the lists `applies` accepts whose keys `skip` does not
    /// name, read entry by entry: the slow path of [`Blocklist::lookup_wire_for`], and how a
    /// layer answers around the keys a later layer replaced ([`super::layered`]).
    pub(super) fn decide_entries(
        &self,
        name: &[u8],
        applies: &impl Fn(u16) -> bool,
        skip: impl Fn(&[u8]) -> bool,
    ) -> Option<Verdict> {
        // Entries of one key in decision order: allow exact, allow subtree, block exact, block
        // subtree; in each the first applied list's in merge order.
        let mut best = None;
        let mut cur = [0u32; 4];
        let mut cur_labels = 0u8;
        let flush = |cur: &[u32; 4], labels: u8| {
            let (class, slot) = cur.iter().enumerate().find(|(_, s)| **s != 0)?;
            let (kind, action, list) = unpack_slot(*slot)?;
            Some(Verdict {
                kind,
                action,
                match_mode: if class % 2 == 0 {
                    MatchMode::Exact
                } else {
                    MatchMode::Subtree
                },
                list,
                matched_labels: labels,
            })
        };
        self.each_entry(name, |labels, whole, exact, slot, key| {
            if labels != cur_labels {
                if let Some(v) = flush(&cur, cur_labels) {
                    best = Some(v);
                }
                cur = [0; 4];
                cur_labels = labels;
            }
            if exact && !whole {
                return;
            }
            let Some((kind, _, list)) = unpack_slot(slot) else {
                return;
            };
            if !applies(list) || skip(key) {
                return;
            }
            let class = usize::from(kind == ListKind::Block) * 2 + usize::from(!exact);
            if cur[class] == 0 {
                cur[class] = slot;
            }
        });
        if let Some(v) = flush(&cur, cur_labels) {
            best = Some(v);
        }
        best
    }

    /// Every entry of every list that matches `name` (text, as [`Blocklist::lookup`] takes it),
    /// least specific first: what `fraudwall check` explains a verdict with.
    pub fn matches(&self, name: &str) -> Vec<Match> {
        let text = name;
        let name = name.strip_suffix('.').unwrap_or(name);
        let ascii;
        let name = if name.is_ascii() {
            name
        } else {
            match idna::domain_to_ascii(name) {
                Ok(a) => {
                    ascii = a;
                    &ascii
                }
                Err(_) => return Vec::new(),
            }
        };
        if let Some(layers) = &self.layers {
            return with_wire(name, |w| layers.matches_name(|l| l.matches(text), w))
                .unwrap_or_default();
        }
        let mut out = Vec::new();
        with_wire(name, |w| {
            self.each_entry(w, |labels, whole, exact, slot, _| {
                if exact && !whole {
                    return;
                }
                if let Some((kind, action, list)) = unpack_slot(slot) {
                    out.push(Match {
                        kind,
                        action,
                        match_mode: if exact {
                            MatchMode::Exact
                        } else {
                            MatchMode::Subtree
                        },
                        list,
                        matched_labels: labels,
                    });
                }
            })
        });
        out
    }

    /// Calls `f(labels, whole name, exact slot, slot, key)` for every entry of every key on the
    /// name's path, from the least specific key: a key's alternates when lists share it, else
    /// the two slots of its value.
    fn each_entry(&self, name: &[u8], mut f: impl FnMut(u8, bool, bool, u32, &[u8])) {
        if self.shards.is_empty() {
            return;
        }
        let mut starts = [0u8; MAX_LABELS];
        let Some(n) = label_starts(name, &mut starts) else {
            return;
        };
        let starts = &starts[..n];
        let Some(fst) = self.candidate(name, starts) else {
            return;
        };
        let mut key = [0u8; MAX_WIRE];
        let mut len = 0usize;
        let mut alt = [0u8; MAX_ALT_KEY];
        let mut node = fst.root();
        let mut out = Output::zero();
        'labels: for depth in 0..n {
            let at = starts[n - 1 - depth] as usize;
            let label = &name[at + 1..at + 1 + name[at] as usize];
            // A `.` inside a label can never be listed, and feeding it would fake a boundary.
            if label.contains(&b'.') {
                break;
            }
            let dot = (depth > 0).then_some(b'.');
            for b in dot
                .into_iter()
                .chain(label.iter().map(u8::to_ascii_lowercase))
            {
                match node.find_input(b) {
                    Some(i) if len < MAX_WIRE => {
                        let t = node.transition(i);
                        out = out.cat(t.out);
                        node = fst.node(t.addr);
                        key[len] = b;
                        len += 1;
                    }
                    _ => break 'labels,
                }
            }
            if !node.is_final() {
                continue;
            }
            let value = out.cat(node.final_output()).value();
            let (labels, whole) = ((depth + 1) as u8, depth + 1 == n);
            let mut i = 0u16;
            if let Some(alts) = &self.alts {
                while let Some(v) = alt_key(&mut alt, &key[..len], i).and_then(|k| alts.get(k)) {
                    let v = v.value();
                    f(labels, whole, false, v as u32, &key[..len]);
                    f(labels, whole, true, (v >> 32) as u32, &key[..len]);
                    i += 1;
                    if i == u16::MAX {
                        break;
                    }
                }
            }
            if i == 0 {
                f(labels, whole, false, value as u32, &key[..len]);
                f(labels, whole, true, (value >> 32) as u32, &key[..len]);
            }
        }
    }
}

impl Blocklist {
    /// Calls `f` with every key of the file (a one-label key once per shard it is in).
    pub(super) fn each_key(&self, mut f: impl FnMut(&[u8])) {
        self.each_key_dyn(&mut f);
    }

    fn each_key_dyn(&self, f: &mut dyn FnMut(&[u8])) {
        use fst::Streamer;
        for shard in &self.shards {
            let mut keys = shard.stream();
            while let Some((key, _)) = keys.next() {
                f(key);
            }
        }
        if let Some(layers) = &self.layers {
            layers.each_file(|l| l.each_key_dyn(f));
        }
    }
}

/// Address prefixes: the lookups of an answer's A/AAAA addresses ([`super::format`] says how
/// prefixes are kept). A verdict's `matched_labels` is then the prefix length of the entry,
/// which [`ip_entry`] turns back into the prefix.
impl Blocklist {
    /// Whether any list holds address prefixes. Without them every address lookup is `None`,
    /// and callers need not collect addresses at all.
    #[inline]
    pub fn has_ips(&self) -> bool {
        self.has_ips
    }

    /// The verdict for an answer address: the longest listed prefix that covers it decides
    /// (allow beats block at the same prefix). Allocation-free; one FST step per bit of the
    /// address down to the longest listed prefix on its path.
    pub fn lookup_ip(&self, addr: IpAddr) -> Option<Verdict> {
        if !self.has_ips {
            return None;
        }
        if let Some(layers) = &self.layers {
            return layers.lookup_ip(addr);
        }
        let mut best = None;
        self.walk_ip(addr, |len, value, _| {
            if let Some(v) = ip_verdict(value as u32, len) {
                best = Some(v);
            }
        });
        best
    }

    /// [`Blocklist::lookup_ip`] over the lists `applies` accepts only (a policy group's), as
    /// [`Blocklist::lookup_wire_for`] is for names.
    pub fn lookup_ip_for(&self, addr: IpAddr, applies: impl Fn(u16) -> bool) -> Option<Verdict> {
        if let Some(layers) = &self.layers {
            return layers.lookup_ip_for(addr, &applies);
        }
        let v = self.lookup_ip(addr)?;
        if applies(v.list) {
            return Some(v);
        }
        self.decide_ip_entries(addr, &applies, |_| false)
    }

    /// [`Blocklist::decide_entries`] for an address: the verdict over the entries of the
    /// lists `applies` accepts whose prefixes `skip` does not name.
    pub(super) fn decide_ip_entries(
        &self,
        addr: IpAddr,
        applies: &impl Fn(u16) -> bool,
        skip: impl Fn(&[u8]) -> bool,
    ) -> Option<Verdict> {
        let mut best = None;
        self.each_ip_entry(addr, |len, slot, key| {
            let Some((kind, _, list)) = unpack_slot(slot) else {
                return;
            };
            if !applies(list) || skip(key) {
                return;
            }
            // A longer prefix replaces what a shorter one found; at the same prefix the first
            // applied allow entry, else the first applied block entry.
            let better = match best {
                Some(Verdict {
                    matched_labels,
                    kind: k,
                    ..
                }) if matched_labels == len => k == ListKind::Block && kind == ListKind::Allow,
                _ => true,
            };
            if better {
                best = ip_verdict(slot, len);
            }
        });
        best
    }

    /// Every entry of every list whose prefix covers `addr`, shortest prefix first: what
    /// `fraudwall check` explains an address with.
    pub fn matches_ip(&self, addr: IpAddr) -> Vec<Match> {
        let mut out = Vec::new();
        if !self.has_ips {
            return out;
        }
        if let Some(layers) = &self.layers {
            return layers.matches_ip(|l| l.matches_ip(addr), addr);
        }
        self.each_ip_entry(addr, |len, slot, _| {
            if let Some((kind, action, list)) = unpack_slot(slot) {
                out.push(Match {
                    kind,
                    action,
                    match_mode: MatchMode::Subtree,
                    list,
                    matched_labels: len,
                });
            }
        });
        out
    }

    /// Calls `f(prefix length, slot, key)` for every entry of every prefix covering `addr`,
    /// shortest first: a prefix's alternates when lists share it, else its subtree slot.
    fn each_ip_entry(&self, addr: IpAddr, mut f: impl FnMut(u8, u32, &[u8])) {
        let mut alt = [0u8; MAX_ALT_KEY];
        self.walk_ip(addr, |len, value, key| {
            let mut i = 0u16;
            if let Some(alts) = &self.alts {
                while let Some(v) = alt_key(&mut alt, key, i).and_then(|k| alts.get(k)) {
                    f(len, v.value() as u32, key);
                    i += 1;
                    if i == u16::MAX {
                        break;
                    }
                }
            }
            if i == 0 {
                f(len, value as u32, key);
            }
        });
    }

    /// Walks shard 0 along `addr`'s key and calls `f(prefix length, value, key)` at every final
    /// state, shortest prefix first.
    #[inline]
    fn walk_ip(&self, addr: IpAddr, mut f: impl FnMut(u8, u64, &[u8])) {
        let Some(fst) = self.shards.first() else {
            return;
        };
        let (family, bits, len) = match addr {
            IpAddr::V4(a) => (b'4', u128::from(a.to_bits()) << 96, 32u8),
            IpAddr::V6(a) => (b'6', a.to_bits(), 128u8),
        };
        let mut key = [0u8; MAX_IP_KEY];
        key[0] = IP_MARK;
        key[1] = family;
        let mut node = fst.root();
        let mut out = Output::zero();
        for &b in &key[..2] {
            match node.find_input(b) {
                Some(i) => {
                    let t = node.transition(i);
                    out = out.cat(t.out);
                    node = fst.node(t.addr);
                }
                None => return,
            }
        }
        for depth in 0..=len {
            if node.is_final() {
                let end = 2 + depth as usize;
                f(depth, out.cat(node.final_output()).value(), &key[..end]);
            }
            if depth == len {
                break;
            }
            let b = if bits >> (127 - depth) & 1 == 1 {
                b'1'
            } else {
                b'0'
            };
            match node.find_input(b) {
                Some(i) => {
                    let t = node.transition(i);
                    out = out.cat(t.out);
                    node = fst.node(t.addr);
                    key[2 + depth as usize] = b;
                }
                None => break,
            }
        }
    }
}

/// The key of the last `labels` labels of wire name `name` (reversed labels, lowercase, as the
/// FST keeps names) in `buf`; `None` if the name is malformed or has fewer labels.
pub(super) fn suffix_key<'a>(
    name: &[u8],
    labels: u8,
    buf: &'a mut [u8; MAX_WIRE],
) -> Option<&'a [u8]> {
    let mut starts = [0u8; MAX_LABELS];
    let n = label_starts(name, &mut starts)?;
    let labels = usize::from(labels);
    if labels == 0 || labels > n {
        return None;
    }
    let mut len = 0;
    for (depth, &at) in starts[..n].iter().rev().take(labels).enumerate() {
        let at = at as usize;
        let label = &name[at + 1..at + 1 + name[at] as usize];
        if depth > 0 {
            *buf.get_mut(len)? = b'.';
            len += 1;
        }
        for &b in label {
            *buf.get_mut(len)? = b.to_ascii_lowercase();
            len += 1;
        }
    }
    Some(&buf[..len])
}

/// The verdict of an address entry: its subtree slot, the prefix length as `matched_labels`.
#[inline]
fn ip_verdict(slot: u32, len: u8) -> Option<Verdict> {
    let (kind, action, list) = unpack_slot(slot)?;
    Some(Verdict {
        kind,
        action,
        match_mode: MatchMode::Subtree,
        list,
        matched_labels: len,
    })
}

/// The listed prefix an address verdict of `addr` stands for (`matched_labels` bits of it).
pub fn ip_entry(addr: IpAddr, prefix_len: u8) -> ipnet::IpNet {
    let max = if addr.is_ipv4() { 32 } else { 128 };
    ipnet::IpNet::new(addr, prefix_len.min(max))
        .map(|n| n.trunc())
        .unwrap_or_else(|_| ipnet::IpNet::from(addr))
}

/// Runs `f` on the wire form of a text name (ASCII, no trailing dot); `None` when malformed.
fn with_wire<T>(name: &str, f: impl FnOnce(&[u8]) -> T) -> Option<T> {
    let mut buf = [0u8; MAX_WIRE];
    let mut pos = 0;
    if name.is_empty() {
        return None;
    }
    for label in name.split('.') {
        let len = label.len();
        if len == 0 || len > 63 || pos + 1 + len + 1 > MAX_WIRE {
            return None;
        }
        buf[pos] = len as u8;
        buf[pos + 1..pos + 1 + len].copy_from_slice(label.as_bytes());
        pos += 1 + len;
    }
    buf[pos] = 0;
    Some(f(&buf[..=pos]))
}

/// Records where each label of a wire name starts; returns the label count, `None` if malformed.
#[inline]
fn label_starts(name: &[u8], starts: &mut [u8; MAX_LABELS]) -> Option<usize> {
    let mut n = 0;
    let mut pos = 0usize;
    loop {
        let len = *name.get(pos)? as usize;
        if len == 0 {
            break;
        }
        // > 63 also rejects compression pointers (0xC0) and the reserved label types.
        if len > 63 || n == MAX_LABELS || pos + 1 + len + 1 > MAX_WIRE {
            return None;
        }
        starts[n] = pos as u8;
        n += 1;
        pos += 1 + len;
    }
    if n == 0 { None } else { Some(n) }
}

/// The single walk: reversed labels, lowercased, `.` between labels, verdict at each boundary.
#[inline]
fn walk<D: AsRef<[u8]>>(fst: &Fst<D>, name: &[u8], starts: &[u8]) -> Option<Verdict> {
    let n = starts.len();
    let mut node = fst.root();
    let mut out = Output::zero();
    let mut best = None;
    'labels: for depth in 0..n {
        let at = starts[n - 1 - depth] as usize;
        let label = &name[at + 1..at + 1 + name[at] as usize];
        if depth > 0 {
            match node.find_input(b'.') {
                Some(i) => {
                    let t = node.transition(i);
                    out = out.cat(t.out);
                    node = fst.node(t.addr);
                }
                None => break,
            }
        }
        for &b in label {
            // A `.` inside a label can never be listed, and feeding it would fake a boundary.
            if b == b'.' {
                break 'labels;
            }
            match node.find_input(b.to_ascii_lowercase()) {
                Some(i) => {
                    let t = node.transition(i);
                    out = out.cat(t.out);
                    node = fst.node(t.addr);
                }
                None => break 'labels,
            }
        }
        if node.is_final() {
            let value = out.cat(node.final_output()).value();
            if let Some(v) = decide(value, depth + 1 == n, (depth + 1) as u8) {
                best = Some(v);
            }
        }
    }
    best
}

/// Picks the verdict of one key. At the query name itself both slots apply (allow beats block,
/// then exact beats subtree); at an ancestor only the subtree slot does.
#[inline]
fn decide(value: u64, whole_name: bool, labels: u8) -> Option<Verdict> {
    let subtree = unpack_slot(value as u32);
    let exact = if whole_name {
        unpack_slot((value >> 32) as u32)
    } else {
        None
    };
    let (slot, mode) = match (exact, subtree) {
        (Some(e), Some(s)) if e.0 == ListKind::Block && s.0 == ListKind::Allow => {
            (s, MatchMode::Subtree)
        }
        (Some(e), _) => (e, MatchMode::Exact),
        (None, Some(s)) => (s, MatchMode::Subtree),
        (None, None) => return None,
    };
    Some(Verdict {
        kind: slot.0,
        action: slot.1,
        match_mode: mode,
        list: slot.2,
        matched_labels: labels,
    })
}

/// The last `labels` labels of a text name, lowercased, without trailing dot.
pub fn entry_name(query: &str, labels: u8) -> String {
    let q = query.strip_suffix('.').unwrap_or(query);
    let parts: Vec<&str> = q.split('.').collect();
    let from = parts.len().saturating_sub(labels as usize);
    parts[from..].join(".").to_ascii_lowercase()
}

/// The last `labels` labels of a wire name as text; `None` if the name is malformed.
pub fn entry_name_wire(wire: &[u8], labels: u8) -> Option<String> {
    let mut starts = [0u8; MAX_LABELS];
    let n = label_starts(wire, &mut starts)?;
    let from = n.saturating_sub(labels as usize);
    let mut s = String::new();
    for (i, &at) in starts[from..n].iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        let at = at as usize;
        s.push_str(&String::from_utf8_lossy(
            &wire[at + 1..at + 1 + wire[at] as usize],
        ));
    }
    s.make_ascii_lowercase();
    Some(s)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::{Action, Compiler, Format, ListInfo, ListKind, MatchMode};
    use super::*;

    /// A list of `kind` named `name` (sinkhole, subtree) for tests.
    pub(crate) fn info(name: &str, kind: ListKind) -> ListInfo {
        ListInfo {
            name: name.into(),
            path: PathBuf::from(name),
            kind,
            action: Action::Sinkhole,
            category: "fraud".into(),
            ede: 15,
            entries: 0,
            format: Format::Plain,
            match_mode: MatchMode::Subtree,
        }
    }

    fn build(entries: &[(&str, ListKind, MatchMode)]) -> Blocklist {
        let mut c = Compiler::new();
        let b = c.add_list(info("block", ListKind::Block)).unwrap();
        let a = c.add_list(info("allow", ListKind::Allow)).unwrap();
        for &(name, kind, mode) in entries {
            let list = if kind == ListKind::Allow { a } else { b };
            c.insert(list, name, kind, mode, Action::Sinkhole).unwrap();
        }
        Blocklist::from_bytes(c.to_bytes().unwrap()).unwrap()
    }

    fn kind(bl: &Blocklist, q: &str) -> Option<(ListKind, MatchMode, u8)> {
        bl.lookup(q)
            .map(|v| (v.kind, v.match_mode, v.matched_labels))
    }

    use ListKind::{Allow, Block};
    use MatchMode::{Exact, Subtree};

    #[test]
    fn semantics() {
        let bl = build(&[
            ("bad.test", Block, Subtree),
            ("ok.bad.test", Allow, Subtree),
            ("worse.ok.bad.test", Block, Subtree),
            ("only.test", Block, Exact),
            ("both.test", Block, Exact),
            ("both.test", Allow, Subtree),
            ("mixed.test", Block, Subtree),
            ("mixed.test", Allow, Exact),
        ]);
        assert_eq!(kind(&bl, "bad.test"), Some((Block, Subtree, 2)));
        assert_eq!(kind(&bl, "WWW.Bad.Test."), Some((Block, Subtree, 2)));
        assert_eq!(kind(&bl, "ok.bad.test"), Some((Allow, Subtree, 3)));
        assert_eq!(kind(&bl, "a.ok.bad.test"), Some((Allow, Subtree, 3)));
        assert_eq!(kind(&bl, "x.worse.ok.bad.test"), Some((Block, Subtree, 4)));
        assert_eq!(kind(&bl, "only.test"), Some((Block, Exact, 2)));
        assert_eq!(kind(&bl, "www.only.test"), None);
        assert_eq!(kind(&bl, "both.test"), Some((Allow, Subtree, 2)));
        assert_eq!(kind(&bl, "mixed.test"), Some((Allow, Exact, 2)));
        assert_eq!(kind(&bl, "a.mixed.test"), Some((Block, Subtree, 2)));
        assert_eq!(kind(&bl, "test"), None);
        assert_eq!(kind(&bl, "notbad.test"), None);
        assert_eq!(kind(&bl, "bad.testx"), None);
        assert_eq!(kind(&bl, ""), None);
        assert_eq!(kind(&bl, "."), None);
        assert_eq!(kind(&bl, "a..bad.test"), None);
    }

    #[test]
    fn wire_garbage_never_panics() {
        let bl = build(&[("bad.test", Block, Subtree)]);
        assert!(bl.lookup_wire(b"\x03www\x03BAD\x04test\x00").is_some());
        assert!(bl.lookup_wire(b"\x03bad\x04test\x00trailing").is_some());
        for garbage in [
            &b""[..],
            b"\x00",
            b"\x03bad\x04test",
            b"\x03bad\x04tes",
            b"\xc0\x0c",
            b"\x03bad\xc0\x0c",
            b"\x40aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\x00",
            b"\x07bad.tes\x04test\x00",
        ] {
            assert_eq!(bl.lookup_wire(garbage), None, "{garbage:?}");
        }
        // A label with a `.` inside stops the walk but ancestors still count.
        assert!(bl.lookup_wire(b"\x03a.b\x03bad\x04test\x00").is_some());
        let mut long = Vec::new();
        for _ in 0..130 {
            long.extend_from_slice(b"\x01a");
        }
        long.push(0);
        assert_eq!(bl.lookup_wire(&long), None);
        assert_eq!(Blocklist::empty().lookup_wire(b"\x03bad\x04test\x00"), None);
    }

    #[test]
    fn sharded_files_answer_like_one_fst() {
        let entries: Vec<String> = (0..300)
            .map(|i| format!("n{i}.shop{}.test", i % 40))
            .chain(["test".into(), "ok.n7.shop7.test".into()])
            .collect();
        let build = |shards| {
            let mut c = Compiler::new();
            c.set_shards(shards);
            let b = c.add_list(info("block", ListKind::Block)).unwrap();
            let a = c.add_list(info("allow", ListKind::Allow)).unwrap();
            for e in &entries {
                let (list, kind) = if e.starts_with("ok.") {
                    (a, Allow)
                } else {
                    (b, Block)
                };
                c.insert(list, e, kind, Exact, Action::Sinkhole).unwrap();
            }
            Blocklist::from_bytes(c.to_bytes().unwrap()).unwrap()
        };
        let one = build(1);
        let five = build(5);
        assert_eq!(five.shards.len(), 5);
        assert!(
            five.shards.iter().all(|f| f.len() > 1),
            "every shard got keys"
        );
        assert_eq!((one.len(), five.len()), (entries.len(), entries.len()));
        for q in entries.iter().map(String::as_str).chain([
            "www.n1.shop1.test",
            "shop3.test",
            "other.example",
            "TEST",
        ]) {
            assert_eq!(one.lookup(q), five.lookup(q), "{q}");
        }
        assert_eq!(kind(&five, "ok.n7.shop7.test"), Some((Allow, Exact, 4)));
        // The one-label key is in every shard: a name of any shard sees it.
        assert_eq!(kind(&five, "x.y.z.test"), None);
        assert!(five.shards.iter().all(|f| f.get(b"test").is_some()));
    }

    #[test]
    fn dotted_labels_still_see_listed_ancestors_in_every_shard_layout() {
        for shards in 1..=4 {
            let mut c = Compiler::new();
            c.set_shards(shards);
            let b = c.add_list(info("block", ListKind::Block)).unwrap();
            for name in ["zz", "bad.test"] {
                c.insert(b, name, Block, Subtree, Action::Sinkhole).unwrap();
            }
            let bl = Blocklist::from_bytes(c.to_bytes().unwrap()).unwrap();
            let depth = |w: &[u8]| bl.lookup_wire(w).map(|v| v.matched_labels);
            assert_eq!(depth(b"\x03a.b\x02zz\x00"), Some(1), "{shards} shards");
            assert_eq!(
                depth(b"\x03a.b\x03bad\x04test\x00"),
                Some(2),
                "{shards} shards"
            );
            assert_eq!(
                depth(b"\x03bad\x03a.b\x04test\x00"),
                None,
                "{shards} shards"
            );
            assert_eq!(depth(b"\x02ZZ\x00"), Some(1), "{shards} shards");
        }
    }

    #[test]
    fn prefilter_false_positives_stay_near_design() {
        // 12 bits and 4 probes per key in 512-bit blocks: about 0.6 % by the numbers. A hash
        // that lost entropy (bits correlated with the block, labels colliding) shows up here.
        let mut keys: Vec<String> = (0..50_000).map(|i| format!("com.k{i}.www")).collect();
        keys.sort();
        let mut b = fst::SetBuilder::memory();
        for k in &keys {
            b.insert(k).unwrap();
        }
        let fst = b.into_set().into_fst();
        let f = Prefilter::build(&[fst], keys.len(), 1).unwrap();
        let hash = |k: &str| {
            let mut h = KeyHasher::new();
            h.key(k.as_bytes());
            h.finish()
        };
        assert!(keys.iter().all(|k| f.may_contain(hash(k))));
        let probes = 200_000;
        let fp = (0..probes)
            .filter(|i| f.may_contain(hash(&format!("com.k{i}.wwx"))))
            .count();
        assert!(fp * 100 < probes, "{fp} false positives in {probes}");
    }

    #[test]
    fn version_2_files_open_only_unsharded() {
        let file = |shards| {
            let mut c = Compiler::new();
            c.set_shards(shards);
            let b = c.add_list(info("block", ListKind::Block)).unwrap();
            for i in 0..50 {
                let name = format!("n{i}.shop{i}.test");
                c.insert(b, &name, Block, Subtree, Action::Sinkhole)
                    .unwrap();
            }
            super::super::format::downgrade(c.to_bytes().unwrap(), 2)
        };
        let one = Blocklist::from_bytes(file(1)).unwrap();
        assert_eq!(kind(&one, "www.n7.shop7.test"), Some((Block, Subtree, 3)));
        let e = Blocklist::from_bytes(file(3)).unwrap_err();
        assert!(matches!(e, Error::OldShards { shards: 3, .. }), "{e:?}");
        assert!(e.to_string().contains("recompile"), "{e}");
    }

    #[test]
    fn version_1_files_still_open() {
        use super::super::format::pack_slot;
        let slot = pack_slot(Block, Action::Nxdomain, 0);
        let file = v1_file(&[(b"test.bad", slot)]);
        let bl = Blocklist::from_bytes(file).unwrap();
        assert_eq!(bl.len(), 1);
        assert_eq!(kind(&bl, "www.bad.test"), Some((Block, Subtree, 2)));
        assert_eq!(bl.lookup("www.bad.test").unwrap().action, Action::Nxdomain);
    }

    /// A v1 file (no directory) around an FST of `keys` → slot, with one block list.
    pub(crate) fn v1_file(keys: &[(&[u8], u32)]) -> Vec<u8> {
        use super::super::format::{HEADER_LEN, MAGIC, encode_table};
        let table = encode_table(&[info("old", ListKind::Block)]);
        let mut fst = fst::MapBuilder::memory();
        for &(k, slot) in keys {
            fst.insert(k, u64::from(slot)).unwrap();
        }
        let fst = fst.into_inner().unwrap();
        let mut file = vec![0u8; HEADER_LEN];
        file.extend_from_slice(&table);
        file.extend_from_slice(&fst);
        file[0..4].copy_from_slice(&MAGIC);
        file[4..8].copy_from_slice(&1u32.to_le_bytes());
        file[8..12].copy_from_slice(&(table.len() as u32).to_le_bytes());
        let crc = crc32fast::hash(&file[HEADER_LEN..]);
        file[12..16].copy_from_slice(&crc.to_le_bytes());
        file[16..24].copy_from_slice(&(fst.len() as u64).to_le_bytes());
        file
    }

    #[test]
    fn an_entry_naming_a_list_the_file_lacks_is_refused() {
        use super::super::format::pack_slot;
        let ok = pack_slot(Block, Action::Sinkhole, 0);
        let stray = pack_slot(Block, Action::Sinkhole, 5);
        assert!(Blocklist::from_bytes(v1_file(&[(b"test.a", ok)])).is_ok());
        let e = Blocklist::from_bytes(v1_file(&[(b"test.a", ok), (b"test.b", stray)])).unwrap_err();
        assert!(
            e.to_string()
                .contains("the entry \"test.b\" names list #5, the file has 1"),
            "{e}"
        );
    }

    /// A file checked for its structure only serves as a layer; an entry naming a list the file
    /// lacks is ignored, never taken for another layer's list.
    #[test]
    fn a_layer_checked_for_structure_only_ignores_entries_of_lists_it_lacks() {
        use super::super::format::pack_slot;
        let ok = pack_slot(Block, Action::Sinkhole, 0);
        let stray = pack_slot(Block, Action::Nxdomain, 1);
        let bytes = v1_file(&[(b"test.a", ok), (b"test.b", stray)]);
        assert!(Blocklist::from_bytes(bytes.clone()).is_err());
        let part = Blocklist::check_for_layer(bytes, Path::new("drop.fst")).unwrap();
        assert!(part.is_partly_checked());
        // Without the check, `test.b` would be taken for list 1: the next layer's first list.
        let next = build(&[("c.test", Block, Subtree)]);
        let layered = Blocklist::layered(&[Arc::new(part), Arc::new(next)]).unwrap();
        assert_eq!(layered.lookup("www.a.test").map(|v| v.list), Some(0));
        assert_eq!(layered.lookup("b.test"), None);
        assert_eq!(
            layered.lookup_wire_for(b"\x01b\x04test\x00", |_| true),
            None
        );
        assert!(layered.matches("b.test").is_empty());
        assert_eq!(layered.lookup("c.test").map(|v| v.list), Some(1));
        // Its structure is checked all the same.
        let mut broken = v1_file(&[(b"test.a", ok)]);
        let n = broken.len();
        broken[n - 30] ^= 0xff;
        assert!(Blocklist::check_for_layer(broken, Path::new("drop.fst")).is_err());
    }

    #[test]
    fn a_list_denser_than_its_bytes_opens_without_the_filter_and_answers_the_same() {
        // Enumerated names share almost everything: 20 000 names in a few hundred bytes. The
        // filter would cost more than the file; the walk alone gives the same answers.
        let mut c = Compiler::new();
        let b = c.add_list(info("block", ListKind::Block)).unwrap();
        for i in 0..20_000 {
            c.insert(b, &format!("{i}.bad.test"), Block, Exact, Action::Sinkhole)
                .unwrap();
        }
        let bytes = c.to_bytes().unwrap();
        assert!(bytes.len() < 2_000, "{} bytes", bytes.len());
        let bl = Blocklist::from_bytes(bytes).unwrap();
        assert!(bl.filter.blocks.is_empty());
        assert_eq!(bl.len(), 20_000);
        assert_eq!(kind(&bl, "19999.bad.test"), Some((Block, Exact, 3)));
        assert_eq!(kind(&bl, "0.bad.test"), Some((Block, Exact, 3)));
        for miss in [
            "20000.bad.test",
            "x.bad.test",
            "bad.test",
            "1.1.bad.test",
            "01.bad.test",
        ] {
            assert_eq!(kind(&bl, miss), None, "{miss}");
        }
    }

    /// A format 3 file with one block list around hand-built FST shards of `keys` → slot.
    fn v3_file(shards: &[&[&[u8]]], names: u64) -> Vec<u8> {
        use super::super::format::{HEADER_LEN, MAGIC, encode_table, pack_slot};
        let table = encode_table(&[info("block", ListKind::Block)]);
        let slot = u64::from(pack_slot(Block, Action::Sinkhole, 0));
        let fsts: Vec<Vec<u8>> = shards
            .iter()
            .map(|keys| {
                let mut b = fst::MapBuilder::memory();
                for k in *keys {
                    b.insert(k, slot).unwrap();
                }
                b.into_inner().unwrap()
            })
            .collect();
        let mut file = vec![0u8; HEADER_LEN];
        file.extend_from_slice(&table);
        file.extend_from_slice(&(fsts.len() as u32).to_le_bytes());
        file.extend_from_slice(&names.to_le_bytes());
        for f in &fsts {
            file.extend_from_slice(&(f.len() as u64).to_le_bytes());
        }
        for f in &fsts {
            file.extend_from_slice(f);
        }
        file[0..4].copy_from_slice(&MAGIC);
        file[4..8].copy_from_slice(&3u32.to_le_bytes());
        file[8..12].copy_from_slice(&(table.len() as u32).to_le_bytes());
        let data_len = (file.len() - HEADER_LEN - table.len()) as u64;
        file[16..24].copy_from_slice(&data_len.to_le_bytes());
        let crc = crc32fast::hash(&file[HEADER_LEN..]);
        file[12..16].copy_from_slice(&crc.to_le_bytes());
        file
    }

    /// Found by the fst_open fuzz target: a name in its own shard and again in another one was
    /// counted twice, and the copy could never be found.
    #[test]
    fn a_name_outside_its_shard_is_refused() {
        let (mine, other) = (b"test.shop4.n19", b"test.shop4.n17");
        let own = |k: &[u8]| {
            shard_of(
                {
                    let mut h = KeyHasher::new();
                    let mut labels = k.split(|&b| b == b'.');
                    h.label(labels.next().unwrap());
                    h.label(labels.next().unwrap());
                    h.finish()
                },
                2,
            )
        };
        let (s, t) = (own(mine), 1 - own(mine));
        assert_eq!(own(other), s, "both names hash to one shard");
        let mut shards: [Vec<&[u8]>; 2] = [vec![b"zz"], vec![b"zz"]];
        shards[s].extend([&mine[..], &other[..]]);
        shards[s].sort();
        let good: Vec<&[&[u8]]> = shards.iter().map(Vec::as_slice).collect();
        assert!(Blocklist::from_bytes(v3_file(&good, 3)).is_ok());
        shards[t].push(&mine[..]);
        shards[t].sort();
        let bad: Vec<&[&[u8]]> = shards.iter().map(Vec::as_slice).collect();
        let e = Blocklist::from_bytes(v3_file(&bad, 4)).unwrap_err();
        assert!(
            e.to_string().contains(&format!(
                "the entry \"test.shop4.n19\" is in FST shard {t}, not in the one its name hashes to"
            )),
            "{e}"
        );
    }

    /// Found by the fst_open fuzz target: shards holding different one-label names (as many in
    /// each) passed the count, and a name's verdict depended on the shard it hashed to.
    #[test]
    fn one_label_names_must_be_the_same_in_every_shard() {
        let same: [&[&[u8]]; 2] = [&[b"zz"], &[b"zz"]];
        assert_eq!(Blocklist::from_bytes(v3_file(&same, 1)).unwrap().len(), 1);
        let other: [&[&[u8]]; 2] = [&[b"zz"], &[b"zy"]];
        let e = Blocklist::from_bytes(v3_file(&other, 1)).unwrap_err();
        assert!(
            e.to_string().contains(
                "the one-label entry \"zy\" of FST shard 1 is not shard 0's (every shard holds the same)"
            ),
            "{e}"
        );
        let fewer: [&[&[u8]]; 3] = [&[b"yy", b"zz"], &[b"yy", b"zz"], &[b"yy", b"zz"]];
        assert!(Blocklist::from_bytes(v3_file(&fewer, 2)).is_ok());
    }

    #[test]
    fn entry_names() {
        assert_eq!(entry_name("WWW.Bad.Test.", 2), "bad.test");
        assert_eq!(
            entry_name_wire(b"\x03WWW\x03bad\x04test\x00", 2).unwrap(),
            "bad.test"
        );
        assert_eq!(entry_name_wire(b"\xc0", 2), None);
    }

    /// A policy group's verdict over some lists equals the verdict of a file compiled from those
    /// lists alone: for every subset of four lists sharing names in every way (same name in two
    /// lists, allow over block, exact beside subtree, different actions), compiled in one file
    /// and merged from one file per list as the reloader does.
    #[test]
    fn a_verdict_over_some_lists_equals_a_file_of_those_lists() {
        use super::super::merge::{Part, merge_into};
        type List<'a> = (&'a str, ListKind, Action, &'a [(&'a str, MatchMode)]);
        let lists: [List; 4] = [
            (
                "a",
                Block,
                Action::Sinkhole,
                &[
                    ("both.test", Subtree),
                    ("a.test", Subtree),
                    ("x.deep.test", Exact),
                ],
            ),
            (
                "b",
                Block,
                Action::Nxdomain,
                &[
                    ("both.test", Subtree),
                    ("deep.test", Subtree),
                    ("x.deep.test", Subtree),
                ],
            ),
            (
                "allow",
                Allow,
                Action::Sinkhole,
                &[("ok.both.test", Subtree), ("x.deep.test", Exact)],
            ),
            (
                "c",
                Block,
                Action::Refused,
                &[
                    ("ok.both.test", Exact),
                    ("test", Subtree),
                    ("both.test", Exact),
                ],
            ),
        ];
        let compile = |which: &[usize]| {
            let mut c = Compiler::new();
            for &i in which {
                let (name, kind, action, entries) = lists[i];
                let mut l = info(name, kind);
                l.action = action;
                let id = c.add_list(l).unwrap();
                for &(n, mode) in entries {
                    c.insert(id, n, kind, mode, action).unwrap();
                }
            }
            c.to_bytes().unwrap()
        };
        let all = Blocklist::from_bytes(compile(&[0, 1, 2, 3])).unwrap();
        assert!(all.alts.is_some(), "shared names have alternates");
        let parts: Vec<Part> = (0..4)
            .map(|i| Part::from_bytes(Path::new("p.fst"), compile(&[i])).unwrap())
            .collect();
        let mut merged = std::io::Cursor::new(Vec::new());
        merge_into(&parts, &mut merged, Path::new("m.fst")).unwrap();
        let merged = Blocklist::from_bytes(merged.into_inner()).unwrap();
        // The same files as layers, unmerged: they must answer as the merge does.
        let layered = Blocklist::layered(
            &(0..4)
                .map(|i| Arc::new(Blocklist::from_bytes(compile(&[i])).unwrap()))
                .collect::<Vec<_>>(),
        )
        .unwrap();
        assert!(layered.is_layered());
        assert_eq!(layered.lists(), merged.lists());
        let names = [
            "both.test",
            "www.both.test",
            "ok.both.test",
            "a.ok.both.test",
            "a.test",
            "deep.test",
            "x.deep.test",
            "y.x.deep.test",
            "other.test",
            "test",
            "none.example",
        ];
        let brief = |bl: &Blocklist, v: Option<Verdict>| {
            v.map(|v| {
                (
                    bl.lists()[v.list as usize].name.clone(),
                    v.kind,
                    v.action,
                    v.match_mode,
                    v.matched_labels,
                )
            })
        };
        for mask in 0u32..16 {
            let which: Vec<usize> = (0..4).filter(|i| mask & (1 << i) != 0).collect();
            let alone = Blocklist::from_bytes(compile(&which)).unwrap();
            for bl in [&all, &merged, &layered] {
                for n in names {
                    let mut w = Vec::new();
                    for l in n.split('.') {
                        w.push(l.len() as u8);
                        w.extend_from_slice(l.as_bytes());
                    }
                    w.push(0);
                    let got = bl.lookup_wire_for(&w, |l| mask & (1 << l) != 0);
                    assert_eq!(
                        brief(bl, got),
                        brief(&alone, alone.lookup(n)),
                        "{n} with lists {which:?}"
                    );
                }
            }
        }
        for n in names {
            assert_eq!(
                brief(&layered, layered.lookup(n)),
                brief(&merged, merged.lookup(n)),
                "{n}"
            );
            let set = |bl: &Blocklist| {
                let mut m: Vec<_> = bl
                    .matches(n)
                    .into_iter()
                    .map(|m| {
                        (
                            bl.lists()[m.list as usize].name.clone(),
                            m.kind,
                            m.match_mode,
                            m.matched_labels,
                        )
                    })
                    .collect();
                m.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
                m
            };
            assert_eq!(set(&layered), set(&merged), "{n}");
        }
        let m = all.matches("y.x.deep.test");
        let names: Vec<&str> = m
            .iter()
            .map(|m| all.lists()[m.list as usize].name.as_str())
            .collect();
        assert_eq!(names, ["c", "b", "b"], "{m:?}");
    }

    /// Address prefixes: the longest covering prefix decides, allow beats block at the same
    /// prefix, families never mix, names never reach them, and shards and policy groups keep
    /// working.
    #[test]
    fn ip_prefixes() {
        use std::net::IpAddr;
        let net = |s: &str| s.parse::<ipnet::IpNet>().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for shards in [1, 3] {
            let mut c = Compiler::new();
            c.set_shards(shards);
            let b = c.add_list(info("block", Block)).unwrap();
            let a = c.add_list(info("allow", Allow)).unwrap();
            let o = c.add_list(info("other", Block)).unwrap();
            for i in 0..2000 {
                c.insert(b, &format!("n{i}.test"), Block, Subtree, Action::Sinkhole)
                    .unwrap();
            }
            c.insert_ip(b, net("198.18.0.0/15"), Block, Action::Nxdomain);
            c.insert_ip(b, net("198.18.7.0/24"), Block, Action::Sinkhole);
            c.insert_ip(a, net("198.18.7.9/32"), Allow, Action::Sinkhole);
            c.insert_ip(b, net("198.18.9.9/32"), Block, Action::Nodata);
            c.insert_ip(a, net("198.18.9.9/32"), Allow, Action::Sinkhole);
            c.insert_ip(o, net("198.18.7.0/24"), Block, Action::Refused);
            c.insert_ip(b, net("2001:db8::/32"), Block, Action::Nodata);
            let bl = Blocklist::from_bytes(c.to_bytes().unwrap()).unwrap();
            assert!(bl.has_ips());
            let got = |s: &str| {
                bl.lookup_ip(ip(s))
                    .map(|v| (v.kind, v.action, v.matched_labels, v.list))
            };
            assert_eq!(got("198.19.255.1"), Some((Block, Action::Nxdomain, 15, b)));
            assert_eq!(got("198.18.7.1"), Some((Block, Action::Sinkhole, 24, b)));
            assert_eq!(got("198.18.7.9"), Some((Allow, Action::Sinkhole, 32, a)));
            assert_eq!(got("198.18.9.9").map(|v| v.0), Some(Allow));
            assert_eq!(got("198.20.0.1"), None);
            assert_eq!(got("2001:db8:5::1"), Some((Block, Action::Nodata, 32, b)));
            assert_eq!(got("2001:db9::1"), None);
            assert_eq!(got("::ffff:198.18.7.1"), None, "no family mixing");
            assert_eq!(ip_entry(ip("198.18.7.1"), 24).to_string(), "198.18.7.0/24");
            // No name walks into the prefixes, and names still work beside them.
            assert_eq!(bl.lookup("n7.test").map(|v| v.list), Some(b));
            assert_eq!(bl.lookup_wire(b"\x04.411\x00"), None);
            // A group without list `b` sees `other`'s /24 (an alternate of the shared key).
            let v = bl.lookup_ip_for(ip("198.18.7.1"), |l| l != b).unwrap();
            assert_eq!((v.list, v.action), (o, Action::Refused));
            let v = bl.lookup_ip_for(ip("198.18.0.1"), |l| l != b);
            assert_eq!(v, None);
            let all: Vec<_> = bl
                .matches_ip(ip("198.18.7.9"))
                .iter()
                .map(|m| (m.list, m.matched_labels))
                .collect();
            assert_eq!(all, [(b, 15), (b, 24), (o, 24), (a, 32)]);
        }
        let names = build(&[("bad.test", Block, Subtree)]);
        assert!(!names.has_ips());
        assert_eq!(names.lookup_ip("198.18.0.1".parse().unwrap()), None);
        assert!(!Blocklist::empty().has_ips());
    }

    /// A list served straight from the compiler answers as the same file checked and read back.
    #[test]
    fn a_list_from_the_compiler_answers_as_its_file() {
        let net = |s: &str| s.parse::<ipnet::IpNet>().unwrap();
        let make = || {
            let mut c = Compiler::new();
            c.set_shards(3);
            let b = c.add_list(info("block", Block)).unwrap();
            let a = c.add_list(info("allow", Allow)).unwrap();
            for i in 0..3000 {
                c.insert(b, &format!("n{i}.test"), Block, Subtree, Action::Sinkhole)
                    .unwrap();
            }
            c.insert(b, "zz", Block, Subtree, Action::Sinkhole).unwrap();
            c.insert(a, "ok.n7.test", Allow, Subtree, Action::Sinkhole)
                .unwrap();
            c.insert(b, "ok.n7.test", Block, Exact, Action::Nxdomain)
                .unwrap();
            c.insert_ip(b, net("198.18.7.0/24"), Block, Action::Sinkhole);
            c
        };
        let direct = make().into_blocklist().unwrap();
        let read = Blocklist::from_bytes(make().to_bytes().unwrap()).unwrap();
        assert_eq!(direct.file_bytes(), read.file_bytes());
        assert_eq!((direct.len(), direct.lists()), (read.len(), read.lists()));
        assert!(direct.has_ips());
        for n in [
            "n0.test",
            "www.n2999.test",
            "ok.n7.test",
            "a.ok.n7.test",
            "a.zz",
            "n3000.test",
            "test",
        ] {
            assert_eq!(direct.lookup(n), read.lookup(n), "{n}");
        }
        let a = "198.18.7.7".parse().unwrap();
        assert_eq!(direct.lookup_ip(a), read.lookup_ip(a));
        // The filter is there: most unlisted names never reach the FST.
        let passed = (0..1000)
            .filter(|i| {
                direct.filter.may_contain({
                    let mut h = KeyHasher::new();
                    h.key(format!("test.u{i}").as_bytes());
                    h.finish()
                })
            })
            .count();
        assert!(
            passed < 50,
            "{passed} of 1000 unlisted names pass the filter"
        );
    }

    /// Address prefixes spread over layers answer as the same prefixes in one file.
    #[test]
    fn layered_addresses_answer_as_one_file() {
        let net = |s: &str| s.parse::<ipnet::IpNet>().unwrap();
        let entries: [(&str, ListKind, &str, Action); 6] = [
            ("block", Block, "198.18.0.0/15", Action::Nxdomain),
            ("block", Block, "198.18.7.0/24", Action::Sinkhole),
            ("allow", Allow, "198.18.7.9/32", Action::Sinkhole),
            ("block", Block, "198.18.9.9/32", Action::Nodata),
            ("allow", Allow, "198.18.9.9/32", Action::Sinkhole),
            ("other", Block, "198.18.7.0/24", Action::Refused),
        ];
        let file = |names: &[&str]| {
            let mut c = Compiler::new();
            for &n in names {
                let kind = if n == "allow" { Allow } else { Block };
                let id = c.add_list(info(n, kind)).unwrap();
                for (list, k, p, a) in entries {
                    if list == n {
                        c.insert_ip(id, net(p), k, a);
                    }
                }
            }
            Arc::new(Blocklist::from_bytes(c.to_bytes().unwrap()).unwrap())
        };
        let one = file(&["block", "allow", "other"]);
        let layered =
            Blocklist::layered(&[file(&["block"]), file(&["allow"]), file(&["other"])]).unwrap();
        assert!(layered.has_ips());
        for a in [
            "198.19.255.1",
            "198.18.7.1",
            "198.18.7.9",
            "198.18.9.9",
            "198.20.0.1",
        ] {
            let a: IpAddr = a.parse().unwrap();
            assert_eq!(layered.lookup_ip(a), one.lookup_ip(a), "{a}");
            for skip in 0..3 {
                assert_eq!(
                    layered.lookup_ip_for(a, |l| l != skip),
                    one.lookup_ip_for(a, |l| l != skip),
                    "{a} without list {skip}"
                );
            }
            let brief = |m: Vec<Match>| {
                let mut m: Vec<_> = m.iter().map(|m| (m.list, m.matched_labels)).collect();
                m.sort();
                m
            };
            assert_eq!(
                brief(layered.matches_ip(a)),
                brief(one.matches_ip(a)),
                "{a}"
            );
        }
    }

    /// A patch layer, with the keys it touched hidden in the file under it, answers as the
    /// patched state compiled whole, for names and addresses, over every subset of lists.
    #[test]
    fn a_patch_over_hidden_keys_answers_as_the_patched_file() {
        use super::super::layered::Hidden;
        type E<'a> = (&'a str, ListKind, MatchMode, Action);
        let old: &[E] = &[
            ("bad.test", Block, Subtree, Action::Nxdomain),
            ("ok.bad.test", Allow, Subtree, Action::Sinkhole),
            ("gone.test", Block, Exact, Action::Sinkhole),
            ("x.deep.test", Block, Exact, Action::Sinkhole),
            ("deep.test", Block, Subtree, Action::Nodata),
            ("198.18.7.0/24", Block, Subtree, Action::Sinkhole),
            ("198.18.9.9/32", Block, Subtree, Action::Nodata),
        ];
        let new: &[E] = &[
            ("bad.test", Block, Subtree, Action::Nxdomain),
            ("ok.bad.test", Block, Exact, Action::Drop),
            ("x.deep.test", Block, Exact, Action::Sinkhole),
            ("deep.test", Block, Exact, Action::Sinkhole),
            ("new.test", Block, Subtree, Action::Sinkhole),
            ("198.18.7.0/24", Block, Subtree, Action::Sinkhole),
            ("198.18.0.0/15", Block, Subtree, Action::Nxdomain),
        ];
        let other: &[E] = &[
            ("deep.test", Block, Subtree, Action::Refused),
            ("gone.test", Block, Subtree, Action::Refused),
            ("ok.bad.test", Block, Exact, Action::Refused),
            ("198.18.9.0/24", Block, Subtree, Action::Refused),
        ];
        let touched = |e: &&E| {
            ["ok.bad.test", "gone.test", "deep.test", "new.test"].contains(&e.0)
                || ["198.18.9.9/32", "198.18.0.0/15"].contains(&e.0)
        };
        let file = |lists: &[(&str, Vec<&E>)]| {
            let mut c = Compiler::new();
            for (name, entries) in lists {
                let id = c.add_list(info(name, Block)).unwrap();
                for &&(n, kind, mode, action) in entries {
                    match n.parse::<ipnet::IpNet>() {
                        Ok(net) => c.insert_ip(id, net, kind, action),
                        Err(_) => {
                            c.insert(id, n, kind, mode, action).unwrap();
                        }
                    }
                }
            }
            Arc::new(Blocklist::from_bytes(c.to_bytes().unwrap()).unwrap())
        };
        let whole = file(&[
            ("feed", new.iter().collect()),
            ("other", other.iter().collect()),
        ]);
        let base = file(&[("feed", old.iter().collect())]);
        let patch = file(&[("feed", new.iter().filter(touched).collect())]);
        let gone = file(&[("feed", old.iter().filter(touched).collect())]);
        let hidden = Arc::new(Hidden::of(&[&gone, &patch]));
        assert_eq!(hidden.len(), 6);
        let layered = Blocklist::layered_hiding(&[
            (base, vec![hidden]),
            (patch, Vec::new()),
            (file(&[("other", other.iter().collect())]), Vec::new()),
        ])
        .unwrap();
        let brief = |bl: &Blocklist, v: Option<Verdict>| {
            v.map(|v| {
                let l = &bl.lists()[v.list as usize].name;
                (l.clone(), v.kind, v.action, v.match_mode, v.matched_labels)
            })
        };
        let named = |bl: &Blocklist, which: &[&str]| {
            let ids: Vec<bool> = bl
                .lists()
                .iter()
                .map(|l| which.contains(&l.name.as_str()))
                .collect();
            move |id: u16| ids[id as usize]
        };
        let subsets: [&[&str]; 4] = [&["feed", "other"], &["feed"], &["other"], &[]];
        for n in [
            "bad.test",
            "www.bad.test",
            "ok.bad.test",
            "a.ok.bad.test",
            "gone.test",
            "a.gone.test",
            "deep.test",
            "y.deep.test",
            "x.deep.test",
            "new.test",
            "a.new.test",
            "test",
            "none.example",
        ] {
            assert_eq!(
                brief(&layered, layered.lookup(n)),
                brief(&whole, whole.lookup(n)),
                "{n}"
            );
            let w = with_wire(n, <[u8]>::to_vec).unwrap();
            for which in subsets {
                assert_eq!(
                    brief(
                        &layered,
                        layered.lookup_wire_for(&w, named(&layered, which))
                    ),
                    brief(&whole, whole.lookup_wire_for(&w, named(&whole, which))),
                    "{n} with {which:?}"
                );
            }
            let set = |bl: &Blocklist| {
                let mut m: Vec<_> = bl
                    .matches(n)
                    .into_iter()
                    .map(|m| {
                        let l = &bl.lists()[m.list as usize].name;
                        format!("{l} {:?} {:?} {}", m.kind, m.match_mode, m.matched_labels)
                    })
                    .collect();
                m.sort();
                m
            };
            assert_eq!(set(&layered), set(&whole), "{n}");
        }
        for a in [
            "198.18.7.1",
            "198.18.9.9",
            "198.18.9.1",
            "198.19.1.1",
            "198.20.0.1",
        ] {
            let a: IpAddr = a.parse().unwrap();
            assert_eq!(
                brief(&layered, layered.lookup_ip(a)),
                brief(&whole, whole.lookup_ip(a)),
                "{a}"
            );
            for which in subsets {
                assert_eq!(
                    brief(&layered, layered.lookup_ip_for(a, named(&layered, which))),
                    brief(&whole, whole.lookup_ip_for(a, named(&whole, which))),
                    "{a} with {which:?}"
                );
            }
            let set = |bl: &Blocklist| {
                let mut m: Vec<_> = bl
                    .matches_ip(a)
                    .into_iter()
                    .map(|m| (bl.lists()[m.list as usize].name.clone(), m.matched_labels))
                    .collect();
                m.sort();
                m
            };
            assert_eq!(set(&layered), set(&whole), "{a}");
        }
    }

    #[test]
    fn ip_keys_round_trip() {
        for s in [
            "0.0.0.0/0",
            "198.18.0.0/15",
            "207.148.115.161/32",
            "2001:db8::/32",
            "::/0",
        ] {
            let n: ipnet::IpNet = s.parse().unwrap();
            let mut k = Vec::new();
            super::super::format::ip_key(&n, &mut k);
            assert_eq!(super::super::format::ip_of_key(&k), Some(n));
        }
    }

    #[test]
    fn blocklist_is_send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Blocklist>();
    }
}
