//! CAR interop with npm `@ipld/car`: CARs written by shoal are read (and
//! verified) by it, and CARs it writes import into shoal.

mod support;

use support::{node, Home, Rng};

fn tree(home: &Home) -> std::path::PathBuf {
    let mut rng = Rng::new(7);
    let root = home.path().join("tree");
    for i in 0..40 {
        let size = (rng.below(4) * 400_000 + rng.below(1000)) as usize;
        let p = root.join(format!("d{}/f{i}", i % 5));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, rng.bytes(size)).unwrap();
    }
    root
}

#[test]
fn shoal_cars_are_read_by_ipld_car() {
    let home = Home::new();
    let root = tree(&home);
    for profile in ["unixfs-v1-2025", "unixfs-v0-2015"] {
        let cid = home.ok(&["add", "-r", "-Q", "--profile", profile, root.to_str().unwrap()]);
        let cid = cid.trim();
        let car = home.path().join(format!("{profile}.car"));
        home.ok(&["car", "export", cid, "-o", car.to_str().unwrap()]);
        let read: serde_json::Value =
            serde_json::from_str(&node("car.mjs", &["read", car.to_str().unwrap()])).unwrap();
        assert_eq!(read["roots"][0], cid);
        let ls: serde_json::Value = serde_json::from_str(&home.ok(&["ls", "--json", cid])).unwrap();
        assert_eq!(ls["entries"].as_array().unwrap().len(), 5);
        assert!(read["blocks"].as_u64().unwrap() > 40);
    }
}

#[test]
fn ipld_car_cars_import_into_shoal() {
    let writer = Home::new();
    let root = tree(&writer);
    let car = writer.path().join("js.car");
    let out: serde_json::Value = serde_json::from_str(&node(
        "car.mjs",
        &[
            "write",
            "--profile",
            "unixfs-v1-2025",
            root.to_str().unwrap(),
            car.to_str().unwrap(),
        ],
    ))
    .unwrap();
    let cid = out["root"].as_str().unwrap();
    let reader = Home::new();
    let imported: serde_json::Value =
        serde_json::from_str(&reader.ok(&["--json", "car", "import", car.to_str().unwrap()])).unwrap();
    assert_eq!(imported["roots"][0], cid);
    assert_eq!(imported["pinned"][0], cid);
    let got = reader.path().join("got");
    reader.ok(&["get", cid, "-o", got.to_str().unwrap()]);
    let diff = std::process::Command::new("diff")
        .arg("-r")
        .arg(&root)
        .arg(&got)
        .status()
        .unwrap();
    assert!(diff.success(), "the tree read back differs");
    // the same tree added by shoal gets the same root
    assert_eq!(
        reader.ok(&["add", "-r", "-Q", root.to_str().unwrap()]).trim(),
        cid
    );
    reader.ok(&["verify"]);
}
