//! Counters of work the query path does, for the tests that check how often it does it (one
//! parse, one blocklist lookup, one cache lookup per miss). Compiled into test builds only:
//! per thread, so that tests running in parallel do not see each other's work.

use std::cell::Cell;

thread_local! {
    static PARSES: Cell<u32> = const { Cell::new(0) };
    static LOOKUPS: Cell<u32> = const { Cell::new(0) };
    static CACHE_GETS: Cell<u32> = const { Cell::new(0) };
}

/// A query packet was parsed.
pub fn parsed() {
    PARSES.with(|c| c.set(c.get() + 1));
}

/// The blocklist was asked about a name.
pub fn looked_up() {
    LOOKUPS.with(|c| c.set(c.get() + 1));
}

/// The answer cache was asked for an entry.
pub fn cache_get() {
    CACHE_GETS.with(|c| c.set(c.get() + 1));
}

/// (parses, blocklist lookups, cache lookups) on this thread since the last call; resets them.
pub fn take() -> (u32, u32, u32) {
    (
        PARSES.with(|c| c.replace(0)),
        LOOKUPS.with(|c| c.replace(0)),
        CACHE_GETS.with(|c| c.replace(0)),
    )
}
