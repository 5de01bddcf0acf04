//! The live blocklist: one handle that every query reads and only its publisher can replace.
//!
//! Readers (the engine, the warning page) hold a [`SharedBlocklist`] and take a snapshot per
//! query; a snapshot stays valid, and its file mapped, for as long as the reader holds it, even
//! across a swap. The one [`Publisher`] is made together with the handle and goes to the list
//! reloader, which alone can publish a new snapshot (routinator's `SharedHistory` has the same
//! shape: public read, private write).

use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};

use super::Blocklist;

/// A reader's handle on the live blocklist. Cloning it is cheap; every clone sees each swap.
#[derive(Clone, Debug)]
pub struct SharedBlocklist {
    live: Arc<ArcSwap<Blocklist>>,
}

/// The right to replace the live blocklist. Not `Clone`: there is one writer.
#[derive(Debug)]
pub struct Publisher {
    live: Arc<ArcSwap<Blocklist>>,
}

impl SharedBlocklist {
    /// A handle serving `initial`, and the publisher that replaces it.
    pub fn new(initial: Blocklist) -> (SharedBlocklist, Publisher) {
        let live = Arc::new(ArcSwap::from_pointee(initial));
        (SharedBlocklist { live: live.clone() }, Publisher { live })
    }

    /// A handle that serves `blocklist` for good (tests, one-off tools).
    pub fn fixed(blocklist: Blocklist) -> SharedBlocklist {
        SharedBlocklist::new(blocklist).0
    }

    /// The current snapshot, for one query: cheap, lock-free, no reference count on the common
    /// path.
    #[inline]
    pub fn load(&self) -> Guard<Arc<Blocklist>> {
        self.live.load()
    }

    /// The current snapshot, to keep beyond one query.
    pub fn snapshot(&self) -> Arc<Blocklist> {
        self.live.load_full()
    }
}

impl Publisher {
    /// Makes `blocklist` the live one. Queries in flight finish on the snapshot they loaded.
    pub fn publish(&self, blocklist: Blocklist) {
        self.live.store(Arc::new(blocklist));
    }

    /// What is being served now.
    pub fn current(&self) -> Arc<Blocklist> {
        self.live.load_full()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_see_what_the_publisher_publishes() {
        let (shared, publisher) = SharedBlocklist::new(Blocklist::empty());
        let reader = shared.clone();
        let before = reader.snapshot();
        let mut c = super::super::Compiler::new();
        let id = c
            .add_list(super::super::ListInfo {
                name: "l".into(),
                path: "l.txt".into(),
                kind: super::super::ListKind::Block,
                action: super::super::Action::Sinkhole,
                category: "fraud".into(),
                ede: 15,
                entries: 0,
                format: super::super::Format::Plain,
                match_mode: super::super::MatchMode::Subtree,
            })
            .unwrap();
        c.insert(
            id,
            "fraud.test",
            super::super::ListKind::Block,
            super::super::MatchMode::Subtree,
            super::super::Action::Sinkhole,
        )
        .unwrap();
        publisher.publish(Blocklist::from_bytes(c.to_bytes().unwrap()).unwrap());
        assert!(reader.load().lookup("www.fraud.test").is_some());
        // A snapshot taken before the swap still answers from the old list.
        assert!(before.lookup("www.fraud.test").is_none());
    }
}
