//! init, pin, gc, verify.

use crate::{home, output};
use anyhow::{bail, Result};
use clap::Subcommand;
use serde_json::json;
use shoal_ipld::path::IpfsPath;
use shoal_store::PinKind;
use shoal_unixfs::export;

pub fn init(json: bool) -> Result<()> {
    let store = home::open_store()?;
    let (blocks, bytes) = store.stat()?;
    if json {
        output::json(&json!({"home": home::dir()?, "store": store.dir(), "blocks": blocks, "bytes": bytes}));
    } else {
        println!(
            "shoal home {} ready (store: {blocks} blocks, {bytes} bytes)",
            home::dir()?.display()
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
    },
    /// Remove a pin.
    Rm { path: IpfsPath },
    /// List pins.
    Ls,
}

pub fn pin(cmd: PinCmd, json: bool) -> Result<()> {
    let store = home::open_store()?;
    match cmd {
        PinCmd::Add { path, direct } => {
            let cid = export::resolve(&store, &path)?;
            let kind = if direct {
                PinKind::Direct
            } else {
                PinKind::Recursive
            };
            store.pin_add(&cid, kind)?;
            if json {
                output::json(&json!({"pinned": cid.to_string(), "recursive": !direct}));
            } else {
                println!("pinned {cid} {}", if direct { "directly" } else { "recursively" });
            }
        }
        PinCmd::Rm { path } => {
            let cid = export::resolve(&store, &path)?;
            if !store.pin_rm(&cid)? {
                bail!("{cid} is not pinned");
            }
            if json {
                output::json(&json!({"unpinned": cid.to_string()}));
            } else {
                println!("unpinned {cid}");
            }
        }
        PinCmd::Ls => {
            let pins = store.pins()?;
            if json {
                let list: Vec<_> = pins
                    .iter()
                    .map(|(c, k)| json!({"cid": c.to_string(), "type": kind_name(*k)}))
                    .collect();
                output::json(&json!({ "pins": list }));
            } else {
                for (c, k) in pins {
                    println!("{c} {}", kind_name(k));
                }
            }
        }
    }
    Ok(())
}

fn kind_name(k: PinKind) -> &'static str {
    match k {
        PinKind::Direct => "direct",
        PinKind::Recursive => "recursive",
    }
}

pub fn gc(json: bool) -> Result<()> {
    let store = home::open_store()?;
    let r = store.gc()?;
    if json {
        output::json(
            &json!({"blocks_removed": r.blocks_removed, "bytes_removed": r.bytes_removed,
            "packs_deleted": r.packs_deleted, "packs_rewritten": r.packs_rewritten, "pinned_missing": r.missing}),
        );
    } else {
        println!(
            "removed {} blocks ({} bytes); {} packs deleted, {} rewritten",
            r.blocks_removed, r.bytes_removed, r.packs_deleted, r.packs_rewritten
        );
        if r.missing > 0 {
            eprintln!("warning: {} blocks of pinned DAGs are missing", r.missing);
        }
    }
    Ok(())
}

pub fn verify(json: bool) -> Result<()> {
    let store = home::open_store()?;
    let (_, total) = store.stat()?;
    let bar = output::bytes_bar(total, json, "verifying");
    let r = store.verify(|n| bar.inc(n))?;
    bar.finish_and_clear();
    if json {
        let pairs = |v: &[(shoal_ipld::Cid, String)]| -> Vec<_> {
            v.iter()
                .map(|(c, why)| json!({"cid": c.to_string(), "reason": why}))
                .collect()
        };
        let stale: Vec<_> = r
            .stale
            .iter()
            .map(|(c, p)| json!({"cid": c.to_string(), "path": p}))
            .collect();
        output::json(&json!({"ok": r.ok(), "blocks": r.blocks, "bytes": r.bytes,
            "corrupt": pairs(&r.corrupt), "missing": pairs(&r.missing), "stale": stale}));
    } else {
        for (c, why) in &r.corrupt {
            println!("corrupt {c}: {why}");
        }
        for (c, why) in &r.missing {
            println!("missing {c}: {why}");
        }
        for (c, p) in &r.stale {
            println!("stale {c}: {}", p.display());
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
    if !r.ok() {
        std::process::exit(2);
    }
    Ok(())
}
