//! The feed commands of the RPC API: `publish`, `feed/log`, `diff`.

use crate::feed_ops::{self, PublishRequest};
use crate::rpc::{args, bad, ok, ApiError, ApiState, Reply};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

#[derive(Deserialize)]
struct FeedArg {
    feed: String,
}
#[derive(Deserialize)]
struct FollowArg {
    feed: String,
    into: Option<std::path::PathBuf>,
    #[serde(default)]
    peers: Vec<String>,
    #[serde(default)]
    watch: bool,
    timeout_secs: Option<u64>,
}
#[derive(Deserialize)]
struct DiffArg {
    a: String,
    b: String,
}

/// Runs a blocking feed operation off the async threads.
async fn blocking<T: Send + 'static>(
    s: &Arc<ApiState>,
    f: impl FnOnce(&ApiState) -> Result<T, crate::ops::OpError> + Send + 'static,
) -> Result<T, ApiError> {
    let state = s.clone();
    tokio::task::spawn_blocking(move || f(&state))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(ApiError::from)
}

pub(crate) async fn feed_command(s: &Arc<ApiState>, command: &str, v: Value) -> Reply {
    match command {
        "publish" => {
            let req: PublishRequest = args(command, v)?;
            if !req.dir.is_absolute() {
                return Err(bad("publish: the directory must be absolute"));
            }
            let reply = blocking(s, move |s| {
                feed_ops::publish(&s.store, &s.feeds, &s.home, &req, &mut |_| {})
            })
            .await?;
            if !reply.unchanged {
                if let Ok(id) = reply.feed.parse::<shoal_feeds::FeedId>() {
                    s.fnet.published(id).await.map_err(|e| bad(e.to_string()))?;
                }
                if let Ok(cid) = reply.snapshot.root.parse::<shoal_ipld::Cid>() {
                    let net = s.net.clone();
                    tokio::spawn(async move { net.provide(cid.hash().to_bytes()).await });
                }
            }
            ok(reply)
        }
        "follow" => follow(s, args(command, v)?).await,
        "feed/log" => {
            let a: FeedArg = args(command, v)?;
            ok(json!({ "snapshots": blocking(s, move |s| feed_ops::log(&s.feeds, &s.home, &a.feed)).await? }))
        }
        "diff" => {
            let a: DiffArg = args(command, v)?;
            let changes = blocking(s, move |s| {
                feed_ops::diff(&s.store, &s.feeds, &s.home, &a.a, &a.b)
            })
            .await?;
            ok(json!({ "changes": changes }))
        }
        other => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("unknown command '{other}'"),
        )),
    }
}

/// Longest a follow may be told to wait.
const MAX_FOLLOW: u64 = 24 * 3600;

async fn follow(s: &Arc<ApiState>, a: FollowArg) -> Reply {
    let (id, seq) = feed_ops::parse_feed(&s.home, &a.feed).map_err(ApiError::from)?;
    if seq.is_some() {
        return Err(bad(
            "follow: name the feed without @SEQ (a follow tracks the newest snapshot)",
        ));
    }
    if a.into.as_ref().is_some_and(|d| !d.is_absolute()) {
        return Err(bad("follow: the directory must be absolute"));
    }
    let peers = a
        .peers
        .iter()
        .map(|p| {
            p.parse()
                .map_err(|e| bad(format!("'{p}' is not a multiaddr: {e}")))
        })
        .collect::<Result<Vec<shoal_net::Multiaddr>, _>>()?;
    let timeout = std::time::Duration::from_secs(a.timeout_secs.unwrap_or(600).min(MAX_FOLLOW));
    let reply = s
        .follower
        .follow_once(id, a.into, &peers, timeout)
        .await
        .map_err(|e| ApiError(StatusCode::BAD_GATEWAY, e.to_string()))?;
    if a.watch {
        let state = &s.fnet.feeds.state;
        if let Ok(Some(mut f)) = state.follow(&id.0) {
            f.watch = true;
            state.set_follow(&id.0, &f).map_err(|e| bad(e.to_string()))?;
        }
        s.follower.watch(id);
    }
    ok(reply)
}
