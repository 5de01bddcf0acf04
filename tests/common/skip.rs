//! Skipping a test that cannot run here, visibly.
//!
//! `tests/run.sh` installs everything the tests talk to and runs as root, so there a skip would
//! hide a required check: it sets `FRAUDWALL_REQUIRE_ALL=1` and a skip fails the test instead.
//! Elsewhere (a developer's `cargo test` without root, say) the skip is printed and appended to
//! `$FRAUDWALL_SKIP_LOG`, which `tests/run.sh` counts in its closing line.

use std::io::Write;

/// Records that `test` did not run and why; the caller then returns. Panics instead under
/// `FRAUDWALL_REQUIRE_ALL=1`.
pub fn skip(test: &str, reason: &str) {
    assert!(
        std::env::var("FRAUDWALL_REQUIRE_ALL").as_deref() != Ok("1"),
        "{test} cannot run here ({reason}), and FRAUDWALL_REQUIRE_ALL=1 requires it"
    );
    let line = format!("SKIP {test}: {reason}");
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("FRAUDWALL_SKIP_LOG")
        && let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}
