//! Failure injection, for the tests of fraudwall's own recovery (a reload pass that panics, a
//! UDP worker that panics). Debug builds only: `FRAUDWALL_FAILPOINTS=name[:count],…` in the
//! environment arms them (no count: every time). In release builds every check is `false` and
//! compiles away.

/// Whether the failpoint `name` fires now (and counts it down).
#[cfg(debug_assertions)]
pub fn fire(name: &str) -> bool {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    /// Each armed failpoint and how many more times it fires (`None`: always).
    type Armed = Mutex<HashMap<String, Option<u32>>>;
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    let armed = ARMED.get_or_init(|| {
        let spec = std::env::var("FRAUDWALL_FAILPOINTS").ok()?;
        let points = spec
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| match s.split_once(':') {
                Some((n, c)) => (n.to_string(), c.parse().ok()),
                None => (s.to_string(), None),
            })
            .collect();
        Some(Mutex::new(points))
    });
    let Some(points) = armed else {
        return false;
    };
    let mut points = points.lock().unwrap_or_else(|e| e.into_inner());
    match points.get_mut(name) {
        None => false,
        Some(None) => true,
        Some(Some(0)) => false,
        Some(Some(n)) => {
            *n -= 1;
            true
        }
    }
}

/// Whether the failpoint `name` fires now: never, in a release build.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn fire(_name: &str) -> bool {
    false
}
