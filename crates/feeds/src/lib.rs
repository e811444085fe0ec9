//! Feeds: a directory published as a signed append-only log whose entries
//! are snapshots (a UnixFS root and what changed since the previous one).
//! This crate holds the feed keys, the snapshot entry format, the feed
//! state on disk, and publishing.

pub mod apply;
pub mod keys;
pub mod publish;
pub mod snapshot;
pub mod state;

pub use keys::{FeedId, FeedKey, KeyError};
pub use publish::{publish, PublishOptions, Published};
pub use snapshot::{Snapshot, SnapshotError};

use shoal_log::store::{LogStore, LogStoreError};
use shoal_log::{SignedHead, Tree};
use state::{FeedState, StateError};
use std::path::{Path, PathBuf};

/// Why a feed operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Log(#[from] LogStoreError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Store(#[from] shoal_store::StoreError),
    #[error(transparent)]
    Import(#[from] shoal_unixfs::ImportError),
    #[error(transparent)]
    Export(#[from] shoal_unixfs::export::ExportError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} kept changing while it was read ({1} attempts); publish again once it is stable")]
    Unstable(PathBuf, usize),
    #[error("feed {feed}: entry {index} is not a valid snapshot: {reason}")]
    BadEntry {
        feed: FeedId,
        index: u64,
        reason: String,
    },
    #[error("the snapshot's tree is unusable: {0}")]
    BadTree(String),
    #[error("feed {0} has no snapshot {1}")]
    NoSnapshot(FeedId, u64),
    #[error("feed {0} is not known here (not published or followed by this node)")]
    Unknown(FeedId),
}

/// The feed logs and state of one node (files beside its block store).
pub struct Feeds {
    pub logs: LogStore,
    pub state: FeedState,
}

impl Feeds {
    pub fn open(store_dir: &Path) -> Result<Feeds, FeedError> {
        Ok(Feeds {
            logs: LogStore::open(store_dir.join("logs.redb"))?,
            state: FeedState::open(store_dir.join("feeds.redb"))?,
        })
    }

    /// Every snapshot of the feed this node holds, in log order.
    pub fn snapshots(&self, feed: &FeedId) -> Result<Vec<Snapshot>, FeedError> {
        let Some(stored) = self.logs.load(&feed.0)? else {
            return Ok(Vec::new());
        };
        stored
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                Snapshot::decode(e).map_err(|err| FeedError::BadEntry {
                    feed: *feed,
                    index: i as u64,
                    reason: err.to_string(),
                })
            })
            .collect()
    }

    /// One snapshot (`seq`), or the latest.
    pub fn snapshot(&self, feed: &FeedId, seq: Option<u64>) -> Result<(u64, Snapshot), FeedError> {
        let all = self.snapshots(feed)?;
        if all.is_empty() {
            return Err(FeedError::Unknown(*feed));
        }
        let seq = seq.unwrap_or(all.len() as u64 - 1);
        let snap = all.get(seq as usize).ok_or(FeedError::NoSnapshot(*feed, seq))?;
        Ok((seq, snap.clone()))
    }

    /// Appends an entry to a feed we write; returns its index and the new head.
    pub fn append(&self, key: &FeedKey, entry: &[u8]) -> Result<(u64, SignedHead), FeedError> {
        let id = key.id();
        let mut tree = match self.logs.load(&id.0)? {
            Some(s) => s.tree,
            None => Tree::default(),
        };
        let seq = tree.length();
        let nodes = tree.append(entry);
        let head = tree.sign(key.signer());
        self.logs.append(&id.0, &[(seq, entry)], &nodes, &head)?;
        Ok((seq, head))
    }
}
