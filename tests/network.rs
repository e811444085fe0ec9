//! Several daemons on loopback with real transports: a DAG added on one is
//! fetched by another over bitswap, and found through DHT provider records
//! by a third that is not connected to the one that has it.

mod support;

use std::time::{Duration, Instant};
use support::{Daemon, Home, Rng};

/// A daemon answering DHT queries on loopback (no AutoNAT confirmation there).
fn start(home: &Home) -> Daemon {
    home.daemon("[network]\nmdns = false\nkad_mode = \"server\"\n")
}

fn tree(home: &Home, seed: u64, files: usize) -> std::path::PathBuf {
    let mut rng = Rng::new(seed);
    let root = home.path().join(format!("tree{seed}"));
    for i in 0..files {
        let size = rng.below(3_000_000) as usize;
        let p = root.join(format!("pool/{}/pkg{i}.deb", i % 3));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, rng.bytes(size)).unwrap();
    }
    root
}

fn same_tree(a: &std::path::Path, b: &std::path::Path) {
    assert!(std::process::Command::new("diff")
        .arg("-r")
        .arg(a)
        .arg(b)
        .status()
        .unwrap()
        .success());
}

#[test]
fn a_dag_added_on_one_node_is_fetched_by_others_directly_and_through_the_dht() {
    let (ha, hb, hc) = (Home::new(), Home::new(), Home::new());
    let (a, b, c) = (start(&ha), start(&hb), start(&hc));
    let t1 = tree(&ha, 1, 12);
    let root1 = ha
        .ok(&["add", "-r", "-Q", t1.to_str().unwrap()])
        .trim()
        .to_owned();

    // B, connected to A, fetches the whole DAG over bitswap
    hb.ok(&["connect", &a.addr]);
    let out = hb.path().join("got1");
    hb.ok(&["get", &root1, "-o", out.to_str().unwrap()]);
    same_tree(&t1, &out);
    hb.ok(&["verify"]);

    // C knows only B. A announces a second DAG B does not have; C finds A
    // as its provider in the DHT and fetches from it.
    let t2 = tree(&ha, 2, 6);
    let root2 = ha
        .ok(&["add", "-r", "-Q", t2.to_str().unwrap()])
        .trim()
        .to_owned();
    hc.ok(&["connect", &b.addr]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let provs: serde_json::Value =
            serde_json::from_str(&hc.ok(&["--json", "dht", "findprovs", &root2])).unwrap();
        if provs["providers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == a.peer_id.as_str())
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "A never showed up as a provider: {provs}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = hc.path().join("got2");
    hc.ok(&["get", &root2, "-o", out.to_str().unwrap()]);
    same_tree(&t2, &out);
    let peers = hc.ok(&["peers"]);
    assert!(
        peers.contains(&a.peer_id),
        "C fetched without connecting to A? {peers}"
    );
    drop(c);
}

#[test]
fn a_missing_dag_is_a_clear_error() {
    let (ha, hb) = (Home::new(), Home::new());
    let (a, _b) = (start(&ha), start(&hb));
    hb.ok(&["connect", &a.addr]);
    let nowhere = "bafkreie7q3iidccmpvszul7kudcvvuavuo7u6gzlbobczuk5nqk3b4akba";
    let err = hb.fails(&["cat", nowhere]);
    assert!(err.contains("no peer has"), "{err}");
    let err = hb.fails(&["get", nowhere, "-o", hb.path().join("x").to_str().unwrap()]);
    assert!(err.contains("no peer has"), "{err}");
}
