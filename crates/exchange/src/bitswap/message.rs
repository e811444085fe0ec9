//! The bitswap wire message (protobuf, the same for 1.0.0, 1.1.0 and 1.2.0):
//!
//! ```text
//! Message { Wantlist wantlist = 1; repeated bytes blocks = 2;
//!           repeated Block payload = 3; repeated BlockPresence blockPresences = 4;
//!           int32 pendingBytes = 5; }
//! Wantlist { repeated Entry entries = 1; bool full = 2; }
//! Entry { bytes block = 1; int32 priority = 2; bool cancel = 3;
//!         WantType wantType = 4 (Block 0, Have 1); bool sendDontHave = 5; }
//! Block { bytes prefix = 1; bytes data = 2; }
//! BlockPresence { bytes cid = 1; Type type = 2 (Have 0, DontHave 1); }
//! ```
//! Decoding is bounded (message size, entry count) and never panics; a
//! block's CID is rebuilt from its prefix by hashing its data.

use shoal_ipld::block::{cid_exact, sha256, SHA2_256};
use shoal_ipld::dagpb::{DagPbError, Reader};
use shoal_ipld::pb::{bytes_field, skip, varint_field};
use shoal_ipld::Cid;

/// Largest message accepted or sent (bytes), as go-bitswap and js-ipfs-bitswap.
pub const MAX_MESSAGE: usize = 4 << 20;
/// Most wantlist entries accepted in one message.
pub const MAX_ENTRIES: usize = 1024;
/// Most blocks or presences accepted in one message.
pub const MAX_ITEMS: usize = 8192;

/// Want a block, or only to know whether the peer has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WantType {
    Block,
    Have,
}

/// One wantlist entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub cid: Cid,
    pub priority: i32,
    pub cancel: bool,
    pub want: WantType,
    pub send_dont_have: bool,
}

/// Whether a peer has a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    Have,
    DontHave,
}

/// A decoded or to-be-sent message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    pub entries: Vec<Entry>,
    pub full: bool,
    /// Blocks with their CIDs (rebuilt from the prefix on decode).
    pub blocks: Vec<(Cid, Vec<u8>)>,
    pub presences: Vec<(Cid, Presence)>,
    pub pending_bytes: i32,
}

/// Why a message was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MessageError {
    #[error("bitswap message of {0} bytes is over the limit")]
    TooLarge(usize),
    #[error("bitswap message: {0}")]
    Proto(#[from] DagPbError),
    #[error("bitswap message: more than {0} entries or items")]
    TooMany(usize),
    #[error("bitswap message: bad CID: {0}")]
    BadCid(String),
    #[error("bitswap message: unsupported block prefix: {0}")]
    BadPrefix(String),
}

impl Message {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.blocks.is_empty() && self.presences.is_empty() && !self.full
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.entries.is_empty() || self.full {
            let mut wl = Vec::new();
            for e in &self.entries {
                let mut en = Vec::new();
                bytes_field(&mut en, 1, &e.cid.to_bytes());
                if e.priority != 0 {
                    varint_field(&mut en, 2, e.priority as i64 as u64);
                }
                if e.cancel {
                    varint_field(&mut en, 3, 1);
                }
                if e.want == WantType::Have {
                    varint_field(&mut en, 4, 1);
                }
                if e.send_dont_have {
                    varint_field(&mut en, 5, 1);
                }
                bytes_field(&mut wl, 1, &en);
            }
            if self.full {
                varint_field(&mut wl, 2, 1);
            }
            bytes_field(&mut out, 1, &wl);
        }
        for (cid, data) in &self.blocks {
            let mut b = Vec::new();
            bytes_field(&mut b, 1, &prefix(cid));
            bytes_field(&mut b, 2, data);
            bytes_field(&mut out, 3, &b);
        }
        for (cid, p) in &self.presences {
            let mut b = Vec::new();
            bytes_field(&mut b, 1, &cid.to_bytes());
            if *p == Presence::DontHave {
                varint_field(&mut b, 2, 1);
            }
            bytes_field(&mut out, 4, &b);
        }
        if self.pending_bytes != 0 {
            varint_field(&mut out, 5, self.pending_bytes as i64 as u64);
        }
        out
    }

    pub fn decode(buf: &[u8]) -> Result<Message, MessageError> {
        if buf.len() > MAX_MESSAGE + 64 * 1024 {
            return Err(MessageError::TooLarge(buf.len()));
        }
        let mut m = Message::default();
        let mut r = Reader::new(buf);
        while !r.done() {
            match r.key()? {
                (1, 2) => decode_wantlist(r.bytes()?, &mut m)?,
                (2, 2) => {
                    let data = r.bytes()?;
                    // bitswap 1.0.0: CIDv0 blocks without a prefix
                    let cid = Cid::new_v0(sha256(data)).map_err(|e| MessageError::BadCid(e.to_string()))?;
                    push_limited(&mut m.blocks, (cid, data.to_vec()))?;
                }
                (3, 2) => {
                    let block = decode_block(r.bytes()?)?;
                    push_limited(&mut m.blocks, block)?;
                }
                (4, 2) => {
                    let p = decode_presence(r.bytes()?)?;
                    push_limited(&mut m.presences, p)?;
                }
                (5, 0) => m.pending_bytes = r.varint()? as i32,
                (field, wire) => skip(&mut r, field, wire)?,
            }
        }
        Ok(m)
    }
}

fn push_limited<T>(v: &mut Vec<T>, item: T) -> Result<(), MessageError> {
    if v.len() >= MAX_ITEMS {
        return Err(MessageError::TooMany(MAX_ITEMS));
    }
    v.push(item);
    Ok(())
}

fn decode_wantlist(buf: &[u8], m: &mut Message) -> Result<(), MessageError> {
    let mut r = Reader::new(buf);
    while !r.done() {
        match r.key()? {
            (1, 2) => {
                if m.entries.len() >= MAX_ENTRIES {
                    return Err(MessageError::TooMany(MAX_ENTRIES));
                }
                m.entries.push(decode_entry(r.bytes()?)?);
            }
            (2, 0) => m.full = r.varint()? != 0,
            (field, wire) => skip(&mut r, field, wire)?,
        }
    }
    Ok(())
}

fn decode_entry(buf: &[u8]) -> Result<Entry, MessageError> {
    let mut r = Reader::new(buf);
    let mut e = Entry {
        cid: Cid::default(),
        priority: 0,
        cancel: false,
        want: WantType::Block,
        send_dont_have: false,
    };
    let mut have_cid = false;
    while !r.done() {
        match r.key()? {
            (1, 2) => {
                e.cid = cid_exact(r.bytes()?).map_err(MessageError::BadCid)?;
                have_cid = true;
            }
            (2, 0) => e.priority = r.varint()? as i32,
            (3, 0) => e.cancel = r.varint()? != 0,
            (4, 0) => {
                e.want = if r.varint()? == 1 {
                    WantType::Have
                } else {
                    WantType::Block
                }
            }
            (5, 0) => e.send_dont_have = r.varint()? != 0,
            (field, wire) => skip(&mut r, field, wire)?,
        }
    }
    if !have_cid {
        return Err(MessageError::BadCid("entry without a CID".into()));
    }
    Ok(e)
}

fn decode_block(buf: &[u8]) -> Result<(Cid, Vec<u8>), MessageError> {
    let mut r = Reader::new(buf);
    let (mut pre, mut data) = (None, None);
    while !r.done() {
        match r.key()? {
            (1, 2) => pre = Some(r.bytes()?),
            (2, 2) => data = Some(r.bytes()?),
            (field, wire) => skip(&mut r, field, wire)?,
        }
    }
    let pre = pre.ok_or_else(|| MessageError::BadPrefix("missing".into()))?;
    let data = data.unwrap_or_default();
    Ok((cid_from_prefix(pre, data)?, data.to_vec()))
}

fn decode_presence(buf: &[u8]) -> Result<(Cid, Presence), MessageError> {
    let mut r = Reader::new(buf);
    let (mut cid, mut kind) = (None, Presence::Have);
    while !r.done() {
        match r.key()? {
            (1, 2) => cid = Some(cid_exact(r.bytes()?).map_err(MessageError::BadCid)?),
            (2, 0) => {
                kind = if r.varint()? == 1 {
                    Presence::DontHave
                } else {
                    Presence::Have
                }
            }
            (field, wire) => skip(&mut r, field, wire)?,
        }
    }
    Ok((
        cid.ok_or_else(|| MessageError::BadCid("presence without a CID".into()))?,
        kind,
    ))
}

/// The CID prefix: varint version, codec, multihash code, digest length.
pub fn prefix(cid: &Cid) -> Vec<u8> {
    let mut out = Vec::with_capacity(8);
    let version: u64 = match cid.version() {
        shoal_ipld::cid::Version::V0 => 0,
        shoal_ipld::cid::Version::V1 => 1,
    };
    for v in [
        version,
        cid.codec(),
        cid.hash().code(),
        u64::from(cid.hash().size()),
    ] {
        let mut v = v;
        while v >= 0x80 {
            out.push(v as u8 | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    out
}

/// Rebuilds a block's CID from its prefix by hashing its data (sha2-256).
fn cid_from_prefix(pre: &[u8], data: &[u8]) -> Result<Cid, MessageError> {
    let mut r = Reader::new(pre);
    let bad = |m: &str| MessageError::BadPrefix(m.into());
    let version = r.varint().map_err(|_| bad("truncated"))?;
    let codec = r.varint().map_err(|_| bad("truncated"))?;
    let mh = r.varint().map_err(|_| bad("truncated"))?;
    let len = r.varint().map_err(|_| bad("truncated"))?;
    if mh != SHA2_256 || len != 32 {
        return Err(bad("only sha2-256 blocks are accepted"));
    }
    let hash = sha256(data);
    match version {
        0 if codec == 0x70 => Cid::new_v0(hash).map_err(|e| MessageError::BadCid(e.to_string())),
        1 => Ok(Cid::new_v1(codec, hash)),
        _ => Err(bad("unknown CID version")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_ipld::block::cid_of;
    use shoal_ipld::Codec;

    fn sample() -> Message {
        let raw = cid_of(Codec::Raw, 1, b"leaf");
        let pb = cid_of(Codec::DagPb, 0, b"\x0a\x02\x08\x01");
        Message {
            entries: vec![
                Entry {
                    cid: raw,
                    priority: 5,
                    cancel: false,
                    want: WantType::Have,
                    send_dont_have: true,
                },
                Entry {
                    cid: pb,
                    priority: 0,
                    cancel: true,
                    want: WantType::Block,
                    send_dont_have: false,
                },
            ],
            full: true,
            blocks: vec![(raw, b"leaf".to_vec()), (pb, b"\x0a\x02\x08\x01".to_vec())],
            presences: vec![(raw, Presence::DontHave), (pb, Presence::Have)],
            pending_bytes: 7,
        }
    }

    #[test]
    fn round_trips() {
        let m = sample();
        assert_eq!(Message::decode(&m.encode()).unwrap(), m);
        assert_eq!(Message::decode(&[]).unwrap(), Message::default());
    }

    #[test]
    fn a_block_whose_prefix_lies_gets_the_cid_of_its_data() {
        let honest = cid_of(Codec::Raw, 1, b"real");
        let m = Message {
            blocks: vec![(honest, b"fake".to_vec())],
            ..Default::default()
        };
        let got = Message::decode(&m.encode()).unwrap();
        assert_ne!(
            got.blocks[0].0, honest,
            "the CID comes from the data, so a swapped block is detectable"
        );
    }

    #[test]
    fn bad_input_is_refused_not_panicking() {
        let bytes = sample().encode();
        for cut in 0..bytes.len() {
            let _ = Message::decode(&bytes[..cut]);
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0xff;
            let _ = Message::decode(&b);
        }
        let too_many = Message {
            entries: vec![sample().entries[0].clone(); MAX_ENTRIES + 1],
            ..Default::default()
        };
        assert_eq!(
            Message::decode(&too_many.encode()),
            Err(MessageError::TooMany(MAX_ENTRIES))
        );
        let mut blake = Message::default().encode();
        bytes_field(&mut blake, 3, &{
            let mut b = Vec::new();
            bytes_field(&mut b, 1, &[1, 0x55, 0x1e, 32]);
            bytes_field(&mut b, 2, b"x");
            b
        });
        assert!(matches!(Message::decode(&blake), Err(MessageError::BadPrefix(_))));
    }
}
