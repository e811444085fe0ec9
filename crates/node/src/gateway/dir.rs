//! Serving a directory: its `index.html` if it has one, else a listing as
//! HTML (or JSON when asked). HTML answers need the URL to end with '/'
//! (relative links resolve against it), so other URLs are redirected.

use super::blocks::Blocks;
use super::http::build;
use super::request::{Format, Request};
use super::{file, GatewayError};
use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::json;
use shoal_ipld::path::IpfsPath;
use shoal_ipld::Cid;
use shoal_store::BlockStore;
use shoal_unixfs::data::NodeType;
use shoal_unixfs::export::{DirLink, Node};
use std::fmt::Write;

/// Most entries listed.
pub const MAX_LISTING: usize = 100_000;

/// Characters of a name left as they are in a link.
const NAME: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// One listed entry.
struct Entry {
    name: String,
    cid: Cid,
    /// Content bytes of a file or symlink; a directory's cumulative DAG size.
    size: u64,
    kind: &'static str,
}

pub fn serve(
    mut blocks: Blocks,
    req: &Request,
    dir: Cid,
    feed_time: Option<u64>,
) -> Result<Response, GatewayError> {
    if req.format == Format::Auto {
        if !req.slash {
            return redirect(req);
        }
        if let Some((cid, node)) = index(&mut blocks, dir)? {
            return file::serve(blocks, req, cid, node, "index.html", feed_time);
        }
    }
    let mut links = blocks.list(&dir)?;
    let truncated = links.len() > MAX_LISTING;
    links.truncate(MAX_LISTING);
    let entries: Vec<Entry> = links.into_iter().map(|l| describe(&blocks.store, l)).collect();
    let (kind, body) = match req.format {
        Format::Json => ("application/json", json_listing(dir, &entries, truncated)),
        _ => (
            "text/html; charset=utf-8",
            html_listing(req, dir, &entries, truncated),
        ),
    };
    build(
        Response::builder()
            .header(header::CONTENT_TYPE, kind)
            .body(Body::from(body)),
    )
}

/// 301 to the same URL with a '/' (relative, so it works behind any prefix).
fn redirect(req: &Request) -> Result<Response, GatewayError> {
    let mut location = format!("./{}/", req.last_raw);
    if let Some(q) = &req.query {
        location.push('?');
        location.push_str(q);
    }
    Ok((StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, location)]).into_response())
}

/// The directory's `index.html`, if it has one that is not a directory.
fn index(blocks: &mut Blocks, dir: Cid) -> Result<Option<(Cid, Node)>, GatewayError> {
    let path = IpfsPath {
        root: dir,
        segments: vec!["index.html".into()],
    };
    let cid = match blocks.resolve(&path) {
        Ok(trail) => match trail.last() {
            Some(&cid) => cid,
            None => return Ok(None),
        },
        Err(GatewayError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let node = blocks.load(&cid)?;
    Ok((!node.is_dir()).then_some((cid, node)))
}

/// An entry's kind and size, from the store only: a listing does not fetch
/// every entry from peers, so one that is not local shows as "unknown".
fn describe(store: &BlockStore, link: DirLink) -> Entry {
    let (kind, size) = match shoal_unixfs::get::describe(store, &link.cid) {
        Ok((NodeType::Directory | NodeType::HamtShard, _)) => ("directory", link.tsize),
        Ok((NodeType::Symlink, size)) => ("symlink", size),
        Ok((NodeType::File | NodeType::Raw, size)) => ("file", size),
        Ok((NodeType::Metadata, _)) | Err(_) => ("unknown", link.tsize),
    };
    Entry {
        name: link.name,
        cid: link.cid,
        size,
        kind,
    }
}

fn json_listing(dir: Cid, entries: &[Entry], truncated: bool) -> String {
    let list: Vec<_> = entries
        .iter()
        .map(|e| json!({"name": e.name, "cid": e.cid.to_string(), "size": e.size, "type": e.kind}))
        .collect();
    let mut v = json!({"cid": dir.to_string(), "entries": list});
    if truncated {
        v["truncated"] = json!(true);
    }
    v.to_string()
}

fn html_listing(req: &Request, dir: Cid, entries: &[Entry], truncated: bool) -> String {
    let title = escape(&format!("{}/", req.display_path()));
    let mut out = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of {title}</title></head>\n\
         <body><h1>Index of {title}</h1>\n<table>\n"
    );
    if !req.segments.is_empty() {
        out.push_str("<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
    }
    for e in entries {
        let slash = if e.kind == "directory" { "/" } else { "" };
        let name = escape(&e.name);
        // names the gateway would refuse in a path get no link
        let cell = match shoal_unixfs::get::check_name(&e.name) {
            Ok(()) => format!(
                "<a href=\"./{}{slash}\">{name}{slash}</a>",
                utf8_percent_encode(&e.name, NAME)
            ),
            Err(_) => name,
        };
        let _ = writeln!(
            out,
            "<tr><td>{cell}</td><td>{}</td><td>{}</td></tr>",
            e.size, e.cid
        );
    }
    out.push_str("</table>\n");
    if truncated {
        let _ = writeln!(out, "<p>Only the first {MAX_LISTING} entries are listed.</p>");
    }
    let _ = write!(out, "<p>{dir}</p>\n</body></html>\n");
    out
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
