//! What a block leaves behind: one event per blocked query for the early-warning log, and the
//! Prometheus counters.

use std::{
    sync::{Arc, Mutex},
    time::SystemTime,
};

use arc_swap::ArcSwap;
use hickory_proto::rr::RecordType;

use super::engine::{BlockHit, BlockObserver};
use crate::{
    blocklist::{Blocklist, matcher::ip_entry},
    dns::wire,
    events::{BlockEvent, EventSink},
    metrics::BlockedCounters,
};

/// Records every block as an event and in the metrics. Never blocks the query.
pub struct BlockReporter {
    events: EventSink,
    /// Counters for the list table they were built for (names and categories, in list-id
    /// order): rebuilt after a swap that changes the table, on the first block that sees it.
    counters: ArcSwap<(Vec<(String, String)>, BlockedCounters)>,
    rebuild: Mutex<()>,
}

impl BlockReporter {
    /// A reporter writing to `events`.
    pub fn new(events: EventSink) -> BlockReporter {
        BlockReporter {
            events,
            counters: ArcSwap::from_pointee((Vec::new(), BlockedCounters::default())),
            rebuild: Mutex::new(()),
        }
    }

    fn counters(&self, bl: &Blocklist) -> Arc<(Vec<(String, String)>, BlockedCounters)> {
        let cur = self.counters.load_full();
        let same = cur.0.len() == bl.lists().len()
            && cur
                .0
                .iter()
                .zip(bl.lists())
                .all(|((n, c), l)| *n == l.name && *c == l.category);
        if same {
            return cur;
        }
        let _guard = self.rebuild.lock().unwrap_or_else(|e| e.into_inner());
        let table: Vec<(String, String)> = bl
            .lists()
            .iter()
            .map(|l| (l.name.clone(), l.category.clone()))
            .collect();
        let counters = BlockedCounters::new(table.iter().map(|(n, c)| (n.as_str(), c.as_str())));
        let fresh = Arc::new((table, counters));
        self.counters.store(fresh.clone());
        fresh
    }
}

impl BlockObserver for BlockReporter {
    fn on_block(&self, bl: &Blocklist, hit: &BlockHit<'_>) {
        let v = &hit.verdict;
        self.counters(bl).1.record(v.list as usize, v.action);
        let Some(list) = bl.lists().get(v.list as usize) else {
            return;
        };
        self.events.record(BlockEvent {
            time: SystemTime::now(),
            client: hit.client.ip(),
            qname: wire::name_to_string(hit.qname).to_ascii_lowercase(),
            qtype: RecordType::from(hit.qtype).to_string(),
            action: v.action.as_str(),
            list: Arc::from(list.name.as_str()),
            entry: match hit.ip {
                Some(addr) => ip_entry(addr, v.matched_labels).to_string(),
                None => v.entry_name_wire(hit.matched_name).unwrap_or_default(),
            },
            ip: hit.ip,
            category: Arc::from(list.category.as_str()),
            protocol: hit.transport.as_str(),
            group: Arc::from(hit.group),
        });
    }
}
