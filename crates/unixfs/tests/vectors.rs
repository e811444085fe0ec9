//! Root CIDs of single files against vectors produced by the reference JS
//! importer (`../shared/vectors/unixfs-files.tsv`), and directory vectors
//! recorded from the same importer.

use shoal_store::BlockStore;
use shoal_unixfs::{add, AddOptions, ImportOptions, Profile, ShardEstimate};
use std::path::Path;

fn options(profile: &str) -> ImportOptions {
    match profile {
        "kubo-cidv1" => ImportOptions {
            cid_version: 1,
            raw_leaves: true,
            chunk_size: 256 << 10,
            max_links: 174,
            shard_estimate: ShardEstimate::LinksBytes,
            ..Profile::UnixfsV0_2015.options()
        },
        p => p.parse::<Profile>().unwrap().options(),
    }
}

fn content(input: &str, size: usize) -> Vec<u8> {
    match input {
        "empty" => vec![],
        "hello world" => b"hello world".to_vec(),
        _ => (0..size).map(|i| (i % 251) as u8).collect(),
    }
}

fn add_path(store: &BlockStore, path: &Path, import: ImportOptions) -> String {
    let opts = AddOptions {
        import,
        recursive: true,
        ..Default::default()
    };
    add(store, path, &opts, &mut |_| {}).unwrap().root.to_string()
}

#[test]
fn every_shared_vector_matches() {
    let tsv = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/vectors/unixfs-files.tsv"
    );
    let text = std::fs::read_to_string(tsv).expect("../shared/vectors is beside the project");
    let dir = tempfile::tempdir().unwrap();
    let store = BlockStore::open(dir.path().join("store")).unwrap();
    let mut checked = 0;
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (profile, input, size, want) = (cols[0], cols[1], cols[2].parse().unwrap(), cols[3]);
        let file = dir.path().join("input");
        std::fs::write(&file, content(input, size)).unwrap();
        assert_eq!(
            add_path(&store, &file, options(profile)),
            want,
            "{profile} {input}"
        );
        checked += 1;
    }
    assert!(checked >= 12);
}

fn write_tree(root: &Path, files: &[(&str, &[u8])]) {
    for (name, data) in files {
        let p = root.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
}

#[test]
fn directories_match_the_reference_importer() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlockStore::open(dir.path().join("store")).unwrap();
    let ab = dir.path().join("ab");
    write_tree(&ab, &[("a", b"A"), ("b", b"B")]);
    assert_eq!(
        add_path(&store, &ab, options("unixfs-v0-2015")),
        "QmaqMVzx86m7RvsLKKWJXTuv4495frBHUb4NqGuaFSpqsg"
    );
    assert_eq!(
        add_path(&store, &ab, options("unixfs-v1-2025")),
        "bafybeiheu356ywpiflat4lmhjeafknxjwfoosk7djz5mbivkapvt5pusie"
    );
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert_eq!(
        add_path(&store, &empty, options("unixfs-v0-2015")),
        "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
    );
}

fn numbered(dir: &Path, n: usize, width: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        let name = format!("f{i:0width$}");
        std::fs::write(dir.join(&name), &name).unwrap();
    }
}

#[test]
fn sharding_threshold_matches_the_reference_importer() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlockStore::open(dir.path().join("store")).unwrap();
    let d = dir.path().join("d2000");
    numbered(&d, 2000, 4);
    assert_eq!(
        add_path(&store, &d, options("unixfs-v0-2015")),
        "QmV4WBkRe1PkyiDNcS7y6ejtirEkdAb6QV4NbajNx74G41"
    );
    assert_eq!(
        add_path(&store, &d, options("unixfs-v1-2025")),
        "bafybeifiz6fzcx6otai3tt2yusxmtwma7zkkyvalu2yftsln6wzrunhvym"
    );
    let cases = [
        (
            5242,
            "QmXpu5viNAPVePE9o5uyKSNkwVSmGJxY8WLuBiNkLECGGG",
            "bafybeifdyc5mxyeioclpuziywuylkhopej7bzqbap2thmsjcljvgwdyp4y",
        ),
        (
            5243,
            "QmWQC57uCo2g12wzmvvucaq42Msfub1iCyJKdo77Ncr1Fx",
            "bafybeiebnr3qz2fdhkniptcfim5mjtm4uoifrhwoawhdwyzobdb543uire",
        ),
        (
            6553,
            "QmQJ4Sf8b2MKGjkFBU9uPXYxAsBLKgnBbmobwBR3V1i83T",
            "bafybeifhzkiuze5dygdvu42ycido3nlerzy6uqrhupaqngxdhy5shovngu",
        ),
        (
            6554,
            "QmaooUykp3UVRpSiobvN7vE9xangdwdCNnoc2JuY6cn4Zm",
            "bafybeifurikielilqvz7qtztsquu76ayggnp3rvh3wn27haz4pbdsocyne",
        ),
    ];
    for (n, v0, v1) in cases {
        let d = dir.path().join(format!("d{n}"));
        numbered(&d, n, 5);
        assert_eq!(
            add_path(&store, &d, options("unixfs-v0-2015")),
            v0,
            "{n} files v0"
        );
        assert_eq!(
            add_path(&store, &d, options("unixfs-v1-2025")),
            v1,
            "{n} files v1"
        );
    }
}
