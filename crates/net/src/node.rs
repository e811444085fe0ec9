//! The swarm driver: one task owns the `Swarm`; everything else talks to it
//! through a bounded command channel and gets answers on oneshots.

use crate::behaviour::{Behaviour, BehaviourEvent};
use crate::config::NetConfig;
use crate::gossip::GossipMessage;
use futures::StreamExt;
use libp2p::core::ConnectedPoint;
use libp2p::identity::Keypair;
use libp2p::kad::{self, GetProvidersOk, QueryId, QueryResult, RecordKey};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{mdns, noise, tcp, yamux, Multiaddr, PeerId, Swarm};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Commands queued to the swarm task at most.
const COMMAND_DEPTH: usize = 256;
/// Most providers collected for one lookup.
pub const MAX_PROVIDERS: usize = 64;

/// Why the node could not start or a request failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("network setup: {0}")]
    Setup(String),
    #[error("invalid address '{0}': {1}")]
    Address(String, String),
    #[error("cannot listen on {0}: {1}")]
    Listen(String, String),
    #[error("dial failed: {0}")]
    Dial(String),
    #[error("DHT query failed: {0}")]
    Query(String),
    #[error("the network task has stopped")]
    Stopped,
}

/// A connected peer as `shoal peers` shows it.
#[derive(Clone, Debug)]
pub struct PeerInfo {
    pub peer: PeerId,
    pub addrs: Vec<(Multiaddr, bool)>,
    pub agent: Option<String>,
}

type Reply<T> = oneshot::Sender<Result<T, NetError>>;

enum Command {
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    Dial(Multiaddr, oneshot::Sender<Result<PeerId, NetError>>),
    Disconnect(PeerId, oneshot::Sender<bool>),
    Block(PeerId, Duration),
    FindPeer(PeerId, oneshot::Sender<Result<Vec<Multiaddr>, NetError>>),
    FindProviders(Vec<u8>, oneshot::Sender<Result<Vec<PeerId>, NetError>>),
    Provide(Vec<u8>, oneshot::Sender<Result<(), NetError>>),
    AddAddress(PeerId, Multiaddr),
    Subscribe(String),
    Publish(String, Vec<u8>, oneshot::Sender<Result<(), NetError>>),
}

/// A cheap, cloneable handle to the running node.
#[derive(Clone)]
pub struct NodeHandle {
    tx: mpsc::Sender<Command>,
    peer_id: PeerId,
    streams: crate::streams::Streams,
    gossip: tokio::sync::broadcast::Sender<GossipMessage>,
}

impl NodeHandle {
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Opens and accepts protocol streams (bitswap, DAG sync).
    pub fn streams(&self) -> crate::streams::Streams {
        self.streams.clone()
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, NetError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).await.map_err(|_| NetError::Stopped)?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NetError> {
        self.ask(Command::ListenAddrs).await
    }

    pub async fn peers(&self) -> Result<Vec<PeerInfo>, NetError> {
        self.ask(Command::Peers).await
    }

    /// Dials `addr` and waits until the connection is established.
    pub async fn connect(&self, addr: Multiaddr) -> Result<PeerId, NetError> {
        self.ask(|tx| Command::Dial(addr, tx)).await?
    }

    pub async fn disconnect(&self, peer: PeerId) -> Result<bool, NetError> {
        self.ask(|tx| Command::Disconnect(peer, tx)).await
    }

    /// Penalises `peer`: closes its connections and refuses any with it
    /// (either way) for `how_long`.
    pub async fn block(&self, peer: PeerId, how_long: Duration) -> Result<(), NetError> {
        self.tx
            .send(Command::Block(peer, how_long))
            .await
            .map_err(|_| NetError::Stopped)
    }

    pub async fn find_peer(&self, peer: PeerId) -> Result<Vec<Multiaddr>, NetError> {
        self.ask(|tx| Command::FindPeer(peer, tx)).await?
    }

    /// Peers that announced `key` (a multihash) in the DHT.
    pub async fn find_providers(&self, key: Vec<u8>) -> Result<Vec<PeerId>, NetError> {
        self.ask(|tx| Command::FindProviders(key, tx)).await?
    }

    /// Announces that we have `key` (a multihash) in the DHT.
    pub async fn provide(&self, key: Vec<u8>) -> Result<(), NetError> {
        self.ask(|tx| Command::Provide(key, tx)).await?
    }

    /// Joins a gossipsub topic; its messages reach `gossip_messages` receivers.
    pub async fn subscribe(&self, topic: &str) -> Result<(), NetError> {
        self.tx
            .send(Command::Subscribe(topic.to_owned()))
            .await
            .map_err(|_| NetError::Stopped)
    }

    /// Publishes `data` on a topic (fails when no peer is subscribed to it).
    pub async fn publish(&self, topic: &str, data: Vec<u8>) -> Result<(), NetError> {
        self.ask(|tx| Command::Publish(topic.to_owned(), data, tx))
            .await?
    }

    /// Every gossip message received from now on (bounded: a receiver that
    /// falls behind loses the oldest).
    pub fn gossip_messages(&self) -> tokio::sync::broadcast::Receiver<GossipMessage> {
        self.gossip.subscribe()
    }

    /// Tells the DHT and the dialer where `peer` can be reached.
    pub async fn add_address(&self, peer: PeerId, addr: Multiaddr) -> Result<(), NetError> {
        self.tx
            .send(Command::AddAddress(peer, addr))
            .await
            .map_err(|_| NetError::Stopped)
    }
}

/// Yamux as js-libp2p can talk to it: rust-yamux refuses data frames over
/// 1 MiB, and js-yamux sends frames as large as the window we grant. A
/// stream's window grows (auto-tuning) into what the 1 GiB connection
/// budget leaves beyond 256 KiB per allowed stream; with 4093 streams that
/// is 768 KiB, so no window (and no frame) can exceed 1 MiB.
fn yamux_config() -> yamux::Config {
    let mut cfg = yamux::Config::default();
    cfg.set_max_num_streams(4093);
    cfg
}

/// Builds the swarm, starts listening and dialing, and spawns its task.
pub async fn start(
    key: Keypair,
    cfg: NetConfig,
) -> Result<(NodeHandle, tokio::task::JoinHandle<()>), NetError> {
    let setup = |e: &dyn std::fmt::Display| NetError::Setup(e.to_string());
    let (stream_behaviour, streams) = crate::streams::Behaviour::new();
    let tcp_cfg = tcp::Config::default().nodelay(true);
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(tcp_cfg, noise::Config::new, yamux_config)
        .map_err(|e| setup(&e))?
        .with_quic()
        .with_dns()
        .map_err(|e| setup(&e))?
        .with_relay_client(noise::Config::new, yamux_config)
        .map_err(|e| setup(&e))?
        .with_behaviour(|key, relay| {
            Behaviour::new(key, relay, &cfg, stream_behaviour)
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
        })
        .map_err(|e| setup(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(cfg.idle_timeout_secs)))
        .build();
    for addr in &cfg.listen {
        let ma: Multiaddr = addr
            .parse()
            .map_err(|e: libp2p::multiaddr::Error| NetError::Address(addr.clone(), e.to_string()))?;
        swarm
            .listen_on(ma)
            .map_err(|e| NetError::Listen(addr.clone(), e.to_string()))?;
    }
    let peer_id = *swarm.local_peer_id();
    let (tx, rx) = mpsc::channel(COMMAND_DEPTH);
    let (gossip, _) = tokio::sync::broadcast::channel(crate::gossip::SUBSCRIBER_DEPTH);
    let mut driver = Driver::new(swarm, &cfg, gossip.clone())?;
    driver.wait_for_listeners(cfg.listen.len()).await;
    let task = tokio::spawn(driver.run(rx));
    Ok((
        NodeHandle {
            tx,
            peer_id,
            streams,
            gossip,
        },
        task,
    ))
}

#[derive(Default)]
struct PeerState {
    conns: HashMap<ConnectionId, (Multiaddr, bool)>,
    agent: Option<String>,
}

struct Driver {
    swarm: Swarm<Behaviour>,
    peers: HashMap<PeerId, PeerState>,
    dials: HashMap<ConnectionId, oneshot::Sender<Result<PeerId, NetError>>>,
    find_peer: HashMap<QueryId, (PeerId, Reply<Vec<Multiaddr>>)>,
    providers: HashMap<QueryId, (HashSet<PeerId>, Reply<Vec<PeerId>>)>,
    provides: HashMap<QueryId, oneshot::Sender<Result<(), NetError>>>,
    static_peers: Vec<(PeerId, Multiaddr)>,
    blocked_until: HashMap<PeerId, Instant>,
    gossip: tokio::sync::broadcast::Sender<GossipMessage>,
}

fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        Protocol::P2p(id) => Some(id),
        _ => None,
    })
}

impl Driver {
    fn new(
        mut swarm: Swarm<Behaviour>,
        cfg: &NetConfig,
        gossip: tokio::sync::broadcast::Sender<GossipMessage>,
    ) -> Result<Driver, NetError> {
        let parse = |s: &String| -> Result<(PeerId, Multiaddr), NetError> {
            let ma: Multiaddr = s
                .parse()
                .map_err(|e: libp2p::multiaddr::Error| NetError::Address(s.clone(), e.to_string()))?;
            let peer = peer_of(&ma)
                .ok_or_else(|| NetError::Address(s.clone(), "needs a /p2p/PEER_ID suffix".into()))?;
            Ok((peer, ma))
        };
        for s in &cfg.bootstrap {
            let (peer, ma) = parse(s)?;
            swarm.behaviour_mut().kad.add_address(&peer, ma.clone());
            let _ = swarm.dial(ma);
        }
        let static_peers = cfg
            .static_peers
            .iter()
            .map(parse)
            .collect::<Result<Vec<_>, _>>()?;
        for (_, ma) in &static_peers {
            let _ = swarm.dial(ma.clone());
        }
        Ok(Driver {
            swarm,
            peers: HashMap::new(),
            dials: HashMap::new(),
            find_peer: HashMap::new(),
            providers: HashMap::new(),
            provides: HashMap::new(),
            static_peers,
            blocked_until: HashMap::new(),
            gossip,
        })
    }

    /// Waits (briefly) until every listen address is bound, so callers see
    /// real ports at once.
    async fn wait_for_listeners(&mut self, want: usize) {
        let deadline = tokio::time::sleep(Duration::from_secs(2));
        tokio::pin!(deadline);
        let mut bound = 0;
        while bound < want {
            tokio::select! {
                ev = self.swarm.select_next_some() => {
                    if matches!(ev, SwarmEvent::NewListenAddr { .. }) { bound += 1; }
                    self.on_event(ev);
                }
                _ = &mut deadline => break,
            }
        }
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut maintenance = tokio::time::interval(Duration::from_secs(30));
        loop {
            tokio::select! {
                ev = self.swarm.select_next_some() => self.on_event(ev),
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.on_command(cmd),
                    None => break,
                },
                _ = maintenance.tick() => self.maintain(),
            }
        }
    }

    /// Redials static peers that dropped; refreshes the routing table.
    fn maintain(&mut self) {
        let now = Instant::now();
        let expired: Vec<PeerId> = self
            .blocked_until
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(p, _)| *p)
            .collect();
        for p in expired {
            self.blocked_until.remove(&p);
            self.swarm.behaviour_mut().blocked.unblock_peer(p);
        }
        for (peer, addr) in &self.static_peers {
            if !self.swarm.is_connected(peer) {
                let _ = self.swarm.dial(addr.clone());
            }
        }
        if self.swarm.connected_peers().next().is_some() {
            let _ = self.swarm.behaviour_mut().kad.bootstrap();
        }
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::ListenAddrs(tx) => {
                let _ = tx.send(self.swarm.listeners().cloned().collect());
            }
            Command::Peers(tx) => {
                let list = self
                    .peers
                    .iter()
                    .map(|(p, s)| PeerInfo {
                        peer: *p,
                        addrs: s.conns.values().cloned().collect(),
                        agent: s.agent.clone(),
                    })
                    .collect();
                let _ = tx.send(list);
            }
            Command::Dial(addr, tx) => {
                let opts = match peer_of(&addr) {
                    Some(peer) => DialOpts::peer_id(peer).addresses(vec![addr]).build(),
                    None => DialOpts::unknown_peer_id().address(addr).build(),
                };
                let id = opts.connection_id();
                match self.swarm.dial(opts) {
                    Ok(()) => {
                        self.dials.insert(id, tx);
                    }
                    Err(e) => {
                        let _ = tx.send(Err(NetError::Dial(e.to_string())));
                    }
                }
            }
            Command::Disconnect(peer, tx) => {
                let _ = tx.send(self.swarm.disconnect_peer_id(peer).is_ok());
            }
            Command::Block(peer, how_long) => {
                tracing::info!(%peer, ?how_long, "blocking a misbehaving peer");
                let b = self.swarm.behaviour_mut();
                b.blocked.block_peer(peer);
                b.kad.remove_peer(&peer);
                self.blocked_until.insert(peer, Instant::now() + how_long);
            }
            Command::FindPeer(peer, tx) => {
                let id = self.swarm.behaviour_mut().kad.get_closest_peers(peer);
                self.find_peer.insert(id, (peer, tx));
            }
            Command::FindProviders(key, tx) => {
                let id = self.swarm.behaviour_mut().kad.get_providers(RecordKey::new(&key));
                self.providers.insert(id, (HashSet::new(), tx));
            }
            Command::Provide(key, tx) => match self
                .swarm
                .behaviour_mut()
                .kad
                .start_providing(RecordKey::new(&key))
            {
                Ok(id) => {
                    self.provides.insert(id, tx);
                }
                Err(e) => {
                    let _ = tx.send(Err(NetError::Query(e.to_string())));
                }
            },
            Command::Subscribe(topic) => {
                let t = libp2p::gossipsub::IdentTopic::new(topic);
                if let Err(e) = self.swarm.behaviour_mut().gossip.subscribe(&t) {
                    tracing::warn!(%e, "gossipsub subscribe");
                }
            }
            Command::Publish(topic, data, tx) => {
                let t = libp2p::gossipsub::IdentTopic::new(topic);
                let r = self.swarm.behaviour_mut().gossip.publish(t, data);
                let _ = tx.send(
                    r.map(drop)
                        .map_err(|e| NetError::Query(format!("gossipsub: {e}"))),
                );
            }
            Command::AddAddress(peer, addr) => {
                self.swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
                self.swarm.add_peer_address(peer, addr);
            }
        }
    }

    fn on_event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::NewListenAddr { address, .. } => tracing::info!(%address, "listening"),
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => {
                let (addr, outbound) = match &endpoint {
                    ConnectedPoint::Dialer { address, .. } => (address.clone(), true),
                    ConnectedPoint::Listener { send_back_addr, .. } => (send_back_addr.clone(), false),
                };
                self.peers
                    .entry(peer_id)
                    .or_default()
                    .conns
                    .insert(connection_id, (addr, outbound));
                if let Some(tx) = self.dials.remove(&connection_id) {
                    let _ = tx.send(Ok(peer_id));
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                ..
            } => {
                if let Some(state) = self.peers.get_mut(&peer_id) {
                    state.conns.remove(&connection_id);
                    if state.conns.is_empty() {
                        self.peers.remove(&peer_id);
                    }
                }
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id, error, ..
            } => {
                if let Some(tx) = self.dials.remove(&connection_id) {
                    let _ = tx.send(Err(NetError::Dial(error.to_string())));
                }
            }
            SwarmEvent::Behaviour(ev) => self.on_behaviour(ev),
            _ => {}
        }
    }

    fn on_behaviour(&mut self, ev: BehaviourEvent) {
        match ev {
            BehaviourEvent::Identify(crate::id::Event::Received { peer_id, info }) => {
                let speaks_kad = info.protocols.contains(&crate::behaviour::KAD_PROTOCOL);
                if speaks_kad {
                    for addr in &info.listen_addrs {
                        self.swarm.behaviour_mut().kad.add_address(&peer_id, addr.clone());
                    }
                }
                if let Some(state) = self.peers.get_mut(&peer_id) {
                    state.agent = Some(info.agent_version);
                }
            }
            BehaviourEvent::Mdns(mdns::Event::Discovered(found)) => {
                for (peer, addr) in found {
                    self.swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
                    if !self.swarm.is_connected(&peer) {
                        let _ = self
                            .swarm
                            .dial(DialOpts::peer_id(peer).addresses(vec![addr]).build());
                    }
                }
            }
            BehaviourEvent::Gossip(libp2p::gossipsub::Event::Message {
                propagation_source,
                message,
                ..
            }) => {
                // no receiver is fine: nobody listens yet
                let _ = self.gossip.send(GossipMessage {
                    topic: message.topic.into_string(),
                    from: propagation_source,
                    data: message.data,
                });
            }
            BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed { id, result, step, .. }) => {
                self.on_query(id, result, step.last)
            }
            _ => {}
        }
    }

    fn on_query(&mut self, id: QueryId, result: QueryResult, last: bool) {
        match result {
            QueryResult::GetClosestPeers(res) => {
                let Some((peer, tx)) = self.find_peer.remove(&id) else {
                    return;
                };
                let found = match res {
                    Ok(ok) => ok.peers.into_iter().find(|p| p.peer_id == peer).map(|p| p.addrs),
                    Err(kad::GetClosestPeersError::Timeout { peers, .. }) => {
                        peers.into_iter().find(|p| p.peer_id == peer).map(|p| p.addrs)
                    }
                };
                let connected = self
                    .peers
                    .get(&peer)
                    .map(|s| s.conns.values().map(|(a, _)| a.clone()).collect());
                let _ = tx.send(
                    found
                        .or(connected)
                        .ok_or_else(|| NetError::Query(format!("peer {peer} not found"))),
                );
            }
            QueryResult::GetProviders(res) => {
                let Some((mut found, tx)) = self.providers.remove(&id) else {
                    return;
                };
                if let Ok(GetProvidersOk::FoundProviders { providers, .. }) = res {
                    found.extend(providers);
                }
                if last || found.len() >= MAX_PROVIDERS {
                    if let Some(mut q) = self.swarm.behaviour_mut().kad.query_mut(&id) {
                        q.finish();
                    }
                    let _ = tx.send(Ok(found.into_iter().take(MAX_PROVIDERS).collect()));
                } else {
                    self.providers.insert(id, (found, tx));
                }
            }
            QueryResult::StartProviding(res) => {
                if let Some(tx) = self.provides.remove(&id) {
                    let _ = tx.send(res.map(drop).map_err(|e| NetError::Query(e.to_string())));
                }
            }
            _ => {}
        }
    }
}
