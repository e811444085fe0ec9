//! The async shell around the sans-IO DAG sync (`shoal_exchange::sync`):
//! serves requests from the store, and runs one request against one peer,
//! storing every block the requester state machine accepts.
//!
//! Each side has a blocking worker (store reads and writes, hashing) and
//! async tasks that only move frames; the channels between them are small
//! and bounded, and the credit window bounds what is in flight.

use crate::exchange::Progress;
use crate::framing;
use futures::future::Either;
use futures::{AsyncReadExt, AsyncWriteExt};
use shoal_exchange::sync::wire::{MAX_FRAME, MAX_REQUEST};
use shoal_exchange::sync::{
    Dag, EndStatus, Event, Frame, Request, Requester, Responder, Violation, WireError,
};
use shoal_ipld::Cid;
use shoal_net::{NodeHandle, PeerId, Stream, StreamProtocol};
use shoal_store::{BlockStore, StoreError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};

const PROTOCOL: StreamProtocol = StreamProtocol::new(shoal_exchange::sync::PROTOCOL);
/// Responses served at once (others are refused).
const MAX_SERVING: usize = 64;
/// Responses served at once to one peer.
const MAX_SERVING_PER_PEER: usize = 4;
/// Credit window a request grants.
pub const WINDOW: u64 = 16 << 20;
/// A stream that moves nothing for this long is abandoned.
const IDLE: Duration = Duration::from_secs(30);
/// The fetch side commits its batch at least this often.
const COMMIT_BYTES: u64 = 64 << 20;
const COMMIT_EVERY: Duration = Duration::from_secs(1);

/// Counters for `/metrics` and tests.
#[derive(Default)]
pub struct SyncStats {
    pub served: AtomicU64,
    pub refused: AtomicU64,
    pub bad_requests: AtomicU64,
    pub blocks_sent: AtomicU64,
    pub blocks_received: AtomicU64,
    pub bytes_received: AtomicU64,
    pub violations: AtomicU64,
}

/// The sync service of one node.
pub struct DagSync {
    store: Arc<BlockStore>,
    net: NodeHandle,
    serving: Arc<Semaphore>,
    per_peer: Arc<Mutex<HashMap<PeerId, usize>>>,
    pub stats: SyncStats,
}

/// What one request brought.
#[derive(Debug, Default)]
pub struct Outcome {
    pub end: Option<(EndStatus, String)>,
    pub blocks: u64,
    pub bytes: u64,
    pub dont_have: u64,
}

/// Why one request failed.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("could not open a sync stream: {0}")]
    Open(String),
    #[error("stream: {0}")]
    Io(#[from] std::io::Error),
    #[error("no frame for {IDLE:?}")]
    Idle,
    #[error("bad frame: {0}")]
    Wire(#[from] WireError),
    #[error("the peer broke the protocol: {0}")]
    Violation(Violation),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Local(String),
}

/// Where accepted blocks are also written as they arrive (a `get`).
pub type Sink = Arc<Mutex<shoal_unixfs::materialize::Materializer>>;

struct StoreDag<'a>(&'a BlockStore);

impl Dag for StoreDag<'_> {
    type Error = StoreError;
    fn get(&mut self, cid: &Cid) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.try_get(cid)
    }
}

impl DagSync {
    /// Starts answering sync requests.
    pub fn start(store: Arc<BlockStore>, net: NodeHandle) -> Arc<DagSync> {
        let sync = Arc::new(DagSync {
            store,
            net: net.clone(),
            serving: Arc::new(Semaphore::new(MAX_SERVING)),
            per_peer: Arc::default(),
            stats: SyncStats::default(),
        });
        if let Ok(mut incoming) = net.streams().accept(PROTOCOL) {
            let s = sync.clone();
            tokio::spawn(async move {
                while let Some((peer, stream)) = incoming.recv().await {
                    tokio::spawn(s.clone().serve(peer, stream));
                }
            });
        }
        sync
    }

    async fn serve(self: Arc<Self>, peer: PeerId, stream: Stream) {
        let Ok(_permit) = self.serving.clone().try_acquire_owned() else {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let Some(_slot) = PeerSlot::take(&self.per_peer, peer) else {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let (mut rd, mut wr) = stream.split();
        let req = match tokio::time::timeout(IDLE, framing::read(&mut rd, MAX_REQUEST)).await {
            Ok(Ok(Some(bytes))) => Request::decode(&bytes),
            _ => Err(WireError::Invalid("no request")),
        };
        let req = match req {
            Ok(r) => r,
            Err(e) => {
                self.stats.bad_requests.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%peer, "bad sync request: {e}");
                let end = Frame::End {
                    status: EndStatus::Error,
                    message: e.to_string(),
                };
                let _ = framing::write(&mut wr, &end.encode()).await;
                let _ = wr.close().await;
                return;
            }
        };
        self.stats.served.fetch_add(1, Ordering::Relaxed);
        let (credit_tx, credit_rx) = std::sync::mpsc::sync_channel::<u64>(64);
        let (frame_tx, mut frame_rx) = mpsc::channel::<Vec<u8>>(8);
        let store = self.store.clone();
        let producer = tokio::task::spawn_blocking(move || produce(&store, &req, credit_rx, frame_tx));
        let credits = async move {
            while let Ok(Ok(Some(bytes))) = tokio::time::timeout(IDLE * 4, framing::read(&mut rd, 64)).await {
                match Frame::decode(&bytes) {
                    Ok(Frame::Credit(n)) if credit_tx.try_send(n).is_ok() => {}
                    _ => return,
                }
            }
        };
        let writer = async move {
            while let Some(frame) = frame_rx.recv().await {
                tokio::time::timeout(IDLE, framing::write(&mut wr, &frame))
                    .await
                    .map_err(|_| std::io::Error::other("idle"))??;
                if frame_rx.is_empty() {
                    wr.flush().await?;
                }
            }
            wr.close().await
        };
        let written = match futures::future::select(Box::pin(writer), Box::pin(credits)).await {
            Either::Left((r, _)) => r,
            Either::Right(((), writer)) => writer.await,
        };
        if let Err(e) = written {
            tracing::debug!(%peer, "sync response cut short: {e}");
        }
        if let Ok(sent) = producer.await {
            self.stats.blocks_sent.fetch_add(sent, Ordering::Relaxed);
        }
    }

    /// Runs `req` against `peer`, storing what it accepts.
    pub async fn request(
        &self,
        peer: PeerId,
        req: &Request,
        progress: &Arc<Progress>,
        sink: Option<Sink>,
    ) -> Result<Outcome, RequestError> {
        let streams = self.net.streams();
        let open = streams.open_stream(peer, PROTOCOL);
        let stream = match tokio::time::timeout(IDLE, open).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(RequestError::Open(e.to_string())),
            Err(_) => return Err(RequestError::Open("timed out".into())),
        };
        let (mut rd, mut wr) = stream.split();
        framing::write(&mut wr, &req.encode()).await?;
        wr.flush().await?;
        let (frame_tx, frame_rx) = mpsc::channel::<Frame>(32);
        let (credit_tx, mut credit_rx) = mpsc::channel::<u64>(64);
        let store = self.store.clone();
        let r = req.clone();
        let p = progress.clone();
        let worker =
            tokio::task::spawn_blocking(move || consume(&store, &r, frame_rx, credit_tx, &p, sink.as_ref()));
        let reader = async move {
            loop {
                let bytes = match tokio::time::timeout(IDLE, framing::read(&mut rd, MAX_FRAME)).await {
                    Err(_) => return Err(RequestError::Idle),
                    Ok(Err(e)) => return Err(e.into()),
                    Ok(Ok(None)) => {
                        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into())
                    }
                    Ok(Ok(Some(b))) => b,
                };
                let frame = Frame::decode(&bytes)?;
                let end = matches!(frame, Frame::End { .. });
                if frame_tx.send(frame).await.is_err() || end {
                    return Ok(());
                }
            }
        };
        let credits = async move {
            while let Some(n) = credit_rx.recv().await {
                framing::write(&mut wr, &Frame::Credit(n).encode()).await?;
                wr.flush().await?;
            }
            let _ = wr.close().await;
            Ok::<(), std::io::Error>(())
        };
        let read = match futures::future::select(Box::pin(reader), Box::pin(credits)).await {
            Either::Left((r, _)) => r,
            Either::Right((_, reader)) => reader.await,
        };
        let outcome = worker
            .await
            .map_err(|e| RequestError::Io(std::io::Error::other(e.to_string())))??;
        self.stats
            .blocks_received
            .fetch_add(outcome.blocks, Ordering::Relaxed);
        self.stats
            .bytes_received
            .fetch_add(outcome.bytes, Ordering::Relaxed);
        match (read, &outcome.end) {
            (Err(e), None) => Err(e),
            _ => Ok(outcome),
        }
    }
}

/// One of a peer's `MAX_SERVING_PER_PEER` response slots, given back on drop.
struct PeerSlot(Arc<Mutex<HashMap<PeerId, usize>>>, PeerId);

impl PeerSlot {
    fn take(map: &Arc<Mutex<HashMap<PeerId, usize>>>, peer: PeerId) -> Option<PeerSlot> {
        let mut m = map.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(peer).or_default();
        if *n >= MAX_SERVING_PER_PEER {
            return None;
        }
        *n += 1;
        Some(PeerSlot(map.clone(), peer))
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.1);
            }
        }
    }
}

/// The serving worker: walks the DAG and hands frames to the writer,
/// waiting for credit when the window is used up.
fn produce(
    store: &BlockStore,
    req: &Request,
    credit_rx: std::sync::mpsc::Receiver<u64>,
    frame_tx: mpsc::Sender<Vec<u8>>,
) -> u64 {
    let mut dag = StoreDag(store);
    let mut resp = Responder::new(req, &mut dag);
    loop {
        while let Ok(n) = credit_rx.try_recv() {
            resp.add_credit(n);
        }
        if resp.needs_credit() {
            match credit_rx.recv_timeout(IDLE) {
                Ok(n) => resp.add_credit(n),
                Err(_) => break,
            }
            continue;
        }
        let Some(frame) = resp.next(&mut dag) else { break };
        if frame_tx.blocking_send(frame.encode()).is_err() {
            break;
        }
    }
    resp.blocks_sent
}

/// The fetching worker: checks each frame, stores accepted blocks in
/// batches, and returns credit as it goes.
fn consume(
    store: &BlockStore,
    req: &Request,
    mut frames: mpsc::Receiver<Frame>,
    credit_tx: mpsc::Sender<u64>,
    progress: &Progress,
    sink: Option<&Sink>,
) -> Result<Outcome, RequestError> {
    let mut requester = Requester::new(req);
    let mut out = Outcome::default();
    let mut batch = store.batch();
    let mut committed = Instant::now();
    let mut owed = 0u64;
    while let Some(frame) = frames.blocking_recv() {
        match requester.handle(frame) {
            Ok(Event::Block { cid, data, .. }) => {
                batch.put_verified(&cid, &data)?;
                if let Some(m) = sink {
                    let mut m = m.lock().unwrap_or_else(|p| p.into_inner());
                    if let Err(e) = m.block(&cid, &data) {
                        batch.commit()?;
                        return Err(RequestError::Local(e.to_string()));
                    }
                }
                out.blocks += 1;
                out.bytes += data.len() as u64;
                progress.add(1, data.len() as u64);
                if batch.pending_bytes() >= COMMIT_BYTES || committed.elapsed() >= COMMIT_EVERY {
                    std::mem::replace(&mut batch, store.batch()).commit()?;
                    committed = Instant::now();
                }
            }
            Ok(Event::DontHave(_)) => out.dont_have += 1,
            Ok(Event::End { status, message }) => {
                out.end = Some((status, message));
                break;
            }
            Err(v) => {
                batch.commit()?;
                return Err(RequestError::Violation(v));
            }
        }
        owed += requester.credit().unwrap_or(0);
        if owed > 0 && credit_tx.try_send(owed).is_ok() {
            owed = 0;
        }
    }
    batch.commit()?;
    Ok(out)
}
