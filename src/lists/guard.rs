//! The two checks that stand between a file on disk and the live blocklist: has the file
//! settled (no copy still writing it), and does the new version keep enough of the old one.

use std::time::{Duration, SystemTime};

/// What a `stat` says about a file, enough to tell that it changed (size, mtime, ctime, inode).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Stamp {
    /// Size in bytes.
    pub len: u64,
    /// Modification time.
    pub mtime: SystemTime,
    /// Status-change time (chmod, chown, rename) as seconds and nanoseconds.
    pub ctime: (i64, i64),
    /// Inode number (a rename-replace or a symlink swap changes it).
    pub ino: u64,
}

impl Stamp {
    /// The stamp of `meta` (of the file a symlink points to, when `meta` came from `metadata`).
    pub fn of(meta: &std::fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        Stamp {
            len: meta.len(),
            mtime: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            ctime: (meta.ctime(), meta.ctime_nsec()),
            ino: meta.ino(),
        }
    }
}

/// Whether a file with stamp `now_seen` may be read: it has not been modified for `quiet`, or it
/// looks the same as at the previous look (`before`), a debounce window ago. The second rule
/// lets files with mtimes in the future (clock skew, `rsync -t`) through on the next look.
pub fn settled(now_seen: Stamp, before: Option<Stamp>, now: SystemTime, quiet: Duration) -> bool {
    if before == Some(now_seen) {
        return true;
    }
    now.duration_since(now_seen.mtime)
        .is_ok_and(|age| age >= quiet)
}

/// The shrink guard: `Some(lost fraction)` when going from `previous` to `next` entries would
/// lose more than `max_shrink` of the list, the typical sign of a truncated download or a
/// half-copied file. A list that had no entries cannot shrink; `max_shrink >= 1` disables it.
pub fn refuses(previous: u64, next: u64, max_shrink: f64) -> Option<f64> {
    if previous == 0 || next >= previous || max_shrink >= 1.0 {
        return None;
    }
    let lost = (previous - next) as f64 / previous as f64;
    (lost > max_shrink).then_some(lost)
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! shrink {
        ($($name:ident: $prev:expr, $next:expr, $max:expr => $refused:expr;)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(refuses($prev, $next, $max).is_some(), $refused);
            }
        )*};
    }

    shrink! {
        cut_to_ten_percent_is_refused: 1000, 100, 0.5 => true;
        half_is_allowed: 1000, 500, 0.5 => false;
        just_over_half_lost_is_refused: 1000, 499, 0.5 => true;
        growth_is_allowed: 10, 1000, 0.5 => false;
        empty_before_is_allowed: 0, 0, 0.5 => false;
        emptied_is_refused: 1000, 0, 0.5 => true;
        guard_off: 1000, 0, 1.0 => false;
        strict_guard: 100, 99, 0.0 => true;
    }

    fn stamp(len: u64, mtime: SystemTime) -> Stamp {
        Stamp {
            len,
            mtime,
            ctime: (0, 0),
            ino: 1,
        }
    }

    #[test]
    fn settling() {
        let now = SystemTime::now();
        let quiet = Duration::from_millis(300);
        let fresh = stamp(10, now - Duration::from_millis(50));
        assert!(!settled(fresh, None, now, quiet), "still being written");
        assert!(
            settled(fresh, Some(fresh), now, quiet),
            "unchanged since last look"
        );
        let grown = stamp(20, now - Duration::from_millis(10));
        assert!(
            !settled(grown, Some(fresh), now, quiet),
            "grew since last look"
        );
        let old = stamp(10, now - Duration::from_secs(5));
        assert!(settled(old, None, now, quiet));
        let future = stamp(10, now + Duration::from_secs(3600));
        assert!(!settled(future, None, now, quiet));
        assert!(settled(future, Some(future), now, quiet));
    }
}
