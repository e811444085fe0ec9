//! Many logs over one stream, sans-IO. A log is named on the wire only by
//! its *discovery key* (a hash of its public key), so a peer that does not
//! already know a log learns nothing from our interest in it. Each side
//! numbers the channels it opens; messages carry the sender's number.
//!
//! ```text
//! Frame { uint64 channel = 1;
//!         bytes  open    = 2;   // discovery key (32 bytes): open `channel`
//!         bytes  message = 3;   // a log Message (see wire.rs) on `channel`
//!         bool   close   = 4; } // the sender closes `channel`
//! ```

use crate::wire::{Message, WireError, MAX_MESSAGE};
use sha2::{Digest, Sha256};
use shoal_ipld::dagpb::Reader;
use shoal_ipld::pb::{bytes_field, varint_field};
use std::collections::HashMap;

/// Channels a peer may open on one stream.
pub const MAX_CHANNELS: usize = 4096;
/// Largest frame accepted.
pub const MAX_FRAME: usize = MAX_MESSAGE + 64;

/// The discovery key of a log: SHA-256 of a domain tag and its public key.
pub fn discovery_key(public_key: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"shoal-log-discovery-v1");
    h.update(public_key);
    h.finalize().into()
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    Open { channel: u64, key: [u8; 32] },
    Message { channel: u64, bytes: Vec<u8> },
    Close { channel: u64 },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MuxError {
    #[error("log frame of {0} bytes is over the limit")]
    TooLarge(usize),
    #[error("log frame: {0}")]
    Malformed(String),
    #[error("the peer opened more than {MAX_CHANNELS} channels")]
    TooManyChannels,
}

impl Frame {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Frame::Open { channel, key } => {
                varint_field(&mut out, 1, *channel);
                bytes_field(&mut out, 2, key);
            }
            Frame::Message { channel, bytes } => {
                varint_field(&mut out, 1, *channel);
                bytes_field(&mut out, 3, bytes);
            }
            Frame::Close { channel } => {
                varint_field(&mut out, 1, *channel);
                varint_field(&mut out, 4, 1);
            }
        }
        out
    }

    pub fn decode(buf: &[u8]) -> Result<Frame, MuxError> {
        if buf.len() > MAX_FRAME {
            return Err(MuxError::TooLarge(buf.len()));
        }
        let bad = |e: &dyn std::fmt::Display| MuxError::Malformed(e.to_string());
        let (mut channel, mut open, mut message, mut close) = (None, None, None, false);
        let mut r = Reader::new(buf);
        while !r.done() {
            match r.key().map_err(|e| bad(&e))? {
                (1, 0) => channel = Some(r.varint().map_err(|e| bad(&e))?),
                (2, 2) => {
                    let k = r.bytes().map_err(|e| bad(&e))?;
                    open = Some(<[u8; 32]>::try_from(k).map_err(|_| bad(&"a discovery key is 32 bytes"))?);
                }
                (3, 2) => message = Some(r.bytes().map_err(|e| bad(&e))?.to_vec()),
                (4, 0) => close = r.varint().map_err(|e| bad(&e))? != 0,
                (_, 0) => {
                    r.varint().map_err(|e| bad(&e))?;
                }
                (_, 2) => {
                    r.bytes().map_err(|e| bad(&e))?;
                }
                (n, w) => return Err(bad(&format!("field {n} has wire type {w}"))),
            }
        }
        let channel = channel.ok_or_else(|| bad(&"no channel"))?;
        match (open, message, close) {
            (Some(key), None, false) => Ok(Frame::Open { channel, key }),
            (None, Some(bytes), false) => Ok(Frame::Message { channel, bytes }),
            (None, None, true) => Ok(Frame::Close { channel }),
            _ => Err(bad(&"exactly one of open, message, close")),
        }
    }
}

/// What a received frame means.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// The peer opened a channel for the log with this discovery key.
    Opened([u8; 32]),
    /// A message on the log's channel (a malformed one is an error of that
    /// channel only).
    Message([u8; 32], Result<Message, WireError>),
    Closed([u8; 32]),
    /// A frame for a channel the peer never opened (ignored).
    Unknown,
}

/// The channel numbering of one stream.
#[derive(Debug, Default)]
pub struct Mux {
    local: HashMap<[u8; 32], u64>,
    remote: HashMap<u64, [u8; 32]>,
    next: u64,
}

impl Mux {
    /// Opens our side of the log's channel; `None` if already open.
    pub fn open(&mut self, key: [u8; 32]) -> Option<Frame> {
        if self.local.contains_key(&key) {
            return None;
        }
        let channel = self.next;
        self.next += 1;
        self.local.insert(key, channel);
        Some(Frame::Open { channel, key })
    }

    /// Closes our side of the log's channel.
    pub fn close(&mut self, key: &[u8; 32]) -> Option<Frame> {
        self.local.remove(key).map(|channel| Frame::Close { channel })
    }

    pub fn is_open(&self, key: &[u8; 32]) -> bool {
        self.local.contains_key(key)
    }

    /// A message on the log's channel (opened first if needed).
    pub fn send(&mut self, key: [u8; 32], msg: &Message) -> Vec<Frame> {
        let mut out: Vec<Frame> = self.open(key).into_iter().collect();
        out.push(Frame::Message {
            channel: self.local[&key],
            bytes: msg.encode(),
        });
        out
    }

    pub fn receive(&mut self, frame: Frame) -> Result<Event, MuxError> {
        match frame {
            Frame::Open { channel, key } => {
                if !self.remote.contains_key(&channel) && self.remote.len() >= MAX_CHANNELS {
                    return Err(MuxError::TooManyChannels);
                }
                self.remote.insert(channel, key);
                Ok(Event::Opened(key))
            }
            Frame::Message { channel, bytes } => Ok(match self.remote.get(&channel) {
                Some(key) => Event::Message(*key, Message::decode(&bytes)),
                None => Event::Unknown,
            }),
            Frame::Close { channel } => Ok(match self.remote.remove(&channel) {
                Some(key) => Event::Closed(key),
                None => Event::Unknown,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_are_named_by_discovery_key_and_numbered_per_side() {
        let (ka, kb) = (discovery_key(&[1; 32]), discovery_key(&[2; 32]));
        assert_ne!(ka, [1; 32]);
        let (mut a, mut b) = (Mux::default(), Mux::default());
        let have = Message::Have {
            start: 0,
            length: 3,
            ack: true,
        };
        let frames: Vec<Frame> = [a.send(ka, &have), a.send(kb, &have)].concat();
        assert_eq!(frames.len(), 4, "two opens, two messages");
        let events: Vec<Event> = frames
            .into_iter()
            .map(|f| b.receive(Frame::decode(&f.encode()).unwrap()).unwrap())
            .collect();
        assert_eq!(
            events,
            vec![
                Event::Opened(ka),
                Event::Message(ka, Ok(have.clone())),
                Event::Opened(kb),
                Event::Message(kb, Ok(have))
            ]
        );
        // a malformed message belongs to its channel; an unknown channel is ignored
        let garbage = Frame::Message {
            channel: 0,
            bytes: vec![0xff; 3],
        };
        assert!(matches!(b.receive(garbage), Ok(Event::Message(k, Err(_))) if k == ka));
        let stray = Frame::Close { channel: 99 };
        assert_eq!(b.receive(stray), Ok(Event::Unknown));
        assert_eq!(b.receive(Frame::Close { channel: 1 }), Ok(Event::Closed(kb)));
    }

    #[test]
    fn malformed_frames_and_channel_floods_are_refused() {
        for bad in [
            &b""[..],
            b"\x08\x01",
            b"\x08\x01\x12\x03abc",
            b"\x08\x01\x20\x01\x1a\x00",
            b"\xff\xff",
        ] {
            assert!(Frame::decode(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            Frame::decode(&vec![0; MAX_FRAME + 1]),
            Err(MuxError::TooLarge(_))
        ));
        let mut m = Mux::default();
        for i in 0..MAX_CHANNELS as u64 {
            m.receive(Frame::Open {
                channel: i,
                key: [0; 32],
            })
            .unwrap();
        }
        let one_more = Frame::Open {
            channel: u64::MAX,
            key: [0; 32],
        };
        assert_eq!(m.receive(one_more), Err(MuxError::TooManyChannels));
    }
}
