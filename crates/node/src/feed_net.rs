//! Feed logs on the network: `/shoal/feeds/1.0.0` carries the replication
//! of every log two peers share over one stream per peer (see
//! `shoal_log::mux`), and heads are announced on a gossipsub topic per
//! feed. The protocol decisions are in `shoal_log::replicate`; this is the
//! async shell that moves frames, persists verified entries and penalises
//! peers that lie.

use crate::framing;
use futures::AsyncReadExt;
use shoal_feeds::{FeedId, Feeds};
use shoal_log::mux::{discovery_key, Event, Frame, Mux, MAX_FRAME};
use shoal_log::replicate::{Action, Channel, Log};
use shoal_log::wire::Message;
use shoal_log::SignedHead;
use shoal_net::{NodeHandle, PeerId, Stream, StreamProtocol};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/shoal/feeds/1.0.0");
/// Commands queued per session.
const SESSION_DEPTH: usize = 64;
/// Frames read ahead per session.
const READ_AHEAD: usize = 16;
/// A session with nothing to say for this long is closed.
const IDLE: Duration = Duration::from_secs(300);

/// The gossipsub topic of a feed's heads.
pub fn topic(feed: &FeedId) -> String {
    format!("/shoal/feed/1/{feed}")
}

/// Counters for `shoal stats`.
#[derive(Debug, Default)]
pub struct FeedNetStats {
    pub sessions: AtomicU64,
    pub entries_received: AtomicU64,
    pub violations: AtomicU64,
    pub bad_messages: AtomicU64,
    pub acks_received: AtomicU64,
    pub gossip_heads: AtomicU64,
}

struct Tracked {
    id: FeedId,
    log: Log,
    /// Entries persisted in the log store.
    persisted: u64,
    /// Peers that told us their head of this log (bounded by the sessions).
    heard: std::collections::HashSet<PeerId>,
}

enum SessionCmd {
    Open([u8; 32]),
    Announce([u8; 32], SignedHead),
}

pub struct FeedNet {
    pub feeds: Arc<Feeds>,
    pub net: NodeHandle,
    logs: Mutex<HashMap<[u8; 32], Arc<Mutex<Tracked>>>>,
    sessions: Mutex<HashMap<PeerId, mpsc::Sender<SessionCmd>>>,
    /// Bumped whenever any log learns a head or an entry.
    changed: watch::Sender<u64>,
    pub stats: FeedNetStats,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl FeedNet {
    /// Starts answering feed streams and gossip.
    pub fn start(feeds: Arc<Feeds>, net: NodeHandle) -> Arc<FeedNet> {
        let fnet = Arc::new(FeedNet {
            feeds,
            net: net.clone(),
            logs: Mutex::default(),
            sessions: Mutex::default(),
            changed: watch::channel(0).0,
            stats: FeedNetStats::default(),
        });
        if let Ok(mut incoming) = net.streams().accept(PROTOCOL) {
            let f = fnet.clone();
            tokio::spawn(async move {
                while let Some((peer, stream)) = incoming.recv().await {
                    let (tx, rx) = mpsc::channel(SESSION_DEPTH);
                    lock(&f.sessions).entry(peer).or_insert(tx);
                    tokio::spawn(f.clone().session(peer, stream, rx));
                }
            });
        }
        tokio::spawn(fnet.clone().gossip_loop());
        fnet
    }

    /// Serves (and follows) the feed from now on: loads its log, joins its
    /// topic and announces it in the DHT.
    pub async fn track(&self, id: FeedId) -> Result<(), shoal_feeds::FeedError> {
        let dk = discovery_key(&id.0);
        let stored = self.feeds.logs.load(&id.0)?;
        let log = match stored {
            Some(s) => Log::restore(id.verifying_key(), None, s),
            None => Log::follower(id.verifying_key()),
        };
        let persisted = log.length();
        let fresh = {
            let mut logs = lock(&self.logs);
            match logs.get(&dk) {
                Some(t) => {
                    let mut t = lock(t);
                    if log.length() > t.log.length() {
                        // published meanwhile: the store is ahead of memory
                        *t = Tracked {
                            id,
                            log,
                            persisted,
                            heard: t.heard.clone(),
                        };
                    }
                    false
                }
                None => {
                    let t = Tracked {
                        id,
                        log,
                        persisted,
                        heard: Default::default(),
                    };
                    logs.insert(dk, Arc::new(Mutex::new(t)));
                    true
                }
            }
        };
        if fresh {
            let _ = self.net.subscribe(&topic(&id)).await;
            let net = self.net.clone();
            tokio::spawn(async move { net.provide(dk.to_vec()).await });
        }
        self.changed.send_modify(|v| *v += 1);
        Ok(())
    }

    /// After a publish: reloads the log and announces its new head to the
    /// peers we replicate it with and on gossip.
    pub async fn published(&self, id: FeedId) -> Result<(), shoal_feeds::FeedError> {
        self.track(id).await?;
        if let Some(head) = self.head(&id) {
            self.announce(discovery_key(&id.0), head, None);
            let _ = self.net.publish(&topic(&id), Message::Head(head).encode()).await;
        }
        Ok(())
    }

    fn tracked(&self, dk: &[u8; 32]) -> Option<Arc<Mutex<Tracked>>> {
        lock(&self.logs).get(dk).cloned()
    }

    /// The best verified head we know for the feed.
    pub fn head(&self, id: &FeedId) -> Option<SignedHead> {
        self.tracked(&discovery_key(&id.0))
            .and_then(|t| lock(&t).log.head())
    }

    /// Entries of the feed we hold (verified, contiguous).
    pub fn length(&self, id: &FeedId) -> u64 {
        self.tracked(&discovery_key(&id.0))
            .map_or(0, |t| lock(&t).log.length())
    }

    /// The peers that have told us their head of the feed.
    pub fn heard_from(&self, id: &FeedId) -> Vec<PeerId> {
        self.tracked(&discovery_key(&id.0))
            .map_or(Vec::new(), |t| lock(&t).heard.iter().copied().collect())
    }

    /// How many peers have told us their head of the feed.
    pub fn heard(&self, id: &FeedId) -> usize {
        self.tracked(&discovery_key(&id.0))
            .map_or(0, |t| lock(&t).heard.len())
    }

    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Tells every session (but `except`'s) about a new head of the log.
    fn announce(&self, dk: [u8; 32], head: SignedHead, except: Option<PeerId>) {
        let sessions: Vec<_> = lock(&self.sessions)
            .iter()
            .filter(|(p, _)| Some(**p) != except)
            .map(|(_, tx)| tx.clone())
            .collect();
        for tx in sessions {
            let _ = tx.try_send(SessionCmd::Announce(dk, head));
        }
    }

    /// Asks `peer` about the feed (opens a session if needed).
    pub async fn ask(self: &Arc<Self>, peer: PeerId, id: &FeedId) -> bool {
        let dk = discovery_key(&id.0);
        let existing = lock(&self.sessions)
            .get(&peer)
            .filter(|s| !s.is_closed())
            .cloned();
        let tx = match existing {
            Some(tx) => tx,
            None => {
                let Ok(stream) = self.net.streams().open_stream(peer, PROTOCOL).await else {
                    return false;
                };
                let (tx, rx) = mpsc::channel(SESSION_DEPTH);
                lock(&self.sessions).insert(peer, tx.clone());
                tokio::spawn(self.clone().session(peer, stream, rx));
                tx
            }
        };
        tx.send(SessionCmd::Open(dk)).await.is_ok()
    }

    async fn gossip_loop(self: Arc<Self>) {
        let mut rx = self.net.gossip_messages();
        loop {
            let msg = match rx.recv().await {
                Ok(m) => m,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            };
            let Some(hex) = msg.topic.strip_prefix("/shoal/feed/1/") else {
                continue;
            };
            let Ok(id) = hex.parse::<FeedId>() else { continue };
            let Ok(Message::Head(head)) = Message::decode(&msg.data) else {
                continue;
            };
            if head.verify(&id.verifying_key()).is_err() {
                continue; // gossipsub's own signature is the relayer's, not the writer's
            }
            self.stats.gossip_heads.fetch_add(1, Ordering::Relaxed);
            if self.head(&id).is_none_or(|h| head.length > h.length) {
                // the peer that told us has it: replicate from it
                self.ask(msg.from, &id).await;
            }
        }
    }
}

/// One replication stream with one peer.
struct Session {
    peer: PeerId,
    mux: Mux,
    channels: HashMap<[u8; 32], Channel>,
    out: Vec<Frame>,
}

impl FeedNet {
    async fn session(self: Arc<Self>, peer: PeerId, stream: Stream, mut cmds: mpsc::Receiver<SessionCmd>) {
        self.stats.sessions.fetch_add(1, Ordering::Relaxed);
        let (mut rd, mut wr) = stream.split();
        let (ftx, mut frames) = mpsc::channel::<Result<Frame, String>>(READ_AHEAD);
        let reader = tokio::spawn(async move {
            loop {
                let item = match framing::read(&mut rd, MAX_FRAME).await {
                    Ok(Some(b)) => Frame::decode(&b).map_err(|e| e.to_string()),
                    Ok(None) => return,
                    Err(e) => Err(e.to_string()),
                };
                let stop = item.is_err();
                if ftx.send(item).await.is_err() || stop {
                    return;
                }
            }
        });
        let mut s = Session {
            peer,
            mux: Mux::default(),
            channels: HashMap::new(),
            out: Vec::new(),
        };
        let outcome: Result<(), String> = loop {
            let step = tokio::select! {
                f = frames.recv() => match f {
                    Some(Ok(frame)) => self.on_frame(&mut s, frame),
                    Some(Err(e)) => Err(e),
                    None => break Ok(()),
                },
                c = cmds.recv() => match c {
                    Some(SessionCmd::Open(dk)) => { self.open_channel(&mut s, dk); Ok(()) }
                    Some(SessionCmd::Announce(dk, head)) => {
                        if let Some(ch) = s.channels.get_mut(&dk) {
                            ch.announce(head);
                            self.drain(&mut s, dk);
                        }
                        Ok(())
                    }
                    None => break Ok(()),
                },
                _ = tokio::time::sleep(IDLE) => break Ok(()),
            };
            if let Err(e) = step {
                break Err(e);
            }
            if let Err(e) = flush(&mut wr, &mut s.out).await {
                break Err(format!("writing: {e}"));
            }
        };
        reader.abort();
        if let Err(reason) = outcome {
            tracing::info!(%peer, %reason, "feed session ended by a violation");
            self.stats.violations.fetch_add(1, Ordering::Relaxed);
            let _ = self.net.block(peer, crate::exchange::PENALTY).await;
        }
        cmds.close();
        let mut sessions = lock(&self.sessions);
        if sessions.get(&peer).is_some_and(|tx| tx.is_closed()) {
            sessions.remove(&peer);
        }
    }

    fn open_channel(&self, s: &mut Session, dk: [u8; 32]) {
        let Some(t) = self.tracked(&dk) else { return };
        if let Some(f) = s.mux.open(dk) {
            s.out.push(f);
        }
        if let std::collections::hash_map::Entry::Vacant(e) = s.channels.entry(dk) {
            e.insert(Channel::open(&lock(&t).log));
            self.drain(s, dk);
        }
    }

    fn on_frame(&self, s: &mut Session, frame: Frame) -> Result<(), String> {
        match s.mux.receive(frame).map_err(|e| e.to_string())? {
            Event::Opened(dk) => self.open_channel(s, dk),
            Event::Message(dk, Ok(msg)) => {
                let Some(t) = self.tracked(&dk) else { return Ok(()) };
                if !s.channels.contains_key(&dk) {
                    self.open_channel(s, dk);
                }
                let ch = s.channels.get_mut(&dk).expect("opened above");
                let mut t = lock(&t);
                if matches!(msg, Message::Head(_) | Message::Data { .. }) {
                    t.heard.insert(s.peer);
                }
                ch.handle(&mut t.log, msg)
                    .map_err(|v| format!("feed {}: {v}", t.id))?;
                let before = t.persisted;
                self.persist(&mut t).map_err(|e| format!("storing: {e}"))?;
                if t.persisted > before {
                    ch.stored(before, t.persisted - before);
                    let head = t.log.head();
                    drop(t);
                    self.changed.send_modify(|v| *v += 1);
                    if let Some(h) = head {
                        // tell our other peers (they may be followers of us)
                        self.announce(dk, h, Some(s.peer));
                    }
                } else {
                    drop(t);
                    self.changed.send_modify(|v| *v += 1);
                }
                self.drain(s, dk);
            }
            Event::Message(dk, Err(e)) => {
                // a malformed message spoils its channel only
                self.stats.bad_messages.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(peer = %s.peer, "malformed feed message: {e}");
                s.channels.remove(&dk);
                s.out.extend(s.mux.close(&dk));
            }
            Event::Closed(dk) => {
                s.channels.remove(&dk);
            }
            Event::Unknown => {}
        }
        Ok(())
    }

    /// Moves a channel's outgoing messages into the session's frames.
    fn drain(&self, s: &mut Session, dk: [u8; 32]) {
        let Some(ch) = s.channels.get_mut(&dk) else { return };
        while let Some(a) = ch.poll() {
            match a {
                Action::Send(m) => s.out.extend(s.mux.send(dk, &m)),
                Action::Acked { .. } => {
                    self.stats.acks_received.fetch_add(1, Ordering::Relaxed);
                }
                Action::Store { .. } => {
                    self.stats.entries_received.fetch_add(1, Ordering::Relaxed);
                }
                Action::Extension { .. } => {}
            }
        }
    }

    /// Writes the verified entries not yet stored, with their tree nodes
    /// and the best head, in one transaction.
    fn persist(&self, t: &mut Tracked) -> Result<(), shoal_log::store::LogStoreError> {
        let len = t.log.length();
        let Some(head) = t.log.head() else { return Ok(()) };
        if len <= t.persisted {
            return Ok(());
        }
        let entries: Vec<(u64, &[u8])> = (t.persisted..len)
            .map(|i| (i, t.log.entry(i).expect("within the prefix")))
            .collect();
        let nodes = t.log.tree().nodes_since(t.persisted);
        self.feeds.logs.append(&t.id.0, &entries, &nodes, &head)?;
        t.persisted = len;
        Ok(())
    }
}

async fn flush<W: futures::AsyncWrite + Unpin>(w: &mut W, out: &mut Vec<Frame>) -> std::io::Result<()> {
    use futures::AsyncWriteExt;
    if out.is_empty() {
        return Ok(());
    }
    for f in out.drain(..) {
        framing::write(w, &f.encode()).await?;
    }
    w.flush().await
}
