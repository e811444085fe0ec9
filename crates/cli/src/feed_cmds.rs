//! `shoal feed`: the keys of the feeds this node writes
//! (`$SHOAL_HOME/feeds/NAME.key`).

use crate::{home, output};
use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::json;
use shoal_feeds::FeedKey;
use std::io::Read;

#[derive(Subcommand)]
pub enum FeedCmd {
    /// Create a feed key; prints the feed's public key (what followers use).
    Create { name: String },
    /// List the feeds this node can write.
    List,
    /// Print a feed's secret key, to move it to another machine (keep it private).
    Export { name: String },
    /// Store a secret key printed by `feed export` (read from stdin) as feed NAME.
    Import { name: String },
    /// List a feed's snapshots (FEED: its key, or the local name of a feed you write).
    Log { feed: String },
}

fn feeds_dir() -> Result<std::path::PathBuf> {
    Ok(home::dir()?.join("feeds"))
}

pub fn feed(cmd: FeedCmd, json: bool) -> Result<()> {
    let dir = feeds_dir()?;
    match cmd {
        FeedCmd::Log { feed } => return crate::publish_cmds::log(feed, json),
        FeedCmd::Create { name } => {
            let k = FeedKey::create(&dir, &name)?;
            print_key(&k, json);
        }
        FeedCmd::List => {
            let mut list = Vec::new();
            for name in FeedKey::list(&dir)? {
                let k = FeedKey::load(&dir, &name)?;
                list.push(json!({"name": name, "key": k.id().to_string()}));
            }
            if json {
                output::json(&json!({ "feeds": list }));
            } else {
                for f in &list {
                    println!(
                        "{} {}",
                        f["name"].as_str().unwrap_or(""),
                        f["key"].as_str().unwrap_or("")
                    );
                }
            }
        }
        FeedCmd::Export { name } => {
            let k = FeedKey::load(&dir, &name)?;
            if json {
                output::json(&json!({"name": name, "secret": k.export()}));
            } else {
                println!("{}", k.export());
            }
        }
        FeedCmd::Import { name } => {
            let mut secret = String::new();
            std::io::stdin()
                .take(4096)
                .read_to_string(&mut secret)
                .context("reading the secret from stdin")?;
            let k = FeedKey::import(&dir, &name, &secret)?;
            print_key(&k, json);
        }
    }
    Ok(())
}

fn print_key(k: &FeedKey, json: bool) {
    if json {
        output::json(&json!({"name": k.name, "key": k.id().to_string()}));
    } else {
        println!("{} {}", k.name, k.id());
    }
}
