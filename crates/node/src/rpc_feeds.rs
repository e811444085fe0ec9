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
            ok(reply)
        }
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
