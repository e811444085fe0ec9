//! The UnixFS `Data` message carried in a dag-pb node's Data field.
//! Encoding follows the reference importer exactly: fields in number order,
//! `filesize` always for file/raw, `blocksizes` unpacked, default modes
//! (0644 files, 0755 directories) omitted, mtime nanoseconds as fixed32.

use shoal_ipld::dagpb::{DagPbError, Reader};

/// UnixFS node types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeType {
    Raw = 0,
    Directory = 1,
    File = 2,
    Metadata = 3,
    Symlink = 4,
    HamtShard = 5,
}

impl NodeType {
    fn from_code(c: u64) -> Option<NodeType> {
        Some(match c {
            0 => NodeType::Raw,
            1 => NodeType::Directory,
            2 => NodeType::File,
            3 => NodeType::Metadata,
            4 => NodeType::Symlink,
            5 => NodeType::HamtShard,
            _ => return None,
        })
    }

    fn is_dir(self) -> bool {
        matches!(self, NodeType::Directory | NodeType::HamtShard)
    }
}

/// Seconds and nanoseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mtime {
    pub secs: i64,
    /// Written only when non-zero (as kubo and the reference harness do).
    pub nsecs: u32,
}

/// A decoded or to-be-encoded UnixFS Data message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnixFsData {
    pub kind: NodeType,
    pub data: Vec<u8>,
    pub filesize: Option<u64>,
    pub blocksizes: Vec<u64>,
    pub hash_type: Option<u64>,
    pub fanout: Option<u64>,
    /// Permission bits (lower 12 bits).
    pub mode: Option<u32>,
    pub mtime: Option<Mtime>,
}

/// Why a UnixFS Data message did not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DataError {
    #[error("UnixFS data: {0}")]
    Proto(#[from] DagPbError),
    #[error("UnixFS data: unknown node type {0}")]
    UnknownType(u64),
    #[error("UnixFS data: no node type")]
    NoType,
    #[error("UnixFS data: too many blocksizes")]
    TooMany,
    #[error("UnixFS data: the sizes add up to more than 2^64 bytes")]
    SizeOverflow,
}

impl UnixFsData {
    pub fn new(kind: NodeType) -> UnixFsData {
        UnixFsData {
            kind,
            data: Vec::new(),
            filesize: None,
            blocksizes: Vec::new(),
            hash_type: None,
            fanout: None,
            mode: None,
            mtime: None,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 16 + 4 * self.blocksizes.len());
        key(&mut out, 1, 0);
        varint(&mut out, self.kind as u64);
        if !self.data.is_empty() {
            key(&mut out, 2, 2);
            varint(&mut out, self.data.len() as u64);
            out.extend_from_slice(&self.data);
        }
        if matches!(self.kind, NodeType::File | NodeType::Raw) {
            let size = self
                .filesize
                .unwrap_or(self.data.len() as u64 + self.blocksizes.iter().sum::<u64>());
            key(&mut out, 3, 0);
            varint(&mut out, size);
        }
        for b in &self.blocksizes {
            key(&mut out, 4, 0);
            varint(&mut out, *b);
        }
        if let Some(h) = self.hash_type {
            key(&mut out, 5, 0);
            varint(&mut out, h);
        }
        if let Some(f) = self.fanout {
            key(&mut out, 6, 0);
            varint(&mut out, f);
        }
        if let Some(mode) = self.encoded_mode() {
            key(&mut out, 7, 0);
            varint(&mut out, u64::from(mode));
        }
        if let Some(m) = self.mtime {
            let mut t = Vec::with_capacity(16);
            key(&mut t, 1, 0);
            varint(&mut t, m.secs as u64);
            if m.nsecs != 0 {
                key(&mut t, 2, 5);
                t.extend_from_slice(&m.nsecs.to_le_bytes());
            }
            key(&mut out, 8, 2);
            varint(&mut out, t.len() as u64);
            out.extend_from_slice(&t);
        }
        out
    }

    /// The mode as written: lower 12 bits, omitted when the type's default.
    fn encoded_mode(&self) -> Option<u32> {
        let mode = self.mode? & 0o7777;
        let default = if self.kind.is_dir() { 0o755 } else { 0o644 };
        (mode != default).then_some(mode)
    }

    /// The effective mode: the stored one or the type's default.
    pub fn mode_or_default(&self) -> u32 {
        self.mode
            .unwrap_or(if self.kind.is_dir() { 0o755 } else { 0o644 })
    }

    /// Size in bytes of the file content this node stands for.
    pub fn file_size(&self) -> u64 {
        self.filesize
            .unwrap_or(self.data.len() as u64 + self.blocksizes.iter().sum::<u64>())
    }

    pub fn decode(buf: &[u8]) -> Result<UnixFsData, DataError> {
        let mut r = Reader::new(buf);
        let mut kind = None;
        let mut d = UnixFsData::new(NodeType::Raw);
        while !r.done() {
            let at = r.pos();
            match r.key()? {
                (1, 0) => {
                    let c = r.varint()?;
                    kind = Some(NodeType::from_code(c).ok_or(DataError::UnknownType(c))?);
                }
                (2, 2) => d.data = r.bytes()?.to_vec(),
                (3, 0) => d.filesize = Some(r.varint()?),
                (4, 0) => {
                    if d.blocksizes.len() >= 1 << 16 {
                        return Err(DataError::TooMany);
                    }
                    d.blocksizes.push(r.varint()?)
                }
                (4, 2) => d.blocksizes.extend(packed(r.bytes()?)?),
                (5, 0) => d.hash_type = Some(r.varint()?),
                (6, 0) => d.fanout = Some(r.varint()?),
                (7, 0) => d.mode = Some((r.varint()? & 0o7777) as u32),
                (8, 2) => d.mtime = Some(mtime(r.bytes()?)?),
                (field, wire) => return Err(DagPbError::UnexpectedField { field, wire, at }.into()),
            }
        }
        d.kind = kind.ok_or(DataError::NoType)?;
        let total = d
            .blocksizes
            .iter()
            .try_fold(d.data.len() as u64, |a, b| a.checked_add(*b));
        if total.is_none() {
            return Err(DataError::SizeOverflow);
        }
        Ok(d)
    }
}

fn packed(buf: &[u8]) -> Result<Vec<u64>, DataError> {
    let mut r = Reader::new(buf);
    let mut out = Vec::new();
    while !r.done() {
        if out.len() >= 1 << 16 {
            return Err(DataError::TooMany);
        }
        out.push(r.varint()?);
    }
    Ok(out)
}

fn mtime(buf: &[u8]) -> Result<Mtime, DataError> {
    let mut r = Reader::new(buf);
    let mut m = Mtime { secs: 0, nsecs: 0 };
    while !r.done() {
        let at = r.pos();
        match r.key()? {
            (1, 0) => m.secs = r.varint()? as i64,
            (2, 5) => m.nsecs = r.fixed32()?,
            (field, wire) => return Err(DagPbError::UnexpectedField { field, wire, at }.into()),
        }
    }
    Ok(m)
}

fn key(out: &mut Vec<u8>, field: u64, wire: u64) {
    varint(out, (field << 3) | wire);
}

fn varint(out: &mut Vec<u8>, v: u64) {
    shoal_ipld::varint::encode(v, out);
}

pub(crate) use shoal_ipld::varint::encoded_len as varint_len;

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn matches_reference_bytes() {
        let mut leaf = UnixFsData::new(NodeType::File);
        leaf.data = b"hello world".to_vec();
        assert_eq!(hex(&leaf.encode()), "0802120b68656c6c6f20776f726c64180b");
        assert_eq!(hex(&UnixFsData::new(NodeType::File).encode()), "08021800");
        assert_eq!(hex(&UnixFsData::new(NodeType::Directory).encode()), "0801");
        let mut root = UnixFsData::new(NodeType::File);
        root.blocksizes = vec![262144, 45056];
        assert_eq!(
            hex(&root.encode()),
            "08021880e0122080801020".to_owned() + "80e002"
        );
        let mut m = UnixFsData::new(NodeType::File);
        m.mode = Some(0o755);
        m.mtime = Some(Mtime {
            secs: 1_700_000_000,
            nsecs: 5,
        });
        assert_eq!(hex(&m.encode()), "0802180038ed03420b0880e2cfaa061505000000");
        let mut d = UnixFsData::new(NodeType::Directory);
        d.mode = Some(0o755);
        assert_eq!(hex(&d.encode()), "0801");
        d.mode = Some(0o700);
        assert_eq!(hex(&d.encode()), "080138c003");
    }

    #[test]
    fn round_trips_and_rejects_garbage() {
        let mut m = UnixFsData::new(NodeType::HamtShard);
        m.data = vec![1, 2];
        m.hash_type = Some(0x22);
        m.fanout = Some(256);
        m.mtime = Some(Mtime { secs: -1, nsecs: 0 });
        assert_eq!(UnixFsData::decode(&m.encode()).unwrap(), m);
        assert_eq!(UnixFsData::decode(&[0x08, 0x09]), Err(DataError::UnknownType(9)));
        assert_eq!(UnixFsData::decode(&[]), Err(DataError::NoType));
        assert!(UnixFsData::decode(&[0x12, 0x05, 0x01]).is_err());
        // found by the fuzzer: sizes that overflow u64
        let overflow = [
            0x08, 0x02, 0x20, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x20, 0x01,
        ];
        assert_eq!(UnixFsData::decode(&overflow), Err(DataError::SizeOverflow));
    }
}
