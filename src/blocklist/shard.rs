//! Splitting one compiled list into FST shards that are built in parallel.
//!
//! Building an FST is inherently sequential, and for large lists it is most of a compile: fst's
//! node registry alone takes well over half of the time of a 1 M-name build. A large list is
//! therefore split into shards, each an independent FST built on its own thread: a compile
//! sorts and builds each shard apart ([`across_shards`]); the merge, whose input comes sorted,
//! hands each key to its shard's thread ([`ShardedBuilder`]).
//!
//! A key goes to the shard chosen by a hash of its first two labels (`com.example` for
//! `com.example.www`), so a name and every ancestor it can match below the TLD live in the same
//! shard and a query still walks exactly one FST. Keys of one label (a listed TLD) are copied
//! into every shard, so whatever shard a query picks sees them too. Address-prefix keys
//! ([`super::format::IP_MARK`]) all go to shard 0, where an address lookup walks.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use super::Error;
use super::keyhash::KeyHasher;

/// Keys per shard the shard count aims at; below it a list is one FST.
const KEYS_PER_SHARD: u64 = 250_000;
/// Most shards a file is split into.
pub const MAX_SHARDS: usize = 16;

/// How many shards a file of (at most) `keys` keys is split into. It depends on the list alone,
/// not on the machine, so the same lists always compile to the same bytes.
pub fn shards_for(keys: u64) -> usize {
    (keys.div_ceil(KEYS_PER_SHARD) as usize).clamp(1, MAX_SHARDS)
}

/// The shard of a key whose first two labels hash to `group` (see [`KeyHasher`]).
#[inline]
pub(crate) fn shard_of(group: (u64, u64), shards: usize) -> usize {
    ((group.1 as u128 * shards as u128) >> 64) as usize
}

/// The shard of a reversed-label key; `None` for a one-label key, which goes to every shard.
pub(crate) fn shard_of_key(key: &[u8], shards: usize) -> Option<usize> {
    if key.first() == Some(&super::format::IP_MARK) {
        return Some(0);
    }
    let mut labels = key.split(|&b| b == b'.');
    let (tld, second) = (labels.next()?, labels.next()?);
    let mut h = KeyHasher::new();
    h.label(tld);
    h.label(second);
    Some(shard_of(h.finish(), shards))
}

/// Whether `key` may sit in shard `shard` of `shards`: its own shard, or any for a one-label key.
/// A key elsewhere could never be found (a query walks only the shard its name hashes to).
pub(crate) fn belongs(key: &[u8], shard: usize, shards: usize) -> bool {
    shards <= 1 || shard_of_key(key, shards).is_none_or(|s| s == shard)
}

/// Runs `f(state, i)` for each shard `i < n`, spread over as many threads as there are cores
/// (each with its own state from `init`, so a large state is made once per thread, not once per
/// shard); returns the states. Opening a large list reads every shard whole: on two cores this
/// takes a third off the time a dropped list waits before it is served (1 M names: 250 →
/// 160 ms). Runs on the caller's thread when
/// there is one shard, one core, or no thread can be started.
pub(crate) fn across_shards<S: Send>(
    n: usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize) + Sync,
) -> Vec<S> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |c| c.get())
        .min(n);
    let serial = || {
        let mut s = init();
        (0..n).for_each(|i| f(&mut s, i));
        vec![s]
    };
    if threads <= 1 {
        return serial();
    }
    let (init, f) = (&init, &f);
    std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(threads);
        for t in 0..threads {
            let spawned = std::thread::Builder::new().spawn_scoped(scope, move || {
                let mut s = init();
                (t..n).step_by(threads).for_each(|i| f(&mut s, i));
                s
            });
            match spawned {
                Ok(h) => handles.push(h),
                Err(_) => break,
            }
        }
        if handles.len() < threads {
            // Shards of threads that did not start would be skipped: do it all here instead.
            for h in handles {
                let _ = h.join();
            }
            return serial();
        }
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// Whether `key` is copied into every shard: a one-label key (see the module doc).
pub(crate) fn in_every_shard(key: &[u8]) -> bool {
    !key.contains(&b'.')
}

/// Keys and values on their way to one shard's builder thread.
#[derive(Default)]
struct Batch {
    keys: Vec<u8>,
    /// End of each key in `keys`, and its value.
    ends: Vec<(u32, u64)>,
}

/// Bytes of keys gathered before a batch goes to its builder.
const BATCH_BYTES: usize = 64 * 1024;

enum Shards {
    /// One shard, built on the caller's thread.
    One(fst::MapBuilder<Vec<u8>>),
    /// Several, each built on its own thread from batches sent over a bounded channel.
    Many {
        batches: Vec<Batch>,
        senders: Vec<SyncSender<Batch>>,
        threads: Vec<JoinHandle<Result<Vec<u8>, fst::Error>>>,
    },
}

/// Builds the shards of one file from keys inserted in sorted order.
pub(crate) struct ShardedBuilder {
    shards: Shards,
    keys: u64,
}

impl ShardedBuilder {
    /// A builder for `shards` shards (1 builds in place, more start one thread each). If the
    /// threads cannot be started the file gets one shard, built in place.
    pub(crate) fn new(shards: usize) -> ShardedBuilder {
        let shards = if shards <= 1 {
            Shards::One(fst::MapBuilder::memory())
        } else {
            Self::spawn(shards).unwrap_or_else(|| Shards::One(fst::MapBuilder::memory()))
        };
        ShardedBuilder { shards, keys: 0 }
    }

    fn spawn(shards: usize) -> Option<Shards> {
        let mut senders = Vec::with_capacity(shards);
        let mut threads = Vec::with_capacity(shards);
        for i in 0..shards {
            let (tx, rx) = sync_channel::<Batch>(4);
            // On failure the threads started so far see their channel close and exit.
            let thread = std::thread::Builder::new()
                .name(format!("fst-shard-{i}"))
                .spawn(move || build_shard(rx))
                .ok()?;
            senders.push(tx);
            threads.push(thread);
        }
        Some(Shards::Many {
            batches: (0..shards).map(|_| Batch::default()).collect(),
            senders,
            threads,
        })
    }

    /// Adds one key; keys must come in strictly increasing order.
    pub(crate) fn insert(&mut self, key: &[u8], value: u64) -> Result<(), Error> {
        self.keys += 1;
        match &mut self.shards {
            Shards::One(b) => b
                .insert(key, value)
                .map_err(|source| Error::Build { source }),
            Shards::Many {
                batches, senders, ..
            } => {
                let n = batches.len();
                let to = shard_of_key(key, n);
                debug_assert_eq!(to.is_none(), in_every_shard(key));
                for i in to.map_or(0..n, |s| s..s + 1) {
                    let batch = &mut batches[i];
                    batch.keys.extend_from_slice(key);
                    batch.ends.push((batch.keys.len() as u32, value));
                    if batch.keys.len() >= BATCH_BYTES {
                        // A closed channel means that builder already failed; `finish` says why.
                        let _ = senders[i].send(std::mem::take(batch));
                    }
                }
                Ok(())
            }
        }
    }

    /// Finishes every shard; returns the FSTs in shard order and the number of distinct keys.
    pub(crate) fn finish(self) -> Result<(Vec<Vec<u8>>, u64), Error> {
        let fsts = match self.shards {
            Shards::One(b) => vec![b.into_inner().map_err(|source| Error::Build { source })?],
            Shards::Many {
                batches,
                senders,
                threads,
            } => {
                for (batch, tx) in batches.into_iter().zip(senders) {
                    let _ = tx.send(batch);
                }
                let mut fsts = Vec::with_capacity(threads.len());
                for t in threads {
                    let built = t.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
                    fsts.push(built.map_err(|source| Error::Build { source })?);
                }
                fsts
            }
        };
        Ok((fsts, self.keys))
    }
}

fn build_shard(rx: Receiver<Batch>) -> Result<Vec<u8>, fst::Error> {
    let mut b = fst::MapBuilder::memory();
    for batch in rx {
        let mut start = 0;
        for &(end, value) in &batch.ends {
            b.insert(&batch.keys[start..end as usize], value)?;
            start = end as usize;
        }
    }
    b.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_count_follows_list_size() {
        assert_eq!(shards_for(0), 1);
        assert_eq!(shards_for(250_000), 1);
        assert_eq!(shards_for(250_001), 2);
        assert_eq!(shards_for(1_000_000), 4);
        assert_eq!(shards_for(100_000_000), MAX_SHARDS);
    }

    #[test]
    fn a_name_and_its_ancestors_share_a_shard() {
        for n in 2..9 {
            let s = shard_of_key(b"com.example", n);
            assert!(s.is_some_and(|s| s < n));
            assert_eq!(shard_of_key(b"com.example.www", n), s);
            assert_eq!(shard_of_key(b"com.example.a.b.c", n), s);
            assert_eq!(shard_of_key(b"com", n), None);
            assert_eq!(shard_of_key(b".4110", n), Some(0));
            assert_eq!(shard_of_key(b".6", n), Some(0));
        }
    }

    #[test]
    fn every_key_lands_in_its_shard_and_tlds_in_all() {
        let mut keys: Vec<Vec<u8>> = (0..5000)
            .map(|i| format!("com.name{i}.www").into_bytes())
            .chain([b"com".to_vec(), b"org".to_vec()])
            .collect();
        keys.sort();
        let mut b = ShardedBuilder::new(3);
        for k in &keys {
            b.insert(k, 7).unwrap();
        }
        let (fsts, n) = b.finish().unwrap();
        assert_eq!(n, keys.len() as u64);
        let maps: Vec<_> = fsts
            .into_iter()
            .map(|f| fst::Map::new(f).unwrap())
            .collect();
        assert_eq!(maps.len(), 3);
        for k in &keys {
            match shard_of_key(k, 3) {
                Some(s) => {
                    for (i, m) in maps.iter().enumerate() {
                        assert_eq!(m.get(k).is_some(), i == s);
                    }
                }
                None => assert!(maps.iter().all(|m| m.get(k) == Some(7))),
            }
        }
        // All three got a share of 5000 random-ish groups.
        assert!(maps.iter().all(|m| m.len() > 1000));
    }
}
