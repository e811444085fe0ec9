//! HTTP details: validators, dates, ranges, content types, and bodies
//! streamed from a blocking producer through a bounded channel.

use super::blocks::Blocks;
use super::GatewayError;
use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use std::io::{self, Write};
use std::time::{Duration, UNIX_EPOCH};
use tokio::sync::mpsc;

/// Chunks buffered between a producer and the connection.
const STREAM_DEPTH: usize = 8;
/// Latest time an HTTP date can show (9999-12-31T23:59:59Z).
const MAX_HTTP_DATE: i64 = 253_402_300_799;

/// Whether an `If-None-Match` value matches `etag` (weak comparison).
pub fn etag_matches(if_none_match: Option<&str>, etag: &str) -> bool {
    if_none_match.is_some_and(|v| {
        v.split(',')
            .map(str::trim)
            .any(|t| t == "*" || t.trim_start_matches("W/") == etag)
    })
}

/// 304 for a request whose validator matched.
pub fn not_modified(etag: &str) -> Response {
    (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response()
}

/// Unix seconds as an HTTP date, if representable.
pub fn http_date(secs: i64) -> Option<String> {
    let secs = u64::try_from(secs).ok().filter(|&s| s as i64 <= MAX_HTTP_DATE)?;
    Some(httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs)))
}

/// The media type for a file name, from a short table of extensions.
pub fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map_or("", |(_, e)| e).to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "txt" => "text/plain; charset=utf-8",
        "json" => "application/json",
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "gz" | "tgz" => "application/gzip",
        "xz" => "application/x-xz",
        "bz2" => "application/x-bzip2",
        "zst" => "application/zstd",
        "deb" => "application/vnd.debian.binary-package",
        "whl" | "zip" => "application/zip",
        "tar" => "application/x-tar",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

/// What a `Range` header asks of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Ranged {
    /// No (usable) range: the whole representation.
    Full,
    /// Bytes `first..=last`.
    Part(u64, u64),
    Unsatisfiable,
}

/// Parses `bytes=a-b`, `bytes=a-` and `bytes=-n`. Multiple ranges and
/// malformed headers are ignored (the whole file is sent), as RFC 9110 allows.
pub fn parse_range(value: Option<&str>, size: u64) -> Ranged {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return Ranged::Full;
    };
    let Some((a, b)) = spec.split_once('-').filter(|_| !spec.contains(',')) else {
        return Ranged::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        return match b.parse::<u64>() {
            Ok(0) => Ranged::Unsatisfiable,
            Ok(_) if size == 0 => Ranged::Unsatisfiable,
            Ok(n) => Ranged::Part(size - n.min(size), size - 1),
            Err(_) => Ranged::Full,
        };
    }
    let Ok(first) = a.parse::<u64>() else {
        return Ranged::Full;
    };
    let last = match b {
        "" => u64::MAX,
        b => match b.parse::<u64>() {
            Ok(last) if last >= first => last,
            _ => return Ranged::Full,
        },
    };
    if first >= size {
        return Ranged::Unsatisfiable;
    }
    Ranged::Part(first, last.min(size - 1))
}

/// Turns a response builder's error into ours.
pub fn build(r: Result<Response, axum::http::Error>) -> Result<Response, GatewayError> {
    r.map_err(|e| GatewayError::Internal(format!("building the response: {e}")))
}

/// A body written by `produce` in a blocking task. An error after the
/// response has started aborts the connection (the client sees a short body).
pub fn stream_body(
    mut blocks: Blocks,
    produce: impl FnOnce(&mut Blocks, &mut dyn Write) -> Result<(), GatewayError> + Send + 'static,
) -> Body {
    let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(STREAM_DEPTH);
    tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter(tx.clone());
        if let Err(e) = produce(&mut blocks, &mut w) {
            tracing::debug!("gateway: response stream ended early: {e}");
            let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    Body::from_stream(stream)
}

struct ChannelWriter(mpsc::Sender<Result<Bytes, io::Error>>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(Some("bytes=0-9"), 100), Ranged::Part(0, 9));
        assert_eq!(parse_range(Some("bytes=90-"), 100), Ranged::Part(90, 99));
        assert_eq!(parse_range(Some("bytes=90-500"), 100), Ranged::Part(90, 99));
        assert_eq!(parse_range(Some("bytes=-10"), 100), Ranged::Part(90, 99));
        assert_eq!(parse_range(Some("bytes=-1000"), 100), Ranged::Part(0, 99));
        assert_eq!(parse_range(Some("bytes=100-"), 100), Ranged::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 100), Ranged::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-5"), 0), Ranged::Unsatisfiable);
        for ignored in [
            None,
            Some("bytes=5-1"),
            Some("bytes=0-1,5-6"),
            Some("items=0-1"),
            Some("bytes=x-"),
        ] {
            assert_eq!(parse_range(ignored, 100), Ranged::Full, "{ignored:?}");
        }
    }

    #[test]
    fn validators_and_dates() {
        assert!(etag_matches(Some("\"a\", W/\"b\""), "\"b\""));
        assert!(etag_matches(Some("*"), "\"b\""));
        assert!(!etag_matches(Some("\"a\""), "\"b\""));
        assert_eq!(http_date(0).as_deref(), Some("Thu, 01 Jan 1970 00:00:00 GMT"));
        assert_eq!(http_date(-1), None);
        assert_eq!(http_date(i64::MAX), None);
        assert!(http_date(MAX_HTTP_DATE).is_some());
    }
}
