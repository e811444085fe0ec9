//! Batched writes. Block bytes go to a pack (or inline) as they are put;
//! nothing is visible or acknowledged until `commit`, which makes the pack
//! data durable first and then commits the index in one redb transaction.
//! A crash before the commit leaves only unreferenced pack bytes, which
//! the next open cuts off.

use crate::error::StoreError;
use crate::layout::{FileIdentity, FileRecord, Location, BLOCKS, FILES, FILE_PATHS, INLINE_MAX, PACKS};
use crate::storage::StorageFile;
use crate::store::BlockStore;
use redb::{ReadableDatabase, ReadableTable};
use shoal_ipld::{block, Cid};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLockReadGuard};

/// Writes that become durable together.
pub struct Batch<'a> {
    store: &'a BlockStore,
    _gc: Option<RwLockReadGuard<'a, ()>>,
    rows: Vec<(Vec<u8>, Location)>,
    seen: HashSet<Vec<u8>>,
    packs: HashMap<u32, (Arc<dyn StorageFile>, u64)>,
    created_pack: bool,
    files: Vec<(u64, FileRecord, Option<u64>)>,
    bytes: u64,
}

impl<'a> Batch<'a> {
    pub(crate) fn new(store: &'a BlockStore) -> Batch<'a> {
        let guard = store.gc_lock.read().unwrap_or_else(|p| p.into_inner());
        Batch {
            _gc: Some(guard),
            ..Self::without_gc_lock(store)
        }
    }

    /// For GC itself, which already holds the lock exclusively.
    pub(crate) fn without_gc_lock(store: &'a BlockStore) -> Batch<'a> {
        Batch {
            store,
            _gc: None,
            rows: Vec::new(),
            seen: HashSet::new(),
            packs: HashMap::new(),
            created_pack: false,
            files: Vec::new(),
            bytes: 0,
        }
    }

    /// Bytes of block data put so far.
    pub fn pending_bytes(&self) -> u64 {
        self.bytes
    }

    /// Number of blocks put so far.
    pub fn pending_blocks(&self) -> usize {
        self.rows.len()
    }

    /// Whether `cid` needs storing: not yet in this batch, and not already
    /// stored as an owned copy. A no-copy reference is always replaced by
    /// the newer one (or by an owned copy): the file it points to may have
    /// changed since.
    fn wanted(&mut self, key: &[u8], cid: &Cid) -> Result<bool, StoreError> {
        if self.seen.contains(key) {
            return Ok(false);
        }
        if matches!(
            self.store.location(cid)?,
            Some(Location::Inline(_) | Location::Pack { .. })
        ) {
            return Ok(false);
        }
        self.seen.insert(key.to_vec());
        Ok(true)
    }

    /// Stores a copy of `data` as block `cid` (checked against the CID).
    pub fn put(&mut self, cid: &Cid, data: &[u8]) -> Result<(), StoreError> {
        block::check_supported(cid)?;
        block::verify(cid, data)?;
        self.put_verified(cid, data)
    }

    /// Like `put`, for bytes the caller has just hashed into `cid`.
    pub fn put_verified(&mut self, cid: &Cid, data: &[u8]) -> Result<(), StoreError> {
        let key = cid.to_bytes();
        if !self.wanted(&key, cid)? {
            return Ok(());
        }
        self.write_owned(key, data)
    }

    /// Writes a fresh copy even if the block is stored (used by GC to move
    /// blocks out of a pack being reclaimed).
    pub(crate) fn force_put(&mut self, cid: &Cid, data: &[u8]) -> Result<(), StoreError> {
        let key = cid.to_bytes();
        if !self.seen.insert(key.clone()) {
            return Ok(());
        }
        self.write_owned(key, data)
    }

    fn write_owned(&mut self, key: Vec<u8>, data: &[u8]) -> Result<(), StoreError> {
        let loc = if data.len() <= INLINE_MAX {
            Location::Inline(data.to_vec())
        } else {
            let (pack, offset, file, created) = self.store.append_to_pack(&key, data)?;
            self.created_pack |= created;
            let end = offset + data.len() as u64;
            let slot = self.packs.entry(pack).or_insert((file, end));
            slot.1 = slot.1.max(end);
            Location::Pack {
                pack,
                offset,
                len: data.len() as u32,
            }
        };
        self.bytes += data.len() as u64;
        self.rows.push((key, loc));
        Ok(())
    }

    /// Registers a user file that blocks will point into; returns its id.
    /// The same path with the same identity keeps its id; a changed file
    /// gets a new one and the old record is marked stale on commit.
    pub fn register_file(&mut self, path: &Path, identity: FileIdentity) -> Result<u64, StoreError> {
        use std::os::unix::ffi::OsStrExt;
        let key = path.as_os_str().as_bytes();
        let previous = {
            let txn = self.store.db.begin_read()?;
            let paths = txn.open_table(FILE_PATHS)?;
            let files = txn.open_table(FILES)?;
            match paths.get(key)? {
                Some(id) => {
                    let id = id.value();
                    let rec = files.get(id)?.and_then(|r| FileRecord::decode(r.value()));
                    Some((id, rec))
                }
                None => None,
            }
        };
        if let Some((id, Some(rec))) = &previous {
            if rec.identity == identity && !rec.stale {
                return Ok(*id);
            }
        }
        let id = self.store.next_file.fetch_add(1, Ordering::Relaxed);
        let record = FileRecord {
            path: path.to_path_buf(),
            identity,
            stale: false,
        };
        self.files.push((id, record, previous.map(|(id, _)| id)));
        Ok(id)
    }

    /// Records that block `cid` is the `len` bytes at `offset` of file `file`
    /// (from `register_file`). The caller has hashed those bytes into `cid`.
    pub fn put_ref(&mut self, cid: &Cid, file: u64, offset: u64, len: u32) -> Result<(), StoreError> {
        let key = cid.to_bytes();
        if !self.wanted(&key, cid)? {
            return Ok(());
        }
        self.rows.push((key, Location::File { file, offset, len }));
        Ok(())
    }

    /// Makes everything in the batch durable, then visible.
    pub fn commit(self) -> Result<(), StoreError> {
        let packs_dir = self.store.dir.join("packs");
        for (id, (file, _)) in &self.packs {
            self.store.flush_pack(*id)?;
            let path = crate::pack::pack_path(&packs_dir, *id);
            file.sync().map_err(StoreError::io(path))?;
        }
        if self.created_pack {
            self.store
                .storage
                .sync_dir(&packs_dir)
                .map_err(StoreError::io(&packs_dir))?;
        }
        let txn = self.store.db.begin_write()?;
        {
            self.write_files(&txn)?;
            let mut blocks = txn.open_table(BLOCKS)?;
            for (key, loc) in &self.rows {
                blocks.insert(key.as_slice(), loc.encode().as_slice())?;
            }
            let mut packs = txn.open_table(PACKS)?;
            for (id, (_, end)) in &self.packs {
                let old = packs.get(*id)?.map_or(0, |v| v.value());
                packs.insert(*id, old.max(*end))?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    fn write_files(&self, txn: &redb::WriteTransaction) -> Result<(), StoreError> {
        use std::os::unix::ffi::OsStrExt;
        let mut files = txn.open_table(FILES)?;
        let mut paths = txn.open_table(FILE_PATHS)?;
        for (id, rec, previous) in &self.files {
            if let Some(old) = previous {
                let old_rec = files.get(*old)?.and_then(|r| FileRecord::decode(r.value()));
                if let Some(mut old_rec) = old_rec {
                    old_rec.stale = true;
                    files.insert(*old, old_rec.encode().as_slice())?;
                }
            }
            files.insert(*id, rec.encode().as_slice())?;
            paths.insert(rec.path.as_os_str().as_bytes(), *id)?;
        }
        Ok(())
    }
}
