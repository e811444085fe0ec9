//! car export / import.

use crate::{home, output};
use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::json;
use shoal_ipld::car::{CarReader, CarWriter};
use shoal_ipld::path::IpfsPath;
use shoal_ipld::{dagpb, Cid};
use shoal_store::{BlockStore, PinKind};
use shoal_unixfs::export;
use std::collections::HashSet;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum CarCmd {
    /// Write a DAG (every block reachable from the root, depth-first) to a CAR v1 file.
    Export {
        path: IpfsPath,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Import a CAR v1 file, verifying every block; nothing is kept if any block is bad.
    Import {
        file: PathBuf,
        /// Pin the roots named in the header (when their DAG is complete).
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        pin_roots: bool,
    },
}

pub fn run(cmd: CarCmd, json: bool) -> Result<()> {
    let store = home::open_store()?;
    match cmd {
        CarCmd::Export { path, output } => export_car(&store, &path, &output, json),
        CarCmd::Import { file, pin_roots } => import_car(&store, &file, pin_roots, json),
    }
}

fn export_car(store: &BlockStore, path: &IpfsPath, out: &PathBuf, json: bool) -> Result<()> {
    let root = export::resolve(store, path)?;
    let (_, total) = store.stat()?;
    let bar = output::bytes_bar(total, json, "exporting");
    let tmp = out.with_extension("car.partial");
    let file = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut w = CarWriter::new(std::io::BufWriter::with_capacity(1 << 20, file), &[root])?;
    let mut seen = HashSet::new();
    let mut stack = vec![root];
    let (mut blocks, mut bytes) = (0u64, 0u64);
    while let Some(cid) = stack.pop() {
        if !seen.insert(cid) {
            continue;
        }
        let data = store
            .get(&cid)
            .with_context(|| format!("exporting {path}: block {cid}"))?;
        let links = dagpb::links(&cid, &data).with_context(|| format!("reading links of {cid}"))?;
        stack.extend(links.into_iter().rev());
        w.write_block(&cid, &data)?;
        blocks += 1;
        bytes += data.len() as u64;
        bar.inc(data.len() as u64);
    }
    let buf = w.finish()?;
    buf.into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all())
        .context("flushing the CAR")?;
    std::fs::rename(&tmp, out).with_context(|| format!("renaming to {}", out.display()))?;
    bar.finish_and_clear();
    if json {
        output::json(&json!({"root": root.to_string(), "output": out, "blocks": blocks, "bytes": bytes}));
    } else {
        println!(
            "exported {root}: {blocks} blocks, {bytes} bytes to {}",
            out.display()
        );
    }
    Ok(())
}

fn import_car(store: &BlockStore, file: &PathBuf, pin_roots: bool, json: bool) -> Result<()> {
    let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let total = f.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = output::bytes_bar(total, json, "importing");
    let mut reader = CarReader::new(std::io::BufReader::with_capacity(1 << 20, f))
        .with_context(|| format!("reading {}", file.display()))?;
    let roots: Vec<Cid> = reader.roots().to_vec();
    let mut batch = store.batch();
    let (mut blocks, mut bytes) = (0u64, 0u64);
    while let Some(block) = reader
        .next_block()
        .with_context(|| format!("reading {}", file.display()))?
    {
        dagpb::links(&block.cid, &block.data)
            .with_context(|| format!("reading {}: block {} is malformed", file.display(), block.cid))?;
        batch.put_verified(&block.cid, &block.data)?;
        blocks += 1;
        bytes += block.data.len() as u64;
        bar.inc(block.data.len() as u64 + 40);
    }
    // only a CAR read to its end without error is kept
    batch.commit()?;
    bar.finish_and_clear();
    let mut pinned = Vec::new();
    if pin_roots {
        for root in &roots {
            match store.pin_add(root, PinKind::Recursive) {
                Ok(()) => pinned.push(root.to_string()),
                Err(e) => eprintln!("warning: not pinning {root}: {e}"),
            }
        }
    }
    let roots: Vec<String> = roots.iter().map(|r| r.to_string()).collect();
    if json {
        output::json(&json!({"roots": roots, "blocks": blocks, "bytes": bytes, "pinned": pinned}));
    } else {
        println!(
            "imported {blocks} blocks ({bytes} bytes); roots: {}",
            roots.join(" ")
        );
    }
    Ok(())
}
