//! The multi-source scheduler, sans-IO: splits the work of a fetch (the
//! subtrees still missing, with their estimated sizes) among every peer
//! that has the data, keeps each peer's outstanding work proportional to
//! its measured throughput, takes work back from peers that stall, and in
//! the endgame duplicates the last outstanding subtrees onto idle peers.
//!
//! The caller turns an assignment into a request (one sync request with
//! the subtrees as `want`), reports bytes as they arrive (`progress`),
//! subtrees as they complete (`complete`) and requests that end early
//! (`failed`), calls `tick` now and then, and asks `next` for more work
//! whenever something changed. Time is an argument everywhere, so the
//! whole thing runs on a virtual clock in tests.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

/// Tuning.
#[derive(Clone, Debug)]
pub struct Config {
    /// Work a peer holds at least (bytes), so a new peer can show its speed.
    pub min_window: u64,
    /// Work a peer holds at most (bytes).
    pub max_window: u64,
    /// How much time's worth of a peer's throughput it is given at once.
    pub horizon: Duration,
    /// A peer with work and no progress for this long has stalled.
    pub stall: Duration,
    /// Throughput assumed for a peer not yet measured (bytes/s).
    pub initial_rate: f64,
    /// Copies of one subtree in flight at most during the endgame.
    pub max_copies: usize,
    /// Requests in flight to one peer at most (servers limit them).
    pub max_requests: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            min_window: 256 << 10,
            max_window: 256 << 20,
            horizon: Duration::from_millis(400),
            stall: Duration::from_secs(10),
            initial_rate: 4e6,
            max_copies: 2,
            max_requests: 3,
        }
    }
}

/// A piece of work: a subtree, named by `K` (a CID in the node), with its
/// estimated size in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Item<K> {
    pub key: K,
    pub size: u64,
}

#[derive(Debug)]
struct Peer<K> {
    /// Subtrees assigned and not complete, with their sizes.
    work: BTreeMap<K, u64>,
    outstanding: u64,
    /// Throughput estimate (bytes/s), an average over recent intervals.
    rate: f64,
    measured: bool,
    /// Progress since `window_start`, for the next rate sample.
    window_bytes: u64,
    window_start: Instant,
    last_progress: Instant,
    received: u64,
    /// Time from a request to its first byte, an average.
    rtt: Duration,
    /// When the peer was given work while idle (for the next rtt sample).
    asked_at: Option<Instant>,
    requests: usize,
}

/// Why a peer was taken out of the fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    Stalled,
    Removed,
}

#[derive(Debug)]
pub struct Scheduler<P, K> {
    cfg: Config,
    queue: VecDeque<Item<K>>,
    peers: BTreeMap<P, Peer<K>>,
    /// Who works on each subtree in flight (more than one in the endgame).
    owners: BTreeMap<K, BTreeSet<P>>,
    sizes: BTreeMap<K, u64>,
    done: BTreeSet<K>,
    pub duplicated: u64,
}

impl<P: Copy + Ord, K: Copy + Ord> Scheduler<P, K> {
    pub fn new(cfg: Config) -> Self {
        Scheduler {
            cfg,
            queue: VecDeque::new(),
            peers: BTreeMap::new(),
            owners: BTreeMap::new(),
            sizes: BTreeMap::new(),
            done: BTreeSet::new(),
            duplicated: 0,
        }
    }

    /// More work (subtrees found missing). Known or finished ones are ignored.
    pub fn push(&mut self, items: impl IntoIterator<Item = Item<K>>) {
        for it in items {
            if self.done.contains(&it.key) || self.sizes.contains_key(&it.key) {
                continue;
            }
            self.sizes.insert(it.key, it.size);
            self.queue.push_back(it);
        }
    }

    pub fn add_peer(&mut self, p: P, now: Instant) {
        self.peers.entry(p).or_insert(Peer {
            work: BTreeMap::new(),
            outstanding: 0,
            rate: self.cfg.initial_rate,
            measured: false,
            window_bytes: 0,
            window_start: now,
            last_progress: now,
            received: 0,
            rtt: Duration::from_millis(100),
            asked_at: None,
            requests: 0,
        });
    }

    /// Takes a peer out (it lied, left, or the caller gave up on it); its
    /// work goes back to the front of the queue.
    pub fn remove_peer(&mut self, p: P) -> Dropped {
        if let Some(peer) = self.peers.remove(&p) {
            for (key, _) in peer.work.into_iter().rev() {
                self.release(p, key);
            }
        }
        Dropped::Removed
    }

    fn release(&mut self, p: P, key: K) {
        let Some(owners) = self.owners.get_mut(&key) else {
            return;
        };
        owners.remove(&p);
        if owners.is_empty() {
            self.owners.remove(&key);
            if !self.done.contains(&key) {
                let size = self.sizes[&key];
                self.queue.push_front(Item { key, size });
            }
        }
    }

    pub fn peers(&self) -> impl Iterator<Item = &P> {
        self.peers.keys()
    }

    /// Nothing queued and nothing in flight.
    pub fn is_done(&self) -> bool {
        self.queue.is_empty() && self.owners.is_empty()
    }

    pub fn in_flight(&self) -> usize {
        self.owners.len()
    }

    /// The throughput estimate of a peer (bytes/s).
    pub fn rate(&self, p: &P) -> Option<f64> {
        self.peers.get(p).map(|x| x.rate)
    }

    /// Work to keep on a peer: its throughput over the round trip plus the
    /// horizon (a few times the minimum until it has been measured).
    fn window(&self, peer: &Peer<K>) -> u64 {
        if !peer.measured {
            return self.cfg.min_window * 4;
        }
        let w = (peer.rate * (peer.rtt + self.cfg.horizon).as_secs_f64()) as u64;
        w.clamp(self.cfg.min_window, self.cfg.max_window)
    }

    /// The round-trip estimate of a peer.
    pub fn rtt(&self, p: &P) -> Option<Duration> {
        self.peers.get(p).map(|x| x.rtt)
    }

    /// The next request to make: a peer with room in its window and the
    /// subtrees to ask it for. Call until `None` after every change.
    pub fn next(&mut self, now: Instant) -> Option<(P, Vec<K>)> {
        // the peer with the most room relative to its window asks first
        let (p, room) = self
            .peers
            .iter()
            .filter(|(_, x)| x.requests < self.cfg.max_requests)
            .map(|(p, x)| (*p, self.window(x).saturating_sub(x.outstanding)))
            .filter(|(_, room)| *room > 0)
            .max_by_key(|(_, room)| *room)?;
        let mut keys = Vec::new();
        let mut taken = 0u64;
        while let Some(it) = self.queue.front().copied() {
            if self.done.contains(&it.key) || self.owners.contains_key(&it.key) {
                self.queue.pop_front(); // finished, or handed out again, meanwhile
                continue;
            }
            if !keys.is_empty() && taken + it.size > room {
                break;
            }
            self.queue.pop_front();
            taken += it.size;
            keys.push(it.key);
        }
        if keys.is_empty() {
            keys = self.endgame(p, now)?;
            self.duplicated += keys.len() as u64;
        }
        let peer = self.peers.get_mut(&p).expect("chosen above");
        peer.requests += 1;
        if peer.work.is_empty() {
            // the clocks for stall detection and the round trip start with the work
            peer.last_progress = now;
            peer.asked_at = Some(now);
        }
        for k in &keys {
            let size = self.sizes[k];
            peer.work.insert(*k, size);
            peer.outstanding += size;
            self.owners.entry(*k).or_default().insert(p);
        }
        Some((p, keys))
    }

    /// Nothing queued: copy the subtree expected to finish last onto `p`,
    /// if `p` would finish it sooner than its current owners.
    fn endgame(&self, p: P, now: Instant) -> Option<Vec<K>> {
        let me = &self.peers[&p];
        let mut best: Option<(f64, K)> = None;
        for (key, owners) in &self.owners {
            if owners.contains(&p) || owners.len() >= self.cfg.max_copies {
                continue;
            }
            // when its fastest owner will be done with everything it holds
            let finish = owners
                .iter()
                .map(|o| {
                    let x = &self.peers[o];
                    let since = now.saturating_duration_since(x.last_progress).as_secs_f64();
                    x.outstanding as f64 / x.rate.max(1.0) + since
                })
                .fold(f64::INFINITY, f64::min);
            let mine = (me.outstanding + self.sizes[key]) as f64 / me.rate.max(1.0);
            // only a clear gain is worth the duplicate bytes
            if mine * 2.0 < finish && best.is_none_or(|(f, _)| finish > f) {
                best = Some((finish, *key));
            }
        }
        best.map(|(_, k)| vec![k])
    }

    /// A request made for an assignment of `p`'s has ended (whatever it
    /// brought: report that with `complete` and `failed`).
    pub fn request_ended(&mut self, p: P) {
        if let Some(x) = self.peers.get_mut(&p) {
            x.requests = x.requests.saturating_sub(1);
        }
    }

    /// `bytes` arrived from `p`.
    pub fn progress(&mut self, p: P, bytes: u64, now: Instant) {
        let Some(x) = self.peers.get_mut(&p) else { return };
        x.received += bytes;
        x.window_bytes += bytes;
        x.last_progress = now;
        if let Some(asked) = x.asked_at.take() {
            let sample = now.saturating_duration_since(asked);
            x.rtt = (x.rtt * 3 + sample) / 4;
            x.window_start = now;
            x.window_bytes = 0;
            return; // the first bytes measure the round trip, not the rate
        }
        let span = now.saturating_duration_since(x.window_start);
        // a first estimate as soon as a window's worth arrived, then steady samples
        let first = !x.measured && x.window_bytes >= self.cfg.min_window && span >= Duration::from_millis(5);
        if span >= Duration::from_millis(200) || first {
            let sample = x.window_bytes as f64 / span.as_secs_f64();
            x.rate = if x.measured {
                0.7 * x.rate + 0.3 * sample
            } else {
                sample
            };
            x.measured = true;
            x.window_bytes = 0;
            x.window_start = now;
        }
    }

    /// The subtree `key` is complete (whoever sent it).
    pub fn complete(&mut self, key: K) {
        self.done.insert(key);
        if let Some(owners) = self.owners.remove(&key) {
            for o in owners {
                if let Some(x) = self.peers.get_mut(&o) {
                    if let Some(size) = x.work.remove(&key) {
                        x.outstanding -= size;
                    }
                }
            }
        }
    }

    /// A request of `p`'s ended without these subtrees: they go back to
    /// the queue (unless another peer has them in flight).
    pub fn failed(&mut self, p: P, keys: &[K]) {
        for k in keys {
            if let Some(x) = self.peers.get_mut(&p) {
                if let Some(size) = x.work.remove(k) {
                    x.outstanding -= size;
                }
            }
            self.release(p, *k);
        }
    }

    /// Peers that have had work and no progress for the stall time: their
    /// work is taken back and they are dropped from this fetch.
    pub fn tick(&mut self, now: Instant) -> Vec<P> {
        let stalled: Vec<P> = self
            .peers
            .iter()
            .filter(|(_, x)| {
                !x.work.is_empty() && now.saturating_duration_since(x.last_progress) >= self.cfg.stall
            })
            .map(|(p, _)| *p)
            .collect();
        for p in &stalled {
            self.remove_peer(*p);
        }
        stalled
    }
}
