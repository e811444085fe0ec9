//! The async shell around the sans-IO bitswap: accepts streams, frames
//! messages (uvarint length + protobuf), serves wants from the store, and
//! runs fetch sessions that walk a DAG and store each verified block.

use crate::exchange::Progress;
use crate::framing;
use futures::AsyncWriteExt;
use shoal_exchange::bitswap::ledger::{Ledger, Task};
use shoal_exchange::bitswap::message::{Message, Presence, WantType, MAX_MESSAGE};
use shoal_exchange::bitswap::session::{Session, SessionConfig, Verdict};
use shoal_ipld::{dagpb, Cid};
use shoal_net::{NodeHandle, PeerId, Stream, StreamProtocol};
use shoal_store::BlockStore;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const SEND_PROTOCOL: StreamProtocol = StreamProtocol::new("/ipfs/bitswap/1.2.0");
/// Block bytes per outgoing message: js-libp2p aborts a stream with more
/// than 4 MiB unread, so stay well under it.
const SEND_BUDGET: usize = 1 << 20;
/// Wants answered per round for one peer.
const TASKS_PER_ROUND: usize = 64;
/// Incoming block messages queued per fetch session.
const SESSION_DEPTH: usize = 64;

/// Counters for `/metrics` and tests.
#[derive(Default)]
pub struct BitswapStats {
    pub bad_messages: AtomicU64,
    pub blocks_sent: AtomicU64,
    pub blocks_received: AtomicU64,
    pub unrequested: AtomicU64,
    pub peers_banned: AtomicU64,
}

type Incoming = (PeerId, Message);

/// Verified blocks not yet written: stored together (one transaction)
/// every `STORE_BYTES` or `STORE_EVERY`, and at the end of the session.
#[derive(Default)]
struct Unstored {
    blocks: Vec<(Cid, Vec<u8>)>,
    bytes: usize,
    since: Option<Instant>,
}

const STORE_BYTES: usize = 32 << 20;
const STORE_EVERY: Duration = Duration::from_secs(1);

impl Unstored {
    fn add(&mut self, cid: Cid, data: Vec<u8>) {
        self.since.get_or_insert_with(Instant::now);
        self.bytes += data.len();
        self.blocks.push((cid, data));
    }

    fn is_due(&self) -> bool {
        self.bytes >= STORE_BYTES || self.since.is_some_and(|t| t.elapsed() >= STORE_EVERY)
    }
}

/// The bitswap service of one node.
pub struct Bitswap {
    store: Arc<BlockStore>,
    net: NodeHandle,
    ledger: Mutex<Ledger<PeerId>>,
    serving: Mutex<HashSet<PeerId>>,
    senders: Mutex<HashMap<PeerId, Arc<tokio::sync::Mutex<Option<Stream>>>>>,
    sessions: Mutex<Vec<mpsc::Sender<Incoming>>>,
    pub stats: BitswapStats,
}

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("no peer has {0} (none connected had it, and the DHT found no provider)")]
    NoProviders(Cid),
    #[error("store: {0}")]
    Store(#[from] shoal_store::StoreError),
    #[error("block {0} is not valid dag-pb: {1}")]
    Malformed(Cid, String),
    #[error("{0}")]
    Path(String),
    #[error("fetch of {0} timed out with {1} blocks outstanding")]
    Timeout(Cid, usize),
}

impl Bitswap {
    /// Starts accepting bitswap streams.
    pub fn start(store: Arc<BlockStore>, net: NodeHandle) -> Arc<Bitswap> {
        let bs = Arc::new(Bitswap {
            store,
            net: net.clone(),
            ledger: Mutex::new(Ledger::default()),
            serving: Mutex::new(HashSet::new()),
            senders: Mutex::new(HashMap::new()),
            sessions: Mutex::new(Vec::new()),
            stats: BitswapStats::default(),
        });
        for proto in shoal_exchange::bitswap::PROTOCOLS {
            let Ok(mut incoming) = net.streams().accept(StreamProtocol::new(proto)) else {
                continue;
            };
            let bs = bs.clone();
            tokio::spawn(async move {
                while let Some((peer, stream)) = incoming.recv().await {
                    tokio::spawn(bs.clone().read_stream(peer, stream));
                }
            });
        }
        bs
    }

    /// The serving ledger's counters.
    pub fn ledger_stats(&self) -> shoal_exchange::bitswap::ledger::LedgerStats {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner()).stats
    }

    /// Reads messages from one inbound stream until it ends or misbehaves.
    async fn read_stream(self: Arc<Self>, peer: PeerId, stream: Stream) {
        let mut r = futures::io::BufReader::new(stream);
        loop {
            let msg = match framing::read(&mut r, MAX_MESSAGE + (64 << 10)).await {
                Ok(Some(bytes)) => Message::decode(&bytes),
                Ok(None) => return,
                Err(_) => {
                    self.stats.bad_messages.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            };
            let Ok(msg) = msg else {
                self.stats.bad_messages.fetch_add(1, Ordering::Relaxed);
                return;
            };
            if !msg.entries.is_empty() || msg.full {
                self.ledger
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .handle_message(&peer, &msg);
                self.clone().serve(peer);
            }
            if !msg.blocks.is_empty() || !msg.presences.is_empty() {
                let sessions: Vec<_> = self.sessions.lock().unwrap_or_else(|p| p.into_inner()).clone();
                for s in sessions {
                    let _ = s.send((peer, msg.clone())).await;
                }
            }
        }
    }

    /// Answers `peer`'s wants until its wantlist is empty (one task per peer).
    fn serve(self: Arc<Self>, peer: PeerId) {
        if !self
            .serving
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(peer)
        {
            return;
        }
        tokio::spawn(async move {
            loop {
                let tasks = self
                    .ledger
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .next_tasks(&peer, TASKS_PER_ROUND);
                if tasks.is_empty() {
                    break;
                }
                let store = self.store.clone();
                let answers = tokio::task::spawn_blocking(move || answer(&store, tasks))
                    .await
                    .unwrap_or_default();
                let not_found = answers
                    .iter()
                    .flat_map(|m| &m.presences)
                    .filter(|(_, p)| *p == Presence::DontHave)
                    .count();
                self.ledger
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .note_not_found(not_found as u64);
                for msg in answers {
                    let n = msg.blocks.len() as u64;
                    if self.send(peer, &msg).await.is_err() {
                        self.ledger
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove_peer(&peer);
                        break;
                    }
                    self.stats.blocks_sent.fetch_add(n, Ordering::Relaxed);
                }
            }
            self.serving
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&peer);
            // wants that arrived while we were finishing
            if self
                .ledger
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pending(&peer)
                > 0
            {
                self.serve(peer);
            }
        });
    }

    /// Sends one message on our outbound stream to `peer` (opened on demand;
    /// one stream per peer, so sends to different peers do not wait on each other).
    async fn send(&self, peer: PeerId, msg: &Message) -> std::io::Result<()> {
        let bytes = msg.encode();
        let slot = self
            .senders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(peer)
            .or_default()
            .clone();
        let mut slot = slot.lock().await;
        for _ in 0..2 {
            let stream = match slot.as_mut() {
                Some(s) => s,
                None => {
                    let opened = self.net.streams().open_stream(peer, SEND_PROTOCOL).await;
                    slot.insert(opened.map_err(|e| std::io::Error::other(format!("{e:?}")))?)
                }
            };
            if framing::write(stream, &bytes).await.is_ok() && stream.flush().await.is_ok() {
                return Ok(());
            }
            *slot = None;
        }
        Err(std::io::Error::other("could not send to peer"))
    }

    /// Fetches every missing block of the DAG under `root` from `peers`
    /// (connected peers are asked first; the DHT when they cannot help).
    pub async fn fetch(&self, root: Cid, timeout: Duration, progress: &Progress) -> Result<u64, FetchError> {
        let (tx, mut rx) = mpsc::channel(SESSION_DEPTH);
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).push(tx);
        let result = self.run_session(root, &mut rx, timeout, progress).await;
        drop(rx);
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|s| !s.is_closed());
        result
    }

    async fn run_session(
        &self,
        root: Cid,
        rx: &mut mpsc::Receiver<Incoming>,
        timeout: Duration,
        progress: &Progress,
    ) -> Result<u64, FetchError> {
        let deadline = Instant::now() + timeout;
        let mut session: Session<PeerId> = Session::new(SessionConfig::default());
        for p in self.net.peers().await.unwrap_or_default() {
            session.add_peer(p.peer);
        }
        let missing = self.missing_under(root).await?;
        for cid in missing {
            session.want(cid);
        }
        let mut fetched = 0u64;
        let mut asked_dht = false;
        let mut received: HashSet<Cid> = HashSet::new();
        let mut unstored = Unstored::default();
        while !session.is_done() {
            if Instant::now() > deadline {
                return Err(FetchError::Timeout(root, session.outstanding()));
            }
            if session.is_stuck()
                || (session.outstanding() > 0 && self.net.peers().await.map_or(true, |p| p.is_empty()))
            {
                if asked_dht {
                    return Err(FetchError::NoProviders(root));
                }
                asked_dht = true;
                self.find_providers(root, &mut session).await;
            }
            for (peer, entries) in session.poll_requests(Instant::now()) {
                let msg = Message {
                    entries,
                    ..Default::default()
                };
                if self.send(peer, &msg).await.is_err() {
                    session.remove_peer(&peer);
                }
            }
            let wait = session.poll_timeout().map_or(Duration::from_millis(500), |t| {
                t.saturating_duration_since(Instant::now())
            });
            let incoming = tokio::time::timeout(wait.min(Duration::from_millis(500)), rx.recv()).await;
            let Ok(Some((peer, msg))) = incoming else { continue };
            for (cid, p) in &msg.presences {
                if *p == Presence::DontHave {
                    session.handle_dont_have(&peer, *cid);
                }
            }
            for (cid, data) in msg.blocks {
                match session.handle_block(&peer, cid) {
                    Verdict::Accept => {
                        fetched += 1;
                        self.stats.blocks_received.fetch_add(1, Ordering::Relaxed);
                        progress.add(1, data.len() as u64);
                        let links = dagpb::links(&cid, &data)
                            .map_err(|e| FetchError::Malformed(cid, e.to_string()))?;
                        for child in self.not_stored(links, &received).await? {
                            session.want(child);
                        }
                        received.insert(cid);
                        unstored.add(cid, data);
                        if unstored.is_due() {
                            self.store_blocks(&mut unstored).await?;
                        }
                    }
                    Verdict::Duplicate => {}
                    Verdict::Unrequested => {
                        // a block nobody asked for: with bitswap's prefix
                        // encoding this is what a corrupted block looks like
                        self.stats.unrequested.fetch_add(1, Ordering::Relaxed);
                        self.stats.peers_banned.fetch_add(1, Ordering::Relaxed);
                        session.ban(&peer);
                        let _ = self.net.block(peer, crate::exchange::PENALTY).await;
                    }
                }
            }
        }
        self.store_blocks(&mut unstored).await?;
        Ok(fetched)
    }

    async fn find_providers(&self, root: Cid, session: &mut Session<PeerId>) {
        let Ok(providers) = self.net.find_providers(root.hash().to_bytes()).await else {
            return;
        };
        let me = self.net.peer_id();
        let candidates: Vec<PeerId> = providers
            .into_iter()
            .filter(|p| *p != me && !session.is_banned(p))
            .collect();
        for p in candidates {
            if let Ok(addrs) = self.net.find_peer(p).await {
                for a in addrs {
                    let _ = self.net.add_address(p, a).await;
                }
            }
            session.add_peer(p);
        }
    }

    /// Writes the received blocks in one store transaction.
    async fn store_blocks(&self, unstored: &mut Unstored) -> Result<(), FetchError> {
        let blocks = std::mem::take(unstored).blocks;
        if blocks.is_empty() {
            return Ok(());
        }
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let mut batch = store.batch();
            for (cid, data) in &blocks {
                batch.put_verified(cid, data)?;
            }
            batch.commit()
        })
        .await
        .map_err(|e| FetchError::Path(e.to_string()))??;
        Ok(())
    }

    /// The `links` neither stored nor received in this session.
    async fn not_stored(&self, links: Vec<Cid>, received: &HashSet<Cid>) -> Result<Vec<Cid>, FetchError> {
        let links: Vec<Cid> = links.into_iter().filter(|l| !received.contains(l)).collect();
        if links.is_empty() {
            return Ok(links);
        }
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let mut missing = Vec::new();
            for l in links {
                if !store.has(&l)? {
                    missing.push(l);
                }
            }
            Ok(missing)
        })
        .await
        .map_err(|e| FetchError::Path(e.to_string()))?
    }

    /// The blocks of `root`'s DAG not in the store (walking what is there).
    async fn missing_under(&self, root: Cid) -> Result<Vec<Cid>, FetchError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let mut walk = shoal_store::Walk::default();
            store.walk(&root, &mut walk)?;
            Ok(walk.missing)
        })
        .await
        .map_err(|e| FetchError::Malformed(root, e.to_string()))?
    }
}

/// Builds the answers to `tasks` from the store, in messages of at most
/// `SEND_BUDGET` block bytes.
fn answer(store: &BlockStore, tasks: Vec<Task>) -> Vec<Message> {
    let mut out = vec![Message::default()];
    let mut budget = SEND_BUDGET;
    for t in tasks {
        let m = out.last_mut().expect("never empty");
        match t.want {
            WantType::Block => match store.try_get(&t.cid) {
                Ok(Some(data)) => {
                    if data.len() > budget && !m.blocks.is_empty() {
                        out.push(Message::default());
                        budget = SEND_BUDGET;
                    }
                    budget = budget.saturating_sub(data.len());
                    out.last_mut().expect("never empty").blocks.push((t.cid, data));
                }
                _ if t.send_dont_have => m.presences.push((t.cid, Presence::DontHave)),
                _ => {}
            },
            WantType::Have => match store.has(&t.cid) {
                Ok(true) => m.presences.push((t.cid, Presence::Have)),
                _ if t.send_dont_have => m.presences.push((t.cid, Presence::DontHave)),
                _ => {}
            },
        }
    }
    out.retain(|m| !m.is_empty());
    out
}
