//! `publish`: import a directory by reference, reusing everything the
//! last publish of the feed indexed that has not changed since, and append
//! a signed snapshot entry to the feed's log.

use crate::snapshot::Changes;
use crate::state::Record;
use crate::{FeedError, FeedKey, Feeds, Snapshot};
use shoal_log::SignedHead;
use shoal_store::BlockStore;
use shoal_unixfs::{AddOptions, Event, ImportError, ImportOptions, Indexed, Known};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Attempts at a consistent read of a directory that keeps changing.
pub const ATTEMPTS: usize = 3;

#[derive(Clone, Debug)]
pub struct PublishOptions {
    pub import: ImportOptions,
    /// Read and hash every file, trusting no earlier index.
    pub checksum: bool,
}

impl Default for PublishOptions {
    fn default() -> Self {
        PublishOptions {
            // publishing indexes the files in place, which needs raw leaves
            import: ImportOptions {
                raw_leaves: true,
                ..ImportOptions::default()
            },
            checksum: false,
        }
    }
}

/// What a publish did.
#[derive(Clone, Debug)]
pub struct Published {
    pub seq: u64,
    pub snapshot: Snapshot,
    pub head: Option<SignedHead>,
    /// Nothing changed since the last snapshot: no entry was appended.
    pub unchanged: bool,
    pub read_files: usize,
    pub read_bytes: u64,
    pub attempts: usize,
}

/// Publishes `dir` as the next snapshot of the feed `key`.
pub fn publish(
    store: &BlockStore,
    feeds: &Feeds,
    key: &FeedKey,
    dir: &Path,
    opts: &PublishOptions,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<Published, FeedError> {
    let id = key.id();
    let dir = std::path::absolute(dir).map_err(|source| FeedError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let previous = feeds.snapshots(&id)?;
    let index = feeds.state.index(&id.0)?;
    let known = (!opts.checksum).then(|| Arc::new(known_from(&opts.import, &dir, &index)));
    let add_opts = AddOptions {
        import: opts.import.clone(),
        recursive: true,
        nocopy: true,
        pin: true,
        known,
        ..AddOptions::default()
    };
    let mut attempt = 0;
    let added = loop {
        attempt += 1;
        match shoal_unixfs::add(store, &dir, &add_opts, on_event) {
            Err(ImportError::Changed(_)) if attempt < ATTEMPTS => {}
            Err(ImportError::Changed(p)) => return Err(FeedError::Unstable(p, ATTEMPTS)),
            other => break other?,
        }
    };
    let records = records_of(&dir, &added.index);
    let counted = count_changes(&index, &records);
    let last = previous.last();
    if last.is_some_and(|s| s.root == added.root) {
        feeds.state.set_index(&id.0, &records)?;
        return Ok(Published {
            seq: previous.len() as u64 - 1,
            snapshot: last.expect("checked").clone(),
            head: None,
            unchanged: true,
            read_files: added.read_files,
            read_bytes: added.read_bytes,
            attempts: attempt,
        });
    }
    let snapshot = snapshot_of(&added, previous.len(), &counted);
    let (seq, head) = feeds.append(key, &snapshot.encode())?;
    // the log holds the snapshot before the index says its files are known:
    // a crash in between costs a re-read next time, never a wrong snapshot
    feeds.state.set_index(&id.0, &records)?;
    if let Some(prev) = last {
        // the previous tree is indexed in files that have since changed:
        // only the newest snapshot stays pinned
        store.pin_rm(&prev.root)?;
    }
    Ok(Published {
        seq,
        snapshot,
        head: Some(head),
        unchanged: false,
        read_files: added.read_files,
        read_bytes: added.read_bytes,
        attempts: attempt,
    })
}

fn snapshot_of(added: &shoal_unixfs::Added, count: usize, c: &Counted) -> Snapshot {
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Snapshot {
        root: added.root,
        parent: (count as u64).checked_sub(1),
        time,
        files: c.files,
        bytes: c.bytes,
        total_files: added.files as u64,
        total_bytes: added.bytes,
    }
}

/// The index as the importer wants it: absolute paths.
fn known_from(import: &ImportOptions, dir: &Path, index: &[(PathBuf, Record)]) -> Known {
    let items = index.iter().map(|(rel, rec)| {
        let path = if rel.as_os_str().is_empty() {
            dir.to_path_buf()
        } else {
            dir.join(rel)
        };
        match rec {
            Record::File(file) => Indexed::File {
                path,
                file: *file,
                reused: false,
            },
            Record::Dir(d) => Indexed::Dir {
                path,
                dir: *d,
                reused: false,
            },
        }
    });
    Known::from_index(import, items)
}

/// The importer's index as stored: paths relative to `dir`.
fn records_of(dir: &Path, index: &[Indexed]) -> Vec<(PathBuf, Record)> {
    let rel = |p: &Path| p.strip_prefix(dir).map(Path::to_path_buf).unwrap_or_default();
    let mut v: Vec<(PathBuf, Record)> = index
        .iter()
        .map(|i| match i {
            Indexed::File { path, file, .. } => (rel(path), Record::File(*file)),
            Indexed::Dir { path, dir, .. } => (rel(path), Record::Dir(*dir)),
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Files and bytes added, changed and removed from one index to the next.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counted {
    pub files: Changes,
    pub bytes: Changes,
}

pub fn count_changes(old: &[(PathBuf, Record)], new: &[(PathBuf, Record)]) -> Counted {
    let files = |v: &[(PathBuf, Record)]| -> HashMap<PathBuf, (shoal_ipld::Cid, u64)> {
        v.iter()
            .filter_map(|(p, r)| match r {
                Record::File(f) => Some((p.clone(), (f.node.cid, f.identity.size))),
                Record::Dir(_) => None,
            })
            .collect()
    };
    let (old, new) = (files(old), files(new));
    let mut c = Counted::default();
    for (path, (cid, size)) in &new {
        match old.get(path) {
            None => {
                c.files.added += 1;
                c.bytes.added += size;
            }
            Some((was, _)) if was != cid => {
                c.files.changed += 1;
                c.bytes.changed += size;
            }
            Some(_) => {}
        }
    }
    for (path, (_, size)) in &old {
        if !new.contains_key(path) {
            c.files.removed += 1;
            c.bytes.removed += size;
        }
    }
    c
}
