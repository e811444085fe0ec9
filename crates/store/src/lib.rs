//! shoal's block store.
//!
//! Blocks are addressed by CID. The index is a redb database; blocks of up
//! to 2 KiB live in it, larger ones in append-only pack files, and "no-copy"
//! blocks point into user files and are verified on every read. Pins keep
//! DAGs alive through `gc`; `verify` re-hashes everything. All I/O goes
//! through the [`Storage`] seam. The layout is documented in FORMAT.md.

mod batch;
mod error;
mod gc;
mod layout;
mod pack;
mod pins;
mod refs;
mod storage;
mod store;
mod verify;

pub use batch::Batch;
pub use error::StoreError;
pub use gc::GcReport;
pub use layout::{FileIdentity, FORMAT_VERSION, INLINE_MAX};
pub use pins::{PinKind, Walk};
pub use storage::{OsStorage, Storage, StorageFile};
pub use store::BlockStore;
pub use verify::VerifyReport;
