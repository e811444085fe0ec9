//! Walking a local path into the tree an import works through.

use crate::data::Mtime;
use crate::file::Meta;
use crate::options::ImportOptions;
use shoal_store::FileIdentity;
use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Most entries one import walks.
pub const MAX_ENTRIES: usize = 50_000_000;

/// A scanned entry.
#[derive(Debug)]
pub enum Entry {
    /// Index into `Scan::files`.
    File {
        index: usize,
    },
    Dir {
        meta: Meta,
        children: Vec<(String, Entry)>,
    },
    Symlink {
        target: Vec<u8>,
        meta: Meta,
    },
}

/// Why a path could not be scanned.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: the name is not valid UTF-8 (UnixFS names are UTF-8)")]
    NotUtf8(PathBuf),
    #[error("{0} is a directory: use -r to add it recursively")]
    IsDir(PathBuf),
    #[error("{0} is not a regular file, directory or symlink")]
    Special(PathBuf),
    #[error("more than {MAX_ENTRIES} entries under the path")]
    TooMany,
}

/// A regular file to import.
#[derive(Debug)]
pub struct ScannedFile {
    pub path: PathBuf,
    pub identity: FileIdentity,
    pub meta: Meta,
}

/// The result of a scan: the tree plus the files in import order.
#[derive(Debug)]
pub struct Scan {
    pub root: Entry,
    pub files: Vec<ScannedFile>,
    pub total_bytes: u64,
    /// Special files skipped (sockets, devices, FIFOs).
    pub skipped: Vec<PathBuf>,
}

/// Walks `path` (recursing into directories only when `recursive`).
pub fn scan(path: &Path, recursive: bool, opts: &ImportOptions) -> Result<Scan, ScanError> {
    let mut scan = Scan {
        root: Entry::Dir {
            meta: Meta::default(),
            children: vec![],
        },
        files: Vec::new(),
        total_bytes: 0,
        skipped: Vec::new(),
    };
    let meta = std::fs::symlink_metadata(path).map_err(io(path))?;
    if meta.is_dir() && !recursive {
        return Err(ScanError::IsDir(path.to_path_buf()));
    }
    if !(meta.is_dir() || meta.is_file() || meta.file_type().is_symlink()) {
        return Err(ScanError::Special(path.to_path_buf()));
    }
    scan.root = walk(path, meta, opts, &mut scan)?.expect("checked type");
    Ok(scan)
}

fn walk(
    path: &Path,
    meta: Metadata,
    opts: &ImportOptions,
    scan: &mut Scan,
) -> Result<Option<Entry>, ScanError> {
    if scan.files.len() + scan.skipped.len() >= MAX_ENTRIES {
        return Err(ScanError::TooMany);
    }
    let m = meta_of(&meta, opts);
    let ft = meta.file_type();
    if ft.is_file() {
        let index = scan.files.len();
        let identity = FileIdentity::of(&meta);
        scan.files.push(ScannedFile {
            path: path.to_path_buf(),
            identity,
            meta: m,
        });
        scan.total_bytes += meta.len();
        return Ok(Some(Entry::File { index }));
    }
    if ft.is_symlink() {
        use std::os::unix::ffi::OsStrExt;
        let target = std::fs::read_link(path).map_err(io(path))?;
        return Ok(Some(Entry::Symlink {
            target: target.as_os_str().as_bytes().to_vec(),
            meta: m,
        }));
    }
    if ft.is_socket() || ft.is_fifo() || ft.is_block_device() || ft.is_char_device() {
        scan.skipped.push(path.to_path_buf());
        return Ok(None);
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(path).map_err(io(path))? {
        let entry = entry.map_err(io(path))?;
        let name = entry
            .file_name()
            .into_string()
            .map_err(|_| ScanError::NotUtf8(entry.path()))?;
        names.push(name);
    }
    names.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let mut children = Vec::with_capacity(names.len());
    for name in names {
        let child = path.join(&name);
        let meta = std::fs::symlink_metadata(&child).map_err(io(&child))?;
        if let Some(entry) = walk(&child, meta, opts, scan)? {
            children.push((name, entry));
        }
    }
    Ok(Some(Entry::Dir { meta: m, children }))
}

fn meta_of(meta: &Metadata, opts: &ImportOptions) -> Meta {
    Meta {
        mode: opts.preserve_mode.then_some(meta.mode() & 0o7777),
        mtime: opts.preserve_mtime.then(|| Mtime {
            secs: meta.mtime(),
            nsecs: meta.mtime_nsec() as u32,
        }),
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ScanError + '_ {
    move |source| ScanError::Io {
        path: path.to_path_buf(),
        source,
    }
}
