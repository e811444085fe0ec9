//! Three hosts on loopback with real transports: connect over TCP and QUIC,
//! find a peer and a provider through the DHT.

use libp2p::identity::Keypair;
use shoal_net::{KadMode, NetConfig, NodeHandle};
use std::time::Duration;

fn config() -> NetConfig {
    NetConfig {
        listen: vec![
            "/ip4/127.0.0.1/tcp/0".into(),
            "/ip4/127.0.0.1/udp/0/quic-v1".into(),
        ],
        mdns: false,
        kad_mode: KadMode::Server,
        ..NetConfig::default()
    }
}

async fn node() -> NodeHandle {
    shoal_net::start(Keypair::generate_ed25519(), config())
        .await
        .unwrap()
        .0
}

fn addr_of(addrs: &[shoal_net::Multiaddr], proto: &str, peer: shoal_net::PeerId) -> shoal_net::Multiaddr {
    let a = addrs
        .iter()
        .find(|a| a.to_string().contains(proto))
        .unwrap()
        .clone();
    format!("{a}/p2p/{peer}").parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_find_peer_and_providers() {
    let (a, b, c) = (node().await, node().await, node().await);
    let a_addrs = a.listen_addrs().await.unwrap();
    assert_eq!(a_addrs.len(), 2, "{a_addrs:?}");
    // b dials a over TCP, c over QUIC
    assert_eq!(
        b.connect(addr_of(&a_addrs, "/tcp/", a.peer_id())).await.unwrap(),
        a.peer_id()
    );
    assert_eq!(
        c.connect(addr_of(&a_addrs, "/quic-v1", a.peer_id()))
            .await
            .unwrap(),
        a.peer_id()
    );
    // identify runs, then the DHT knows everyone through a
    tokio::time::sleep(Duration::from_millis(500)).await;
    let peers = a.peers().await.unwrap();
    assert_eq!(peers.len(), 2);
    assert!(peers
        .iter()
        .all(|p| p.agent.as_deref().unwrap_or("").starts_with("shoal/")));
    let found = c.find_peer(b.peer_id()).await.unwrap();
    assert!(!found.is_empty(), "c could not find b");
    let key = b"\x12\x20some-multihash-of-32-bytes-long!".to_vec();
    b.provide(key.clone()).await.unwrap();
    let providers = c.find_providers(key).await.unwrap();
    assert_eq!(providers, vec![b.peer_id()]);
    // the connections close; b's DHT traffic may dial a again at once, so
    // whether b shows up afterwards is not checked here (tests/daemon.rs
    // checks disconnect end to end)
    assert!(a.disconnect(b.peer_id()).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_addresses_give_clear_errors() {
    let mut cfg = config();
    cfg.bootstrap = vec!["/ip4/127.0.0.1/tcp/1".into()];
    let err = shoal_net::start(Keypair::generate_ed25519(), cfg)
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("/p2p/"), "{err}");
    let a = node().await;
    let err = a
        .connect("/ip4/127.0.0.1/tcp/1".parse().unwrap())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("dial"), "{err}");
}
