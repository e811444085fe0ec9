//! The dag-pb codec (multicodec 0x70), strict as the IPLD spec asks:
//! `PBNode { Links (2) repeated, Data (1) optional }`, links before data,
//! `PBLink { Hash (1) required, Name (2), Tsize (3) }` in that order, no
//! unknown fields and no duplicates. Encoding is canonical, so the same node
//! always hashes to the same CID.

use crate::varint;
use cid::Cid;

/// Largest dag-pb block decoded (bytes). Blocks in the wild stay under 2 MiB.
pub const MAX_BLOCK_SIZE: usize = 4 << 20;

/// A link from one dag-pb node to another block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PbLink {
    pub hash: Cid,
    pub name: Option<String>,
    pub tsize: Option<u64>,
}

/// A decoded dag-pb node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PbNode {
    pub links: Vec<PbLink>,
    pub data: Option<Vec<u8>>,
}

/// Why bytes are not a valid dag-pb node.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DagPbError {
    #[error("dag-pb block is {0} bytes, over the {MAX_BLOCK_SIZE}-byte limit")]
    TooLarge(usize),
    #[error("dag-pb: truncated at byte {0}")]
    Truncated(usize),
    #[error("dag-pb: unexpected field {field} (wire type {wire}) at byte {at}")]
    UnexpectedField { field: u64, wire: u64, at: usize },
    #[error("dag-pb: varint not in its shortest form at byte {0}")]
    NonCanonical(usize),
    #[error("dag-pb: fields out of order or repeated at byte {0}")]
    FieldOrder(usize),
    #[error("dag-pb: link {index} has no hash")]
    MissingHash { index: usize },
    #[error("dag-pb: link {index} has an invalid CID: {reason}")]
    BadCid { index: usize, reason: String },
    #[error("dag-pb: link {index} has a name that is not UTF-8")]
    BadName { index: usize },
}

impl PbNode {
    /// Canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        for link in &self.links {
            out.push(0x12);
            varint::encode(link.encoded_len() as u64, &mut out);
            link.encode_into(&mut out);
        }
        if let Some(data) = &self.data {
            out.push(0x0a);
            varint::encode(data.len() as u64, &mut out);
            out.extend_from_slice(data);
        }
        out
    }

    /// Length of `encode()` without encoding.
    pub fn encoded_len(&self) -> usize {
        let links: usize = self
            .links
            .iter()
            .map(|l| {
                let n = l.encoded_len();
                1 + varint::encoded_len(n as u64) + n
            })
            .sum();
        let data = self
            .data
            .as_ref()
            .map_or(0, |d| 1 + varint::encoded_len(d.len() as u64) + d.len());
        links + data
    }

    /// Strict decoding; never panics.
    pub fn decode(buf: &[u8]) -> Result<PbNode, DagPbError> {
        if buf.len() > MAX_BLOCK_SIZE {
            return Err(DagPbError::TooLarge(buf.len()));
        }
        let mut node = PbNode::default();
        let mut r = Reader { buf, pos: 0 };
        while !r.done() {
            let at = r.pos;
            let (field, wire) = r.key()?;
            match (field, wire) {
                (2, 2) if node.data.is_none() => {
                    let bytes = r.bytes()?;
                    let index = node.links.len();
                    node.links.push(PbLink::decode(bytes, index, r.base(bytes))?);
                }
                (1, 2) if node.data.is_none() => node.data = Some(r.bytes()?.to_vec()),
                (1 | 2, 2) => return Err(DagPbError::FieldOrder(at)),
                _ => return Err(DagPbError::UnexpectedField { field, wire, at }),
            }
        }
        Ok(node)
    }
}

impl PbLink {
    fn encoded_len(&self) -> usize {
        let h = self.hash.encoded_len();
        let mut n = 1 + varint::encoded_len(h as u64) + h;
        if let Some(name) = &self.name {
            n += 1 + varint::encoded_len(name.len() as u64) + name.len();
        }
        if let Some(t) = self.tsize {
            n += 1 + varint::encoded_len(t);
        }
        n
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        let hash = self.hash.to_bytes();
        out.push(0x0a);
        varint::encode(hash.len() as u64, out);
        out.extend_from_slice(&hash);
        if let Some(name) = &self.name {
            out.push(0x12);
            varint::encode(name.len() as u64, out);
            out.extend_from_slice(name.as_bytes());
        }
        if let Some(t) = self.tsize {
            out.push(0x18);
            varint::encode(t, out);
        }
    }

    fn decode(buf: &[u8], index: usize, base: usize) -> Result<PbLink, DagPbError> {
        let mut r = Reader { buf, pos: 0 };
        let (mut hash, mut name, mut tsize) = (None, None, None);
        let mut last = 0;
        while !r.done() {
            let at = base + r.pos;
            let (field, wire) = r.key().map_err(|e| e.shifted(base))?;
            if field <= last {
                return Err(DagPbError::FieldOrder(at));
            }
            last = field;
            match (field, wire) {
                (1, 2) => {
                    let bytes = r.bytes().map_err(|e| e.shifted(base))?;
                    let cid = crate::block::cid_exact(bytes)
                        .map_err(|reason| DagPbError::BadCid { index, reason })?;
                    hash = Some(cid);
                }
                (2, 2) => {
                    let bytes = r.bytes().map_err(|e| e.shifted(base))?;
                    let s = std::str::from_utf8(bytes).map_err(|_| DagPbError::BadName { index })?;
                    name = Some(s.to_owned());
                }
                (3, 0) => tsize = Some(r.varint().map_err(|e| e.shifted(base))?),
                _ => return Err(DagPbError::UnexpectedField { field, wire, at }),
            }
        }
        let hash = hash.ok_or(DagPbError::MissingHash { index })?;
        Ok(PbLink { hash, name, tsize })
    }
}

impl DagPbError {
    fn shifted(self, base: usize) -> DagPbError {
        match self {
            DagPbError::Truncated(at) => DagPbError::Truncated(at + base),
            other => other,
        }
    }
}

/// A bounds-checked cursor over protobuf bytes (also used for UnixFS).
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    /// Current offset.
    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Offset of `sub` (a slice returned by `bytes`) inside the outer buffer.
    fn base(&self, sub: &[u8]) -> usize {
        self.pos - sub.len()
    }

    /// A varint in its shortest form (longer encodings would give one node
    /// several byte strings and so several CIDs).
    pub fn varint(&mut self) -> Result<u64, DagPbError> {
        let (v, n) = varint::decode(&self.buf[self.pos..]).ok_or(DagPbError::Truncated(self.pos))?;
        if n != varint::encoded_len(v) {
            return Err(DagPbError::NonCanonical(self.pos));
        }
        self.pos += n;
        Ok(v)
    }

    pub fn key(&mut self) -> Result<(u64, u64), DagPbError> {
        let k = self.varint()?;
        Ok((k >> 3, k & 7))
    }

    pub fn bytes(&mut self) -> Result<&'a [u8], DagPbError> {
        let len = self.varint()?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| self.pos.checked_add(l))
            .filter(|&e| e <= self.buf.len())
            .ok_or(DagPbError::Truncated(self.pos))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub fn fixed32(&mut self) -> Result<u32, DagPbError> {
        let end = self.pos + 4;
        let b = self
            .buf
            .get(self.pos..end)
            .ok_or(DagPbError::Truncated(self.pos))?;
        self.pos = end;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// The CIDs a block links to: none for raw, the links for dag-pb.
pub fn links(cid: &Cid, data: &[u8]) -> Result<Vec<Cid>, LinksError> {
    match crate::Codec::of(cid)? {
        crate::Codec::Raw => Ok(Vec::new()),
        crate::Codec::DagPb => {
            let node = PbNode::decode(data).map_err(|e| LinksError::DagPb(*cid, e))?;
            Ok(node.links.into_iter().map(|l| l.hash).collect())
        }
    }
}

/// Why the links of a block could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LinksError {
    #[error(transparent)]
    Codec(#[from] crate::BlockError),
    #[error("block {0}: {1}")]
    DagPb(Cid, DagPbError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{cid_of, Codec};

    fn link(n: u8) -> PbLink {
        PbLink {
            hash: cid_of(Codec::Raw, 1, &[n]),
            name: Some(format!("f{n}")),
            tsize: Some(u64::from(n) * 1000),
        }
    }

    #[test]
    fn round_trips() {
        let node = PbNode {
            links: vec![link(1), link(2)],
            data: Some(vec![8, 1]),
        };
        let bytes = node.encode();
        assert_eq!(bytes.len(), node.encoded_len());
        assert_eq!(PbNode::decode(&bytes).unwrap(), node);
        let empty = PbNode::default();
        assert_eq!(PbNode::decode(&empty.encode()).unwrap(), empty);
    }

    #[test]
    fn data_before_links_is_rejected() {
        let mut bytes = vec![0x0a, 0x01, 0x08];
        let mut l = Vec::new();
        link(1).encode_into(&mut l);
        bytes.push(0x12);
        varint::encode(l.len() as u64, &mut bytes);
        bytes.extend_from_slice(&l);
        assert!(matches!(PbNode::decode(&bytes), Err(DagPbError::FieldOrder(_))));
    }

    #[test]
    fn bad_links_are_rejected_not_panicking() {
        // link with no hash
        assert_eq!(
            PbNode::decode(&[0x12, 0x02, 0x18, 0x01]),
            Err(DagPbError::MissingHash { index: 0 })
        );
        // link whose hash is garbage
        assert!(matches!(
            PbNode::decode(&[0x12, 0x04, 0x0a, 0x02, 0x01, 0x02]),
            Err(DagPbError::BadCid { index: 0, .. })
        ));
        // length past the end
        assert!(matches!(
            PbNode::decode(&[0x0a, 0x05, 0x01]),
            Err(DagPbError::Truncated(_))
        ));
        // found by the fuzzer: an over-long length, and a CID with trailing junk
        assert_eq!(
            PbNode::decode(&[0x0a, 0x80, 0x00]),
            Err(DagPbError::NonCanonical(1))
        );
        let mut junk = vec![0x12, 0x2a, 0x0a, 0x28];
        junk.extend(cid_of(Codec::Raw, 1, b"x").to_bytes());
        junk.extend([0x6a, 0x75, 0x6e, 0x6b]);
        assert!(matches!(PbNode::decode(&junk), Err(DagPbError::BadCid { .. })));
        // unknown field
        assert!(matches!(
            PbNode::decode(&[0x20, 0x01]),
            Err(DagPbError::UnexpectedField { field: 4, .. })
        ));
        // every prefix of a valid node fails cleanly or parses
        let bytes = PbNode {
            links: vec![link(3)],
            data: Some(vec![1, 2, 3]),
        }
        .encode();
        for i in 0..bytes.len() {
            let _ = PbNode::decode(&bytes[..i]);
        }
    }
}
