//! `shoal daemon`: open the store, start the network, serve the RPC API,
//! and shut down cleanly on SIGINT, SIGTERM or an RPC `stop`.

use crate::config::{Config, ConfigError};
use crate::rpc::{router, ApiState};
use shoal_store::{BlockStore, StoreError};
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::Notify;

/// Command-line settings that win over config.toml.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub listen: Vec<String>,
    pub api: Option<String>,
    pub gateway: Option<String>,
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Store(String),
    #[error(transparent)]
    Identity(#[from] shoal_net::identity::IdentityError),
    #[error(transparent)]
    Net(#[from] shoal_net::NetError),
    #[error("API address {0}: {1}")]
    Api(String, String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What a started daemon reports.
#[derive(Clone, Debug)]
pub struct Ready {
    pub peer_id: String,
    pub addrs: Vec<String>,
    pub api: String,
    /// The HTTP gateway's URL (None when disabled).
    pub gateway: Option<String>,
}

/// Files in SHOAL_HOME that tell the CLI where the API is.
pub fn api_file(home: &Path) -> PathBuf {
    home.join("api")
}
pub fn token_file(home: &Path) -> PathBuf {
    home.join("api.token")
}

/// Applies the overrides to the config loaded from `home`.
pub fn effective_config(home: &Path, ov: &Overrides) -> Result<Config, DaemonError> {
    let mut cfg = Config::load(&home.join("config.toml"))?;
    if !ov.listen.is_empty() {
        cfg.network.listen = ov.listen.clone();
    }
    if let Some(api) = &ov.api {
        cfg.api.listen = api.clone();
    }
    if let Some(gw) = &ov.gateway {
        cfg.gateway.listen = gw.clone();
    }
    Ok(cfg)
}

fn write_private(path: &Path, text: &str) -> Result<(), DaemonError> {
    let io = |source| DaemonError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

fn random_token() -> String {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("the OS random source works");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Announces every pinned root in the DHT (in the background).
fn announce_pins(store: Arc<BlockStore>, net: shoal_net::NodeHandle) {
    tokio::spawn(async move {
        let pins = tokio::task::spawn_blocking(move || store.pins()).await;
        for (cid, _) in pins.ok().and_then(Result::ok).unwrap_or_default() {
            let _ = net.provide(cid.hash().to_bytes()).await;
        }
    });
}

/// Serves every feed this node publishes or follows, and resumes the
/// watched follows.
async fn serve_feeds(home: &Path, follower: &Arc<crate::follow::Follower>) {
    let fnet = &follower.fnet;
    let keys = crate::feed_ops::keys_dir(home);
    let mut ids: Vec<shoal_feeds::FeedId> = shoal_feeds::FeedKey::list(&keys)
        .unwrap_or_default()
        .iter()
        .filter_map(|name| shoal_feeds::FeedKey::load(&keys, name).ok())
        .map(|k| k.id())
        .filter(|id| fnet.feeds.logs.load(&id.0).ok().flatten().is_some())
        .collect();
    let follows = fnet.feeds.state.follows().unwrap_or_default();
    ids.extend(follows.iter().map(|(k, _)| shoal_feeds::FeedId(*k)));
    for id in ids {
        if let Err(e) = fnet.track(id).await {
            tracing::warn!(feed = %id, "cannot serve the feed: {e}");
        }
    }
    for (k, f) in follows {
        if f.watch {
            follower.watch(shoal_feeds::FeedId(k));
        }
    }
}

/// Serves the HTTP gateway on `listen` ("" disables it); returns its URL.
async fn start_gateway(listen: &str, state: &Arc<ApiState>) -> Result<Option<String>, DaemonError> {
    if listen.is_empty() {
        return Ok(None);
    }
    let err = |e: &dyn std::fmt::Display| DaemonError::Api(listen.to_owned(), format!("gateway: {e}"));
    let addr: SocketAddr = listen.parse().map_err(|e| err(&e))?;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| err(&e))?;
    let bound = listener.local_addr().map_err(|e| err(&e))?;
    let gw = Arc::new(crate::gateway::GatewayState {
        store: state.store.clone(),
        feeds: Arc::new(crate::feed_resolver::NodeFeeds(state.feeds.clone())),
        exchange: Some(state.exchange.clone()),
    });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, crate::gateway::router(gw)).await {
            tracing::error!("gateway stopped: {e}");
        }
    });
    tracing::info!(%bound, "gateway listening");
    Ok(Some(format!("http://{bound}")))
}

/// Runs the daemon until it is told to stop. `on_ready` is called once
/// everything listens.
pub async fn run(home: PathBuf, ov: Overrides, on_ready: impl FnOnce(&Ready)) -> Result<(), DaemonError> {
    std::fs::create_dir_all(&home).map_err(|source| DaemonError::Io {
        path: home.clone(),
        source,
    })?;
    let cfg = effective_config(&home, &ov)?;
    let api_addr: SocketAddr = cfg
        .api
        .listen
        .parse()
        .map_err(|e| DaemonError::Api(cfg.api.listen.clone(), format!("{e}")))?;
    if !api_addr.ip().is_loopback() {
        return Err(DaemonError::Api(
            cfg.api.listen.clone(),
            "must be a loopback address".into(),
        ));
    }
    let store = BlockStore::open(home.join("store")).map_err(|e| match e {
        StoreError::Locked(_) => DaemonError::Store(format!("{e}: is another daemon running?")),
        e => DaemonError::Store(e.to_string()),
    })?;
    let key = shoal_net::identity::load_or_create(&home.join("identity.key"))?;
    let (net, net_task) = shoal_net::start(key, cfg.network.clone()).await?;
    let listener = tokio::net::TcpListener::bind(api_addr)
        .await
        .map_err(|e| DaemonError::Api(cfg.api.listen.clone(), e.to_string()))?;
    let bound = listener
        .local_addr()
        .map_err(|e| DaemonError::Api(cfg.api.listen.clone(), e.to_string()))?;
    let api_url = format!("http://{bound}");
    let token = random_token();
    write_private(&token_file(&home), &token)?;
    write_private(&api_file(&home), &api_url)?;
    let stop = Arc::new(Notify::new());
    let store = Arc::new(store);
    let exchange = Arc::new(crate::exchange::Exchange::start(store.clone(), net.clone()));
    announce_pins(store.clone(), net.clone());
    let feeds =
        Arc::new(shoal_feeds::Feeds::open(store.dir()).map_err(|e| DaemonError::Store(e.to_string()))?);
    let fnet = crate::feed_net::FeedNet::start(feeds.clone(), net.clone());
    let follower = crate::follow::Follower::new(fnet.clone(), exchange.clone());
    serve_feeds(&home, &follower).await;
    let state = Arc::new(ApiState {
        feeds,
        fnet,
        follower,
        home: home.clone(),
        store,
        exchange,
        net: net.clone(),
        token,
        api_url: api_url.clone(),
        stop: stop.clone(),
    });
    let me = net.peer_id();
    let addrs = net
        .listen_addrs()
        .await?
        .iter()
        .map(|a| format!("{a}/p2p/{me}"))
        .collect();
    let gateway = start_gateway(&cfg.gateway.listen, &state).await?;
    on_ready(&Ready {
        peer_id: me.to_string(),
        addrs,
        api: api_url,
        gateway,
    });
    let shutdown = async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            _ = stop.notified() => {}
        }
        tracing::info!("shutting down");
    };
    let served = axum::serve(listener, router(state.clone()))
        .with_graceful_shutdown(shutdown)
        .await;
    let _ = std::fs::remove_file(api_file(&home));
    let _ = std::fs::remove_file(token_file(&home));
    net_task.abort();
    drop(state);
    served.map_err(|source| DaemonError::Io { path: home, source })
}
