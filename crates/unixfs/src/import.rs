//! Importing local files and directories into the block store.
//!
//! Files are chunked and hashed in parallel on all cores (across files and
//! across the chunks of a big file, each chunk read with `pread`); blocks
//! flow through a bounded channel to one writer, which batches them and
//! commits about once a second. A file is acknowledged (reported through
//! `Event::Committed`) only after the commit that made it durable.

use crate::data::{NodeType, UnixFsData};
use crate::dir::{self, DirEntry, Linked};
use crate::file::{self, FileNode};
use crate::known::{shape, Indexed, Known, KnownDir, KnownFile};
use crate::options::ImportOptions;
use crate::scan::{self, Entry, Scan, ScanError, ScannedFile};
use rayon::prelude::*;
use shoal_ipld::block::cid_of;
use shoal_ipld::dagpb::PbNode;
use shoal_ipld::{Cid, Codec};
use shoal_store::{BlockStore, FileIdentity, PinKind, StoreError};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Commit at least this often while importing (default).
pub const COMMIT_INTERVAL: Duration = Duration::from_secs(1);
const COMMIT_BYTES: u64 = 256 << 20;
const COMMIT_BLOCKS: usize = 100_000;
/// Messages in flight between hashing workers and the writer.
const CHANNEL_DEPTH: usize = 64;

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Scan(#[from] ScanError),
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} changed while it was being added; add it again once it is stable")]
    Changed(PathBuf),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("invalid import options: {0}")]
    Options(String),
    #[error("import stopped: the block writer failed")]
    WriterGone,
}

/// What an import reports while it runs.
#[derive(Debug)]
pub enum Event<'a> {
    /// The tree was scanned: total files and bytes to read.
    Scanned { files: usize, bytes: u64 },
    /// Bytes of file content hashed.
    Progress(u64),
    /// These files are durable in the store.
    Committed(&'a [(PathBuf, Cid, u64)]),
}

/// How to import.
#[derive(Clone, Debug)]
pub struct AddOptions {
    pub import: ImportOptions,
    /// Recurse into directories.
    pub recursive: bool,
    /// Index blocks inside the files instead of copying them (implies raw leaves).
    pub nocopy: bool,
    /// Pin the root recursively when done.
    pub pin: bool,
    /// Longest time between commits (files are acknowledged at commits).
    pub commit_interval: Duration,
    /// An earlier import of the same tree: unchanged files are not read again.
    pub known: Option<Arc<Known>>,
}

impl Default for AddOptions {
    fn default() -> Self {
        AddOptions {
            import: ImportOptions::default(),
            recursive: false,
            nocopy: false,
            pin: true,
            commit_interval: COMMIT_INTERVAL,
            known: None,
        }
    }
}

/// The result of importing one path.
#[derive(Debug, Clone)]
pub struct Added {
    pub root: Cid,
    pub size: u64,
    pub files: usize,
    pub bytes: u64,
    pub skipped: Vec<PathBuf>,
    /// Every file and directory imported, for the next update.
    pub index: Vec<Indexed>,
    /// Files read (not taken from `AddOptions::known`) and their bytes.
    pub read_files: usize,
    pub read_bytes: u64,
}

/// From hashing workers to the writer. `Block` and `Ref` carry the bytes
/// of file content they stand for (0 for inner nodes), for progress.
enum Msg {
    Block(Cid, Vec<u8>, u64),
    File(usize, PathBuf, FileIdentity),
    Ref(usize, Cid, u64, u32),
    Done(usize, Cid, u64),
    /// An unchanged file taken from the earlier import.
    Reused(usize, Cid, u64),
}

/// Imports `path` into `store`.
pub fn add(
    store: &BlockStore,
    path: &Path,
    opts: &AddOptions,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<Added, ImportError> {
    let mut import = opts.import.clone();
    import.validate().map_err(ImportError::Options)?;
    if opts.nocopy {
        import.raw_leaves = true;
    }
    let path = std::path::absolute(path).map_err(|source| ImportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let scan = scan::scan(&path, opts.recursive, &import)?;
    on_event(Event::Scanned {
        files: scan.files.len(),
        bytes: scan.total_bytes,
    });
    let known = opts
        .known
        .as_deref()
        .filter(|k| k.options == format!("{import:?}"));
    let mut writer = Writer::new(store, opts.commit_interval);
    let nodes = hash_files(store, &scan, &import, opts.nocopy, known, &mut writer, on_event)?;
    let mut index = Vec::with_capacity(scan.files.len());
    let (mut read_files, mut read_bytes) = (0, 0);
    for (f, (node, reused)) in scan.files.iter().zip(&nodes) {
        if !reused {
            read_files += 1;
            read_bytes += f.identity.size;
        }
        index.push(Indexed::File {
            path: f.path.clone(),
            file: KnownFile {
                identity: f.identity,
                meta: f.meta,
                node: *node,
            },
            reused: *reused,
        });
    }
    let mut emit_err = None;
    let root = {
        let mut emit = |cid: Cid, data: Vec<u8>| {
            if let Err(e) = writer.put(&cid, &data) {
                emit_err.get_or_insert(e);
            }
        };
        let mut tree = Tree {
            opts: &import,
            files: &nodes,
            known,
            has: &|cid| store.has(cid).unwrap_or(false),
            emit: &mut emit,
            index: &mut index,
        };
        tree.build(&path, &scan.root).0
    };
    if let Some(e) = emit_err {
        return Err(e);
    }
    writer.commit(on_event)?;
    if opts.pin {
        store.pin_add_complete(&root.cid, PinKind::Recursive)?;
    }
    Ok(Added {
        root: root.cid,
        size: root.size,
        files: scan.files.len(),
        bytes: scan.total_bytes,
        skipped: scan.skipped,
        index,
        read_files,
        read_bytes,
    })
}

/// Chunks and hashes every file in parallel; the calling thread writes.
fn hash_files(
    store: &BlockStore,
    scan: &Scan,
    opts: &ImportOptions,
    nocopy: bool,
    known: Option<&Known>,
    writer: &mut Writer<'_>,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<Vec<(FileNode, bool)>, ImportError> {
    let (tx, rx) = sync_channel::<Msg>(CHANNEL_DEPTH);
    let failed = &AtomicBool::new(false);
    std::thread::scope(|s| {
        let producer = s.spawn(move || {
            let tx = tx;
            let result = scan
                .files
                .par_iter()
                .enumerate()
                .map(|(i, f)| match reusable(store, known, f) {
                    Some(node) => tx
                        .send(Msg::Reused(i, node.cid, f.identity.size))
                        .map(|_| (node, true))
                        .map_err(|_| ImportError::WriterGone),
                    None => import_file(i, f, opts, nocopy, &tx, failed).map(|n| (n, false)),
                })
                .collect::<Result<Vec<_>, _>>();
            if result.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
            result
        });
        let written = writer.drain(rx, scan, on_event);
        if written.is_err() {
            failed.store(true, Ordering::Relaxed);
        }
        let nodes = producer.join().map_err(|_| ImportError::WriterGone)?;
        written?;
        nodes
    })
}

/// The earlier import's node for a file that has not changed since.
fn reusable(store: &BlockStore, known: Option<&Known>, f: &ScannedFile) -> Option<FileNode> {
    let k = known?.files.get(&f.path)?;
    let same = k.identity == f.identity && k.meta == f.meta;
    (same && store.has(&k.node.cid).unwrap_or(false)).then_some(k.node)
}

fn import_file(
    index: usize,
    file: &ScannedFile,
    opts: &ImportOptions,
    nocopy: bool,
    tx: &SyncSender<Msg>,
    failed: &AtomicBool,
) -> Result<FileNode, ImportError> {
    let (path, identity) = (file.path.as_path(), file.identity);
    let read_err = |source| ImportError::Read {
        path: path.to_path_buf(),
        source,
    };
    let f = std::fs::File::open(path).map_err(read_err)?;
    let size = identity.size;
    let send = |m: Msg| tx.send(m).map_err(|_| ImportError::WriterGone);
    if nocopy {
        send(Msg::File(index, path.to_path_buf(), identity))?;
    }
    let chunk = opts.chunk_size as u64;
    let count = size.div_ceil(chunk).max(1);
    let mut single = None;
    let leaves = (0..count)
        .into_par_iter()
        .map(|i| {
            if failed.load(Ordering::Relaxed) {
                return Err(ImportError::WriterGone);
            }
            let offset = i * chunk;
            let mut buf = vec![0; chunk.min(size - offset) as usize];
            f.read_exact_at(&mut buf, offset)
                .map_err(|_| ImportError::Changed(path.to_path_buf()))?;
            let (node, block) = file::leaf(opts, &buf);
            let len = buf.len() as u64;
            let single = count == 1;
            let kept = match block {
                Some(block) => {
                    send(Msg::Block(node.cid, block, len))?;
                    Some(buf)
                }
                None if nocopy => {
                    send(Msg::Ref(index, node.cid, offset, len as u32))?;
                    Some(buf)
                }
                None if single => {
                    send(Msg::Block(node.cid, buf.clone(), len))?;
                    Some(buf)
                }
                None => {
                    send(Msg::Block(node.cid, buf, len))?;
                    None
                }
            };
            Ok((node, kept.filter(|_| single)))
        })
        .collect::<Result<Vec<_>, ImportError>>()?;
    let after = f.metadata().map_err(read_err)?;
    if FileIdentity::of(&after) != identity {
        return Err(ImportError::Changed(path.to_path_buf()));
    }
    let mut nodes = Vec::with_capacity(leaves.len());
    for (node, buf) in leaves {
        nodes.push(node);
        if buf.is_some() {
            single = buf;
        }
    }
    let single_block = single_leaf_block(opts, single.as_deref());
    let mut send_err = None;
    let root = file::balanced(
        opts,
        file.meta,
        nodes,
        single_block.as_deref(),
        &mut |cid, data| {
            if let Err(e) = send(Msg::Block(cid, data, 0)) {
                send_err.get_or_insert(e);
            }
        },
    );
    if let Some(e) = send_err {
        return Err(e);
    }
    send(Msg::Done(index, root.cid, size))?;
    Ok(root)
}

/// The bytes of a one-chunk file's leaf block (raw: the chunk; else the
/// encoded dag-pb leaf), used when metadata wraps it.
fn single_leaf_block(opts: &ImportOptions, chunk: Option<&[u8]>) -> Option<Vec<u8>> {
    let chunk = chunk?;
    if opts.raw_leaves {
        return Some(chunk.to_vec());
    }
    let mut data = UnixFsData::new(NodeType::File);
    data.data = chunk.to_vec();
    Some(
        PbNode {
            links: vec![],
            data: Some(data.encode()),
        }
        .encode(),
    )
}

/// Builds directory and symlink nodes bottom-up over the hashed files,
/// reusing the earlier import's directories where nothing below changed.
struct Tree<'a> {
    opts: &'a ImportOptions,
    files: &'a [(FileNode, bool)],
    known: Option<&'a Known>,
    has: &'a dyn Fn(&Cid) -> bool,
    emit: &'a mut dyn FnMut(Cid, Vec<u8>),
    index: &'a mut Vec<Indexed>,
}

impl Tree<'_> {
    /// The entry's link and whether it is unchanged since the earlier import.
    fn build(&mut self, path: &Path, entry: &Entry) -> (Linked, bool) {
        match entry {
            Entry::File { index, .. } => {
                let (n, reused) = self.files[*index];
                (
                    Linked {
                        cid: n.cid,
                        size: n.size,
                    },
                    reused,
                )
            }
            Entry::Symlink { target, meta } => {
                let mut data = UnixFsData::new(NodeType::Symlink);
                data.data = target.clone();
                data.mode = meta.mode;
                data.mtime = meta.mtime;
                let bytes = PbNode {
                    links: vec![],
                    data: Some(data.encode()),
                }
                .encode();
                let cid = cid_of(Codec::DagPb, self.opts.cid_version, &bytes);
                let size = bytes.len() as u64;
                (self.emit)(cid, bytes);
                // its content is part of the parent's shape
                (Linked { cid, size }, true)
            }
            Entry::Dir { meta, children } => self.dir(path, meta, children),
        }
    }

    fn dir(&mut self, path: &Path, meta: &file::Meta, children: &[(String, Entry)]) -> (Linked, bool) {
        let mut entries = Vec::with_capacity(children.len());
        let mut unchanged = true;
        for (name, child) in children {
            let (link, same) = self.build(&path.join(name), child);
            unchanged &= same;
            entries.push(DirEntry {
                name: name.clone(),
                link,
                subdir: match child {
                    Entry::Dir { meta, children } if !children.is_empty() => Some(*meta),
                    _ => None,
                },
            });
        }
        let shape = shape(meta, children);
        let earlier = self.known.and_then(|k| k.dirs.get(path)).copied();
        let (link, reused) = match earlier {
            Some(k) if unchanged && k.shape == shape && (self.has)(&k.link.cid) => (k.link, true),
            _ => (dir::build(self.opts, *meta, &entries, self.emit), false),
        };
        self.index.push(Indexed::Dir {
            path: path.to_path_buf(),
            dir: KnownDir { shape, link },
            reused,
        });
        (link, reused)
    }
}

/// The single writer: owns the open batch and commits it periodically.
struct Writer<'s> {
    store: &'s BlockStore,
    batch: Option<shoal_store::Batch<'s>>,
    file_ids: std::collections::HashMap<usize, u64>,
    acks: Vec<(PathBuf, Cid, u64)>,
    last_commit: Instant,
    interval: Duration,
}

impl<'s> Writer<'s> {
    fn new(store: &'s BlockStore, interval: Duration) -> Writer<'s> {
        Writer {
            interval,
            store,
            batch: None,
            file_ids: Default::default(),
            acks: Vec::new(),
            last_commit: Instant::now(),
        }
    }

    fn batch(&mut self) -> &mut shoal_store::Batch<'s> {
        let store = self.store;
        self.batch.get_or_insert_with(|| store.batch())
    }

    fn put(&mut self, cid: &Cid, data: &[u8]) -> Result<(), ImportError> {
        Ok(self.batch().put_verified(cid, data)?)
    }

    fn drain(
        &mut self,
        rx: Receiver<Msg>,
        scan: &Scan,
        on_event: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), ImportError> {
        for msg in rx {
            match msg {
                Msg::Block(cid, data, content) => {
                    self.put(&cid, &data)?;
                    if content > 0 {
                        on_event(Event::Progress(content));
                    }
                }
                Msg::File(i, path, identity) => {
                    let id = self.batch().register_file(&path, identity)?;
                    self.file_ids.insert(i, id);
                }
                Msg::Ref(i, cid, offset, len) => {
                    let id = self.file_ids[&i];
                    self.batch().put_ref(&cid, id, offset, len)?;
                    on_event(Event::Progress(u64::from(len)));
                }
                Msg::Done(i, cid, size) => self.acks.push((scan.files[i].path.clone(), cid, size)),
                Msg::Reused(i, cid, size) => {
                    on_event(Event::Progress(size));
                    self.acks.push((scan.files[i].path.clone(), cid, size));
                }
            }
            if self.due() {
                self.commit(on_event)?;
            }
        }
        Ok(())
    }

    fn due(&self) -> bool {
        let Some(b) = &self.batch else { return false };
        b.pending_bytes() >= COMMIT_BYTES
            || b.pending_blocks() >= COMMIT_BLOCKS
            || self.last_commit.elapsed() >= self.interval
    }

    fn commit(&mut self, on_event: &mut dyn FnMut(Event<'_>)) -> Result<(), ImportError> {
        if let Some(b) = self.batch.take() {
            b.commit()?;
        }
        self.last_commit = Instant::now();
        if !self.acks.is_empty() {
            on_event(Event::Committed(&self.acks));
            self.acks.clear();
        }
        Ok(())
    }
}
