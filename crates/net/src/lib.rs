//! shoal's libp2p host: TCP and QUIC with Noise and Yamux, identify with
//! standard signed peer records (our own: see `id`), ping, Kademlia, gossipsub, AutoNAT, relay client with DCUtR, mDNS,
//! explicit connection limits, and raw protocol streams for the exchange.
//!
//! One task owns the swarm ([`node::start`]); callers use a [`NodeHandle`].

pub mod behaviour;
pub mod config;
pub mod gossip;
pub mod id;
pub mod identity;
pub mod node;
pub mod streams;

pub use config::{KadMode, NetConfig};
pub use gossip::GossipMessage;
pub use libp2p::{multiaddr, Multiaddr, PeerId, Stream, StreamProtocol};
pub use node::{start, NetError, NodeHandle, PeerInfo};
pub use streams::{Incoming, OpenStreamError, Streams};
