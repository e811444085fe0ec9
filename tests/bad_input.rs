//! Bad input gets a clear error and changes nothing: truncated and garbled
//! CARs, malformed dag-pb, unknown codecs, oversized multihashes, and DAGs
//! whose names or symlinks would make `get` write outside its target.

mod support;

use shoal_ipld::block::{cid_of, sha256};
use shoal_ipld::car::CarWriter;
use shoal_ipld::dagpb::{PbLink, PbNode};
use shoal_ipld::{Cid, Codec};
use shoal_unixfs::data::{NodeType, UnixFsData};
use std::path::Path;
use support::{Home, Rng};

fn block_count(home: &Home) -> u64 {
    let v: serde_json::Value = serde_json::from_str(&home.ok(&["--json", "init"])).unwrap();
    v["blocks"].as_u64().unwrap()
}

fn write_car(path: &Path, root: Cid, blocks: &[(Cid, Vec<u8>)]) {
    let f = std::fs::File::create(path).unwrap();
    let mut w = CarWriter::new(f, &[root]).unwrap();
    for (c, d) in blocks {
        w.write_block(c, d).unwrap();
    }
    w.finish().unwrap();
}

/// A CAR section written by hand (any CID bytes, any data).
fn raw_section(cid_bytes: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut n = (cid_bytes.len() + data.len()) as u64;
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.extend_from_slice(cid_bytes);
    out.extend_from_slice(data);
    out
}

fn dir_node(entries: &[(&str, Cid)]) -> (Cid, Vec<u8>) {
    let links = entries
        .iter()
        .map(|(n, c)| PbLink {
            hash: *c,
            name: Some(n.to_string()),
            tsize: Some(1),
        })
        .collect();
    let bytes = PbNode {
        links,
        data: Some(UnixFsData::new(NodeType::Directory).encode()),
    }
    .encode();
    (cid_of(Codec::DagPb, 1, &bytes), bytes)
}

fn symlink_node(target: &str) -> (Cid, Vec<u8>) {
    let mut d = UnixFsData::new(NodeType::Symlink);
    d.data = target.as_bytes().to_vec();
    let bytes = PbNode {
        links: vec![],
        data: Some(d.encode()),
    }
    .encode();
    (cid_of(Codec::DagPb, 1, &bytes), bytes)
}

fn import(home: &Home, car: &Path) -> std::process::Output {
    home.run(&["car", "import", car.to_str().unwrap()])
}

#[test]
fn truncated_and_garbled_cars_are_refused_and_nothing_is_kept() {
    let home = Home::new();
    let tree = home.path().join("t");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("a"), Rng::new(1).bytes(3_000_000)).unwrap();
    let root = home.ok(&["add", "-r", "-Q", tree.to_str().unwrap()]);
    let car = home.path().join("good.car");
    home.ok(&["car", "export", root.trim(), "-o", car.to_str().unwrap()]);
    let good = std::fs::read(&car).unwrap();

    let other = Home::new();
    other.ok(&["init"]);
    let bad = other.path().join("bad.car");
    for cut in [1, 10, 60, 200, good.len() / 2, good.len() - 1] {
        std::fs::write(&bad, &good[..cut]).unwrap();
        let out = import(&other, &bad);
        assert!(!out.status.success(), "a CAR cut at {cut} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("truncated") || err.contains("CAR"),
            "unclear error: {err}"
        );
        assert_eq!(block_count(&other), 0, "a CAR cut at {cut} left blocks behind");
    }
    for flip in [good.len() - 5, good.len() / 2] {
        let mut g = good.clone();
        g[flip] ^= 0x40;
        std::fs::write(&bad, &g).unwrap();
        let err = other.fails(&["car", "import", bad.to_str().unwrap()]);
        assert!(err.contains("do not match its CID"), "{err}");
        assert_eq!(block_count(&other), 0);
    }
    std::fs::write(&bad, b"\x05garbage and more garbage").unwrap();
    assert!(other
        .fails(&["car", "import", bad.to_str().unwrap()])
        .contains("CAR"));
    // the good one still imports
    other.ok(&["car", "import", car.to_str().unwrap()]);
    assert!(block_count(&other) > 0);
}

#[test]
fn unknown_codecs_oversized_multihashes_and_bad_dag_pb_are_refused() {
    let home = Home::new();
    home.ok(&["init"]);
    let car = home.path().join("x.car");
    let ok_block = (cid_of(Codec::Raw, 1, b"fine"), b"fine".to_vec());

    // dag-cbor block: a real codec, not one shoal stores
    let cbor = Cid::new_v1(0x71, sha256(b"\xa0"));
    write_car(&car, cbor, &[ok_block.clone(), (cbor, b"\xa0".to_vec())]);
    let err = home.fails(&["car", "import", car.to_str().unwrap()]);
    assert!(err.contains("codec 0x71"), "{err}");

    // a multihash claiming a 200-byte digest
    let mut header = Vec::new();
    {
        let w = CarWriter::new(&mut header, &[ok_block.0]).unwrap();
        w.finish().unwrap();
    }
    let mut bytes = header.clone();
    let mut cid_bytes = vec![0x01, 0x55, 0x12, 0xc8, 0x01];
    cid_bytes.extend(std::iter::repeat_n(7u8, 200));
    bytes.extend(raw_section(&cid_bytes, b"data"));
    std::fs::write(&car, &bytes).unwrap();
    let err = home.fails(&["car", "import", car.to_str().unwrap()]);
    assert!(err.contains("invalid CID"), "{err}");

    // dag-pb whose link hash is garbage (block hash itself is right)
    let bad_pb = vec![0x12, 0x04, 0x0a, 0x02, 0x01, 0x02];
    let bad_cid = cid_of(Codec::DagPb, 1, &bad_pb);
    write_car(&car, bad_cid, &[ok_block.clone(), (bad_cid, bad_pb.clone())]);
    let err = home.fails(&["car", "import", car.to_str().unwrap()]);
    assert!(err.contains("malformed") && err.contains("invalid CID"), "{err}");
    assert_eq!(block_count(&home), 0);

    // CID text that does not parse, and path tricks
    assert!(home.fails(&["cat", "notacid"]).contains("not a CID"));
    let err = home.fails(&["cat", &format!("{}/../x", ok_block.0)]);
    assert!(err.contains("'..'"), "{err}");
}

/// Imports a hostile DAG, then checks `get` refuses it and writes nothing.
fn refused_get(root: Cid, blocks: Vec<(Cid, Vec<u8>)>, expect: &str) {
    let home = Home::new();
    let car = home.path().join("evil.car");
    write_car(&car, root, &blocks);
    home.ok(&["car", "import", car.to_str().unwrap()]);
    let target = home.path().join("jail/out");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    let err = home.fails(&["get", &root.to_string(), "-o", target.to_str().unwrap()]);
    assert!(err.contains(expect), "expected '{expect}' in: {err}");
    let left: Vec<_> = std::fs::read_dir(home.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let mut left: Vec<String> = left
        .into_iter()
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["evil.car", "home", "jail"],
        "something was written outside"
    );
    assert_eq!(
        std::fs::read_dir(target.parent().unwrap()).unwrap().count(),
        0,
        "the target was written"
    );
}

#[test]
fn get_refuses_paths_that_escape_the_output() {
    let file = (cid_of(Codec::Raw, 1, b"payload"), b"payload".to_vec());
    for name in ["..", "../escape", "/etc/evil", "a/../../b", "."] {
        let (root, bytes) = dir_node(&[(name, file.0)]);
        refused_get(root, vec![(root, bytes), file.clone()], "refusing to write");
    }
    for target in ["/etc/passwd", "../../outside", "sub/../../x"] {
        let link = symlink_node(target);
        let (root, bytes) = dir_node(&[("link", link.0)]);
        refused_get(root, vec![(root, bytes), link], "symlink points outside");
    }
    let (root, bytes) = dir_node(&[("same", file.0), ("same", file.0)]);
    refused_get(root, vec![(root, bytes), file.clone()], "duplicate name");
}

#[test]
fn get_keeps_symlinks_that_stay_inside() {
    let home = Home::new();
    let tree = home.path().join("t");
    std::fs::create_dir_all(tree.join("d")).unwrap();
    std::fs::write(tree.join("f"), b"x").unwrap();
    std::os::unix::fs::symlink("../f", tree.join("d/up")).unwrap();
    let root = home.ok(&["add", "-r", "-Q", tree.to_str().unwrap()]);
    let out = home.path().join("out");
    home.ok(&["get", root.trim(), "-o", out.to_str().unwrap()]);
    assert_eq!(std::fs::read_link(out.join("d/up")).unwrap(), Path::new("../f"));
    assert_eq!(std::fs::read(out.join("d/up")).unwrap(), b"x");
}
