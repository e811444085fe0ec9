//! add, cat, get, ls.

use crate::backend::Backend;
use crate::output;
use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::json;
use shoal_ipld::path::IpfsPath;
use shoal_node::ops::{self, AddRequest, Added, GetReply, LsEntry};
use shoal_unixfs::options::parse_chunker;
use shoal_unixfs::{Event, Profile};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct AddArgs {
    /// Files or directories to add.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Add directories recursively.
    #[arg(short, long)]
    recursive: bool,
    /// Print only the root CID(s).
    #[arg(short = 'Q', long)]
    quieter: bool,
    /// CID profile: unixfs-v1-2025 (IPIP-499) or unixfs-v0-2015 (kubo's default).
    #[arg(long, default_value = "unixfs-v1-2025")]
    profile: Profile,
    /// CID version of dag-pb nodes (overrides the profile).
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=1))]
    cid_version: Option<u8>,
    /// Store leaves as raw blocks (overrides the profile).
    #[arg(long)]
    raw_leaves: Option<bool>,
    /// Chunker: size-N (overrides the profile).
    #[arg(long, value_parser = parse_chunker)]
    chunker: Option<usize>,
    /// Most links per file node (overrides the profile).
    #[arg(long)]
    max_links: Option<usize>,
    /// Index the files in place instead of copying them (implies raw leaves).
    #[arg(long)]
    nocopy: bool,
    /// Record permissions (UnixFS 1.5).
    #[arg(long)]
    preserve_mode: bool,
    /// Record modification times (UnixFS 1.5).
    #[arg(long)]
    preserve_mtime: bool,
    /// Pin the added roots.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pin: bool,
}

impl AddArgs {
    fn request(&self) -> Result<AddRequest> {
        let paths = self
            .paths
            .iter()
            .map(|p| std::path::absolute(p).with_context(|| format!("resolving {}", p.display())))
            .collect::<Result<Vec<_>>>()?;
        Ok(AddRequest {
            paths,
            recursive: self.recursive,
            profile: self.profile.name().to_owned(),
            cid_version: self.cid_version,
            raw_leaves: self.raw_leaves,
            chunk_size: self.chunker,
            max_links: self.max_links,
            nocopy: self.nocopy,
            preserve_mode: self.preserve_mode,
            preserve_mtime: self.preserve_mtime,
            pin: self.pin,
            // SHOAL_ADD_COMMIT_MS: how often an add commits (and acknowledges files).
            commit_ms: std::env::var("SHOAL_ADD_COMMIT_MS")
                .ok()
                .and_then(|v| v.parse().ok()),
        })
    }
}

/// Prints "added CID PATH" for files as they become durable.
fn print_acks(files: &[(PathBuf, shoal_ipld::Cid, u64)], base: &Path) {
    let mut out = std::io::stdout().lock();
    for (p, cid, _) in files {
        let rel = p.strip_prefix(base).unwrap_or(p);
        let _ = writeln!(out, "added {cid} {}", rel.display());
    }
    let _ = out.flush();
}

pub fn add(a: AddArgs, json: bool) -> Result<()> {
    let backend = Backend::connect()?;
    let req = a.request()?;
    let added: Vec<Added> = match &backend {
        Backend::Remote(client) => {
            let reply: serde_json::Value = client.call("add", serde_json::to_value(&req)?)?;
            serde_json::from_value(reply["added"].clone())?
        }
        Backend::Local(store) => {
            let bar = output::bytes_bar(0, json, "adding");
            let mut out = Vec::new();
            for path in &req.paths {
                let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
                let one = AddRequest {
                    paths: vec![path.clone()],
                    ..req.clone()
                };
                let mut on_event = |e: Event<'_>| match e {
                    Event::Scanned { bytes, .. } => {
                        bar.reset();
                        bar.set_length(bytes)
                    }
                    Event::Progress(n) => bar.inc(n),
                    Event::Committed(files) if !a.quieter && !json => print_acks(files, &base),
                    Event::Committed(_) => {}
                };
                out.extend(ops::add(store, &one, &mut on_event)?);
            }
            bar.finish_and_clear();
            out
        }
    };
    for a in &added {
        for skipped in &a.skipped {
            eprintln!("warning: skipped special file {}", skipped.display());
        }
    }
    if json {
        output::json(&json!({ "added": added }));
        return Ok(());
    }
    for one in &added {
        let name = one
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if a.quieter {
            println!("{}", one.root);
        } else if one.path.is_dir() || backend.is_remote() {
            println!("added {} {name}", one.root);
        }
    }
    Ok(())
}

#[derive(Args)]
pub struct CatArgs {
    /// CID[/path] of a file.
    path: IpfsPath,
    /// Start at this byte.
    #[arg(long, default_value_t = 0)]
    offset: u64,
    /// Write at most this many bytes.
    #[arg(long)]
    length: Option<u64>,
    /// With a daemon: how to fetch missing blocks (auto = shoal's streaming
    /// sync, then bitswap for the rest; sync; bitswap).
    #[arg(long, default_value = "auto", value_parser = ["auto", "sync", "bitswap"])]
    exchange: String,
}

pub fn cat(a: CatArgs, _json: bool) -> Result<()> {
    let backend = Backend::connect()?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    match &backend {
        Backend::Local(store) => {
            ops::cat(store, &a.path, a.offset, a.length, &mut out)
                .with_context(|| format!("reading {}", a.path))?;
        }
        Backend::Remote(client) => {
            let args = json!({"path": a.path.to_string(), "offset": a.offset, "length": a.length, "exchange": a.exchange});
            client
                .stream("cat", args, &mut out)
                .with_context(|| format!("reading {}", a.path))?;
        }
    }
    out.flush().context("writing to stdout")?;
    Ok(())
}

#[derive(Args)]
pub struct GetArgs {
    /// CID[/path] to write out.
    path: IpfsPath,
    /// Output path (default: the last path segment, or the CID).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// With a daemon: how to fetch missing blocks (auto = shoal's streaming
    /// sync, then bitswap for the rest; sync; bitswap).
    #[arg(long, default_value = "auto", value_parser = ["auto", "sync", "bitswap"])]
    exchange: String,
}

pub fn get(a: GetArgs, json: bool) -> Result<()> {
    let backend = Backend::connect()?;
    let default = a.path.segments.last().cloned().unwrap_or(a.path.root.to_string());
    let out = std::path::absolute(a.output.unwrap_or_else(|| PathBuf::from(default)))?;
    let reply: GetReply = match &backend {
        Backend::Local(store) => {
            let total = ops::get_size(store, &a.path).with_context(|| format!("checking {}", a.path))?;
            let bar = output::bytes_bar(total, json, "getting");
            let r = ops::get(store, &a.path, &out, &mut |n| bar.inc(n));
            bar.finish_and_clear();
            r.with_context(|| format!("writing {} to {}", a.path, out.display()))?
        }
        Backend::Remote(client) => {
            let last = fetch(client, &a.path, &a.exchange, Some(&out), json)
                .with_context(|| format!("writing {} to {}", a.path, out.display()))?;
            serde_json::from_value(last["written"].clone()).context("the daemon's reply has no report")?
        }
    };
    if json {
        output::json(&serde_json::to_value(&reply)?);
    } else {
        println!(
            "wrote {} ({} files, {} bytes) to {}",
            reply.cid,
            reply.files,
            reply.bytes,
            reply.output.display()
        );
    }
    Ok(())
}

/// Has the daemon fetch what `path` needs (and write it to `output`),
/// showing its progress; returns the daemon's last line.
pub fn fetch(
    client: &crate::client::Client,
    path: &IpfsPath,
    exchange: &str,
    output: Option<&Path>,
    json: bool,
) -> Result<serde_json::Value> {
    let bar = output::transfer_bar(json, "fetching");
    let mut last = serde_json::Value::Null;
    let args = json!({"path": path.to_string(), "exchange": exchange, "output": output});
    client.lines("fetch", args, |v| {
        bar.set_position(v["bytes"].as_u64().unwrap_or(0));
        last = v;
    })?;
    bar.finish_and_clear();
    if let Some(e) = last["error"].as_str() {
        bail!("{e}");
    }
    if last["done"].is_null() {
        bail!("the daemon stopped answering before the fetch ended");
    }
    Ok(last)
}

#[derive(Args)]
pub struct LsArgs {
    /// CID[/path] of a directory.
    path: IpfsPath,
}

pub fn ls(a: LsArgs, json: bool) -> Result<()> {
    let backend = Backend::connect()?;
    #[derive(serde::Deserialize)]
    struct Reply {
        entries: Vec<LsEntry>,
    }
    let reply: Reply = backend.run("ls", json!({"path": a.path.to_string()}), |store| {
        Ok(Reply {
            entries: ops::ls(store, &a.path)?,
        })
    })?;
    if json {
        output::json(&json!({ "entries": reply.entries }));
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    for e in reply.entries {
        let size = e.size.map_or("-".to_owned(), |s| s.to_string());
        let slash = if e.kind == "directory" { "/" } else { "" };
        writeln!(out, "{} {size:>12} {}{slash}", e.cid, e.name)?;
    }
    Ok(())
}
