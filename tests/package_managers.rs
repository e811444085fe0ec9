//! Real package managers against a follower's gateway: pip installs wheels
//! from a PEP 503 index and apt-get downloads a .deb from a Debian-style
//! repository, each published as a feed by one daemon and followed by
//! another.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::{Daemon, Home};

const CONFIG: &str = "[network]\nmdns = false\n";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Publishes `tree` as feed `name` on a new daemon, follows it from a
/// second one; returns (publisher, follower, key).
fn publish_and_follow(name: &str, tree: &Path) -> ((Home, Daemon), (Home, Daemon), String) {
    let a = Home::new();
    let da = a.daemon(CONFIG);
    let key: Value = serde_json::from_str(&a.ok(&["--json", "feed", "create", name])).unwrap();
    let key = key["key"].as_str().unwrap().to_owned();
    a.ok(&["publish", tree.to_str().unwrap(), "--feed", name]);
    let b = Home::new();
    let db = b.daemon(CONFIG);
    b.ok(&["follow", &key, "--peer", &da.addr, "--timeout", "30"]);
    ((a, da), (b, db), key)
}

#[test]
fn pip_installs_from_a_followed_feed() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("pypi");
    run(Command::new("python3")
        .arg(fixtures().join("pypi_repo.py"))
        .arg(&repo));
    let (_a, (_b, db), key) = publish_and_follow("pypi", &repo);
    let index = format!("{}/feeds/{key}/simple/", db.gateway);
    let target = work.path().join("site");
    run(Command::new("python3")
        .env("PIP_CONFIG_FILE", "/dev/null")
        .args([
            "-m",
            "pip",
            "install",
            "--isolated",
            "--no-cache-dir",
            "--disable-pip-version-check",
        ])
        .args(["--no-input", "--index-url", &index, "--target"])
        .arg(&target)
        .arg("shoalpkg-util"));
    let msg = run(Command::new("python3")
        .env("PYTHONPATH", &target)
        .args(["-c", "import shoalpkg_demo; print(shoalpkg_demo.MESSAGE)"]));
    assert_eq!(
        msg.trim(),
        "shoalpkg-demo 1.1",
        "the newest version, pulled in as a dependency"
    );
}

#[test]
fn apt_downloads_from_a_followed_feed() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("apt");
    run(Command::new("bash")
        .arg(fixtures().join("apt_repo.sh"))
        .arg(&repo));
    let (_a, (_b, db), key) = publish_and_follow("debian", &repo);
    let url = format!("{}/feeds/{key}/", db.gateway);
    let deb = run(Command::new("bash")
        .arg(fixtures().join("apt_download.sh"))
        .args([&url, "shoal-hello"]));
    let deb = deb.trim();
    assert_eq!(
        std::fs::read(deb).unwrap(),
        std::fs::read(repo.join("pool/main/s/shoal-hello/shoal-hello_1.0_all.deb")).unwrap()
    );
    let text = run(Command::new("sh").arg("-c").arg(format!(
        "dpkg-deb --fsys-tarfile '{deb}' | tar -xO ./usr/share/shoal-hello/hello.txt"
    )));
    assert_eq!(text.trim(), "hello from shoal-hello 1.0");
}
