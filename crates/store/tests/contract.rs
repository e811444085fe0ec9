//! Block store behaviour at boundary sizes, across reopen, with no-copy
//! references, pins, GC and verify.

use shoal_ipld::block::cid_of;
use shoal_ipld::dagpb::{PbLink, PbNode};
use shoal_ipld::{Cid, Codec};
use shoal_store::{BlockStore, FileIdentity, PinKind, StoreError, INLINE_MAX};
use std::os::unix::fs::FileExt;

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn raw(len: usize, seed: u8) -> (Cid, Vec<u8>) {
    let d = data(len, seed);
    (cid_of(Codec::Raw, 1, &d), d)
}

const SIZES: &[usize] = &[
    0,
    1,
    INLINE_MAX - 1,
    INLINE_MAX,
    INLINE_MAX + 1,
    65535,
    65536,
    65537,
    262144,
    1 << 20,
];

#[test]
fn put_get_has_delete_at_boundary_sizes_and_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let blocks: Vec<_> = SIZES.iter().enumerate().map(|(i, &n)| raw(n, i as u8)).collect();
    {
        let store = BlockStore::open(dir.path()).unwrap();
        for (cid, d) in &blocks {
            assert!(!store.has(cid).unwrap());
            store.put(cid, d).unwrap();
            assert_eq!(&store.get(cid).unwrap(), d);
        }
        // putting again is a no-op
        store.put(&blocks[5].0, &blocks[5].1).unwrap();
    }
    let store = BlockStore::open(dir.path()).unwrap();
    let mut seen = 0;
    store.for_each_cid(|_| seen += 1).unwrap();
    assert_eq!(seen, blocks.len());
    for (cid, d) in &blocks {
        assert_eq!(&store.get(cid).unwrap(), d);
        assert_eq!(store.size(cid).unwrap(), Some(d.len() as u64));
    }
    assert!(store.delete(&blocks[3].0).unwrap());
    assert!(matches!(store.get(&blocks[3].0), Err(StoreError::NotFound(_))));
    assert!(store.verify(|_| {}).unwrap().ok());
}

#[test]
fn wrong_bytes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlockStore::open(dir.path()).unwrap();
    let (cid, _) = raw(100, 1);
    assert!(store.put(&cid, b"not it").is_err());
    assert!(!store.has(&cid).unwrap());
}

#[test]
fn a_second_open_is_refused_while_the_first_holds_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let _a = BlockStore::open(dir.path()).unwrap();
    assert!(matches!(BlockStore::open(dir.path()), Err(StoreError::Locked(_))));
}

fn put_ref_file(store: &BlockStore, path: &std::path::Path, chunk: usize) -> Vec<Cid> {
    let bytes = std::fs::read(path).unwrap();
    let meta = std::fs::metadata(path).unwrap();
    let mut batch = store.batch();
    let file = batch.register_file(path, FileIdentity::of(&meta)).unwrap();
    let mut cids = Vec::new();
    for (i, c) in bytes.chunks(chunk).enumerate() {
        let cid = cid_of(Codec::Raw, 1, c);
        batch
            .put_ref(&cid, file, (i * chunk) as u64, c.len() as u32)
            .unwrap();
        cids.push(cid);
    }
    batch.commit().unwrap();
    cids
}

#[test]
fn nocopy_blocks_read_from_the_file_and_go_stale_when_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlockStore::open(dir.path().join("store")).unwrap();
    let path = dir.path().join("user.bin");
    std::fs::write(&path, data(300_000, 7)).unwrap();
    let cids = put_ref_file(&store, &path, 100_000);
    assert_eq!(store.get(&cids[1]).unwrap(), data(300_000, 7)[100_000..200_000]);
    assert!(store.verify(|_| {}).unwrap().ok());

    // same size, same inode, new bytes and mtime: detected, never served
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(b"XXXX", 150_000).unwrap();
    drop(f);
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let err = store.get(&cids[0]).unwrap_err();
    assert!(matches!(err, StoreError::Stale { .. }), "{err}");
    assert!(err.to_string().contains("user.bin"), "{err}");
    let report = store.verify(|_| {}).unwrap();
    assert_eq!(report.stale.len(), 3);

    // re-adding the file indexes it again
    let cids2 = put_ref_file(&store, &path, 100_000);
    assert_eq!(cids2[0], cids[0]);
    assert!(store.get(&cids2[1]).is_ok());
    assert!(
        store.get(&cids[1]).is_err(),
        "the old bytes are gone, still stale"
    );
}

#[test]
fn nocopy_bytes_changed_without_identity_change_are_caught_by_the_hash() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlockStore::open(dir.path().join("store")).unwrap();
    let path = dir.path().join("user.bin");
    std::fs::write(&path, data(10_000, 1)).unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    let cids = put_ref_file(&store, &path, 10_000);
    // rewrite in place and put the mtime back: identity matches, hash does not
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(b"evil", 0).unwrap();
    f.set_modified(meta.modified().unwrap()).unwrap();
    drop(f);
    assert!(matches!(store.get(&cids[0]), Err(StoreError::Stale { .. })));
}

fn node(links: &[Cid]) -> (Cid, Vec<u8>) {
    let n = PbNode {
        links: links
            .iter()
            .map(|c| PbLink {
                hash: *c,
                name: Some(String::new()),
                tsize: Some(1),
            })
            .collect(),
        data: Some(vec![8, 2]),
    };
    let bytes = n.encode();
    (cid_of(Codec::DagPb, 1, &bytes), bytes)
}

#[test]
fn gc_keeps_pinned_dags_and_reclaims_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlockStore::open(dir.path()).unwrap();
    let kept: Vec<_> = (0..4).map(|i| raw(100_000, i)).collect();
    let dropped: Vec<_> = (10..20).map(|i| raw(100_000, i)).collect();
    for (c, d) in kept.iter().chain(&dropped) {
        store.put(c, d).unwrap();
    }
    let (root, bytes) = node(&kept.iter().map(|(c, _)| *c).collect::<Vec<_>>());
    let (lone, lone_bytes) = node(&[]);
    store.put(&root, &bytes).unwrap();
    store.put(&lone, &lone_bytes).unwrap();
    store.pin_add(&root, PinKind::Recursive).unwrap();
    store.pin_add(&lone, PinKind::Direct).unwrap();
    let report = store.gc().unwrap();
    assert_eq!(report.blocks_removed, 10);
    for (c, d) in &kept {
        assert_eq!(&store.get(c).unwrap(), d);
    }
    for (c, _) in &dropped {
        assert!(!store.has(c).unwrap());
    }
    assert!(store.verify(|_| {}).unwrap().ok());
    assert!(store.pin_rm(&root).unwrap());
    store.gc().unwrap();
    assert!(!store.has(&kept[0].0).unwrap());
    assert!(store.has(&lone).unwrap());
    drop(store);
    let store = BlockStore::open(dir.path()).unwrap();
    assert!(store.verify(|_| {}).unwrap().ok());
    assert_eq!(store.pins().unwrap(), vec![(lone, PinKind::Direct)]);
}

#[test]
fn recursive_pin_of_an_incomplete_dag_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlockStore::open(dir.path()).unwrap();
    let (absent, _) = raw(5000, 9);
    let (root, bytes) = node(&[absent]);
    store.put(&root, &bytes).unwrap();
    let err = store.pin_add(&root, PinKind::Recursive).unwrap_err();
    assert!(matches!(err, StoreError::Incomplete { missing: 1, .. }), "{err}");
}

#[test]
fn verify_reports_corrupt_and_missing_pack_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlockStore::open(dir.path()).unwrap();
    let a = raw(50_000, 1);
    let b = raw(50_000, 2);
    store.put(&a.0, &a.1).unwrap();
    store.put(&b.0, &b.1).unwrap();
    drop(store);
    let pack = std::fs::read_dir(dir.path().join("packs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let f = std::fs::OpenOptions::new().write(true).open(&pack).unwrap();
    f.write_all_at(b"flip", 1000).unwrap();
    drop(f);
    let store = BlockStore::open(dir.path()).unwrap();
    let report = store.verify(|_| {}).unwrap();
    assert_eq!(report.corrupt.len(), 1, "{report:?}");
    assert_eq!(report.corrupt[0].0, a.0);
    assert!(matches!(store.get(&a.0), Err(StoreError::Corrupt { .. })));
    drop(store);
    std::fs::remove_file(&pack).unwrap();
    // a vanished pack file: the open drops nothing it did not write, verify reports
    let store = BlockStore::open(dir.path()).unwrap();
    let report = store.verify(|_| {}).unwrap();
    assert_eq!(report.missing.len() + report.corrupt.len(), 2, "{report:?}");
}
