//! The wire format of the DAG sync protocol. Every message is protobuf,
//! framed with a uvarint length on the stream:
//!
//! ```text
//! Request { uint64 version = 1; bytes root = 2; string path = 3;
//!           uint64 range_start = 4; uint64 range_len = 5;
//!           repeated bytes want = 6; repeated bytes have = 7; uint64 window = 8;
//!           bool blocks_only = 9; }
//! Frame   { oneof { Block block = 1; bytes dont_have = 2; End end = 3; uint64 credit = 4; } }
//! Block   { bytes cid = 1; bytes data = 2; }
//! End     { uint64 status = 1; string message = 2; }
//! ```
//!
//! Decoding is bounded (sizes, counts) and never panics.

use shoal_ipld::block::cid_exact;
use shoal_ipld::dagpb::{DagPbError, Reader, MAX_BLOCK_SIZE};
use shoal_ipld::path::MAX_PATH_LEN;
use shoal_ipld::pb::{bytes_field, skip, varint_field};
use shoal_ipld::{varint, Cid};

/// The version this code speaks.
pub const VERSION: u64 = 1;
/// Largest request accepted.
pub const MAX_REQUEST: usize = 256 << 10;
/// Largest frame accepted: one block and its CID.
pub const MAX_FRAME: usize = MAX_BLOCK_SIZE + 1024;
/// Most `want` CIDs in one request.
pub const MAX_WANT: usize = 4096;
/// Most `have` roots in one request.
pub const MAX_HAVE: usize = 64;

/// Part of a file: `len` bytes from `start` (`None`: to the end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub len: Option<u64>,
}

impl ByteRange {
    /// The end offset (exclusive), saturating.
    pub fn end(&self) -> u64 {
        self.len.map_or(u64::MAX, |l| self.start.saturating_add(l))
    }
}

/// What the requester asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The DAG the request is about.
    pub root: Cid,
    /// Path segments below `root` (UnixFS names); the blocks on the way
    /// are sent first, then the DAG the path names.
    pub path: Vec<String>,
    /// Only the blocks needed for these bytes of the file the path names.
    pub range: Option<ByteRange>,
    /// If not empty: the subtrees to send (the requester's frontier), in
    /// this order, instead of root/path.
    pub want: Vec<Cid>,
    /// Roots of DAGs the requester holds completely: none of their blocks
    /// is sent.
    pub have: Vec<Cid>,
    /// Bytes of block data the responder may send before it gets credit.
    pub window: u64,
    /// With `want`: send the wanted blocks themselves, not their subtrees
    /// (a follower walking only the changed paths of a new snapshot).
    pub blocks_only: bool,
}

/// How a response ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndStatus {
    /// Everything the responder has was sent.
    Done,
    /// The path does not resolve (or the responder lacks a block on it).
    NotFound,
    /// The request was refused or the responder failed.
    Error,
}

/// One message on the response direction (and `Credit` on the request one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    Block {
        cid: Cid,
        data: Vec<u8>,
    },
    /// The responder lacks this block (its subtree is not sent either).
    DontHave(Cid),
    End {
        status: EndStatus,
        message: String,
    },
    /// More bytes the responder may send.
    Credit(u64),
}

/// Why bytes from a peer were refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("sync message of {0} bytes is over the limit")]
    TooLarge(usize),
    #[error("sync message: {0}")]
    Proto(#[from] DagPbError),
    #[error("sync message: bad CID: {0}")]
    BadCid(String),
    #[error("sync message: {0}")]
    Invalid(&'static str),
    #[error("sync request version {0} is not supported (this is version {VERSION})")]
    Version(u64),
}

fn cid(bytes: &[u8]) -> Result<Cid, WireError> {
    cid_exact(bytes).map_err(|e| WireError::BadCid(e.to_string()))
}

impl Request {
    /// A request for the whole DAG under `root`.
    pub fn new(root: Cid) -> Request {
        Request {
            root,
            path: Vec::new(),
            range: None,
            want: Vec::new(),
            have: Vec::new(),
            window: 8 << 20,
            blocks_only: false,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        varint_field(&mut out, 1, VERSION);
        bytes_field(&mut out, 2, &self.root.to_bytes());
        if !self.path.is_empty() {
            bytes_field(&mut out, 3, self.path.join("/").as_bytes());
        }
        if let Some(r) = self.range {
            varint_field(&mut out, 4, r.start);
            if let Some(len) = r.len {
                varint_field(&mut out, 5, len);
            }
        }
        for c in &self.want {
            bytes_field(&mut out, 6, &c.to_bytes());
        }
        for c in &self.have {
            bytes_field(&mut out, 7, &c.to_bytes());
        }
        varint_field(&mut out, 8, self.window);
        if self.blocks_only {
            varint_field(&mut out, 9, 1);
        }
        out
    }

    pub fn decode(buf: &[u8]) -> Result<Request, WireError> {
        if buf.len() > MAX_REQUEST {
            return Err(WireError::TooLarge(buf.len()));
        }
        let (mut version, mut root, mut path) = (0, None, None);
        let (mut start, mut len) = (None, None);
        let (mut want, mut have, mut window, mut blocks_only) = (Vec::new(), Vec::new(), 0, false);
        let mut r = Reader::new(buf);
        while !r.done() {
            match r.key()? {
                (1, 0) => version = r.varint()?,
                (2, 2) => root = Some(cid(r.bytes()?)?),
                (3, 2) => path = Some(parse_path(r.bytes()?)?),
                (4, 0) => start = Some(r.varint()?),
                (5, 0) => len = Some(r.varint()?),
                (6, 2) if want.len() >= MAX_WANT => return Err(WireError::Invalid("too many wants")),
                (6, 2) => want.push(cid(r.bytes()?)?),
                (7, 2) if have.len() >= MAX_HAVE => return Err(WireError::Invalid("too many haves")),
                (7, 2) => have.push(cid(r.bytes()?)?),
                (8, 0) => window = r.varint()?,
                (9, 0) => blocks_only = r.varint()? != 0,
                (field, wire) => skip(&mut r, field, wire)?,
            }
        }
        if version != VERSION {
            return Err(WireError::Version(version));
        }
        let range = match (start, len) {
            (None, None) => None,
            (start, len) => Some(ByteRange {
                start: start.unwrap_or(0),
                len,
            }),
        };
        Ok(Request {
            root: root.ok_or(WireError::Invalid("no root"))?,
            path: path.unwrap_or_default(),
            range,
            want,
            have,
            window,
            blocks_only,
        })
    }
}

fn parse_path(bytes: &[u8]) -> Result<Vec<String>, WireError> {
    if bytes.len() > MAX_PATH_LEN {
        return Err(WireError::Invalid("path too long"));
    }
    let s = std::str::from_utf8(bytes).map_err(|_| WireError::Invalid("path is not UTF-8"))?;
    let segs: Vec<String> = s.split('/').map(str::to_owned).collect();
    if segs.iter().any(|s| s.is_empty() || s == "." || s == "..") {
        return Err(WireError::Invalid("path has an empty, '.' or '..' segment"));
    }
    Ok(segs)
}

impl EndStatus {
    fn code(self) -> u64 {
        match self {
            EndStatus::Done => 0,
            EndStatus::NotFound => 1,
            EndStatus::Error => 2,
        }
    }

    fn from_code(c: u64) -> EndStatus {
        match c {
            0 => EndStatus::Done,
            1 => EndStatus::NotFound,
            _ => EndStatus::Error,
        }
    }
}

impl Frame {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Frame::Block { cid, data } => {
                // one copy of the data: sizes first, then straight into `out`
                let cid = cid.to_bytes();
                let inner = field_len(cid.len()) + field_len(data.len());
                out.reserve_exact(field_len(inner));
                varint::encode(1 << 3 | 2, &mut out);
                varint::encode(inner as u64, &mut out);
                bytes_field(&mut out, 1, &cid);
                bytes_field(&mut out, 2, data);
            }
            Frame::DontHave(cid) => bytes_field(&mut out, 2, &cid.to_bytes()),
            Frame::End { status, message } => {
                let mut b = Vec::new();
                varint_field(&mut b, 1, status.code());
                if !message.is_empty() {
                    bytes_field(&mut b, 2, message.as_bytes());
                }
                bytes_field(&mut out, 3, &b);
            }
            Frame::Credit(n) => varint_field(&mut out, 4, *n),
        }
        out
    }

    pub fn decode(buf: &[u8]) -> Result<Frame, WireError> {
        if buf.len() > MAX_FRAME {
            return Err(WireError::TooLarge(buf.len()));
        }
        let mut r = Reader::new(buf);
        let mut frame = None;
        while !r.done() {
            let f = match r.key()? {
                (1, 2) => decode_block(r.bytes()?)?,
                (2, 2) => Frame::DontHave(cid(r.bytes()?)?),
                (3, 2) => decode_end(r.bytes()?)?,
                (4, 0) => Frame::Credit(r.varint()?),
                (field, wire) => {
                    skip(&mut r, field, wire)?;
                    continue;
                }
            };
            if frame.replace(f).is_some() {
                return Err(WireError::Invalid("two messages in one frame"));
            }
        }
        frame.ok_or(WireError::Invalid("empty frame"))
    }
}

/// Bytes a length-delimited field of `len` bytes takes (one-byte tag).
fn field_len(len: usize) -> usize {
    1 + varint::encoded_len(len as u64) + len
}

fn decode_block(buf: &[u8]) -> Result<Frame, WireError> {
    let (mut c, mut data) = (None, None);
    let mut r = Reader::new(buf);
    while !r.done() {
        match r.key()? {
            (1, 2) => c = Some(cid(r.bytes()?)?),
            (2, 2) => data = Some(r.bytes()?.to_vec()),
            (field, wire) => skip(&mut r, field, wire)?,
        }
    }
    Ok(Frame::Block {
        cid: c.ok_or(WireError::Invalid("block without a CID"))?,
        data: data.unwrap_or_default(),
    })
}

fn decode_end(buf: &[u8]) -> Result<Frame, WireError> {
    let (mut status, mut message) = (0, String::new());
    let mut r = Reader::new(buf);
    while !r.done() {
        match r.key()? {
            (1, 0) => status = r.varint()?,
            (2, 2) => {
                let m = r.bytes()?;
                message = String::from_utf8_lossy(&m[..m.len().min(1024)]).into_owned();
            }
            (field, wire) => skip(&mut r, field, wire)?,
        }
    }
    Ok(Frame::End {
        status: EndStatus::from_code(status),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_ipld::block::cid_of;
    use shoal_ipld::Codec;

    fn c(n: u8) -> Cid {
        cid_of(Codec::Raw, 1, &[n])
    }

    #[test]
    fn requests_and_frames_round_trip() {
        let req = Request {
            root: c(1),
            path: vec!["a".into(), "b c".into()],
            range: Some(ByteRange {
                start: 5,
                len: Some(10),
            }),
            want: vec![c(2), c(3)],
            have: vec![c(4)],
            window: 1 << 20,
            blocks_only: true,
        };
        assert_eq!(Request::decode(&req.encode()).unwrap(), req);
        let open = Request {
            range: Some(ByteRange { start: 7, len: None }),
            ..Request::new(c(9))
        };
        assert_eq!(Request::decode(&open.encode()).unwrap(), open);
        for f in [
            Frame::Block {
                cid: c(1),
                data: vec![1],
            },
            Frame::DontHave(c(2)),
            Frame::End {
                status: EndStatus::NotFound,
                message: "x".into(),
            },
            Frame::Credit(12345),
        ] {
            assert_eq!(Frame::decode(&f.encode()).unwrap(), f);
        }
    }

    #[test]
    fn bad_requests_are_refused() {
        let mut bad = Request::new(c(1)).encode();
        bad[1] = 9; // version
        assert!(matches!(Request::decode(&bad), Err(WireError::Version(9))));
        let mut no_root = Vec::new();
        varint_field(&mut no_root, 1, VERSION);
        assert!(Request::decode(&no_root).is_err());
        let mut dots = Request::new(c(1));
        dots.path = vec!["..".into()];
        assert!(Request::decode(&dots.encode()).is_err());
        let mut many = Request::new(c(1));
        many.want = vec![c(2); MAX_WANT + 1];
        assert!(Request::decode(&many.encode()).is_err());
        assert!(Request::decode(&vec![0u8; MAX_REQUEST + 1]).is_err());
        assert!(Frame::decode(&[]).is_err());
        assert!(Frame::decode(&[0x0a, 0x05, 0x0a, 0x01]).is_err());
        let two = [Frame::Credit(1).encode(), Frame::Credit(2).encode()].concat();
        assert!(Frame::decode(&two).is_err());
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for len in 0..2000usize {
            let buf: Vec<u8> = (0..len % 97)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = Request::decode(&buf);
            let _ = Frame::decode(&buf);
        }
    }
}
