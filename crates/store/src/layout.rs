//! On-disk layout of the index (redb tables) and the encoding of its values.
//! See FORMAT.md; every value starts with a format version byte.

use redb::TableDefinition;

/// Version of the whole store layout; bumped on incompatible change.
pub const FORMAT_VERSION: u64 = 1;
/// Version byte that starts every encoded value.
const VALUE_VERSION: u8 = 1;

/// "format_version", "next_file_id".
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// CID bytes → [`Location`].
pub const BLOCKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("blocks");
/// pack id → committed length in bytes.
pub const PACKS: TableDefinition<u32, u64> = TableDefinition::new("packs");
/// file id → [`FileRecord`].
pub const FILES: TableDefinition<u64, &[u8]> = TableDefinition::new("files");
/// path bytes → file id (the current record for that path).
pub const FILE_PATHS: TableDefinition<&[u8], u64> = TableDefinition::new("file_paths");
/// CID bytes → pin kind (1 direct, 2 recursive).
pub const PINS: TableDefinition<&[u8], u8> = TableDefinition::new("pins");

/// Blocks up to this size live in the index itself.
pub const INLINE_MAX: usize = 2048;

/// Where a block's bytes are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Inline(Vec<u8>),
    Pack { pack: u32, offset: u64, len: u32 },
    File { file: u64, offset: u64, len: u32 },
}

impl Location {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![VALUE_VERSION];
        match self {
            Location::Inline(data) => {
                out.push(0);
                out.extend_from_slice(data);
            }
            Location::Pack { pack, offset, len } => {
                out.push(1);
                out.extend_from_slice(&pack.to_le_bytes());
                out.extend_from_slice(&offset.to_le_bytes());
                out.extend_from_slice(&len.to_le_bytes());
            }
            Location::File { file, offset, len } => {
                out.push(2);
                out.extend_from_slice(&file.to_le_bytes());
                out.extend_from_slice(&offset.to_le_bytes());
                out.extend_from_slice(&len.to_le_bytes());
            }
        }
        out
    }

    pub fn decode(buf: &[u8]) -> Option<Location> {
        let (&version, rest) = buf.split_first()?;
        if version != VALUE_VERSION {
            return None;
        }
        let (&kind, rest) = rest.split_first()?;
        match kind {
            0 => Some(Location::Inline(rest.to_vec())),
            1 if rest.len() == 16 => Some(Location::Pack {
                pack: u32::from_le_bytes(rest[0..4].try_into().ok()?),
                offset: u64::from_le_bytes(rest[4..12].try_into().ok()?),
                len: u32::from_le_bytes(rest[12..16].try_into().ok()?),
            }),
            2 if rest.len() == 20 => Some(Location::File {
                file: u64::from_le_bytes(rest[0..8].try_into().ok()?),
                offset: u64::from_le_bytes(rest[8..16].try_into().ok()?),
                len: u32::from_le_bytes(rest[16..20].try_into().ok()?),
            }),
            _ => None,
        }
    }

    /// Length of the block in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Location::Inline(d) => d.len() as u64,
            Location::Pack { len, .. } | Location::File { len, .. } => u64::from(*len),
        }
    }
}

/// The identity of a user file at the time it was indexed: if any of these
/// changed, the file was modified behind our back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileIdentity {
    pub size: u64,
    pub mtime_ns: i128,
    pub inode: u64,
    pub dev: u64,
}

impl FileIdentity {
    pub fn of(meta: &std::fs::Metadata) -> FileIdentity {
        use std::os::unix::fs::MetadataExt;
        FileIdentity {
            size: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            inode: meta.ino(),
            dev: meta.dev(),
        }
    }
}

/// A user file that blocks point into ("no-copy").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRecord {
    pub path: std::path::PathBuf,
    pub identity: FileIdentity,
    pub stale: bool,
}

impl FileRecord {
    pub fn encode(&self) -> Vec<u8> {
        use std::os::unix::ffi::OsStrExt;
        let id = &self.identity;
        let mut out = vec![VALUE_VERSION, u8::from(self.stale)];
        out.extend_from_slice(&id.size.to_le_bytes());
        out.extend_from_slice(&id.mtime_ns.to_le_bytes());
        out.extend_from_slice(&id.inode.to_le_bytes());
        out.extend_from_slice(&id.dev.to_le_bytes());
        out.extend_from_slice(self.path.as_os_str().as_bytes());
        out
    }

    pub fn decode(buf: &[u8]) -> Option<FileRecord> {
        use std::os::unix::ffi::OsStrExt;
        if buf.len() < 42 || buf[0] != VALUE_VERSION || buf[1] > 1 {
            return None;
        }
        let identity = FileIdentity {
            size: u64::from_le_bytes(buf[2..10].try_into().ok()?),
            mtime_ns: i128::from_le_bytes(buf[10..26].try_into().ok()?),
            inode: u64::from_le_bytes(buf[26..34].try_into().ok()?),
            dev: u64::from_le_bytes(buf[34..42].try_into().ok()?),
        };
        let path = std::ffi::OsStr::from_bytes(&buf[42..]).into();
        Some(FileRecord {
            path,
            identity,
            stale: buf[1] == 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        for loc in [
            Location::Inline(vec![]),
            Location::Inline(vec![1, 2, 3]),
            Location::Pack {
                pack: 7,
                offset: 1 << 40,
                len: 1 << 20,
            },
            Location::File {
                file: 3,
                offset: 9,
                len: 0,
            },
        ] {
            assert_eq!(Location::decode(&loc.encode()), Some(loc));
        }
        let rec = FileRecord {
            path: "/tmp/a b".into(),
            identity: FileIdentity {
                size: 5,
                mtime_ns: -3,
                inode: 9,
                dev: 1,
            },
            stale: true,
        };
        assert_eq!(FileRecord::decode(&rec.encode()), Some(rec));
        assert_eq!(Location::decode(&[2, 0]), None);
        assert_eq!(FileRecord::decode(&[1; 10]), None);
    }
}
