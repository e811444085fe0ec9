//! The composed libp2p behaviour: every protocol the host speaks.

use crate::config::{KadMode, NetConfig};
use libp2p::identity::Keypair;
use libp2p::kad::store::MemoryStore;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    allow_block_list, autonat, connection_limits, dcutr, kad, mdns, ping, relay, PeerId, StreamProtocol,
};
use std::time::Duration;

/// The IPFS DHT protocol (kubo, Helia and js-libp2p speak it).
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/ipfs/kad/1.0.0");
/// The identify protocol version string.
pub const ID_PROTOCOL_VERSION: &str = "ipfs/0.1.0";

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub limits: connection_limits::Behaviour,
    /// Peers penalised for misbehaving: no connections either way.
    pub blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    pub identify: crate::id::Behaviour,
    pub ping: ping::Behaviour,
    pub kad: kad::Behaviour<MemoryStore>,
    pub gossip: libp2p::gossipsub::Behaviour,
    pub autonat: autonat::Behaviour,
    pub relay: relay::client::Behaviour,
    pub dcutr: dcutr::Behaviour,
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    pub streams: crate::streams::Behaviour,
}

impl Behaviour {
    pub fn new(
        key: &Keypair,
        relay: relay::client::Behaviour,
        cfg: &NetConfig,
        streams: crate::streams::Behaviour,
    ) -> std::io::Result<Behaviour> {
        let peer_id = key.public().to_peer_id();
        let limits = connection_limits::ConnectionLimits::default()
            .with_max_established_incoming(Some(cfg.max_inbound))
            .with_max_established_outgoing(Some(cfg.max_outbound))
            .with_max_pending_incoming(Some(cfg.max_pending))
            .with_max_pending_outgoing(Some(cfg.max_pending))
            .with_max_established_per_peer(Some(cfg.max_per_peer));
        let identify = crate::id::Behaviour::new(
            key,
            ID_PROTOCOL_VERSION,
            &format!("shoal/{}", env!("CARGO_PKG_VERSION")),
        );
        let mut kad_cfg = kad::Config::new(KAD_PROTOCOL);
        kad_cfg.set_query_timeout(Duration::from_secs(30));
        kad_cfg.set_provider_publication_interval(Some(Duration::from_secs(12 * 3600)));
        // the driver bootstraps once it has peers; kad's own timer only warns without them
        kad_cfg.set_periodic_bootstrap_interval(None);
        let mut kad = kad::Behaviour::with_config(peer_id, MemoryStore::new(peer_id), kad_cfg);
        kad.set_mode(match cfg.kad_mode {
            KadMode::Auto => None,
            KadMode::Client => Some(kad::Mode::Client),
            KadMode::Server => Some(kad::Mode::Server),
        });
        let mdns = if cfg.mdns {
            Some(mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id)?)
        } else {
            None
        };
        Ok(Behaviour {
            limits: connection_limits::Behaviour::new(limits),
            blocked: allow_block_list::Behaviour::default(),
            identify,
            ping: ping::Behaviour::new(ping::Config::new()),
            kad,
            gossip: crate::gossip::behaviour(key)?,
            autonat: autonat::Behaviour::new(peer_id, autonat::Config::default()),
            relay,
            dcutr: dcutr::Behaviour::new(peer_id),
            mdns: mdns.into(),
            streams,
        })
    }
}

/// The local peer id for a key (handy for callers without libp2p imports).
pub fn peer_id(key: &Keypair) -> PeerId {
    key.public().to_peer_id()
}
