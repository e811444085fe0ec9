//! Block access for one request: from the store, and when a block is
//! missing, from peers through the exchange (if the gateway has one).
//! Fetches are bounded in number and share one time budget per request.
//! Runs in blocking tasks only (a fetch blocks on the runtime).

use super::{GatewayError, GatewayState};
use crate::bitswap::FetchError;
use crate::exchange::{Exchange, Mode, Progress};
use shoal_ipld::path::IpfsPath;
use shoal_ipld::Cid;
use shoal_store::{BlockStore, StoreError, Walk};
use shoal_unixfs::export::{self, ExportError, Node};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::OwnedSemaphorePermit;

/// Time one request may spend fetching from peers, all fetches together.
pub const FETCH_BUDGET: Duration = Duration::from_secs(60);
/// Most fetches one request starts.
const MAX_FETCHES: usize = 8;

/// The blocks of one request. Holds the request's in-flight permit, so a
/// streamed body keeps its slot until it ends.
pub struct Blocks {
    pub store: Arc<BlockStore>,
    exchange: Option<Arc<Exchange>>,
    deadline: Instant,
    fetched: Vec<IpfsPath>,
    _permit: OwnedSemaphorePermit,
}

/// The DAG under `cid`, as a fetch target.
fn subgraph(cid: Cid) -> IpfsPath {
    IpfsPath {
        root: cid,
        segments: Vec::new(),
    }
}

impl Blocks {
    pub fn new(state: &GatewayState, permit: OwnedSemaphorePermit) -> Blocks {
        Blocks {
            store: state.store.clone(),
            exchange: state.exchange.clone(),
            deadline: Instant::now() + FETCH_BUDGET,
            fetched: Vec::new(),
            _permit: permit,
        }
    }

    /// Runs `op` on the store; each time it stops at a missing block,
    /// fetches `what(missing)` and runs it again.
    pub fn with<T>(
        &mut self,
        what: impl Fn(Cid) -> IpfsPath,
        mut op: impl FnMut(&BlockStore) -> Result<T, ExportError>,
    ) -> Result<T, GatewayError> {
        loop {
            match op(&self.store) {
                Err(ExportError::Store(StoreError::NotFound(missing))) => {
                    self.fetch(what(missing), missing)?
                }
                r => return r.map_err(GatewayError::from),
            }
        }
    }

    /// Follows `path` (fetching the path and its target's DAG if needed);
    /// returns every block on the way, the target last.
    pub fn resolve(&mut self, path: &IpfsPath) -> Result<Vec<Cid>, GatewayError> {
        self.with(|_| path.clone(), |store| export::resolve_trail(store, path))
    }

    /// Loads and decodes one UnixFS node.
    pub fn load(&mut self, cid: &Cid) -> Result<Node, GatewayError> {
        self.with(|_| subgraph(*cid), |store| export::load(store, cid))
    }

    /// A directory's entries (flat or sharded), in name order.
    pub fn list(&mut self, dir: &Cid) -> Result<Vec<export::DirLink>, GatewayError> {
        self.with(|_| subgraph(*dir), |store| export::list(store, dir))
    }

    /// One block's bytes (identity CIDs carry theirs).
    pub fn block(&mut self, cid: &Cid) -> Result<Vec<u8>, GatewayError> {
        if cid.hash().code() == shoal_ipld::block::IDENTITY {
            return Ok(cid.hash().digest().to_vec());
        }
        self.with(|_| subgraph(*cid), |store| Ok(store.get(cid)?))
    }

    /// Makes the whole DAG under `cid` local (one fetch brings all of it).
    pub fn complete(&mut self, cid: &Cid) -> Result<(), GatewayError> {
        self.with(
            |_| subgraph(*cid),
            |store| {
                let mut walk = Walk::default();
                store.walk(cid, &mut walk)?;
                match walk.missing.first() {
                    Some(m) => Err(StoreError::NotFound(*m).into()),
                    None => Ok(()),
                }
            },
        )
    }

    fn fetch(&mut self, what: IpfsPath, missing: Cid) -> Result<(), GatewayError> {
        let Some(exchange) = &self.exchange else {
            return Err(GatewayError::Unavailable(format!(
                "block {missing} is not in the local store, and this gateway does not fetch from peers"
            )));
        };
        if self.fetched.contains(&what) || self.fetched.len() >= MAX_FETCHES {
            return Err(GatewayError::Unavailable(format!(
                "block {missing} is not in the local store, and fetching it from peers did not bring it"
            )));
        }
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(GatewayError::Timeout(format!(
                "block {missing}: the request's {}-second budget for fetching from peers is spent",
                FETCH_BUDGET.as_secs()
            )));
        }
        self.fetched.push(what.clone());
        let progress = Arc::new(Progress::default());
        let fetch = exchange.fetch(&what, Mode::Auto, left, &progress);
        match tokio::runtime::Handle::current().block_on(fetch) {
            Ok(_) => Ok(()),
            Err(e @ FetchError::Timeout(..)) => {
                Err(GatewayError::Timeout(format!("fetching /ipfs/{what}: {e}")))
            }
            Err(e) => Err(GatewayError::Unavailable(format!("fetching /ipfs/{what}: {e}"))),
        }
    }
}
