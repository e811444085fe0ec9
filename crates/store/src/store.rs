//! The block store: open, read, and batched writes.

use crate::error::StoreError;
use crate::layout::{Location, BLOCKS, FILES, FILE_PATHS, FORMAT_VERSION, META, PACKS, PINS};
use crate::pack::{self, ActivePack, PACK_TARGET};
use crate::storage::{DirLock, OsStorage, RedbBackend, Storage, StorageFile};
use redb::{Database, ReadableDatabase, ReadableTable};
use shoal_ipld::{block, Cid};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// A content-addressed block store in one directory:
/// `index.redb` (the index), `packs/` (pack files), `LOCK`.
#[derive(Debug)]
pub struct BlockStore {
    pub(crate) dir: PathBuf,
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) db: Database,
    pub(crate) active: Mutex<Option<ActivePack>>,
    /// Packs abandoned after a failed write (in this process).
    broken: Mutex<std::collections::HashSet<u32>>,
    pub(crate) next_pack: AtomicU64,
    pub(crate) next_file: AtomicU64,
    readers: Mutex<HashMap<u32, Arc<dyn StorageFile>>>,
    /// Batches hold it shared, GC exclusively.
    pub(crate) gc_lock: RwLock<()>,
    _lock: DirLock,
}

impl BlockStore {
    /// Opens (creating if needed) the store in `dir` on the real file system.
    pub fn open(dir: impl AsRef<Path>) -> Result<BlockStore, StoreError> {
        Self::open_with(dir, Arc::new(OsStorage))
    }

    /// Opens the store in `dir`, doing all I/O through `storage`.
    pub fn open_with(dir: impl AsRef<Path>, storage: Arc<dyn Storage>) -> Result<BlockStore, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        let packs_dir = dir.join("packs");
        std::fs::create_dir_all(&packs_dir).map_err(StoreError::io(&packs_dir))?;
        let lock_path = dir.join("LOCK");
        let lock = DirLock::acquire(&lock_path).map_err(|e| match e.raw_os_error() {
            Some(libc::EWOULDBLOCK) => StoreError::Locked(dir.clone()),
            _ => StoreError::Io {
                path: lock_path.clone(),
                source: e,
            },
        })?;
        let index_path = dir.join("index.redb");
        let file = storage
            .open(&index_path, true)
            .map_err(StoreError::io(&index_path))?;
        let db = Database::builder().create_with_backend(RedbBackend(file))?;
        let store = BlockStore {
            dir,
            storage,
            db,
            active: Mutex::new(None),
            broken: Mutex::new(Default::default()),
            next_pack: AtomicU64::new(0),
            next_file: AtomicU64::new(1),
            readers: Mutex::new(HashMap::new()),
            gc_lock: RwLock::new(()),
            _lock: lock,
        };
        store.init_tables()?;
        store.recover_packs()?;
        Ok(store)
    }

    /// The directory of this store.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn init_tables(&self) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let found = meta.get("format_version")?.map(|v| v.value());
            match found {
                Some(v) if v > FORMAT_VERSION => {
                    return Err(StoreError::NewerFormat {
                        found: v,
                        supported: FORMAT_VERSION,
                    })
                }
                Some(_) => {}
                None => {
                    meta.insert("format_version", FORMAT_VERSION)?;
                }
            }
            txn.open_table(BLOCKS)?;
            txn.open_table(PINS)?;
            txn.open_table(FILE_PATHS)?;
            let files = txn.open_table(FILES)?;
            let next = files.last()?.map_or(1, |(k, _)| k.value() + 1);
            self.next_file.store(next, Ordering::Relaxed);
            let packs = txn.open_table(PACKS)?;
            let next = packs.last()?.map_or(0, |(k, _)| u64::from(k.value()) + 1);
            self.next_pack.store(next, Ordering::Relaxed);
        }
        txn.commit()?;
        Ok(())
    }

    /// Cuts every pack back to its committed length and deletes packs that
    /// were never committed: what a crash left behind after the last commit.
    fn recover_packs(&self) -> Result<(), StoreError> {
        let packs_dir = self.dir.join("packs");
        let committed: HashMap<u32, u64> = {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(PACKS)?;
            let mut map = HashMap::new();
            for row in table.iter()? {
                let (k, v) = row?;
                map.insert(k.value(), v.value());
            }
            map
        };
        let entries = self
            .storage
            .list(&packs_dir)
            .map_err(StoreError::io(&packs_dir))?;
        for path in entries {
            let Some(id) = pack::pack_id(&path) else { continue };
            match committed.get(&id) {
                None => self.storage.remove(&path).map_err(StoreError::io(&path))?,
                Some(&len) => {
                    let file = self.storage.open(&path, false).map_err(StoreError::io(&path))?;
                    if file.len().map_err(StoreError::io(&path))? > len {
                        file.set_len(len).map_err(StoreError::io(&path))?;
                        file.sync().map_err(StoreError::io(&path))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Where `cid` is stored, if it is.
    pub(crate) fn location(&self, cid: &Cid) -> Result<Option<Location>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(BLOCKS)?;
        let key = cid.to_bytes();
        let Some(v) = table.get(key.as_slice())? else {
            return Ok(None);
        };
        let loc = Location::decode(v.value()).ok_or_else(|| StoreError::Corrupt {
            cid: *cid,
            reason: "index entry does not decode".into(),
        })?;
        Ok(Some(loc))
    }

    /// Whether the store has an entry for `cid` (it may still be stale).
    pub fn has(&self, cid: &Cid) -> Result<bool, StoreError> {
        Ok(self.location(cid)?.is_some())
    }

    /// The block's bytes, verified against its CID.
    pub fn get(&self, cid: &Cid) -> Result<Vec<u8>, StoreError> {
        let loc = self.location(cid)?.ok_or(StoreError::NotFound(*cid))?;
        self.read_location(cid, &loc)
    }

    /// The block's bytes if present.
    pub fn try_get(&self, cid: &Cid) -> Result<Option<Vec<u8>>, StoreError> {
        match self.get(cid) {
            Ok(d) => Ok(Some(d)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Size of the block in bytes, without reading it.
    pub fn size(&self, cid: &Cid) -> Result<Option<u64>, StoreError> {
        Ok(self.location(cid)?.map(|l| l.len()))
    }

    pub(crate) fn read_location(&self, cid: &Cid, loc: &Location) -> Result<Vec<u8>, StoreError> {
        let data = match loc {
            Location::Inline(d) => d.clone(),
            Location::Pack { pack, offset, len } => self.read_pack(cid, *pack, *offset, *len)?,
            Location::File { file, offset, len } => return self.read_file_ref(cid, *file, *offset, *len),
        };
        block::verify(cid, &data).map_err(|e| StoreError::Corrupt {
            cid: *cid,
            reason: e.to_string(),
        })?;
        Ok(data)
    }

    fn read_pack(&self, cid: &Cid, pack: u32, offset: u64, len: u32) -> Result<Vec<u8>, StoreError> {
        let file = self.pack_reader(pack).map_err(|e| StoreError::Corrupt {
            cid: *cid,
            reason: format!("pack {pack}: {e}"),
        })?;
        let mut buf = vec![0; len as usize];
        file.read_at(offset, &mut buf).map_err(|e| StoreError::Corrupt {
            cid: *cid,
            reason: format!("pack {pack} at {offset}: {e}"),
        })?;
        Ok(buf)
    }

    fn pack_reader(&self, id: u32) -> std::io::Result<Arc<dyn StorageFile>> {
        let mut readers = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = readers.get(&id) {
            return Ok(f.clone());
        }
        let file = self
            .storage
            .open(&pack::pack_path(&self.dir.join("packs"), id), false)?;
        pack::check_header(file.as_ref())?;
        if readers.len() >= 256 {
            readers.clear();
        }
        readers.insert(id, file.clone());
        Ok(file)
    }

    pub(crate) fn forget_reader(&self, id: u32) {
        self.readers.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }

    /// Removes a block's entry (its pack space is reclaimed by `gc`).
    pub fn delete(&self, cid: &Cid) -> Result<bool, StoreError> {
        let _gc = self.gc_lock.read().unwrap_or_else(|p| p.into_inner());
        let txn = self.db.begin_write()?;
        let removed = {
            let mut table = txn.open_table(BLOCKS)?;
            let key = cid.to_bytes();
            let removed = table.remove(key.as_slice())?.is_some();
            removed
        };
        txn.commit()?;
        Ok(removed)
    }

    /// Calls `f` with every CID in the store, in index order.
    pub fn for_each_cid(&self, mut f: impl FnMut(Cid)) -> Result<(), StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(BLOCKS)?;
        for row in table.iter()? {
            let (k, _) = row?;
            if let Ok(cid) = Cid::try_from(k.value()) {
                f(cid);
            }
        }
        Ok(())
    }

    /// Number of blocks and their total size in bytes.
    pub fn stat(&self) -> Result<(u64, u64), StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(BLOCKS)?;
        let (mut n, mut bytes) = (0, 0);
        for row in table.iter()? {
            let (_, v) = row?;
            n += 1;
            bytes += Location::decode(v.value()).map_or(0, |l| l.len());
        }
        Ok((n, bytes))
    }

    /// Stores one block durably (a batch of one).
    pub fn put(&self, cid: &Cid, data: &[u8]) -> Result<(), StoreError> {
        let mut batch = self.batch();
        batch.put(cid, data)?;
        batch.commit()
    }

    /// Starts a batch of writes that become durable together on `commit`.
    pub fn batch(&self) -> crate::batch::Batch<'_> {
        crate::batch::Batch::new(self)
    }

    /// Appends to the active pack, starting a new one when needed. Returns
    /// (pack id, data offset, pack file, created). A pack whose write failed
    /// is abandoned: its buffered bytes are gone, so batches that wrote to it
    /// fail to commit (`flush_pack`).
    pub(crate) fn append_to_pack(
        &self,
        cid: &[u8],
        data: &[u8],
    ) -> Result<(u32, u64, Arc<dyn StorageFile>, bool), StoreError> {
        let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        let packs_dir = self.dir.join("packs");
        let mut created = false;
        if active.as_ref().is_none_or(|a| a.len >= PACK_TARGET) {
            if let Some(mut full) = active.take() {
                let path = pack::pack_path(&packs_dir, full.id);
                if let Err(e) = full.flush() {
                    self.broken
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(full.id);
                    return Err(StoreError::Io { path, source: e });
                }
            }
            let id = u32::try_from(self.next_pack.fetch_add(1, Ordering::Relaxed)).map_err(|_| {
                StoreError::Io {
                    path: packs_dir.clone(),
                    source: std::io::Error::other("pack ids exhausted"),
                }
            })?;
            let path = pack::pack_path(&packs_dir, id);
            *active = Some(
                ActivePack::create(self.storage.as_ref(), &packs_dir, id).map_err(StoreError::io(&path))?,
            );
            created = true;
        }
        let pack = active.as_mut().expect("set above");
        let (id, file) = (pack.id, pack.file.clone());
        match pack.append(cid, data) {
            Ok(offset) => Ok((id, offset, file, created)),
            Err(e) => {
                self.broken.lock().unwrap_or_else(|p| p.into_inner()).insert(id);
                *active = None;
                Err(StoreError::Io {
                    path: pack::pack_path(&packs_dir, id),
                    source: e,
                })
            }
        }
    }

    /// Writes out what is buffered for pack `id` before a commit syncs it.
    pub(crate) fn flush_pack(&self, id: u32) -> Result<(), StoreError> {
        let path = pack::pack_path(&self.dir.join("packs"), id);
        if self
            .broken
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&id)
        {
            return Err(StoreError::Io {
                path,
                source: std::io::Error::other("an earlier write to this pack failed"),
            });
        }
        let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        match active.as_mut() {
            Some(pack) if pack.id == id => pack.flush().map_err(|e| {
                self.broken.lock().unwrap_or_else(|p| p.into_inner()).insert(id);
                *active = None;
                StoreError::Io { path, source: e }
            }),
            // rotated out: flushed then
            _ => Ok(()),
        }
    }
}
