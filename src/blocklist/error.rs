//! The error type of the blocklist engine.
//!
//! Per-line problems are not errors: they are [`Diagnostic`](super::Diagnostic)s and the rest of
//! the file still loads. An [`Error`] means a whole file (a source list or the compiled output)
//! could not be used; each message says what to do next.

use std::io;
use std::path::PathBuf;

/// Errors that make a whole file unusable.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A source list could not be read at all.
    #[error("{}: cannot read list: {source}; check the path and its permissions", path.display())]
    ReadList {
        /// The list file.
        path: PathBuf,
        /// The underlying I/O error.
        source: io::Error,
    },

    /// A list directory could not be listed.
    #[error("{}: cannot read list directory: {source}; check the path and its permissions", path.display())]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// The underlying I/O error.
        source: io::Error,
    },

    /// A source list looks like a binary file (NUL byte), e.g. a compressed download.
    #[error(
        "{}: byte {offset}: binary data (NUL byte), not a text list; decompress it or remove it from the list directory",
        path.display()
    )]
    BinaryList {
        /// The list file.
        path: PathBuf,
        /// Offset of the first NUL byte.
        offset: u64,
    },

    /// A source list with lines but no usable entry (every entry rejected, skipped or refused):
    /// a list in the wrong format, an error page saved as a list, a feed gone wrong. An empty
    /// file, or one of comments only, is a valid empty list instead.
    #[error("{}: no usable entry: {reason}", path.display())]
    NoEntries {
        /// The list file.
        path: PathBuf,
        /// What the lines gave, with the first problems.
        reason: String,
        /// The line counts.
        stats: super::ParseStats,
    },

    /// More lists than the 16-bit list id can address.
    #[error("too many lists ({count}); at most {max} lists fit in one compiled file")]
    TooManyLists {
        /// Number of lists given.
        count: usize,
        /// The limit.
        max: usize,
    },

    /// The compiled output could not be written.
    #[error("{}: cannot write compiled blocklist: {source}; check free space and directory permissions", path.display())]
    Write {
        /// The output (or temporary) file.
        path: PathBuf,
        /// The underlying I/O error.
        source: io::Error,
    },

    /// Building the FST failed (keys out of order: a bug in the compiler).
    #[error("building the FST failed: {source} (this is a bug; please report it)")]
    Build {
        /// The fst error.
        source: fst::Error,
    },

    /// A compiled file could not be opened or mapped.
    #[error("{}: cannot open compiled blocklist: {source}; run `fraudwall compile` to create it", path.display())]
    Open {
        /// The compiled file.
        path: PathBuf,
        /// The underlying I/O error.
        source: io::Error,
    },

    /// The file is not a compiled fraudwall blocklist.
    #[error("{}: not a fraudwall blocklist (bad magic {found:02x?}, expected \"FWBL\"); recompile the lists with `fraudwall compile`", path.display())]
    BadMagic {
        /// The compiled file.
        path: PathBuf,
        /// The first bytes found.
        found: Vec<u8>,
    },

    /// The file was written by an incompatible version.
    #[error("{}: blocklist format version {found}, this build reads versions 1 to {expected}; recompile the lists with this build", path.display())]
    Version {
        /// The compiled file.
        path: PathBuf,
        /// Version in the file.
        found: u32,
        /// Version this build reads.
        expected: u32,
    },

    /// A version 2 file split into shards: its names were assigned to shards by a hash this
    /// build no longer uses, so a query could look in the wrong one.
    #[error("{}: blocklist format version 2 with {shards} shards, assigned by an older hash; recompile the lists with this build", path.display())]
    OldShards {
        /// The compiled file.
        path: PathBuf,
        /// Shards in the file.
        shards: usize,
    },

    /// The body does not match its checksum (truncated or damaged file).
    #[error("{}: checksum mismatch (stored {expected:08x}, computed {found:08x}); the file is damaged, recompile it", path.display())]
    Checksum {
        /// The compiled file.
        path: PathBuf,
        /// CRC32 stored in the header.
        expected: u32,
        /// CRC32 computed over the body.
        found: u32,
    },

    /// The structure of the file is inconsistent (lengths, list table, FST).
    #[error("{}: corrupt blocklist: {reason}; recompile it", path.display())]
    Corrupt {
        /// The compiled file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// Writing command output failed.
    #[error("cannot write output: {0}")]
    Output(#[from] io::Error),
}

impl From<crate::atomic_file::Error> for Error {
    fn from(e: crate::atomic_file::Error) -> Error {
        Error::Write {
            path: e.path,
            source: e.source,
        }
    }
}
