//! The one way fraudwall writes a file that someone may be reading: into a hidden temporary
//! file beside it, then renamed over it. Readers, and memory mappings of the old file, only
//! ever see a complete old or a complete new file; a file that a running server has mapped is
//! never modified in place (a mapped blocklist changing under a query would be undefined
//! behaviour, not just a wrong answer).

use std::{
    fs::File,
    io::{self, BufWriter, Write},
    path::{Path, PathBuf},
};

/// How much a written file must survive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// The file and the rename reach the disk before `replace` returns: for files that are the
    /// only copy of something (a compiled list an analyst asked for, a download, the state that
    /// says what is being served).
    Sync,
    /// No fsync: for files that can be rebuilt from their sources. After a crash a torn one
    /// fails its checksum and is rebuilt.
    Rebuildable,
}

/// A file could not be written or renamed into place.
#[derive(Debug, thiserror::Error)]
#[error("{}: cannot write: {source}", path.display())]
pub struct Error {
    /// The file being written (or its temporary file).
    pub path: PathBuf,
    /// The underlying I/O error.
    #[source]
    pub source: io::Error,
}

/// Replaces `path` with what `write` writes. On any error the temporary file is removed and
/// `path` is left as it was.
pub fn replace<T, E: From<Error>>(
    path: &Path,
    durability: Durability,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<T, E>,
) -> Result<T, E> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    // Hidden and ending in a temp suffix: the list watcher ignores it.
    let tmp = dir.join(format!(".{name}.tmp-{}-{nanos}", std::process::id()));
    let at = |p: &Path| {
        let p = p.to_path_buf();
        move |source| Error { path: p, source }
    };
    let result = (|| {
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(at(&tmp))?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        let out = write(&mut w)?;
        w.flush().map_err(at(&tmp))?;
        let file = w.into_inner().map_err(|e| at(&tmp)(e.into_error()))?;
        if durability == Durability::Sync {
            file.sync_all().map_err(at(&tmp))?;
        }
        drop(file);
        std::fs::rename(&tmp, path).map_err(at(path))?;
        if durability == Durability::Sync {
            // Make the rename itself durable; not every platform can fsync a directory.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(out)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Replaces `path` with `data`.
pub fn write(path: &Path, data: &[u8], durability: Durability) -> Result<(), Error> {
    replace(path, durability, |w| {
        w.write_all(data).map_err(|source| Error {
            path: path.to_path_buf(),
            source,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.fst");
        std::fs::write(&p, "old").unwrap();
        write(&p, b"new", Durability::Sync).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.fst");
        std::fs::write(&p, "old").unwrap();
        let r: Result<(), Error> = replace(&p, Durability::Rebuildable, |w| {
            w.write_all(b"half").unwrap();
            Err(Error {
                path: p.clone(),
                source: io::Error::other("disk full"),
            })
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn the_old_mapping_keeps_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.fst");
        std::fs::write(&p, "old!").unwrap();
        let f = File::open(&p).unwrap();
        // SAFETY: the file is only ever replaced by rename in this test.
        let map = unsafe { memmap2::Mmap::map(&f) }.unwrap();
        write(&p, b"new!", Durability::Rebuildable).unwrap();
        assert_eq!(&map[..], b"old!");
    }
}
