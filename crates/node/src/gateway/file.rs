//! Serving a file (or a symlink's target text): validators, ranges, and
//! the bytes streamed from the store.

use super::blocks::Blocks;
use super::http::{
    build, content_type, etag_matches, http_date, not_modified, parse_range, stream_body, Ranged,
};
use super::request::Request;
use super::GatewayError;
use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use shoal_ipld::Cid;
use shoal_unixfs::data::NodeType;
use shoal_unixfs::export::{self, Node};

/// Serves the file `cid` (decoded as `node`) under the name `name`.
pub fn serve(
    mut blocks: Blocks,
    req: &Request,
    cid: Cid,
    node: Node,
    name: &str,
    feed_time: Option<u64>,
) -> Result<Response, GatewayError> {
    let etag = format!("\"{cid}\"");
    if etag_matches(req.if_none_match.as_deref(), &etag) {
        return Ok(not_modified(&etag));
    }
    let mtime = match &node {
        Node::Pb { data, .. } => data.mtime.map(|m| m.secs),
        Node::Raw(_) => None,
    };
    let last_modified = mtime
        .or_else(|| feed_time.and_then(|t| i64::try_from(t).ok()))
        .and_then(http_date);
    let mut resp = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::ACCEPT_RANGES, "bytes");
    if let Some(date) = last_modified {
        resp = resp.header(header::LAST_MODIFIED, date);
    }
    match node {
        Node::Pb { data, .. } if data.kind == NodeType::Symlink => {
            let resp = resp.header(header::CONTENT_TYPE, "text/plain; charset=utf-8");
            return build(resp.body(Body::from(data.data)));
        }
        Node::Pb { data, .. } if data.kind == NodeType::Metadata => {
            return Err(GatewayError::Internal(format!(
                "{cid}: UnixFS metadata nodes are not supported"
            )));
        }
        _ => {}
    }
    let size = node.file_size();
    let (status, start, len) = match parse_range(req.range.as_deref(), size) {
        Ranged::Full => (StatusCode::OK, 0, size),
        Ranged::Part(first, last) => {
            resp = resp.header(header::CONTENT_RANGE, format!("bytes {first}-{last}/{size}"));
            (StatusCode::PARTIAL_CONTENT, first, last - first + 1)
        }
        Ranged::Unsatisfiable => return Ok(unsatisfiable(size)),
    };
    let resp = resp
        .status(status)
        .header(header::CONTENT_TYPE, content_type(name))
        .header(header::CONTENT_LENGTH, len);
    if req.head || len == 0 {
        return build(resp.body(Body::empty()));
    }
    // everything is local before the status goes out
    blocks.complete(&cid)?;
    let body = stream_body(blocks, move |blocks, out| {
        export::cat(&blocks.store, &cid, start, Some(len), out, &mut |_| {})?;
        Ok(())
    });
    build(resp.body(body))
}

fn unsatisfiable(size: u64) -> Response {
    let range = format!("bytes */{size}");
    let msg = format!("the range is outside the file's {size} bytes\n");
    (
        StatusCode::RANGE_NOT_SATISFIABLE,
        [(header::CONTENT_RANGE, range)],
        msg,
    )
        .into_response()
}
