//! Fetching a DAG from the network: the streaming sync first (one request
//! per peer brings a whole subtree), bitswap for what is left or for peers
//! that only speak bitswap (kubo, Helia).
//!
//! Each round asks one peer for the requester's current frontier (the
//! missing subtrees found by walking what is already stored), so a fetch
//! that loses its peer resumes elsewhere without fetching anything twice.
//! A peer that breaks the protocol (a corrupt or unrequested block) is
//! disconnected and not asked again in this fetch.

use crate::bitswap::{Bitswap, FetchError};
use crate::sync::{DagSync, Sink, WINDOW};
use shoal_exchange::sync::wire::MAX_WANT;
use shoal_exchange::sync::Request;
use shoal_ipld::path::IpfsPath;
use shoal_ipld::Cid;
use shoal_net::{NodeHandle, PeerId};
use shoal_store::{BlockStore, StoreError, Walk};
use shoal_unixfs::export::{self, ExportError};
use shoal_unixfs::get::GetReport;
use shoal_unixfs::materialize::Materializer;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Which protocols a fetch may use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Sync with peers that speak it, then bitswap for the rest.
    #[default]
    Auto,
    Sync,
    Bitswap,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "auto" => Ok(Mode::Auto),
            "sync" => Ok(Mode::Sync),
            "bitswap" => Ok(Mode::Bitswap),
            _ => Err(format!("unknown exchange '{s}' (auto, sync or bitswap)")),
        }
    }
}

/// How long a peer that broke the protocol stays blocked.
pub const PENALTY: Duration = Duration::from_secs(600);

/// Rounds of sync requests in one fetch.
const MAX_ROUNDS: usize = 64;

/// The exchange of one node.
pub struct Exchange {
    pub store: Arc<BlockStore>,
    pub net: NodeHandle,
    pub bitswap: Arc<Bitswap>,
    pub sync: Arc<DagSync>,
}

/// Live counters of a running fetch (read by progress reporting).
#[derive(Debug, Default)]
pub struct Progress {
    pub blocks: AtomicU64,
    pub bytes: AtomicU64,
}

impl Progress {
    pub fn add(&self, blocks: u64, bytes: u64) {
        self.blocks.fetch_add(blocks, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// What a fetch did.
#[derive(Debug, Default, serde::Serialize)]
pub struct FetchReport {
    pub sync_blocks: u64,
    pub sync_bytes: u64,
    pub bitswap_blocks: u64,
    pub peers_banned: u64,
    /// Peers that sent data at once (at most).
    pub peers_used: usize,
}

/// The value once every other holder has dropped its clone (bounded wait).
async fn sole_owner<T>(mut shared: Arc<T>) -> Option<T> {
    for _ in 0..1500 {
        match Arc::try_unwrap(shared) {
            Ok(v) => return Some(v),
            Err(s) => shared = s,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// The next sync request, or nothing left to fetch.
enum Next {
    Complete,
    Ask(Box<Request>),
}

impl Exchange {
    pub fn start(store: Arc<BlockStore>, net: NodeHandle) -> Exchange {
        Exchange {
            bitswap: Bitswap::start(store.clone(), net.clone()),
            sync: DagSync::start(store.clone(), net.clone()),
            store,
            net,
        }
    }

    /// Makes the DAG `path` names local (and the blocks on the way to it).
    pub async fn fetch(
        &self,
        path: &IpfsPath,
        mode: Mode,
        timeout: Duration,
        progress: &Arc<Progress>,
    ) -> Result<FetchReport, FetchError> {
        self.fetch_with(path, mode, timeout, progress, None).await
    }

    /// Fetches what `path` names and writes it to `out` (which must not
    /// exist): blocks arriving over the sync are written at once, the rest
    /// is written from the store at the end.
    pub async fn fetch_to(
        &self,
        path: &IpfsPath,
        out: &std::path::Path,
        mode: Mode,
        timeout: Duration,
        progress: &Arc<Progress>,
    ) -> Result<(Cid, GetReport, FetchReport), FetchError> {
        let local_target = |store: &BlockStore, path: &IpfsPath| {
            export::resolve_trail(store, path).map(|t| *t.last().expect("never empty"))
        };
        if mode != Mode::Bitswap {
            // the path and the directory structure first, so files can be
            // written while their content arrives
            let deadline = Instant::now() + timeout;
            let peers = self.usable_peers(&HashSet::new()).await;
            if let Some(target) = self.resolve_target(path, &peers, deadline, progress).await? {
                self.open_big(target, &peers, deadline, progress).await;
            }
        }
        let (store, owned, dest) = (self.store.clone(), path.clone(), out.to_path_buf());
        let sink = tokio::task::spawn_blocking(move || {
            let target = local_target(&store, &owned).ok()?;
            let mut m = Materializer::new(target, &dest);
            m.prime(&store).ok()?;
            Some(Arc::new(std::sync::Mutex::new(m)))
        })
        .await
        .unwrap_or(None);
        let report = self
            .fetch_with(path, mode, timeout, progress, sink.clone())
            .await?;
        let (store, owned, out) = (self.store.clone(), path.clone(), out.to_path_buf());
        // requests cut short at the end (endgame copies) may still hold the
        // sink for a moment: wait for them to let go
        let sink = match sink {
            Some(s) => Some(
                sole_owner(s)
                    .await
                    .ok_or_else(|| FetchError::Path(format!("{path}: still busy writing")))?,
            ),
            None => None,
        };
        let written = tokio::task::spawn_blocking(move || {
            let target = local_target(&store, &owned)?;
            let m = match sink {
                Some(m) => m.into_inner().unwrap_or_else(|p| p.into_inner()),
                None => Materializer::new(target, &out),
            };
            m.finish(&store).map(|r| (target, r))
        })
        .await
        .map_err(|e| FetchError::Path(e.to_string()))?
        .map_err(|e| FetchError::Path(format!("{path}: {e}")))?;
        Ok((written.0, written.1, report))
    }

    async fn fetch_with(
        &self,
        path: &IpfsPath,
        mode: Mode,
        timeout: Duration,
        progress: &Arc<Progress>,
        sink: Option<Sink>,
    ) -> Result<FetchReport, FetchError> {
        let deadline = Instant::now() + timeout;
        let mut report = FetchReport::default();
        if mode != Mode::Bitswap {
            let complete = self
                .sync_rounds(path, deadline, &mut report, progress, &sink)
                .await?;
            if complete || mode == Mode::Sync {
                return match complete {
                    true => Ok(report),
                    false => Err(FetchError::NoProviders(path.root)),
                };
            }
        }
        // bitswap walks from the target if it is known, else from the root
        let root = match self.next(path).await? {
            Next::Complete => return Ok(report),
            Next::Ask(req) => req.root,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        report.bitswap_blocks = self.bitswap.fetch(root, left, progress).await?;
        Ok(report)
    }

    /// Sync from every connected peer at once (see `multi`) until the DAG
    /// is complete (`true`) or no peer can help; the DHT is asked for
    /// providers once when the connected peers run out.
    async fn sync_rounds(
        &self,
        path: &IpfsPath,
        deadline: Instant,
        report: &mut FetchReport,
        progress: &Arc<Progress>,
        sink: &Option<Sink>,
    ) -> Result<bool, FetchError> {
        let mut done_with: HashSet<PeerId> = HashSet::new();
        let mut asked_dht = false;
        for _ in 0..MAX_ROUNDS {
            if let Next::Complete = self.next(path).await? {
                return Ok(true);
            }
            let peers = self.usable_peers(&done_with).await;
            if peers.is_empty() {
                if asked_dht {
                    return Ok(false);
                }
                asked_dht = true;
                self.learn_providers(path.root).await;
                continue;
            }
            let Some(target) = self.resolve_target(path, &peers, deadline, progress).await? else {
                done_with.extend(peers);
                continue;
            };
            let (complete, r) = self
                .fetch_multi(target, peers.clone(), deadline, progress, sink)
                .await?;
            report.sync_blocks += r.blocks;
            report.sync_bytes += r.bytes;
            report.peers_banned += r.peers_banned;
            report.peers_used = report.peers_used.max(r.peers_used);
            if complete {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Err(FetchError::Timeout(path.root, 0));
            }
            done_with.extend(peers.into_iter().filter(|p| !r.left.contains(p)));
        }
        Ok(false)
    }

    /// The CID `path` names, fetching the nodes on the way from `peers`;
    /// `None` when they do not have them.
    async fn resolve_target(
        &self,
        path: &IpfsPath,
        peers: &[PeerId],
        deadline: Instant,
        progress: &Arc<Progress>,
    ) -> Result<Option<Cid>, FetchError> {
        for _ in 0..=shoal_unixfs::export::MAX_DEPTH {
            let (store, owned) = (self.store.clone(), path.clone());
            let trail = tokio::task::spawn_blocking(move || export::resolve_trail(&store, &owned))
                .await
                .map_err(|e| FetchError::Path(e.to_string()))?;
            match trail {
                Ok(t) => return Ok(t.last().copied()),
                Err(ExportError::Store(StoreError::NotFound(missing))) => {
                    if !self
                        .fetch_nodes(path.root, &[missing], peers, deadline, progress)
                        .await
                    {
                        return Ok(None);
                    }
                }
                Err(ExportError::Store(e)) => return Err(e.into()),
                Err(e) => return Err(FetchError::Path(format!("{path}: {e}"))),
            }
        }
        Err(FetchError::Path(format!("{path}: too deep")))
    }

    /// Connected peers not yet given up on in this fetch.
    async fn usable_peers(&self, done_with: &HashSet<PeerId>) -> Vec<PeerId> {
        let peers = self.net.peers().await.unwrap_or_default();
        peers
            .into_iter()
            .map(|p| p.peer)
            .filter(|p| !done_with.contains(p))
            .collect()
    }

    /// Asks the DHT for providers of `root` and connects to them.
    async fn learn_providers(&self, root: Cid) {
        let Ok(providers) = self.net.find_providers(root.hash().to_bytes()).await else {
            return;
        };
        let me = self.net.peer_id();
        for p in providers.into_iter().filter(|p| *p != me).take(16) {
            if let Ok(addrs) = self.net.find_peer(p).await {
                for a in addrs {
                    let _ = self.net.add_address(p, a.clone()).await;
                    if self.net.connect(a).await.is_ok() {
                        break;
                    }
                }
            }
        }
    }

    /// Works out what to ask for from what is stored.
    async fn next(&self, path: &IpfsPath) -> Result<Next, FetchError> {
        let store = self.store.clone();
        let owned = path.clone();
        tokio::task::spawn_blocking(move || next_request(&store, &owned))
            .await
            .map_err(|e| FetchError::Path(format!("{path}: {e}")))?
    }
}

fn next_request(store: &BlockStore, path: &IpfsPath) -> Result<Next, FetchError> {
    let target = match export::resolve_trail(store, path) {
        Ok(trail) => *trail.last().expect("never empty"),
        Err(ExportError::Store(StoreError::NotFound(_))) => {
            let mut req = Request::new(path.root);
            req.path = path.segments.clone();
            req.window = WINDOW;
            return Ok(Next::Ask(Box::new(req)));
        }
        Err(ExportError::Store(e)) => return Err(e.into()),
        Err(e) => return Err(FetchError::Path(e.to_string())),
    };
    let mut walk = Walk::default();
    store.walk(&target, &mut walk)?;
    if walk.missing.is_empty() {
        return Ok(Next::Complete);
    }
    let mut req = Request::new(target);
    req.window = WINDOW;
    if walk.missing != [target] {
        req.want = walk.missing.into_iter().take(MAX_WANT).collect();
    }
    Ok(Next::Ask(Box::new(req)))
}
