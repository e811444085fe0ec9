//! Gossipsub as shoal uses it: signed messages, strict validation, small
//! messages (feed heads), and every message delivered to the node's
//! subscribers through a bounded broadcast (a slow subscriber loses the
//! oldest messages, never blocks the swarm).

use libp2p::gossipsub::{self, MessageAuthenticity, ValidationMode};
use libp2p::identity::Keypair;
use libp2p::PeerId;
use std::time::Duration;

/// Largest gossip message sent or accepted.
pub const MAX_MESSAGE: usize = 16 << 10;
/// Messages buffered per subscriber.
pub const SUBSCRIBER_DEPTH: usize = 256;

/// A message received on a topic this node subscribed to.
#[derive(Clone, Debug)]
pub struct GossipMessage {
    pub topic: String,
    /// The peer that forwarded it to us.
    pub from: PeerId,
    pub data: Vec<u8>,
}

pub fn behaviour(key: &Keypair) -> std::io::Result<gossipsub::Behaviour> {
    let cfg = gossipsub::ConfigBuilder::default()
        .heartbeat_interval(Duration::from_secs(1))
        .validation_mode(ValidationMode::Strict)
        .max_transmit_size(MAX_MESSAGE)
        .build()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), cfg).map_err(std::io::Error::other)
}
