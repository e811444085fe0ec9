//! The serving side of a sync request: walks the requested DAG depth-first
//! (the order a reader needs it) and yields the frames to send, skipping
//! what the requester said it has and stopping when it runs out of credit.

use super::wire::{EndStatus, Frame, Request};
use shoal_ipld::dagpb::PbNode;
use shoal_ipld::{Cid, Codec};
use shoal_unixfs::data::{NodeType, UnixFsData};
use shoal_unixfs::export::{self, DirStep};
use std::collections::{HashSet, VecDeque};

/// Most CIDs collected from the requester's `have` roots.
pub const MAX_SKIP: usize = 1 << 20;
/// Most blocks in one response; the requester asks again for the rest
/// (matches what a requester keeps track of).
pub const MAX_BLOCKS: usize = crate::sync::requester::MAX_EXPECTED;
/// Most credit a requester can grant in advance.
pub const MAX_WINDOW: u64 = 64 << 20;

/// Where the responder reads blocks.
pub trait Dag {
    type Error: std::fmt::Display;
    /// The block's bytes, or `None` if this node does not have it.
    fn get(&mut self, cid: &Cid) -> Result<Option<Vec<u8>>, Self::Error>;
}

/// A DAG node still to send, with the byte range of its content wanted
/// (relative to the node's own start; `None` for all).
#[derive(Debug)]
struct Item {
    cid: Cid,
    range: Option<(u64, u64)>,
}

/// Serves one request.
#[derive(Debug)]
pub struct Responder {
    /// Blocks on the path, sent before the target but not descended.
    prefix: VecDeque<Cid>,
    stack: Vec<Item>,
    skip: HashSet<Cid>,
    sent: HashSet<Cid>,
    credit: u64,
    end: Option<(EndStatus, String)>,
    finished: bool,
    blocks_only: bool,
    pub blocks_sent: u64,
    pub bytes_sent: u64,
}

impl Responder {
    /// Prepares the answer to `req`: resolves its path and collects the
    /// blocks under its `have` roots.
    pub fn new<D: Dag>(req: &Request, dag: &mut D) -> Responder {
        let mut r = Responder {
            prefix: VecDeque::new(),
            stack: Vec::new(),
            skip: HashSet::new(),
            sent: HashSet::new(),
            credit: req.window.min(MAX_WINDOW),
            end: None,
            finished: false,
            blocks_only: false,
            blocks_sent: 0,
            bytes_sent: 0,
        };
        if let Err(e) = r.collect_skip(&req.have, dag) {
            r.end = Some((EndStatus::Error, e));
            return r;
        }
        if !req.want.is_empty() {
            r.blocks_only = req.blocks_only;
            r.stack = req
                .want
                .iter()
                .rev()
                .map(|&cid| Item { cid, range: None })
                .collect();
            return r;
        }
        match resolve(req, dag) {
            Ok(Ok(mut trail)) => {
                let target = trail.pop().expect("never empty");
                r.prefix = trail.into();
                let range = req.range.map(|b| (b.start, b.end()));
                r.stack.push(Item { cid: target, range });
            }
            Ok(Err(not_found)) => r.end = Some((EndStatus::NotFound, not_found)),
            Err(e) => r.end = Some((EndStatus::Error, e)),
        }
        r
    }

    /// The requester allows `n` more bytes.
    pub fn add_credit(&mut self, n: u64) {
        self.credit = self.credit.saturating_add(n).min(MAX_WINDOW);
    }

    /// Whether the last frame (`End`) was yielded.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Whether `next` would return `None` only for lack of credit.
    pub fn needs_credit(&self) -> bool {
        !self.finished && self.credit == 0 && self.end.is_none() && self.has_work()
    }

    fn has_work(&self) -> bool {
        (!self.prefix.is_empty() || !self.stack.is_empty()) && self.sent.len() < MAX_BLOCKS
    }

    /// The next frame to send: `None` when out of credit or finished.
    pub fn next<D: Dag>(&mut self, dag: &mut D) -> Option<Frame> {
        if self.finished {
            return None;
        }
        if self.end.is_none() {
            match self.step(dag) {
                Ok(Some(frame)) => return Some(frame),
                Ok(None) if self.credit == 0 && self.has_work() => return None,
                Ok(None) => self.end = Some((EndStatus::Done, String::new())),
                Err(e) => self.end = Some((EndStatus::Error, e)),
            }
        }
        let (status, message) = self.end.take().expect("set above");
        self.finished = true;
        Some(Frame::End { status, message })
    }

    /// One block (or DontHave), `None` when out of credit or out of work.
    fn step<D: Dag>(&mut self, dag: &mut D) -> Result<Option<Frame>, String> {
        loop {
            if self.credit == 0 {
                return Ok(None);
            }
            let (item, descend) = match self.prefix.pop_front() {
                Some(cid) => (Item { cid, range: None }, false),
                None => match self.stack.pop() {
                    Some(item) => (item, true),
                    None => return Ok(None),
                },
            };
            if self.skip.contains(&item.cid) || self.sent.contains(&item.cid) {
                continue;
            }
            if self.sent.len() >= MAX_BLOCKS {
                return Ok(None);
            }
            let Some(data) = dag.get(&item.cid).map_err(|e| e.to_string())? else {
                return Ok(Some(Frame::DontHave(item.cid)));
            };
            if descend && !self.blocks_only {
                self.push_children(&item, &data);
            }
            self.sent.insert(item.cid);
            self.credit = self.credit.saturating_sub(data.len() as u64);
            self.blocks_sent += 1;
            self.bytes_sent += data.len() as u64;
            return Ok(Some(Frame::Block { cid: item.cid, data }));
        }
    }

    /// Queues the children of `item` (first child on top), only those that
    /// overlap the wanted range when the node is a file node.
    fn push_children(&mut self, item: &Item, data: &[u8]) {
        if Codec::of(&item.cid).ok() != Some(Codec::DagPb) {
            return;
        }
        let Ok(node) = PbNode::decode(data) else { return };
        let spans = item.range.and_then(|_| file_spans(&node));
        let start = self.stack.len();
        for (i, link) in node.links.iter().enumerate() {
            let range = match (&spans, item.range) {
                (Some(spans), Some((lo, hi))) => {
                    let (s, len) = spans[i];
                    let e = s.saturating_add(len);
                    if e <= lo || s >= hi || len == 0 {
                        continue;
                    }
                    Some((lo.saturating_sub(s), hi.min(e) - s))
                }
                _ => None,
            };
            self.stack.push(Item {
                cid: link.hash,
                range,
            });
        }
        self.stack[start..].reverse();
    }

    /// Gathers every block under the `have` roots this node holds.
    fn collect_skip<D: Dag>(&mut self, have: &[Cid], dag: &mut D) -> Result<(), String> {
        let mut todo: Vec<Cid> = have.to_vec();
        while let Some(cid) = todo.pop() {
            if self.skip.len() >= MAX_SKIP {
                break;
            }
            if !self.skip.insert(cid) || Codec::of(&cid).ok() != Some(Codec::DagPb) {
                continue;
            }
            let Some(data) = dag.get(&cid).map_err(|e| e.to_string())? else {
                continue;
            };
            if let Ok(node) = PbNode::decode(&data) {
                todo.extend(node.links.iter().map(|l| l.hash));
            }
        }
        Ok(())
    }
}

/// The (offset, length) of each child's content inside a UnixFS file node,
/// or `None` when the node is not one or its sizes do not match its links.
fn file_spans(node: &PbNode) -> Option<Vec<(u64, u64)>> {
    let data = UnixFsData::decode(node.data.as_deref()?).ok()?;
    if !matches!(data.kind, NodeType::File | NodeType::Raw) || data.blocksizes.len() != node.links.len() {
        return None;
    }
    let mut at = data.data.len() as u64;
    let mut out = Vec::with_capacity(node.links.len());
    for &bs in &data.blocksizes {
        out.push((at, bs));
        at = at.saturating_add(bs);
    }
    Some(out)
}

/// The blocks from the root to the path's target; `Ok(Err(why))` when the
/// path does not resolve here.
fn resolve<D: Dag>(req: &Request, dag: &mut D) -> Result<Result<Vec<Cid>, String>, String> {
    let mut trail = vec![req.root];
    for seg in &req.path {
        let mut depth = 0;
        loop {
            let cid = *trail.last().expect("never empty");
            let Some(bytes) = dag.get(&cid).map_err(|e| e.to_string())? else {
                return Ok(Err(format!("this node lacks block {cid} on the path")));
            };
            let step = export::decode(&cid, bytes).and_then(|node| export::dir_step(&cid, &node, seg, depth));
            match step {
                Ok(DirStep::Found(next)) => {
                    trail.push(next);
                    break;
                }
                Ok(DirStep::Shard(next)) => {
                    trail.push(next);
                    depth += 1;
                }
                Ok(DirStep::Absent) => return Ok(Err(format!("no entry {seg:?}"))),
                Ok(DirStep::NotADirectory) => return Ok(Err(format!("{cid} is not a directory"))),
                Err(e) => return Ok(Err(e.to_string())),
            }
        }
    }
    Ok(Ok(trail))
}
