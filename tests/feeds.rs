//! Feeds between real daemons: publish, follow into a directory, update,
//! watch, serve through the gateway, and refuse what is wrong.

mod support;

use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};
use support::{http_get, tree, Daemon, Home, Rng};

const CONFIG: &str = "[network]\nmdns = false\n";

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

/// A small package-repository-like tree.
fn make_repo(dir: &Path, rng: &mut Rng) {
    for d in ["pool/main/a", "pool/main/b", "dists/stable"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    for i in 0..12 {
        let sub = if i % 2 == 0 { "a" } else { "b" };
        let size = 1000 + rng.below(400_000) as usize;
        std::fs::write(dir.join(format!("pool/main/{sub}/pkg{i}.deb")), rng.bytes(size)).unwrap();
    }
    std::fs::write(dir.join("dists/stable/Release"), b"Suite: stable\n").unwrap();
}

fn publish(h: &Home, dir: &Path) -> Value {
    json(&h.ok(&["--json", "publish", dir.to_str().unwrap(), "--feed", "repo"]))
}

fn follow(h: &Home, key: &str, into: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "--json",
        "follow",
        key,
        "--into",
        into.to_str().unwrap(),
        "--timeout",
        "30",
    ];
    args.extend_from_slice(extra);
    json(&h.ok(&args))
}

/// Runs a follow that must fail; returns what it said on stderr.
fn follow_fails(h: &Home, key: &str, into: &Path, timeout: &str) -> String {
    let out = h.run(&[
        "follow",
        key,
        "--into",
        into.to_str().unwrap(),
        "--timeout",
        timeout,
    ]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "the follow should fail: {err}");
    err
}

fn pair() -> (Home, Daemon, Home, Daemon, String) {
    let a = Home::new();
    let da = a.daemon(CONFIG);
    let key = json(&a.ok(&["--json", "feed", "create", "repo"]))["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = Home::new();
    let db = b.daemon(CONFIG);
    (a, da, b, db, key)
}

#[test]
fn a_follower_mirrors_each_snapshot_and_receives_only_what_changed() {
    let (a, da, b, db, key) = pair();
    let mut rng = Rng::new(7);
    let repo = a.path().join("repo");
    make_repo(&repo, &mut rng);
    let first = publish(&a, &repo);
    assert_eq!(first["seq"], 0);
    let mirror = b.path().join("mirror");
    let f1 = follow(&b, &key, &mirror, &["--peer", &da.addr]);
    assert_eq!(
        (f1["seq"].as_u64(), f1["root"].as_str()),
        (Some(0), first["root"].as_str())
    );
    assert_eq!(tree(&mirror), tree(&repo));

    // change one package, add one, remove one, touch the index
    std::fs::write(repo.join("pool/main/a/pkg0.deb"), rng.bytes(50_000)).unwrap();
    std::fs::write(repo.join("pool/main/b/new.deb"), rng.bytes(30_000)).unwrap();
    std::fs::remove_file(repo.join("pool/main/b/pkg1.deb")).unwrap();
    std::fs::write(repo.join("dists/stable/Release"), b"Suite: stable\nVersion: 2\n").unwrap();
    let second = publish(&a, &repo);
    assert_eq!(second["seq"], 1);
    assert_eq!(second["reimported_files"], 3, "{second}");
    let changed = second["bytes"]["added"].as_u64().unwrap() + second["bytes"]["changed"].as_u64().unwrap();
    let f2 = follow(&b, &key, &mirror, &[]);
    assert_eq!(f2["seq"], 1);
    assert_eq!(tree(&mirror), tree(&repo));
    let received = f2["bytes"].as_u64().unwrap();
    // the changed content plus the new directory nodes along its paths
    assert!(
        received >= changed && received < changed + 4096,
        "received {received} for {changed} changed"
    );
    assert_eq!(f2["files_removed"], 1);

    // the log and the diff as the follower sees them
    let log = json(&b.ok(&["--json", "feed", "log", &key]));
    assert_eq!(log["snapshots"].as_array().unwrap().len(), 2);
    let diff = json(&b.ok(&["--json", "diff", &format!("{key}@0"), &format!("{key}@1")]));
    let paths: Vec<String> = diff["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c["change"].as_str().unwrap(),
                c["path"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        paths,
        [
            "M dists/stable/Release",
            "M pool/main/a/pkg0.deb",
            "A pool/main/b/new.deb",
            "D pool/main/b/pkg1.deb"
        ]
    );

    // the follower serves the feed through its gateway
    let url = format!("{}/feeds/{key}/pool/main/b/new.deb", db.gateway);
    let r = http_get(&url, &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, std::fs::read(repo.join("pool/main/b/new.deb")).unwrap());
    let etag = r.header("etag").unwrap().to_owned();
    let r = http_get(&url, &[("Range", "bytes=100-199")]);
    assert_eq!((r.status, r.body.len()), (206, 100));
    assert_eq!(http_get(&url, &[("If-None-Match", &etag)]).status, 304);
    let old = http_get(&format!("{}/feeds/{key}@0/dists/stable/Release", db.gateway), &[]);
    assert_eq!((old.status, &old.body[..]), (200, &b"Suite: stable\n"[..]));
    let listing = http_get(
        &format!("{}/feeds/{key}/pool/main/", db.gateway),
        &[("Accept", "application/json")],
    );
    assert_eq!(listing.status, 200);
    assert_eq!(
        json(std::str::from_utf8(&listing.body).unwrap())["entries"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // a one-shot follow needs no daemon: the command joins the network itself
    let c = Home::new();
    let solo = c.path().join("solo");
    let f = follow(&c, &key, &solo, &["--peer", &da.addr]);
    assert_eq!(f["seq"], 1);
    assert_eq!(tree(&solo), tree(&repo));
    drop(da);
}

#[test]
fn a_watching_follower_updates_on_its_own_and_a_dead_peer_does_not_stop_it() {
    let (a, da, b, _db, key) = pair();
    let mut rng = Rng::new(9);
    let repo = a.path().join("repo");
    make_repo(&repo, &mut rng);
    publish(&a, &repo);
    // one configured path is dead (a peer that is gone), one is alive
    let gone = Home::new();
    let dead = gone.daemon(CONFIG).addr.clone(); // dropped at once: nobody listens there
    let mirror = b.path().join("mirror");
    let f = follow(
        &b,
        &key,
        &mirror,
        &["--peer", &dead, "--peer", &da.addr, "--watch"],
    );
    assert_eq!(f["seq"], 0);
    std::fs::write(repo.join("dists/stable/Release"), b"Suite: stable\nVersion: 3\n").unwrap();
    let start = Instant::now();
    publish(&a, &repo);
    while tree(&mirror) != tree(&repo) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the watching follower never updated"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("watch: publish → mirror updated in {:?}", start.elapsed());
}

#[test]
fn unknown_feeds_and_bad_requests_get_clear_errors() {
    let (a, da, b, db, _key) = pair();
    // a feed nobody has
    let nobody = "g".repeat(64);
    let out = b.run(&[
        "follow",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "--peer",
        &da.addr,
        "--timeout",
        "3",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("no peer answered"), "{err}");
    let err = b.fails(&["follow", &nobody, "--timeout", "1"]);
    assert!(err.contains(&nobody), "{err}");
    assert!(a
        .fails(&["publish", "/nonexistent", "--feed", "repo"])
        .contains("/nonexistent"));
    assert!(a
        .fails(&["publish", "/tmp", "--feed", "nosuchfeed"])
        .contains("nosuchfeed"));
    assert!(a.fails(&["feed", "log", "repo"]).contains("not known here"));
    let gw = |p: &str| http_get(&format!("{}{p}", db.gateway), &[]).status;
    assert_eq!(gw(&format!("/feeds/{nobody}/x")), 400);
    assert_eq!(
        gw("/feeds/d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a/x"),
        404
    );
    assert_eq!(gw("/ipfs/not-a-cid"), 400);
}

#[test]
fn a_restarted_follower_finds_the_feed_through_the_peers_it_remembers() {
    let (a, da, b, db, key) = pair();
    let mut rng = Rng::new(11);
    let repo = a.path().join("repo");
    make_repo(&repo, &mut rng);
    publish(&a, &repo);
    let mirror = b.path().join("mirror");
    follow(&b, &key, &mirror, &["--peer", &da.addr]);
    drop(db); // the follower restarts: no connections, an empty DHT
    let _db = b.daemon(CONFIG);
    std::fs::write(repo.join("dists/stable/Release"), b"Suite: stable\nVersion: 4\n").unwrap();
    publish(&a, &repo);
    let f = follow(&b, &key, &mirror, &[]);
    assert_eq!(f["seq"], 1);
    assert_eq!(tree(&mirror), tree(&repo));
}

#[test]
fn a_snapshot_nobody_can_serve_fails_clearly_and_the_old_one_stays() {
    let (a, _da, b, db, key) = pair();
    let mut rng = Rng::new(12);
    let repo = a.path().join("repo");
    make_repo(&repo, &mut rng);
    publish(&a, &repo);
    let mirror = b.path().join("mirror");
    let da_addr = _da.addr.clone();
    follow(&b, &key, &mirror, &["--peer", &da_addr]);
    let before = tree(&mirror);
    // the publisher indexes files in place: once the new file is gone, nobody has its blocks
    let lost = rng.bytes(70_000);
    std::fs::write(repo.join("pool/main/a/lost.deb"), &lost).unwrap();
    publish(&a, &repo);
    std::fs::remove_file(repo.join("pool/main/a/lost.deb")).unwrap();
    let err = follow_fails(&b, &key, &mirror, "4");
    assert!(err.contains("snapshot 1"), "{err}");
    assert_eq!(tree(&mirror), before, "the previous snapshot stays materialized");
    let r = http_get(&format!("{}/feeds/{key}/dists/stable/Release", db.gateway), &[]);
    assert_eq!(
        (r.status, &r.body[..]),
        (200, &b"Suite: stable\n"[..]),
        "and served"
    );

    // the file comes back: the follow resumes and fetches only what it lacked
    std::fs::write(repo.join("pool/main/a/lost.deb"), &lost).unwrap();
    assert_eq!(publish(&a, &repo)["unchanged"], true);
    let f = follow(&b, &key, &mirror, &[]);
    assert_eq!(f["seq"], 1);
    assert_eq!(tree(&mirror), tree(&repo));
    let bytes = f["bytes"].as_u64().unwrap();
    assert!(
        (70_000..71_000).contains(&bytes),
        "resumed with {bytes} bytes, the lost file is 70000"
    );
}

#[test]
fn a_directory_that_changes_during_publish_never_yields_a_torn_snapshot() {
    let a = Home::new();
    a.ok(&["feed", "create", "repo"]);
    let repo = a.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let file = repo.join("big.bin");
    std::fs::write(&file, vec![0u8; 24 << 20]).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, file) = (stop.clone(), file.clone());
        std::thread::spawn(move || {
            // rewrite the file in place, each version one byte value throughout
            let mut v = 1u8;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                use std::io::Write;
                let mut f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
                for _ in 0..24 {
                    f.write_all(&vec![v; 1 << 20]).unwrap();
                }
                v = v.wrapping_add(1).max(1);
            }
        })
    };
    let out = a.run(&["--json", "publish", repo.to_str().unwrap(), "--feed", "repo"]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    if out.status.success() {
        // whatever was published is one whole version of the file
        let v = json(&String::from_utf8_lossy(&out.stdout));
        let bytes = a.ok_bytes(&["cat", &format!("{}/big.bin", v["root"].as_str().unwrap())]);
        assert_eq!(bytes.len(), 24 << 20);
        assert!(bytes.iter().all(|b| *b == bytes[0]), "a torn file was published");
    } else {
        let err = String::from_utf8_lossy(&out.stdout); // --json: the error is JSON on stdout
        assert!(err.contains("kept changing"), "{err}");
    }
}

#[test]
fn a_peer_that_forges_the_feed_is_blocked_and_the_follow_completes_from_honest_ones() {
    let (a, da, b, db, key) = pair();
    let mut rng = Rng::new(13);
    let repo = a.path().join("repo");
    make_repo(&repo, &mut rng);
    publish(&a, &repo);
    // the liar holds the same tree (and serves it corrupted) and claims a longer, unsigned head
    let liar = support::liar(&repo);
    let mirror = b.path().join("mirror");
    let f = follow(&b, &key, &mirror, &["--peer", &liar.1, "--peer", &da.addr]);
    assert_eq!(f["seq"], 0);
    assert_eq!(tree(&mirror), tree(&repo));
    let peers = json(&b.ok(&["--json", "peers"]));
    let liar_id = liar.1.rsplit('/').next().unwrap();
    assert!(
        !peers.to_string().contains(liar_id),
        "the liar should be disconnected and blocked: {peers}"
    );
    let _ = db;
}

/// Runs `f` with a 4 MiB tmpfs mounted at `dir` (needs root: skipped, with a
/// message, where mounting is not allowed).
fn with_small_disk(dir: &Path, f: impl FnOnce()) {
    std::fs::create_dir_all(dir).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs", dir.to_str().unwrap()])
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("SKIPPED: cannot mount a tmpfs here (not root?)");
        return;
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    let _ = std::process::Command::new("umount").arg(dir).status();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn a_full_disk_during_follow_leaves_the_previous_snapshot_in_place() {
    let (a, da, b, db, key) = pair();
    let mut rng = Rng::new(14);
    let repo = a.path().join("repo");
    std::fs::create_dir_all(repo.join("pool")).unwrap();
    std::fs::write(repo.join("pool/small.deb"), rng.bytes(100_000)).unwrap();
    std::fs::write(repo.join("Release"), b"v1").unwrap();
    publish(&a, &repo);
    let mirror = b.path().join("mirror");
    with_small_disk(&mirror, || {
        follow(&b, &key, &mirror, &["--peer", &da.addr]);
        let before = tree(&mirror);
        std::fs::write(repo.join("pool/big.deb"), rng.bytes(6 << 20)).unwrap();
        std::fs::write(repo.join("Release"), b"v2").unwrap();
        publish(&a, &repo);
        let err = follow_fails(&b, &key, &mirror, "30");
        assert!(err.contains("No space left"), "{err}");
        assert_eq!(tree(&mirror), before, "the previous snapshot stays whole");
        let r = http_get(&format!("{}/feeds/{key}/Release", db.gateway), &[]);
        assert_eq!(
            (r.status, &r.body[..]),
            (200, &b"v1"[..]),
            "and is what the gateway serves"
        );
    });
}
