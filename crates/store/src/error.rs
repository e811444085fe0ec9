//! Errors of the block store.

use shoal_ipld::{BlockError, Cid};
use std::path::PathBuf;

/// What went wrong in the block store. Messages name the CID or path and
/// the cause.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store at {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("store at {0} is in use by another shoal process (is a daemon running?)")]
    Locked(PathBuf),
    #[error(
        "store format version {found} is newer than this shoal understands ({supported}); upgrade shoal"
    )]
    NewerFormat { found: u64, supported: u64 },
    #[error("store index: {0}")]
    Index(#[from] redb::Error),
    #[error("block {0} is not in the store")]
    NotFound(Cid),
    #[error("block {cid} is corrupt: {reason}; run `shoal verify`")]
    Corrupt { cid: Cid, reason: String },
    #[error("block {cid} is stale: {path} {reason}; re-add the file to index it again")]
    Stale { cid: Cid, path: PathBuf, reason: String },
    #[error(transparent)]
    Block(#[from] BlockError),
    #[error("cannot pin {root}: {missing} block(s) of its DAG are missing, e.g. {example}")]
    Incomplete { root: Cid, missing: usize, example: Cid },
    #[error("block {0} is not valid dag-pb: {1}")]
    BadNode(Cid, String),
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { path, source }
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Index(redb::Error::from(e))
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
