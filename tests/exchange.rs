//! The exchange under faults, with real daemons on loopback: a provider
//! killed in the middle of a transfer, and a peer that serves corrupted
//! blocks (`shoal-liar`, a real libp2p node built beside `shoal`).

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::{liar, Daemon, Home, Rng};

fn start(home: &Home) -> Daemon {
    home.daemon("[network]\nmdns = false\nkad_mode = \"server\"\n")
}

fn tree(dir: &Path, seed: u64, files: usize, size: usize) -> PathBuf {
    let mut rng = Rng::new(seed);
    let root = dir.join(format!("tree{seed}"));
    for i in 0..files {
        let p = root.join(format!("pool/{}/pkg{i}.deb", i % 4));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, rng.bytes(size - i * 1000)).unwrap();
    }
    root
}

fn same_tree(a: &Path, b: &Path) {
    let ok = Command::new("diff")
        .arg("-r")
        .arg(a)
        .arg(b)
        .status()
        .unwrap()
        .success();
    assert!(ok, "{} and {} differ", a.display(), b.display());
}

fn json(home: &Home, args: &[&str]) -> Value {
    let mut full = vec!["--json"];
    full.extend_from_slice(args);
    serde_json::from_str(&home.ok(&full)).unwrap()
}

fn counter(home: &Home, section: &str, name: &str) -> u64 {
    json(home, &["stats"])[section][name].as_u64().unwrap()
}

/// Waits until `peer` is listed as a provider of `root` by `home`'s DHT.
fn wait_for_provider(home: &Home, root: &str, peer: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let provs = json(home, &["dht", "findprovs", root]);
        if provs["providers"].as_array().unwrap().iter().any(|p| p == peer) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{peer} never showed up as a provider: {provs}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_lying_peer_is_caught_penalised_and_the_fetch_completes_from_honest_ones() {
    let scratch = Home::new();
    let t = tree(scratch.path(), 7, 8, 600_000);
    let (ha, hc) = (Home::new(), Home::new());
    let (a, c) = (start(&ha), start(&hc));
    ha.ok(&["connect", &c.addr]);
    let root = ha.ok(&["add", "-r", "-Q", t.to_str().unwrap()]).trim().to_owned();
    wait_for_provider(&hc, &root, &a.peer_id);
    let l = liar(&t);
    let liar_id = l.1.rsplit('/').next().unwrap().to_owned();

    for (mode, section, counter_name) in [
        ("sync", "sync", "violations"),
        ("bitswap", "bitswap", "peers_banned"),
    ] {
        // B knows the liar and C (which has nothing but the DHT record)
        let hb = Home::new();
        let _b = start(&hb);
        hb.ok(&["connect", &l.1]);
        hb.ok(&["connect", &c.addr]);
        let out = hb.path().join("got");
        hb.ok(&["get", &root, "-o", out.to_str().unwrap(), "--exchange", mode]);
        same_tree(&t, &out);
        assert!(
            counter(&hb, section, counter_name) >= 1,
            "{mode}: the liar went unnoticed: {}",
            json(&hb, &["stats"])
        );
        let peers = hb.ok(&["peers"]);
        assert!(
            !peers.contains(&liar_id),
            "{mode}: still connected to the liar: {peers}"
        );
        assert!(peers.contains(&a.peer_id), "{mode}: fetched without A? {peers}");
        hb.ok(&["verify"]);
    }
}

#[test]
fn a_provider_killed_mid_transfer_is_replaced_without_refetching() {
    let scratch = Home::new();
    let t = tree(scratch.path(), 9, 32, 10_000_000);
    let (h1, h2, hb) = (Home::new(), Home::new(), Home::new());
    let mut providers = [Some(start(&h1)), Some(start(&h2))];
    let homes = [&h1, &h2];
    let _b = start(&hb);
    let mut root = String::new();
    for (h, d) in homes.iter().zip(&providers) {
        root = h.ok(&["add", "-r", "-Q", t.to_str().unwrap()]).trim().to_owned();
        hb.ok(&["connect", &d.as_ref().unwrap().addr]);
    }
    let out = hb.path().join("got");
    let mut get = hb
        .cmd(&["get", &root, "-o", out.to_str().unwrap()])
        .spawn()
        .unwrap();

    // once B has committed part of the DAG, kill the provider it is using
    let deadline = Instant::now() + Duration::from_secs(60);
    let killed = loop {
        assert!(Instant::now() < deadline, "B never stored anything");
        if json(&hb, &["stat"])["blocks"].as_u64().unwrap() > 0 {
            let serving = (0..2).find(|&i| counter(homes[i], "sync", "served") > 0);
            if let Some(i) = serving {
                providers[i].take(); // SIGKILL
                break i;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(
        get.wait().unwrap().success(),
        "the fetch did not survive the kill"
    );
    same_tree(&t, &out);
    let stored = json(&hb, &["stat"])["blocks"].as_u64().unwrap();
    let received = counter(&hb, "sync", "blocks_received") + counter(&hb, "bitswap", "blocks_received");
    // nothing B held is fetched again; the only extra blocks allowed are the
    // endgame's copies of the last subtrees (multi-source fetch), ≤ 3 %
    assert!(
        received >= stored && received <= stored + stored.div_ceil(33),
        "received {received} blocks for {stored} stored"
    );
    let other = homes[1 - killed];
    assert!(
        counter(other, "sync", "served") >= 1,
        "the other provider was never asked"
    );
    hb.ok(&["verify"]);
}

#[test]
fn bad_wire_input_is_counted_and_the_daemon_keeps_serving() {
    let scratch = Home::new();
    let t = tree(scratch.path(), 11, 6, 400_000);
    let ha = Home::new();
    let a = start(&ha);
    let root = ha.ok(&["add", "-r", "-Q", t.to_str().unwrap()]).trim().to_owned();

    let bin = support::shoal_bin().with_file_name("shoal-liar");
    let key_dir = scratch.path().join("attacker");
    let out = Command::new(bin)
        .args(["attack", key_dir.to_str().unwrap(), &a.addr])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "attack failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    let stats = loop {
        let s = json(&ha, &["stats"]);
        let b = &s["bitswap"];
        let done = b["bad_messages"].as_u64() >= Some(4)
            && b["wants_over_limit"].as_u64() >= Some(1)
            && b["wants_not_found"].as_u64() >= Some(1000)
            && s["sync"]["bad_requests"].as_u64() >= Some(2);
        if done || Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let b = &stats["bitswap"];
    assert!(b["bad_messages"].as_u64() >= Some(4), "{stats}");
    assert!(b["wants_over_limit"].as_u64() >= Some(1), "{stats}");
    assert!(b["wants_not_found"].as_u64() >= Some(1000), "{stats}");
    assert!(stats["sync"]["bad_requests"].as_u64() >= Some(2), "{stats}");

    // A still serves honest peers, over both protocols
    for mode in ["sync", "bitswap"] {
        let hb = Home::new();
        let _b = start(&hb);
        hb.ok(&["connect", &a.addr]);
        let out = hb.path().join("got");
        hb.ok(&["get", &root, "-o", out.to_str().unwrap(), "--exchange", mode]);
        same_tree(&t, &out);
    }
}
