//! What an earlier import of the same tree produced, so that an update
//! re-reads only files whose identity (size, mtime, inode, device) or
//! metadata changed and rebuilds only the directories along changed paths.

use crate::dir::Linked;
use crate::file::{FileNode, Meta};
use crate::scan::Entry;
use shoal_store::FileIdentity;
use std::collections::HashMap;
use std::path::PathBuf;

/// A file as an earlier import saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KnownFile {
    pub identity: FileIdentity,
    pub meta: Meta,
    pub node: FileNode,
}

/// A directory as an earlier import built it. `shape` digests its
/// metadata and its children's names and kinds (not their content).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KnownDir {
    pub shape: u128,
    pub link: Linked,
}

/// An earlier import, by absolute path. `options` is the `Debug` form of
/// the import options used: nothing is reused under other options.
#[derive(Clone, Debug, Default)]
pub struct Known {
    pub options: String,
    pub files: HashMap<PathBuf, KnownFile>,
    pub dirs: HashMap<PathBuf, KnownDir>,
}

/// One path of a finished import, for the next one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Indexed {
    File {
        path: PathBuf,
        file: KnownFile,
        /// Taken from the earlier import without reading the file.
        reused: bool,
    },
    Dir {
        path: PathBuf,
        dir: KnownDir,
        reused: bool,
    },
}

/// The shape digest of a directory entry's children and metadata.
pub(crate) fn shape(meta: &Meta, children: &[(String, Entry)]) -> u128 {
    let mut buf = Vec::new();
    push_meta(&mut buf, meta);
    for (name, child) in children {
        buf.extend_from_slice(name.as_bytes());
        buf.push(0);
        match child {
            Entry::File { .. } => buf.push(b'f'),
            Entry::Dir { children, .. } => buf.push(if children.is_empty() { b'e' } else { b'd' }),
            Entry::Symlink { target, meta } => {
                // a symlink is rebuilt with its directory: its whole content is in the shape
                buf.push(b'l');
                push_meta(&mut buf, meta);
                buf.extend_from_slice(&(target.len() as u64).to_le_bytes());
                buf.extend_from_slice(target);
            }
        }
    }
    let (a, b) = crate::murmur::murmur3_x64_128(&buf);
    (u128::from(a) << 64) | u128::from(b)
}

fn push_meta(buf: &mut Vec<u8>, meta: &Meta) {
    match meta.mode {
        Some(m) => buf.extend_from_slice(&[1, (m >> 8) as u8, m as u8]),
        None => buf.push(0),
    }
    match meta.mtime {
        Some(t) => {
            buf.push(1);
            buf.extend_from_slice(&t.secs.to_le_bytes());
            buf.extend_from_slice(&t.nsecs.to_le_bytes());
        }
        None => buf.push(0),
    }
}

impl Known {
    /// The earlier import an update starts from: `index` as `Added::index`
    /// returned it, made with `options`.
    pub fn from_index(options: &crate::ImportOptions, index: impl IntoIterator<Item = Indexed>) -> Known {
        let mut k = Known {
            options: format!("{options:?}"),
            ..Known::default()
        };
        for i in index {
            match i {
                Indexed::File { path, file, .. } => {
                    k.files.insert(path, file);
                }
                Indexed::Dir { path, dir, .. } => {
                    k.dirs.insert(path, dir);
                }
            }
        }
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{add, AddOptions, Added, ImportOptions};
    use shoal_store::BlockStore;
    use std::sync::Arc;

    fn import(store: &BlockStore, dir: &std::path::Path, known: Option<Arc<Known>>) -> Added {
        let opts = AddOptions {
            recursive: true,
            nocopy: true,
            known,
            ..AddOptions::default()
        };
        add(store, dir, &opts, &mut |_| {}).unwrap()
    }

    fn reused_dirs(a: &Added) -> Vec<String> {
        let mut v: Vec<String> = a
            .index
            .iter()
            .filter_map(|i| match i {
                Indexed::Dir {
                    path, reused: true, ..
                } => Some(path.file_name().unwrap().to_string_lossy().into()),
                _ => None,
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn an_update_reads_only_changed_files_and_rebuilds_only_their_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("repo");
        for d in ["pool/a", "pool/b", "dists"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        for (i, f) in ["pool/a/1.deb", "pool/a/2.deb", "pool/b/3.deb", "dists/Release"]
            .iter()
            .enumerate()
        {
            std::fs::write(root.join(f), vec![i as u8; 300_000 + i]).unwrap();
        }
        std::os::unix::fs::symlink("Release", root.join("dists/InRelease")).unwrap();
        let store = BlockStore::open(tmp.path().join("store")).unwrap();
        let first = import(&store, &root, None);
        assert_eq!(first.read_files, 4);
        let known = Arc::new(Known::from_index(&ImportOptions::default(), first.index.clone()));

        // nothing changed: nothing read, the same root
        let same = import(&store, &root, Some(known.clone()));
        assert_eq!((same.root, same.read_files), (first.root, 0));

        // one file changed and one added in pool/a: only pool/a, pool and the root are rebuilt
        std::fs::write(root.join("pool/a/2.deb"), b"new contents").unwrap();
        std::fs::write(root.join("pool/a/4.deb"), b"added").unwrap();
        let upd = import(&store, &root, Some(known.clone()));
        assert_eq!((upd.read_files, upd.read_bytes), (2, 17));
        assert_eq!(reused_dirs(&upd), vec!["b", "dists"]);
        // and the result is what a fresh import gives
        let fresh_store = BlockStore::open(tmp.path().join("store2")).unwrap();
        assert_eq!(import(&fresh_store, &root, None).root, upd.root);

        // under other options nothing is reused
        let other = Arc::new(Known::from_index(
            &ImportOptions {
                chunk_size: 1024,
                ..ImportOptions::default()
            },
            first.index,
        ));
        assert_eq!(import(&store, &root, Some(other)).read_files, 5);
    }
}
