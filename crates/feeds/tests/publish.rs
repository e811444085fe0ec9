//! Publishing a directory, changing it, publishing again.

use shoal_feeds::{publish, FeedKey, Feeds, PublishOptions};
use shoal_store::BlockStore;
use shoal_unixfs::diff::diff;

#[test]
fn a_republish_reads_only_what_changed_and_appends_a_signed_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(repo.join("pool/main")).unwrap();
    for i in 0..20 {
        std::fs::write(
            repo.join(format!("pool/main/p{i}.deb")),
            vec![i as u8; 10_000 + i],
        )
        .unwrap();
    }
    std::fs::write(repo.join("Release"), b"v1").unwrap();
    let store = BlockStore::open(tmp.path().join("store")).unwrap();
    let feeds = Feeds::open(store.dir()).unwrap();
    let key = FeedKey::create(&tmp.path().join("keys"), "debian").unwrap();
    let opts = PublishOptions::default();

    let first = publish(&store, &feeds, &key, &repo, &opts, &mut |_| {}).unwrap();
    assert_eq!((first.seq, first.read_files, first.unchanged), (0, 21, false));
    assert_eq!(first.snapshot.files.added, 21);
    assert_eq!(first.snapshot.parent, None);

    let again = publish(&store, &feeds, &key, &repo, &opts, &mut |_| {}).unwrap();
    assert!(again.unchanged);
    assert_eq!((again.seq, again.read_files), (0, 0));

    std::fs::write(repo.join("Release"), b"v2 longer").unwrap();
    std::fs::remove_file(repo.join("pool/main/p3.deb")).unwrap();
    std::fs::write(repo.join("pool/main/new.deb"), b"new").unwrap();
    let second = publish(&store, &feeds, &key, &repo, &opts, &mut |_| {}).unwrap();
    assert_eq!((second.seq, second.read_files, second.read_bytes), (1, 2, 12));
    let s = &second.snapshot;
    assert_eq!((s.files.added, s.files.changed, s.files.removed), (1, 1, 1));
    assert_eq!((s.bytes.added, s.bytes.changed, s.bytes.removed), (3, 9, 10_003));
    assert_eq!((s.parent, s.total_files), (Some(0), 21));

    // the log verifies and holds both snapshots; the diff names the paths
    let stored = feeds.logs.load(&key.id().0).unwrap().unwrap();
    stored.head.verify(&key.id().verifying_key()).unwrap();
    assert_eq!(stored.head.length, 2);
    let snaps = feeds.snapshots(&key.id()).unwrap();
    let changes: Vec<String> = diff(&store, &snaps[0].root, &snaps[1].root)
        .unwrap()
        .iter()
        .map(|c| format!("{} {}", c.kind.letter(), c.path))
        .collect();
    assert_eq!(
        changes,
        ["M Release", "A pool/main/new.deb", "D pool/main/p3.deb"]
    );

    // --checksum reads everything and finds nothing new
    let all = PublishOptions {
        checksum: true,
        ..PublishOptions::default()
    };
    let third = publish(&store, &feeds, &key, &repo, &all, &mut |_| {}).unwrap();
    assert!(third.unchanged);
    assert_eq!(third.read_files, 21);

    // reopening keeps the log appendable
    drop(feeds);
    let feeds = Feeds::open(store.dir()).unwrap();
    std::fs::write(repo.join("Release"), b"v3").unwrap();
    let fourth = publish(&store, &feeds, &key, &repo, &opts, &mut |_| {}).unwrap();
    assert_eq!((fourth.seq, fourth.read_files), (2, 1));
    let stored = feeds.logs.load(&key.id().0).unwrap().unwrap();
    stored.head.verify(&key.id().verifying_key()).unwrap();
    stored
        .tree
        .proof(2)
        .unwrap()
        .verify(&stored.entries[2], &stored.head)
        .unwrap();
}
