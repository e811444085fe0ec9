//! Feed operations as JSON requests and replies, run directly on an open
//! store by the CLI or by the daemon for RPC requests: publish, the
//! snapshot log, and the paths that changed between two snapshots.

use crate::ops::OpError;
use serde::{Deserialize, Serialize};
use shoal_feeds::{FeedError, FeedId, FeedKey, Feeds, PublishOptions, Snapshot};
use shoal_ipld::Cid;
use shoal_store::BlockStore;
use shoal_unixfs::diff::diff as tree_diff;
use shoal_unixfs::Event;
use std::path::{Path, PathBuf};
use std::time::Instant;

impl From<FeedError> for OpError {
    fn from(e: FeedError) -> Self {
        match e {
            FeedError::Io { path, source } => OpError::Io { path, source },
            e => OpError::Invalid(e.to_string()),
        }
    }
}

/// The directory feed keys live in.
pub fn keys_dir(home: &Path) -> PathBuf {
    home.join("feeds")
}

/// A feed named by its key (64 hex digits) or by the local name of a feed
/// this node writes, optionally `@SEQ` for one snapshot.
pub fn parse_feed(home: &Path, s: &str) -> Result<(FeedId, Option<u64>), OpError> {
    let (name, seq) = match s.rsplit_once('@') {
        Some((n, q)) => {
            let seq = q
                .parse()
                .map_err(|_| OpError::Invalid(format!("'{s}': the snapshot after @ must be a number")))?;
            (n, Some(seq))
        }
        None => (s, None),
    };
    if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
        let id = name
            .parse()
            .map_err(|e: shoal_feeds::KeyError| OpError::Invalid(e.to_string()))?;
        return Ok((id, seq));
    }
    let key = FeedKey::load(&keys_dir(home), name).map_err(|e| OpError::Invalid(e.to_string()))?;
    Ok((key.id(), seq))
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PublishRequest {
    pub dir: PathBuf,
    /// The local name of the feed (its key is in SHOAL_HOME/feeds).
    pub feed: String,
    #[serde(default)]
    pub checksum: bool,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Counts {
    pub added: u64,
    pub changed: u64,
    pub removed: u64,
}

impl From<shoal_feeds::snapshot::Changes> for Counts {
    fn from(c: shoal_feeds::snapshot::Changes) -> Self {
        Counts {
            added: c.added,
            changed: c.changed,
            removed: c.removed,
        }
    }
}

/// A snapshot as the CLI shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SnapshotInfo {
    pub seq: u64,
    pub root: String,
    pub parent: Option<u64>,
    pub time: u64,
    pub files: Counts,
    pub bytes: Counts,
    pub total_files: u64,
    pub total_bytes: u64,
}

impl SnapshotInfo {
    pub fn new(seq: u64, s: &Snapshot) -> SnapshotInfo {
        SnapshotInfo {
            seq,
            root: s.root.to_string(),
            parent: s.parent,
            time: s.time,
            files: s.files.into(),
            bytes: s.bytes.into(),
            total_files: s.total_files,
            total_bytes: s.total_bytes,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PublishReply {
    pub feed: String,
    #[serde(flatten)]
    pub snapshot: SnapshotInfo,
    /// Nothing changed: no snapshot was appended.
    pub unchanged: bool,
    pub reimported_files: usize,
    pub reimported_bytes: u64,
    pub attempts: usize,
    pub elapsed_ms: u64,
}

pub fn publish(
    store: &BlockStore,
    feeds: &Feeds,
    home: &Path,
    req: &PublishRequest,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<PublishReply, OpError> {
    let start = Instant::now();
    let key = FeedKey::load(&keys_dir(home), &req.feed).map_err(|e| OpError::Invalid(e.to_string()))?;
    let opts = PublishOptions {
        checksum: req.checksum,
        ..PublishOptions::default()
    };
    let p = shoal_feeds::publish(store, feeds, &key, &req.dir, &opts, on_event)?;
    Ok(PublishReply {
        feed: key.id().to_string(),
        snapshot: SnapshotInfo::new(p.seq, &p.snapshot),
        unchanged: p.unchanged,
        reimported_files: p.read_files,
        reimported_bytes: p.read_bytes,
        attempts: p.attempts,
        elapsed_ms: start.elapsed().as_millis() as u64,
    })
}

/// Every snapshot of a feed, oldest first.
pub fn log(feeds: &Feeds, home: &Path, feed: &str) -> Result<Vec<SnapshotInfo>, OpError> {
    let (id, _) = parse_feed(home, feed)?;
    let snaps = feeds.snapshots(&id)?;
    if snaps.is_empty() {
        return Err(FeedError::Unknown(id).into());
    }
    Ok(snaps
        .iter()
        .enumerate()
        .map(|(i, s)| SnapshotInfo::new(i as u64, s))
        .collect())
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DiffEntry {
    /// A (added), M (modified) or D (removed).
    pub change: String,
    pub path: String,
    pub dir: bool,
    pub cid: String,
}

/// A tree named by a CID, or by `FEED@SEQ` (`FEED` alone: its latest snapshot).
fn tree_root(feeds: &Feeds, home: &Path, s: &str) -> Result<Cid, OpError> {
    if let Ok(cid) = s.trim_start_matches("/ipfs/").parse::<Cid>() {
        return Ok(cid);
    }
    let (id, seq) = parse_feed(home, s)?;
    Ok(feeds.snapshot(&id, seq)?.1.root)
}

/// The paths that changed from tree `a` to tree `b`.
pub fn diff(
    store: &BlockStore,
    feeds: &Feeds,
    home: &Path,
    a: &str,
    b: &str,
) -> Result<Vec<DiffEntry>, OpError> {
    let (ra, rb) = (tree_root(feeds, home, a)?, tree_root(feeds, home, b)?);
    Ok(tree_diff(store, &ra, &rb)?
        .into_iter()
        .map(|c| DiffEntry {
            change: c.kind.letter().to_string(),
            path: c.path,
            dir: c.is_dir,
            cid: c.cid.to_string(),
        })
        .collect())
}
