//! The daemon: start, RPC through the CLI, bad RPC requests, graceful stop
//! on SIGTERM, and two daemons talking over real loopback transports.

mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};
use support::{Daemon, Home};

fn start(home: &Home) -> Daemon {
    home.daemon("[network]\nmdns = false\n")
}

/// A raw HTTP request to the API; returns (status, body).
fn http(api: &str, path: &str, token: &str, body: &str) -> (u16, String) {
    let host = api.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp[9..12].parse().unwrap();
    (status, resp.split("\r\n\r\n").nth(1).unwrap_or("").to_owned())
}

#[test]
fn cli_commands_go_through_the_daemon_and_it_stops_cleanly() {
    let home = Home::new();
    let d = start(&home);
    let id: serde_json::Value = serde_json::from_str(&home.ok(&["--json", "id"])).unwrap();
    assert_eq!(id["peer_id"], d.peer_id.as_str());
    // the store belongs to the daemon now; the CLI still works through it
    let f = home.path().join("f");
    std::fs::write(&f, b"through the daemon").unwrap();
    let cid = home.ok(&["add", "-Q", f.to_str().unwrap()]).trim().to_owned();
    assert_eq!(home.ok_bytes(&["cat", &cid]), b"through the daemon");
    let err = home.fails(&[
        "cat",
        "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
    ]);
    assert!(err.contains("no peer has"), "{err}");
    home.ok(&["verify"]);
    let pins: serde_json::Value = serde_json::from_str(&home.ok(&["--json", "pin", "ls"])).unwrap();
    assert_eq!(pins["pins"][0]["cid"], cid.as_str());
    // SIGTERM: the daemon exits, removes its API file, and the store opens
    let mut d = d;
    unsafe { libc::kill(d.child.id() as i32, libc::SIGTERM) };
    let status = d.child.wait().unwrap();
    assert!(status.success(), "daemon exited with {status}");
    assert!(!home.home().join("api").exists());
    assert_eq!(home.ok_bytes(&["cat", &cid]), b"through the daemon");
    assert!(home.fails(&["id"]).contains("no shoal daemon is running"));
}

#[test]
fn bad_rpc_requests_get_clear_4xx_answers() {
    let home = Home::new();
    let d = start(&home);
    let token = std::fs::read_to_string(home.home().join("api.token")).unwrap();
    let (status, body) = http(&d.api, "/api/v1/id", "wrong", "{}");
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("token"), "{body}");
    let (status, body) = http(&d.api, "/api/v1/ls", &token, "{not json");
    assert_eq!(status, 400);
    assert!(body.contains("malformed JSON"), "{body}");
    let (status, body) = http(&d.api, "/api/v1/frobnicate", &token, "{}");
    assert_eq!(status, 404);
    assert!(body.contains("unknown command 'frobnicate'"), "{body}");
    let (status, body) = http(&d.api, "/api/v1/ls", &token, "{\"path\": 5}");
    assert_eq!(status, 400);
    assert!(body.contains("invalid arguments for 'ls'"), "{body}");
    let (status, body) = http(&d.api, "/api/v1/connect", &token, "{\"addr\": \"nonsense\"}");
    assert_eq!(status, 400);
    assert!(body.contains("not a multiaddr"), "{body}");
    let big = format!("{{\"path\": \"{}\"}}", "x".repeat(2 << 20));
    let (status, _) = http(&d.api, "/api/v1/ls", &token, &big);
    assert_eq!(status, 413);
    // the daemon keeps serving
    let (status, _) = http(&d.api, "/api/v1/id", &token, "");
    assert_eq!(status, 200);
    let mode = std::fs::metadata(home.home().join("api.token")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(mode.permissions().mode() & 0o777, 0o600);
}

#[test]
fn two_daemons_connect_and_disconnect() {
    let (ha, hb) = (Home::new(), Home::new());
    let (_a, b) = (start(&ha), start(&hb));
    let out: serde_json::Value = serde_json::from_str(&ha.ok(&["--json", "connect", &b.addr])).unwrap();
    assert_eq!(out["connected"], b.peer_id.as_str());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let peers: serde_json::Value = serde_json::from_str(&hb.ok(&["--json", "peers"])).unwrap();
        let agent = peers["peers"][0]["agent"].as_str().unwrap_or("").to_owned();
        if agent.starts_with("shoal/") {
            break;
        }
        assert!(Instant::now() < deadline, "identify never ran: {peers}");
        std::thread::sleep(Duration::from_millis(50));
    }
    ha.ok(&["disconnect", &b.peer_id]);
    assert!(ha.fails(&["disconnect", &b.peer_id]).contains("not connected"));
    assert!(ha
        .fails(&["connect", "/ip4/127.0.0.1/tcp/1"])
        .contains("connecting"));
}
