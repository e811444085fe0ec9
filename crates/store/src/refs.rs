//! Reading "no-copy" blocks that live inside user files. Every read checks
//! the file's identity (size, mtime, inode, device) and the block's hash; a
//! file changed behind our back is marked stale and never served.

use crate::error::StoreError;
use crate::layout::{FileIdentity, FileRecord, FILES};
use crate::store::BlockStore;
use redb::{ReadableDatabase, ReadableTable};
use shoal_ipld::{block, Cid};
use std::os::unix::fs::FileExt;

impl BlockStore {
    pub(crate) fn file_record(&self, file: u64) -> Result<Option<FileRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(FILES)?;
        Ok(table.get(file)?.and_then(|r| FileRecord::decode(r.value())))
    }

    pub(crate) fn read_file_ref(
        &self,
        cid: &Cid,
        file: u64,
        offset: u64,
        len: u32,
    ) -> Result<Vec<u8>, StoreError> {
        let rec = self.file_record(file)?.ok_or_else(|| StoreError::Corrupt {
            cid: *cid,
            reason: format!("its file record {file} is missing"),
        })?;
        let stale = |reason: &str| StoreError::Stale {
            cid: *cid,
            path: rec.path.clone(),
            reason: reason.to_owned(),
        };
        if rec.stale {
            return Err(stale("was modified after it was added"));
        }
        let result = read_checked(&rec, offset, len);
        let reason = match result {
            Ok(data) if block::verify(cid, &data).is_ok() => return Ok(data),
            Ok(_) => "no longer holds the bytes of this block",
            Err(reason) => reason,
        };
        self.mark_stale(file)?;
        Err(stale(reason))
    }

    /// Marks a file record stale so nothing is served from it again.
    pub(crate) fn mark_stale(&self, file: u64) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(FILES)?;
            let rec = table.get(file)?.and_then(|r| FileRecord::decode(r.value()));
            if let Some(mut rec) = rec {
                rec.stale = true;
                table.insert(file, rec.encode().as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }
}

fn read_checked(rec: &FileRecord, offset: u64, len: u32) -> Result<Vec<u8>, &'static str> {
    let f = std::fs::File::open(&rec.path).map_err(|_| "cannot be opened (moved or deleted)")?;
    let meta = f.metadata().map_err(|_| "cannot be inspected")?;
    if FileIdentity::of(&meta) != rec.identity {
        return Err("was modified after it was added (size, mtime or inode changed)");
    }
    let mut buf = vec![0; len as usize];
    f.read_exact_at(&mut buf, offset)
        .map_err(|_| "is shorter than when it was added")?;
    Ok(buf)
}
