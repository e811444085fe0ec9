//! `verify`: re-hash every block and check that pinned DAGs are complete.

use crate::error::StoreError;
use crate::layout::{Location, BLOCKS};
use crate::store::BlockStore;
use redb::{ReadableDatabase, ReadableTable};
use shoal_ipld::{block, Cid};
use std::path::PathBuf;

/// What `verify` found. `ok()` is true when nothing is wrong.
#[derive(Debug, Default)]
pub struct VerifyReport {
    pub blocks: u64,
    pub bytes: u64,
    /// Bytes that do not hash to their CID.
    pub corrupt: Vec<(Cid, String)>,
    /// Blocks whose bytes are gone (pack missing or cut short), and blocks
    /// of pinned DAGs that are not in the store.
    pub missing: Vec<(Cid, String)>,
    /// No-copy blocks whose file changed or vanished.
    pub stale: Vec<(Cid, PathBuf)>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.corrupt.is_empty() && self.missing.is_empty() && self.stale.is_empty()
    }
}

impl BlockStore {
    /// Reads and re-hashes every block; `progress` gets the bytes checked.
    pub fn verify(&self, mut progress: impl FnMut(u64)) -> Result<VerifyReport, StoreError> {
        let rows = self.all_locations()?;
        let mut report = VerifyReport::default();
        for (cid, loc) in rows {
            report.blocks += 1;
            report.bytes += loc.len();
            progress(loc.len());
            match self.check_one(&cid, &loc) {
                Ok(()) => {}
                Err(StoreError::Stale { path, .. }) => report.stale.push((cid, path)),
                Err(StoreError::Corrupt { reason, .. })
                    if reason.contains("hash") || reason.contains("match") =>
                {
                    report.corrupt.push((cid, reason))
                }
                Err(StoreError::Corrupt { reason, .. }) => report.missing.push((cid, reason)),
                Err(e) => return Err(e),
            }
        }
        let marked = self.mark()?;
        for cid in marked.missing {
            report
                .missing
                .push((cid, "linked from a pinned DAG but not in the store".into()));
        }
        Ok(report)
    }

    fn check_one(&self, cid: &Cid, loc: &Location) -> Result<(), StoreError> {
        if block::check_supported(cid).is_err() {
            return Err(StoreError::Corrupt {
                cid: *cid,
                reason: "index holds an unsupported CID (hash does not match any known function)".into(),
            });
        }
        self.read_location(cid, loc).map(drop)
    }

    fn all_locations(&self) -> Result<Vec<(Cid, Location)>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(BLOCKS)?;
        let mut rows = Vec::new();
        for row in table.iter()? {
            let (k, v) = row?;
            let cid = Cid::try_from(k.value());
            let loc = Location::decode(v.value());
            if let (Ok(cid), Some(loc)) = (cid, loc) {
                rows.push((cid, loc));
            }
        }
        Ok(rows)
    }
}
