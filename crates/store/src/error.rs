//! Errors of the store. Every variant says what the caller should do with it.

use std::path::PathBuf;

/// An error from the store.
///
/// Handling: `Open`, `Engine` and `Io` are infrastructure failures (disk, permissions, a second process
/// holding the lock): stop, do not acknowledge anything upstream, let the supervisor restart.
/// `Corrupt` means bytes read from disk do not decode: run `verify_chain` and restore from a
/// backup or the feeders' replay. `InvalidInput` is a caller bug (the domain crate let through a
/// key the store cannot index): nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled refused to open the directory (file corruption, permissions, or another process
    /// holds its lock: sled is a single-process database).
    #[error("cannot open the store at {}: {source}", dir.display())]
    Open {
        /// The directory given to `Store::open`.
        dir: PathBuf,
        /// sled's own error.
        source: sled::Error,
    },
    /// sled failed while reading, writing or flushing.
    #[error("storage engine error: {0}")]
    Engine(#[from] sled::Error),
    /// A segment file could not be created, read, written or synced.
    #[error("cannot {what} ({}): {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the store was doing, e.g. `sync a segment file`.
        what: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A stored value does not decode. `what` names the record (`log seq 17`, `rejection 4`, …).
    #[error("corrupt {what}: {detail}")]
    Corrupt {
        /// Which record, e.g. `log record seq 17`.
        what: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The caller passed something the store cannot store; nothing was written.
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

impl StoreError {
    pub(crate) fn corrupt(what: impl Into<String>, detail: impl Into<String>) -> Self {
        StoreError::Corrupt {
            what: what.into(),
            detail: detail.into(),
        }
    }
}

/// What `verify_chain` found wrong. `Broken` always names the first bad sequence number.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The store could not be read at all (sled error while iterating).
    #[error("cannot read the store: {0}")]
    Store(#[from] StoreError),
    /// The log or an index disagrees with the hash chain; `seq` is the first bad record.
    #[error("hash chain broken at seq {seq}: {problem}")]
    Broken {
        /// The first bad sequence number.
        seq: u64,
        /// What is wrong there.
        problem: ChainProblem,
    },
    /// An index entry that cannot be tied to any record (unreadable, or pointing past the log).
    #[error("index entry not tied to any record: {problem}")]
    BadIndexEntry {
        /// What is wrong with it.
        problem: ChainProblem,
    },
}

impl ChainError {
    /// The first bad sequence number, when the failure is about a record rather than IO.
    pub fn first_bad_seq(&self) -> Option<u64> {
        match self {
            ChainError::Store(_) | ChainError::BadIndexEntry { .. } => None,
            ChainError::Broken { seq, .. } => Some(*seq),
        }
    }
}

/// One kind of inconsistency found by `verify_chain`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainProblem {
    /// A sequence number is absent from the log (deleted record, or a truncated tail).
    #[error("record is missing ({context})")]
    Missing {
        /// Where the gap was seen, e.g. "the log jumps from seq 4 to seq 6".
        context: String,
    },
    /// The stored value is too short to hold the 72-byte record header.
    #[error("record header is corrupt: {len} bytes stored, at least 72 expected")]
    CorruptHeader {
        /// Length of the stored value.
        len: usize,
    },
    /// A segment that cannot be walked (a frame's lengths run past its end) or whose key does
    /// not name its first record.
    #[error("segment: {detail}")]
    Segment {
        /// What is wrong.
        detail: String,
    },
    /// A log key that is not `S` + 8-byte big-endian seq.
    #[error("unreadable log key {key_hex}")]
    BadKey {
        /// The key, hex-encoded.
        key_hex: String,
    },
    /// The record's `prev` hash is not the hash of the record before it.
    #[error("prev-hash link broken: the record says the previous hash is {found}, but the previous record hashes to {expected}")]
    PrevLinkBroken {
        /// Hex hash of the previous record.
        expected: String,
        /// Hex `prev` stored in this record.
        found: String,
    },
    /// Recomputing the hash over the stored bytes does not give the stored hash: the event bytes,
    /// its received_at or its stored hash were altered.
    #[error("stored hash {stored} does not match the recomputed hash {computed}: the record or its hash was altered")]
    HashMismatch {
        /// Hex hash stored in the record.
        stored: String,
        /// Hex hash recomputed from the record.
        computed: String,
    },
    /// The head record (`H`) disagrees with the log.
    #[error("head record disagrees with the log: {detail}")]
    Head {
        /// What disagrees.
        detail: String,
    },
    /// The event-id index disagrees with the log (an id stored twice).
    #[error("event-id index: {detail}")]
    EventIdIndex {
        /// What disagrees.
        detail: String,
    },
    /// The patient index disagrees with the log.
    #[error("patient index: {detail}")]
    PatientIndex {
        /// What disagrees.
        detail: String,
    },
    /// An outbox entry (`O`) is unreadable or points past the end of the log.
    #[error("outbox: {detail}")]
    Outbox {
        /// What disagrees.
        detail: String,
    },
}
