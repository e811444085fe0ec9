//! Building a file's DAG from its chunks: leaves, then the balanced layout,
//! reproducing the reference importer node for node. Pure: blocks leave
//! through an `emit` callback.

use crate::data::{Mtime, NodeType, UnixFsData};
use crate::options::ImportOptions;
use shoal_ipld::block::cid_of;
use shoal_ipld::dagpb::{PbLink, PbNode};
use shoal_ipld::{Cid, Codec};

/// A node of a file DAG as its parent sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileNode {
    pub cid: Cid,
    /// Cumulative serialized size (the parent link's Tsize).
    pub size: u64,
    /// Bytes of file content under this node.
    pub content: u64,
}

/// Permissions and modification time to record, when preserved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    pub mode: Option<u32>,
    pub mtime: Option<Mtime>,
}

impl Meta {
    fn is_some(&self) -> bool {
        self.mode.is_some() || self.mtime.is_some()
    }
}

/// The leaf block for one chunk: raw bytes, or a dag-pb UnixFS file node.
pub fn leaf(opts: &ImportOptions, chunk: &[u8]) -> (FileNode, Option<Vec<u8>>) {
    if opts.raw_leaves {
        let cid = cid_of(Codec::Raw, 1, chunk);
        let len = chunk.len() as u64;
        return (
            FileNode {
                cid,
                size: len,
                content: len,
            },
            None,
        );
    }
    let mut data = UnixFsData::new(NodeType::File);
    data.data = chunk.to_vec();
    let block = PbNode {
        links: vec![],
        data: Some(data.encode()),
    }
    .encode();
    let cid = cid_of(Codec::DagPb, opts.cid_version, &block);
    let node = FileNode {
        cid,
        size: block.len() as u64,
        content: chunk.len() as u64,
    };
    (node, Some(block))
}

/// Builds the tree over `leaves` (in file order) and returns the root.
/// `single_block` is the one leaf's block bytes when the file is one chunk
/// (needed to wrap it when metadata is recorded).
pub fn balanced(
    opts: &ImportOptions,
    meta: Meta,
    leaves: Vec<FileNode>,
    single_block: Option<&[u8]>,
    emit: &mut dyn FnMut(Cid, Vec<u8>),
) -> FileNode {
    if leaves.len() == 1 {
        if let Some(block) = single_block.filter(|_| meta.is_some()) {
            return wrap_single(opts, meta, block, emit);
        }
        if !meta.is_some() {
            return leaves[0];
        }
    }
    let mut level = leaves;
    loop {
        level = level
            .chunks(opts.max_links)
            .map(|group| parent(opts, meta, group, emit))
            .collect();
        if level.len() <= 1 {
            return level.pop().expect("at least one leaf");
        }
    }
}

/// A one-chunk file with metadata: a link-less file node whose data is the
/// leaf *block* (for dag-pb leaves the whole encoded leaf, as the reference
/// importer does).
fn wrap_single(
    opts: &ImportOptions,
    meta: Meta,
    block: &[u8],
    emit: &mut dyn FnMut(Cid, Vec<u8>),
) -> FileNode {
    let mut data = UnixFsData::new(NodeType::File);
    data.data = block.to_vec();
    data.mode = meta.mode;
    data.mtime = meta.mtime;
    let bytes = PbNode {
        links: vec![],
        data: Some(data.encode()),
    }
    .encode();
    let cid = cid_of(Codec::DagPb, opts.cid_version, &bytes);
    let size = bytes.len() as u64;
    emit(cid, bytes);
    FileNode {
        cid,
        size,
        content: block.len() as u64,
    }
}

fn parent(
    opts: &ImportOptions,
    meta: Meta,
    children: &[FileNode],
    emit: &mut dyn FnMut(Cid, Vec<u8>),
) -> FileNode {
    let mut data = UnixFsData::new(NodeType::File);
    data.mode = meta.mode;
    data.mtime = meta.mtime;
    let mut links = Vec::with_capacity(children.len());
    for c in children.iter().filter(|c| c.content > 0) {
        data.blocksizes.push(c.content);
        links.push(PbLink {
            hash: c.cid,
            name: Some(String::new()),
            tsize: Some(c.size),
        });
    }
    let content = data.blocksizes.iter().sum();
    let tsizes: u64 = links.iter().filter_map(|l| l.tsize).sum();
    let bytes = PbNode {
        links,
        data: Some(data.encode()),
    }
    .encode();
    let cid = cid_of(Codec::DagPb, opts.cid_version, &bytes);
    let size = bytes.len() as u64 + tsizes;
    emit(cid, bytes);
    FileNode { cid, size, content }
}
