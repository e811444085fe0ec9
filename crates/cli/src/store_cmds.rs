//! init, pin, gc, verify, car.

use crate::backend::Backend;
use crate::{home, output};
use anyhow::Result;
use clap::Subcommand;
use serde::Deserialize;
use serde_json::json;
use shoal_ipld::path::IpfsPath;
use shoal_node::ops::{self, CarReply, GcReply, Pin, StatReply, VerifyReply};
use std::path::PathBuf;

pub fn init(json: bool) -> Result<()> {
    let backend = Backend::connect()?;
    let s: StatReply = backend.run("stat", json!({}), ops::stat)?;
    let home = home::dir()?;
    if json {
        output::json(
            &json!({"home": home, "store": home.join("store"), "blocks": s.blocks, "bytes": s.bytes}),
        );
    } else {
        println!(
            "shoal home {} ready (store: {} blocks, {} bytes)",
            home.display(),
            s.blocks,
            s.bytes
        );
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum PinCmd {
    /// Pin a DAG (recursive by default; its blocks must all be present).
    Add {
        path: IpfsPath,
        /// Pin only this block, not what it links to.
        #[arg(long)]
        direct: bool,
        /// With a daemon: how to fetch missing blocks (auto, sync, bitswap).
        #[arg(long, default_value = "auto", value_parser = ["auto", "sync", "bitswap"])]
        exchange: String,
    },
    /// Remove a pin.
    Rm { path: IpfsPath },
    /// List pins.
    Ls,
}

pub fn pin(cmd: PinCmd, json: bool) -> Result<()> {
    let backend = Backend::connect()?;
    match cmd {
        PinCmd::Add {
            path,
            direct,
            exchange,
        } => {
            if let Backend::Remote(client) = &backend {
                if !direct {
                    crate::blocks::fetch(client, &path, &exchange, None, json)?;
                }
            }
            let args = json!({"path": path.to_string(), "direct": direct, "exchange": exchange});
            let pin: Pin = backend.run("pin/add", args, |s| ops::pin_add(s, &path, direct))?;
            if json {
                output::json(&serde_json::to_value(&pin)?);
            } else {
                println!(
                    "pinned {} {}",
                    pin.cid,
                    if direct { "directly" } else { "recursively" }
                );
            }
        }
        PinCmd::Rm { path } => {
            #[derive(Deserialize)]
            struct Reply {
                unpinned: String,
            }
            let r: Reply = backend.run("pin/rm", json!({"path": path.to_string()}), |s| {
                Ok(Reply {
                    unpinned: ops::pin_rm(s, &path)?,
                })
            })?;
            if json {
                output::json(&json!({"unpinned": r.unpinned}));
            } else {
                println!("unpinned {}", r.unpinned);
            }
        }
        PinCmd::Ls => {
            #[derive(Deserialize)]
            struct Reply {
                pins: Vec<Pin>,
            }
            let r: Reply = backend.run("pin/ls", json!({}), |s| {
                Ok(Reply {
                    pins: ops::pin_ls(s)?,
                })
            })?;
            if json {
                output::json(&json!({"pins": r.pins}));
            } else {
                for p in r.pins {
                    println!("{} {}", p.cid, p.kind);
                }
            }
        }
    }
    Ok(())
}

pub fn stat(json: bool) -> Result<()> {
    let r: StatReply = Backend::connect()?.run("stat", json!({}), ops::stat)?;
    if json {
        output::json(&serde_json::to_value(&r)?);
    } else {
        println!("{} blocks, {} bytes", r.blocks, r.bytes);
    }
    Ok(())
}

pub fn gc(json: bool) -> Result<()> {
    let r: GcReply = Backend::connect()?.run("gc", json!({}), ops::gc)?;
    if json {
        output::json(&serde_json::to_value(&r)?);
        return Ok(());
    }
    println!(
        "removed {} blocks ({} bytes); {} packs deleted, {} rewritten",
        r.blocks_removed, r.bytes_removed, r.packs_deleted, r.packs_rewritten
    );
    if r.pinned_missing > 0 {
        eprintln!("warning: {} blocks of pinned DAGs are missing", r.pinned_missing);
    }
    Ok(())
}

pub fn verify(json: bool) -> Result<()> {
    let backend = Backend::connect()?;
    let r: VerifyReply = match &backend {
        Backend::Local(store) => {
            let (_, total) = store.stat()?;
            let bar = output::bytes_bar(total, json, "verifying");
            let r = ops::verify(store, &mut |n| bar.inc(n))?;
            bar.finish_and_clear();
            r
        }
        Backend::Remote(client) => client.call("verify", json!({}))?,
    };
    if json {
        output::json(&serde_json::to_value(&r)?);
    } else {
        for (what, list) in [
            ("corrupt", &r.corrupt),
            ("missing", &r.missing),
            ("stale", &r.stale),
        ] {
            for p in list {
                println!("{what} {}: {}", p.cid, p.reason);
            }
        }
        println!(
            "verified {} blocks ({} bytes): {} corrupt, {} missing, {} stale",
            r.blocks,
            r.bytes,
            r.corrupt.len(),
            r.missing.len(),
            r.stale.len()
        );
    }
    if !r.ok {
        std::process::exit(2);
    }
    Ok(())
}

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

pub fn car(cmd: CarCmd, json: bool) -> Result<()> {
    let backend = Backend::connect()?;
    let (r, exported): (CarReply, bool) = match cmd {
        CarCmd::Export { path, output } => {
            let output = std::path::absolute(output)?;
            let args = json!({"path": path.to_string(), "output": output});
            let bar = output::bytes_bar(0, json, "exporting");
            let r = backend.run("car/export", args, |s| {
                ops::car_export(s, &path, &output, &mut |n| bar.inc(n))
            });
            bar.finish_and_clear();
            (r?, true)
        }
        CarCmd::Import { file, pin_roots } => {
            let file = std::path::absolute(file)?;
            let total = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            let args = json!({"file": file, "pin_roots": pin_roots});
            let bar = output::bytes_bar(total, json, "importing");
            let r = backend.run("car/import", args, |s| {
                ops::car_import(s, &file, pin_roots, &mut |n| bar.inc(n))
            });
            bar.finish_and_clear();
            (r?, false)
        }
    };
    if json {
        output::json(&serde_json::to_value(&r)?);
    } else if exported {
        println!(
            "exported {}: {} blocks, {} bytes to {}",
            r.roots.join(" "),
            r.blocks,
            r.bytes,
            r.file.display()
        );
    } else {
        println!(
            "imported {} blocks ({} bytes); roots: {}",
            r.blocks,
            r.bytes,
            r.roots.join(" ")
        );
        for root in r.roots.iter().filter(|root| !r.pinned.contains(root)) {
            eprintln!("warning: root {root} not pinned: its DAG is not complete in the store");
        }
    }
    Ok(())
}
