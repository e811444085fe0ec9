//! Feeds: a directory published as a signed append-only log whose entries
//! are snapshots (a UnixFS root and what changed since the previous one).
//! This crate holds the feed keys and the snapshot entry format; publishing
//! and following build on them.

pub mod keys;
pub mod snapshot;

pub use keys::{FeedId, FeedKey, KeyError};
pub use snapshot::{Snapshot, SnapshotError};
