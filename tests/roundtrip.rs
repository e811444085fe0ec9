//! The CLI end to end: add then read back with cat (byte ranges), ls, get
//! (with mode and mtime), pins and gc, and no-copy files changed behind
//! shoal's back.

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};
use support::{Home, Rng};

fn tree(home: &Home, rng: &mut Rng) -> std::path::PathBuf {
    let root = home.path().join("tree");
    for (i, size) in [0usize, 5, 1 << 20, (1 << 20) + 1, 3_333_333]
        .into_iter()
        .enumerate()
    {
        let p = root.join(format!("dir{}/file{i}", i % 2));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, rng.bytes(size)).unwrap();
    }
    root
}

#[test]
fn cat_serves_every_byte_range() {
    let home = Home::new();
    let mut rng = Rng::new(5);
    let root = tree(&home, &mut rng);
    let data = std::fs::read(root.join("dir0/file4")).unwrap();
    for profile in ["unixfs-v1-2025", "unixfs-v0-2015"] {
        let cid = home.ok(&["add", "-r", "-Q", "--profile", profile, root.to_str().unwrap()]);
        let path = format!("{}/dir0/file4", cid.trim());
        let whole = home.cmd(&["cat", &path]).output().unwrap().stdout;
        assert_eq!(whole, data);
        for _ in 0..20 {
            let off = rng.below(data.len() as u64 + 10) as usize;
            let len = rng.below(2_000_000) as usize;
            let mut out = home.cmd(&[
                "cat",
                &path,
                "--offset",
                &off.to_string(),
                "--length",
                &len.to_string(),
            ]);
            let got = out.output().unwrap().stdout;
            let lo = off.min(data.len());
            assert_eq!(
                got,
                &data[lo..(lo + len).min(data.len())],
                "{profile} offset {off} length {len}"
            );
        }
    }
}

#[test]
fn get_restores_content_mode_and_mtime() {
    let home = Home::new();
    let mut rng = Rng::new(6);
    let root = tree(&home, &mut rng);
    let when = UNIX_EPOCH + Duration::new(1_600_000_000, 123_456_789);
    let f = root.join("dir1/file1");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::File::open(&f).unwrap().set_modified(when).unwrap();
    std::fs::set_permissions(root.join("dir1"), std::fs::Permissions::from_mode(0o700)).unwrap();
    let cid = home.ok(&[
        "add",
        "-r",
        "-Q",
        "--preserve-mode",
        "--preserve-mtime",
        root.to_str().unwrap(),
    ]);
    let out = home.path().join("out");
    home.ok(&["get", cid.trim(), "-o", out.to_str().unwrap()]);
    assert!(std::process::Command::new("diff")
        .arg("-r")
        .arg(&root)
        .arg(&out)
        .status()
        .unwrap()
        .success());
    let meta = std::fs::metadata(out.join("dir1/file1")).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o600);
    assert_eq!((meta.mtime(), meta.mtime_nsec()), (1_600_000_000, 123_456_789));
    assert_eq!(
        std::fs::metadata(out.join("dir1")).unwrap().mode() & 0o7777,
        0o700
    );
    // without the flags nothing is recorded and defaults apply
    let plain = home.ok(&["add", "-r", "-Q", root.to_str().unwrap()]);
    assert_ne!(plain, cid);
    let out2 = home.path().join("out2");
    home.ok(&["get", plain.trim(), "-o", out2.to_str().unwrap()]);
    assert_eq!(
        std::fs::metadata(out2.join("dir1/file1")).unwrap().mode() & 0o777,
        0o644
    );
    // an existing, non-empty output is refused
    let err = home.fails(&["get", plain.trim(), "-o", out2.to_str().unwrap()]);
    assert!(err.contains("already exists"), "{err}");
}

#[test]
fn ls_pin_and_gc() {
    let home = Home::new();
    let mut rng = Rng::new(7);
    let root = tree(&home, &mut rng);
    let kept = home
        .ok(&["add", "-r", "-Q", root.to_str().unwrap()])
        .trim()
        .to_owned();
    let ls: serde_json::Value = serde_json::from_str(&home.ok(&["--json", "ls", &kept])).unwrap();
    let names: Vec<_> = ls["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dir0", "dir1"]);
    let other = home.path().join("other");
    std::fs::write(&other, rng.bytes(500_000)).unwrap();
    let dropped = home
        .ok(&["add", "-Q", "--pin", "false", other.to_str().unwrap()])
        .trim()
        .to_owned();
    let gc: serde_json::Value = serde_json::from_str(&home.ok(&["--json", "gc"])).unwrap();
    assert_eq!(gc["blocks_removed"], 1);
    assert!(home.fails(&["cat", &dropped]).contains("not in the store"));
    home.ok_bytes(&["cat", &format!("{kept}/dir0/file4")]);
    home.ok(&["pin", "rm", &kept]);
    home.ok(&["gc"]);
    assert!(home.fails(&["ls", &kept]).contains("not in the store"));
    let pins: serde_json::Value = serde_json::from_str(&home.ok(&["--json", "pin", "ls"])).unwrap();
    assert_eq!(pins["pins"].as_array().unwrap().len(), 0);
}

fn touch_later(p: &Path) {
    let later = std::time::SystemTime::now() + Duration::from_secs(10);
    std::fs::File::options()
        .write(true)
        .open(p)
        .unwrap()
        .set_modified(later)
        .unwrap();
}

#[test]
fn nocopy_files_changed_behind_our_back_are_reported_stale() {
    let home = Home::new();
    let mut rng = Rng::new(8);
    let root = tree(&home, &mut rng);
    let cid = home
        .ok(&["add", "-r", "-Q", "--nocopy", root.to_str().unwrap()])
        .trim()
        .to_owned();
    let blocks: serde_json::Value = serde_json::from_str(&home.ok(&["--json", "init"])).unwrap();
    let bytes_in_store = std::fs::read_dir(home.home().join("store/packs"))
        .unwrap()
        .count();
    assert_eq!(bytes_in_store, 0, "no-copy wrote file data into packs");
    assert!(blocks["blocks"].as_u64().unwrap() > 5);
    home.ok(&["verify"]);
    let victim = root.join("dir0/file4");
    let mut data = std::fs::read(&victim).unwrap();
    data[100] ^= 1;
    std::fs::write(&victim, &data).unwrap();
    touch_later(&victim);
    let err = home.fails(&["cat", &format!("{cid}/dir0/file4")]);
    assert!(err.contains("stale") && err.contains("file4"), "{err}");
    let out = home.run(&["--json", "verify"]);
    assert!(!out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!report["stale"].as_array().unwrap().is_empty());
    assert!(report["corrupt"].as_array().unwrap().is_empty());
    // other files are still served; re-adding the changed file heals the tree
    home.ok_bytes(&["cat", &format!("{cid}/dir1/file3")]);
    let new = home.ok(&["add", "-r", "-Q", "--nocopy", root.to_str().unwrap()]);
    assert!(home.ok_bytes(&["cat", &format!("{}/dir0/file4", new.trim())]) == data);
    // the old version's changed block stays stale until the old root goes
    assert!(!home.run(&["verify"]).status.success());
    home.ok(&["pin", "rm", &cid]);
    home.ok(&["gc"]);
    home.ok(&["verify"]);
}

#[test]
fn feed_keys_are_created_listed_and_moved_between_homes() {
    let (a, b) = (Home::new(), Home::new());
    let line = a.ok(&["feed", "create", "pool"]);
    let key = line.split_whitespace().nth(1).unwrap().to_owned();
    assert_eq!(key.len(), 64, "{line}");
    assert!(a.fails(&["feed", "create", "pool"]).contains("already exists"));
    assert!(a
        .fails(&["feed", "create", "../escape"])
        .contains("not a feed name"));
    let list: serde_json::Value = serde_json::from_str(&a.ok(&["--json", "feed", "list"])).unwrap();
    assert_eq!(list["feeds"][0]["key"], key.as_str());
    let secret = a.ok(&["feed", "export", "pool"]);
    let mut import = b.cmd(&["feed", "import", "pool"]);
    import
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = import.spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(secret.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(&key));
    let mode = std::fs::metadata(b.home().join("feeds/pool.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}
