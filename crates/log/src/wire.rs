//! The replication messages of a log channel (protobuf, one per frame):
//!
//! ```text
//! Message { oneof {
//!   Head      head = 1;       // fork, length, tree hash, signature
//!   Range     have = 2;       // entries held; ack = durably stored what the peer sent
//!   Range     want = 3;       // entries asked for
//!   Data      data = 4;       // entries start.. with a range proof against a head
//!   Extension extension = 5;  // name + opaque payload, untrusted
//! } }
//! Head  { uint64 fork = 1; uint64 length = 2; bytes tree_hash = 3; bytes signature = 4; }
//! Range { uint64 start = 1; uint64 length = 2; bool ack = 3; }
//! Data  { Head head = 1; uint64 start = 2; repeated bytes entries = 3;
//!         repeated Node nodes = 4; repeated Node roots = 5; }
//! Node  { uint64 index = 1; bytes hash = 2; uint64 size = 3; }
//! Extension { string name = 1; bytes payload = 2; }
//! ```
//!
//! Decoding is bounded (message size, entries, nodes, names) and never
//! panics; what a message claims is checked by the replication state, not
//! here.

use crate::tree::{Node, RangeProof, SignedHead};
use shoal_ipld::dagpb::{DagPbError, Reader};
use shoal_ipld::pb::{bytes_field, skip, varint_field};

/// Largest message accepted.
pub const MAX_MESSAGE: usize = 8 << 20;
/// Most entries in one Data message.
pub const MAX_ENTRIES: usize = 1024;
/// Most proof nodes in one Data message (64 levels, both kinds).
pub const MAX_NODES: usize = 256;
/// Longest extension name.
pub const MAX_NAME: usize = 64;
/// Largest extension payload.
pub const MAX_EXTENSION: usize = 64 << 10;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Head(SignedHead),
    Have {
        start: u64,
        length: u64,
        ack: bool,
    },
    Want {
        start: u64,
        length: u64,
    },
    Data {
        head: SignedHead,
        entries: Vec<Vec<u8>>,
        proof: RangeProof,
    },
    Extension {
        name: String,
        payload: Vec<u8>,
    },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("log message of {0} bytes is over the limit")]
    TooLarge(usize),
    #[error("log message: {0}")]
    Proto(#[from] DagPbError),
    #[error("log message: {0}")]
    Invalid(&'static str),
}

fn head_bytes(h: &SignedHead) -> Vec<u8> {
    let mut b = Vec::new();
    varint_field(&mut b, 1, h.fork);
    varint_field(&mut b, 2, h.length);
    bytes_field(&mut b, 3, &h.tree_hash);
    bytes_field(&mut b, 4, &h.signature);
    b
}

fn node_bytes(n: &Node) -> Vec<u8> {
    let mut b = Vec::new();
    varint_field(&mut b, 1, n.index);
    bytes_field(&mut b, 2, &n.hash);
    varint_field(&mut b, 3, n.size);
    b
}

fn range_bytes(start: u64, length: u64, ack: bool) -> Vec<u8> {
    let mut b = Vec::new();
    varint_field(&mut b, 1, start);
    varint_field(&mut b, 2, length);
    if ack {
        varint_field(&mut b, 3, 1);
    }
    b
}

impl Message {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Message::Head(h) => bytes_field(&mut out, 1, &head_bytes(h)),
            Message::Have { start, length, ack } => {
                bytes_field(&mut out, 2, &range_bytes(*start, *length, *ack))
            }
            Message::Want { start, length } => bytes_field(&mut out, 3, &range_bytes(*start, *length, false)),
            Message::Data { head, entries, proof } => {
                let mut b = Vec::new();
                bytes_field(&mut b, 1, &head_bytes(head));
                varint_field(&mut b, 2, proof.start);
                for e in entries {
                    bytes_field(&mut b, 3, e);
                }
                for n in &proof.nodes {
                    bytes_field(&mut b, 4, &node_bytes(n));
                }
                for n in &proof.roots {
                    bytes_field(&mut b, 5, &node_bytes(n));
                }
                bytes_field(&mut out, 4, &b);
            }
            Message::Extension { name, payload } => {
                let mut b = Vec::new();
                bytes_field(&mut b, 1, name.as_bytes());
                bytes_field(&mut b, 2, payload);
                bytes_field(&mut out, 5, &b);
            }
        }
        out
    }

    pub fn decode(buf: &[u8]) -> Result<Message, WireError> {
        if buf.len() > MAX_MESSAGE {
            return Err(WireError::TooLarge(buf.len()));
        }
        let mut r = Reader::new(buf);
        let mut msg = None;
        while !r.done() {
            let (n, wire) = r.key()?;
            if wire != 2 {
                skip(&mut r, n, wire)?;
                continue;
            }
            let b = r.bytes()?;
            let m = match n {
                1 => Message::Head(decode_head(b)?),
                2 => {
                    let (start, length, ack) = decode_range(b)?;
                    Message::Have { start, length, ack }
                }
                3 => {
                    let (start, length, _) = decode_range(b)?;
                    Message::Want { start, length }
                }
                4 => decode_data(b)?,
                5 => decode_extension(b)?,
                _ => continue, // a newer message kind: ignored
            };
            if msg.replace(m).is_some() {
                return Err(WireError::Invalid("two messages in one frame"));
            }
        }
        msg.ok_or(WireError::Invalid("empty message"))
    }
}

fn fixed<const N: usize>(b: &[u8]) -> Result<[u8; N], WireError> {
    b.try_into()
        .map_err(|_| WireError::Invalid("a hash or signature of the wrong size"))
}

fn decode_head(buf: &[u8]) -> Result<SignedHead, WireError> {
    let (mut fork, mut length, mut hash, mut sig) = (0, 0, None, None);
    let mut r = Reader::new(buf);
    while !r.done() {
        match r.key()? {
            (1, 0) => fork = r.varint()?,
            (2, 0) => length = r.varint()?,
            (3, 2) => hash = Some(fixed::<32>(r.bytes()?)?),
            (4, 2) => sig = Some(fixed::<64>(r.bytes()?)?),
            (f, w) => skip(&mut r, f, w)?,
        }
    }
    Ok(SignedHead {
        fork,
        length,
        tree_hash: hash.ok_or(WireError::Invalid("head without a tree hash"))?,
        signature: sig.ok_or(WireError::Invalid("head without a signature"))?,
    })
}

fn decode_range(buf: &[u8]) -> Result<(u64, u64, bool), WireError> {
    let (mut start, mut length, mut ack) = (0, 0, false);
    let mut r = Reader::new(buf);
    while !r.done() {
        match r.key()? {
            (1, 0) => start = r.varint()?,
            (2, 0) => length = r.varint()?,
            (3, 0) => ack = r.varint()? != 0,
            (f, w) => skip(&mut r, f, w)?,
        }
    }
    start
        .checked_add(length)
        .ok_or(WireError::Invalid("range past the end of u64"))?;
    Ok((start, length, ack))
}

fn decode_node(buf: &[u8]) -> Result<Node, WireError> {
    let (mut index, mut hash, mut size) = (0, None, 0);
    let mut r = Reader::new(buf);
    while !r.done() {
        match r.key()? {
            (1, 0) => index = r.varint()?,
            (2, 2) => hash = Some(fixed::<32>(r.bytes()?)?),
            (3, 0) => size = r.varint()?,
            (f, w) => skip(&mut r, f, w)?,
        }
    }
    Ok(Node {
        index,
        hash: hash.ok_or(WireError::Invalid("node without a hash"))?,
        size,
    })
}

fn decode_data(buf: &[u8]) -> Result<Message, WireError> {
    let (mut head, mut start) = (None, 0);
    let (mut entries, mut nodes, mut roots) = (Vec::new(), Vec::new(), Vec::new());
    let mut r = Reader::new(buf);
    while !r.done() {
        match r.key()? {
            (1, 2) => head = Some(decode_head(r.bytes()?)?),
            (2, 0) => start = r.varint()?,
            (3, 2) if entries.len() >= MAX_ENTRIES => return Err(WireError::Invalid("too many entries")),
            (3, 2) => entries.push(r.bytes()?.to_vec()),
            (4 | 5, 2) if nodes.len() + roots.len() >= MAX_NODES => {
                return Err(WireError::Invalid("too many nodes"))
            }
            (4, 2) => nodes.push(decode_node(r.bytes()?)?),
            (5, 2) => roots.push(decode_node(r.bytes()?)?),
            (f, w) => skip(&mut r, f, w)?,
        }
    }
    if entries.is_empty() {
        return Err(WireError::Invalid("data without entries"));
    }
    let end = start
        .checked_add(entries.len() as u64)
        .ok_or(WireError::Invalid("range past the end of u64"))?;
    Ok(Message::Data {
        head: head.ok_or(WireError::Invalid("data without a head"))?,
        entries,
        proof: RangeProof {
            start,
            end,
            nodes,
            roots,
        },
    })
}

fn decode_extension(buf: &[u8]) -> Result<Message, WireError> {
    let (mut name, mut payload) = (None, Vec::new());
    let mut r = Reader::new(buf);
    while !r.done() {
        match r.key()? {
            (1, 2) => {
                let b = r.bytes()?;
                if b.is_empty() || b.len() > MAX_NAME {
                    return Err(WireError::Invalid("extension name empty or too long"));
                }
                name = Some(
                    String::from_utf8(b.to_vec())
                        .map_err(|_| WireError::Invalid("extension name not UTF-8"))?,
                );
            }
            (2, 2) => {
                let b = r.bytes()?;
                if b.len() > MAX_EXTENSION {
                    return Err(WireError::Invalid("extension payload too large"));
                }
                payload = b.to_vec();
            }
            (f, w) => skip(&mut r, f, w)?,
        }
    }
    Ok(Message::Extension {
        name: name.ok_or(WireError::Invalid("extension without a name"))?,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tree;
    use ed25519_dalek::SigningKey;

    #[test]
    fn messages_round_trip_and_a_data_proof_still_verifies() {
        let key = SigningKey::from_bytes(&[3u8; 32]);
        let mut t = Tree::default();
        let entries: Vec<Vec<u8>> = (0..9).map(|i| vec![i as u8; 10 + i]).collect();
        for e in &entries {
            t.append(e);
        }
        let head = t.sign(&key);
        let proof = t.range_proof(2, 5).unwrap();
        let msgs = [
            Message::Head(head),
            Message::Have {
                start: 0,
                length: 9,
                ack: true,
            },
            Message::Want { start: 4, length: 2 },
            Message::Data {
                head,
                entries: entries[2..5].to_vec(),
                proof: proof.clone(),
            },
            Message::Extension {
                name: "shoal/snapshot-hint".into(),
                payload: b"{}".to_vec(),
            },
        ];
        for m in msgs {
            let back = Message::decode(&m.encode()).unwrap();
            assert_eq!(back, m);
            if let Message::Data { head, entries, proof } = back {
                let refs: Vec<&[u8]> = entries.iter().map(|e| &e[..]).collect();
                proof.verify(&refs, &head).unwrap();
                head.verify(&key.verifying_key()).unwrap();
            }
        }
    }

    #[test]
    fn bad_messages_are_errors_not_panics() {
        assert!(Message::decode(&[]).is_err());
        let two = [
            Message::Want { start: 0, length: 1 }.encode(),
            Message::Want { start: 1, length: 1 }.encode(),
        ]
        .concat();
        assert!(Message::decode(&two).is_err());
        let mut long_name = Vec::new();
        bytes_field(&mut long_name, 1, &[b'x'; MAX_NAME + 1]);
        let mut ext = Vec::new();
        bytes_field(&mut ext, 5, &long_name);
        assert!(Message::decode(&ext).is_err());
        let mut overflow = Vec::new();
        bytes_field(&mut overflow, 3, &range_bytes(u64::MAX, 2, false));
        assert!(Message::decode(&overflow).is_err());
        let mut x: u64 = 11;
        for len in 0..4000usize {
            let buf: Vec<u8> = (0..len % 150)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = Message::decode(&buf);
        }
    }
}
