//! The shoal node: configuration, the daemon's lifecycle and its RPC API,
//! and the operations both the daemon and the offline CLI run.

pub mod bitswap;
pub mod config;
pub mod daemon;
pub mod exchange;
pub mod feed_net;
pub mod feed_ops;
mod feed_resolver;
pub mod follow;
pub mod framing;
pub mod gateway;
pub mod multi;
pub mod ops;
pub mod rpc;
mod rpc_feeds;
mod stats;
pub mod sync;
