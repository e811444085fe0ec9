//! The gateway over real HTTP on loopback: a store in a tempdir with a
//! small imported tree, a map-backed feed resolver, and a minimal HTTP/1.1
//! client (so requests go out exactly as written).

use super::http::http_date;
use super::*;
use shoal_ipld::car::CarReader;
use shoal_store::Walk;
use shoal_unixfs::{AddOptions, ImportOptions, ShardEstimate};
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;

/// The test double for the node's feed service.
struct Feeds(HashMap<String, Vec<ResolvedFeed>>);

impl FeedResolver for Feeds {
    fn resolve(&self, feed: &str, seq: Option<u64>) -> Result<ResolvedFeed, GatewayError> {
        if !feed.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(GatewayError::BadRequest(format!("'{feed}' is not a feed key")));
        }
        let snaps = self
            .0
            .get(feed)
            .ok_or_else(|| GatewayError::NotFound(format!("no feed {feed}")))?;
        let snap = match seq {
            None => snaps.last(),
            Some(s) => snaps.iter().find(|f| f.seq == s),
        };
        snap.cloned()
            .ok_or_else(|| GatewayError::NotFound(format!("feed {feed} has no snapshot {seq:?}")))
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    addr: SocketAddr,
    store: Arc<BlockStore>,
    /// A flat tree: hello.txt, big.bin, empty.txt, simple/{index.html,pkg/index.html}, docs/.
    root: Cid,
    /// A HAMT-sharded directory of 64 files.
    sharded: Cid,
    big: Vec<u8>,
}

const FEED_TIME: u64 = 1_700_000_000;
const MTIME: i64 = 1_600_000_000;

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn import(store: &BlockStore, path: &Path, import: ImportOptions) -> Cid {
    let opts = AddOptions {
        import,
        recursive: true,
        ..AddOptions::default()
    };
    shoal_unixfs::add(store, path, &opts, &mut |_| {}).unwrap().root
}

fn small_chunks() -> ImportOptions {
    ImportOptions {
        chunk_size: 1024,
        max_links: 4,
        ..ImportOptions::default()
    }
}

/// Imports the trees into a fresh store.
fn stocked_store(dir: &Path) -> (Arc<BlockStore>, Cid, Cid, Vec<u8>) {
    let store = Arc::new(BlockStore::open(dir.join("store")).unwrap());
    let tree = dir.join("tree");
    let big: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
    write(&tree.join("hello.txt"), b"hello, gateway\n");
    write(&tree.join("big.bin"), &big);
    write(&tree.join("empty.txt"), b"");
    write(&tree.join("simple/index.html"), b"<a href=\"pkg/\">pkg</a>\n");
    write(
        &tree.join("simple/pkg/index.html"),
        b"<a href=\"pkg-1.0.tar.gz\">pkg-1.0</a>\n",
    );
    for name in ["a.txt", "b c.txt", "x&y.txt"] {
        write(&tree.join("docs").join(name), name.as_bytes());
    }
    std::os::unix::fs::symlink("a.txt", tree.join("docs/link")).unwrap();
    let root = import(&store, &tree, small_chunks());
    let many = dir.join("many");
    for i in 0..64 {
        write(
            &many.join(format!("f{i:02}.txt")),
            format!("file {i}\n").as_bytes(),
        );
    }
    let f00 = std::fs::File::options()
        .write(true)
        .open(many.join("f00.txt"))
        .unwrap();
    f00.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(MTIME as u64))
        .unwrap();
    let sharding = ImportOptions {
        shard_estimate: ShardEstimate::LinksBytes,
        shard_threshold: 256,
        preserve_mtime: true,
        ..ImportOptions::default()
    };
    let sharded = import(&store, &many, sharding);
    (store, root, sharded, big)
}

async fn serve(state: GatewayState) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(Arc::new(state))).await });
    addr
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (store, root, sharded, big) = stocked_store(dir.path());
    let snap = |root, seq, time| ResolvedFeed { root, seq, time };
    let feeds = Feeds(HashMap::from([(
        "mirror".to_string(),
        vec![snap(sharded, 1, 1000), snap(root, 2, FEED_TIME)],
    )]));
    let addr = serve(GatewayState {
        store: store.clone(),
        feeds: Arc::new(feeds),
        exchange: None,
    })
    .await;
    Fixture {
        _dir: dir,
        addr,
        store,
        root,
        sharded,
        big,
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request on a fresh connection; `target` is sent exactly as given.
async fn http(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let raw = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        let mut raw = Vec::new();
        // an aborted response may end in a reset: keep what arrived
        let _ = s.read_to_end(&mut raw);
        raw
    })
    .await
    .unwrap();
    parse_reply(&raw)
}

async fn get(addr: SocketAddr, target: &str) -> Reply {
    http(addr, "GET", target, &[]).await
}

fn parse_reply(raw: &[u8]) -> Reply {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let head = std::str::from_utf8(&raw[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| l.split_once(':').unwrap())
        .map(|(n, v)| (n.to_owned(), v.trim().to_owned()))
        .collect();
    let mut reply = Reply {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    };
    if reply.header("transfer-encoding") == Some("chunked") {
        reply.body = dechunk(&reply.body);
    }
    reply
}

/// Decodes a chunked body; a body cut short yields what arrived whole.
fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&rest[..eol])
            .unwrap()
            .split(';')
            .next()
            .unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        let Some(chunk) = rest.get(eol + 2..eol + 2 + size).filter(|_| size > 0) else {
            break;
        };
        out.extend_from_slice(chunk);
        rest = rest.get(eol + 2 + size + 2..).unwrap_or_default();
    }
    out
}

/// The CID of `path` below `root`, resolved from the store.
fn cid_at(f: &Fixture, root: Cid, path: &str) -> Cid {
    let p: IpfsPath = format!("{root}/{path}").parse().unwrap();
    shoal_unixfs::export::resolve(&f.store, &p).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_ranges_and_validators() {
    let f = fixture().await;
    let big_cid = cid_at(&f, f.root, "big.bin");
    let url = format!("/ipfs/{}/big.bin", f.root);
    let r = get(f.addr, &url).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, f.big);
    assert_eq!(r.header("content-length"), Some("10000"));
    assert_eq!(r.header("etag"), Some(format!("\"{big_cid}\"").as_str()));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert_eq!(r.header("last-modified"), None, "no mtime, not a feed");
    // the file's own CID serves the same bytes
    assert_eq!(get(f.addr, &format!("/ipfs/{big_cid}")).await.body, f.big);

    let range = |spec: &'static str| {
        let url = url.clone();
        async move { http(f.addr, "GET", &url, &[("Range", spec)]).await }
    };
    let r = range("bytes=1000-2999").await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &f.big[1000..3000]);
    assert_eq!(r.header("content-range"), Some("bytes 1000-2999/10000"));
    assert_eq!(r.header("content-length"), Some("2000"));
    let r = range("bytes=-100").await;
    assert_eq!((r.status, &r.body[..]), (206, &f.big[9900..]));
    assert_eq!(r.header("content-range"), Some("bytes 9900-9999/10000"));
    let r = range("bytes=9990-").await;
    assert_eq!((r.status, &r.body[..]), (206, &f.big[9990..]));
    let r = range("bytes=10000-").await;
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */10000"));

    let etag = format!("\"{big_cid}\"");
    let r = http(f.addr, "GET", &url, &[("If-None-Match", &etag)]).await;
    assert_eq!((r.status, r.body.len()), (304, 0));
    let r = http(f.addr, "HEAD", &url, &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("10000"));
    assert!(r.body.is_empty());

    let r = get(f.addr, &format!("/ipfs/{}/hello.txt", f.root)).await;
    assert_eq!(r.text(), "hello, gateway\n");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    let r = get(f.addr, &format!("/ipfs/{}/empty.txt", f.root)).await;
    assert_eq!((r.status, r.header("content-length")), (200, Some("0")));
    assert!(r.body.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directories_redirect_serve_index_and_list() {
    let f = fixture().await;
    let r = get(f.addr, &format!("/ipfs/{}/simple?x=1", f.root)).await;
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("./simple/?x=1"));
    let r = get(f.addr, &format!("/ipfs/{}", f.root)).await;
    assert_eq!(r.header("location"), Some(format!("./{}/", f.root).as_str()));

    let r = get(f.addr, &format!("/ipfs/{}/simple/pkg/", f.root)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "<a href=\"pkg-1.0.tar.gz\">pkg-1.0</a>\n");
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let index = cid_at(&f, f.root, "simple/pkg/index.html");
    assert_eq!(r.header("etag"), Some(format!("\"{index}\"").as_str()));

    let r = get(f.addr, &format!("/ipfs/{}/docs/", f.root)).await;
    assert_eq!(r.status, 200);
    let html = r.text();
    for needle in [
        "href=\"./a.txt\"",
        "href=\"./b%20c.txt\"",
        ">x&amp;y.txt<",
        "href=\"../\"",
    ] {
        assert!(html.contains(needle), "{needle} not in {html}");
    }

    let r = http(
        f.addr,
        "GET",
        &format!("/ipfs/{}/", f.root),
        &[("Accept", "application/json")],
    )
    .await;
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["cid"], f.root.to_string());
    let entry = |name: &str| {
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .cloned()
    };
    let big = entry("big.bin").unwrap();
    assert_eq!(
        (big["type"].as_str(), big["size"].as_u64()),
        (Some("file"), Some(10_000))
    );
    assert_eq!(big["cid"], cid_at(&f, f.root, "big.bin").to_string());
    assert_eq!(entry("simple").unwrap()["type"], "directory");
    // ?format=json needs no slash and no Accept
    let r = get(f.addr, &format!("/ipfs/{}/docs?format=json", f.root)).await;
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let names: Vec<&str> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a.txt", "b c.txt", "link", "x&y.txt"]);
    assert_eq!(v["entries"][2]["type"], "symlink");
    assert_eq!(
        get(f.addr, &format!("/ipfs/{}/docs/link", f.root)).await.text(),
        "a.txt"
    );
    // HTML preferred over JSON: the listing
    let accept = [("Accept", "text/html, application/json;q=0.5")];
    let r = http(f.addr, "GET", &format!("/ipfs/{}/docs/", f.root), &accept).await;
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_directories() {
    let f = fixture().await;
    let node = shoal_unixfs::export::load(&f.store, &f.sharded).unwrap();
    assert_eq!(
        node.kind(),
        shoal_unixfs::data::NodeType::HamtShard,
        "the fixture should be sharded"
    );
    let r = get(f.addr, &format!("/ipfs/{}/?format=json", f.sharded)).await;
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let names: Vec<&str> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    let want: Vec<String> = (0..64).map(|i| format!("f{i:02}.txt")).collect();
    assert_eq!(names, want);
    let html = get(f.addr, &format!("/ipfs/{}/", f.sharded)).await.text();
    assert!(html.contains("href=\"./f63.txt\""), "{html}");
    let r = get(f.addr, &format!("/ipfs/{}/f42.txt", f.sharded)).await;
    assert_eq!(r.text(), "file 42\n");
    let r = get(f.addr, &format!("/ipfs/{}/f00.txt", f.sharded)).await;
    assert_eq!(r.header("last-modified"), http_date(MTIME).as_deref());
    assert_eq!(
        get(f.addr, &format!("/ipfs/{}/f64.txt", f.sharded)).await.status,
        404
    );
}

/// Every CID of the DAG under `root`.
fn dag(store: &BlockStore, root: &Cid) -> HashSet<Cid> {
    let mut walk = Walk::default();
    store.walk(root, &mut walk).unwrap();
    assert!(walk.missing.is_empty());
    walk.reached
        .iter()
        .map(|b| Cid::try_from(&b[..]).unwrap())
        .collect()
}

/// Reads a CAR (each block is verified against its CID): roots and CIDs in order.
fn read_car(body: &[u8]) -> (Vec<Cid>, Vec<Cid>) {
    let mut car = CarReader::new(body).unwrap();
    let roots = car.roots().to_vec();
    let cids = car.by_ref().map(|b| b.unwrap().cid).collect();
    (roots, cids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trustless_raw_and_car() {
    let f = fixture().await;
    let r = http(
        f.addr,
        "GET",
        &format!("/ipfs/{}", f.root),
        &[("Accept", "application/vnd.ipld.raw")],
    )
    .await;
    assert_eq!(r.status, 200);
    shoal_ipld::block::verify(&f.root, &r.body).unwrap();
    assert_eq!(r.header("content-type"), Some("application/vnd.ipld.raw"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("etag"), Some(format!("\"{}.raw\"", f.root).as_str()));
    let r = get(f.addr, &format!("/ipfs/{}/hello.txt?format=raw", f.root)).await;
    assert_eq!(r.text(), "hello, gateway\n", "a raw leaf's block is the file");

    for (root, accept) in [
        (f.root, "application/vnd.ipld.car"),
        (f.sharded, "application/vnd.ipld.car; version=1"),
    ] {
        let r = http(f.addr, "GET", &format!("/ipfs/{root}"), &[("Accept", accept)]).await;
        assert_eq!(r.status, 200);
        assert!(r
            .header("content-type")
            .unwrap()
            .starts_with("application/vnd.ipld.car; version=1"));
        let (roots, cids) = read_car(&r.body);
        assert_eq!(roots, [root]);
        assert_eq!(cids[0], root, "depth-first from the root");
        assert_eq!(cids.iter().collect::<HashSet<_>>().len(), cids.len(), "dups=n");
        assert_eq!(cids.into_iter().collect::<HashSet<_>>(), dag(&f.store, &root));
    }

    // a path: the blocks on the way, then the target's DAG
    let big = cid_at(&f, f.root, "big.bin");
    let r = get(f.addr, &format!("/ipfs/{}/big.bin?format=car", f.root)).await;
    let (roots, cids) = read_car(&r.body);
    assert_eq!(roots, [f.root]);
    assert_eq!(cids[..2], [f.root, big]);
    assert_eq!(
        cids[1..].iter().copied().collect::<HashSet<_>>(),
        dag(&f.store, &big)
    );
    let r = get(
        f.addr,
        &format!(
            "/ipfs/{}/simple/pkg/index.html?format=car&dag-scope=block",
            f.root
        ),
    )
    .await;
    let want = ["", "simple", "simple/pkg", "simple/pkg/index.html"].map(|p| match p {
        "" => f.root,
        p => cid_at(&f, f.root, p),
    });
    assert_eq!(read_car(&r.body).1, want);
    // entity: a file whole, a directory without its entries
    let r = get(f.addr, &format!("/ipfs/{big}?format=car&dag-scope=entity")).await;
    assert_eq!(read_car(&r.body).1.len(), dag(&f.store, &big).len());
    let r = get(f.addr, &format!("/ipfs/{}/?format=car&dag-scope=entity", f.root)).await;
    assert_eq!(read_car(&r.body).1, [f.root]);
    let r = http(f.addr, "HEAD", &format!("/ipfs/{}?format=car", f.root), &[]).await;
    assert_eq!((r.status, r.body.len()), (200, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feeds_resolve_to_snapshots() {
    let f = fixture().await;
    let hello = cid_at(&f, f.root, "hello.txt");
    for url in ["/feeds/mirror@2/hello.txt", "/feeds/mirror/hello.txt"] {
        let r = get(f.addr, url).await;
        assert_eq!((r.status, r.text().as_str()), (200, "hello, gateway\n"), "{url}");
        assert_eq!(r.header("etag"), Some(format!("\"{hello}\"").as_str()));
        assert_eq!(r.header("last-modified"), http_date(FEED_TIME as i64).as_deref());
    }
    assert_eq!(get(f.addr, "/feeds/mirror@1/f01.txt").await.text(), "file 1\n");
    let r = get(f.addr, "/feeds/mirror/simple/pkg/").await;
    assert!(r.text().contains("pkg-1.0.tar.gz"));
    let r = get(f.addr, "/feeds/mirror@1").await;
    assert_eq!(r.header("location"), Some("./mirror@1/"));
    let r = get(f.addr, "/feeds/mirror?format=car").await;
    assert_eq!(read_car(&r.body).0, [f.root]);
    for (url, status) in [
        ("/feeds/nope/x", 404),
        ("/feeds/mirror@9/", 404),
        ("/feeds/bad!key/", 400),
        ("/feeds/mirror@x/", 400),
    ] {
        let r = get(f.addr, url).await;
        assert_eq!(r.status, status, "{url}: {}", r.text());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_and_missing_content() {
    let f = fixture().await;
    let root = f.root;
    let long = format!("/ipfs/{root}/{}", "a/".repeat(3000));
    let cbor = Cid::new_v1(0x71, shoal_ipld::block::sha256(b"dag-cbor"));
    for (url, status) in [
        ("/ipfs/notacid".to_string(), 400),
        (format!("/ipfs/{cbor}"), 400),
        (format!("/ipfs/{root}/%2e%2e/x"), 400),
        (format!("/ipfs/{root}/../x"), 400),
        (format!("/ipfs/{root}/a%2Fb"), 400),
        (format!("/ipfs/{root}/%FF"), 400),
        (format!("/ipfs/{root}/?format=bogus"), 400),
        (format!("/ipfs/{root}/?format=car&dag-scope=most"), 400),
        (long, 400),
        (format!("/ipfs/{root}/missing.txt"), 404),
        (format!("/ipfs/{root}/hello.txt/x"), 404),
        ("/elsewhere".to_string(), 404),
    ] {
        let r = get(f.addr, &url).await;
        assert_eq!(r.status, status, "{url}: {}", r.text());
    }
    assert_eq!(
        http(f.addr, "POST", &format!("/ipfs/{root}"), &[]).await.status,
        405
    );

    // blocks that are not here, and no exchange to fetch them
    let absent = shoal_ipld::block::cid_of(shoal_ipld::Codec::Raw, 1, b"never stored");
    for url in [format!("/ipfs/{absent}"), format!("/ipfs/{absent}?format=raw")] {
        let r = get(f.addr, &url).await;
        assert_eq!(r.status, 502, "{url}: {}", r.text());
        assert!(r.text().contains("not in the local store"), "{}", r.text());
    }
    let big = cid_at(&f, root, "big.bin");
    let leaf = *dag(&f.store, &big).iter().find(|c| c.codec() == 0x55).unwrap();
    assert!(f.store.delete(&leaf).unwrap());
    for url in [
        format!("/ipfs/{root}/big.bin"),
        format!("/ipfs/{leaf}?format=raw"),
    ] {
        let r = get(f.addr, &url).await;
        assert_eq!(r.status, 502, "{url}: {}", r.text());
    }
    let r = get(f.addr, &format!("/ipfs/{big}?format=car")).await;
    assert_eq!(r.status, 502, "{}", r.text());
    let r = get(f.addr, &format!("/ipfs/{big}?format=car&dag-scope=block")).await;
    assert_eq!(
        read_car(&r.body).1,
        [big],
        "the block scope needs only the target"
    );
}

async fn start_node(dir: &Path, name: &str, store: Arc<BlockStore>) -> Arc<crate::exchange::Exchange> {
    let key = shoal_net::identity::load_or_create(&dir.join(format!("{name}.key"))).unwrap();
    let cfg = shoal_net::NetConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        mdns: false,
        kad_mode: shoal_net::KadMode::Server,
        ..shoal_net::NetConfig::default()
    };
    let (net, _task) = shoal_net::start(key, cfg).await.unwrap();
    Arc::new(crate::exchange::Exchange::start(store, net))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_missing_blocks_through_the_exchange() {
    let dir = tempfile::tempdir().unwrap();
    let (store, root, _, big) = stocked_store(dir.path());
    let provider = start_node(dir.path(), "a", store).await;
    let empty = Arc::new(BlockStore::open(dir.path().join("empty")).unwrap());
    let exchange = start_node(dir.path(), "b", empty.clone()).await;
    let a = &provider.net;
    let addr = a.listen_addrs().await.unwrap()[0].clone();
    let addr = format!("{addr}/p2p/{}", a.peer_id()).parse().unwrap();
    exchange.net.connect(addr).await.unwrap();
    let gateway = serve(GatewayState {
        store: empty.clone(),
        feeds: Arc::new(Feeds(HashMap::new())),
        exchange: Some(exchange),
    })
    .await;

    let r = get(gateway, &format!("/ipfs/{root}/big.bin")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, big);
    let r = get(gateway, &format!("/ipfs/{root}/simple/pkg/")).await;
    assert!(r.text().contains("pkg-1.0.tar.gz"), "{}", r.text());
    let r = get(gateway, &format!("/ipfs/{root}/docs/?format=car")).await;
    let docs = shoal_unixfs::export::resolve(&empty, &format!("{root}/docs").parse().unwrap()).unwrap();
    assert_eq!(read_car(&r.body).1.len(), 1 + dag(&empty, &docs).len());
}
