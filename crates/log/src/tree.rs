//! The Merkle tree over a log's entries, its signed head, and inclusion
//! proofs. Hashes (SHA-256, with a type byte so a leaf can never pass for
//! a parent; sizes little-endian):
//!
//! ```text
//! leaf   = H(0x00 || u64 len || data)
//! parent = H(0x01 || u64 size(left)+size(right) || left.hash || right.hash)
//! tree   = H(0x02 || for each root, left to right: root.hash || u64 index || u64 size)
//! signed = ed25519("shoal-log/1\0" || u64 fork || u64 length || tree)
//! ```

use crate::flat;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

const DOMAIN: &[u8] = b"shoal-log/1\0";

/// One node of the tree: a leaf (an entry) or a parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Node {
    pub index: u64,
    pub hash: [u8; 32],
    /// Bytes of all entries under this node.
    pub size: u64,
}

impl Node {
    pub fn leaf(entry: u64, data: &[u8]) -> Node {
        let mut h = Sha256::new();
        h.update([0x00]);
        h.update((data.len() as u64).to_le_bytes());
        h.update(data);
        Node {
            index: entry * 2,
            hash: h.finalize().into(),
            size: data.len() as u64,
        }
    }

    pub fn parent(left: &Node, right: &Node) -> Node {
        let size = left.size + right.size;
        let mut h = Sha256::new();
        h.update([0x01]);
        h.update(size.to_le_bytes());
        h.update(left.hash);
        h.update(right.hash);
        Node {
            index: flat::parent(left.index),
            hash: h.finalize().into(),
            size,
        }
    }
}

/// The hash naming a whole tree: its roots, in order.
pub fn tree_hash(roots: &[Node]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0x02]);
    for r in roots {
        h.update(r.hash);
        h.update(r.index.to_le_bytes());
        h.update(r.size.to_le_bytes());
    }
    h.finalize().into()
}

/// What the writer signs: the log at one length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignedHead {
    /// Bumped whenever the log is truncated (a new history).
    pub fork: u64,
    pub length: u64,
    pub tree_hash: [u8; 32],
    pub signature: [u8; 64],
}

fn signable(fork: u64, length: u64, tree_hash: &[u8; 32]) -> Vec<u8> {
    let mut m = DOMAIN.to_vec();
    m.extend_from_slice(&fork.to_le_bytes());
    m.extend_from_slice(&length.to_le_bytes());
    m.extend_from_slice(tree_hash);
    m
}

impl SignedHead {
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), TreeError> {
        let sig = Signature::from_bytes(&self.signature);
        key.verify_strict(&signable(self.fork, self.length, &self.tree_hash), &sig)
            .map_err(|_| TreeError::BadSignature)
    }
}

/// Proof that entry `entry` (with given bytes) is in a log of `length`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proof {
    pub entry: u64,
    /// Siblings from the leaf up to the root that covers it.
    pub path: Vec<Node>,
    /// All roots of the tree at `length`.
    pub roots: Vec<Node>,
}

/// Proof that entries `start..end` (given with the proof) are in a log:
/// the sibling nodes none of those entries can produce, plus the roots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeProof {
    pub start: u64,
    pub end: u64,
    pub nodes: Vec<Node>,
    pub roots: Vec<Node>,
}

/// Proof that a log at a new length extends the log at an old length
/// (append-only: same entries, more of them): for each old root, the
/// siblings up to the new root that covers it, plus the new roots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpgradeProof {
    pub old_length: u64,
    pub paths: Vec<Vec<Node>>,
    pub roots: Vec<Node>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TreeError {
    #[error("the signature does not match the log head")]
    BadSignature,
    #[error("entry {0} is beyond the log's length {1}")]
    OutOfRange(u64, u64),
    #[error("bad proof: {0}")]
    BadProof(&'static str),
}

/// A log's tree in memory (the caller persists the nodes).
#[derive(Clone, Debug, Default)]
pub struct Tree {
    nodes: BTreeMap<u64, Node>,
    length: u64,
    pub fork: u64,
}

impl Tree {
    pub fn length(&self) -> u64 {
        self.length
    }

    /// A tree of `length` entries from stored nodes (those beyond `length`
    /// are dropped).
    pub fn from_nodes(length: u64, fork: u64, nodes: Vec<Node>) -> Tree {
        let nodes = nodes
            .into_iter()
            .filter(|n| flat::span(n.index).1 < length * 2)
            .map(|n| (n.index, n))
            .collect();
        Tree { nodes, length, fork }
    }

    pub fn node(&self, index: u64) -> Option<&Node> {
        self.nodes.get(&index)
    }

    /// The nodes that appending entries `from..length` created (the leaves
    /// and every parent they completed), for the caller to store.
    pub fn nodes_since(&self, from: u64) -> Vec<Node> {
        let mut out = Vec::new();
        for entry in from..self.length {
            let mut i = 2 * entry;
            while let Some(n) = self.nodes.get(&i) {
                out.push(*n);
                if flat::offset(i).is_multiple_of(2) {
                    break; // a left child: its parent is completed by a later entry
                }
                i = flat::parent(i);
            }
        }
        out
    }

    /// Appends one entry; returns the nodes created (the leaf and every
    /// parent it completes), for the caller to store.
    pub fn append(&mut self, data: &[u8]) -> Vec<Node> {
        let mut node = Node::leaf(self.length, data);
        let mut created = vec![node];
        self.nodes.insert(node.index, node);
        // climb while the left sibling exists (we are a right child)
        while flat::offset(node.index) % 2 == 1 {
            let left = self.nodes[&flat::sibling(node.index)];
            node = Node::parent(&left, &node);
            self.nodes.insert(node.index, node);
            created.push(node);
        }
        self.length += 1;
        created
    }

    pub fn roots(&self) -> Vec<Node> {
        flat::full_roots(self.length)
            .iter()
            .map(|i| self.nodes[i])
            .collect()
    }

    pub fn hash(&self) -> [u8; 32] {
        tree_hash(&self.roots())
    }

    /// Signs the current head.
    pub fn sign(&self, key: &SigningKey) -> SignedHead {
        let tree_hash = self.hash();
        let sig = key.sign(&signable(self.fork, self.length, &tree_hash));
        SignedHead {
            fork: self.fork,
            length: self.length,
            tree_hash,
            signature: sig.to_bytes(),
        }
    }

    /// Proof that the log now extends what it was at `old_length`.
    pub fn upgrade_proof(&self, old_length: u64) -> Result<UpgradeProof, TreeError> {
        if old_length > self.length {
            return Err(TreeError::OutOfRange(old_length, self.length));
        }
        let roots = self.roots();
        let paths = flat::full_roots(old_length)
            .into_iter()
            .map(|mut i| {
                let mut path = Vec::new();
                while !roots.iter().any(|r| r.index == i) {
                    path.push(self.nodes[&flat::sibling(i)]);
                    i = flat::parent(i);
                }
                path
            })
            .collect();
        Ok(UpgradeProof {
            old_length,
            paths,
            roots,
        })
    }

    /// Proof that entries `start..end` are in the log at its current length.
    pub fn range_proof(&self, start: u64, end: u64) -> Result<RangeProof, TreeError> {
        if start >= end || end > self.length {
            return Err(TreeError::OutOfRange(end, self.length));
        }
        let roots = self.roots();
        let root_set: Vec<u64> = roots.iter().map(|r| r.index).collect();
        let mut known: BTreeMap<u64, ()> = (start..end).map(|e| (e * 2, ())).collect();
        let mut nodes = Vec::new();
        // climb level by level: a sibling nobody below can compute goes in the proof
        loop {
            let below: Vec<u64> = known.keys().copied().filter(|i| !root_set.contains(i)).collect();
            if below.is_empty() {
                break;
            }
            for i in below {
                known.remove(&i);
                let sib = flat::sibling(i);
                if !known.contains_key(&sib) && !nodes.iter().any(|n: &Node| n.index == sib) {
                    let computable = flat::span(sib).0 >= start * 2 && flat::span(sib).1 < end * 2;
                    if !computable {
                        nodes.push(self.nodes[&sib]);
                    }
                }
                known.insert(flat::parent(i), ());
            }
        }
        Ok(RangeProof {
            start,
            end,
            nodes,
            roots,
        })
    }

    /// Cuts the log back to `length` entries and starts a new fork: heads
    /// signed from now on can never be confused with the old history.
    pub fn truncate(&mut self, length: u64) -> Result<(), TreeError> {
        if length > self.length {
            return Err(TreeError::OutOfRange(length, self.length));
        }
        self.nodes.retain(|&i, _| flat::span(i).1 < length * 2);
        self.length = length;
        self.fork += 1;
        Ok(())
    }

    /// Proof that `entry` is in the log at its current length.
    pub fn proof(&self, entry: u64) -> Result<Proof, TreeError> {
        if entry >= self.length {
            return Err(TreeError::OutOfRange(entry, self.length));
        }
        let roots = self.roots();
        let mut i = entry * 2;
        let mut path = Vec::new();
        while !roots.iter().any(|r| r.index == i) {
            path.push(self.nodes[&flat::sibling(i)]);
            i = flat::parent(i);
        }
        Ok(Proof { entry, path, roots })
    }
}

impl Proof {
    /// Checks that `data` is entry `self.entry` of the log `head` names
    /// (the head's signature is checked separately, with the writer's key).
    pub fn verify(&self, data: &[u8], head: &SignedHead) -> Result<(), TreeError> {
        if self.entry >= head.length {
            return Err(TreeError::OutOfRange(self.entry, head.length));
        }
        check_roots(&self.roots, head.length, &head.tree_hash)?;
        let node = climb(Node::leaf(self.entry, data), &self.path)?;
        match self.roots.iter().find(|r| r.index == node.index) {
            Some(r) if *r == node => Ok(()),
            Some(_) => Err(TreeError::BadProof("the entry does not hash to its root")),
            None => Err(TreeError::BadProof("the path does not end at a root")),
        }
    }
}

/// Climbs from `node` with `path`'s siblings; the node reached.
fn climb(mut node: Node, path: &[Node]) -> Result<Node, TreeError> {
    for sib in path {
        if sib.index != flat::sibling(node.index) {
            return Err(TreeError::BadProof("a path node is not the sibling"));
        }
        node = if sib.index < node.index {
            Node::parent(sib, &node)
        } else {
            Node::parent(&node, sib)
        };
    }
    Ok(node)
}

/// Checks `roots` are the roots of a log of `length` and hash to `tree`.
fn check_roots(roots: &[Node], length: u64, tree: &[u8; 32]) -> Result<(), TreeError> {
    let want = flat::full_roots(length);
    if want.len() != roots.len() || want.iter().zip(roots).any(|(i, r)| *i != r.index) {
        return Err(TreeError::BadProof("roots do not fit the length"));
    }
    if tree_hash(roots) != *tree {
        return Err(TreeError::BadProof("roots do not hash to the signed tree"));
    }
    Ok(())
}

impl RangeProof {
    /// Checks that `entries` are entries `start..end` of the log `head`
    /// names (the head's signature is checked separately).
    pub fn verify(&self, entries: &[&[u8]], head: &SignedHead) -> Result<(), TreeError> {
        if self.start >= self.end || self.end > head.length || entries.len() as u64 != self.end - self.start {
            return Err(TreeError::BadProof(
                "the range does not fit the head or the entries",
            ));
        }
        check_roots(&self.roots, head.length, &head.tree_hash)?;
        let extra: BTreeMap<u64, Node> = self.nodes.iter().map(|n| (n.index, *n)).collect();
        let mut known: BTreeMap<u64, Node> = entries
            .iter()
            .enumerate()
            .map(|(k, d)| {
                let n = Node::leaf(self.start + k as u64, d);
                (n.index, n)
            })
            .collect();
        let mut reached = Vec::new();
        for _ in 0..64 {
            if known.is_empty() {
                break;
            }
            let mut next = BTreeMap::new();
            for (&i, node) in &known {
                if let Some(r) = self.roots.iter().find(|r| r.index == i) {
                    if r != node {
                        return Err(TreeError::BadProof("an entry does not hash to its root"));
                    }
                    reached.push(i);
                    continue;
                }
                let sib = flat::sibling(i);
                let Some(s) = known.get(&sib).or_else(|| extra.get(&sib)) else {
                    return Err(TreeError::BadProof("a needed node is missing"));
                };
                let p = if sib < i {
                    Node::parent(s, node)
                } else {
                    Node::parent(node, s)
                };
                next.insert(p.index, p);
            }
            known = next;
        }
        if !known.is_empty() || reached.is_empty() {
            return Err(TreeError::BadProof("the entries do not reach the roots"));
        }
        Ok(())
    }
}

impl UpgradeProof {
    /// Checks that `new` (whose signature is checked separately) extends the
    /// log whose roots at `self.old_length` were `old_roots` (trusted: from
    /// a verified earlier head).
    pub fn verify(&self, old_roots: &[Node], new: &SignedHead) -> Result<(), TreeError> {
        if self.old_length > new.length {
            return Err(TreeError::BadProof("the new head is shorter"));
        }
        check_roots(&self.roots, new.length, &new.tree_hash)?;
        let want = flat::full_roots(self.old_length);
        if old_roots.len() != want.len() || self.paths.len() != want.len() {
            return Err(TreeError::BadProof("not one path per old root"));
        }
        for ((old, want), path) in old_roots.iter().zip(&want).zip(&self.paths) {
            if old.index != *want {
                return Err(TreeError::BadProof("old roots do not fit the old length"));
            }
            let top = climb(*old, path)?;
            if !self.roots.contains(&top) {
                return Err(TreeError::BadProof("an old root does not lead to a new root"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    fn entry(i: u64) -> Vec<u8> {
        format!("entry {i}").into_bytes().repeat(1 + (i as usize % 3))
    }

    #[test]
    fn every_entry_of_every_length_proves_and_nothing_else_does() {
        let k = key();
        let mut t = Tree::default();
        for len in 1..=40u64 {
            t.append(&entry(len - 1));
            let head = t.sign(&k);
            head.verify(&k.verifying_key()).unwrap();
            for e in 0..len {
                let p = t.proof(e).unwrap();
                p.verify(&entry(e), &head).unwrap();
                assert!(
                    p.verify(b"forged", &head).is_err(),
                    "a forged entry {e} passed at {len}"
                );
            }
            assert_eq!(t.proof(len), Err(TreeError::OutOfRange(len, len)));
        }
    }

    #[test]
    fn tampering_is_detected() {
        let k = key();
        let mut t = Tree::default();
        for i in 0..13 {
            t.append(&entry(i));
        }
        let head = t.sign(&k);
        // another key, or another length/fork under the same signature
        assert_eq!(
            head.verify(&SigningKey::from_bytes(&[8u8; 32]).verifying_key()),
            Err(TreeError::BadSignature)
        );
        let mut longer = head;
        longer.length += 1;
        assert_eq!(longer.verify(&k.verifying_key()), Err(TreeError::BadSignature));
        let mut forked = head;
        forked.fork = 1;
        assert_eq!(forked.verify(&k.verifying_key()), Err(TreeError::BadSignature));
        // a proof with a changed sibling or a dropped root
        let mut p = t.proof(5).unwrap();
        p.path[0].hash[0] ^= 1;
        assert!(p.verify(&entry(5), &head).is_err());
        let mut p = t.proof(5).unwrap();
        p.roots.pop();
        assert!(p.verify(&entry(5), &head).is_err());
        // the same data at another index is not that entry
        let p = t.proof(6).unwrap();
        assert!(p.verify(&entry(5), &head).is_err());
    }

    #[test]
    fn a_longer_log_proves_it_extends_a_shorter_one_and_a_rewrite_does_not() {
        let k = key();
        let mut t = Tree::default();
        let mut old_roots = vec![Vec::new()];
        for len in 1..=30u64 {
            t.append(&entry(len - 1));
            old_roots.push(t.roots());
            let head = t.sign(&k);
            for old in 0..=len {
                let p = t.upgrade_proof(old).unwrap();
                p.verify(&old_roots[old as usize], &head).unwrap();
            }
        }
        // a writer that rewrote entry 3 cannot prove it extends the old log
        let mut other = Tree::default();
        for i in 0..30u64 {
            let data = if i == 3 { b"rewritten".to_vec() } else { entry(i) };
            other.append(&data);
        }
        let head = other.sign(&k);
        for old in 4..30u64 {
            let p = other.upgrade_proof(old).unwrap();
            assert!(
                p.verify(&old_roots[old as usize], &head).is_err(),
                "rewrite passed for {old}"
            );
        }
    }

    #[test]
    fn every_range_proves_and_a_changed_entry_does_not() {
        let k = key();
        let mut t = Tree::default();
        for i in 0..21u64 {
            t.append(&entry(i));
        }
        let head = t.sign(&k);
        let all: Vec<Vec<u8>> = (0..21).map(entry).collect();
        for start in 0..21u64 {
            for end in start + 1..=21 {
                let p = t.range_proof(start, end).unwrap();
                let slice: Vec<&[u8]> = all[start as usize..end as usize].iter().map(|v| &v[..]).collect();
                p.verify(&slice, &head).unwrap();
                let mut bad = slice.clone();
                bad[0] = b"changed";
                assert!(
                    p.verify(&bad, &head).is_err(),
                    "changed entry passed {start}..{end}"
                );
            }
        }
        // smaller than one proof per entry: 16 entries of a 16-entry tree need no extra node
        let mut full = Tree::default();
        for i in 0..16 {
            full.append(&entry(i));
        }
        assert!(full.range_proof(0, 16).unwrap().nodes.is_empty());
    }

    #[test]
    fn truncation_starts_a_new_fork() {
        let k = key();
        let mut t = Tree::default();
        for i in 0..10u64 {
            t.append(&entry(i));
        }
        let old = t.sign(&k);
        t.truncate(6).unwrap();
        for i in 6..10u64 {
            t.append(format!("other {i}").as_bytes());
        }
        let new = t.sign(&k);
        assert_eq!((new.fork, new.length), (1, 10));
        assert_ne!(old.tree_hash, new.tree_hash);
        new.verify(&k.verifying_key()).unwrap();
        // entries kept before the cut still prove under the new head
        t.proof(3).unwrap().verify(&entry(3), &new).unwrap();
        assert_eq!(t.truncate(11), Err(TreeError::OutOfRange(11, 10)));
    }

    #[test]
    fn append_creates_the_leaf_and_the_parents_it_completes() {
        let mut t = Tree::default();
        assert_eq!(t.append(b"a").len(), 1);
        let created = t.append(b"b");
        assert_eq!(created.iter().map(|n| n.index).collect::<Vec<_>>(), vec![2, 1]);
        t.append(b"c");
        let created = t.append(b"d");
        assert_eq!(created.iter().map(|n| n.index).collect::<Vec<_>>(), vec![6, 5, 3]);
        assert_eq!(t.roots().len(), 1);
        assert_eq!(t.node(3).unwrap().size, 4);
    }
}

#[cfg(test)]
mod nodes_since_tests {
    use super::*;

    #[test]
    fn nodes_since_are_the_nodes_appends_created() {
        let mut t = Tree::default();
        let mut created = Vec::new();
        for i in 0..13u64 {
            let mut c = t.append(format!("{i}").as_bytes());
            if i >= 5 {
                created.append(&mut c);
            }
        }
        let mut since = t.nodes_since(5);
        since.sort_by_key(|n| n.index);
        created.sort_by_key(|n| n.index);
        assert_eq!(since, created);
    }
}
