//! The trustless formats (IPFS trustless gateway spec): a single raw block,
//! or a CAR v1 stream of the blocks on the path, then the target's DAG
//! depth-first (`order=dfs`), each block once (`dups=n`), identity blocks
//! left out.

use super::blocks::Blocks;
use super::http::{build, etag_matches, not_modified, stream_body};
use super::request::{Request, Scope};
use super::GatewayError;
use axum::body::Body;
use axum::http::header;
use axum::response::Response;
use shoal_ipld::car::{CarError, CarWriter};
use shoal_ipld::dagpb::PbNode;
use shoal_ipld::{Cid, Codec};
use shoal_unixfs::data::{NodeType, UnixFsData};
use std::collections::HashSet;
use std::io::{BufWriter, Write};

const CAR_TYPE: &str = "application/vnd.ipld.car; version=1; order=dfs; dups=n";
/// Small blocks are gathered into writes of about this size.
const CAR_BUFFER: usize = 64 << 10;

/// `application/vnd.ipld.raw`: the block the path names.
pub fn raw(mut blocks: Blocks, req: &Request, target: Cid) -> Result<Response, GatewayError> {
    let etag = format!("\"{target}.raw\"");
    if etag_matches(req.if_none_match.as_deref(), &etag) {
        return Ok(not_modified(&etag));
    }
    let data = blocks.block(&target)?;
    build(
        Response::builder()
            .header(header::CONTENT_TYPE, "application/vnd.ipld.raw")
            .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
            .header(header::ETAG, etag)
            .header(
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{target}.bin\""),
            )
            .header(header::CONTENT_LENGTH, data.len())
            .body(Body::from(data)),
    )
}

/// `application/vnd.ipld.car`, rooted at the path's root. `trail` is the
/// resolved path: the root, every block on the way, the target last.
pub fn car(mut blocks: Blocks, req: &Request, trail: Vec<Cid>) -> Result<Response, GatewayError> {
    let Some(&target) = trail.last() else {
        return Err(GatewayError::Internal("empty path trail".into()));
    };
    let etag = car_etag(&trail, req.scope);
    if etag_matches(req.if_none_match.as_deref(), &etag) {
        return Ok(not_modified(&etag));
    }
    if req.head {
        blocks.block(&target)?;
    } else {
        precheck(&mut blocks, target, req.scope)?;
    }
    let resp = Response::builder()
        .header(header::CONTENT_TYPE, CAR_TYPE)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::ETAG, etag)
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{target}.car\""),
        );
    if req.head {
        return build(resp.body(Body::empty()));
    }
    let scope = req.scope;
    build(resp.body(stream_body(blocks, move |blocks, out| {
        write_car(blocks, &trail, scope, out)
    })))
}

/// Makes what the CAR carries local before the status goes out, so that a
/// block neither here nor obtainable is an error status, not a cut stream.
/// (A sharded directory's shards are fetched as the walk reaches them.)
fn precheck(blocks: &mut Blocks, target: Cid, scope: Scope) -> Result<(), GatewayError> {
    let data = blocks.block(&target)?;
    let is_dir = || match PbNode::decode(&data).ok().and_then(|n| n.data) {
        Some(d) => {
            UnixFsData::decode(&d).is_ok_and(|d| matches!(d.kind, NodeType::Directory | NodeType::HamtShard))
        }
        None => false,
    };
    match scope {
        Scope::Block => Ok(()),
        Scope::Entity if target.codec() == Codec::Raw.code() || is_dir() => Ok(()),
        Scope::Entity | Scope::All => blocks.complete(&target),
    }
}

/// The target, the scope, and (for a path) a digest of the blocks on it.
fn car_etag(trail: &[Cid], scope: Scope) -> String {
    let target = trail.last().map(Cid::to_string).unwrap_or_default();
    if trail.len() == 1 {
        return format!("\"{target}.car.{}\"", scope.name());
    }
    let bytes: Vec<u8> = trail.iter().flat_map(Cid::to_bytes).collect();
    let digest = shoal_ipld::block::sha256(&bytes);
    let short: String = digest.digest()[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{target}.car.{}.{short}\"", scope.name())
}

fn write_car(
    blocks: &mut Blocks,
    trail: &[Cid],
    scope: Scope,
    out: &mut dyn Write,
) -> Result<(), GatewayError> {
    let (Some(&root), Some((&target, path))) = (trail.first(), trail.split_last()) else {
        return Err(GatewayError::Internal("empty path trail".into()));
    };
    let mut car = CarWriter::new(BufWriter::with_capacity(CAR_BUFFER, out), &[root]).map_err(car_err)?;
    let walked = walk(blocks, &mut car, path, target, scope);
    // what was written goes out even when the walk stopped early
    let flushed = car.finish().map_err(car_err)?.flush();
    walked?;
    flushed.map_err(|e| car_err(e.into()))
}

fn car_err(e: CarError) -> GatewayError {
    GatewayError::Internal(format!("writing the CAR: {e}"))
}

/// Writes the blocks on `path`, then the DAG below `target` depth-first.
fn walk<W: Write>(
    blocks: &mut Blocks,
    car: &mut CarWriter<W>,
    path: &[Cid],
    target: Cid,
    scope: Scope,
) -> Result<(), GatewayError> {
    let mut seen = HashSet::new();
    let mut emit = |cid: &Cid, data: &[u8]| {
        if cid.hash().code() == shoal_ipld::block::IDENTITY {
            return Ok(());
        }
        car.write_block(cid, data).map_err(car_err)
    };
    for cid in path {
        if seen.insert(*cid) {
            emit(cid, &blocks.block(cid)?)?;
        }
    }
    let mut stack = vec![target];
    while let Some(cid) = stack.pop() {
        if !seen.insert(cid) {
            continue;
        }
        let data = blocks.block(&cid)?;
        emit(&cid, &data)?;
        let children = follow(&cid, &data, scope)?;
        stack.extend(children.into_iter().rev());
    }
    Ok(())
}

/// The links of `cid` a walk in `scope` descends into.
fn follow(cid: &Cid, data: &[u8], scope: Scope) -> Result<Vec<Cid>, GatewayError> {
    let bad = |e: String| GatewayError::Internal(format!("block {cid}: {e}"));
    if scope == Scope::Block || Codec::of(cid).map_err(|e| bad(e.to_string()))? == Codec::Raw {
        return Ok(Vec::new());
    }
    let node = PbNode::decode(data).map_err(|e| bad(e.to_string()))?;
    if scope == Scope::All {
        return Ok(node.links.iter().map(|l| l.hash).collect());
    }
    let unixfs = node.data.as_deref().ok_or_else(|| bad("no UnixFS data".into()))?;
    let kind = UnixFsData::decode(unixfs).map_err(|e| bad(e.to_string()))?.kind;
    Ok(match kind {
        // a file's whole DAG
        NodeType::File | NodeType::Raw => node.links.iter().map(|l| l.hash).collect(),
        // a sharded directory's own shards, not its entries
        NodeType::HamtShard => node
            .links
            .iter()
            .filter(|l| l.name.as_deref().is_some_and(|n| n.len() == 2))
            .map(|l| l.hash)
            .collect(),
        _ => Vec::new(),
    })
}
