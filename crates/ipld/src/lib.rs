//! IPLD building blocks shared by every shoal layer: CIDs and their hashing,
//! the dag-pb codec, and CAR v1 streams.
//!
//! Everything here parses peer- or file-controlled bytes, so every decoder is
//! bounded and returns a typed error instead of panicking.

pub mod block;
pub mod car;
pub mod dagpb;
pub mod path;
pub mod pb;
pub mod varint;

pub use block::{Block, BlockError, Codec};
pub use cid;
pub use cid::Cid;
