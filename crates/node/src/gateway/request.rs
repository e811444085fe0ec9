//! Parsing a request: which content (a CID or a feed snapshot), the path
//! below it, and what the client asks for (format, DAG scope, range,
//! validator). Everything is bounded and checked before any store access.

use super::GatewayError;
use axum::http::{header, HeaderMap, Method, Uri};
use percent_encoding::percent_decode_str;
use shoal_ipld::path::{MAX_PATH_LEN, MAX_SEGMENTS};
use shoal_ipld::Cid;

/// Longest URL path accepted, percent-encoded (each decoded byte may take three).
const MAX_URL_PATH: usize = 3 * MAX_PATH_LEN + 512;
/// Longest CID text or feed key.
const MAX_ROOT_TEXT: usize = 256;
/// Longest query string.
const MAX_QUERY: usize = 1024;

/// Where the path starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    Ipfs(Cid),
    /// A feed key; `seq: None` is the latest snapshot.
    Feed {
        key: String,
        seq: Option<u64>,
    },
}

/// The response format asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// File bytes, a directory's index.html or an HTML listing.
    Auto,
    /// A directory listing as JSON (files are served as `Auto`).
    Json,
    /// `application/vnd.ipld.raw`: the block the path names.
    Raw,
    /// `application/vnd.ipld.car`: the path's blocks and the DAG below.
    Car,
}

/// How much of the DAG below the path a CAR carries (`dag-scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The target block only.
    Block,
    /// What it takes to read the target: a whole file, or a directory's own
    /// blocks (HAMT shards included) without its entries.
    Entity,
    /// The whole DAG below the target.
    All,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::Block => "block",
            Scope::Entity => "entity",
            Scope::All => "all",
        }
    }
}

/// A parsed request.
#[derive(Debug)]
pub struct Request {
    pub root: Root,
    /// Decoded path segments below the root.
    pub segments: Vec<String>,
    /// The URL path ends with '/'.
    pub slash: bool,
    /// The last component of the URL path as sent (for relative redirects).
    pub last_raw: String,
    pub query: Option<String>,
    pub format: Format,
    pub scope: Scope,
    pub range: Option<String>,
    pub if_none_match: Option<String>,
    pub head: bool,
}

fn bad(msg: impl Into<String>) -> GatewayError {
    GatewayError::BadRequest(msg.into())
}

impl Request {
    pub fn parse(method: &Method, uri: &Uri, headers: &HeaderMap) -> Result<Request, GatewayError> {
        let path = uri.path();
        if path.len() > MAX_URL_PATH {
            return Err(bad(format!(
                "the request path is longer than {MAX_URL_PATH} bytes"
            )));
        }
        let (feed, rest) = match (path.strip_prefix("/ipfs/"), path.strip_prefix("/feeds/")) {
            (Some(rest), _) => (false, rest),
            (_, Some(rest)) => (true, rest),
            _ => return Err(GatewayError::NotFound(format!("{path}: not a gateway path"))),
        };
        let mut parts = rest.split('/').filter(|p| !p.is_empty());
        let first = parts
            .next()
            .ok_or_else(|| bad("the path names no CID or feed key"))?;
        let first = decode(first)?;
        if first.len() > MAX_ROOT_TEXT {
            return Err(bad(format!(
                "a CID or feed key longer than {MAX_ROOT_TEXT} bytes"
            )));
        }
        let root = if feed {
            parse_feed(&first)?
        } else {
            Root::Ipfs(parse_cid(&first)?)
        };
        let segments = parse_segments(parts)?;
        let query = uri.query().map(str::to_owned);
        let (format, scope) = parse_query(query.as_deref().unwrap_or(""))?;
        let format = format.unwrap_or_else(|| format_from_accept(headers));
        let text = |name| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        Ok(Request {
            root,
            segments,
            slash: rest.ends_with('/'),
            last_raw: rest
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or("")
                .to_owned(),
            query,
            format,
            scope: scope.unwrap_or(Scope::All),
            range: text(header::RANGE),
            if_none_match: text(header::IF_NONE_MATCH),
            head: method == Method::HEAD,
        })
    }

    /// The decoded path, for display (`/ipfs/CID/a/b` or `/feeds/KEY@SEQ/a`).
    pub fn display_path(&self) -> String {
        let mut out = match &self.root {
            Root::Ipfs(cid) => format!("/ipfs/{cid}"),
            Root::Feed { key, seq: None } => format!("/feeds/{key}"),
            Root::Feed { key, seq: Some(s) } => format!("/feeds/{key}@{s}"),
        };
        for s in &self.segments {
            out.push('/');
            out.push_str(s);
        }
        out
    }
}

fn decode(raw: &str) -> Result<String, GatewayError> {
    percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| bad("the path is not UTF-8 once percent-decoded"))
}

fn parse_cid(text: &str) -> Result<Cid, GatewayError> {
    let cid = Cid::try_from(text).map_err(|e| bad(format!("'{text}' is not a CID: {e}")))?;
    shoal_ipld::block::check_supported(&cid).map_err(|e| bad(e.to_string()))?;
    Ok(cid)
}

fn parse_feed(text: &str) -> Result<Root, GatewayError> {
    let (key, seq) = match text.rsplit_once('@') {
        Some((key, seq)) => {
            let seq = seq
                .parse()
                .map_err(|_| bad(format!("'{seq}' is not a snapshot number (KEY@SEQ)")))?;
            (key, Some(seq))
        }
        None => (text, None),
    };
    if key.is_empty() {
        return Err(bad("the feed key is empty"));
    }
    Ok(Root::Feed {
        key: key.to_owned(),
        seq,
    })
}

fn parse_segments<'a>(parts: impl Iterator<Item = &'a str>) -> Result<Vec<String>, GatewayError> {
    let mut segments = Vec::new();
    let mut len = 0;
    for raw in parts {
        let seg = decode(raw)?;
        len += seg.len() + 1;
        if len > MAX_PATH_LEN || segments.len() == MAX_SEGMENTS {
            return Err(bad(format!(
                "the path is longer than {MAX_PATH_LEN} bytes or {MAX_SEGMENTS} segments"
            )));
        }
        if seg == "." || seg == ".." || seg.contains(['/', '\0']) {
            return Err(bad(format!(
                "path segment '{}' is not allowed ('.', '..', and names with '/' or NUL are refused)",
                seg.escape_debug()
            )));
        }
        segments.push(seg);
    }
    Ok(segments)
}

fn parse_query(query: &str) -> Result<(Option<Format>, Option<Scope>), GatewayError> {
    if query.len() > MAX_QUERY {
        return Err(bad(format!("the query string is longer than {MAX_QUERY} bytes")));
    }
    let (mut format, mut scope) = (None, None);
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "format" => {
                format = Some(match value {
                    "raw" => Format::Raw,
                    "car" => Format::Car,
                    "json" => Format::Json,
                    v => return Err(bad(format!("format '{v}' is not supported (raw, car or json)"))),
                })
            }
            "dag-scope" => {
                scope = Some(match value {
                    "block" => Scope::Block,
                    "entity" => Scope::Entity,
                    "all" => Scope::All,
                    v => {
                        return Err(bad(format!(
                            "dag-scope '{v}' is not supported (block, entity or all)"
                        )))
                    }
                })
            }
            _ => {}
        }
    }
    Ok((format, scope))
}

/// The first media type in `Accept` that names a format of ours (HTML
/// counts as the default format, so a browser's `text/html` first wins).
fn format_from_accept(headers: &HeaderMap) -> Format {
    let types = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    for t in types {
        match t.as_str() {
            "application/vnd.ipld.raw" => return Format::Raw,
            "application/vnd.ipld.car" => return Format::Car,
            "application/json" => return Format::Json,
            "text/html" => return Format::Auto,
            _ => {}
        }
    }
    Format::Auto
}
