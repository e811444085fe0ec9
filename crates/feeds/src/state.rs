//! `feeds.redb` beside the block store: per feed, the index of the last
//! publish (every file's identity and node, every directory's shape and
//! node, by path relative to the published directory), and the feeds this
//! node follows with how far each is materialized. Format versioned; see
//! `crates/feeds/FORMAT.md`.

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use shoal_ipld::block::cid_exact;
use shoal_ipld::Cid;
use shoal_store::FileIdentity;
use shoal_unixfs::data::Mtime;
use shoal_unixfs::dir::Linked;
use shoal_unixfs::file::{FileNode, Meta};
use shoal_unixfs::{KnownDir, KnownFile};
use std::path::{Path, PathBuf};

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// feed (32) || relative path → record
const INDEX: TableDefinition<&[u8], &[u8]> = TableDefinition::new("index");
/// feed (32) → follow record
const FOLLOWS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("follows");
/// feed (32) → peers that served it, one multiaddr per line
const PEERS: TableDefinition<&[u8], &str> = TableDefinition::new("peers");

/// Peers remembered per feed at most.
pub const MAX_PEERS: usize = 16;

pub const VERSION: u64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("feed state: {0}")]
    Db(#[from] redb::Error),
    #[error("feed state format version {0} is not supported (this is {VERSION})")]
    Version(u64),
    #[error("feed state: a damaged record at {0}")]
    Damaged(String),
}

fn dberr<E: Into<redb::Error>>(e: E) -> StateError {
    StateError::Db(e.into())
}

/// One record of a feed's publish index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    File(KnownFile),
    Dir(KnownDir),
}

/// A feed this node follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Follow {
    /// Where its snapshots are materialized (None: kept in the store only).
    pub into: Option<PathBuf>,
    /// The log index of the snapshot the directory holds completely.
    pub materialized: Option<u64>,
    /// Keep following while the daemon runs (not only once).
    pub watch: bool,
}

pub struct FeedState {
    db: Database,
}

fn key(feed: &[u8; 32], rel: &[u8]) -> Vec<u8> {
    let mut k = feed.to_vec();
    k.extend_from_slice(rel);
    k
}

impl FeedState {
    pub fn open(path: impl AsRef<Path>) -> Result<FeedState, StateError> {
        let db = Database::create(path).map_err(dberr)?;
        let txn = db.begin_write().map_err(dberr)?;
        {
            let mut meta = txn.open_table(META).map_err(dberr)?;
            let version = meta.get("version").map_err(dberr)?.map(|v| v.value());
            match version {
                None => {
                    meta.insert("version", VERSION).map_err(dberr)?;
                }
                Some(VERSION) => {}
                Some(v) => return Err(StateError::Version(v)),
            }
            txn.open_table(INDEX).map_err(dberr)?;
            txn.open_table(FOLLOWS).map_err(dberr)?;
            txn.open_table(PEERS).map_err(dberr)?;
        }
        txn.commit().map_err(dberr)?;
        Ok(FeedState { db })
    }

    /// The feed's publish index: (relative path, record).
    pub fn index(&self, feed: &[u8; 32]) -> Result<Vec<(PathBuf, Record)>, StateError> {
        use std::os::unix::ffi::OsStrExt;
        let txn = self.db.begin_read().map_err(dberr)?;
        let t = txn.open_table(INDEX).map_err(dberr)?;
        let mut end = feed.to_vec();
        end.push(0xff);
        let mut out = Vec::new();
        for item in t.range(&feed[..]..&end[..]).map_err(dberr)? {
            let (k, v) = item.map_err(dberr)?;
            let rel = &k.value()[32..];
            let path = PathBuf::from(std::ffi::OsStr::from_bytes(rel));
            let rec = decode(v.value()).ok_or_else(|| StateError::Damaged(path.display().to_string()))?;
            out.push((path, rec));
        }
        Ok(out)
    }

    /// Replaces the feed's publish index.
    pub fn set_index(&self, feed: &[u8; 32], records: &[(PathBuf, Record)]) -> Result<(), StateError> {
        use std::os::unix::ffi::OsStrExt;
        let txn = self.db.begin_write().map_err(dberr)?;
        {
            let mut t = txn.open_table(INDEX).map_err(dberr)?;
            let mut end = feed.to_vec();
            end.push(0xff);
            t.retain_in(&feed[..]..&end[..], |_, _| false).map_err(dberr)?;
            for (rel, rec) in records {
                t.insert(&key(feed, rel.as_os_str().as_bytes())[..], &encode(rec)[..])
                    .map_err(dberr)?;
            }
        }
        txn.commit().map_err(dberr)
    }

    pub fn follow(&self, feed: &[u8; 32]) -> Result<Option<Follow>, StateError> {
        let txn = self.db.begin_read().map_err(dberr)?;
        let t = txn.open_table(FOLLOWS).map_err(dberr)?;
        let Some(v) = t.get(&feed[..]).map_err(dberr)? else {
            return Ok(None);
        };
        decode_follow(v.value())
            .map(Some)
            .ok_or_else(|| StateError::Damaged("follow".into()))
    }

    pub fn set_follow(&self, feed: &[u8; 32], f: &Follow) -> Result<(), StateError> {
        let txn = self.db.begin_write().map_err(dberr)?;
        {
            let mut t = txn.open_table(FOLLOWS).map_err(dberr)?;
            t.insert(&feed[..], &encode_follow(f)[..]).map_err(dberr)?;
        }
        txn.commit().map_err(dberr)
    }

    /// Peers (multiaddrs ending in /p2p/ID) that served the feed lately.
    pub fn peers(&self, feed: &[u8; 32]) -> Result<Vec<String>, StateError> {
        let txn = self.db.begin_read().map_err(dberr)?;
        let t = txn.open_table(PEERS).map_err(dberr)?;
        let v = t.get(&feed[..]).map_err(dberr)?;
        Ok(v.map(|v| v.value().lines().map(str::to_owned).collect())
            .unwrap_or_default())
    }

    /// Remembers the peers that served the feed (newest first, bounded).
    pub fn remember_peers(&self, feed: &[u8; 32], fresh: &[String]) -> Result<(), StateError> {
        let mut all: Vec<String> = fresh.iter().filter(|p| !p.contains('\n')).cloned().collect();
        for p in self.peers(feed)? {
            if !all.contains(&p) {
                all.push(p);
            }
        }
        all.truncate(MAX_PEERS);
        let txn = self.db.begin_write().map_err(dberr)?;
        {
            let mut t = txn.open_table(PEERS).map_err(dberr)?;
            t.insert(&feed[..], all.join("\n").as_str()).map_err(dberr)?;
        }
        txn.commit().map_err(dberr)
    }

    /// Every followed feed.
    pub fn follows(&self) -> Result<Vec<([u8; 32], Follow)>, StateError> {
        let txn = self.db.begin_read().map_err(dberr)?;
        let t = txn.open_table(FOLLOWS).map_err(dberr)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(dberr)? {
            let (k, v) = item.map_err(dberr)?;
            let feed: [u8; 32] = k
                .value()
                .try_into()
                .map_err(|_| StateError::Damaged("follow key".into()))?;
            let f = decode_follow(v.value()).ok_or_else(|| StateError::Damaged("follow".into()))?;
            out.push((feed, f));
        }
        Ok(out)
    }
}

fn encode_follow(f: &Follow) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    let mut v = vec![1u8];
    v.extend_from_slice(&f.materialized.map_or(0, |m| m + 1).to_le_bytes());
    v.push(u8::from(f.watch));
    if let Some(dir) = &f.into {
        v.extend_from_slice(dir.as_os_str().as_bytes());
    }
    v
}

fn decode_follow(v: &[u8]) -> Option<Follow> {
    use std::os::unix::ffi::OsStrExt;
    if v.first() != Some(&1) || v.len() < 10 {
        return None;
    }
    let m = u64::from_le_bytes(v[1..9].try_into().ok()?);
    let dir = &v[10..];
    Some(Follow {
        materialized: m.checked_sub(1),
        watch: v[9] == 1,
        into: (!dir.is_empty()).then(|| PathBuf::from(std::ffi::OsStr::from_bytes(dir))),
    })
}

struct Buf<'a>(&'a [u8]);

impl Buf<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (a, b) = self.0.split_at_checked(N)?;
        self.0 = b;
        a.try_into().ok()
    }
    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }
}

fn put_link(v: &mut Vec<u8>, cid: &Cid, size: u64) {
    v.extend_from_slice(&size.to_le_bytes());
    v.extend_from_slice(&cid.to_bytes());
}

fn encode(rec: &Record) -> Vec<u8> {
    let mut v = Vec::with_capacity(96);
    match rec {
        Record::File(f) => {
            v.push(b'f');
            let id = &f.identity;
            v.extend_from_slice(&id.size.to_le_bytes());
            v.extend_from_slice(&id.mtime_ns.to_le_bytes());
            v.extend_from_slice(&id.inode.to_le_bytes());
            v.extend_from_slice(&id.dev.to_le_bytes());
            let mode = f.meta.mode.map_or(0, |m| u64::from(m) | 1 << 32);
            v.extend_from_slice(&mode.to_le_bytes());
            let (has, secs, nsecs) = f.meta.mtime.map_or((0u8, 0, 0), |t| (1, t.secs, t.nsecs));
            v.push(has);
            v.extend_from_slice(&secs.to_le_bytes());
            v.extend_from_slice(&nsecs.to_le_bytes());
            v.extend_from_slice(&f.node.content.to_le_bytes());
            put_link(&mut v, &f.node.cid, f.node.size);
        }
        Record::Dir(d) => {
            v.push(b'd');
            v.extend_from_slice(&d.shape.to_le_bytes());
            put_link(&mut v, &d.link.cid, d.link.size);
        }
    }
    v
}

fn decode(v: &[u8]) -> Option<Record> {
    let mut b = Buf(v.get(1..)?);
    match v.first()? {
        b'f' => {
            let identity = FileIdentity {
                size: b.u64()?,
                mtime_ns: i128::from_le_bytes(b.take()?),
                inode: b.u64()?,
                dev: b.u64()?,
            };
            let mode = b.u64()?;
            let has_mtime = b.take::<1>()?[0] == 1;
            let secs = i64::from_le_bytes(b.take()?);
            let nsecs = u32::from_le_bytes(b.take()?);
            let content = b.u64()?;
            let size = b.u64()?;
            let meta = Meta {
                mode: (mode >> 32 == 1).then_some(mode as u32),
                mtime: has_mtime.then_some(Mtime { secs, nsecs }),
            };
            let cid = cid_exact(b.0).ok()?;
            Some(Record::File(KnownFile {
                identity,
                meta,
                node: FileNode { cid, size, content },
            }))
        }
        b'd' => {
            let shape = u128::from_le_bytes(b.take()?);
            let size = b.u64()?;
            let cid = cid_exact(b.0).ok()?;
            Some(Record::Dir(KnownDir {
                shape,
                link: Linked { cid, size },
            }))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_per_feed() {
        let dir = tempfile::tempdir().unwrap();
        let st = FeedState::open(dir.path().join("feeds.redb")).unwrap();
        let cid = shoal_ipld::block::cid_of(shoal_ipld::Codec::Raw, 1, b"x");
        let file = Record::File(KnownFile {
            identity: FileIdentity {
                size: 5,
                mtime_ns: -3,
                inode: 9,
                dev: 2,
            },
            meta: Meta {
                mode: Some(0o644),
                mtime: Some(Mtime { secs: -1, nsecs: 7 }),
            },
            node: FileNode {
                cid,
                size: 5,
                content: 5,
            },
        });
        let d = Record::Dir(KnownDir {
            shape: u128::MAX - 4,
            link: Linked { cid, size: 77 },
        });
        let recs = vec![(PathBuf::from(""), d), (PathBuf::from("a/b"), file)];
        st.set_index(&[1; 32], &recs).unwrap();
        st.set_index(&[2; 32], &recs[1..]).unwrap();
        assert_eq!(st.index(&[1; 32]).unwrap(), recs);
        st.set_index(&[1; 32], &recs[..1]).unwrap();
        assert_eq!(st.index(&[1; 32]).unwrap(), recs[..1]);
        assert_eq!(st.index(&[2; 32]).unwrap(), recs[1..]);
        let f = Follow {
            into: Some("/srv/mirror".into()),
            materialized: Some(0),
            watch: true,
        };
        st.set_follow(&[3; 32], &f).unwrap();
        assert_eq!(st.follow(&[3; 32]).unwrap(), Some(f.clone()));
        assert_eq!(st.follows().unwrap(), vec![([3; 32], f)]);
        assert_eq!(decode(b"f\x01"), None);
        st.remember_peers(&[3; 32], &["/ip4/1.2.3.4/tcp/1/p2p/a".into()])
            .unwrap();
        st.remember_peers(&[3; 32], &["/ip4/1.2.3.4/tcp/2/p2p/b".into()])
            .unwrap();
        assert_eq!(
            st.peers(&[3; 32]).unwrap(),
            ["/ip4/1.2.3.4/tcp/2/p2p/b", "/ip4/1.2.3.4/tcp/1/p2p/a"]
        );
    }
}
