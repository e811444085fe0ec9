//! The fetching side of a sync request: checks every frame a responder
//! sends. A block is accepted only if its CID is one the request asked for
//! or one an accepted block links to, and its bytes hash to that CID.

use super::wire::{EndStatus, Frame, Request};
use shoal_ipld::block::{check_supported, verify};
use shoal_ipld::dagpb;
use shoal_ipld::Cid;
use std::collections::HashSet;

/// Most CIDs the requester keeps as expected (about 100 bytes each).
pub const MAX_EXPECTED: usize = 1 << 22;

/// What a checked frame means.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// A verified block of the requested DAG, with the CIDs it links to.
    Block {
        cid: Cid,
        data: Vec<u8>,
        links: Vec<Cid>,
    },
    /// The responder lacks this block.
    DontHave(Cid),
    /// The response is complete.
    End { status: EndStatus, message: String },
}

/// A frame the responder should not have sent: the responder is lying or
/// broken (except `ScopeTooLarge`, which is ours).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Violation {
    #[error("block {0} was not requested")]
    Unrequested(Cid),
    #[error("block {0}: the bytes do not hash to the CID")]
    Corrupt(Cid),
    #[error("block {0} is not valid: {1}")]
    Malformed(Cid, String),
    #[error("a frame after the end of the response")]
    AfterEnd,
    #[error("the responder sent a credit frame")]
    Credit,
    #[error("the DAG links to more than {MAX_EXPECTED} blocks not yet received")]
    ScopeTooLarge,
}

impl Violation {
    /// Whether the peer is to blame (and should be penalised).
    pub fn is_peer_fault(&self) -> bool {
        !matches!(self, Violation::ScopeTooLarge)
    }
}

/// Checks the frames of one response.
#[derive(Debug)]
pub struct Requester {
    expected: HashSet<Cid>,
    window: u64,
    unacked: u64,
    ended: bool,
    pub blocks: u64,
    pub bytes: u64,
}

impl Requester {
    pub fn new(req: &Request) -> Requester {
        let expected = if req.want.is_empty() {
            HashSet::from([req.root])
        } else {
            req.want.iter().copied().collect()
        };
        Requester {
            expected,
            window: req.window,
            unacked: 0,
            ended: false,
            blocks: 0,
            bytes: 0,
        }
    }

    /// Checks one frame.
    pub fn handle(&mut self, frame: Frame) -> Result<Event, Violation> {
        if self.ended {
            return Err(Violation::AfterEnd);
        }
        match frame {
            Frame::Block { cid, data } => self.block(cid, data),
            Frame::DontHave(cid) => Ok(Event::DontHave(cid)),
            Frame::End { status, message } => {
                self.ended = true;
                Ok(Event::End { status, message })
            }
            Frame::Credit(_) => Err(Violation::Credit),
        }
    }

    fn block(&mut self, cid: Cid, data: Vec<u8>) -> Result<Event, Violation> {
        if !self.expected.contains(&cid) {
            return Err(Violation::Unrequested(cid));
        }
        check_supported(&cid).map_err(|e| Violation::Malformed(cid, e.to_string()))?;
        verify(&cid, &data).map_err(|_| Violation::Corrupt(cid))?;
        let links = dagpb::links(&cid, &data).map_err(|e| Violation::Malformed(cid, e.to_string()))?;
        self.expected.remove(&cid);
        if self.expected.len() + links.len() > MAX_EXPECTED {
            return Err(Violation::ScopeTooLarge);
        }
        self.expected.extend(links.iter().copied());
        self.blocks += 1;
        self.bytes += data.len() as u64;
        self.unacked += data.len() as u64;
        Ok(Event::Block { cid, data, links })
    }

    /// Credit to grant the responder now (once half the window is used).
    pub fn credit(&mut self) -> Option<u64> {
        if self.unacked == 0 || self.unacked < self.window / 2 {
            return None;
        }
        Some(std::mem::take(&mut self.unacked))
    }
}
