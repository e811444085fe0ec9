//! The shoal-to-shoal streaming DAG sync, `/shoal/sync/1.0.0`.
//!
//! One stream per request. The requester sends a [`Request`](wire::Request)
//! (root, optional path and byte range, its frontier of missing subtrees,
//! DAGs it already holds, and an initial credit window); the responder
//! answers with the blocks in depth-first order, each with its CID, then an
//! `End` frame. It never sends more block bytes than the requester granted:
//! the requester sends `Credit` frames as it consumes. So a whole DAG costs
//! one round trip, and a slow requester slows the responder instead of
//! piling up buffers.
//!
//! The requester trusts nothing: a block is accepted only if it was asked
//! for or is linked from an accepted block, and only if its bytes hash to
//! its CID ([`requester::Violation`] otherwise).

pub mod requester;
pub mod responder;
pub mod wire;

pub use requester::{Event, Requester, Violation};
pub use responder::{Dag, Responder};
pub use wire::{ByteRange, EndStatus, Frame, Request, WireError};

/// The protocol name.
pub const PROTOCOL: &str = "/shoal/sync/1.0.0";

#[cfg(test)]
mod tests;
