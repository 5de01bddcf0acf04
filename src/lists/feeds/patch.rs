//! What an IXFR changed, handed to the reloader so that it serves the change at the cost of
//! the change, before it compiles the whole zone again.
//!
//! A [`Patch`] holds, for every owner the IXFR touched, all of that owner's records before and
//! after, as RPZ text. The reloader compiles the "after" text into a small file layered over
//! the zone's last compiled version, and hides there the keys both texts compile to
//! ([`crate::blocklist::Hidden`]). Hiding is by key, so a patch must carry every owner whose
//! records compile to a key it touches: a name's twin (`a.test` and `*.a.test` share the key
//! `a.test`), and every spelling of an `rpz-ip` prefix (`zz` or zero words, leading zeros).
//!
//! The zone file is still written whole first: the patch only says how it differs from the
//! previous one, by serial, and the reloader uses it only when the file on disk has the serial
//! the patch leads to.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::serial_newer;
use super::xfr::Diff;
use crate::blocklist::source::rpz_ip;

/// Patches kept per feed for the reloader: more means it fell far behind, and compiles the
/// zone whole anyway.
const MAX_QUEUED: usize = 16;
/// Past this many records (before and after together) a patch is not made: compiling the zone
/// whole costs about as much.
pub const MAX_RECORDS: usize = 100_000;

/// The records an IXFR touched, before and after.
#[derive(Debug, Clone)]
pub struct Patch {
    /// The serial it applies to.
    pub from: u32,
    /// The serial it leads to.
    pub to: u32,
    /// `$ORIGIN`, the SOA, then every record the touched owners had.
    pub before: String,
    /// `$ORIGIN`, the new SOA, then every record the touched owners have now.
    pub after: String,
}

/// Patches waiting for the reloader, per zone file.
#[derive(Debug, Clone, Default)]
pub struct Patches {
    queues: Arc<Mutex<HashMap<PathBuf, VecDeque<Patch>>>>,
}

impl Patches {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, VecDeque<Patch>>> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a patch of the zone file `path`.
    pub fn push(&self, path: &Path, patch: Patch) {
        let mut all = self.lock();
        let q = all.entry(path.to_path_buf()).or_default();
        if q.len() == MAX_QUEUED {
            q.pop_front();
        }
        q.push_back(patch);
    }

    /// The patches that lead from serial `from` to `to`, in order, if the queue has all of
    /// them; patches the file has moved past are dropped either way.
    pub fn chain(&self, path: &Path, from: u32, to: u32) -> Option<Vec<Patch>> {
        let mut all = self.lock();
        let q = all.get_mut(path)?;
        let mut chain = Vec::new();
        let mut at = from;
        while at != to {
            let next = q.iter().find(|p| p.from == at)?;
            at = next.to;
            chain.push(next.clone());
            if chain.len() > MAX_QUEUED {
                return None;
            }
        }
        q.retain(|p| serial_newer(p.to, to));
        Some(chain)
    }

    /// Drops the patches of `path` that lead to `serial` or older: the file is past them.
    pub fn served(&self, path: &Path, serial: u32) {
        if let Some(q) = self.lock().get_mut(path) {
            q.retain(|p| serial_newer(p.to, serial));
        }
    }
}

/// The owner of a record line.
fn owner(line: &str) -> &str {
    line.split(' ').next().unwrap_or("")
}

/// Every owner whose records compile to a key that the IXFR `steps` touch in `zone` (the
/// records before them; `origin` with its trailing dot): the owners the steps name, their
/// wildcard twins, and the other spellings of the `rpz-ip` prefixes among them.
pub fn touched(origin: &str, steps: &[Diff], zone: &BTreeSet<Box<str>>) -> BTreeSet<String> {
    let mut owners = BTreeSet::new();
    for step in steps {
        for l in step.deleted.iter().chain(&step.added) {
            let o = owner(l);
            match o.strip_prefix("*.") {
                Some(name) => owners.insert(name.to_owned()),
                None => owners.insert(format!("*.{o}")),
            };
            owners.insert(o.to_owned());
        }
    }
    let ip_suffix = format!(".rpz-ip.{origin}");
    let prefix_of = |o: &str| o.strip_suffix(&ip_suffix).and_then(|b| rpz_ip(b).ok());
    let prefixes: Vec<_> = owners.iter().filter_map(|o| prefix_of(o)).collect();
    if !prefixes.is_empty() {
        // Rare enough (a change to an address trigger) to pay for a look at every record.
        for l in zone {
            let o = owner(l);
            if o.ends_with(&ip_suffix) && prefix_of(o).is_some_and(|p| prefixes.contains(&p)) {
                owners.insert(o.to_owned());
            }
        }
    }
    owners
}

/// The records of `owners` in `zone`, as lines.
pub fn records(zone: &BTreeSet<Box<str>>, owners: &BTreeSet<String>) -> Vec<Box<str>> {
    let mut out = Vec::new();
    for o in owners {
        // Every line of owner `o` starts with `o ` and sorts before `o!`.
        let (from, to) = (format!("{o} "), format!("{o}!"));
        let range = (Bound::Included(from.as_str()), Bound::Excluded(to.as_str()));
        out.extend(zone.range::<str, _>(range).cloned());
    }
    out
}

/// `records` as an RPZ zone text the list parser reads like the zone file.
pub fn text(origin: &str, soa: &str, records: &[Box<str>]) -> String {
    let mut s = format!("$ORIGIN {origin}\n{soa}\n");
    for r in records {
        s.push_str(r);
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(lines: &[&str]) -> BTreeSet<Box<str>> {
        lines.iter().map(|&l| l.into()).collect()
    }

    #[test]
    fn touched_owners_take_their_twins_and_other_spellings_of_a_prefix() {
        let z = zone(&[
            "a.test.rpz.example. cname .",
            "*.a.test.rpz.example. cname rpz-passthru.",
            "ab.test.rpz.example. cname .",
            "128.zz.1.db8.2001.rpz-ip.rpz.example. cname .",
            "24.0.18.18.198.rpz-ip.rpz.example. cname .",
        ]);
        let step = Diff {
            from: 1,
            to: 2,
            deleted: vec!["a.test.rpz.example. cname .".into()],
            added: vec![
                "128.0.0.0.0.0.1.0db8.2001.rpz-ip.rpz.example. cname .".into(),
                "new.test.rpz.example. a 198.18.0.1".into(),
            ],
        };
        let t = touched("rpz.example.", &[step], &z);
        let t: Vec<&str> = t.iter().map(String::as_str).collect();
        assert_eq!(
            t,
            [
                "*.128.0.0.0.0.0.1.0db8.2001.rpz-ip.rpz.example.",
                "*.a.test.rpz.example.",
                "*.new.test.rpz.example.",
                "128.0.0.0.0.0.1.0db8.2001.rpz-ip.rpz.example.",
                "128.zz.1.db8.2001.rpz-ip.rpz.example.",
                "a.test.rpz.example.",
                "new.test.rpz.example.",
            ]
        );
        let r = records(&z, &t.iter().map(|s| s.to_string()).collect());
        assert_eq!(
            r.iter().map(|r| &**r).collect::<Vec<_>>(),
            [
                "*.a.test.rpz.example. cname rpz-passthru.",
                "128.zz.1.db8.2001.rpz-ip.rpz.example. cname .",
                "a.test.rpz.example. cname .",
            ],
            "not ab.test, whose owner starts with a.test's"
        );
    }

    #[test]
    fn a_chain_needs_every_patch_between_the_serials() {
        let p = Patches::default();
        let path = Path::new("/s/feeds/f.rpz");
        let patch = |from, to| Patch {
            from,
            to,
            before: String::new(),
            after: String::new(),
        };
        p.push(path, patch(1, 2));
        p.push(path, patch(2, 3));
        p.push(path, patch(3, 4));
        assert!(p.chain(path, 1, 5).is_none(), "4 → 5 is missing");
        let c = p.chain(path, 1, 3).unwrap();
        assert_eq!(
            c.iter().map(|p| (p.from, p.to)).collect::<Vec<_>>(),
            [(1, 2), (2, 3)]
        );
        assert!(p.chain(path, 1, 3).is_none(), "used patches are dropped");
        assert_eq!(p.chain(path, 3, 4).unwrap().len(), 1);
        p.push(path, patch(4, 5));
        p.served(path, 5);
        assert!(p.chain(path, 4, 5).is_none());
        assert!(p.chain(Path::new("/other"), 1, 2).is_none());
    }
}
