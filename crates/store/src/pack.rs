//! Append-only pack files: `packs/NNNNNNNN.pack`, a 16-byte header
//! (`SHOALPAK`, u32 version, u32 reserved) then records
//! `0xB1 | u8 cid_len | cid | u32 data_len | data`. The index points at the
//! data; the record headers let a damaged index be rebuilt from packs.

use crate::storage::{Storage, StorageFile};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const MAGIC: &[u8; 8] = b"SHOALPAK";
pub const PACK_VERSION: u32 = 1;
pub const HEADER_LEN: u64 = 16;
const RECORD_TAG: u8 = 0xB1;
/// A pack is closed and a new one started past this size.
pub const PACK_TARGET: u64 = 1 << 30;
/// Writeback of appended bytes is started every this many bytes, so that
/// commits find most of a batch already on its way to disk.
const WRITEBACK_STEP: u64 = 8 << 20;

pub fn pack_path(dir: &Path, id: u32) -> PathBuf {
    dir.join(format!("{id:08}.pack"))
}

/// Parses `NNNNNNNN.pack` back into an id.
pub fn pack_id(path: &Path) -> Option<u32> {
    let name = path.file_name()?.to_str()?;
    name.strip_suffix(".pack")?.parse().ok()
}

/// The pack being appended to.
#[derive(Debug)]
pub struct ActivePack {
    pub id: u32,
    pub file: Arc<dyn StorageFile>,
    pub len: u64,
    /// Bytes before this offset have had writeback started.
    flushed: u64,
}

impl ActivePack {
    /// Creates pack `id` with its header.
    pub fn create(storage: &dyn Storage, dir: &Path, id: u32) -> io::Result<ActivePack> {
        let file = storage.open(&pack_path(dir, id), true)?;
        let mut header = Vec::with_capacity(HEADER_LEN as usize);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&PACK_VERSION.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        file.set_len(0)?;
        file.write_at(0, &header)?;
        Ok(ActivePack {
            id,
            file,
            len: HEADER_LEN,
            flushed: 0,
        })
    }

    /// Appends a record; returns the offset of the data inside the pack.
    pub fn append(&mut self, cid: &[u8], data: &[u8]) -> io::Result<u64> {
        let cid_len = u8::try_from(cid.len()).map_err(|_| invalid("CID longer than 255 bytes"))?;
        let data_len = u32::try_from(data.len()).map_err(|_| invalid("block over 4 GiB"))?;
        let mut head = Vec::with_capacity(6 + cid.len());
        head.push(RECORD_TAG);
        head.push(cid_len);
        head.extend_from_slice(cid);
        head.extend_from_slice(&data_len.to_le_bytes());
        let data_offset = self.len + head.len() as u64;
        // one write for small blocks, two for large ones (no copy)
        if data.len() <= 64 << 10 {
            head.extend_from_slice(data);
            self.file.write_at(self.len, &head)?;
        } else {
            self.file.write_at(self.len, &head)?;
            self.file.write_at(data_offset, data)?;
        }
        self.len = data_offset + data.len() as u64;
        if self.len - self.flushed >= WRITEBACK_STEP {
            self.file.start_writeback(self.flushed, self.len - self.flushed);
            self.flushed = self.len;
        }
        Ok(data_offset)
    }
}

/// Checks a pack header.
pub fn check_header(file: &dyn StorageFile) -> io::Result<()> {
    let mut header = [0u8; HEADER_LEN as usize];
    file.read_at(0, &mut header)?;
    if &header[..8] != MAGIC {
        return Err(invalid("not a shoal pack file"));
    }
    let version = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
    if version != PACK_VERSION {
        return Err(invalid("unsupported pack version"));
    }
    Ok(())
}

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}
