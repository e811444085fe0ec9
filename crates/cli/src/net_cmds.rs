//! Commands that need the running daemon: id, peers, connect, disconnect,
//! dht, stop; and `daemon` and `config show` themselves.

use crate::client::Client;
use crate::{home, output};
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

fn daemon() -> Result<Client> {
    match Client::find(&home::dir()?)? {
        Some(c) => Ok(c),
        None => bail!(
            "no shoal daemon is running for {}; start one with `shoal daemon`",
            home::dir()?.display()
        ),
    }
}

fn print(json_out: bool, v: &Value, text: impl FnOnce(&Value)) {
    if json_out {
        output::json(v);
    } else {
        text(v);
    }
}

pub fn id(json_out: bool) -> Result<()> {
    let v: Value = daemon()?.call("id", json!({}))?;
    print(json_out, &v, |v| {
        println!("peer id: {}", v["peer_id"].as_str().unwrap_or(""));
        println!("api:     {}", v["api"].as_str().unwrap_or(""));
        for a in v["addrs"].as_array().into_iter().flatten() {
            println!("address: {}", a.as_str().unwrap_or(""));
        }
    });
    Ok(())
}

pub fn peers(json_out: bool) -> Result<()> {
    let v: Value = daemon()?.call("peers", json!({}))?;
    print(json_out, &v, |v| {
        for p in v["peers"].as_array().into_iter().flatten() {
            let addr = p["addrs"][0].as_str().unwrap_or("");
            let agent = p["agent"].as_str().unwrap_or("?");
            println!("{} {addr} ({agent})", p["peer"].as_str().unwrap_or(""));
        }
    });
    Ok(())
}

pub fn connect(addr: String, json_out: bool) -> Result<()> {
    let v: Value = daemon()?
        .call("connect", json!({ "addr": addr }))
        .with_context(|| format!("connecting to {addr}"))?;
    print(json_out, &v, |v| {
        println!("connected to {}", v["connected"].as_str().unwrap_or(""))
    });
    Ok(())
}

pub fn disconnect(peer: String, json_out: bool) -> Result<()> {
    let v: Value = daemon()?.call("disconnect", json!({ "peer": peer }))?;
    print(json_out, &v, |v| {
        println!("disconnected {}", v["disconnected"].as_str().unwrap_or(""))
    });
    Ok(())
}

#[derive(Subcommand)]
pub enum DhtCmd {
    /// Find peers that provide a CID.
    Findprovs { cid: String },
    /// Find the addresses of a peer.
    Findpeer { peer: String },
}

pub fn dht(cmd: DhtCmd, json_out: bool) -> Result<()> {
    let client = daemon()?;
    match cmd {
        DhtCmd::Findprovs { cid } => {
            let v: Value = client.call("dht/findprovs", json!({ "cid": cid }))?;
            print(json_out, &v, |v| {
                for p in v["providers"].as_array().into_iter().flatten() {
                    println!("{}", p.as_str().unwrap_or(""));
                }
            });
        }
        DhtCmd::Findpeer { peer } => {
            let v: Value = client.call("dht/findpeer", json!({ "peer": peer }))?;
            print(json_out, &v, |v| {
                for a in v["addrs"].as_array().into_iter().flatten() {
                    println!("{}", a.as_str().unwrap_or(""));
                }
            });
        }
    }
    Ok(())
}

pub fn stats(json_out: bool) -> Result<()> {
    let v: Value = daemon()?.call("stats", json!({}))?;
    print(json_out, &v, |v| {
        for (section, counters) in v.as_object().into_iter().flatten() {
            for (name, n) in counters.as_object().into_iter().flatten() {
                println!("{section}.{name} {n}");
            }
        }
    });
    Ok(())
}

pub fn stop(json_out: bool) -> Result<()> {
    let v: Value = daemon()?.call("stop", json!({}))?;
    print(json_out, &v, |_| println!("daemon stopping"));
    Ok(())
}

#[derive(Args)]
pub struct DaemonArgs {
    /// Listen on this multiaddr (repeatable; port 0 picks a free port). Overrides config.
    #[arg(long)]
    listen: Vec<String>,
    /// RPC API address (loopback). Overrides config.
    #[arg(long)]
    api: Option<String>,
    /// HTTP gateway address (/ipfs and /feeds; '' disables it). Overrides config.
    #[arg(long)]
    gateway: Option<String>,
}

impl DaemonArgs {
    fn overrides(self) -> shoal_node::daemon::Overrides {
        shoal_node::daemon::Overrides {
            listen: self.listen,
            api: self.api,
            gateway: self.gateway,
        }
    }
}

pub fn daemon_run(a: DaemonArgs, json_out: bool) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SHOAL_LOG").unwrap_or_else(|_| "warn".into());
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let home = home::dir()?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(shoal_node::daemon::run(home, a.overrides(), |ready| {
        if json_out {
            output::json(
                &json!({"ready": true, "peer_id": ready.peer_id, "addrs": ready.addrs, "api": ready.api, "gateway": ready.gateway}),
            );
        } else {
            println!("shoal daemon ready: peer {}", ready.peer_id);
            for addr in &ready.addrs {
                println!("listening on {addr}");
            }
            println!("API at {}", ready.api);
            if let Some(gw) = &ready.gateway {
                println!("gateway at {gw}");
            }
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }))?;
    Ok(())
}

#[derive(Subcommand)]
pub enum ConfigCmd {
    /// Print the effective configuration (config.toml over the defaults, with flags applied).
    Show(DaemonArgs),
}

pub fn config(cmd: ConfigCmd, json_out: bool) -> Result<()> {
    let ConfigCmd::Show(a) = cmd;
    let cfg = shoal_node::daemon::effective_config(&home::dir()?, &a.overrides())?;
    if json_out {
        output::json(&serde_json::to_value(&cfg)?);
    } else {
        print!("{}", cfg.to_toml());
    }
    Ok(())
}
