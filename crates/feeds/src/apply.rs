//! Materializing a snapshot into a directory that holds an older one:
//! every new or changed file is first written in full into a staging
//! directory inside the target, and only when all of them are written are
//! they renamed into place; deletions come last. A failure before the
//! renames (disk full, a missing block) leaves the old snapshot untouched;
//! an interruption during them is repaired by applying again.

use crate::FeedError;
use shoal_ipld::Cid;
use shoal_store::BlockStore;
use shoal_unixfs::diff::{diff, Change, ChangeKind};
use shoal_unixfs::export::ExportError;
use shoal_unixfs::file::Meta;
use shoal_unixfs::get::{check_name, get};
use shoal_unixfs::ImportOptions;
use std::path::{Path, PathBuf};

/// The staging directory inside the target (removed when done).
pub const STAGING: &str = ".shoal-staging";

/// What an apply changed in the directory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub files_written: u64,
    pub bytes_written: u64,
    pub dirs_created: u64,
    pub removed: u64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FeedError + '_ {
    move |source| FeedError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A path from a DAG as a relative local path, every component checked.
fn local(rel: &str) -> Result<PathBuf, FeedError> {
    let mut p = PathBuf::new();
    for part in rel.split('/') {
        check_name(part).map_err(|reason| FeedError::BadTree(format!("{rel}: {reason}")))?;
        p.push(part);
    }
    Ok(p)
}

/// Brings `dir` from tree `old` (None: nothing materialized yet) to `new`.
pub fn apply(store: &BlockStore, old: Option<&Cid>, new: &Cid, dir: &Path) -> Result<Applied, FeedError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let staging = dir.join(STAGING);
    match std::fs::remove_dir_all(&staging) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&staging)(e)),
    }
    let old = match old {
        Some(c) => *c,
        None => {
            let (cid, bytes) = shoal_unixfs::dir::empty_dir(&ImportOptions::default(), Meta::default());
            store.put(&cid, &bytes)?;
            cid
        }
    };
    let changes = diff(store, &old, new)?;
    std::fs::create_dir(&staging).map_err(io(&staging))?;
    let result = stage(store, &changes, &staging).and_then(|staged| place(dir, &changes, staged));
    let _ = std::fs::remove_dir_all(&staging);
    result
}

/// Writes every new or changed file and symlink into `staging`.
fn stage(store: &BlockStore, changes: &[Change], staging: &Path) -> Result<Vec<PathBuf>, FeedError> {
    let mut staged = Vec::new();
    for (i, c) in changes.iter().enumerate() {
        if c.kind == ChangeKind::Removed || c.is_dir {
            continue;
        }
        local(&c.path)?;
        let tmp = staging.join(i.to_string());
        get(store, &c.cid, &tmp, &mut |_| {}).map_err(|e| match e {
            ExportError::Io { path, source } => FeedError::Io { path, source },
            e => FeedError::Export(e),
        })?;
        staged.push(tmp);
    }
    Ok(staged)
}

/// Renames the staged files into place, creates new directories, then
/// applies deletions (children before parents, as `diff` orders them).
fn place(dir: &Path, changes: &[Change], staged: Vec<PathBuf>) -> Result<Applied, FeedError> {
    let mut done = Applied::default();
    let mut staged = staged.into_iter();
    for c in changes.iter().filter(|c| c.kind != ChangeKind::Removed) {
        let target = if c.path.is_empty() {
            dir.to_path_buf()
        } else {
            dir.join(local(&c.path)?)
        };
        let existing = std::fs::symlink_metadata(&target).ok();
        if c.is_dir {
            if existing.as_ref().is_some_and(|m| !m.is_dir()) {
                std::fs::remove_file(&target).map_err(io(&target))?;
            }
            std::fs::create_dir_all(&target).map_err(io(&target))?;
            done.dirs_created += 1;
            continue;
        }
        let tmp = staged.next().expect("one staged file per file change");
        if existing.is_some_and(|m| m.is_dir()) {
            std::fs::remove_dir_all(&target).map_err(io(&target))?;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        done.bytes_written += std::fs::symlink_metadata(&tmp).map_or(0, |m| m.len());
        std::fs::rename(&tmp, &target).map_err(io(&target))?;
        done.files_written += 1;
    }
    for c in changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Removed && !c.path.is_empty())
    {
        let target = dir.join(local(&c.path)?);
        let r = match std::fs::symlink_metadata(&target) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&target),
            Ok(_) => std::fs::remove_file(&target),
            Err(_) => continue, // already gone (an earlier, interrupted apply)
        };
        r.map_err(io(&target))?;
        done.removed += 1;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_unixfs::{add, AddOptions};

    fn import(store: &BlockStore, dir: &Path) -> Cid {
        let opts = AddOptions {
            recursive: true,
            ..AddOptions::default()
        };
        add(store, dir, &opts, &mut |_| {}).unwrap().root
    }

    fn listing(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                if p.is_dir() {
                    out.push((rel + "/", vec![]));
                    stack.push(p);
                } else {
                    out.push((rel, std::fs::read(&p).unwrap()));
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn applying_snapshots_in_turn_mirrors_each_tree() {
        let tmp = tempfile::tempdir().unwrap();
        let store = BlockStore::open(tmp.path().join("store")).unwrap();
        let src = tmp.path().join("src");
        std::fs::create_dir_all(src.join("pool/a")).unwrap();
        std::fs::write(src.join("pool/a/1"), vec![1u8; 300_000]).unwrap();
        std::fs::write(src.join("Release"), b"one").unwrap();
        std::fs::write(src.join("gone"), b"bye").unwrap();
        let v1 = import(&store, &src);
        std::fs::write(src.join("Release"), b"two").unwrap();
        std::fs::remove_file(src.join("gone")).unwrap();
        std::fs::create_dir_all(src.join("pool/b/c")).unwrap();
        std::fs::write(src.join("pool/b/c/2"), b"new").unwrap();
        std::fs::remove_dir_all(src.join("pool/a")).unwrap();
        let v2 = import(&store, &src);

        let out = tmp.path().join("mirror");
        let first = apply(&store, None, &v1, &out).unwrap();
        assert_eq!(first.files_written, 3);
        let second = apply(&store, Some(&v1), &v2, &out).unwrap();
        assert_eq!((second.files_written, second.removed), (2, 3));
        assert_eq!(listing(&out), listing(&src));
        // applying again (as after an interruption) changes nothing
        apply(&store, Some(&v1), &v2, &out).unwrap();
        assert_eq!(listing(&out), listing(&src));
    }

    #[test]
    fn a_missing_block_leaves_the_old_snapshot_in_place() {
        let tmp = tempfile::tempdir().unwrap();
        let store = BlockStore::open(tmp.path().join("store")).unwrap();
        let src = tmp.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("a"), b"old a").unwrap();
        let v1 = import(&store, &src);
        std::fs::write(src.join("a"), b"new a").unwrap();
        std::fs::write(src.join("b"), b"new b").unwrap();
        let v2 = import(&store, &src);
        let out = tmp.path().join("mirror");
        apply(&store, None, &v1, &out).unwrap();
        // lose one of the new blocks: b's
        let b = shoal_ipld::block::cid_of(shoal_ipld::Codec::Raw, 1, b"new b");
        assert!(store.delete(&b).unwrap());
        assert!(apply(&store, Some(&v1), &v2, &out).is_err());
        assert_eq!(listing(&out), vec![("a".to_string(), b"old a".to_vec())]);
    }
}
