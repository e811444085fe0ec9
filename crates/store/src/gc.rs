//! Garbage collection: mark from pins, sweep the rest, then reclaim pack
//! space. Crash-safe: index changes commit before any file is deleted, and a
//! pack file no longer in the index is removed on the next open.

use crate::error::StoreError;
use crate::layout::{Location, BLOCKS, FILES, FILE_PATHS, PACKS};
use crate::pack;
use crate::store::BlockStore;
use redb::{ReadableTable, WriteTransaction};
use shoal_ipld::Cid;
use std::collections::{HashMap, HashSet};

/// What a GC run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    pub blocks_removed: u64,
    pub bytes_removed: u64,
    pub packs_deleted: u64,
    pub packs_rewritten: u64,
    /// Pinned CIDs whose blocks were missing during marking.
    pub missing: u64,
}

impl BlockStore {
    /// Removes every block not reachable from a pin.
    pub fn gc(&self) -> Result<GcReport, StoreError> {
        let _excl = self.gc_lock.write().unwrap_or_else(|p| p.into_inner());
        let marked = self.mark()?;
        let mut report = GcReport {
            missing: marked.missing.len() as u64,
            ..Default::default()
        };
        let txn = self.db.begin_write()?;
        let live = {
            let live = sweep(&txn, &marked.reached, &mut report)?;
            drop_unused_files(&txn)?;
            live
        };
        txn.commit()?;
        self.reclaim_packs(&live, &mut report)?;
        Ok(report)
    }

    fn reclaim_packs(&self, live: &HashMap<u32, u64>, report: &mut GcReport) -> Result<(), StoreError> {
        let active = self
            .active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|a| a.id);
        let committed: Vec<(u32, u64)> = {
            let txn = self.db.begin_write()?;
            let table = txn.open_table(PACKS)?;
            let rows = table
                .iter()?
                .filter_map(|r| r.ok())
                .map(|(k, v)| (k.value(), v.value()))
                .collect();
            rows
        };
        let mut rewrite = Vec::new();
        let mut delete = Vec::new();
        for (id, len) in committed {
            if Some(id) == active {
                continue;
            }
            let live_bytes = live.get(&id).copied().unwrap_or(0);
            if live_bytes == 0 {
                delete.push(id);
            } else if live_bytes * 2 < len.saturating_sub(pack::HEADER_LEN) {
                rewrite.push(id);
            }
        }
        for id in &rewrite {
            self.rewrite_pack(*id)?;
        }
        delete.extend(&rewrite);
        self.delete_packs(&delete)?;
        report.packs_deleted += (delete.len() - rewrite.len()) as u64;
        report.packs_rewritten += rewrite.len() as u64;
        Ok(())
    }

    /// Copies the live blocks of pack `id` into the active pack.
    fn rewrite_pack(&self, id: u32) -> Result<(), StoreError> {
        let rows: Vec<(Cid, Location)> = {
            let txn = self.db.begin_write()?;
            let table = txn.open_table(BLOCKS)?;
            let mut rows = Vec::new();
            for row in table.iter()? {
                let (k, v) = row?;
                if let (Ok(cid), Some(loc @ Location::Pack { pack, .. })) =
                    (Cid::try_from(k.value()), Location::decode(v.value()))
                {
                    if pack == id {
                        rows.push((cid, loc));
                    }
                }
            }
            rows
        };
        // the GC lock is held, so a batch here cannot race; copies dedupe
        // against nothing because the old location is replaced.
        let mut batch = crate::batch::Batch::without_gc_lock(self);
        for (cid, loc) in rows {
            let data = self.read_location(&cid, &loc)?;
            batch.force_put(&cid, &data)?;
        }
        batch.commit()
    }

    fn delete_packs(&self, ids: &[u32]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(PACKS)?;
            for id in ids {
                table.remove(*id)?;
            }
        }
        txn.commit()?;
        let dir = self.dir.join("packs");
        for id in ids {
            self.forget_reader(*id);
            let path = pack::pack_path(&dir, *id);
            match self.storage.remove(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::Io { path, source: e }),
            }
        }
        Ok(())
    }
}

/// Removes unmarked blocks; returns live bytes per pack.
fn sweep(
    txn: &WriteTransaction,
    marked: &HashSet<Vec<u8>>,
    report: &mut GcReport,
) -> Result<HashMap<u32, u64>, StoreError> {
    let mut table = txn.open_table(BLOCKS)?;
    let mut live: HashMap<u32, u64> = HashMap::new();
    let mut doomed = Vec::new();
    for row in table.iter()? {
        let (k, v) = row?;
        let loc = Location::decode(v.value());
        if marked.contains(k.value()) {
            if let Some(Location::Pack { pack, len, .. }) = loc {
                *live.entry(pack).or_default() += u64::from(len);
            }
        } else {
            report.bytes_removed += loc.map_or(0, |l| l.len());
            doomed.push(k.value().to_vec());
        }
    }
    for key in &doomed {
        table.remove(key.as_slice())?;
    }
    report.blocks_removed = doomed.len() as u64;
    Ok(live)
}

/// Forgets file records no block points into any more.
fn drop_unused_files(txn: &WriteTransaction) -> Result<(), StoreError> {
    let blocks = txn.open_table(BLOCKS)?;
    let mut used = HashSet::new();
    for row in blocks.iter()? {
        let (_, v) = row?;
        if let Some(Location::File { file, .. }) = Location::decode(v.value()) {
            used.insert(file);
        }
    }
    let mut files = txn.open_table(FILES)?;
    let unused: Vec<u64> = files
        .iter()?
        .filter_map(|r| r.ok())
        .map(|(k, _)| k.value())
        .filter(|id| !used.contains(id))
        .collect();
    for id in &unused {
        files.remove(*id)?;
    }
    let mut paths = txn.open_table(FILE_PATHS)?;
    let dangling: Vec<Vec<u8>> = paths
        .iter()?
        .filter_map(|r| r.ok())
        .filter(|(_, v)| unused.contains(&v.value()))
        .map(|(k, _)| k.value().to_vec())
        .collect();
    for key in &dangling {
        paths.remove(key.as_slice())?;
    }
    Ok(())
}
