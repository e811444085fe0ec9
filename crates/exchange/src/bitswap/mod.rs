//! Bitswap 1.2.0: the wire message, the serving ledger and the fetching
//! session, all sans-IO.

pub mod ledger;
pub mod message;
pub mod session;

/// The protocols we speak, newest first.
pub const PROTOCOLS: [&str; 3] = ["/ipfs/bitswap/1.2.0", "/ipfs/bitswap/1.1.0", "/ipfs/bitswap"];
