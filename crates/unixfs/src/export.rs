//! Reading UnixFS DAGs back out of the store: resolve paths, `cat` byte
//! ranges, `ls` directories, `get` whole trees to disk.
//!
//! Everything read is untrusted (it may come from a CAR or a peer): nodes
//! are decoded with bounds, recursion is depth-limited, names are checked
//! before anything is written, and `get` never writes outside its target.

use crate::data::{NodeType, UnixFsData};
use crate::hamt;
use shoal_ipld::dagpb::PbNode;
use shoal_ipld::path::IpfsPath;
use shoal_ipld::{Cid, Codec};
use shoal_store::{BlockStore, StoreError};
use std::io::Write;
use std::path::PathBuf;

/// Deepest DAG followed (file trees and HAMTs are far shallower).
pub const MAX_DEPTH: usize = 64;

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}: no such file or directory")]
    NotFound(String),
    #[error("{0}: not a directory")]
    NotADirectory(String),
    #[error("{0}: is a directory")]
    IsADirectory(String),
    #[error("block {cid}: not a valid UnixFS node: {reason}")]
    BadNode { cid: Cid, reason: String },
    #[error("{path}: refusing to write it: {reason}")]
    Unsafe { path: String, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: the output already exists")]
    Exists(PathBuf),
}

/// A node as the exporter sees it.
#[derive(Debug)]
pub enum Node {
    /// A raw block: file bytes.
    Raw(Vec<u8>),
    /// A dag-pb UnixFS node.
    Pb { node: PbNode, data: UnixFsData },
}

impl Node {
    pub fn kind(&self) -> NodeType {
        match self {
            Node::Raw(_) => NodeType::Raw,
            Node::Pb { data, .. } => data.kind,
        }
    }

    /// Size of the content: file bytes, or 0 for directories.
    pub fn file_size(&self) -> u64 {
        match self {
            Node::Raw(b) => b.len() as u64,
            Node::Pb { data, .. } if matches!(data.kind, NodeType::File | NodeType::Raw) => data.file_size(),
            Node::Pb { data, .. } if data.kind == NodeType::Symlink => data.data.len() as u64,
            Node::Pb { .. } => 0,
        }
    }

    pub fn is_dir(&self) -> bool {
        matches!(self.kind(), NodeType::Directory | NodeType::HamtShard)
    }
}

/// Loads and decodes one node.
pub fn load(store: &BlockStore, cid: &Cid) -> Result<Node, ExportError> {
    let bytes = store.get(cid)?;
    decode(cid, bytes)
}

/// Decodes a block already read.
pub fn decode(cid: &Cid, bytes: Vec<u8>) -> Result<Node, ExportError> {
    let bad = |reason: String| ExportError::BadNode { cid: *cid, reason };
    match Codec::of(cid).map_err(|e| bad(e.to_string()))? {
        Codec::Raw => Ok(Node::Raw(bytes)),
        Codec::DagPb => {
            let node = PbNode::decode(&bytes).map_err(|e| bad(e.to_string()))?;
            let raw = node.data.as_deref().ok_or_else(|| bad("no UnixFS data".into()))?;
            let data = UnixFsData::decode(raw).map_err(|e| bad(e.to_string()))?;
            Ok(Node::Pb { node, data })
        }
    }
}

/// Follows `path` from its root CID to the CID it names.
pub fn resolve(store: &BlockStore, path: &IpfsPath) -> Result<Cid, ExportError> {
    resolve_trail(store, path).map(|t| *t.last().expect("never empty"))
}

/// Like `resolve`, returning every block visited on the way: the root, each
/// directory and HAMT shard, and last the CID the path names.
pub fn resolve_trail(store: &BlockStore, path: &IpfsPath) -> Result<Vec<Cid>, ExportError> {
    let mut trail = vec![path.root];
    let mut walked = path.root.to_string();
    for seg in &path.segments {
        walked.push('/');
        walked.push_str(seg);
        let mut depth = 0;
        loop {
            let cid = *trail.last().expect("never empty");
            let node = load(store, &cid)?;
            match dir_step(&cid, &node, seg, depth)? {
                DirStep::Found(next) => {
                    trail.push(next);
                    break;
                }
                DirStep::Shard(next) => {
                    trail.push(next);
                    depth += 1;
                }
                DirStep::Absent => return Err(ExportError::NotFound(walked)),
                DirStep::NotADirectory => {
                    return Err(ExportError::NotADirectory(
                        walked.rsplit_once('/').map_or("", |p| p.0).into(),
                    ))
                }
            }
        }
    }
    Ok(trail)
}

/// One step of looking a name up in a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirStep {
    /// The entry.
    Found(Cid),
    /// Continue in this HAMT sub-shard (at `depth + 1`).
    Shard(Cid),
    Absent,
    NotADirectory,
}

/// Looks `name` up in `node` (a directory, or a HAMT shard at `depth`),
/// without touching any other block.
pub fn dir_step(cid: &Cid, node: &Node, name: &str, depth: usize) -> Result<DirStep, ExportError> {
    match node {
        Node::Pb { node, data } if data.kind == NodeType::Directory => Ok(node
            .links
            .iter()
            .find(|l| l.name.as_deref() == Some(name))
            .map_or(DirStep::Absent, |l| DirStep::Found(l.hash))),
        Node::Pb { node, data } if data.kind == NodeType::HamtShard => {
            if depth >= MAX_DEPTH {
                return Err(ExportError::BadNode {
                    cid: *cid,
                    reason: "HAMT deeper than the limit".into(),
                });
            }
            let prefix = format!("{:02X}", hamt::slot(name, depth));
            for link in &node.links {
                let Some(link_name) = link.name.as_deref() else {
                    continue;
                };
                if link_name == prefix {
                    return Ok(DirStep::Shard(link.hash));
                }
                if link_name.len() > 2 && link_name.starts_with(&prefix) && &link_name[2..] == name {
                    return Ok(DirStep::Found(link.hash));
                }
            }
            Ok(DirStep::Absent)
        }
        _ if depth > 0 => Err(ExportError::BadNode {
            cid: *cid,
            reason: "sub-shard is not a HAMT node".into(),
        }),
        _ => Ok(DirStep::NotADirectory),
    }
}

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirLink {
    pub name: String,
    pub cid: Cid,
    /// The link's cumulative size (Tsize).
    pub tsize: u64,
}

/// The entries of a directory (flat or sharded), in name order.
pub fn list(store: &BlockStore, cid: &Cid) -> Result<Vec<DirLink>, ExportError> {
    match load(store, cid)? {
        Node::Pb { node, data } if data.kind == NodeType::Directory => Ok(node
            .links
            .into_iter()
            .map(|l| DirLink {
                name: l.name.unwrap_or_default(),
                cid: l.hash,
                tsize: l.tsize.unwrap_or(0),
            })
            .collect()),
        Node::Pb { node, data } if data.kind == NodeType::HamtShard => {
            let mut out = Vec::new();
            hamt_list(store, cid, node, 0, &mut out)?;
            out.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
            Ok(out)
        }
        _ => Err(ExportError::NotADirectory(cid.to_string())),
    }
}

fn hamt_list(
    store: &BlockStore,
    cid: &Cid,
    node: PbNode,
    depth: usize,
    out: &mut Vec<DirLink>,
) -> Result<(), ExportError> {
    if depth >= MAX_DEPTH {
        return Err(ExportError::BadNode {
            cid: *cid,
            reason: "HAMT deeper than the limit".into(),
        });
    }
    for link in node.links {
        let name = link.name.unwrap_or_default();
        let bad = || ExportError::BadNode {
            cid: *cid,
            reason: format!("bad HAMT link name '{name}'"),
        };
        if name.len() < 2 || !name.is_char_boundary(2) {
            return Err(bad());
        }
        if name.len() == 2 {
            match load(store, &link.hash)? {
                Node::Pb { node, data } if data.kind == NodeType::HamtShard => {
                    hamt_list(store, &link.hash, node, depth + 1, out)?
                }
                _ => return Err(bad()),
            }
        } else {
            out.push(DirLink {
                name: name[2..].to_owned(),
                cid: link.hash,
                tsize: link.tsize.unwrap_or(0),
            });
        }
    }
    Ok(())
}

/// Writes bytes `[offset, offset + length)` of the file at `cid` to `out`;
/// returns the bytes written. `progress` gets each piece's length.
pub fn cat(
    store: &BlockStore,
    cid: &Cid,
    offset: u64,
    length: Option<u64>,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, ExportError> {
    let node = load(store, cid)?;
    if node.is_dir() {
        return Err(ExportError::IsADirectory(cid.to_string()));
    }
    let size = node.file_size();
    let start = offset.min(size);
    let end = length.map_or(size, |l| start.saturating_add(l).min(size));
    let mut w = RangeWriter {
        out,
        start,
        end,
        progress,
        written: 0,
    };
    write_node(store, cid, node, 0, 0, &mut w)?;
    Ok(w.written)
}

struct RangeWriter<'a> {
    out: &'a mut dyn Write,
    start: u64,
    end: u64,
    progress: &'a mut dyn FnMut(u64),
    written: u64,
}

impl RangeWriter<'_> {
    /// Writes the part of `bytes` (which sit at file offset `at`) in range.
    fn write(&mut self, at: u64, bytes: &[u8]) -> Result<(), ExportError> {
        let lo = self.start.max(at);
        let hi = self.end.min(at + bytes.len() as u64);
        if lo < hi {
            let piece = &bytes[(lo - at) as usize..(hi - at) as usize];
            self.out.write_all(piece).map_err(|source| ExportError::Io {
                path: "<output>".into(),
                source,
            })?;
            self.written += piece.len() as u64;
            (self.progress)(piece.len() as u64);
        }
        Ok(())
    }

    fn overlaps(&self, at: u64, len: u64) -> bool {
        at < self.end && at + len > self.start
    }
}

fn write_node(
    store: &BlockStore,
    cid: &Cid,
    node: Node,
    at: u64,
    depth: usize,
    w: &mut RangeWriter<'_>,
) -> Result<(), ExportError> {
    let bad = |reason: &str| ExportError::BadNode {
        cid: *cid,
        reason: reason.into(),
    };
    if depth > MAX_DEPTH {
        return Err(bad("file DAG deeper than the limit"));
    }
    let (node, data) = match node {
        Node::Raw(bytes) => return w.write(at, &bytes),
        Node::Pb { node, data } if matches!(data.kind, NodeType::File | NodeType::Raw) => (node, data),
        Node::Pb { .. } => return Err(bad("a file links to a node that is not file data")),
    };
    if data.blocksizes.len() != node.links.len() {
        return Err(bad("blocksizes and links differ in number"));
    }
    w.write(at, &data.data)?;
    let mut child_at = at + data.data.len() as u64;
    for (link, &len) in node.links.iter().zip(&data.blocksizes) {
        if w.overlaps(child_at, len) {
            let child = load(store, &link.hash)?;
            if child.file_size() != len {
                return Err(bad("a child's size differs from its blocksize"));
            }
            write_node(store, &link.hash, child, child_at, depth + 1, w)?;
        }
        child_at += len;
        if child_at >= w.end {
            break;
        }
    }
    Ok(())
}
