//! Network settings (the `[network]` table of `config.toml`).

use serde::{Deserialize, Serialize};

/// How the node takes part in the Kademlia DHT.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KadMode {
    /// Server when AutoNAT confirms we are reachable, client otherwise.
    #[default]
    Auto,
    /// Only query; never answer others' queries.
    Client,
    /// Answer queries even without confirmed reachability (LANs, tests).
    Server,
}

/// Network settings. Every field has a default; see `shoal config show`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetConfig {
    /// Addresses to listen on (TCP and QUIC); port 0 picks a free port.
    pub listen: Vec<String>,
    /// Peers to connect to at start and keep in the DHT routing table
    /// (multiaddrs ending in /p2p/PEER_ID).
    pub bootstrap: Vec<String>,
    /// Peers to stay connected to (redialed when the connection drops).
    pub static_peers: Vec<String>,
    /// Discover peers on the local network with mDNS.
    pub mdns: bool,
    /// DHT mode: "auto", "client" or "server".
    pub kad_mode: KadMode,
    /// Most established inbound connections (rust-libp2p's default is unlimited).
    pub max_inbound: u32,
    /// Most established outbound connections.
    pub max_outbound: u32,
    /// Most connections still being set up, each direction.
    pub max_pending: u32,
    /// Most established connections to one peer.
    pub max_per_peer: u32,
    /// Close a connection no protocol has used for this many seconds.
    pub idle_timeout_secs: u64,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            listen: vec![
                "/ip4/0.0.0.0/tcp/4101".into(),
                "/ip4/0.0.0.0/udp/4101/quic-v1".into(),
            ],
            bootstrap: Vec::new(),
            static_peers: Vec::new(),
            mdns: true,
            kad_mode: KadMode::Auto,
            max_inbound: 256,
            max_outbound: 128,
            max_pending: 64,
            max_per_peer: 2,
            idle_timeout_secs: 120,
        }
    }
}
