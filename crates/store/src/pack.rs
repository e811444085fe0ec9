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
/// Pack files are written in whole, aligned pages (O_DIRECT where the file
/// system allows it: no page-cache copy and no writeback stalls).
const PAGE: usize = 4096;
/// Bytes buffered before full pages are written out.
const BUFFER: usize = 8 << 20;

pub fn pack_path(dir: &Path, id: u32) -> PathBuf {
    dir.join(format!("{id:08}.pack"))
}

/// Parses `NNNNNNNN.pack` back into an id.
pub fn pack_id(path: &Path) -> Option<u32> {
    let name = path.file_name()?.to_str()?;
    name.strip_suffix(".pack")?.parse().ok()
}

#[derive(Clone, Copy)]
#[repr(C, align(4096))]
struct Page([u8; PAGE]);

/// A page-aligned write buffer (what O_DIRECT needs).
struct AlignedBuf {
    pages: Vec<Page>,
    fill: usize,
}

impl AlignedBuf {
    fn new(bytes: usize) -> AlignedBuf {
        AlignedBuf {
            pages: vec![Page([0; PAGE]); bytes / PAGE],
            fill: 0,
        }
    }

    fn bytes(&mut self) -> &mut [u8] {
        let len = self.pages.len() * PAGE;
        // SAFETY: `Page` is a plain byte array with no padding, so the pages
        // are `len` contiguous, initialised bytes owned by `self.pages`.
        unsafe { std::slice::from_raw_parts_mut(self.pages.as_mut_ptr().cast::<u8>(), len) }
    }
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedBuf({} bytes buffered)", self.fill)
    }
}

/// The pack being appended to. Bytes collect in an aligned buffer; full
/// pages are written as the buffer fills, and `flush` writes the partial
/// last page (zero-padded; the next flush rewrites it) before a commit.
#[derive(Debug)]
pub struct ActivePack {
    pub id: u32,
    pub file: Arc<dyn StorageFile>,
    /// Logical end of the pack (header + records).
    pub len: u64,
    buf: AlignedBuf,
    /// File offset of the buffer's first byte (page-aligned).
    buf_start: u64,
}

impl ActivePack {
    /// Creates pack `id` with its header.
    pub fn create(storage: &dyn Storage, dir: &Path, id: u32) -> io::Result<ActivePack> {
        let file = storage.open_direct(&pack_path(dir, id))?;
        file.set_len(0)?;
        let mut pack = ActivePack {
            id,
            file,
            len: 0,
            buf: AlignedBuf::new(BUFFER),
            buf_start: 0,
        };
        let mut header = Vec::with_capacity(HEADER_LEN as usize);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&PACK_VERSION.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        pack.push(&header)?;
        Ok(pack)
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
        // on error the caller abandons this pack (see `BlockStore::append_to_pack`)
        let data_offset = self.len + head.len() as u64;
        self.push(&head)?;
        self.push(data)?;
        Ok(data_offset)
    }

    fn push(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let fill = self.buf.fill;
            let room = self.buf.bytes().len() - fill;
            let n = room.min(bytes.len());
            self.buf.bytes()[fill..fill + n].copy_from_slice(&bytes[..n]);
            self.buf.fill += n;
            self.len += n as u64;
            bytes = &bytes[n..];
            if self.buf.fill == self.buf.bytes().len() {
                self.write_full_pages()?;
            }
        }
        Ok(())
    }

    /// Writes every full page in the buffer and keeps the partial one.
    fn write_full_pages(&mut self) -> io::Result<()> {
        let fill = self.buf.fill;
        let full = fill / PAGE * PAGE;
        if full == 0 {
            return Ok(());
        }
        self.file.write_at(self.buf_start, &self.buf.bytes()[..full])?;
        self.buf.bytes().copy_within(full..fill, 0);
        self.buf.fill = fill - full;
        self.buf_start += full as u64;
        Ok(())
    }

    /// Writes everything buffered (the last page zero-padded) so a sync
    /// makes all appended records durable.
    pub fn flush(&mut self) -> io::Result<()> {
        self.write_full_pages()?;
        let fill = self.buf.fill;
        if fill > 0 {
            let buf = self.buf.bytes();
            buf[fill..PAGE].fill(0);
            self.file.write_at(self.buf_start, &buf[..PAGE])?;
        }
        Ok(())
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
