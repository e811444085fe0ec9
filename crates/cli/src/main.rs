//! `shoal`: publish, update and fetch collections of files over IPFS-compatible
//! content addressing.

mod backend;
mod blocks;
mod client;
mod feed_cmds;
mod home;
mod net_cmds;
mod output;
mod publish_cmds;
mod store_cmds;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "shoal",
    version,
    about = "Content-addressed file collections, IPFS-compatible"
)]
#[command(after_help = "The store lives in $SHOAL_HOME (default ~/.shoal), created on first use.")]
struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create $SHOAL_HOME and its store.
    Init,
    /// Import files or directories; prints their CIDs.
    Add(blocks::AddArgs),
    /// Write a file's bytes (or a byte range) to stdout.
    Cat(blocks::CatArgs),
    /// Write a file or directory tree to a local path.
    Get(blocks::GetArgs),
    /// List a directory.
    Ls(blocks::LsArgs),
    /// Manage pins (pinned DAGs survive gc).
    #[command(subcommand)]
    Pin(store_cmds::PinCmd),
    /// Remove every block not reachable from a pin.
    Gc,
    /// Count the blocks and bytes in the store.
    Stat,
    /// Re-hash every block; report corrupt, missing and stale ones.
    Verify,
    /// Export or import CAR v1 archives.
    #[command(subcommand)]
    Car(store_cmds::CarCmd),
    /// Run the node in the foreground (network, RPC API); Ctrl-C stops it.
    Daemon(net_cmds::DaemonArgs),
    /// Show this node's peer id, addresses and API address (daemon).
    Id,
    /// List connected peers (daemon).
    Peers,
    /// Connect to a peer by multiaddr (daemon).
    Connect { addr: String },
    /// Close the connections to a peer (daemon).
    Disconnect { peer: String },
    /// Query the DHT (daemon).
    #[command(subcommand)]
    Dht(net_cmds::DhtCmd),
    /// Show the exchange counters: blocks sent and received, refused input (daemon).
    Stats,
    /// Stop the running daemon.
    Stop,
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(net_cmds::ConfigCmd),
    /// Manage feeds: keys of the feeds this node publishes, snapshot logs.
    #[command(subcommand)]
    Feed(feed_cmds::FeedCmd),
    /// Publish a directory as the next snapshot of a feed (only what changed is read).
    Publish(publish_cmds::PublishArgs),
    /// Fetch a feed's newest snapshot (into a directory) and keep serving it (daemon).
    Follow(publish_cmds::FollowArgs),
    /// List the paths that changed between two trees: FEED@SEQ, FEED (latest) or CIDs.
    Diff { a: String, b: String },
}

fn main() {
    // Die quietly on a closed pipe (`shoal cat … | head`), like other Unix tools.
    // SAFETY: setting a signal disposition to its default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let json = cli.json;
    if let Err(e) = run(cli) {
        if json {
            output::json(&serde_json::json!({ "error": format!("{e:#}") }));
        } else {
            eprintln!("Error: {e:#}");
        }
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let json = cli.json;
    match cli.command {
        Command::Init => store_cmds::init(json),
        Command::Add(a) => blocks::add(a, json),
        Command::Cat(a) => blocks::cat(a, json),
        Command::Get(a) => blocks::get(a, json),
        Command::Ls(a) => blocks::ls(a, json),
        Command::Pin(p) => store_cmds::pin(p, json),
        Command::Gc => store_cmds::gc(json),
        Command::Stat => store_cmds::stat(json),
        Command::Verify => store_cmds::verify(json),
        Command::Car(c) => store_cmds::car(c, json),
        Command::Daemon(a) => net_cmds::daemon_run(a, json),
        Command::Id => net_cmds::id(json),
        Command::Peers => net_cmds::peers(json),
        Command::Connect { addr } => net_cmds::connect(addr, json),
        Command::Disconnect { peer } => net_cmds::disconnect(peer, json),
        Command::Dht(c) => net_cmds::dht(c, json),
        Command::Stats => net_cmds::stats(json),
        Command::Stop => net_cmds::stop(json),
        Command::Config(c) => net_cmds::config(c, json),
        Command::Feed(c) => feed_cmds::feed(c, json),
        Command::Publish(a) => publish_cmds::publish(a, json),
        Command::Follow(a) => publish_cmds::follow(a, json),
        Command::Diff { a, b } => publish_cmds::diff(a, b, json),
    }
}
