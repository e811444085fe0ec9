//! The HTTP gateway: read-only `GET`/`HEAD` access to UnixFS content by CID
//! (`/ipfs/CID[/path]`) or through a feed's snapshot
//! (`/feeds/KEY[@SEQ][/path]`).
//!
//! Files are streamed with ranges and validators; a directory serves its
//! `index.html` or a listing (HTML, or JSON on request); the trustless
//! formats (`application/vnd.ipld.raw` and `.car`) return verifiable blocks.
//! Blocks missing from the store are fetched through the exchange when the
//! gateway has one, within a per-request time budget.
//!
//! Each request runs in one blocking task (the store is synchronous);
//! streamed bodies are produced in another and cross a bounded channel.

mod blocks;
mod dir;
mod file;
mod http;
mod request;
#[cfg(test)]
mod tests;
mod trustless;

use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use blocks::Blocks;
use request::{Format, Request, Root};
use shoal_ipld::path::IpfsPath;
use shoal_ipld::Cid;
use shoal_store::BlockStore;
use shoal_unixfs::export::ExportError;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Requests served at once; more get 503.
const MAX_IN_FLIGHT: usize = 128;

/// A feed's snapshot, as the gateway needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedFeed {
    pub root: Cid,
    pub seq: u64,
    /// Unix seconds.
    pub time: u64,
}

/// Looks up feeds (implemented by the node's feed service). `seq = None` =
/// latest snapshot. Called from a blocking task.
pub trait FeedResolver: Send + Sync + 'static {
    fn resolve(&self, feed: &str, seq: Option<u64>) -> Result<ResolvedFeed, GatewayError>;
}

/// What the gateway serves from.
pub struct GatewayState {
    pub store: Arc<BlockStore>,
    pub feeds: Arc<dyn FeedResolver>,
    /// Fetches missing blocks from peers; `None` serves the local store only.
    pub exchange: Option<Arc<crate::exchange::Exchange>>,
}

/// Why a request failed; each variant is one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// 400: a malformed CID, feed key, path or parameter.
    #[error("{0}")]
    BadRequest(String),
    /// 404: no such feed, snapshot, file or directory.
    #[error("{0}")]
    NotFound(String),
    /// 502: a block is neither in the store nor obtainable from peers.
    #[error("{0}")]
    Unavailable(String),
    /// 504: fetching from peers ran out of time.
    #[error("{0}")]
    Timeout(String),
    /// 503: too many requests in flight.
    #[error("the gateway is busy ({MAX_IN_FLIGHT} requests in flight); retry shortly")]
    Busy,
    /// 500: the store failed, or the content is not valid UnixFS.
    #[error("{0}")]
    Internal(String),
}

impl GatewayError {
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::BadRequest(_) => StatusCode::BAD_REQUEST,
            GatewayError::NotFound(_) => StatusCode::NOT_FOUND,
            GatewayError::Unavailable(_) => StatusCode::BAD_GATEWAY,
            GatewayError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            GatewayError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let body = format!("{self}\n");
        (
            self.status(),
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            body,
        )
            .into_response()
    }
}

impl From<ExportError> for GatewayError {
    fn from(e: ExportError) -> Self {
        match e {
            ExportError::NotFound(_) | ExportError::NotADirectory(_) => GatewayError::NotFound(e.to_string()),
            ExportError::Store(shoal_store::StoreError::NotFound(cid)) => {
                GatewayError::Unavailable(format!("block {cid} is not in the store"))
            }
            e => GatewayError::Internal(e.to_string()),
        }
    }
}

struct Shared {
    state: Arc<GatewayState>,
    permits: Arc<Semaphore>,
}

/// The gateway's routes (`GET` and `HEAD`).
pub fn router(state: Arc<GatewayState>) -> Router {
    let shared = Arc::new(Shared {
        state,
        permits: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
    });
    Router::new()
        .route("/ipfs/{*rest}", get(handle))
        .route("/feeds/{*rest}", get(handle))
        .with_state(shared)
}

async fn handle(State(shared): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let req = match Request::parse(&method, &uri, &headers) {
        Ok(req) => req,
        Err(e) => return e.into_response(),
    };
    let Ok(permit) = shared.permits.clone().try_acquire_owned() else {
        return GatewayError::Busy.into_response();
    };
    let state = shared.state.clone();
    tokio::task::spawn_blocking(move || {
        let blocks = Blocks::new(&state, permit);
        respond(state.feeds.as_ref(), blocks, &req).unwrap_or_else(IntoResponse::into_response)
    })
    .await
    .unwrap_or_else(|e| GatewayError::Internal(format!("the request handler failed: {e}")).into_response())
}

/// Resolves the request to a CID and answers in the format asked for.
fn respond(feeds: &dyn FeedResolver, mut blocks: Blocks, req: &Request) -> Result<Response, GatewayError> {
    let (root, feed_time) = match &req.root {
        Root::Ipfs(cid) => (*cid, None),
        Root::Feed { key, seq } => {
            let feed = feeds.resolve(key, *seq)?;
            (feed.root, Some(feed.time))
        }
    };
    let path = IpfsPath {
        root,
        segments: req.segments.clone(),
    };
    let trail = blocks.resolve(&path)?;
    let Some(&target) = trail.last() else {
        return Err(GatewayError::Internal("path resolution returned nothing".into()));
    };
    match req.format {
        Format::Raw => return trustless::raw(blocks, req, target),
        Format::Car => return trustless::car(blocks, req, trail),
        Format::Auto | Format::Json => {}
    }
    let node = blocks.load(&target)?;
    if node.is_dir() {
        dir::serve(blocks, req, target, feed_time)
    } else {
        let name = req.segments.last().map_or("", String::as_str);
        file::serve(blocks, req, target, node, name, feed_time)
    }
}
