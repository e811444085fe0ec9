//! `shoal publish`, `shoal feed log`, `shoal diff`: feed snapshots.

use crate::backend::Backend;
use crate::{home, output};
use anyhow::{Context, Result};
use clap::Args;
use serde_json::{json, Value};
use shoal_feeds::Feeds;
use shoal_node::feed_ops::{self, DiffEntry, PublishReply, PublishRequest, SnapshotInfo};
use shoal_store::BlockStore;
use shoal_unixfs::Event;
use std::path::PathBuf;

#[derive(Args)]
pub struct PublishArgs {
    /// The directory to publish (indexed in place: it is the data).
    dir: PathBuf,
    /// The local name of the feed (see `shoal feed create`).
    #[arg(long)]
    feed: String,
    /// Read and hash every file instead of trusting size, mtime and inode.
    #[arg(long)]
    checksum: bool,
}

fn open_feeds(store: &BlockStore) -> Result<Feeds> {
    Feeds::open(store.dir()).context("opening the feed state")
}

pub fn publish(a: PublishArgs, json: bool) -> Result<()> {
    let req = PublishRequest {
        dir: std::path::absolute(&a.dir).with_context(|| format!("resolving {}", a.dir.display()))?,
        feed: a.feed,
        checksum: a.checksum,
    };
    let reply: PublishReply = match Backend::connect()? {
        Backend::Remote(client) => client.call("publish", serde_json::to_value(&req)?)?,
        Backend::Local(store) => {
            let feeds = open_feeds(&store)?;
            let bar = output::bytes_bar(0, json, "publishing");
            let mut on_event = |e: Event<'_>| match e {
                Event::Scanned { bytes, .. } => bar.set_length(bytes),
                Event::Progress(n) => bar.inc(n),
                Event::Committed(_) => {}
            };
            let r = feed_ops::publish(&store, &feeds, &home::dir()?, &req, &mut on_event)?;
            bar.finish_and_clear();
            r
        }
    };
    if json {
        output::json(&serde_json::to_value(&reply)?);
        return Ok(());
    }
    let s = &reply.snapshot;
    if reply.unchanged {
        println!("unchanged: snapshot {} {} of feed {}", s.seq, s.root, reply.feed);
    } else {
        println!("published snapshot {} {} of feed {}", s.seq, s.root, reply.feed);
        println!(
            "files: {} added, {} changed, {} removed; {} files, {} bytes in all",
            s.files.added, s.files.changed, s.files.removed, s.total_files, s.total_bytes
        );
    }
    println!(
        "read {} files ({} bytes) in {:.2} s",
        reply.reimported_files,
        reply.reimported_bytes,
        reply.elapsed_ms as f64 / 1000.0
    );
    Ok(())
}

pub fn log(feed: String, json: bool) -> Result<()> {
    let snaps: Vec<SnapshotInfo> = match Backend::connect()? {
        Backend::Remote(client) => {
            let v: Value = client.call("feed/log", json!({ "feed": feed }))?;
            serde_json::from_value(v["snapshots"].clone())?
        }
        Backend::Local(store) => feed_ops::log(&open_feeds(&store)?, &home::dir()?, &feed)?,
    };
    if json {
        output::json(&json!({ "snapshots": snaps }));
        return Ok(());
    }
    for s in &snaps {
        println!(
            "{:>5} {} {} files +{} ~{} -{} ({} bytes)",
            s.seq, s.root, s.time, s.files.added, s.files.changed, s.files.removed, s.total_bytes
        );
    }
    Ok(())
}

pub fn diff(a: String, b: String, json: bool) -> Result<()> {
    let changes: Vec<DiffEntry> = match Backend::connect()? {
        Backend::Remote(client) => {
            let v: Value = client.call("diff", json!({ "a": a, "b": b }))?;
            serde_json::from_value(v["changes"].clone())?
        }
        Backend::Local(store) => feed_ops::diff(&store, &open_feeds(&store)?, &home::dir()?, &a, &b)?,
    };
    if json {
        output::json(&json!({ "changes": changes }));
        return Ok(());
    }
    for c in &changes {
        println!("{} {}{}", c.change, c.path, if c.dir { "/" } else { "" });
    }
    Ok(())
}

#[derive(Args)]
pub struct FollowArgs {
    /// The feed's key (64 hex digits), as `shoal feed create` printed it.
    feed: String,
    /// Materialize the newest snapshot here (kept current with --watch).
    #[arg(long)]
    into: Option<PathBuf>,
    /// A peer to ask (multiaddr with /p2p/PEER); repeatable.
    #[arg(long = "peer")]
    peers: Vec<String>,
    /// Keep following while the daemon runs (and after it restarts); without
    /// --watch, follow works with or without a daemon.
    #[arg(long)]
    watch: bool,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

pub fn follow(a: FollowArgs, json: bool) -> Result<()> {
    let into = a
        .into
        .as_ref()
        .map(|d| std::path::absolute(d).with_context(|| format!("resolving {}", d.display())))
        .transpose()?;
    let bar = output::transfer_bar(json, "following");
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let args = json!({ "feed": a.feed, "into": into, "peers": a.peers, "watch": a.watch, "timeout_secs": a.timeout });
    let reply: Result<Value> = match Backend::connect()? {
        Backend::Remote(client) => client.call("follow", args),
        Backend::Local(_) if a.watch => {
            bar.finish_and_clear();
            anyhow::bail!("--watch keeps following in the daemon: start it first (shoal daemon)");
        }
        Backend::Local(store) => follow_standalone(store, &a, into.clone()),
    };
    bar.finish_and_clear();
    let reply = reply?;
    if json {
        output::json(&reply);
        return Ok(());
    }
    let r: shoal_node::follow::FollowReply = serde_json::from_value(reply)?;
    if r.unchanged {
        println!("up to date: snapshot {} {}", r.seq, r.root);
    } else {
        println!(
            "snapshot {} {}: received {} blocks ({} bytes)",
            r.seq, r.root, r.blocks, r.bytes
        );
        if into.is_some() {
            println!(
                "wrote {} files ({} bytes), removed {}",
                r.files_written, r.bytes_written, r.files_removed
            );
        }
    }
    if a.watch {
        println!("the daemon keeps following feed {}", r.feed);
    }
    Ok(())
}

/// A one-shot follow with no daemon running: this process joins the
/// network for the duration.
fn follow_standalone(store: BlockStore, a: &FollowArgs, into: Option<PathBuf>) -> Result<Value> {
    let home = home::dir()?;
    let (id, seq) = feed_ops::parse_feed(&home, &a.feed)?;
    if seq.is_some() {
        anyhow::bail!("name the feed without @SEQ (a follow tracks the newest snapshot)");
    }
    let peers = a
        .peers
        .iter()
        .map(|p| p.parse().with_context(|| format!("'{p}' is not a multiaddr")))
        .collect::<Result<Vec<shoal_net::Multiaddr>>>()?;
    let timeout = std::time::Duration::from_secs(a.timeout);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let reply = rt.block_on(shoal_node::follow::standalone(
        &home, store, id, into, &peers, timeout,
    ))?;
    Ok(serde_json::to_value(reply)?)
}
