//! HAMT-sharded directories (UnixFS type 5) as the reference importer builds
//! them: fanout 256, murmur3-x64-64 (0x22) of the name read most significant
//! bit first, link names "XX" + name (uppercase hex slot), sub-shards named
//! "XX", bitfield as a minimal big-endian integer.

use crate::data::{NodeType, UnixFsData};
use crate::dir::{DirEntry, Linked};
use crate::file::Meta;
use crate::murmur::murmur3_x64_128;
use crate::options::ImportOptions;
use shoal_ipld::block::cid_of;
use shoal_ipld::dagpb::{PbLink, PbNode};
use shoal_ipld::{Cid, Codec};
use std::collections::BTreeMap;

pub const FANOUT: u64 = 256;
pub const HASH_MURMUR3_X64_64: u64 = 0x22;

/// The slot of `name` at `depth` (0 = root shard).
pub fn slot(name: &str, depth: usize) -> u8 {
    let round = depth / 8;
    let h1 = if round == 0 {
        murmur3_x64_128(name.as_bytes()).0
    } else {
        let mut buf = name.as_bytes().to_vec();
        buf.push(round as u8);
        murmur3_x64_128(&buf).0
    };
    (h1 >> (56 - 8 * (depth % 8))) as u8
}

enum Child<'a> {
    Entry(&'a DirEntry),
    Shard(Bucket<'a>),
}

#[derive(Default)]
struct Bucket<'a> {
    slots: BTreeMap<u8, Child<'a>>,
}

impl<'a> Bucket<'a> {
    fn insert(&mut self, entry: &'a DirEntry, depth: usize) {
        let s = slot(&entry.name, depth);
        match self.slots.remove(&s) {
            None => {
                self.slots.insert(s, Child::Entry(entry));
            }
            Some(Child::Shard(mut sub)) => {
                sub.insert(entry, depth + 1);
                self.slots.insert(s, Child::Shard(sub));
            }
            Some(Child::Entry(existing)) if existing.name == entry.name => {
                self.slots.insert(s, Child::Entry(entry));
            }
            Some(Child::Entry(existing)) => {
                let mut sub = Bucket::default();
                sub.insert(existing, depth + 1);
                sub.insert(entry, depth + 1);
                self.slots.insert(s, Child::Shard(sub));
            }
        }
    }

    fn encode(&self, opts: &ImportOptions, meta: Meta, emit: &mut dyn FnMut(Cid, Vec<u8>)) -> Linked {
        let mut bitfield = [0u8; 32];
        let mut links = Vec::with_capacity(self.slots.len());
        for (&s, child) in &self.slots {
            bitfield[31 - usize::from(s / 8)] |= 1 << (s % 8);
            let prefix = format!("{s:02X}");
            let link = match child {
                Child::Entry(e) => PbLink {
                    hash: e.link.cid,
                    name: Some(prefix + &e.name),
                    tsize: Some(e.link.size),
                },
                Child::Shard(sub) => {
                    let l = sub.encode(opts, Meta::default(), emit);
                    PbLink {
                        hash: l.cid,
                        name: Some(prefix),
                        tsize: Some(l.size),
                    }
                }
            };
            links.push(link);
        }
        let first = bitfield.iter().position(|&b| b != 0).unwrap_or(32);
        let mut data = UnixFsData::new(NodeType::HamtShard);
        data.data = bitfield[first..].to_vec();
        data.hash_type = Some(HASH_MURMUR3_X64_64);
        data.fanout = Some(FANOUT);
        data.mode = meta.mode;
        data.mtime = meta.mtime;
        let tsizes: u64 = links.iter().filter_map(|l| l.tsize).sum();
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
}

/// Builds a sharded directory over `entries`.
pub fn build(
    opts: &ImportOptions,
    meta: Meta,
    entries: &[DirEntry],
    emit: &mut dyn FnMut(Cid, Vec<u8>),
) -> Linked {
    let mut root = Bucket::default();
    for e in entries {
        root.insert(e, 0);
    }
    root.encode(opts, meta, emit)
}
