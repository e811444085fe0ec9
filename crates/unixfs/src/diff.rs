//! What changed between two trees in the store: walks both, descending
//! only into directories whose CIDs differ, so the cost follows the size
//! of the change, not of the trees.

use crate::export::{list, load, DirLink, ExportError, MAX_DEPTH};
use shoal_ipld::Cid;
use shoal_store::BlockStore;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Modified,
    Removed,
}

impl ChangeKind {
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Added => 'A',
            ChangeKind::Modified => 'M',
            ChangeKind::Removed => 'D',
        }
    }
}

/// One changed path (relative, `/`-separated; "" is the root).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
    pub is_dir: bool,
    /// The entry's CID in the newer tree (the older one's when removed).
    pub cid: Cid,
}

/// The changes from tree `a` to tree `b`, parents before children for
/// additions and children before parents for removals.
pub fn diff(store: &BlockStore, a: &Cid, b: &Cid) -> Result<Vec<Change>, ExportError> {
    let mut out = Vec::new();
    if a != b {
        let (da, db) = (is_dir(store, a)?, is_dir(store, b)?);
        if da && db {
            walk(store, a, b, "", 0, &mut out)?;
        } else {
            replaced(store, "", (a, da), (b, db), &mut out)?;
        }
    }
    Ok(out)
}

/// Raw blocks are file content (possibly a reference into a file that has
/// changed since): only dag-pb nodes are read.
fn is_dir(store: &BlockStore, cid: &Cid) -> Result<bool, ExportError> {
    if cid.codec() == shoal_ipld::Codec::Raw.code() {
        return Ok(false);
    }
    Ok(load(store, cid)?.is_dir())
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}/{name}")
    }
}

fn walk(
    store: &BlockStore,
    a: &Cid,
    b: &Cid,
    prefix: &str,
    depth: usize,
    out: &mut Vec<Change>,
) -> Result<(), ExportError> {
    if depth >= MAX_DEPTH {
        return Err(ExportError::BadNode {
            cid: *b,
            reason: "directories nested deeper than the limit".into(),
        });
    }
    let (la, lb) = (list(store, a)?, list(store, b)?);
    let (mut i, mut j) = (0, 0);
    while i < la.len() || j < lb.len() {
        let order = match (la.get(i), lb.get(j)) {
            (Some(x), Some(y)) => x.name.as_bytes().cmp(y.name.as_bytes()),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => {
                subtree(
                    store,
                    &join(prefix, &la[i].name),
                    &la[i],
                    ChangeKind::Removed,
                    depth,
                    out,
                )?;
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                subtree(
                    store,
                    &join(prefix, &lb[j].name),
                    &lb[j],
                    ChangeKind::Added,
                    depth,
                    out,
                )?;
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                let (x, y) = (&la[i], &lb[j]);
                if x.cid != y.cid {
                    let path = join(prefix, &x.name);
                    let (dx, dy) = (is_dir(store, &x.cid)?, is_dir(store, &y.cid)?);
                    if dx && dy {
                        walk(store, &x.cid, &y.cid, &path, depth + 1, out)?;
                    } else {
                        replaced(store, &path, (&x.cid, dx), (&y.cid, dy), out)?;
                    }
                }
                i += 1;
                j += 1;
            }
        }
    }
    Ok(())
}

/// An entry whose type or content changed at `path` (not both directories).
fn replaced(
    store: &BlockStore,
    path: &str,
    (a, da): (&Cid, bool),
    (b, db): (&Cid, bool),
    out: &mut Vec<Change>,
) -> Result<(), ExportError> {
    if !da && !db {
        out.push(Change {
            path: path.to_owned(),
            kind: ChangeKind::Modified,
            is_dir: false,
            cid: *b,
        });
        return Ok(());
    }
    let link = |cid: &Cid| DirLink {
        name: String::new(),
        cid: *cid,
        tsize: 0,
    };
    subtree(store, path, &link(a), ChangeKind::Removed, 0, out)?;
    subtree(store, path, &link(b), ChangeKind::Added, 0, out)
}

/// Reports `entry` and everything under it as added or removed.
fn subtree(
    store: &BlockStore,
    path: &str,
    entry: &DirLink,
    kind: ChangeKind,
    depth: usize,
    out: &mut Vec<Change>,
) -> Result<(), ExportError> {
    if depth >= MAX_DEPTH {
        return Err(ExportError::BadNode {
            cid: entry.cid,
            reason: "directories nested deeper than the limit".into(),
        });
    }
    let is_dir = is_dir(store, &entry.cid)?;
    let me = Change {
        path: path.to_owned(),
        kind,
        is_dir,
        cid: entry.cid,
    };
    if kind == ChangeKind::Added {
        out.push(me.clone());
    }
    if is_dir {
        for child in list(store, &entry.cid)? {
            subtree(store, &join(path, &child.name), &child, kind, depth + 1, out)?;
        }
    }
    if kind == ChangeKind::Removed {
        out.push(me);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{add, AddOptions};

    fn import(store: &BlockStore, dir: &std::path::Path) -> Cid {
        let opts = AddOptions {
            recursive: true,
            ..AddOptions::default()
        };
        add(store, dir, &opts, &mut |_| {}).unwrap().root
    }

    #[test]
    fn changes_between_two_trees() {
        let tmp = tempfile::tempdir().unwrap();
        let store = BlockStore::open(tmp.path().join("store")).unwrap();
        let r = tmp.path().join("r");
        for d in ["a/x", "b", "c"] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        for f in ["a/x/1", "a/2", "b/3", "c/4", "top"] {
            std::fs::write(r.join(f), f).unwrap();
        }
        let old = import(&store, &r);
        std::fs::write(r.join("a/2"), "changed").unwrap();
        std::fs::remove_dir_all(r.join("b")).unwrap();
        std::fs::create_dir(r.join("d")).unwrap();
        std::fs::write(r.join("d/5"), "5").unwrap();
        std::fs::remove_file(r.join("top")).unwrap();
        std::fs::create_dir(r.join("top")).unwrap();
        let new = import(&store, &r);
        let got: Vec<String> = diff(&store, &old, &new)
            .unwrap()
            .iter()
            .map(|c| {
                format!(
                    "{} {}{}",
                    c.kind.letter(),
                    c.path,
                    if c.is_dir { "/" } else { "" }
                )
            })
            .collect();
        assert_eq!(
            got,
            ["M a/2", "D b/3", "D b/", "A d/", "A d/5", "D top", "A top/"]
        );
        assert!(diff(&store, &new, &new).unwrap().is_empty());
    }
}
