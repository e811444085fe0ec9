//! Writing a UnixFS DAG to a local path *while it arrives*: each block is
//! written where it belongs as soon as it is fed in (the DAG sync sends
//! blocks depth-first, so parents come before their children), and
//! `finish` completes whatever did not arrive from the store. Feeding
//! nothing and calling `finish` is a plain export from the store.
//!
//! The same checks as `get` apply, one block at a time: names are single
//! ordinary components, unique per directory; symlinks stay inside the
//! output; depth and entry counts are bounded; files are created new under
//! directories this code created. A hostile DAG is refused with an error
//! (what was written before it stays).

use crate::data::{Mtime, NodeType};
use crate::export::{self, ExportError, Node, MAX_DEPTH};
use crate::get::{
    check_name, link_stays_inside, prepare_root, set_mode, to_system_time, GetReport, MAX_ENTRIES,
};
use shoal_ipld::{Cid, Codec};
use shoal_store::BlockStore;
use std::collections::{HashMap, HashSet};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Where a block goes.
#[derive(Debug, Clone)]
enum Place {
    /// A directory entry (or the root) at `rel`, `depth` below the root.
    Entry { rel: PathBuf, depth: usize },
    /// A HAMT sub-shard of the directory at `dir`.
    Shard { dir: usize, depth: usize },
    /// Part of file `file`'s content starting at `offset`.
    Part { file: usize, offset: u64 },
}

struct OpenFile {
    path: PathBuf,
    parts_left: usize,
    mode: Option<u32>,
    mtime: Option<Mtime>,
}

struct Dir {
    rel: PathBuf,
    depth: usize,
    names: HashSet<String>,
    mode: Option<u32>,
    mtime: Option<Mtime>,
}

/// Writes one DAG under `out`.
pub struct Materializer {
    out: PathBuf,
    pending: HashMap<Cid, Vec<Place>>,
    files: Vec<OpenFile>,
    dirs: Vec<Dir>,
    entries: usize,
    report: GetReport,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.into(),
        source,
    }
}

fn unsafe_dag(rel: &Path, reason: impl Into<String>) -> ExportError {
    ExportError::Unsafe {
        path: rel.display().to_string(),
        reason: reason.into(),
    }
}

impl Materializer {
    /// Prepares to write the DAG at `root` to `out` (which must not exist,
    /// or be an empty directory).
    pub fn new(root: Cid, out: &Path) -> Materializer {
        let place = Place::Entry {
            rel: PathBuf::new(),
            depth: 0,
        };
        Materializer {
            out: out.to_path_buf(),
            pending: HashMap::from([(root, vec![place])]),
            files: Vec::new(),
            dirs: Vec::new(),
            entries: 0,
            report: GetReport::default(),
        }
    }

    /// Feeds in the blocks of the DAG already in the store (the directory
    /// structure a fetch brought first, say), so that what arrives later
    /// is written at once. Only dag-pb nodes are read here.
    pub fn prime(&mut self, store: &BlockStore) -> Result<(), ExportError> {
        loop {
            let ready: Vec<Cid> = self
                .pending
                .keys()
                .filter(|c| Codec::of(c).ok() == Some(Codec::DagPb))
                .filter(|c| store.has(c).unwrap_or(false))
                .copied()
                .collect();
            if ready.is_empty() {
                return Ok(());
            }
            for cid in ready {
                let data = store.get(&cid)?;
                self.block(&cid, &data)?;
            }
        }
    }

    /// Whether `cid` is still to be written somewhere.
    pub fn wants(&self, cid: &Cid) -> bool {
        self.pending.contains_key(cid)
    }

    /// A verified block arrived: writes it wherever it is expected (blocks
    /// not part of this DAG, or not expected yet, are ignored).
    pub fn block(&mut self, cid: &Cid, data: &[u8]) -> Result<(), ExportError> {
        let Some(places) = self.pending.remove(cid) else {
            return Ok(());
        };
        for place in places {
            self.place(cid, data, place)?;
        }
        Ok(())
    }

    /// Writes what is still missing from `store`, then sets directory modes
    /// and times (deepest first).
    pub fn finish(mut self, store: &BlockStore) -> Result<GetReport, ExportError> {
        while let Some(cid) = self.pending.keys().next().copied() {
            let data = store.get(&cid)?;
            self.block(&cid, &data)?;
        }
        for d in self.dirs.iter().rev() {
            let path = self.out.join(&d.rel);
            set_mode(&path, d.mode)?;
            if let Some(t) = d.mtime {
                let f = std::fs::File::open(&path).map_err(io(&path))?;
                f.set_modified(to_system_time(t)).map_err(io(&path))?;
            }
        }
        Ok(self.report)
    }

    fn expect(&mut self, cid: Cid, place: Place) {
        self.pending.entry(cid).or_default().push(place);
    }

    fn place(&mut self, cid: &Cid, data: &[u8], place: Place) -> Result<(), ExportError> {
        match place {
            Place::Entry { rel, depth } => self.entry(cid, data, rel, depth),
            Place::Shard { dir, depth } => {
                let node = export::decode(cid, data.to_vec())?;
                match node {
                    Node::Pb { node, data } if data.kind == NodeType::HamtShard => {
                        self.shard_links(dir, depth, &node)
                    }
                    _ => Err(ExportError::BadNode {
                        cid: *cid,
                        reason: "sub-shard is not a HAMT node".into(),
                    }),
                }
            }
            Place::Part { file, offset } => self.part(cid, data, file, offset),
        }
    }

    fn entry(&mut self, cid: &Cid, bytes: &[u8], rel: PathBuf, depth: usize) -> Result<(), ExportError> {
        self.entries += 1;
        if depth > MAX_DEPTH || self.entries > MAX_ENTRIES {
            return Err(unsafe_dag(&rel, "tree too deep or too large"));
        }
        let node = export::decode(cid, bytes.to_vec())?;
        let path = self.out.join(&rel);
        if rel.as_os_str().is_empty() {
            prepare_root(&self.out, node.is_dir())?;
        }
        match node {
            Node::Raw(data) => {
                let file = self.create_file(&path, None, None, 0)?;
                self.write_at(file, 0, &data)
            }
            Node::Pb { node, data } => match data.kind {
                NodeType::Directory | NodeType::HamtShard => {
                    if !rel.as_os_str().is_empty() {
                        std::fs::create_dir(&path).map_err(io(&path))?;
                    }
                    self.report.dirs += 1;
                    self.dirs.push(Dir {
                        rel,
                        depth,
                        names: HashSet::new(),
                        mode: data.mode,
                        mtime: data.mtime,
                    });
                    let dir = self.dirs.len() - 1;
                    if data.kind == NodeType::HamtShard {
                        return self.shard_links(dir, 0, &node);
                    }
                    for l in &node.links {
                        self.dir_entry(dir, l.name.as_deref().unwrap_or(""), l.hash)?;
                    }
                    Ok(())
                }
                NodeType::File | NodeType::Raw => {
                    let file = self.create_file(&path, data.mode, data.mtime, 0)?;
                    self.file_node(file, 0, &node, &data)
                }
                NodeType::Symlink => {
                    use std::os::unix::ffi::OsStrExt;
                    let target = PathBuf::from(std::ffi::OsStr::from_bytes(&data.data));
                    if !link_stays_inside(&rel, &target) {
                        let why = format!("symlink points outside the output ({})", target.display());
                        return Err(unsafe_dag(&rel, why));
                    }
                    std::os::unix::fs::symlink(&target, &path).map_err(io(&path))?;
                    self.report.symlinks += 1;
                    Ok(())
                }
                NodeType::Metadata => Err(ExportError::BadNode {
                    cid: *cid,
                    reason: "metadata nodes are not supported".into(),
                }),
            },
        }
    }

    /// Registers a directory entry after checking its name.
    fn dir_entry(&mut self, dir: usize, name: &str, cid: Cid) -> Result<(), ExportError> {
        let d = &mut self.dirs[dir];
        let rel = d.rel.join(name);
        check_name(name).map_err(|reason| unsafe_dag(&rel, format!("the DAG holds {reason}")))?;
        if !d.names.insert(name.to_owned()) {
            return Err(unsafe_dag(&rel, "duplicate name"));
        }
        let depth = d.depth + 1;
        self.expect(cid, Place::Entry { rel, depth });
        Ok(())
    }

    /// The links of a HAMT shard: two-character names are sub-shards, longer
    /// ones entries (the name after the two-character slot).
    fn shard_links(
        &mut self,
        dir: usize,
        depth: usize,
        node: &shoal_ipld::dagpb::PbNode,
    ) -> Result<(), ExportError> {
        if depth >= MAX_DEPTH {
            return Err(unsafe_dag(&self.dirs[dir].rel, "HAMT deeper than the limit"));
        }
        for l in &node.links {
            let name = l.name.as_deref().unwrap_or("");
            match name.get(2..) {
                Some("") => self.expect(
                    l.hash,
                    Place::Shard {
                        dir,
                        depth: depth + 1,
                    },
                ),
                Some(entry) => self.dir_entry(dir, entry, l.hash)?,
                None => return Err(unsafe_dag(&self.dirs[dir].rel, "a HAMT link with a short name")),
            }
        }
        Ok(())
    }

    fn create_file(
        &mut self,
        path: &Path,
        mode: Option<u32>,
        mtime: Option<Mtime>,
        parts: usize,
    ) -> Result<usize, ExportError> {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(io(path))?;
        self.report.files += 1;
        self.files.push(OpenFile {
            path: path.to_path_buf(),
            parts_left: parts + 1,
            mode,
            mtime,
        });
        Ok(self.files.len() - 1)
    }

    /// A file node's inline data and its children, at `offset` in `file`.
    fn file_node(
        &mut self,
        file: usize,
        offset: u64,
        node: &shoal_ipld::dagpb::PbNode,
        data: &crate::data::UnixFsData,
    ) -> Result<(), ExportError> {
        let mut at = offset + data.data.len() as u64;
        if !node.links.is_empty() && data.blocksizes.len() != node.links.len() {
            let path = self.files[file].path.clone();
            return Err(unsafe_dag(&path, "file node sizes do not match its links"));
        }
        self.files[file].parts_left += node.links.len();
        for (l, size) in node.links.iter().zip(&data.blocksizes) {
            self.expect(l.hash, Place::Part { file, offset: at });
            at = at.saturating_add(*size);
        }
        self.write_at(file, offset, &data.data)
    }

    fn part(&mut self, cid: &Cid, bytes: &[u8], file: usize, offset: u64) -> Result<(), ExportError> {
        if shoal_ipld::Codec::of(cid).ok() == Some(shoal_ipld::Codec::Raw) {
            return self.write_at(file, offset, bytes); // leaves: no decoding, no copy
        }
        match export::decode(cid, bytes.to_vec())? {
            Node::Raw(data) => self.write_at(file, offset, &data),
            Node::Pb { node, data } if matches!(data.kind, NodeType::File | NodeType::Raw) => {
                self.file_node(file, offset, &node, &data)
            }
            Node::Pb { .. } => Err(ExportError::BadNode {
                cid: *cid,
                reason: "a file links to a node that is not file data".into(),
            }),
        }
    }

    /// Writes one piece; the last piece of a file sets its mode and time.
    fn write_at(&mut self, file: usize, offset: u64, data: &[u8]) -> Result<(), ExportError> {
        let f = &mut self.files[file];
        if !data.is_empty() {
            let handle = std::fs::OpenOptions::new()
                .write(true)
                .open(&f.path)
                .map_err(io(&f.path))?;
            handle.write_all_at(data, offset).map_err(io(&f.path))?;
            self.report.bytes += data.len() as u64;
        }
        f.parts_left -= 1;
        if f.parts_left == 0 {
            // the time first: the mode may make the file read-only
            if let Some(t) = f.mtime {
                let handle = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&f.path)
                    .map_err(io(&f.path))?;
                handle.set_modified(to_system_time(t)).map_err(io(&f.path))?;
            }
            set_mode(&f.path, f.mode)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{add, AddOptions, ImportOptions};
    use shoal_store::Walk;

    /// A tree with a big multi-level file, an empty file, a sharded
    /// directory, a symlink and modes/mtimes.
    fn tree(dir: &Path) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        let big: Vec<u8> = (0..3_500_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(dir.join("a/big.bin"), &big).unwrap();
        std::fs::write(dir.join("a/b/empty"), b"").unwrap();
        std::fs::write(dir.join("a/b/small"), b"small").unwrap();
        std::fs::set_permissions(dir.join("a/b/small"), std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink("../big.bin", dir.join("a/b/link")).unwrap();
        std::fs::create_dir(dir.join("wide")).unwrap();
        for i in 0..1500 {
            std::fs::write(
                dir.join(format!("wide/entry-with-a-long-name-{i:05}")),
                i.to_string(),
            )
            .unwrap();
        }
    }

    fn import(store: &BlockStore, dir: &Path) -> Cid {
        let import = ImportOptions {
            chunk_size: 256 * 1024,
            max_links: 4, // several levels in the big file
            preserve_mode: true,
            preserve_mtime: true,
            ..Default::default()
        };
        let opts = AddOptions {
            import,
            recursive: true,
            ..Default::default()
        };
        add(store, dir, &opts, &mut |_| {}).unwrap().root
    }

    fn same(a: &Path, b: &Path) {
        let ok = std::process::Command::new("diff")
            .arg("-r")
            .arg("--no-dereference")
            .arg(a)
            .arg(b)
            .status()
            .unwrap();
        assert!(ok.success(), "{} and {} differ", a.display(), b.display());
        for rel in ["a/b/small", "a/big.bin"] {
            let (ma, mb) = (
                std::fs::metadata(a.join(rel)).unwrap(),
                std::fs::metadata(b.join(rel)).unwrap(),
            );
            assert_eq!(ma.modified().unwrap(), mb.modified().unwrap(), "{rel} mtime");
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(ma.permissions().mode(), mb.permissions().mode(), "{rel} mode");
        }
    }

    #[test]
    fn fed_in_walk_order_or_not_at_all_the_output_matches_get() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        tree(&src);
        let store = BlockStore::open(tmp.path().join("store")).unwrap();
        let root = import(&store, &src);
        let reference = tmp.path().join("ref");
        crate::get::get(&store, &root, &reference, &mut |_| {}).unwrap();

        // nothing fed: a plain export from the store
        let out1 = tmp.path().join("out1");
        let r1 = Materializer::new(root, &out1).finish(&store).unwrap();
        same(&reference, &out1);

        // every block fed in depth-first order, as the sync sends them
        let mut walk = Walk::default();
        store.walk(&root, &mut walk).unwrap();
        let mut order = Vec::new();
        let mut stack = vec![root];
        while let Some(cid) = stack.pop() {
            let data = store.get(&cid).unwrap();
            stack.extend(shoal_ipld::dagpb::links(&cid, &data).unwrap().into_iter().rev());
            order.push((cid, data));
        }
        let out2 = tmp.path().join("out2");
        let mut m = Materializer::new(root, &out2);
        for (cid, data) in &order {
            m.block(cid, data).unwrap();
        }
        assert!(!m.wants(&root));
        let r2 = m.finish(&store).unwrap();
        same(&reference, &out2);
        assert_eq!(
            (r1.files, r1.bytes, r1.symlinks),
            (r2.files, r2.bytes, r2.symlinks)
        );
        assert_eq!((r1.files, r1.symlinks), (1503, 1));
    }

    #[test]
    fn an_existing_output_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let store = BlockStore::open(tmp.path().join("store")).unwrap();
        let f = tmp.path().join("f");
        std::fs::write(&f, b"x").unwrap();
        let root = import(&store, &f);
        let err = Materializer::new(root, &f).finish(&store).unwrap_err();
        assert!(matches!(err, ExportError::Exists(_)), "{err}");
    }
}
