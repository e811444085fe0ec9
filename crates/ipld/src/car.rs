//! CAR v1 (content-addressed archive): a dag-cbor header `{roots, version: 1}`
//! followed by `varint(len) | CID | block bytes` sections.
//!
//! The reader is streaming and bounded: header and sections have size limits,
//! every CID must be one shoal supports, and every block is hashed against its
//! CID before it is returned.

use crate::block::{check_supported, verify, Block, BlockError};
use crate::varint;
use cid::Cid;
use std::io::{self, Read, Write};

/// Largest header accepted (bytes).
pub const MAX_HEADER: u64 = 1 << 20;
/// Largest section (CID + block) accepted (bytes).
pub const MAX_SECTION: u64 = (4 << 20) + 128;
/// Most roots accepted in a header.
pub const MAX_ROOTS: usize = 1024;

/// Why a CAR could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CarError {
    #[error("CAR: I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("CAR: truncated {0}")]
    Truncated(&'static str),
    #[error("CAR: header of {0} bytes is over the limit")]
    HeaderTooLarge(u64),
    #[error("CAR: malformed header: {0}")]
    BadHeader(&'static str),
    #[error("CAR: version {0} is not supported (only CAR v1)")]
    Version(u64),
    #[error("CAR: section of {len} bytes at offset {offset} is over the {MAX_SECTION}-byte limit")]
    SectionTooLarge { len: u64, offset: u64 },
    #[error("CAR: invalid CID at offset {offset}: {reason}")]
    BadCid { offset: u64, reason: String },
    #[error("CAR: {0}")]
    Block(#[from] BlockError),
}

/// Reads a CAR v1 stream, verifying each block.
pub struct CarReader<R> {
    inner: R,
    roots: Vec<Cid>,
    offset: u64,
}

impl<R: Read> CarReader<R> {
    /// Reads and checks the header.
    pub fn new(mut inner: R) -> Result<Self, CarError> {
        let (len, n) = read_varint(&mut inner)?.ok_or(CarError::Truncated("header length"))?;
        if len > MAX_HEADER {
            return Err(CarError::HeaderTooLarge(len));
        }
        let mut header = vec![0; len as usize];
        inner
            .read_exact(&mut header)
            .map_err(|_| CarError::Truncated("header"))?;
        let roots = parse_header(&header)?;
        Ok(CarReader {
            inner,
            roots,
            offset: n as u64 + len,
        })
    }

    /// The roots named in the header.
    pub fn roots(&self) -> &[Cid] {
        &self.roots
    }

    /// The next verified block, or `None` at a clean end of stream.
    pub fn next_block(&mut self) -> Result<Option<Block>, CarError> {
        let offset = self.offset;
        let Some((len, n)) = read_varint(&mut self.inner)? else {
            return Ok(None);
        };
        if len > MAX_SECTION {
            return Err(CarError::SectionTooLarge { len, offset });
        }
        // grow with the data actually read, not with what the length claims
        let mut section = Vec::with_capacity((len as usize).min(1 << 16));
        (&mut self.inner).take(len).read_to_end(&mut section)?;
        if section.len() as u64 != len {
            return Err(CarError::Truncated("block section"));
        }
        self.offset += n as u64 + len;
        let mut cursor = io::Cursor::new(&section[..]);
        let cid = Cid::read_bytes(&mut cursor).map_err(|e| CarError::BadCid {
            offset,
            reason: e.to_string(),
        })?;
        check_supported(&cid)?;
        let data = section.split_off(cursor.position() as usize);
        verify(&cid, &data)?;
        Ok(Some(Block { cid, data }))
    }
}

impl<R: Read> Iterator for CarReader<R> {
    type Item = Result<Block, CarError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_block().transpose()
    }
}

/// Reads a varint byte by byte; `None` on EOF before the first byte.
fn read_varint<R: Read>(r: &mut R) -> Result<Option<(u64, usize)>, CarError> {
    let mut buf = [0u8; 10];
    for i in 0..10 {
        let mut b = [0u8; 1];
        if r.read(&mut b)? == 0 {
            return if i == 0 {
                Ok(None)
            } else {
                Err(CarError::Truncated("varint"))
            };
        }
        buf[i] = b[0];
        if b[0] & 0x80 == 0 {
            return varint::decode(&buf[..=i])
                .map(Some)
                .ok_or(CarError::Truncated("varint"));
        }
    }
    Err(CarError::Truncated("varint"))
}

/// Writes a CAR v1 stream.
pub struct CarWriter<W> {
    inner: W,
}

impl<W: Write> CarWriter<W> {
    /// Writes the header naming `roots`.
    pub fn new(mut inner: W, roots: &[Cid]) -> Result<Self, CarError> {
        let header = encode_header(roots);
        let mut prefix = Vec::new();
        varint::encode(header.len() as u64, &mut prefix);
        inner.write_all(&prefix)?;
        inner.write_all(&header)?;
        Ok(CarWriter { inner })
    }

    /// Appends one block.
    pub fn write_block(&mut self, cid: &Cid, data: &[u8]) -> Result<(), CarError> {
        let cid_bytes = cid.to_bytes();
        let mut prefix = Vec::with_capacity(10 + cid_bytes.len());
        varint::encode((cid_bytes.len() + data.len()) as u64, &mut prefix);
        prefix.extend_from_slice(&cid_bytes);
        self.inner.write_all(&prefix)?;
        self.inner.write_all(data)?;
        Ok(())
    }

    /// Flushes and returns the inner writer.
    pub fn finish(mut self) -> Result<W, CarError> {
        self.inner.flush()?;
        Ok(self.inner)
    }
}

/// dag-cbor `{"roots": [CID...], "version": 1}` with keys in canonical order.
fn encode_header(roots: &[Cid]) -> Vec<u8> {
    let mut out = vec![0xa2];
    cbor_head(&mut out, 3, 5);
    out.extend_from_slice(b"roots");
    cbor_head(&mut out, 4, roots.len() as u64);
    for root in roots {
        let bytes = root.to_bytes();
        out.extend_from_slice(&[0xd8, 42]);
        cbor_head(&mut out, 2, bytes.len() as u64 + 1);
        out.push(0);
        out.extend_from_slice(&bytes);
    }
    cbor_head(&mut out, 3, 7);
    out.extend_from_slice(b"version");
    out.push(0x01);
    out
}

fn cbor_head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

/// Parses the header map; accepts the keys in any order, rejects anything
/// but `roots` (array of tag-42 CIDs) and `version`.
fn parse_header(buf: &[u8]) -> Result<Vec<Cid>, CarError> {
    let mut p = Cbor { buf, pos: 0 };
    let (major, entries) = p.head()?;
    if major != 5 {
        return Err(CarError::BadHeader("not a map"));
    }
    let (mut roots, mut version) = (None, None);
    for _ in 0..entries.min(16) {
        match p.text()? {
            "roots" => roots = Some(p.roots()?),
            "version" => match p.head()? {
                (0, v) => version = Some(v),
                _ => return Err(CarError::BadHeader("version is not an integer")),
            },
            _ => return Err(CarError::BadHeader("unknown key")),
        }
    }
    if entries > 16 || p.pos != buf.len() {
        return Err(CarError::BadHeader("trailing data"));
    }
    match version {
        Some(1) => {}
        Some(v) => return Err(CarError::Version(v)),
        None => return Err(CarError::BadHeader("no version")),
    }
    roots.ok_or(CarError::BadHeader("no roots"))
}

struct Cbor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cbor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CarError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or(CarError::Truncated("header"))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn head(&mut self) -> Result<(u8, u64), CarError> {
        let b = self.take(1)?[0];
        let (major, info) = (b >> 5, b & 0x1f);
        let n = match info {
            0..=23 => u64::from(info),
            24 => u64::from(self.take(1)?[0]),
            25 => u64::from(u16::from_be_bytes(self.take(2)?.try_into().unwrap_or_default())),
            26 => u64::from(u32::from_be_bytes(self.take(4)?.try_into().unwrap_or_default())),
            27 => u64::from_be_bytes(self.take(8)?.try_into().unwrap_or_default()),
            _ => return Err(CarError::BadHeader("indefinite or reserved length")),
        };
        Ok((major, n))
    }

    fn sized(&mut self, want: u8) -> Result<&'a [u8], CarError> {
        let (major, len) = self.head()?;
        if major != want {
            return Err(CarError::BadHeader("unexpected type"));
        }
        let len = usize::try_from(len).map_err(|_| CarError::Truncated("header"))?;
        self.take(len)
    }

    fn text(&mut self) -> Result<&'a str, CarError> {
        let bytes = self.sized(3)?;
        std::str::from_utf8(bytes).map_err(|_| CarError::BadHeader("key is not UTF-8"))
    }

    fn roots(&mut self) -> Result<Vec<Cid>, CarError> {
        let (major, n) = self.head()?;
        if major != 4 {
            return Err(CarError::BadHeader("roots is not an array"));
        }
        if n > MAX_ROOTS as u64 {
            return Err(CarError::BadHeader("too many roots"));
        }
        let mut roots = Vec::with_capacity(n as usize);
        for _ in 0..n {
            if self.head()? != (6, 42) {
                return Err(CarError::BadHeader("root is not a CID (tag 42)"));
            }
            let bytes = self.sized(2)?;
            let cid = match bytes.split_first() {
                Some((0, rest)) => crate::block::cid_exact(rest).ok(),
                _ => None,
            };
            roots.push(cid.ok_or(CarError::BadHeader("root CID does not parse"))?);
        }
        Ok(roots)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::Codec;

    fn sample() -> (Vec<Block>, Vec<u8>) {
        let blocks: Vec<Block> = (0..5u8)
            .map(|i| Block::new(Codec::Raw, 1, vec![i; 100 * i as usize]))
            .collect();
        let mut w = CarWriter::new(Vec::new(), &[blocks[0].cid]).unwrap();
        for b in &blocks {
            w.write_block(&b.cid, &b.data).unwrap();
        }
        (blocks, w.finish().unwrap())
    }

    #[test]
    fn round_trips() {
        let (blocks, bytes) = sample();
        let mut r = CarReader::new(&bytes[..]).unwrap();
        assert_eq!(r.roots(), &[blocks[0].cid]);
        let read: Vec<Block> = r.by_ref().collect::<Result<_, _>>().unwrap();
        assert_eq!(read, blocks);
    }

    #[test]
    fn every_truncation_is_an_error_or_a_clean_prefix() {
        let (_, bytes) = sample();
        for cut in 0..bytes.len() {
            let Ok(r) = CarReader::new(&bytes[..cut]) else {
                continue;
            };
            let roots = r.roots().to_vec();
            let Ok(read) = r.collect::<Result<Vec<Block>, _>>() else {
                continue;
            };
            // a clean end is only possible exactly at a section boundary
            let mut w = CarWriter::new(Vec::new(), &roots).unwrap();
            for b in &read {
                w.write_block(&b.cid, &b.data).unwrap();
            }
            assert_eq!(w.finish().unwrap(), &bytes[..cut], "cut at {cut}");
        }
    }

    #[test]
    fn corrupt_block_is_rejected() {
        let (_, mut bytes) = sample();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let r = CarReader::new(&bytes[..]).unwrap();
        let err = r.collect::<Result<Vec<_>, _>>().unwrap_err();
        assert!(
            matches!(err, CarError::Block(BlockError::HashMismatch { .. })),
            "{err}"
        );
    }

    #[test]
    fn garbage_header_is_rejected() {
        for bad in [
            &[0x01, 0xff][..],
            &[0x05, 0xa1, 0x61, b'x', 0x01, 0x00],
            &[0xff; 12],
        ] {
            assert!(CarReader::new(bad).is_err());
        }
    }
}
