//! A snapshot: one entry of a feed's log (protobuf, versioned):
//!
//! ```text
//! Snapshot { uint64 version = 1; bytes root = 2; uint64 parent = 3 (entry index + 1; 0 = none);
//!            uint64 time = 4 (unix seconds);
//!            uint64 files_added = 5; uint64 files_changed = 6; uint64 files_removed = 7;
//!            uint64 bytes_added = 8; uint64 bytes_changed = 9; uint64 bytes_removed = 10;
//!            uint64 files = 11; uint64 bytes = 12; }
//! ```

use shoal_ipld::block::cid_exact;
use shoal_ipld::dagpb::Reader;
use shoal_ipld::pb::{bytes_field, varint_field};
use shoal_ipld::Cid;

pub const VERSION: u64 = 1;
/// Largest snapshot entry accepted.
pub const MAX_ENTRY: usize = 4096;

/// Counts of what changed, in files and bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub added: u64,
    pub changed: u64,
    pub removed: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The UnixFS root of the published tree.
    pub root: Cid,
    /// The log index of the previous snapshot.
    pub parent: Option<u64>,
    pub time: u64,
    pub files: Changes,
    pub bytes: Changes,
    /// Totals of the tree.
    pub total_files: u64,
    pub total_bytes: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    #[error("snapshot entry of {0} bytes is over the limit")]
    TooLarge(usize),
    #[error("snapshot entry: {0}")]
    Malformed(String),
    #[error("snapshot entry version {0} is not supported (this is {VERSION})")]
    Version(u64),
}

/// Zero is the default: not written.
fn int(out: &mut Vec<u8>, n: u64, v: u64) {
    if v != 0 {
        varint_field(out, n, v);
    }
}

impl Snapshot {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        int(&mut out, 1, VERSION);
        let root = self.root.to_bytes();
        bytes_field(&mut out, 2, &root);
        int(&mut out, 3, self.parent.map_or(0, |p| p + 1));
        int(&mut out, 4, self.time);
        for (i, v) in [self.files.added, self.files.changed, self.files.removed]
            .into_iter()
            .enumerate()
        {
            int(&mut out, 5 + i as u64, v);
        }
        for (i, v) in [self.bytes.added, self.bytes.changed, self.bytes.removed]
            .into_iter()
            .enumerate()
        {
            int(&mut out, 8 + i as u64, v);
        }
        int(&mut out, 11, self.total_files);
        int(&mut out, 12, self.total_bytes);
        out
    }

    pub fn decode(buf: &[u8]) -> Result<Snapshot, SnapshotError> {
        if buf.len() > MAX_ENTRY {
            return Err(SnapshotError::TooLarge(buf.len()));
        }
        let bad = |e: &dyn std::fmt::Display| SnapshotError::Malformed(e.to_string());
        let mut ints = [0u64; 13];
        let mut root = None;
        let mut r = Reader::new(buf);
        while !r.done() {
            match r.key().map_err(|e| bad(&e))? {
                (2, 2) => root = Some(cid_exact(r.bytes().map_err(|e| bad(&e))?).map_err(|e| bad(&e))?),
                (n, 0) => {
                    let v = r.varint().map_err(|e| bad(&e))?;
                    if let Some(slot) = ints.get_mut(n as usize) {
                        *slot = v;
                    }
                }
                (_, 2) => {
                    r.bytes().map_err(|e| bad(&e))?;
                }
                (n, w) => return Err(bad(&format!("field {n} has wire type {w}"))),
            }
        }
        if ints[1] != VERSION {
            return Err(SnapshotError::Version(ints[1]));
        }
        Ok(Snapshot {
            root: root.ok_or_else(|| bad(&"no root"))?,
            parent: ints[3].checked_sub(1),
            time: ints[4],
            files: Changes {
                added: ints[5],
                changed: ints[6],
                removed: ints[7],
            },
            bytes: Changes {
                added: ints[8],
                changed: ints[9],
                removed: ints[10],
            },
            total_files: ints[11],
            total_bytes: ints[12],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_ipld::block::cid_of;
    use shoal_ipld::Codec;

    #[test]
    fn snapshots_round_trip_and_bad_entries_are_refused() {
        let s = Snapshot {
            root: cid_of(Codec::DagPb, 1, b"root"),
            parent: Some(0),
            time: 1_790_000_000,
            files: Changes {
                added: 3,
                changed: 150,
                removed: 2,
            },
            bytes: Changes {
                added: 10,
                changed: 1 << 33,
                removed: 7,
            },
            total_files: 20_000,
            total_bytes: 4_300_000_000,
        };
        assert_eq!(Snapshot::decode(&s.encode()).unwrap(), s);
        let first = Snapshot {
            parent: None,
            ..s.clone()
        };
        assert_eq!(Snapshot::decode(&first.encode()).unwrap(), first);

        let mut v2 = s.encode();
        v2[1] = 2;
        assert_eq!(Snapshot::decode(&v2), Err(SnapshotError::Version(2)));
        assert!(Snapshot::decode(&[0x08, 0x01]).is_err(), "no root");
        assert!(Snapshot::decode(&vec![0u8; MAX_ENTRY + 1]).is_err());
        let mut x: u64 = 5;
        for len in 0..3000usize {
            let buf: Vec<u8> = (0..len % 120)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = Snapshot::decode(&buf);
        }
    }
}
