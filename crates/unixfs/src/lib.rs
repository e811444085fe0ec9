//! IPFS-compatible UnixFS for shoal: an importer that reproduces the
//! reference importer's CIDs for the `unixfs-v0-2015` and `unixfs-v1-2025`
//! profiles (and explicit settings), and an exporter (`cat`, `ls`, `get`).

pub mod data;
pub mod diff;
pub mod dir;
pub mod export;
pub mod file;
pub mod get;
pub mod hamt;
pub mod import;
pub mod known;
pub mod materialize;
mod murmur;
pub mod options;
pub mod scan;

pub use import::{add, AddOptions, Added, Event, ImportError};
pub use known::{Indexed, Known, KnownDir, KnownFile};
pub use options::{ImportOptions, Profile, ShardEstimate};
