//! Crash safety: `shoal add` is SIGKILLed at random moments, again and
//! again on the same store. After every kill the store must open, verify
//! clean, and hold every file whose add was acknowledged ("added CID PATH"
//! is printed only after the commit that made the file durable).

mod support;

use shoal_ipld::Cid;
use shoal_store::{BlockStore, Walk};
use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::{Home, Rng};

const KILLS: usize = 50;

fn build_tree(rng: &mut Rng, root: &std::path::Path) -> u64 {
    let mut total = 0;
    for i in 0..200 {
        let size = (rng.below(600_000) + rng.below(2) * rng.below(1_200_000)) as usize;
        let p = root.join(format!("pool/{}/pkg{i}.deb", i % 7));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, rng.bytes(size)).unwrap();
        total += size as u64;
    }
    total
}

/// Starts an add with settings that make its blocks new to the store.
fn start_add(home: &Home, rng: &mut Rng, tree: &std::path::Path, round: usize) -> std::process::Child {
    let chunk = format!("size-{}", 100_000 + rng.below(400_000));
    let profile = if round.is_multiple_of(2) {
        "unixfs-v1-2025"
    } else {
        "unixfs-v0-2015"
    };
    let mut args = vec!["add", "-r", "--profile", profile, "--chunker", &chunk];
    if round.is_multiple_of(3) {
        args.push("--nocopy");
    }
    args.push(tree.to_str().unwrap());
    home.cmd(&args)
        .env("SHOAL_ADD_COMMIT_MS", "15")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn acknowledged(stdout: &str) -> Vec<Cid> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("added "))
        .map(|l| l.split(' ').next().unwrap().parse().expect("a CID"))
        .collect()
}

/// Checks the store after a kill, then collects its garbage (nothing is
/// pinned mid-add) so the next round starts small.
fn check_store(home: &Home, acked: &[Cid], round: usize) {
    let store = BlockStore::open(home.home().join("store")).unwrap_or_else(|e| panic!("round {round}: {e}"));
    let report = store.verify(|_| {}).unwrap();
    assert!(report.ok(), "round {round}: verify found {report:?}");
    for cid in acked {
        let mut walk = Walk::default();
        store.walk(cid, &mut walk).unwrap();
        assert!(
            walk.missing.is_empty(),
            "round {round}: acknowledged {cid} lost {:?}",
            walk.missing
        );
    }
    store.gc().unwrap();
}

/// How long an uninterrupted add of `tree` takes.
fn time_full_add(home: &Home, rng: &mut Rng, tree: &std::path::Path) -> Duration {
    let start = Instant::now();
    let status = start_add(home, rng, tree, 1).wait().unwrap();
    assert!(status.success());
    let elapsed = start.elapsed();
    BlockStore::open(home.home().join("store")).unwrap().gc().unwrap();
    elapsed
}

#[test]
fn add_killed_at_random_moments_loses_nothing_acknowledged() {
    let home = Home::new();
    let mut rng = Rng::new(99);
    let tree = home.path().join("tree");
    build_tree(&mut rng, &tree);
    home.ok(&["init"]);
    // the first add reads the tree cold; later ones are faster, so time a warm one too
    let mut full = time_full_add(&home, &mut rng, &tree).min(time_full_add(&home, &mut rng, &tree));
    let mut acked_total = 0;
    let mut mid_run_kills = 0;
    for round in 0..KILLS {
        let started = Instant::now();
        let mut child = start_add(&home, &mut rng, &tree, round);
        let deadline = started + full.mul_f64(rng.below(1000) as f64 / 1000.0);
        while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(2));
        }
        if child.try_wait().unwrap().is_none() {
            mid_run_kills += 1;
        } else {
            // it finished before its kill time: adds got faster; aim earlier
            full = full.min(started.elapsed());
        }
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();
        let mut out = String::new();
        child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        let acked = acknowledged(&out);
        acked_total += acked.len();
        check_store(&home, &acked, round);
    }
    assert!(
        mid_run_kills >= KILLS * 3 / 4,
        "only {mid_run_kills} kills landed mid-add"
    );
    assert!(acked_total > 0, "no add was ever acknowledged before a kill");
    // the store is still fully usable: a complete add and a read back
    let root = home.ok(&["add", "-r", "-Q", tree.to_str().unwrap()]);
    let out = home.path().join("out");
    home.ok(&["get", root.trim(), "-o", out.to_str().unwrap()]);
    assert!(std::process::Command::new("diff")
        .arg("-r")
        .arg(&tree)
        .arg(&out)
        .status()
        .unwrap()
        .success());
    home.ok(&["verify"]);
    eprintln!("{KILLS} kills ({mid_run_kills} mid-add, full add {full:?}), {acked_total} acknowledged files checked");
}
