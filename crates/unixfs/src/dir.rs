//! Building directory nodes: flat dag-pb directories, or HAMT shards when
//! the reference importer would shard. The decision follows the reference
//! importer's incremental rule exactly (see `needs_shard`).

use crate::data::{NodeType, UnixFsData};
use crate::file::Meta;
use crate::hamt;
use crate::options::{ImportOptions, ShardEstimate};
use shoal_ipld::block::cid_of;
use shoal_ipld::dagpb::{PbLink, PbNode};
use shoal_ipld::{Cid, Codec};

/// A built child, as its parent links to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Linked {
    pub cid: Cid,
    /// Cumulative size (the link's Tsize).
    pub size: u64,
}

/// One entry of a directory being built.
#[derive(Clone, Debug)]
pub struct DirEntry {
    pub name: String,
    pub link: Linked,
    /// For a non-empty subdirectory: its own metadata. The reference importer
    /// first inserts it as an empty directory (which counts toward the
    /// parent's size estimate for that moment) and then replaces it with a
    /// directory under construction (which counts as nothing).
    pub subdir: Option<Meta>,
}

/// Builds the node for a directory whose entries are sorted by name bytes.
pub fn build(
    opts: &ImportOptions,
    meta: Meta,
    entries: &[DirEntry],
    emit: &mut dyn FnMut(Cid, Vec<u8>),
) -> Linked {
    if needs_shard(opts, meta, entries) {
        return hamt::build(opts, meta, entries, emit);
    }
    let mut data = UnixFsData::new(NodeType::Directory);
    data.mode = meta.mode;
    data.mtime = meta.mtime;
    let links: Vec<PbLink> = entries
        .iter()
        .map(|e| PbLink {
            hash: e.link.cid,
            name: Some(e.name.clone()),
            tsize: Some(e.link.size),
        })
        .collect();
    let tsizes: u64 = entries.iter().map(|e| e.link.size).sum();
    let bytes = PbNode {
        links,
        data: Some(data.encode()),
    }
    .encode();
    let cid = cid_of(Codec::DagPb, opts.cid_version, &bytes);
    let size = bytes.len() as u64 + tsizes;
    emit(cid, bytes);
    Linked { cid, size }
}

/// The empty directory node (with metadata) that stands in for a directory
/// before its contents are added.
pub fn empty_dir(opts: &ImportOptions, meta: Meta) -> (Cid, Vec<u8>) {
    let mut data = UnixFsData::new(NodeType::Directory);
    data.mode = meta.mode;
    data.mtime = meta.mtime;
    let bytes = PbNode {
        links: vec![],
        data: Some(data.encode()),
    }
    .encode();
    (cid_of(Codec::DagPb, opts.cid_version, &bytes), bytes)
}

/// Whether the reference importer ends up with a shard: its estimate is
/// checked after every insertion and a directory never goes back to flat.
/// Entries are inserted in name order; files, symlinks and empty
/// directories count; a non-empty subdirectory counts only at the moment it
/// is inserted as an empty placeholder.
fn needs_shard(opts: &ImportOptions, meta: Meta, entries: &[DirEntry]) -> bool {
    let base = match opts.shard_estimate {
        ShardEstimate::LinksBytes => 0,
        ShardEstimate::BlockBytes => data_field_len(meta),
    };
    let mut running = base;
    for e in entries {
        let cost = match e.subdir {
            None => entry_cost(opts, &e.name, e.link.cid.encoded_len(), e.link.size),
            Some(sub_meta) => {
                let (cid, bytes) = empty_dir(opts, sub_meta);
                let spike = entry_cost(opts, &e.name, cid.encoded_len(), bytes.len() as u64);
                if running + spike > opts.shard_threshold {
                    return true;
                }
                continue;
            }
        };
        running += cost;
        if running > opts.shard_threshold {
            return true;
        }
    }
    false
}

fn entry_cost(opts: &ImportOptions, name: &str, cid_len: usize, size: u64) -> u64 {
    use crate::data::varint_len as v;
    let name_len = name.len();
    match opts.shard_estimate {
        ShardEstimate::LinksBytes => (name_len + cid_len) as u64,
        ShardEstimate::BlockBytes => {
            let link = 1 + v(cid_len as u64) + cid_len + 1 + v(name_len as u64) + name_len + 1 + v(size);
            (1 + v(link as u64) + link) as u64
        }
    }
}

fn data_field_len(meta: Meta) -> u64 {
    let mut data = UnixFsData::new(NodeType::Directory);
    data.mode = meta.mode;
    data.mtime = meta.mtime;
    let n = data.encode().len();
    (1 + crate::data::varint_len(n as u64) + n) as u64
}
