//! Replicating one log with one peer, sans-IO: feed the peer's messages to
//! [`Channel::handle`], act on what [`Channel::poll`] returns (send a
//! message, store entries, report acks and extension messages).
//!
//! Nothing from the peer is trusted: heads must carry the writer's
//! signature, entries must come with a range proof against such a head,
//! and a head must extend the history we hold (same fork). Entries are
//! accepted in any order; the verified prefix grows as gaps fill. The
//! caller confirms storage with [`Channel::stored`], which acknowledges it
//! to the peer (`Have` with `ack`), so a writer learns what followers hold.

use crate::tree::{SignedHead, Tree, TreeError};
use crate::wire::{Message, MAX_ENTRIES};
use ed25519_dalek::{SigningKey, VerifyingKey};
use std::collections::{BTreeMap, HashSet, VecDeque};

/// Entries asked for in one `Want`.
pub const WANT_BATCH: u64 = 256;
/// Entries held out of order (beyond the verified prefix) at most.
pub const MAX_PENDING: usize = 4096;

/// What the caller does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    Send(Message),
    /// Verified entries to persist, then confirm with `stored`.
    Store {
        index: u64,
        data: Vec<u8>,
    },
    /// The peer durably holds entries `start..start+length`.
    Acked {
        start: u64,
        length: u64,
    },
    /// A message for a registered extension (untrusted bytes).
    Extension {
        name: String,
        payload: Vec<u8>,
    },
}

/// Why the peer's message was refused (the peer is at fault).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Violation {
    #[error("a head not signed by the log's key")]
    BadHead,
    #[error("entries that do not prove against their head: {0}")]
    BadProof(TreeError),
    #[error("a head from another fork ({0}, ours {1})")]
    Fork(u64, u64),
    #[error("entries nobody asked for")]
    Unrequested,
}

/// One log's state on this node.
#[derive(Debug)]
pub struct Log {
    key: VerifyingKey,
    signer: Option<SigningKey>,
    tree: Tree,
    entries: Vec<Vec<u8>>,
    /// The best verified head we know (ours or a peer's).
    head: Option<SignedHead>,
    /// Verified entries beyond our contiguous prefix.
    pending: BTreeMap<u64, Vec<u8>>,
}

impl Log {
    /// A log we follow.
    pub fn follower(key: VerifyingKey) -> Log {
        Log {
            key,
            signer: None,
            tree: Tree::default(),
            entries: Vec::new(),
            head: None,
            pending: BTreeMap::new(),
        }
    }

    /// A log we write.
    pub fn writer(signer: SigningKey) -> Log {
        let mut log = Log::follower(signer.verifying_key());
        log.signer = Some(signer);
        log
    }

    /// A log as stored: its verified prefix, tree and best known head.
    pub fn restore(key: VerifyingKey, signer: Option<SigningKey>, stored: crate::store::Stored) -> Log {
        Log {
            key,
            signer,
            tree: stored.tree,
            entries: stored.entries,
            head: Some(stored.head),
            pending: BTreeMap::new(),
        }
    }

    pub fn length(&self) -> u64 {
        self.tree.length()
    }

    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }

    pub fn head(&self) -> Option<SignedHead> {
        self.head
    }

    pub fn entry(&self, index: u64) -> Option<&[u8]> {
        self.entries.get(index as usize).map(|e| &e[..])
    }

    /// Appends (writer only) and signs the new head.
    pub fn append(&mut self, data: &[u8]) -> Option<SignedHead> {
        let signer = self.signer.as_ref()?;
        self.tree.append(data);
        self.entries.push(data.to_vec());
        let head = self.tree.sign(signer);
        self.head = Some(head);
        Some(head)
    }

    /// Moves verified pending entries onto the prefix.
    fn absorb(&mut self) {
        while let Some(data) = self.pending.remove(&self.tree.length()) {
            self.tree.append(&data);
            self.entries.push(data);
        }
    }
}

/// Replication with one peer.
#[derive(Debug, Default)]
pub struct Channel {
    out: VecDeque<Action>,
    extensions: HashSet<String>,
    /// Entries we asked this peer for and have not received.
    asked: BTreeMap<u64, u64>,
    /// What the peer said it holds (start, length).
    pub remote_have: Option<(u64, u64)>,
    pub ignored_extensions: u64,
}

impl Channel {
    /// Opens the channel: tells the peer our head.
    pub fn open(log: &Log) -> Channel {
        let mut c = Channel::default();
        if let Some(h) = log.head() {
            c.out.push_back(Action::Send(Message::Head(h)));
        }
        c
    }

    /// Accepts messages for extension `name` from now on.
    pub fn register_extension(&mut self, name: &str) {
        self.extensions.insert(name.to_owned());
    }

    /// Tells the peer about a new head of ours.
    pub fn announce(&mut self, head: SignedHead) {
        self.out.push_back(Action::Send(Message::Head(head)));
    }

    /// The caller stored entries `index..index+length` durably.
    pub fn stored(&mut self, start: u64, length: u64) {
        self.out.push_back(Action::Send(Message::Have {
            start,
            length,
            ack: true,
        }));
    }

    pub fn poll(&mut self) -> Option<Action> {
        self.out.pop_front()
    }

    pub fn handle(&mut self, log: &mut Log, msg: Message) -> Result<(), Violation> {
        match msg {
            Message::Head(h) => self.on_head(log, h),
            Message::Have { start, length, ack } => {
                self.remote_have = Some((start, length));
                if ack {
                    self.out.push_back(Action::Acked { start, length });
                }
                Ok(())
            }
            Message::Want { start, length } => {
                self.on_want(log, start, length);
                Ok(())
            }
            Message::Data { head, entries, proof } => self.on_data(log, head, entries, proof),
            Message::Extension { name, payload } => {
                if self.extensions.contains(&name) {
                    self.out.push_back(Action::Extension { name, payload });
                } else {
                    self.ignored_extensions += 1;
                }
                Ok(())
            }
        }
    }

    fn check_head(&self, log: &Log, h: &SignedHead) -> Result<(), Violation> {
        h.verify(&log.key).map_err(|_| Violation::BadHead)?;
        if let Some(ours) = log.head {
            if h.fork != ours.fork {
                return Err(Violation::Fork(h.fork, ours.fork));
            }
        }
        Ok(())
    }

    fn on_head(&mut self, log: &mut Log, h: SignedHead) -> Result<(), Violation> {
        self.check_head(log, &h)?;
        if log.head.is_none_or(|ours| h.length > ours.length) {
            log.head = Some(h);
        }
        // ask for what we miss, a batch at a time
        let mut start = log.length();
        while start < h.length && self.asked.len() < 4 {
            let n = WANT_BATCH.min(h.length - start);
            if !self.asked.contains_key(&start) && !log.pending.contains_key(&start) {
                self.asked.insert(start, n);
                self.out
                    .push_back(Action::Send(Message::Want { start, length: n }));
            }
            start += n;
        }
        Ok(())
    }

    fn on_want(&mut self, log: &Log, start: u64, length: u64) {
        let end = start
            .saturating_add(length.min(MAX_ENTRIES as u64))
            .min(log.length());
        let (Some(_), true) = (log.head, start < end) else {
            return;
        };
        // prove against a head at our current length (ours is the best we hold fully)
        let Ok(proof) = log.tree.range_proof(start, end) else {
            return;
        };
        let head = match (log.signer.as_ref(), log.head) {
            (Some(s), _) => log.tree.sign(s),
            (None, Some(h)) if h.length == log.length() => h,
            _ => return, // we hold a prefix of a longer head: a follower proves only full heads
        };
        let entries = (start..end).map(|i| log.entries[i as usize].clone()).collect();
        self.out
            .push_back(Action::Send(Message::Data { head, entries, proof }));
    }

    fn on_data(
        &mut self,
        log: &mut Log,
        head: SignedHead,
        entries: Vec<Vec<u8>>,
        proof: crate::tree::RangeProof,
    ) -> Result<(), Violation> {
        if !self
            .asked
            .keys()
            .any(|&s| s <= proof.start && proof.start < s + self.asked[&s])
        {
            return Err(Violation::Unrequested);
        }
        self.check_head(log, &head)?;
        let refs: Vec<&[u8]> = entries.iter().map(|e| &e[..]).collect();
        proof.verify(&refs, &head).map_err(Violation::BadProof)?;
        self.asked
            .retain(|&s, n| !(s >= proof.start && s + *n <= proof.end));
        for (k, data) in entries.into_iter().enumerate() {
            let index = proof.start + k as u64;
            if index < log.length() || log.pending.contains_key(&index) {
                continue;
            }
            if log.pending.len() >= MAX_PENDING {
                break;
            }
            self.out.push_back(Action::Store {
                index,
                data: data.clone(),
            });
            log.pending.insert(index, data);
        }
        log.absorb();
        if log.head.is_none_or(|ours| head.length > ours.length) {
            log.head = Some(head);
        }
        // keep asking while the head is ahead of us
        self.on_head(log, log.head.expect("set above"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Moves messages between two channels until both are quiet; returns
    /// the actions other than sends, per side.
    fn pump(a: (&mut Channel, &mut Log), b: (&mut Channel, &mut Log)) -> (Vec<Action>, Vec<Action>) {
        let (ca, la) = a;
        let (cb, lb) = b;
        let (mut ra, mut rb) = (Vec::new(), Vec::new());
        for _ in 0..10_000 {
            let mut moved = false;
            while let Some(act) = ca.poll() {
                moved = true;
                match act {
                    Action::Send(m) => cb.handle(lb, m).unwrap(),
                    other => ra.push(other),
                }
            }
            while let Some(act) = cb.poll() {
                moved = true;
                match act {
                    Action::Send(m) => ca.handle(la, m).unwrap(),
                    other => rb.push(other),
                }
            }
            if !moved {
                return (ra, rb);
            }
        }
        panic!("never quiet");
    }

    fn writer_with(n: u64) -> Log {
        let mut w = Log::writer(SigningKey::from_bytes(&[9u8; 32]));
        for i in 0..n {
            w.append(format!("snapshot {i}").as_bytes());
        }
        w
    }

    #[test]
    fn a_follower_catches_up_and_its_acks_reach_the_writer() {
        let mut w = writer_with(700);
        let mut f = Log::follower(w.key);
        let mut cw = Channel::open(&w);
        let mut cf = Channel::open(&f);
        let (acts_w, acts_f) = pump((&mut cw, &mut w), (&mut cf, &mut f));
        assert_eq!(f.length(), 700);
        assert_eq!(f.tree.hash(), w.tree.hash());
        let stored: Vec<u64> = acts_f
            .iter()
            .filter_map(|a| {
                if let Action::Store { index, .. } = a {
                    Some(*index)
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(stored, (0..700).collect::<Vec<_>>());
        assert!(acts_w.is_empty(), "no ack before the follower says it stored");
        // the follower confirms durable storage; the writer learns it
        cf.stored(0, 700);
        let (acts_w, _) = pump((&mut cw, &mut w), (&mut cf, &mut f));
        assert_eq!(
            acts_w,
            vec![Action::Acked {
                start: 0,
                length: 700
            }]
        );

        // the writer appends; only the new entries travel
        let head = w.append(b"snapshot 700").unwrap();
        cw.announce(head);
        let (_, acts_f) = pump((&mut cw, &mut w), (&mut cf, &mut f));
        assert_eq!(f.length(), 701);
        assert_eq!(acts_f.len(), 1);
    }

    #[test]
    fn forged_heads_and_entries_are_refused() {
        let w = writer_with(10);
        let mut f = Log::follower(w.key);
        let mut cf = Channel::open(&f);
        // a head signed by someone else
        let mut other = Log::writer(SigningKey::from_bytes(&[1u8; 32]));
        other.append(b"x");
        assert_eq!(
            cf.handle(&mut f, Message::Head(other.head().unwrap())),
            Err(Violation::BadHead)
        );
        // entries nobody asked for
        let head = w.head().unwrap();
        let proof = w.tree.range_proof(0, 2).unwrap();
        let data = Message::Data {
            head,
            entries: vec![w.entries[0].clone(), w.entries[1].clone()],
            proof: proof.clone(),
        };
        assert_eq!(cf.handle(&mut f, data), Err(Violation::Unrequested));
        // asked for, but changed
        cf.handle(&mut f, Message::Head(head)).unwrap();
        let forged = Message::Data {
            head,
            entries: vec![b"forged".to_vec(), w.entries[1].clone()],
            proof,
        };
        assert!(matches!(cf.handle(&mut f, forged), Err(Violation::BadProof(_))));
        assert_eq!(f.length(), 0);
    }

    #[test]
    fn reordered_truncated_and_forked_input_is_handled() {
        let w = writer_with(600);
        let head = w.head().unwrap();
        let data = |start: u64, end: u64| Message::Data {
            head,
            entries: (start..end).map(|i| w.entries[i as usize].clone()).collect(),
            proof: w.tree.range_proof(start, end).unwrap(),
        };
        // the second batch arrives first: held, then absorbed when the gap fills
        let mut f = Log::follower(w.key);
        let mut c = Channel::open(&f);
        c.handle(&mut f, Message::Head(head)).unwrap();
        c.handle(&mut f, data(256, 512)).unwrap();
        assert_eq!(f.length(), 0);
        c.handle(&mut f, data(0, 256)).unwrap();
        assert_eq!(f.length(), 512);
        // a batch with an entry cut off no longer proves
        let Message::Data {
            head,
            mut entries,
            proof,
        } = data(512, 600)
        else {
            unreachable!()
        };
        entries.pop();
        let cut = Message::Data { head, entries, proof };
        assert!(matches!(c.handle(&mut f, cut), Err(Violation::BadProof(_))));
        assert_eq!(f.length(), 512);
        // a head of another fork (the writer truncated and rewrote history)
        let key = SigningKey::from_bytes(&[9u8; 32]);
        let mut forked = w.tree.clone();
        forked.truncate(100).unwrap();
        forked.append(b"rewritten");
        let forked_head = forked.sign(&key);
        assert_eq!(
            c.handle(&mut f, Message::Head(forked_head)),
            Err(Violation::Fork(forked_head.fork, 0))
        );
        assert_eq!(f.length(), 512, "nothing of the other fork is taken");
    }

    #[test]
    fn extensions_are_delivered_only_when_registered() {
        let mut w = writer_with(1);
        let mut c = Channel::open(&w);
        let msg = |n: &str| Message::Extension {
            name: n.into(),
            payload: b"hi".to_vec(),
        };
        c.handle(&mut w, msg("unknown")).unwrap();
        assert_eq!(c.ignored_extensions, 1);
        c.register_extension("shoal/hint");
        c.handle(&mut w, msg("shoal/hint")).unwrap();
        let acts: Vec<Action> = std::iter::from_fn(|| c.poll()).collect();
        assert!(acts.contains(&Action::Extension {
            name: "shoal/hint".into(),
            payload: b"hi".to_vec()
        }));
    }
}
