//! Helpers shared by the tests in this folder: the `shoal` binary, temporary
//! homes, the JS reference harness, and a deterministic random generator.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `shoal` binary built beside these tests (`$SHOAL_BIN` overrides).
pub fn shoal_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SHOAL_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let bin = dir.join("shoal");
    assert!(
        bin.exists(),
        "{} not found: build it first (cargo build -p shoal-cli)",
        bin.display()
    );
    bin
}

/// A temporary SHOAL_HOME and scratch space.
pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Home {
        Home {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(shoal_bin());
        c.env("SHOAL_HOME", self.home()).args(args);
        c
    }

    /// Runs shoal; returns the output whatever the exit status.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run shoal")
    }

    /// Runs shoal and insists on success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "shoal {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// Runs shoal and insists on success; returns stdout as bytes.
    pub fn ok_bytes(&self, args: &[&str]) -> Vec<u8> {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "shoal {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Runs shoal expecting failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "shoal {args:?} should have failed");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

/// A daemon started by a test; killed when dropped.
pub struct Daemon {
    pub child: std::process::Child,
    pub peer_id: String,
    pub addr: String,
    pub api: String,
    pub gateway: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Home {
    /// Starts `shoal daemon` on loopback (free ports) with `config` as its
    /// config.toml, and waits until it reports ready.
    pub fn daemon(&self, config: &str) -> Daemon {
        use std::io::BufRead;
        std::fs::create_dir_all(self.home()).unwrap();
        std::fs::write(self.home().join("config.toml"), config).unwrap();
        let started = std::time::Instant::now();
        let mut child = self
            .cmd(&[
                "--json",
                "daemon",
                "--listen",
                "/ip4/127.0.0.1/tcp/0",
                "--api",
                "127.0.0.1:0",
                "--gateway",
                "127.0.0.1:0",
            ])
            .env("SHOAL_LOG", "error")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("daemon said: {line}"));
        eprintln!("daemon ready in {:?}", started.elapsed());
        Daemon {
            child,
            peer_id: v["peer_id"].as_str().unwrap().into(),
            addr: v["addrs"][0].as_str().unwrap().into(),
            api: v["api"].as_str().unwrap().into(),
            gateway: v["gateway"].as_str().unwrap().into(),
        }
    }
}

/// The folder of the JS reference harness.
pub fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop/js")
}

/// Runs a script of the JS harness with node; panics with its stderr on failure.
pub fn node(script: &str, args: &[&str]) -> String {
    let dir = js_dir();
    assert!(
        dir.join("node_modules").exists(),
        "the JS reference harness is not installed: run `npm ci --prefix tests/interop/js`"
    );
    let out = Command::new("node")
        .arg(dir.join(script))
        .args(args)
        .output()
        .expect("node is installed");
    assert!(
        out.status.success(),
        "node {script} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// xorshift64*: small, deterministic, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        out.truncate(n);
        out
    }
}

/// A plain HTTP/1.1 response.
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// GET `url` (http://HOST:PORT/path) with extra headers; the connection
/// closes after the reply (no chunked encoding to undo).
pub fn http_get(url: &str, headers: &[(&str, &str)]) -> HttpReply {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let mut req = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n");
    for (k, v) in headers {
        req += &format!("{k}: {v}\r\n");
    }
    req += "\r\n";
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header end");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    HttpReply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// Every file under `dir` (relative path → bytes), for comparing trees.
pub fn tree(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            if p.is_dir() {
                out.insert(rel + "/", vec![]);
                stack.push(p);
            } else {
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// A running `shoal-liar` (killed when dropped) and its address.
pub struct Liar(pub std::process::Child, pub String);

impl Drop for Liar {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `shoal-liar` over a store holding `tree` (imported offline).
pub fn liar(tree: &Path) -> Liar {
    use std::io::BufRead;
    let home = Box::leak(Box::new(Home::new()));
    home.ok(&["add", "-r", "-Q", tree.to_str().unwrap()]);
    let bin = shoal_bin().with_file_name("shoal-liar");
    let mut child = std::process::Command::new(bin)
        .arg(home.home().join("store"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("shoal-liar (cargo build -p shoal-tests --bins)");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("liar said: {line}"));
    Liar(child, v["addr"].as_str().unwrap().into())
}
