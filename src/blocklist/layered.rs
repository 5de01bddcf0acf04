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

use std::cmp::Ordering;
use std::net::IpAddr;
use std::sync::Arc;

use super::{Blocklist, Error, ListInfo, ListKind, MAX_LISTS, Match, MatchMode, Verdict};

/// The layers of a layered [`Blocklist`].
pub(super) struct Layers {
    /// Each layer, with the id its first list has in the combined table.
    layers: Box<[(Arc<Blocklist>, u16)]>,
}

impl Layers {
    /// The layers of `files` (layered ones are flattened) and their combined list table.
    pub(super) fn new(files: &[Arc<Blocklist>]) -> Result<(Layers, Vec<ListInfo>), Error> {
        let mut layers = Vec::new();
        let mut lists = Vec::new();
        for f in files {
            match &f.layers {
                Some(inner) => {
                    for (l, _) in inner.layers.iter() {
                        push(&mut layers, &mut lists, l)?;
                    }
                }
                None => push(&mut layers, &mut lists, f)?,
            }
        }
        Ok((
            Layers {
                layers: layers.into_boxed_slice(),
            },
            lists,
        ))
    }

    /// Distinct names per layer, added up (a name in two layers counts twice until merged).
    pub(super) fn len(&self) -> usize {
        self.layers.iter().map(|(l, _)| l.len()).sum()
    }

    pub(super) fn has_ips(&self) -> bool {
        self.layers.iter().any(|(l, _)| l.has_ips())
    }

    pub(super) fn lookup_wire(&self, name: &[u8]) -> Option<Verdict> {
        self.best(|l| l.lookup_wire(name))
    }

    pub(super) fn lookup_wire_for(
        &self,
        name: &[u8],
        applies: &impl Fn(u16) -> bool,
    ) -> Option<Verdict> {
        self.best_for(applies, |l, applies| l.lookup_wire_for(name, applies))
    }

    pub(super) fn lookup_ip(&self, addr: IpAddr) -> Option<Verdict> {
        self.best(|l| l.lookup_ip(addr))
    }

    pub(super) fn lookup_ip_for(
        &self,
        addr: IpAddr,
        applies: &impl Fn(u16) -> bool,
    ) -> Option<Verdict> {
        self.best_for(applies, |l, applies| l.lookup_ip_for(addr, applies))
    }

    /// Every layer's matches, least specific first (within one entry, in table order).
    pub(super) fn matches(&self, each: impl Fn(&Blocklist) -> Vec<Match>) -> Vec<Match> {
        let mut out: Vec<Match> = self
            .layers
            .iter()
            .flat_map(|(l, first)| {
                let own = l.lists().len();
                each(l)
                    .into_iter()
                    .filter(move |m| usize::from(m.list) < own)
                    .map(move |mut m| {
                        m.list += first;
                        m
                    })
            })
            .collect();
        out.sort_by_key(|m| m.matched_labels);
        out
    }

    /// The winner among the layers' own verdicts.
    #[inline]
    fn best(&self, each: impl Fn(&Blocklist) -> Option<Verdict>) -> Option<Verdict> {
        let mut best: Option<Verdict> = None;
        for (l, first) in self.layers.iter() {
            if let Some(mut v) = each(l).filter(|v| usize::from(v.list) < l.lists().len()) {
                v.list += first;
                if best.is_none_or(|b| beats(&v, &b)) {
                    best = Some(v);
                }
            }
        }
        best
    }

    /// [`Layers::best`] over the lists `applies` accepts (ids of the combined table).
    fn best_for(
        &self,
        applies: &impl Fn(u16) -> bool,
        each: impl Fn(&Blocklist, &dyn Fn(u16) -> bool) -> Option<Verdict>,
    ) -> Option<Verdict> {
        let mut best: Option<Verdict> = None;
        for (l, first) in self.layers.iter() {
            let (first, own) = (*first, l.lists().len());
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
    layers: &mut Vec<(Arc<Blocklist>, u16)>,
    lists: &mut Vec<ListInfo>,
    file: &Arc<Blocklist>,
) -> Result<(), Error> {
    let count = lists.len() + file.lists().len();
    if count > MAX_LISTS {
        return Err(Error::TooManyLists {
            count,
            max: MAX_LISTS,
        });
    }
    layers.push((Arc::clone(file), lists.len() as u16));
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
