//! The storage crate's error type.

use std::io;
use std::path::PathBuf;

/// Storage errors. Messages are lower-case, name the operation and the bad value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A regex in a matcher does not compile.
    #[error("invalid regex {regex:?}: {reason}")]
    BadRegex {
        /// The regex as written.
        regex: String,
        /// The compiler's complaint.
        reason: String,
    },
    /// A file operation failed.
    #[error("{op} {path:?}: {source}")]
    Io {
        /// What was being done (`write WAL segment`, `open block`…).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// On-disk data failed a check.
    #[error("corrupt {path:?} at offset {offset}: {reason}")]
    Corruption {
        /// The file.
        path: PathBuf,
        /// Byte offset of the bad data.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// Encoded chunk bytes could not be decoded.
    #[error("decode chunk: {0}")]
    ChunkDecode(&'static str),
    /// The database is shutting down or read-only after a fatal error.
    #[error("storage closed: {0}")]
    Closed(&'static str),

    /// Another process (or another `Db` in this one) has the data directory open.
    #[error(
        "data directory {dir:?} is in use by another eddy process (lock file {lock:?} is held)"
    )]
    DirInUse {
        /// The data directory.
        dir: std::path::PathBuf,
        /// Its lock file.
        lock: std::path::PathBuf,
    },
}

/// Result with the storage [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the operation and path.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
