//! Following a feed: learn its newest head from the peers that have it
//! (gossip, connected peers, the DHT, configured and remembered peers),
//! verify the log, fetch only the blocks of the new snapshot this node
//! lacks, materialize it atomically, and keep serving it.

use crate::exchange::{Exchange, Mode, Progress};
use crate::feed_net::FeedNet;
use serde::{Deserialize, Serialize};
use shoal_exchange::sync::wire::MAX_WANT;
use shoal_feeds::state::Follow;
use shoal_feeds::FeedId;
use shoal_ipld::dagpb::PbNode;
use shoal_ipld::path::IpfsPath;
use shoal_ipld::{Cid, Codec};
use shoal_log::mux::discovery_key;
use shoal_net::{Multiaddr, PeerId};
use shoal_store::PinKind;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a follow waits for peers to answer after asking them, once it
/// has a complete log.
const SETTLE: Duration = Duration::from_millis(1500);
/// Directory levels walked at most.
const MAX_LEVELS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error("no peer answered for feed {0} (an unknown feed key, or nobody serving it is reachable)")]
    NoPeers(FeedId),
    #[error("feed {0}: the log is incomplete (have {1} of {2} entries) and no peer sent the rest")]
    Incomplete(FeedId, u64, u64),
    #[error("feed {feed}: snapshot {seq}: {reason}")]
    Fetch { feed: FeedId, seq: u64, reason: String },
    #[error(transparent)]
    Feed(#[from] shoal_feeds::FeedError),
    #[error("{0}")]
    Invalid(String),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FollowReply {
    pub feed: String,
    pub seq: u64,
    pub root: String,
    /// The directory already held this snapshot.
    pub unchanged: bool,
    /// Blocks and bytes received from peers.
    pub blocks: u64,
    pub bytes: u64,
    pub files_written: u64,
    pub bytes_written: u64,
    pub files_removed: u64,
    pub elapsed_ms: u64,
}

/// How often a watched feed asks its peers for news when gossip is silent.
pub const POLL: Duration = Duration::from_secs(30);

/// Everything a follow uses.
pub struct Follower {
    pub fnet: Arc<FeedNet>,
    pub exchange: Arc<Exchange>,
    watching: std::sync::Mutex<HashSet<FeedId>>,
}

impl Follower {
    pub fn new(fnet: Arc<FeedNet>, exchange: Arc<Exchange>) -> Arc<Follower> {
        Arc::new(Follower {
            fnet,
            exchange,
            watching: Default::default(),
        })
    }

    /// Keeps the feed's directory current while the daemon runs: updates on
    /// every longer head (gossip or replication), and asks connected peers
    /// and the DHT every `POLL` in case gossip is silent.
    pub fn watch(self: &Arc<Self>, id: FeedId) {
        if !self.watching.lock().unwrap_or_else(|p| p.into_inner()).insert(id) {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            let mut changes = me.fnet.changes();
            let mut tick = tokio::time::interval(POLL);
            loop {
                let materialized = me
                    .fnet
                    .feeds
                    .state
                    .follow(&id.0)
                    .ok()
                    .flatten()
                    .and_then(|f| f.materialized);
                let behind = match (me.fnet.head(&id), materialized) {
                    (Some(h), Some(m)) => h.length > m + 1,
                    (Some(h), None) => h.length > 0,
                    (None, _) => false,
                };
                if behind {
                    match me.follow_once(id, None, &[], Duration::from_secs(600)).await {
                        Ok(r) => {
                            tracing::info!(feed = %id, seq = r.seq, bytes = r.bytes, "followed a new snapshot")
                        }
                        Err(e) => tracing::warn!(feed = %id, "follow: {e}"),
                    }
                }
                tokio::select! {
                    r = changes.changed() => if r.is_err() { return },
                    _ = tick.tick() => me.poll_peers(id).await,
                }
            }
        });
    }

    /// Asks connected peers and the DHT's providers about the feed.
    async fn poll_peers(&self, id: FeedId) {
        let net = &self.fnet.net;
        let mut peers: Vec<PeerId> = net
            .peers()
            .await
            .map(|v| v.iter().map(|p| p.peer).collect())
            .unwrap_or_default();
        if let Ok(found) = net.find_providers(discovery_key(&id.0).to_vec()).await {
            peers.extend(found.into_iter().filter(|p| *p != net.peer_id()));
        }
        peers.sort();
        peers.dedup();
        for p in peers {
            self.fnet.ask(p, &id).await;
        }
    }

    /// Brings the feed (and `into`, if given) up to its newest snapshot.
    pub async fn follow_once(
        &self,
        id: FeedId,
        into: Option<PathBuf>,
        peers: &[Multiaddr],
        timeout: Duration,
    ) -> Result<FollowReply, FollowError> {
        let start = Instant::now();
        let deadline = start + timeout;
        let feeds = self.fnet.feeds.clone();
        let mut record = feeds.state.follow(&id.0).map_err(shoal_feeds::FeedError::from)?;
        let into = into.or_else(|| record.as_ref().and_then(|r| r.into.clone()));
        self.fnet.track(id).await?;
        // peers that served this feed before are one more way to find it
        let mut peers = peers.to_vec();
        for p in feeds.state.peers(&id.0).unwrap_or_default() {
            if let Ok(a) = p.parse::<Multiaddr>() {
                if !peers.contains(&a) {
                    peers.push(a);
                }
            }
        }
        self.learn_head(id, &peers, deadline).await?;
        let (seq, snap) = feeds.snapshot(&id, None)?;
        let previous = match record.as_ref().and_then(|r| r.materialized) {
            Some(m) => Some(feeds.snapshot(&id, Some(m))?.1.root),
            None => None,
        };
        let progress = Arc::new(Progress::default());
        let fetch_err = |reason: String| FollowError::Fetch {
            feed: id,
            seq,
            reason,
        };
        self.skeleton(snap.root, deadline, &progress).await;
        let left = deadline.saturating_duration_since(Instant::now());
        self.exchange
            .fetch(
                &IpfsPath {
                    root: snap.root,
                    segments: vec![],
                },
                Mode::Auto,
                left,
                &progress,
            )
            .await
            .map_err(|e| fetch_err(e.to_string()))?;
        let unchanged = previous == Some(snap.root) && into.is_some();
        let mut applied = shoal_feeds::apply::Applied::default();
        if let (Some(dir), false) = (&into, unchanged) {
            let (store, dir, root) = (self.exchange.store.clone(), dir.clone(), snap.root);
            applied = tokio::task::spawn_blocking(move || {
                shoal_feeds::apply::apply(&store, previous.as_ref(), &root, &dir)
            })
            .await
            .map_err(|e| fetch_err(e.to_string()))??;
        }
        let store = &self.exchange.store;
        store
            .pin_add_complete(&snap.root, PinKind::Recursive)
            .map_err(|e| fetch_err(e.to_string()))?;
        if let Some(old) = previous.filter(|p| *p != snap.root) {
            let _ = store.pin_rm(&old);
        }
        let mut r = record.take().unwrap_or(Follow {
            into: None,
            materialized: None,
            watch: false,
        });
        r.into = into;
        r.materialized = Some(seq);
        feeds
            .state
            .set_follow(&id.0, &r)
            .map_err(shoal_feeds::FeedError::from)?;
        self.remember_peers(id).await;
        let net = self.fnet.net.clone();
        let root = snap.root;
        tokio::spawn(async move { net.provide(root.hash().to_bytes()).await });
        Ok(FollowReply {
            feed: id.to_string(),
            seq,
            root: snap.root.to_string(),
            unchanged,
            blocks: progress.blocks.load(Ordering::Relaxed),
            bytes: progress.bytes.load(Ordering::Relaxed),
            files_written: applied.files_written,
            bytes_written: applied.bytes_written,
            files_removed: applied.removed,
            elapsed_ms: start.elapsed().as_millis() as u64,
        })
    }

    /// Stores where the peers that told us the feed's head can be dialed
    /// (addresses we dialed them on), for the next follow or restart.
    async fn remember_peers(&self, id: FeedId) {
        let heard = self.fnet.heard_from(&id);
        let Ok(connected) = self.fnet.net.peers().await else {
            return;
        };
        let addrs: Vec<String> = connected
            .iter()
            .filter(|p| heard.contains(&p.peer))
            .flat_map(|p| {
                p.addrs
                    .iter()
                    .filter(|(_, outbound)| *outbound)
                    .map(move |(a, _)| match a.iter().last() {
                        Some(shoal_net::multiaddr::Protocol::P2p(_)) => a.to_string(),
                        _ => format!("{a}/p2p/{}", p.peer),
                    })
            })
            .collect();
        if !addrs.is_empty() {
            let _ = self.fnet.feeds.state.remember_peers(&id.0, &addrs);
        }
    }

    /// Asks every peer we can find about the feed and waits until the log
    /// is complete up to the best head anyone reported.
    async fn learn_head(
        &self,
        id: FeedId,
        peers: &[Multiaddr],
        deadline: Instant,
    ) -> Result<(), FollowError> {
        let mut changes = self.fnet.changes();
        let net = &self.fnet.net;
        for a in peers {
            if let Err(e) = net.connect(a.clone()).await {
                tracing::info!(addr = %a, "follow: could not reach a configured peer: {e}");
            }
        }
        let mut asked: HashSet<PeerId> = HashSet::new();
        let connected: Vec<PeerId> = net
            .peers()
            .await
            .map(|v| v.iter().map(|p| p.peer).collect())
            .unwrap_or_default();
        for p in connected {
            if asked.insert(p) {
                self.fnet.ask(p, &id).await;
            }
        }
        // the DHT in the background: providers found later are asked too
        let (ptx, mut prx) = tokio::sync::mpsc::channel::<Vec<PeerId>>(1);
        let dht = net.clone();
        tokio::spawn(async move {
            if let Ok(found) = dht.find_providers(discovery_key(&id.0).to_vec()).await {
                let _ = ptx.send(found).await;
            }
        });
        let asked_at = Instant::now();
        let mut answers = 0u64;
        loop {
            let length = self.fnet.length(&id);
            let head = self.fnet.head(&id);
            if let Some(h) = head {
                // a peer that told us its head keeps us current on its own
                let settled = answers > 0 || self.fnet.heard(&id) > 0 || asked_at.elapsed() >= SETTLE;
                if length >= h.length && settled {
                    return Ok(());
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return match head {
                    Some(h) if length >= h.length => Ok(()),
                    Some(h) => Err(FollowError::Incomplete(id, length, h.length)),
                    None => Err(FollowError::NoPeers(id)),
                };
            }
            let tick = (deadline - now).min(Duration::from_millis(100));
            tokio::select! {
                r = changes.changed() => if r.is_ok() { answers += 1 },
                found = prx.recv() => for p in found.unwrap_or_default() {
                    if p != net.peer_id() && asked.insert(p) {
                        self.fnet.ask(p, &id).await;
                    }
                },
                _ = tokio::time::sleep(tick) => {}
            }
        }
    }

    /// Fetches the dag-pb nodes of the new tree that are not stored, one
    /// level at a time (the wanted blocks only), so that unchanged subtrees
    /// are recognised by their CIDs and never asked for; the file content
    /// under the changed paths is fetched afterwards.
    async fn skeleton(&self, root: Cid, deadline: Instant, progress: &Arc<Progress>) {
        let store = self.exchange.store.clone();
        let mut level = vec![root];
        for _ in 0..MAX_LEVELS {
            level.retain(|c| !store.has(c).unwrap_or(false));
            if level.is_empty() || Instant::now() >= deadline {
                return;
            }
            let peers: Vec<PeerId> = match self.fnet.net.peers().await {
                Ok(v) => v.iter().map(|p| p.peer).collect(),
                Err(_) => return,
            };
            for chunk in level.chunks(MAX_WANT) {
                self.exchange
                    .fetch_nodes(root, chunk, &peers, deadline, progress)
                    .await;
            }
            let mut next = Vec::new();
            let mut seen = HashSet::new();
            for c in &level {
                let Ok(Some(bytes)) = store.try_get(c) else {
                    continue;
                };
                let Ok(node) = PbNode::decode(&bytes) else {
                    continue;
                };
                for l in node.links {
                    let pb = Codec::of(&l.hash).ok() == Some(Codec::DagPb);
                    if pb && seen.insert(l.hash) && !store.has(&l.hash).unwrap_or(true) {
                        next.push(l.hash);
                    }
                }
            }
            level = next;
        }
    }
}

/// A one-shot follow without a daemon: starts this node's network for the
/// duration of the follow (on the store the CLI opened), then stops it.
pub async fn standalone(
    home: &std::path::Path,
    store: shoal_store::BlockStore,
    id: FeedId,
    into: Option<PathBuf>,
    peers: &[Multiaddr],
    timeout: Duration,
) -> Result<FollowReply, FollowError> {
    let bad = |e: &dyn std::fmt::Display| FollowError::Invalid(e.to_string());
    let cfg =
        crate::daemon::effective_config(home, &crate::daemon::Overrides::default()).map_err(|e| bad(&e))?;
    let key = shoal_net::identity::load_or_create(&home.join("identity.key")).map_err(|e| bad(&e))?;
    let mut net_cfg = cfg.network;
    // an ephemeral port: nothing else should expect us there
    net_cfg.listen = vec!["/ip4/0.0.0.0/tcp/0".into()];
    let (net, task) = shoal_net::start(key, net_cfg).await.map_err(|e| bad(&e))?;
    let feeds = Arc::new(shoal_feeds::Feeds::open(store.dir())?);
    let store = Arc::new(store);
    let exchange = Arc::new(Exchange::start(store, net.clone()));
    let follower = Follower::new(FeedNet::start(feeds, net), exchange);
    let result = follower.follow_once(id, into, peers, timeout).await;
    task.abort();
    result
}
