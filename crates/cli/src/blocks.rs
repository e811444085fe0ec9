//! add, cat, get, ls.

use crate::{home, output};
use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::json;
use shoal_ipld::path::IpfsPath;
use shoal_unixfs::export;
use shoal_unixfs::options::parse_chunker;
use shoal_unixfs::{AddOptions, Event, Profile};
use std::io::Write;
use std::path::PathBuf;

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

pub fn add(a: AddArgs, json: bool) -> Result<()> {
    let store = home::open_store()?;
    let mut import = a.profile.options();
    import.cid_version = a.cid_version.unwrap_or(import.cid_version);
    import.raw_leaves = a.raw_leaves.unwrap_or(import.raw_leaves);
    import.chunk_size = a.chunker.unwrap_or(import.chunk_size);
    import.max_links = a.max_links.unwrap_or(import.max_links);
    import.preserve_mode = a.preserve_mode;
    import.preserve_mtime = a.preserve_mtime;
    let mut opts = AddOptions {
        import,
        recursive: a.recursive,
        nocopy: a.nocopy,
        pin: a.pin,
        ..Default::default()
    };
    // SHOAL_ADD_COMMIT_MS: how often an add commits (and acknowledges files); default 1000.
    if let Some(ms) = std::env::var("SHOAL_ADD_COMMIT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        opts.commit_interval = std::time::Duration::from_millis(ms);
    }
    let mut results = Vec::new();
    for path in &a.paths {
        let bar = output::bytes_bar(0, json, "adding");
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.clone());
        let base = abs.parent().map(|p| p.to_path_buf()).unwrap_or_default();
        let mut on_event = |e: Event<'_>| match e {
            Event::Scanned { bytes, .. } => bar.set_length(bytes),
            Event::Progress(n) => bar.inc(n),
            Event::Committed(files) if !a.quieter && !json => {
                let mut out = std::io::stdout().lock();
                for (p, cid, _) in files {
                    let rel = p.strip_prefix(&base).unwrap_or(p);
                    let _ = writeln!(out, "added {cid} {}", rel.display());
                }
                let _ = out.flush();
            }
            Event::Committed(_) => {}
        };
        let added = shoal_unixfs::add(&store, path, &opts, &mut on_event)
            .with_context(|| format!("adding {}", path.display()))?;
        bar.finish_and_clear();
        for skipped in &added.skipped {
            eprintln!("warning: skipped special file {}", skipped.display());
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if json {
            results.push(
                json!({"path": path, "root": added.root.to_string(), "size": added.size,
                "files": added.files, "bytes": added.bytes}),
            );
        } else if a.quieter {
            println!("{}", added.root);
        } else if path.is_dir() {
            println!("added {} {name}", added.root);
        }
    }
    if json {
        output::json(&json!({ "added": results }));
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
}

pub fn cat(a: CatArgs, _json: bool) -> Result<()> {
    let store = home::open_store()?;
    let cid = export::resolve(&store, &a.path)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    export::cat(&store, &cid, a.offset, a.length, &mut out, &mut |_| {})
        .with_context(|| format!("reading {}", a.path))?;
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
}

pub fn get(a: GetArgs, json: bool) -> Result<()> {
    let store = home::open_store()?;
    let cid = export::resolve(&store, &a.path)?;
    let out = a
        .output
        .unwrap_or_else(|| PathBuf::from(a.path.segments.last().cloned().unwrap_or(cid.to_string())));
    let total =
        shoal_unixfs::get::plan_bytes(&store, &cid).with_context(|| format!("checking {}", a.path))?;
    let bar = output::bytes_bar(total, json, "getting");
    let report = shoal_unixfs::get::get(&store, &cid, &out, &mut |n| bar.inc(n))
        .with_context(|| format!("writing {} to {}", a.path, out.display()))?;
    bar.finish_and_clear();
    if json {
        output::json(
            &json!({"cid": cid.to_string(), "output": out, "files": report.files,
            "dirs": report.dirs, "symlinks": report.symlinks, "bytes": report.bytes}),
        );
    } else {
        println!(
            "wrote {} ({} files, {} bytes) to {}",
            cid,
            report.files,
            report.bytes,
            out.display()
        );
    }
    Ok(())
}

#[derive(Args)]
pub struct LsArgs {
    /// CID[/path] of a directory.
    path: IpfsPath,
}

pub fn ls(a: LsArgs, json: bool) -> Result<()> {
    let store = home::open_store()?;
    let cid = export::resolve(&store, &a.path)?;
    let node = export::load(&store, &cid)?;
    if !node.is_dir() {
        bail!("{}: not a directory", a.path);
    }
    let entries = export::list(&store, &cid)?;
    let mut rows = Vec::with_capacity(entries.len());
    for e in &entries {
        let (kind, size) = match shoal_unixfs::get::describe(&store, &e.cid) {
            Ok((k, s)) => (kind_name(k), Some(s)),
            Err(_) => ("unknown".to_owned(), None),
        };
        rows.push((e, kind, size));
    }
    if json {
        let list: Vec<_> = rows
            .iter()
            .map(|(e, kind, size)| json!({"name": e.name, "cid": e.cid.to_string(), "type": kind, "size": size, "tsize": e.tsize}))
            .collect();
        output::json(&json!({ "entries": list }));
    } else {
        let mut out = std::io::stdout().lock();
        for (e, kind, size) in rows {
            let size = size.map_or("-".to_owned(), |s| s.to_string());
            let slash = if kind == "directory" { "/" } else { "" };
            writeln!(out, "{} {size:>12} {}{slash}", e.cid, e.name)?;
        }
    }
    Ok(())
}

fn kind_name(k: shoal_unixfs::data::NodeType) -> String {
    use shoal_unixfs::data::NodeType;
    match k {
        NodeType::Raw | NodeType::File => "file",
        NodeType::Directory | NodeType::HamtShard => "directory",
        NodeType::Symlink => "symlink",
        NodeType::Metadata => "metadata",
    }
    .to_owned()
}
