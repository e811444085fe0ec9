//! The HTTP/JSON RPC API: `POST /api/v1/<command>` with a JSON body,
//! authorized by `Authorization: Bearer <token>` (the token file in
//! SHOAL_HOME is readable only by its owner). Errors are JSON
//! `{"error": "..."}` with a 4xx status for bad requests.

use crate::exchange::Progress;
use crate::ops::{self, OpError};
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use shoal_ipld::path::IpfsPath;
use shoal_ipld::Cid;
use shoal_net::{Multiaddr, NodeHandle, PeerId};
use shoal_store::BlockStore;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::Notify;

/// Largest request body accepted.
pub const MAX_BODY: usize = 1 << 20;

/// What the handlers share.
pub struct ApiState {
    pub store: Arc<BlockStore>,
    pub exchange: Arc<crate::exchange::Exchange>,
    pub net: NodeHandle,
    pub token: String,
    pub api_url: String,
    pub stop: Arc<Notify>,
    pub feeds: Arc<shoal_feeds::Feeds>,
    pub fnet: Arc<crate::feed_net::FeedNet>,
    pub follower: Arc<crate::follow::Follower>,
    pub home: PathBuf,
}

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/api/v1/{*command}", post(dispatch))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// An error reply.
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<OpError> for ApiError {
    fn from(e: OpError) -> Self {
        let status = if e.is_user_error() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        ApiError(status, e.to_string())
    }
}

pub(crate) fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

pub(crate) type Reply = Result<Response, ApiError>;

pub(crate) fn ok(v: impl serde::Serialize) -> Reply {
    Ok(Json(v).into_response())
}

fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // constant-time comparison
    given.is_some_and(|g| {
        g.len() == token.len() && g.bytes().zip(token.bytes()).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0
    })
}

pub(crate) fn args<T: DeserializeOwned>(command: &str, v: Value) -> Result<T, ApiError> {
    serde_json::from_value(v).map_err(|e| bad(format!("invalid arguments for '{command}': {e}")))
}

async fn dispatch(
    State(s): State<Arc<ApiState>>,
    UrlPath(command): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&headers, &s.token) {
        return ApiError(
            StatusCode::UNAUTHORIZED,
            "missing or wrong API token (see SHOAL_HOME/api.token)".into(),
        )
        .into_response();
    }
    let v: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => return bad(format!("malformed JSON: {e}")).into_response(),
        }
    };
    let result = match command.as_str() {
        "id" | "peers" | "connect" | "disconnect" | "dht/findprovs" | "dht/findpeer" | "stop" | "stats" => {
            net_command(&s, &command, v).await
        }
        "publish" | "feed/log" | "diff" | "follow" => crate::rpc_feeds::feed_command(&s, &command, v).await,
        _ => store_command(&s, &command, v).await,
    };
    result.unwrap_or_else(|e| e.into_response())
}

#[derive(Deserialize)]
struct AddrArg {
    addr: String,
}
#[derive(Deserialize)]
struct PeerArg {
    peer: String,
}
#[derive(Deserialize)]
struct CidArg {
    cid: String,
}

fn parse_peer(s: &str) -> Result<PeerId, ApiError> {
    s.parse().map_err(|e| bad(format!("'{s}' is not a peer id: {e}")))
}

async fn net_command(s: &ApiState, command: &str, v: Value) -> Reply {
    let net_err = |e: shoal_net::NetError| ApiError(StatusCode::BAD_GATEWAY, e.to_string());
    match command {
        "id" => {
            let me = s.net.peer_id();
            let addrs = s.net.listen_addrs().await.map_err(net_err)?;
            let addrs: Vec<String> = addrs.iter().map(|a| format!("{a}/p2p/{me}")).collect();
            ok(
                json!({ "peer_id": me.to_string(), "addrs": addrs, "api": s.api_url, "agent": format!("shoal/{}", env!("CARGO_PKG_VERSION")) }),
            )
        }
        "peers" => {
            let peers = s.net.peers().await.map_err(net_err)?;
            let list: Vec<Value> = peers
                .iter()
                .map(|p| {
                    let addrs: Vec<String> = p.addrs.iter().map(|(a, _)| a.to_string()).collect();
                    let dirs: Vec<&str> = p
                        .addrs
                        .iter()
                        .map(|(_, out)| if *out { "outbound" } else { "inbound" })
                        .collect();
                    json!({"peer": p.peer.to_string(), "addrs": addrs, "directions": dirs, "agent": p.agent})
                })
                .collect();
            ok(json!({ "peers": list }))
        }
        "connect" => {
            let a: AddrArg = args(command, v)?;
            let addr: Multiaddr = a
                .addr
                .parse()
                .map_err(|e| bad(format!("'{}' is not a multiaddr: {e}", a.addr)))?;
            let peer = s.net.connect(addr).await.map_err(net_err)?;
            ok(json!({ "connected": peer.to_string() }))
        }
        "disconnect" => {
            let a: PeerArg = args(command, v)?;
            let peer = parse_peer(&a.peer)?;
            let was = s.net.disconnect(peer).await.map_err(net_err)?;
            if !was {
                return Err(bad(format!("not connected to {peer}")));
            }
            ok(json!({ "disconnected": peer.to_string() }))
        }
        "dht/findprovs" => {
            let a: CidArg = args(command, v)?;
            let cid: Cid = a
                .cid
                .parse()
                .map_err(|e| bad(format!("'{}' is not a CID: {e}", a.cid)))?;
            let found = s
                .net
                .find_providers(cid.hash().to_bytes())
                .await
                .map_err(net_err)?;
            ok(json!({ "providers": found.iter().map(|p| p.to_string()).collect::<Vec<_>>() }))
        }
        "dht/findpeer" => {
            let a: PeerArg = args(command, v)?;
            let peer = parse_peer(&a.peer)?;
            let addrs = s.net.find_peer(peer).await.map_err(net_err)?;
            ok(
                json!({ "peer": peer.to_string(), "addrs": addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>() }),
            )
        }
        "stats" => ok(crate::stats::exchange(&s.exchange)),
        "stop" => {
            s.stop.notify_one();
            ok(json!({ "stopping": true }))
        }
        _ => unreachable!("routed above"),
    }
}

#[derive(Deserialize)]
struct PathArg {
    path: String,
}
#[derive(Deserialize)]
struct CatArg {
    path: String,
    #[serde(default)]
    offset: u64,
    length: Option<u64>,
}
#[derive(Deserialize)]
struct GetArg {
    path: String,
    output: PathBuf,
}
#[derive(Deserialize)]
struct PinAddArg {
    path: String,
    #[serde(default)]
    direct: bool,
}
#[derive(Deserialize)]
struct CarExportArg {
    path: String,
    output: PathBuf,
}
#[derive(Deserialize)]
struct CarImportArg {
    file: PathBuf,
    #[serde(default = "yes")]
    pin_roots: bool,
}
fn yes() -> bool {
    true
}

fn ipfs_path(s: &str) -> Result<IpfsPath, ApiError> {
    s.parse()
        .map_err(|e: shoal_ipld::path::PathError| bad(e.to_string()))
}

/// Runs a blocking store operation off the async threads.
async fn blocking<T: Send + 'static>(
    store: &Arc<BlockStore>,
    f: impl FnOnce(&BlockStore) -> Result<T, OpError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(ApiError::from)
}

/// How long a read waits for missing blocks from the network.
const FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

fn exchange_mode(v: &Value) -> Result<crate::exchange::Mode, ApiError> {
    match v.get("exchange").and_then(Value::as_str) {
        Some(m) => m.parse().map_err(bad),
        None => Ok(crate::exchange::Mode::Auto),
    }
}

/// Makes sure the DAG `path` names is local, fetching what is missing from
/// peers with the exchange the request names (`"exchange"`: auto, sync,
/// bitswap).
async fn ensure_local(s: &ApiState, path: &IpfsPath, v: &Value) -> Result<(), ApiError> {
    let progress = Arc::new(Progress::default());
    s.exchange
        .fetch(path, exchange_mode(v)?, FETCH_TIMEOUT, &progress)
        .await
        .map(drop)
        .map_err(|e| ApiError(StatusCode::NOT_FOUND, format!("{path}: {e}")))
}

#[derive(Deserialize)]
struct FetchArg {
    path: String,
    /// Also write the DAG here (as `get`), while it arrives.
    output: Option<PathBuf>,
}

/// `fetch`: makes a DAG local (and with `"output"`, writes it there as it
/// arrives) and streams progress as JSON lines (`{"blocks", "bytes"}` four
/// times a second), then one last line with `"done"` (the fetch report, and
/// `"written"` for an output) or `"error"`.
fn fetch_with_progress(s: &ApiState, v: Value) -> Reply {
    let a: FetchArg = args("fetch", v.clone())?;
    let path = ipfs_path(&a.path)?;
    if a.output.as_ref().is_some_and(|o| !o.is_absolute()) {
        return Err(bad("fetch: the output path must be absolute"));
    }
    let mode = exchange_mode(&v)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let exchange = s.exchange.clone();
    tokio::spawn(async move {
        let progress = Arc::new(Progress::default());
        let counts = |p: &Progress| json!({"blocks": p.blocks.load(Ordering::Relaxed), "bytes": p.bytes.load(Ordering::Relaxed)});
        let line = |v: Value| Ok(Bytes::from(format!("{v}\n")));
        let fetch = async {
            match &a.output {
                None => exchange
                    .fetch(&path, mode, FETCH_TIMEOUT, &progress)
                    .await
                    .map(|r| (json!(r), None)),
                Some(out) => {
                    let (cid, w, r) = exchange
                        .fetch_to(&path, out, mode, FETCH_TIMEOUT, &progress)
                        .await?;
                    let written = ops::GetReply {
                        cid: cid.to_string(),
                        output: out.clone(),
                        files: w.files,
                        dirs: w.dirs,
                        symlinks: w.symlinks,
                        bytes: w.bytes,
                    };
                    Ok((json!(r), Some(written)))
                }
            }
        };
        tokio::pin!(fetch);
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
        let result = loop {
            tokio::select! {
                r = &mut fetch => break r,
                _ = tick.tick() => {
                    if tx.send(line(counts(&progress))).await.is_err() {
                        return; // the client went away: the fetch is dropped
                    }
                }
            }
        };
        let mut last = counts(&progress);
        match result {
            Ok((report, written)) => {
                last["done"] = report;
                if let Some(w) = written {
                    last["written"] = json!(w);
                }
            }
            Err(e) => last["error"] = json!(format!("{path}: {e}")),
        }
        let _ = tx.send(line(last)).await;
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    Response::builder()
        .header("content-type", "application/x-ndjson")
        .body(Body::from_stream(stream))
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

async fn store_command(s: &ApiState, command: &str, v: Value) -> Reply {
    let st = &s.store;
    if matches!(command, "ls" | "cat" | "get" | "pin/add" | "car/export") {
        let path = v.get("path").and_then(Value::as_str).map(ipfs_path).transpose()?;
        if let Some(path) = path {
            ensure_local(s, &path, &v).await?;
        }
    }
    match command {
        "fetch" => fetch_with_progress(s, v),
        "add" => {
            let req: ops::AddRequest = args(command, v)?;
            if req.paths.iter().any(|p| !p.is_absolute()) {
                return Err(bad("add: paths must be absolute"));
            }
            let added = blocking(st, move |store| ops::add(store, &req, &mut |_| {})).await?;
            for a in &added {
                if let Ok(cid) = a.root.parse::<Cid>() {
                    let net = s.net.clone();
                    tokio::spawn(async move { net.provide(cid.hash().to_bytes()).await });
                }
            }
            ok(json!({ "added": added }))
        }
        "ls" => {
            let p = ipfs_path(&args::<PathArg>(command, v)?.path)?;
            ok(json!({ "entries": blocking(st, move |store| ops::ls(store, &p)).await? }))
        }
        "cat" => cat(st, args(command, v)?).await,
        "get" => {
            let a: GetArg = args(command, v)?;
            let p = ipfs_path(&a.path)?;
            ok(blocking(st, move |store| ops::get(store, &p, &a.output, &mut |_| {})).await?)
        }
        "pin/add" => {
            let a: PinAddArg = args(command, v)?;
            let p = ipfs_path(&a.path)?;
            ok(blocking(st, move |store| ops::pin_add(store, &p, a.direct)).await?)
        }
        "pin/rm" => {
            let p = ipfs_path(&args::<PathArg>(command, v)?.path)?;
            ok(json!({ "unpinned": blocking(st, move |store| ops::pin_rm(store, &p)).await? }))
        }
        "pin/ls" => ok(json!({ "pins": blocking(st, ops::pin_ls).await? })),
        "gc" => ok(blocking(st, ops::gc).await?),
        "verify" => ok(blocking(st, |store| ops::verify(store, &mut |_| {})).await?),
        "stat" => ok(blocking(st, ops::stat).await?),
        "car/export" => {
            let a: CarExportArg = args(command, v)?;
            let p = ipfs_path(&a.path)?;
            ok(blocking(st, move |store| {
                ops::car_export(store, &p, &a.output, &mut |_| {})
            })
            .await?)
        }
        "car/import" => {
            let a: CarImportArg = args(command, v)?;
            ok(blocking(st, move |store| {
                ops::car_import(store, &a.file, a.pin_roots, &mut |_| {})
            })
            .await?)
        }
        other => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("unknown command '{other}'"),
        )),
    }
}

/// Streams a file's bytes: the path is resolved first (so a missing file is
/// a clean 4xx), then a blocking reader feeds a bounded channel.
async fn cat(st: &Arc<BlockStore>, a: CatArg) -> Reply {
    let p = ipfs_path(&a.path)?;
    let resolved = {
        let p = p.clone();
        blocking(st, move |store| {
            let cid = shoal_unixfs::export::resolve(store, &p)?;
            // fail before streaming starts when the root is not here
            store.size(&cid)?.ok_or(shoal_store::StoreError::NotFound(cid))?;
            Ok(cid)
        })
        .await?
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    let store = st.clone();
    tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter(tx.clone());
        if let Err(e) = shoal_unixfs::export::cat(&store, &resolved, a.offset, a.length, &mut w, &mut |_| {})
        {
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    Response::builder()
        .header("content-type", "application/octet-stream")
        .body(Body::from_stream(stream))
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

struct ChannelWriter(tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
