//! Fetching one DAG from every peer that has it at once: the async shell
//! around `shoal_exchange::schedule`. The missing subtrees (with their
//! sizes from the parents' links) are the work; each assignment becomes
//! one sync request (`want` = the subtrees) to its peer; bytes arriving
//! are reported as progress, finished requests complete their subtrees
//! (checked against the store), and what a request did not bring goes
//! back to the queue.

use crate::exchange::{Exchange, Progress, PENALTY};
use crate::sync::{RequestError, Sink, WINDOW};
use shoal_exchange::schedule::{Config, Item, Scheduler};
use shoal_exchange::sync::wire::MAX_WANT;
use shoal_exchange::sync::{EndStatus, Request};
use shoal_ipld::dagpb::PbNode;
use shoal_ipld::{Cid, Codec};
use shoal_net::PeerId;
use shoal_store::{BlockStore, StoreError};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Subtrees bigger than this are opened (their node fetched) and their
/// children scheduled instead, so no single piece of work dominates.
pub const SPLIT: u64 = 8 << 20;
/// Most missing subtrees gathered at once.
const MAX_FRONTIER: usize = 1 << 20;
/// How long one peer may take over a request for single blocks.
const NODE_WAIT: Duration = Duration::from_secs(5);
/// Size assumed for a link without a Tsize.
const UNKNOWN_SIZE: u64 = 256 << 10;

/// What a multi-source fetch did.
#[derive(Debug, Default)]
pub struct MultiReport {
    pub blocks: u64,
    pub bytes: u64,
    pub peers_used: usize,
    pub peers_banned: u64,
    pub peers_stalled: u64,
    pub duplicated: u64,
    /// Peers still in the fetch when it ended.
    pub left: Vec<PeerId>,
}

/// The missing subtrees under `root` (the root itself if it is missing),
/// each with the size its parent's link gives.
pub fn frontier(store: &BlockStore, root: &Cid) -> Result<Vec<(Cid, u64)>, StoreError> {
    if !store.has(root)? {
        return Ok(vec![(*root, UNKNOWN_SIZE)]);
    }
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut stack = vec![*root];
    while let Some(cid) = stack.pop() {
        if Codec::of(&cid).ok() != Some(Codec::DagPb) {
            continue;
        }
        let Some(bytes) = store.try_get(&cid)? else {
            continue;
        };
        let Ok(node) = PbNode::decode(&bytes) else {
            continue;
        };
        for l in node.links.iter().rev() {
            if !seen.insert(l.hash) {
                continue;
            }
            if store.has(&l.hash)? {
                stack.push(l.hash);
            } else if out.len() < MAX_FRONTIER {
                out.push((l.hash, l.tsize.unwrap_or(UNKNOWN_SIZE).max(1)));
            }
        }
    }
    Ok(out)
}

/// A request in flight and how much of its progress was reported.
struct Running {
    handle: tokio::task::AbortHandle,
    progress: Arc<Progress>,
    seen: (u64, u64),
}

type Runs = HashMap<PeerId, Vec<Running>>;

struct Done {
    peer: PeerId,
    keys: Vec<Cid>,
    result: Result<crate::sync::Outcome, RequestError>,
}

impl Exchange {
    /// Fetches the DAG under `target` (its root block may be missing) from
    /// `peers` at once. Returns whether the DAG is complete.
    pub async fn fetch_multi(
        &self,
        target: Cid,
        peers: Vec<PeerId>,
        deadline: Instant,
        progress: &Arc<Progress>,
        sink: &Option<Sink>,
    ) -> Result<(bool, MultiReport), crate::bitswap::FetchError> {
        let mut report = MultiReport::default();
        let mut sched: Scheduler<PeerId, Cid> = Scheduler::new(Config::default());
        let start = Instant::now();
        for p in &peers {
            sched.add_peer(*p, start);
        }
        self.open_big(target, &peers, deadline, progress).await;
        sched.push(self.frontier_items(target).await?);
        let mut tasks: JoinSet<Done> = JoinSet::new();
        let mut running: Runs = HashMap::new();
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        let mut used = HashSet::new();
        loop {
            let now = Instant::now();
            while let Some((peer, keys)) = sched.next(now) {
                used.insert(peer);
                let mine = Arc::new(Progress::default());
                let mut req = Request::new(target);
                req.want = keys.clone();
                req.window = WINDOW;
                let (sync, p, s) = (self.sync.clone(), mine.clone(), sink.clone());
                let handle = tasks.spawn(async move {
                    let result = sync.request(peer, &req, &p, s).await;
                    Done { peer, keys, result }
                });
                running.entry(peer).or_default().push(Running {
                    handle,
                    progress: mine,
                    seen: (0, 0),
                });
            }
            if sched.is_done() || Instant::now() >= deadline || sched.peers().next().is_none() {
                break;
            }
            tokio::select! {
                done = tasks.join_next() => {
                    let Some(Ok(done)) = done else { continue };
                    self.finished(&mut sched, &mut running, &mut report, done, progress).await?;
                }
                _ = tick.tick() => {
                    report_progress(&mut sched, &mut running, progress);
                    for p in sched.tick(Instant::now()) {
                        tracing::info!(peer = %p, "fetch: no progress from a peer; its work goes elsewhere");
                        report.peers_stalled += 1;
                        for r in running.remove(&p).unwrap_or_default() {
                            r.handle.abort();
                        }
                    }
                }
            }
        }
        tasks.abort_all();
        report.peers_used = used.len();
        report.duplicated = sched.duplicated;
        report.left = sched.peers().copied().collect();
        let complete = self.frontier_items(target).await?.is_empty() && self.store.has(&target)?;
        Ok((complete, report))
    }

    async fn finished(
        &self,
        sched: &mut Scheduler<PeerId, Cid>,
        running: &mut Runs,
        report: &mut MultiReport,
        done: Done,
        progress: &Arc<Progress>,
    ) -> Result<(), crate::bitswap::FetchError> {
        report_progress(sched, running, progress);
        sched.request_ended(done.peer);
        if let Some(list) = running.get_mut(&done.peer) {
            list.retain(|r| !r.handle.is_finished());
        }
        if let Ok(out) = &done.result {
            report.blocks += out.blocks;
            report.bytes += out.bytes;
        }
        // what the request brought is complete; what it did not goes back
        let (store, keys) = (self.store.clone(), done.keys.clone());
        let missing = tokio::task::spawn_blocking(move || {
            keys.iter()
                .map(|k| frontier(&store, k).map(|f| (*k, f)))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| crate::bitswap::FetchError::Path(e.to_string()))??;
        let mut back = Vec::new();
        for (k, f) in missing {
            match f.as_slice() {
                [] => sched.complete(k),
                [(only, _)] if *only == k => back.push(k),
                _ => {
                    // partly here: its missing parts become work of their own
                    sched.complete(k);
                    sched.push(f.into_iter().map(|(key, size)| Item { key, size }));
                }
            }
        }
        sched.failed(done.peer, &back);
        let ended_well = matches!(&done.result, Ok(o) if matches!(o.end, Some((EndStatus::Done, _))));
        match &done.result {
            Err(RequestError::Violation(v)) if v.is_peer_fault() => {
                tracing::warn!(peer = %done.peer, "fetch: {v}; blocking the peer");
                self.sync.stats.violations.fetch_add(1, Ordering::Relaxed);
                report.peers_banned += 1;
                sched.remove_peer(done.peer);
                let _ = self.net.block(done.peer, PENALTY).await;
            }
            Err(RequestError::Store(e)) => return Err(crate::bitswap::FetchError::Path(e.to_string())),
            Err(e) => {
                tracing::debug!(peer = %done.peer, "fetch: request failed: {e}");
                sched.remove_peer(done.peer);
            }
            Ok(_) if !ended_well || !back.is_empty() => {
                // the peer lacks part of the DAG: leave it to the others
                sched.remove_peer(done.peer);
            }
            Ok(_) => {}
        }
        Ok(())
    }

    async fn frontier_items(&self, target: Cid) -> Result<Vec<Item<Cid>>, crate::bitswap::FetchError> {
        let store = self.store.clone();
        let f = tokio::task::spawn_blocking(move || frontier(&store, &target))
            .await
            .map_err(|e| crate::bitswap::FetchError::Path(e.to_string()))??;
        Ok(f.into_iter().map(|(key, size)| Item { key, size }).collect())
    }

    /// Fetches the nodes of big missing subtrees (and the root if it is
    /// missing), level by level, so their children can be spread out.
    pub(crate) async fn open_big(
        &self,
        target: Cid,
        peers: &[PeerId],
        deadline: Instant,
        progress: &Arc<Progress>,
    ) {
        for _ in 0..8 {
            let Ok(items) = self.frontier_items(target).await else {
                return;
            };
            let big: Vec<Cid> = items
                .iter()
                .filter(|i| {
                    i.key == target || (i.size > SPLIT && Codec::of(&i.key).ok() == Some(Codec::DagPb))
                })
                .map(|i| i.key)
                .take(MAX_WANT)
                .collect();
            if big.is_empty() || !self.fetch_nodes(target, &big, peers, deadline, progress).await {
                return;
            }
        }
    }

    /// Asks peers in turn for exactly these blocks; whether all arrived.
    pub async fn fetch_nodes(
        &self,
        root: Cid,
        want: &[Cid],
        peers: &[PeerId],
        deadline: Instant,
        progress: &Arc<Progress>,
    ) -> bool {
        for p in peers {
            let want: Vec<Cid> = want
                .iter()
                .filter(|c| !self.store.has(c).unwrap_or(false))
                .copied()
                .collect();
            if want.is_empty() {
                return true;
            }
            let mut req = Request::new(root);
            req.want = want;
            req.blocks_only = true;
            // a peer that does not answer must not hold the others up
            let left = deadline.saturating_duration_since(Instant::now()).min(NODE_WAIT);
            if left.is_zero() {
                return false;
            }
            match tokio::time::timeout(left, self.sync.request(*p, &req, progress, None)).await {
                Ok(Err(RequestError::Violation(v))) if v.is_peer_fault() => {
                    tracing::warn!(peer = %p, "fetch: {v}; blocking the peer");
                    self.sync.stats.violations.fetch_add(1, Ordering::Relaxed);
                    let _ = self.net.block(*p, PENALTY).await;
                }
                _ => {}
            }
        }
        want.iter().all(|c| self.store.has(c).unwrap_or(false))
    }
}

/// Feeds the bytes each running request received since the last call to
/// the scheduler (per peer) and to the fetch's counters.
fn report_progress(sched: &mut Scheduler<PeerId, Cid>, running: &mut Runs, total: &Arc<Progress>) {
    let now = Instant::now();
    for (peer, list) in running.iter_mut() {
        let mut delta = 0;
        for r in list.iter_mut() {
            let bytes = r.progress.bytes.load(Ordering::Relaxed);
            let blocks = r.progress.blocks.load(Ordering::Relaxed);
            delta += bytes - r.seen.0;
            total.add(blocks - r.seen.1, bytes - r.seen.0);
            r.seen = (bytes, blocks);
        }
        if delta > 0 {
            sched.progress(*peer, delta, now);
        }
    }
}
