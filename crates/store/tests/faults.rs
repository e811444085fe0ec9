//! I/O errors injected through the storage seam: whatever write or sync
//! fails, every block of every batch whose commit succeeded is still there
//! after reopening on a healthy disk, and the store verifies clean.

use shoal_ipld::block::cid_of;
use shoal_ipld::{Cid, Codec};
use shoal_store::{BlockStore, OsStorage, Storage, StorageFile, StoreError};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Fails every write, truncate and sync once `budget` operations have run.
#[derive(Debug)]
struct Faulty {
    inner: OsStorage,
    budget: Arc<AtomicI64>,
}

#[derive(Debug)]
struct FaultyFile {
    inner: Arc<dyn StorageFile>,
    budget: Arc<AtomicI64>,
}

fn spend(budget: &AtomicI64) -> io::Result<()> {
    if budget.fetch_sub(1, Ordering::SeqCst) <= 0 {
        return Err(io::Error::other("injected I/O error"));
    }
    Ok(())
}

impl StorageFile for FaultyFile {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        spend(&self.budget)?;
        self.inner.write_at(offset, data)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        spend(&self.budget)?;
        self.inner.set_len(len)
    }
    fn sync(&self) -> io::Result<()> {
        spend(&self.budget)?;
        self.inner.sync()
    }
}

impl Storage for Faulty {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        let inner = self.inner.open(path, create)?;
        Ok(Arc::new(FaultyFile {
            inner,
            budget: self.budget.clone(),
        }))
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        spend(&self.budget)?;
        self.inner.remove(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        self.inner.list(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        spend(&self.budget)?;
        self.inner.sync_dir(dir)
    }
}

fn block(round: u64, i: u64) -> (Cid, Vec<u8>) {
    let len = [10, 3000, 70_000, 300_000][(i % 4) as usize] + round as usize;
    let data: Vec<u8> = (0..len).map(|j| (j as u64 ^ (round * 1000 + i)) as u8).collect();
    (cid_of(Codec::Raw, 1, &data), data)
}

/// Writes batches until an injected error stops it; returns what was
/// acknowledged (committed without error).
fn write_until_failure(store: &BlockStore, round: u64) -> Result<Vec<(Cid, Vec<u8>)>, StoreError> {
    let mut acked = Vec::new();
    for batch_no in 0..20 {
        let mut batch = store.batch();
        let mut pending = Vec::new();
        for i in 0..5 {
            let (cid, data) = block(round, batch_no * 5 + i);
            if batch.put(&cid, &data).is_err() {
                return Ok(acked);
            }
            pending.push((cid, data));
        }
        if batch.commit().is_err() {
            return Ok(acked);
        }
        acked.extend(pending);
    }
    Ok(acked)
}

#[test]
fn injected_io_errors_never_lose_acknowledged_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let mut oracle: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut failures = 0;
    for round in 0..120u64 {
        // budgets from 0 (fail at once, even during open) up past a full run
        let budget = Arc::new(AtomicI64::new(((round * 7) % 200) as i64));
        let storage = Arc::new(Faulty {
            inner: OsStorage,
            budget: budget.clone(),
        });
        if let Ok(store) = BlockStore::open_with(dir.path(), storage) {
            for (cid, data) in write_until_failure(&store, round).unwrap() {
                oracle.insert(cid.to_bytes(), data);
            }
        }
        if budget.load(Ordering::SeqCst) <= 0 {
            failures += 1;
        }
        let store = BlockStore::open(dir.path()).expect("a healthy reopen always works");
        for (key, data) in &oracle {
            let cid = Cid::try_from(key.as_slice()).unwrap();
            assert_eq!(
                &store.get(&cid).unwrap_or_else(|e| panic!("round {round}: {e}")),
                data
            );
        }
        let report = store.verify(|_| {}).unwrap();
        assert!(report.ok(), "round {round}: {report:?}");
    }
    assert!(failures > 60, "only {failures} rounds hit an injected error");
    assert!(oracle.len() > 100);
}
