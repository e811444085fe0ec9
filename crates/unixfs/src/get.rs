//! `get`: writing a UnixFS DAG to a local path. A plan is built and checked
//! first (names, symlink targets, duplicates, depth), so a hostile DAG is
//! refused before anything is written; then files are written with
//! create-new semantics under a directory we created ourselves.

use crate::data::NodeType;
use crate::export::{self, cat, list, load, ExportError, Node, MAX_DEPTH};
use shoal_ipld::Cid;
use shoal_store::BlockStore;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Most entries written by one `get`.
pub const MAX_ENTRIES: usize = 10_000_000;

enum Item {
    Dir {
        rel: PathBuf,
        mode: Option<u32>,
        mtime: Option<crate::data::Mtime>,
    },
    File {
        rel: PathBuf,
        cid: Cid,
        size: u64,
        mode: Option<u32>,
        mtime: Option<crate::data::Mtime>,
    },
    Symlink {
        rel: PathBuf,
        target: PathBuf,
    },
}

/// What `get` wrote.
#[derive(Debug, Default, Clone)]
pub struct GetReport {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes: u64,
}

/// Checks a name from a DAG is a single, ordinary path component.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." {
        return Err("an empty, '.' or '..' name".into());
    }
    if name.contains('/') || name.contains('\0') {
        return Err("a name containing '/' or NUL".into());
    }
    Ok(())
}

/// Whether a symlink at `rel` (relative to the output root) pointing at
/// `target` stays inside the root.
pub(crate) fn link_stays_inside(rel: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth = rel.components().count() as i64 - 1;
    for c in target.components() {
        match c {
            std::path::Component::ParentDir => depth -= 1,
            std::path::Component::Normal(_) => depth += 1,
            std::path::Component::CurDir => {}
            _ => return false,
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

/// Total bytes `get` would write for `cid` (files only), after checking.
pub fn plan_bytes(store: &BlockStore, cid: &Cid) -> Result<u64, ExportError> {
    let mut items = Vec::new();
    plan(store, cid, PathBuf::new(), 0, &mut items)?;
    Ok(items
        .iter()
        .map(|i| if let Item::File { size, .. } = i { *size } else { 0 })
        .sum())
}

fn plan(
    store: &BlockStore,
    cid: &Cid,
    rel: PathBuf,
    depth: usize,
    items: &mut Vec<Item>,
) -> Result<(), ExportError> {
    if depth > MAX_DEPTH || items.len() >= MAX_ENTRIES {
        return Err(ExportError::Unsafe {
            path: rel.display().to_string(),
            reason: "tree too deep or too large".into(),
        });
    }
    let node = load(store, cid)?;
    let (mode, mtime) = match &node {
        Node::Pb { data, .. } => (data.mode, data.mtime),
        Node::Raw(_) => (None, None),
    };
    match node.kind() {
        NodeType::Directory | NodeType::HamtShard => {
            items.push(Item::Dir {
                rel: rel.clone(),
                mode,
                mtime,
            });
            let mut seen = HashSet::new();
            for entry in list(store, cid)? {
                let child = rel.join(&entry.name);
                check_name(&entry.name).map_err(|reason| ExportError::Unsafe {
                    path: child.display().to_string(),
                    reason: format!("the DAG holds {reason}"),
                })?;
                if !seen.insert(entry.name.clone()) {
                    return Err(ExportError::Unsafe {
                        path: child.display().to_string(),
                        reason: "duplicate name".into(),
                    });
                }
                plan(store, &entry.cid, child, depth + 1, items)?;
            }
        }
        NodeType::Symlink => {
            let Node::Pb { data, .. } = node else {
                unreachable!("symlinks are dag-pb")
            };
            use std::os::unix::ffi::OsStrExt;
            let target = PathBuf::from(std::ffi::OsStr::from_bytes(&data.data));
            if !link_stays_inside(&rel, &target) {
                return Err(ExportError::Unsafe {
                    path: rel.display().to_string(),
                    reason: format!("symlink points outside the output ({})", target.display()),
                });
            }
            items.push(Item::Symlink { rel, target });
        }
        NodeType::File | NodeType::Raw => items.push(Item::File {
            rel,
            cid: *cid,
            size: node.file_size(),
            mode,
            mtime,
        }),
        NodeType::Metadata => {
            return Err(ExportError::BadNode {
                cid: *cid,
                reason: "metadata nodes are not supported".into(),
            })
        }
    }
    Ok(())
}

/// Writes the DAG at `cid` to `out`, which must not exist (or be an empty
/// directory when the DAG is a directory).
pub fn get(
    store: &BlockStore,
    cid: &Cid,
    out: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<GetReport, ExportError> {
    let mut items = Vec::new();
    plan(store, cid, PathBuf::new(), 0, &mut items)?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ExportError::Io { path, source }
    };
    prepare_root(out, matches!(items.first(), Some(Item::Dir { .. })))?;
    let mut report = GetReport::default();
    let mut dir_times = Vec::new();
    for item in &items {
        match item {
            Item::Dir { rel, mode, mtime } => {
                let path = under(out, rel);
                if !rel.as_os_str().is_empty() {
                    std::fs::create_dir(&path).map_err(io(&path))?;
                }
                dir_times.push((path, *mode, *mtime));
                report.dirs += 1;
            }
            Item::File {
                rel,
                cid,
                mode,
                mtime,
                ..
            } => {
                let path = under(out, rel);
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .map_err(io(&path))?;
                let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
                report.bytes += cat(store, cid, 0, None, &mut w, progress)?;
                let f = w.into_inner().map_err(|e| ExportError::Io {
                    path: path.clone(),
                    source: e.into_error(),
                })?;
                set_mode(&path, *mode)?;
                if let Some(t) = mtime {
                    f.set_modified(to_system_time(*t)).map_err(io(&path))?;
                }
                report.files += 1;
            }
            Item::Symlink { rel, target } => {
                let path = under(out, rel);
                std::os::unix::fs::symlink(target, &path).map_err(io(&path))?;
                report.symlinks += 1;
            }
        }
    }
    // directories last, deepest first: a read-only mode must not block
    // writing their contents, and writing contents changes their mtime
    for (path, mode, mtime) in dir_times.into_iter().rev() {
        set_mode(&path, mode)?;
        if let Some(t) = mtime {
            let f = std::fs::File::open(&path).map_err(io(&path))?;
            f.set_modified(to_system_time(t)).map_err(io(&path))?;
        }
    }
    Ok(report)
}

/// `out/rel`, or `out` itself for the root (joining "" would add a '/').
fn under(out: &Path, rel: &Path) -> PathBuf {
    if rel.as_os_str().is_empty() {
        out.to_path_buf()
    } else {
        out.join(rel)
    }
}

pub(crate) fn prepare_root(out: &Path, is_dir: bool) -> Result<(), ExportError> {
    match std::fs::symlink_metadata(out) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if is_dir {
                std::fs::create_dir(out).map_err(|source| ExportError::Io {
                    path: out.into(),
                    source,
                })?;
            }
            Ok(())
        }
        Ok(m) if is_dir && m.is_dir() => {
            let empty = std::fs::read_dir(out)
                .map_err(|source| ExportError::Io {
                    path: out.into(),
                    source,
                })?
                .next()
                .is_none();
            if empty {
                Ok(())
            } else {
                Err(ExportError::Exists(out.into()))
            }
        }
        Ok(_) => Err(ExportError::Exists(out.into())),
        Err(source) => Err(ExportError::Io {
            path: out.into(),
            source,
        }),
    }
}

pub(crate) fn set_mode(path: &Path, mode: Option<u32>) -> Result<(), ExportError> {
    use std::os::unix::fs::PermissionsExt;
    let Some(mode) = mode else { return Ok(()) };
    // never restore setuid/setgid bits from untrusted data
    let perms = std::fs::Permissions::from_mode(mode & 0o1777);
    std::fs::set_permissions(path, perms).map_err(|source| ExportError::Io {
        path: path.into(),
        source,
    })
}

pub(crate) fn to_system_time(t: crate::data::Mtime) -> std::time::SystemTime {
    let base = std::time::UNIX_EPOCH;
    let nanos = std::time::Duration::from_nanos(u64::from(t.nsecs.min(999_999_999)));
    if t.secs >= 0 {
        base + std::time::Duration::from_secs(t.secs as u64) + nanos
    } else {
        base - std::time::Duration::from_secs(t.secs.unsigned_abs()) + nanos
    }
}

/// The kind and content size of a node (for `ls`), reading raw leaves not at all.
pub fn describe(store: &BlockStore, cid: &Cid) -> Result<(NodeType, u64), ExportError> {
    if cid.codec() == 0x55 {
        let size = store.size(cid)?.ok_or(shoal_store::StoreError::NotFound(*cid))?;
        return Ok((NodeType::Raw, size));
    }
    let node = export::load(store, cid)?;
    Ok((node.kind(), node.file_size()))
}
