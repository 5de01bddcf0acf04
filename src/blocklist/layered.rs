//! Several compiled files served as one, for the moments between a change and the merge.
//!
//! Merging every source into one file ([`super::merge`]) costs time in proportion to all of
//! them, however small the change. So the reloader publishes the per-source files themselves
//! first, as layers of one [`Blocklist`], and the merged file after, once it is built. Layers
//! answer exactly as their merge does:
//!
//! - the list table is the layers' tables one after another, as [`super::merge`] lays it out,
//!   so list ids, names and policy groups mean the same before and after the merge;
//! - each layer gives its own verdict (one walk of its own FST, behind its own Bloom filter),
//!   and of those the most specific entry wins; at the same entry allow beats block and exact
//!   beats subtree, then the first list in table order wins: the rule the merge applies
//!   ([`super::format`]'s slots) and the matcher's `decide`.
//!
//! A query costs one lookup per layer, which is why layers are only a bridge to the merge.
//!
//! A layer may be a file whose entries were not checked one by one
//! ([`Blocklist::check_for_layer`]): an entry that names a list its file lacks is ignored here,
//! never attributed to another layer's list.
//!
//! A layer may also replace entries of the layers under it: a patch of a zone (an IXFR) is the
//! new state of the keys it touched, and those keys ([`Hidden`]) are hidden in the layers it
//! patches, whose answers are then read around them. Hiding is by key, all of a key's entries
//! at once, so a patch carries every entry its keys have in the new state.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use super::format::ip_key;
use super::matcher::{ip_entry, suffix_key};
use super::{Blocklist, Error, ListInfo, ListKind, MAX_LISTS, Match, MatchMode, Verdict};

/// Keys (names and address prefixes, as the FST keeps them) whose entries a later layer
/// replaces.
#[derive(Debug, Default)]
pub struct Hidden {
    /// foldhash: a listed name's lookup in a patched layer hashes one key more.
    keys: HashSet<Box<[u8]>, foldhash::fast::RandomState>,
}

impl Hidden {
    /// Every key of `files`.
    pub fn of(files: &[&Blocklist]) -> Hidden {
        let mut keys = HashSet::default();
        for f in files {
            f.each_key(|k| {
                if !keys.contains(k) {
                    keys.insert(Box::from(k));
                }
            });
        }
        Hidden { keys }
    }

    /// Keys hidden.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when nothing is hidden.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn has(&self, key: &[u8]) -> bool {
        self.keys.contains(key)
    }

    /// Whether the entry of the last `labels` labels of wire name `name` is hidden.
    fn has_name(&self, name: &[u8], labels: u8) -> bool {
        let mut buf = [0u8; 255];
        suffix_key(name, labels, &mut buf).is_some_and(|k| self.has(k))
    }

    /// Whether the entry of the `len`-bit prefix of `addr` is hidden.
    fn has_ip(&self, addr: IpAddr, len: u8) -> bool {
        let mut key = Vec::with_capacity(2 + usize::from(len));
        ip_key(&ip_entry(addr, len), &mut key);
        self.has(&key)
    }
}

/// One layer: its file, the id its first list has in the combined table, and the keys later
/// layers replace in it.
struct Layer {
    file: Arc<Blocklist>,
    first: u16,
    hidden: Box<[Arc<Hidden>]>,
}

impl Layer {
    fn hides(&self, key: &[u8]) -> bool {
        self.hidden.iter().any(|h| h.has(key))
    }

    fn hides_name(&self, name: &[u8], labels: u8) -> bool {
        self.hidden.iter().any(|h| h.has_name(name, labels))
    }

    fn hides_ip(&self, addr: IpAddr, len: u8) -> bool {
        self.hidden.iter().any(|h| h.has_ip(addr, len))
    }

    /// This layer's verdict for a name over the lists `applies` accepts (own ids), around the
    /// hidden keys: the file's own verdict unless its key is hidden, which is rare (only the
    /// keys a patch touched), and then the file's entries one by one.
    fn name_verdict(&self, name: &[u8], applies: &impl Fn(u16) -> bool) -> Option<Verdict> {
        let v = self.file.lookup_wire_for(name, applies)?;
        if self.hidden.is_empty() || !self.hides_name(name, v.matched_labels) {
            return Some(v);
        }
        self.file
            .decide_entries(name, applies, |key| self.hides(key))
    }

    /// [`Layer::name_verdict`] for an answer address.
    fn ip_verdict(&self, addr: IpAddr, applies: &impl Fn(u16) -> bool) -> Option<Verdict> {
        let v = self.file.lookup_ip_for(addr, applies)?;
        if self.hidden.is_empty() || !self.hides_ip(addr, v.matched_labels) {
            return Some(v);
        }
        self.file
            .decide_ip_entries(addr, applies, |key| self.hides(key))
    }
}

/// The layers of a layered [`Blocklist`].
pub(super) struct Layers {
    layers: Box<[Layer]>,
}

impl Layers {
    /// The layers of `files` (layered ones are flattened), each with the keys hidden in it,
    /// and their combined list table.
    pub(super) fn new(
        files: &[(Arc<Blocklist>, Vec<Arc<Hidden>>)],
    ) -> Result<(Layers, Vec<ListInfo>), Error> {
        let mut layers = Vec::new();
        let mut lists = Vec::new();
        for (f, hidden) in files {
            match &f.layers {
                Some(inner) => {
                    for l in inner.layers.iter() {
                        let both = l.hidden.iter().chain(hidden).cloned().collect();
                        push(&mut layers, &mut lists, &l.file, both)?;
                    }
                }
                None => push(&mut layers, &mut lists, f, hidden.clone())?,
            }
        }
        Ok((
            Layers {
                layers: layers.into_boxed_slice(),
            },
            lists,
        ))
    }

    /// Calls `f` with every layer's file.
    pub(super) fn each_file(&self, mut f: impl FnMut(&Blocklist)) {
        for l in self.layers.iter() {
            f(&l.file);
        }
    }

    /// Distinct names per layer, added up (a name in two layers counts twice until merged).
    pub(super) fn len(&self) -> usize {
        self.layers.iter().map(|l| l.file.len()).sum()
    }

    pub(super) fn has_ips(&self) -> bool {
        self.layers.iter().any(|l| l.file.has_ips())
    }

    pub(super) fn lookup_wire(&self, name: &[u8]) -> Option<Verdict> {
        self.lookup_wire_for(name, &|_| true)
    }

    pub(super) fn lookup_wire_for(
        &self,
        name: &[u8],
        applies: &impl Fn(u16) -> bool,
    ) -> Option<Verdict> {
        self.best_for(applies, |l, applies| l.name_verdict(name, &applies))
    }

    pub(super) fn lookup_ip(&self, addr: IpAddr) -> Option<Verdict> {
        self.lookup_ip_for(addr, &|_| true)
    }

    pub(super) fn lookup_ip_for(
        &self,
        addr: IpAddr,
        applies: &impl Fn(u16) -> bool,
    ) -> Option<Verdict> {
        self.best_for(applies, |l, applies| l.ip_verdict(addr, &applies))
    }

    /// Every layer's matches but hidden ones, least specific first (within one entry, in
    /// table order). `hidden(layer, labels)` says whether a match of that many labels (or
    /// prefix bits) is hidden in the layer.
    fn matches(
        &self,
        each: impl Fn(&Blocklist) -> Vec<Match>,
        hidden: impl Fn(&Layer, u8) -> bool,
    ) -> Vec<Match> {
        let mut out: Vec<Match> = Vec::new();
        for l in self.layers.iter() {
            let own = l.file.lists().len();
            out.extend(
                each(&l.file)
                    .into_iter()
                    .filter(|m| usize::from(m.list) < own)
                    .filter(|m| l.hidden.is_empty() || !hidden(l, m.matched_labels))
                    .map(|mut m| {
                        m.list += l.first;
                        m
                    }),
            );
        }
        out.sort_by_key(|m| m.matched_labels);
        out
    }

    /// Matches of a wire name, as [`Layers::matches`].
    pub(super) fn matches_name(
        &self,
        each: impl Fn(&Blocklist) -> Vec<Match>,
        name: &[u8],
    ) -> Vec<Match> {
        self.matches(each, |l, labels| l.hides_name(name, labels))
    }

    /// Matches of an address, as [`Layers::matches`].
    pub(super) fn matches_ip(
        &self,
        each: impl Fn(&Blocklist) -> Vec<Match>,
        addr: IpAddr,
    ) -> Vec<Match> {
        self.matches(each, |l, len| l.hides_ip(addr, len))
    }

    /// The winner among the layers' own verdicts over the lists `applies` accepts (ids of the
    /// combined table).
    #[inline]
    fn best_for(
        &self,
        applies: &impl Fn(u16) -> bool,
        each: impl Fn(&Layer, &dyn Fn(u16) -> bool) -> Option<Verdict>,
    ) -> Option<Verdict> {
        let mut best: Option<Verdict> = None;
        for l in self.layers.iter() {
            let (first, own) = (l.first, l.file.lists().len());
            // An entry naming a list its file lacks (a layer only partly checked) is no entry.
            let applies = |id: u16| usize::from(id) < own && applies(id + first);
            if let Some(mut v) = each(l, &applies).filter(|v| usize::from(v.list) < own) {
                v.list += first;
                if best.is_none_or(|b| beats(&v, &b)) {
                    best = Some(v);
                }
            }
        }
        best
    }
}

fn push(
    layers: &mut Vec<Layer>,
    lists: &mut Vec<ListInfo>,
    file: &Arc<Blocklist>,
    hidden: Vec<Arc<Hidden>>,
) -> Result<(), Error> {
    let count = lists.len() + file.lists().len();
    if count > MAX_LISTS {
        return Err(Error::TooManyLists {
            count,
            max: MAX_LISTS,
        });
    }
    layers.push(Layer {
        file: Arc::clone(file),
        first: lists.len() as u16,
        hidden: hidden.into_iter().filter(|h| !h.is_empty()).collect(),
    });
    lists.extend(file.lists().iter().cloned());
    Ok(())
}

/// Whether verdict `a` wins over `b` (both for the same query): the more specific entry, then
/// allow over block, then exact over subtree, then the list first in table order.
#[inline]
fn beats(a: &Verdict, b: &Verdict) -> bool {
    let key = |v: &Verdict| {
        (
            v.matched_labels,
            v.kind == ListKind::Allow,
            v.match_mode == MatchMode::Exact,
        )
    };
    match key(a).cmp(&key(b)) {
        Ordering::Equal => a.list < b.list,
        o => o == Ordering::Greater,
    }
}
