//! Root CIDs of randomly generated files and trees: shoal against the npm
//! reference importer (`ipfs-unixfs-importer`), for both profiles, with and
//! without mode/mtime.

mod support;

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};
use support::{node, Home, Rng};

const KIB: usize = 1024;
/// Sizes around both profiles' chunk boundaries.
const BOUNDARY_SIZES: &[usize] = &[
    0,
    1,
    256 * KIB - 1,
    256 * KIB,
    256 * KIB + 1,
    1024 * KIB - 1,
    1024 * KIB,
    1024 * KIB + 1,
    2 * 1024 * KIB + 3,
];

fn write(rng: &mut Rng, path: &Path, size: usize) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, rng.bytes(size)).unwrap();
}

/// Random permissions and mtimes (with nanoseconds) on everything below `root`.
fn scramble_metadata(rng: &mut Rng, root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut stack = vec![root.to_path_buf()];
    let mut dirs = Vec::new();
    while let Some(p) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        if meta.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
            dirs.push(p);
            continue;
        }
        let mode = [0o644, 0o600, 0o755, 0o640, 0o444][rng.below(5) as usize];
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        set_mtime(rng, &p);
    }
    for d in dirs.iter().rev() {
        let mode = [0o755, 0o700, 0o750][rng.below(3) as usize];
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(mode)).unwrap();
        set_mtime(rng, d);
    }
}

fn set_mtime(rng: &mut Rng, p: &Path) {
    let secs = 1_000_000_000 + rng.below(800_000_000);
    let nanos = if rng.below(3) == 0 {
        0
    } else {
        rng.below(1_000_000_000) as u32
    };
    let t = UNIX_EPOCH + Duration::new(secs, nanos);
    std::fs::File::open(p).unwrap().set_modified(t).unwrap();
}

/// Files of every boundary size, empty files and an empty directory.
fn boundary_tree(rng: &mut Rng, root: &Path) {
    for (i, &size) in BOUNDARY_SIZES.iter().enumerate() {
        write(rng, &root.join(format!("size-{i:02}-{size}")), size);
    }
    write(rng, &root.join("nested/empty-file"), 0);
    std::fs::create_dir_all(root.join("nested/empty-dir")).unwrap();
}

/// A deep chain and a wide directory of small files with random names.
fn deep_and_wide_tree(rng: &mut Rng, root: &Path) {
    let mut deep = root.join("deep");
    for level in 0..24 {
        deep = deep.join(format!("l{level}"));
        let size = rng.below(3000) as usize;
        write(rng, &deep.join("f"), size);
    }
    for i in 0..400 {
        let name: String = (0..1 + rng.below(30))
            .map(|_| (b'a' + rng.below(26) as u8) as char)
            .collect();
        let size = rng.below(20_000) as usize;
        write(rng, &root.join(format!("wide/{name}-{i}")), size);
    }
    write(rng, &root.join("wide/Ünïcode ñame"), 10);
    write(rng, &root.join("wide/with space"), 10);
}

/// One directory above the HAMT threshold under both estimates (long names),
/// beside a small one.
fn hamt_tree(rng: &mut Rng, root: &Path) {
    for i in 0..1300 {
        let name = format!("{i:05}-{}", "x".repeat(190 + rng.below(20) as usize));
        let size = rng.below(64) as usize;
        write(rng, &root.join("big").join(name), size);
    }
    write(rng, &root.join("small/one"), 1);
}

fn compare(home: &Home, tree: &Path, profile: &str, meta: bool) {
    let mut args = vec!["add", "-r", "-Q", "--profile", profile];
    let mut js_args = vec!["--profile", profile];
    if meta {
        args.extend(["--preserve-mode", "--preserve-mtime"]);
        js_args.extend(["--preserve-mode", "--preserve-mtime"]);
    }
    let tree_s = tree.to_str().unwrap();
    args.push(tree_s);
    js_args.push(tree_s);
    let ours = home.ok(&args).trim().to_owned();
    let reference: serde_json::Value = serde_json::from_str(&node("import.mjs", &js_args)).unwrap();
    assert_eq!(
        ours,
        reference["root"].as_str().unwrap(),
        "{profile} meta={meta} {}",
        tree.display()
    );
}

fn check_tree(seed: u64, build: fn(&mut Rng, &Path)) {
    let home = Home::new();
    let tree = home.path().join("tree");
    let mut rng = Rng::new(seed);
    build(&mut rng, &tree);
    for profile in ["unixfs-v1-2025", "unixfs-v0-2015"] {
        compare(&home, &tree, profile, false);
    }
    scramble_metadata(&mut rng, &tree);
    for profile in ["unixfs-v1-2025", "unixfs-v0-2015"] {
        compare(&home, &tree, profile, true);
        compare(&home, &tree, profile, false);
    }
}

#[test]
fn files_at_chunk_boundaries_match_the_reference() {
    check_tree(1, boundary_tree);
}

#[test]
fn deep_and_wide_trees_match_the_reference() {
    check_tree(2, deep_and_wide_tree);
}

#[test]
fn a_sharded_directory_matches_the_reference() {
    check_tree(3, hamt_tree);
}

#[test]
fn single_files_with_metadata_match_the_reference() {
    let home = Home::new();
    let mut rng = Rng::new(4);
    for &size in &[0usize, 11, 300 * KIB] {
        let f = home.path().join(format!("file-{size}"));
        write(&mut rng, &f, size);
        scramble_metadata(&mut rng, &f);
        for profile in ["unixfs-v1-2025", "unixfs-v0-2015"] {
            compare(&home, &f, profile, true);
            compare(&home, &f, profile, false);
        }
    }
}
