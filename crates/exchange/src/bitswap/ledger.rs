//! The serving side of bitswap, sans-IO: each peer's wantlist, bounded, in
//! priority order. The shell asks what to answer next, looks the blocks up
//! in the store, and sends the message it builds.

use super::message::{Entry, Message, WantType, MAX_ENTRIES};
use shoal_ipld::Cid;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

/// Counters of refused or pointless input (exported as metrics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LedgerStats {
    /// Entries dropped because the peer's wantlist was full.
    pub over_limit: u64,
    /// Wants served with DONT_HAVE (or silently dropped).
    pub not_found: u64,
}

#[derive(Default)]
struct Wants {
    /// (priority descending, arrival) → entry
    queue: BTreeMap<(i64, u64), Entry>,
    /// cid → queue key, for cancels and replacements
    index: HashMap<Cid, (i64, u64)>,
}

/// Every peer's wantlist.
pub struct Ledger<P> {
    peers: HashMap<P, Wants>,
    seq: u64,
    limit: usize,
    pub stats: LedgerStats,
}

impl<P: Hash + Eq + Clone> Default for Ledger<P> {
    fn default() -> Self {
        Ledger {
            peers: HashMap::new(),
            seq: 0,
            limit: MAX_ENTRIES,
            stats: LedgerStats::default(),
        }
    }
}

/// What to do for one want: the shell looks up `cid` and answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    pub cid: Cid,
    pub want: WantType,
    pub send_dont_have: bool,
}

impl<P: Hash + Eq + Clone> Ledger<P> {
    /// Records a message's wantlist from `peer`.
    pub fn handle_message(&mut self, peer: &P, msg: &Message) {
        let wants = self.peers.entry(peer.clone()).or_default();
        if msg.full {
            wants.queue.clear();
            wants.index.clear();
        }
        for e in &msg.entries {
            if let Some(key) = wants.index.remove(&e.cid) {
                wants.queue.remove(&key);
            }
            if e.cancel {
                continue;
            }
            if wants.queue.len() >= self.limit {
                self.stats.over_limit += 1;
                continue;
            }
            self.seq += 1;
            let key = (-i64::from(e.priority), self.seq);
            wants.queue.insert(key, e.clone());
            wants.index.insert(e.cid, key);
        }
        if wants.queue.is_empty() {
            self.peers.remove(peer);
        }
    }

    /// Takes up to `max` wants of `peer` to answer, highest priority first.
    pub fn next_tasks(&mut self, peer: &P, max: usize) -> Vec<Task> {
        let Some(wants) = self.peers.get_mut(peer) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        while out.len() < max {
            let Some((_, e)) = wants.queue.pop_first() else {
                break;
            };
            wants.index.remove(&e.cid);
            out.push(Task {
                cid: e.cid,
                want: e.want,
                send_dont_have: e.send_dont_have,
            });
        }
        if wants.queue.is_empty() {
            self.peers.remove(peer);
        }
        out
    }

    /// Wants waiting for `peer`.
    pub fn pending(&self, peer: &P) -> usize {
        self.peers.get(peer).map_or(0, |w| w.queue.len())
    }

    /// Forgets a peer that disconnected.
    pub fn remove_peer(&mut self, peer: &P) {
        self.peers.remove(peer);
    }

    /// Records wants answered with DONT_HAVE.
    pub fn note_not_found(&mut self, n: u64) {
        self.stats.not_found += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_ipld::block::cid_of;
    use shoal_ipld::Codec;

    fn entry(i: u32, priority: i32, cancel: bool) -> Entry {
        Entry {
            cid: cid_of(Codec::Raw, 1, &i.to_le_bytes()),
            priority,
            cancel,
            want: WantType::Block,
            send_dont_have: true,
        }
    }

    #[test]
    fn serves_by_priority_and_honours_cancels() {
        let mut l = Ledger::default();
        let msg = Message {
            entries: vec![entry(1, 1, false), entry(2, 9, false), entry(3, 5, false)],
            ..Default::default()
        };
        l.handle_message(&"a", &msg);
        l.handle_message(
            &"a",
            &Message {
                entries: vec![entry(3, 0, true)],
                ..Default::default()
            },
        );
        let tasks = l.next_tasks(&"a", 10);
        assert_eq!(
            tasks.iter().map(|t| t.cid).collect::<Vec<_>>(),
            vec![entry(2, 0, false).cid, entry(1, 0, false).cid]
        );
        assert_eq!(l.pending(&"a"), 0);
    }

    #[test]
    fn a_wantlist_is_bounded_and_a_full_one_replaces() {
        let mut l = Ledger::default();
        let flood = Message {
            entries: (0..3000).map(|i| entry(i, 1, false)).collect(),
            ..Default::default()
        };
        l.handle_message(&"a", &flood);
        assert_eq!(l.pending(&"a"), MAX_ENTRIES);
        assert_eq!(l.stats.over_limit, 3000 - MAX_ENTRIES as u64);
        l.handle_message(
            &"a",
            &Message {
                entries: vec![entry(7, 1, false)],
                full: true,
                ..Default::default()
            },
        );
        assert_eq!(l.pending(&"a"), 1);
        l.remove_peer(&"a");
        assert_eq!(l.pending(&"a"), 0);
    }
}
