//! The block and store operations, as requests and replies that serialize
//! to JSON: the CLI runs them directly on an open store when no daemon is
//! running, and the daemon runs the very same functions for RPC requests.

use serde::{Deserialize, Serialize};
use shoal_ipld::car::{CarError, CarReader, CarWriter};
use shoal_ipld::path::IpfsPath;
use shoal_ipld::{dagpb, Cid};
use shoal_store::{BlockStore, PinKind, StoreError};
use shoal_unixfs::data::NodeType;
use shoal_unixfs::export::{self, ExportError};
use shoal_unixfs::{AddOptions, Event, ImportError, Profile};
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why an operation failed. `is_user_error` tells bad input (HTTP 4xx)
/// from failures of the node itself (5xx).
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error("adding {path}: {source}")]
    Import {
        path: PathBuf,
        #[source]
        source: ImportError,
    },
    #[error("{file}: {source}")]
    Car {
        file: PathBuf,
        #[source]
        source: CarError,
    },
    #[error("{file}: block {cid} is malformed: {reason}")]
    Malformed { file: PathBuf, cid: Cid, reason: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl OpError {
    /// Whether the request was at fault (not found, bad input) rather than the node.
    pub fn is_user_error(&self) -> bool {
        match self {
            OpError::Store(e) => matches!(
                e,
                StoreError::NotFound(_)
                    | StoreError::Incomplete { .. }
                    | StoreError::Block(_)
                    | StoreError::Stale { .. }
            ),
            OpError::Export(e) => !matches!(e, ExportError::Store(_) | ExportError::Io { .. }),
            OpError::Io { .. } => false,
            _ => true,
        }
    }
}

/// `add`: what to import and how.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AddRequest {
    /// Absolute paths.
    pub paths: Vec<PathBuf>,
    pub recursive: bool,
    pub profile: String,
    pub cid_version: Option<u8>,
    pub raw_leaves: Option<bool>,
    pub chunk_size: Option<usize>,
    pub max_links: Option<usize>,
    pub nocopy: bool,
    pub preserve_mode: bool,
    pub preserve_mtime: bool,
    pub pin: bool,
    /// Milliseconds between commits (acknowledgements); default 1000.
    pub commit_ms: Option<u64>,
}

/// One imported path.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Added {
    pub path: PathBuf,
    pub root: String,
    pub size: u64,
    pub files: usize,
    pub bytes: u64,
    pub skipped: Vec<PathBuf>,
}

impl AddRequest {
    fn options(&self) -> Result<AddOptions, OpError> {
        let profile: Profile = self.profile.parse().map_err(OpError::Invalid)?;
        let mut import = profile.options();
        import.cid_version = self.cid_version.unwrap_or(import.cid_version);
        import.raw_leaves = self.raw_leaves.unwrap_or(import.raw_leaves);
        import.chunk_size = self.chunk_size.unwrap_or(import.chunk_size);
        import.max_links = self.max_links.unwrap_or(import.max_links);
        import.preserve_mode = self.preserve_mode;
        import.preserve_mtime = self.preserve_mtime;
        let mut opts = AddOptions {
            import,
            recursive: self.recursive,
            nocopy: self.nocopy,
            pin: self.pin,
            ..Default::default()
        };
        if let Some(ms) = self.commit_ms {
            opts.commit_interval = std::time::Duration::from_millis(ms);
        }
        Ok(opts)
    }
}

/// Imports every path of `req`; `on_event` sees progress and acknowledgements.
pub fn add(
    store: &BlockStore,
    req: &AddRequest,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<Vec<Added>, OpError> {
    let opts = req.options()?;
    let mut out = Vec::with_capacity(req.paths.len());
    for path in &req.paths {
        let added = shoal_unixfs::add(store, path, &opts, on_event).map_err(|source| OpError::Import {
            path: path.clone(),
            source,
        })?;
        out.push(Added {
            path: path.clone(),
            root: added.root.to_string(),
            size: added.size,
            files: added.files,
            bytes: added.bytes,
            skipped: added.skipped,
        });
    }
    Ok(out)
}

/// One entry of `ls`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LsEntry {
    pub name: String,
    pub cid: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub size: Option<u64>,
    pub tsize: u64,
}

fn kind_name(k: NodeType) -> &'static str {
    match k {
        NodeType::Raw | NodeType::File => "file",
        NodeType::Directory | NodeType::HamtShard => "directory",
        NodeType::Symlink => "symlink",
        NodeType::Metadata => "metadata",
    }
}

pub fn ls(store: &BlockStore, path: &IpfsPath) -> Result<Vec<LsEntry>, OpError> {
    let cid = export::resolve(store, path)?;
    if !export::load(store, &cid)?.is_dir() {
        return Err(ExportError::NotADirectory(path.to_string()).into());
    }
    let entries = export::list(store, &cid)?;
    Ok(entries
        .into_iter()
        .map(|e| {
            let (kind, size) = match shoal_unixfs::get::describe(store, &e.cid) {
                Ok((k, s)) => (kind_name(k), Some(s)),
                Err(_) => ("unknown", None),
            };
            LsEntry {
                name: e.name,
                cid: e.cid.to_string(),
                kind: kind.into(),
                size,
                tsize: e.tsize,
            }
        })
        .collect())
}

/// Writes a file's bytes (or a range) to `out`.
pub fn cat(
    store: &BlockStore,
    path: &IpfsPath,
    offset: u64,
    length: Option<u64>,
    out: &mut dyn Write,
) -> Result<u64, OpError> {
    let cid = export::resolve(store, path)?;
    Ok(export::cat(store, &cid, offset, length, out, &mut |_| {})?)
}

/// What `get` wrote.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GetReply {
    pub cid: String,
    pub output: PathBuf,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes: u64,
}

/// Bytes `get` will write (checks the DAG first).
pub fn get_size(store: &BlockStore, path: &IpfsPath) -> Result<u64, OpError> {
    let cid = export::resolve(store, path)?;
    Ok(shoal_unixfs::get::plan_bytes(store, &cid)?)
}

pub fn get(
    store: &BlockStore,
    path: &IpfsPath,
    output: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<GetReply, OpError> {
    let cid = export::resolve(store, path)?;
    let r = shoal_unixfs::get::get(store, &cid, output, progress)?;
    Ok(GetReply {
        cid: cid.to_string(),
        output: output.to_path_buf(),
        files: r.files,
        dirs: r.dirs,
        symlinks: r.symlinks,
        bytes: r.bytes,
    })
}

/// A pin as listed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pin {
    pub cid: String,
    #[serde(rename = "type")]
    pub kind: String,
}

pub fn pin_add(store: &BlockStore, path: &IpfsPath, direct: bool) -> Result<Pin, OpError> {
    let cid = export::resolve(store, path)?;
    let kind = if direct {
        PinKind::Direct
    } else {
        PinKind::Recursive
    };
    store.pin_add(&cid, kind)?;
    Ok(Pin {
        cid: cid.to_string(),
        kind: pin_name(kind).into(),
    })
}

pub fn pin_rm(store: &BlockStore, path: &IpfsPath) -> Result<String, OpError> {
    let cid = export::resolve(store, path)?;
    if !store.pin_rm(&cid)? {
        return Err(OpError::Invalid(format!("{cid} is not pinned")));
    }
    Ok(cid.to_string())
}

pub fn pin_ls(store: &BlockStore) -> Result<Vec<Pin>, OpError> {
    Ok(store
        .pins()?
        .into_iter()
        .map(|(c, k)| Pin {
            cid: c.to_string(),
            kind: pin_name(k).into(),
        })
        .collect())
}

fn pin_name(k: PinKind) -> &'static str {
    match k {
        PinKind::Direct => "direct",
        PinKind::Recursive => "recursive",
    }
}

/// What `gc` did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GcReply {
    pub blocks_removed: u64,
    pub bytes_removed: u64,
    pub packs_deleted: u64,
    pub packs_rewritten: u64,
    pub pinned_missing: u64,
}

pub fn gc(store: &BlockStore) -> Result<GcReply, OpError> {
    let r = store.gc()?;
    Ok(GcReply {
        blocks_removed: r.blocks_removed,
        bytes_removed: r.bytes_removed,
        packs_deleted: r.packs_deleted,
        packs_rewritten: r.packs_rewritten,
        pinned_missing: r.missing,
    })
}

/// A block `verify` complains about.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Problem {
    pub cid: String,
    pub reason: String,
}

/// What `verify` found.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VerifyReply {
    pub ok: bool,
    pub blocks: u64,
    pub bytes: u64,
    pub corrupt: Vec<Problem>,
    pub missing: Vec<Problem>,
    pub stale: Vec<Problem>,
}

pub fn verify(store: &BlockStore, progress: &mut dyn FnMut(u64)) -> Result<VerifyReply, OpError> {
    let r = store.verify(progress)?;
    let list = |v: &[(Cid, String)]| {
        v.iter()
            .map(|(c, why)| Problem {
                cid: c.to_string(),
                reason: why.clone(),
            })
            .collect()
    };
    Ok(VerifyReply {
        ok: r.ok(),
        blocks: r.blocks,
        bytes: r.bytes,
        corrupt: list(&r.corrupt),
        missing: list(&r.missing),
        stale: r
            .stale
            .iter()
            .map(|(c, p)| Problem {
                cid: c.to_string(),
                reason: format!("{} changed or vanished", p.display()),
            })
            .collect(),
    })
}

/// Store size.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StatReply {
    pub blocks: u64,
    pub bytes: u64,
}

pub fn stat(store: &BlockStore) -> Result<StatReply, OpError> {
    let (blocks, bytes) = store.stat()?;
    Ok(StatReply { blocks, bytes })
}

/// What a CAR export or import moved.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CarReply {
    pub roots: Vec<String>,
    pub blocks: u64,
    pub bytes: u64,
    pub pinned: Vec<String>,
    pub file: PathBuf,
}

/// Writes every block reachable from `path`'s CID, depth-first, to `out`
/// (atomically: a partial file is never left under that name).
pub fn car_export(
    store: &BlockStore,
    path: &IpfsPath,
    out: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<CarReply, OpError> {
    let root = export::resolve(store, path)?;
    let car_err = |source| OpError::Car {
        file: out.to_path_buf(),
        source,
    };
    let io = |source| OpError::Io {
        path: out.to_path_buf(),
        source,
    };
    let tmp = out.with_extension("car.partial");
    let file = std::fs::File::create(&tmp).map_err(io)?;
    let mut w = CarWriter::new(std::io::BufWriter::with_capacity(1 << 20, file), &[root]).map_err(car_err)?;
    let mut seen = HashSet::new();
    let mut stack = vec![root];
    let (mut blocks, mut bytes) = (0u64, 0u64);
    while let Some(cid) = stack.pop() {
        if !seen.insert(cid) {
            continue;
        }
        let data = store.get(&cid)?;
        let links = dagpb::links(&cid, &data).map_err(|e| OpError::Invalid(e.to_string()))?;
        stack.extend(links.into_iter().rev());
        w.write_block(&cid, &data).map_err(car_err)?;
        blocks += 1;
        bytes += data.len() as u64;
        progress(data.len() as u64);
    }
    let buf = w.finish().map_err(car_err)?;
    buf.into_inner()
        .map_err(|e| io(e.into_error()))?
        .sync_all()
        .map_err(io)?;
    std::fs::rename(&tmp, out).map_err(io)?;
    Ok(CarReply {
        roots: vec![root.to_string()],
        blocks,
        bytes,
        pinned: vec![],
        file: out.to_path_buf(),
    })
}

/// Imports a CAR, verifying every block; nothing is kept unless the whole
/// file reads cleanly. Roots are pinned when their DAG is complete.
pub fn car_import(
    store: &BlockStore,
    file: &Path,
    pin_roots: bool,
    progress: &mut dyn FnMut(u64),
) -> Result<CarReply, OpError> {
    let car_err = |source| OpError::Car {
        file: file.to_path_buf(),
        source,
    };
    let f = std::fs::File::open(file).map_err(|source| OpError::Io {
        path: file.to_path_buf(),
        source,
    })?;
    let mut reader = CarReader::new(std::io::BufReader::with_capacity(1 << 20, f)).map_err(car_err)?;
    let roots: Vec<Cid> = reader.roots().to_vec();
    let mut batch = store.batch();
    let (mut blocks, mut bytes) = (0u64, 0u64);
    while let Some(block) = reader.next_block().map_err(car_err)? {
        dagpb::links(&block.cid, &block.data).map_err(|e| OpError::Malformed {
            file: file.to_path_buf(),
            cid: block.cid,
            reason: e.to_string(),
        })?;
        batch.put_verified(&block.cid, &block.data)?;
        blocks += 1;
        bytes += block.data.len() as u64;
        progress(block.data.len() as u64);
    }
    batch.commit()?;
    let mut pinned = Vec::new();
    if pin_roots {
        for root in &roots {
            if store.pin_add(root, PinKind::Recursive).is_ok() {
                pinned.push(root.to_string());
            }
        }
    }
    Ok(CarReply {
        roots: roots.iter().map(|r| r.to_string()).collect(),
        blocks,
        bytes,
        pinned,
        file: file.to_path_buf(),
    })
}
