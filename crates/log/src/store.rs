//! Logs on disk: one redb file holding, per log (keyed by its public key),
//! the entries, the tree nodes and the latest signed head. Each append is
//! one transaction: after a crash a log is at its last committed head,
//! with every entry and node that head needs.

use crate::tree::{Node, SignedHead, Tree};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::Path;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// log key (32) || index (u64 BE) → entry bytes
const ENTRIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("entries");
/// log key (32) || node index (u64 BE) → hash (32) || size (u64 LE)
const NODES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("nodes");
/// log key (32) → fork (u64 LE) || length (u64 LE) || tree hash (32) || signature (64)
const HEADS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("heads");

/// The on-disk format version (see FORMAT.md).
pub const VERSION: u64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum LogStoreError {
    #[error("log store: {0}")]
    Db(#[from] redb::Error),
    #[error("log store format version {0} is not supported (this is {VERSION})")]
    Version(u64),
    #[error("log store: a damaged record ({0})")]
    Damaged(&'static str),
}

fn dberr<E: Into<redb::Error>>(e: E) -> LogStoreError {
    LogStoreError::Db(e.into())
}

fn key_at(log: &[u8; 32], index: u64) -> Vec<u8> {
    let mut k = log.to_vec();
    k.extend_from_slice(&index.to_be_bytes());
    k
}

fn encode_head(h: &SignedHead) -> Vec<u8> {
    let mut v = Vec::with_capacity(112);
    v.extend_from_slice(&h.fork.to_le_bytes());
    v.extend_from_slice(&h.length.to_le_bytes());
    v.extend_from_slice(&h.tree_hash);
    v.extend_from_slice(&h.signature);
    v
}

fn decode_head(v: &[u8]) -> Option<SignedHead> {
    if v.len() != 112 {
        return None;
    }
    Some(SignedHead {
        fork: u64::from_le_bytes(v[0..8].try_into().ok()?),
        length: u64::from_le_bytes(v[8..16].try_into().ok()?),
        tree_hash: v[16..48].try_into().ok()?,
        signature: v[48..112].try_into().ok()?,
    })
}

/// A log as stored.
#[derive(Debug)]
pub struct Stored {
    pub tree: Tree,
    pub entries: Vec<Vec<u8>>,
    pub head: SignedHead,
}

pub struct LogStore {
    db: Database,
}

impl LogStore {
    pub fn open(path: impl AsRef<Path>) -> Result<LogStore, LogStoreError> {
        let db = Database::create(path).map_err(dberr)?;
        let txn = db.begin_write().map_err(dberr)?;
        {
            let mut meta = txn.open_table(META).map_err(dberr)?;
            let version = meta.get("version").map_err(dberr)?.map(|v| v.value());
            match version {
                None => {
                    meta.insert("version", VERSION).map_err(dberr)?;
                }
                Some(VERSION) => {}
                Some(v) => return Err(LogStoreError::Version(v)),
            }
            txn.open_table(ENTRIES).map_err(dberr)?;
            txn.open_table(NODES).map_err(dberr)?;
            txn.open_table(HEADS).map_err(dberr)?;
        }
        txn.commit().map_err(dberr)?;
        Ok(LogStore { db })
    }

    /// Stores new entries (by index), the nodes they created, and the head
    /// they lead to, atomically.
    pub fn append(
        &self,
        log: &[u8; 32],
        entries: &[(u64, &[u8])],
        nodes: &[Node],
        head: &SignedHead,
    ) -> Result<(), LogStoreError> {
        let txn = self.db.begin_write().map_err(dberr)?;
        {
            let mut e = txn.open_table(ENTRIES).map_err(dberr)?;
            for (i, data) in entries {
                e.insert(&key_at(log, *i)[..], *data).map_err(dberr)?;
            }
            let mut n = txn.open_table(NODES).map_err(dberr)?;
            for node in nodes {
                let mut v = node.hash.to_vec();
                v.extend_from_slice(&node.size.to_le_bytes());
                n.insert(&key_at(log, node.index)[..], &v[..]).map_err(dberr)?;
            }
            let mut h = txn.open_table(HEADS).map_err(dberr)?;
            h.insert(&log[..], &encode_head(head)[..]).map_err(dberr)?;
        }
        txn.commit().map_err(dberr)
    }

    /// The log's contiguous entries, its tree and its head, if stored.
    pub fn load(&self, log: &[u8; 32]) -> Result<Option<Stored>, LogStoreError> {
        let txn = self.db.begin_read().map_err(dberr)?;
        let heads = txn.open_table(HEADS).map_err(dberr)?;
        let Some(head) = heads.get(&log[..]).map_err(dberr)? else {
            return Ok(None);
        };
        let head = decode_head(head.value()).ok_or(LogStoreError::Damaged("head"))?;
        let entries_t = txn.open_table(ENTRIES).map_err(dberr)?;
        let mut entries = Vec::new();
        for i in 0..head.length {
            let Some(v) = entries_t.get(&key_at(log, i)[..]).map_err(dberr)? else {
                break;
            };
            entries.push(v.value().to_vec());
        }
        let nodes_t = txn.open_table(NODES).map_err(dberr)?;
        let mut nodes = Vec::new();
        let range = nodes_t
            .range(&key_at(log, 0)[..]..=&key_at(log, u64::MAX)[..])
            .map_err(dberr)?;
        for item in range {
            let (k, v) = item.map_err(dberr)?;
            let (k, v) = (k.value(), v.value());
            if k.len() != 40 || v.len() != 40 {
                return Err(LogStoreError::Damaged("node"));
            }
            nodes.push(Node {
                index: u64::from_be_bytes(k[32..40].try_into().expect("8 bytes")),
                hash: v[..32].try_into().expect("32 bytes"),
                size: u64::from_le_bytes(v[32..40].try_into().expect("8 bytes")),
            });
        }
        let tree = Tree::from_nodes(entries.len() as u64, head.fork, nodes);
        Ok(Some(Stored { tree, entries, head }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    #[test]
    fn a_log_survives_reopening_and_still_proves() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs.redb");
        let key = SigningKey::from_bytes(&[5u8; 32]);
        let id = key.verifying_key().to_bytes();
        let mut tree = Tree::default();
        {
            let store = LogStore::open(&path).unwrap();
            assert!(store.load(&id).unwrap().is_none());
            for i in 0..37u64 {
                let data = format!("snapshot {i}").into_bytes();
                let nodes = tree.append(&data);
                let head = tree.sign(&key);
                store.append(&id, &[(i, &data)], &nodes, &head).unwrap();
            }
        }
        let store = LogStore::open(&path).unwrap();
        let s = store.load(&id).unwrap().unwrap();
        assert_eq!(s.entries.len(), 37);
        assert_eq!(s.tree.hash(), tree.hash());
        s.head.verify(&key.verifying_key()).unwrap();
        s.tree.proof(20).unwrap().verify(&s.entries[20], &s.head).unwrap();
        // another log in the same file is independent
        assert!(store.load(&[0u8; 32]).unwrap().is_none());
    }
}
