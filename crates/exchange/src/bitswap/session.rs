//! The fetching side of bitswap, sans-IO: which blocks to ask which peer
//! for, what to re-ask when a peer stalls or says DONT_HAVE, and which
//! peers to stop asking. Time comes in as `now`; nothing here reads a clock.

use super::message::{Entry, WantType};
use shoal_ipld::Cid;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Tuning of a session.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Most blocks requested and not yet received, over all peers.
    pub window: usize,
    /// Most outstanding requests per peer (enough to cover the round trip
    /// of a loopback or LAN peer serving 256 KiB–1 MiB blocks; checked
    /// against Helia in `tests/helia.rs`).
    pub per_peer: usize,
    /// A request unanswered this long is asked again (of another peer when
    /// there is one).
    pub timeout: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            window: 512,
            per_peer: 64,
            timeout: Duration::from_secs(5),
        }
    }
}

/// What happened to a received block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Wanted: store it and follow its links.
    Accept,
    /// Already received from someone else.
    Duplicate,
    /// Never asked for: drop it.
    Unrequested,
}

/// Counters for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    pub requested: u64,
    pub received: u64,
    pub duplicates: u64,
    pub unrequested: u64,
    pub timeouts: u64,
    pub dont_haves: u64,
}

struct Inflight<P> {
    peers: Vec<P>,
    sent: Instant,
}

/// One fetch: a growing set of wanted CIDs and the peers to ask.
pub struct Session<P> {
    cfg: SessionConfig,
    queue: VecDeque<Cid>,
    queued: HashSet<Cid>,
    inflight: HashMap<Cid, Inflight<P>>,
    received: HashSet<Cid>,
    peers: Vec<P>,
    load: HashMap<P, usize>,
    banned: HashSet<P>,
    refused: HashMap<Cid, HashSet<P>>,
    cancels: Vec<(P, Cid)>,
    seq: i32,
    pub stats: SessionStats,
}

impl<P: Hash + Eq + Clone> Session<P> {
    pub fn new(cfg: SessionConfig) -> Session<P> {
        Session {
            cfg,
            queue: VecDeque::new(),
            queued: HashSet::new(),
            inflight: HashMap::new(),
            received: HashSet::new(),
            peers: Vec::new(),
            load: HashMap::new(),
            banned: HashSet::new(),
            refused: HashMap::new(),
            cancels: Vec::new(),
            seq: i32::MAX,
            stats: SessionStats::default(),
        }
    }

    /// Adds a peer to ask (ignored if it was banned).
    pub fn add_peer(&mut self, peer: P) {
        if !self.banned.contains(&peer) && !self.peers.contains(&peer) {
            self.peers.push(peer);
        }
    }

    /// A peer went away: what it owed is asked of others.
    pub fn remove_peer(&mut self, peer: &P) {
        self.peers.retain(|p| p != peer);
        self.load.remove(peer);
        let owed: Vec<Cid> = self
            .inflight
            .iter()
            .filter(|(_, f)| f.peers.contains(peer))
            .map(|(c, _)| *c)
            .collect();
        for cid in owed {
            self.requeue(cid, peer);
        }
    }

    /// A peer lied (a bad block): never ask it again in this session.
    pub fn ban(&mut self, peer: &P) {
        self.banned.insert(peer.clone());
        self.remove_peer(peer);
    }

    pub fn is_banned(&self, peer: &P) -> bool {
        self.banned.contains(peer)
    }

    /// Wants `cid` (once; repeats are ignored).
    pub fn want(&mut self, cid: Cid) {
        if self.received.contains(&cid) || self.inflight.contains_key(&cid) || !self.queued.insert(cid) {
            return;
        }
        self.queue.push_back(cid);
    }

    /// Marks `cid` as already present locally.
    pub fn have(&mut self, cid: Cid) {
        self.received.insert(cid);
    }

    /// A block arrived from `peer` (its CID computed from its bytes).
    pub fn handle_block(&mut self, peer: &P, cid: Cid) -> Verdict {
        if let Some(f) = self.inflight.remove(&cid) {
            for p in &f.peers {
                self.unload(p);
                if p != peer {
                    self.cancels.push((p.clone(), cid));
                }
            }
            self.received.insert(cid);
            self.stats.received += 1;
            return Verdict::Accept;
        }
        if self.received.contains(&cid) {
            self.stats.duplicates += 1;
            return Verdict::Duplicate;
        }
        if self.queued.remove(&cid) {
            // asked for earlier, timed out, and still wanted: a late answer
            self.queue.retain(|c| *c != cid);
            self.received.insert(cid);
            self.stats.received += 1;
            return Verdict::Accept;
        }
        self.stats.unrequested += 1;
        Verdict::Unrequested
    }

    /// `peer` says it does not have `cid`.
    pub fn handle_dont_have(&mut self, peer: &P, cid: Cid) {
        self.stats.dont_haves += 1;
        self.refused.entry(cid).or_default().insert(peer.clone());
        if self.inflight.get(&cid).is_some_and(|f| f.peers.contains(peer)) {
            self.requeue(cid, peer);
        }
    }

    fn unload(&mut self, peer: &P) {
        if let Some(n) = self.load.get_mut(peer) {
            *n = n.saturating_sub(1);
        }
    }

    fn requeue(&mut self, cid: Cid, from: &P) {
        let Some(mut f) = self.inflight.remove(&cid) else {
            return;
        };
        f.peers.retain(|p| p != from);
        self.unload(from);
        if f.peers.is_empty() {
            if self.queued.insert(cid) {
                self.queue.push_front(cid);
            }
        } else {
            self.inflight.insert(cid, f);
        }
    }

    /// Requests to send now: wantlist entries per peer (with cancels).
    pub fn poll_requests(&mut self, now: Instant) -> Vec<(P, Vec<Entry>)> {
        self.expire(now);
        let mut out: HashMap<P, Vec<Entry>> = HashMap::new();
        for (peer, cid) in self.cancels.drain(..) {
            out.entry(peer).or_default().push(Entry {
                cid,
                priority: 0,
                cancel: true,
                want: WantType::Block,
                send_dont_have: false,
            });
        }
        let mut skipped = Vec::new();
        while self.inflight.len() < self.cfg.window {
            let Some(cid) = self.queue.pop_front() else { break };
            let Some(peer) = self.pick(&cid) else {
                skipped.push(cid);
                if self
                    .peers
                    .iter()
                    .all(|p| self.load.get(p).copied().unwrap_or(0) >= self.cfg.per_peer)
                {
                    break;
                }
                continue;
            };
            self.queued.remove(&cid);
            *self.load.entry(peer.clone()).or_default() += 1;
            self.inflight.insert(
                cid,
                Inflight {
                    peers: vec![peer.clone()],
                    sent: now,
                },
            );
            self.stats.requested += 1;
            self.seq = self.seq.saturating_sub(1).max(1);
            out.entry(peer).or_default().push(Entry {
                cid,
                priority: self.seq,
                cancel: false,
                want: WantType::Block,
                send_dont_have: true,
            });
        }
        for cid in skipped.into_iter().rev() {
            self.queue.push_front(cid);
        }
        out.into_iter().collect()
    }

    /// The least loaded peer that may still have `cid`.
    fn pick(&self, cid: &Cid) -> Option<P> {
        let refused = self.refused.get(cid);
        self.peers
            .iter()
            .filter(|p| refused.is_none_or(|r| !r.contains(*p)))
            .map(|p| (self.load.get(p).copied().unwrap_or(0), p))
            .filter(|(load, _)| *load < self.cfg.per_peer)
            .min_by_key(|(load, _)| *load)
            .map(|(_, p)| p.clone())
    }

    /// Requests older than the timeout go back in the queue (the stalled
    /// peer stays eligible only if no one else is).
    fn expire(&mut self, now: Instant) {
        let stale: Vec<(Cid, P)> = self
            .inflight
            .iter()
            .filter(|(_, f)| now.duration_since(f.sent) >= self.cfg.timeout)
            .filter_map(|(c, f)| f.peers.first().map(|p| (*c, p.clone())))
            .collect();
        for (cid, peer) in stale {
            self.stats.timeouts += 1;
            self.requeue(cid, &peer);
            if self.peers.len() > 1 {
                self.refused.entry(cid).or_default().insert(peer);
            }
        }
    }

    /// When `poll_requests` should be called again at the latest.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.inflight.values().map(|f| f.sent + self.cfg.timeout).min()
    }

    /// Nothing wanted and nothing outstanding.
    pub fn is_done(&self) -> bool {
        self.queue.is_empty() && self.inflight.is_empty()
    }

    /// Wanted blocks no current peer can be asked for (find more providers).
    pub fn is_stuck(&self) -> bool {
        !self.queue.is_empty()
            && self.queue.iter().all(|c| self.pick(c).is_none())
            && self.inflight.is_empty()
    }

    pub fn outstanding(&self) -> usize {
        self.queue.len() + self.inflight.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_ipld::block::cid_of;
    use shoal_ipld::Codec;

    fn cid(i: u32) -> Cid {
        cid_of(Codec::Raw, 1, &i.to_le_bytes())
    }

    fn cfg() -> SessionConfig {
        SessionConfig {
            window: 8,
            per_peer: 4,
            timeout: Duration::from_secs(5),
        }
    }

    fn asked(reqs: &[(&'static str, Vec<Entry>)], peer: &str) -> Vec<Cid> {
        reqs.iter()
            .filter(|(p, _)| *p == peer)
            .flat_map(|(_, e)| e.iter().filter(|e| !e.cancel).map(|e| e.cid))
            .collect()
    }

    #[test]
    fn spreads_wants_over_peers_within_limits() {
        let t0 = Instant::now();
        let mut s = Session::new(cfg());
        s.add_peer("a");
        s.add_peer("b");
        for i in 0..20 {
            s.want(cid(i));
        }
        let reqs = s.poll_requests(t0);
        assert_eq!(asked(&reqs, "a").len(), 4);
        assert_eq!(asked(&reqs, "b").len(), 4);
        assert!(s.poll_requests(t0).is_empty(), "window is full");
        let first = asked(&reqs, "a")[0];
        assert_eq!(s.handle_block(&"a", first), Verdict::Accept);
        assert_eq!(s.handle_block(&"a", first), Verdict::Duplicate);
        assert_eq!(s.handle_block(&"b", cid(999)), Verdict::Unrequested);
        assert_eq!(asked(&s.poll_requests(t0), "a").len(), 1);
    }

    #[test]
    fn dont_have_and_stalls_move_wants_to_other_peers() {
        let t0 = Instant::now();
        let mut s = Session::new(SessionConfig {
            window: 8,
            per_peer: 8,
            timeout: Duration::from_secs(5),
        });
        s.add_peer("slow");
        s.want(cid(1));
        s.want(cid(2));
        let reqs = s.poll_requests(t0);
        assert_eq!(asked(&reqs, "slow").len(), 2);
        s.add_peer("good");
        s.handle_dont_have(&"slow", cid(1));
        assert_eq!(asked(&s.poll_requests(t0), "good"), vec![cid(1)]);
        // cid(2) stalls on "slow": after the timeout it goes to "good"
        assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(5)));
        let later = t0 + Duration::from_secs(6);
        let reqs = s.poll_requests(later);
        assert_eq!(asked(&reqs, "good"), vec![cid(2)]);
        assert_eq!(s.stats.timeouts, 2);
        assert_eq!(s.handle_block(&"good", cid(1)), Verdict::Accept);
        assert_eq!(s.handle_block(&"good", cid(2)), Verdict::Accept);
        assert!(s.is_done());
    }

    #[test]
    fn a_banned_or_departed_peer_hands_its_wants_on() {
        let t0 = Instant::now();
        let mut s = Session::new(cfg());
        s.add_peer("liar");
        for i in 0..3 {
            s.want(cid(i));
        }
        assert_eq!(asked(&s.poll_requests(t0), "liar").len(), 3);
        s.ban(&"liar");
        s.add_peer("liar");
        assert!(s.is_stuck(), "no one left to ask");
        s.add_peer("honest");
        assert_eq!(asked(&s.poll_requests(t0), "honest").len(), 3);
        s.remove_peer(&"honest");
        s.add_peer("other");
        assert_eq!(asked(&s.poll_requests(t0), "other").len(), 3);
        for i in 0..3 {
            assert_eq!(s.handle_block(&"other", cid(i)), Verdict::Accept);
        }
        assert!(s.is_done());
    }
}
