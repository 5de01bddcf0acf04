//! The list directory as one pass sees it: read once, then used for everything the pass decides
//! (which sources there are, in merge order; whether each changed; what the poll compares).
//!
//! A source is a list named in the config, or any list file in `blocklists.dir` (see
//! [`is_list_file`]): text lists by name, then compiled `.fst` files by name. Files in the state
//! directory are never sources.

use std::{
    io,
    path::{Path, PathBuf},
};

use super::{BlocklistsConfig, guard::Stamp};
use crate::blocklist::ListSpec;

/// One source of entries: a text list or a compiled `.fst`.
#[derive(Clone, Debug)]
pub enum Source {
    /// A text list, parsed by format.
    Text(ListSpec),
    /// A compiled blocklist dropped into the directory.
    Fst(PathBuf),
}

impl Source {
    /// The file.
    pub fn path(&self) -> &Path {
        match self {
            Source::Text(s) => &s.path,
            Source::Fst(p) => p,
        }
    }
}

/// A source and its file's stamp at the time of the scan (symlinks followed).
#[derive(Debug)]
pub struct Scanned {
    pub source: Source,
    pub stamp: io::Result<Stamp>,
}

/// The directory as seen by one scan.
#[derive(Debug)]
pub struct Scan {
    /// Every source, in merge order: config lists, text files by name, `.fst` files by name.
    pub sources: Vec<Scanned>,
    /// Set when `blocklists.dir` could not be listed (missing, unreadable): then nothing may be
    /// taken as removed, since the directory may be mid-swap or on a file system that hiccuped.
    pub dir_error: Option<io::Error>,
    /// Device and inode of the directory (after following symlinks).
    dir_identity: Option<(u64, u64)>,
}

/// What the stat poll compares between two looks: the directory's identity and every source's
/// stamp.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fingerprint {
    dir: Option<(u64, u64)>,
    files: Vec<(PathBuf, Option<Stamp>)>,
}

/// Whether a file name in the list directory is a list: not hidden (`.foo`, `.foo.swp`, `.#foo`,
/// rsync's `.foo.XXXXXX`), not an editor backup (`foo~`) and not a partial download or temp
/// file (`*.tmp`, `*.part`, `*.partial`, `*.crdownload`, `*.swp`).
pub fn is_list_file(name: &str) -> bool {
    const TEMP: [&str; 6] = [".tmp", ".part", ".partial", ".crdownload", ".swp", ".swx"];
    !(name.is_empty()
        || name.starts_with('.')
        || name.ends_with('~')
        || TEMP.iter().any(|t| name.to_ascii_lowercase().ends_with(t)))
}

fn is_fst(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("fst"))
}

/// Device and inode of `dir` (after following symlinks), if it is a directory.
pub fn dir_identity(dir: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir)
        .ok()
        .filter(|m| m.is_dir())
        .map(|m| (m.dev(), m.ino()))
}

impl Scan {
    /// Reads the directory once and stats every source once.
    pub fn read(cfg: &BlocklistsConfig) -> Scan {
        let (found, dir_error) = match list_dir(cfg) {
            Ok(found) => (found, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let stat = |p: &Path| std::fs::metadata(p).map(|m| Stamp::of(&m));
        let mut text = Vec::new();
        let mut fst = Vec::new();
        for spec in &cfg.lists {
            let stamp = stat(&spec.path);
            if is_fst(&spec.path) {
                fst.push(Scanned {
                    source: Source::Fst(spec.path.clone()),
                    stamp,
                });
            } else {
                text.push(Scanned {
                    source: Source::Text(spec.clone()),
                    stamp,
                });
            }
        }
        for (path, stamp) in found {
            let named = |s: &Scanned| s.source.path() == path;
            if text.iter().any(named) || fst.iter().any(named) {
                continue;
            }
            if is_fst(&path) {
                fst.push(Scanned {
                    source: Source::Fst(path),
                    stamp: Ok(stamp),
                });
            } else {
                let mut spec = ListSpec::from_path(&path);
                spec.action = cfg.default_action;
                spec.ede = cfg.default_ede;
                spec.guard = cfg.guard.clone();
                text.push(Scanned {
                    source: Source::Text(spec),
                    stamp: Ok(stamp),
                });
            }
        }
        text.extend(fst);
        Scan {
            sources: text,
            dir_error,
            dir_identity: dir_identity(&cfg.dir),
        }
    }

    /// The text lists, for the commands that compile them (`compile --config`, `check`).
    pub fn specs(&self) -> Vec<ListSpec> {
        self.sources
            .iter()
            .filter_map(|s| match &s.source {
                Source::Text(spec) => Some(spec.clone()),
                Source::Fst(_) => None,
            })
            .collect()
    }

    /// What the poll compares.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint {
            dir: self.dir_identity,
            files: self
                .sources
                .iter()
                .map(|s| {
                    (
                        s.source.path().to_path_buf(),
                        s.stamp.as_ref().ok().copied(),
                    )
                })
                .collect(),
        }
    }
}

/// Regular files (after following symlinks) in `blocklists.dir` that are lists, sorted by
/// name, outside the state directory, with their stamps. A missing directory is an error here:
/// the caller decides what it means.
fn list_dir(cfg: &BlocklistsConfig) -> io::Result<Vec<(PathBuf, Stamp)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&cfg.dir)? {
        let entry = entry?;
        let path = entry.path();
        if !is_list_file(&entry.file_name().to_string_lossy()) || path.starts_with(&cfg.state_dir) {
            continue;
        }
        if let Ok(m) = std::fs::metadata(&path)
            && m.is_file()
        {
            found.push((path, Stamp::of(&m)));
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_file_names() {
        for ok in ["fraud.txt", "allowlist.txt", "x.fst", "hosts", "a.b.rpz"] {
            assert!(is_list_file(ok), "{ok}");
        }
        for no in [
            ".fraud.txt.swp",
            ".#fraud.txt",
            "fraud.txt~",
            "fraud.txt.tmp",
            "fraud.TMP",
            "big.part",
            ".fraud.txt.XyZ123",
            ".fraudwall",
            "",
        ] {
            assert!(!is_list_file(no), "{no}");
        }
    }

    #[test]
    fn sources_in_merge_order() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for f in ["b.txt", "a.fst", "a.txt", ".hidden", "z.txt"] {
            std::fs::write(d.join(f), "x.test\n").unwrap();
        }
        std::fs::create_dir(d.join("sub")).unwrap();
        let text = format!(
            "blocklists:\n  dir: {}\n  lists:\n    - file: z.txt\n",
            d.display()
        );
        let scan = Scan::read(&BlocklistsConfig::from_yaml(&text, d));
        let names: Vec<String> = scan
            .sources
            .iter()
            .map(|s| {
                s.source
                    .path()
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into()
            })
            .collect();
        assert_eq!(names, ["z.txt", "a.txt", "b.txt", "a.fst"]);
        assert!(scan.dir_error.is_none());
        assert!(scan.sources.iter().all(|s| s.stamp.is_ok()));
    }

    #[test]
    fn a_missing_directory_is_reported_not_empty() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "blocklists:\n  dir: {}\n",
            dir.path().join("gone").display()
        );
        let scan = Scan::read(&BlocklistsConfig::from_yaml(&text, dir.path()));
        assert!(scan.dir_error.is_some());
        assert!(scan.sources.is_empty());
    }
}
