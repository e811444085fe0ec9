//! `shoal-liar STORE`: a test peer that lies. It is a real libp2p node
//! (shoal's network layer) serving the blocks of a real shoal store over
//! the sync protocol and bitswap, except that every block it sends has one
//! byte flipped. Prints `{"peer_id": .., "addr": ..}` when ready; runs until
//! killed. Used by the multi-node tests to check that a lying peer is
//! detected, penalised, and that the fetch completes from honest peers.

use futures::StreamExt;
use shoal_exchange::bitswap::message::{Message, WantType, MAX_MESSAGE};
use shoal_exchange::sync::wire::MAX_REQUEST;
use shoal_exchange::sync::{Dag, Request, Responder};
use shoal_ipld::Cid;
use shoal_net::{KadMode, NetConfig, PeerId, Stream, StreamProtocol};
use shoal_node::framing;
use shoal_store::{BlockStore, StoreError};
use std::sync::Arc;

/// The store, with every block's first byte flipped on the way out.
struct Corrupting<'a>(&'a BlockStore);

impl Dag for Corrupting<'_> {
    type Error = StoreError;
    fn get(&mut self, cid: &Cid) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.0.try_get(cid)?.map(corrupt))
    }
}

fn corrupt(mut data: Vec<u8>) -> Vec<u8> {
    match data.first_mut() {
        Some(b) => *b ^= 0xff,
        None => data.push(0),
    }
    data
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dir = std::env::args().nth(1).expect("usage: shoal-liar STORE_DIR");
    let store = Arc::new(BlockStore::open(&dir).expect("open store"));
    let cfg = NetConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        mdns: false,
        kad_mode: KadMode::Server,
        ..NetConfig::default()
    };
    let key_file = std::path::Path::new(&dir).with_extension("liar.key");
    let key = shoal_net::identity::load_or_create(&key_file).expect("identity");
    let (net, _task) = shoal_net::start(key, cfg).await.expect("start network");
    let mut sync_in = net
        .streams()
        .accept(StreamProtocol::new(shoal_exchange::sync::PROTOCOL))
        .expect("sync protocol");
    let mut bitswap_in = net
        .streams()
        .accept(StreamProtocol::new("/ipfs/bitswap/1.2.0"))
        .expect("bitswap protocol");
    let addr = net.listen_addrs().await.expect("addrs")[0].clone();
    println!(
        "{}",
        serde_json::json!({"peer_id": net.peer_id().to_string(), "addr": format!("{addr}/p2p/{}", net.peer_id())})
    );
    loop {
        tokio::select! {
            Some((_, s)) = sync_in.next() => { tokio::spawn(lie_sync(store.clone(), s)); }
            Some((peer, s)) = bitswap_in.next() => { tokio::spawn(lie_bitswap(store.clone(), net.clone(), peer, s)); }
        }
    }
}

/// Answers one sync request with corrupted blocks (ignoring credit).
async fn lie_sync(store: Arc<BlockStore>, mut stream: Stream) {
    use futures::AsyncWriteExt;
    let Ok(Some(bytes)) = framing::read(&mut stream, MAX_REQUEST).await else {
        return;
    };
    let Ok(req) = Request::decode(&bytes) else { return };
    let frames = tokio::task::spawn_blocking(move || {
        let mut dag = Corrupting(&store);
        let mut resp = Responder::new(&req, &mut dag);
        let mut out = Vec::new();
        while out.len() < 64 {
            resp.add_credit(u64::MAX);
            match resp.next(&mut dag) {
                Some(f) => out.push(f.encode()),
                None => break,
            }
        }
        out
    })
    .await
    .unwrap_or_default();
    for f in frames {
        if framing::write(&mut stream, &f).await.is_err() {
            return;
        }
    }
    let _ = stream.flush().await;
    let _ = stream.close().await;
}

/// Answers want-blocks with corrupted blocks on a stream of our own.
async fn lie_bitswap(store: Arc<BlockStore>, net: shoal_net::NodeHandle, peer: PeerId, mut stream: Stream) {
    use futures::AsyncWriteExt;
    let mut out: Option<Stream> = None;
    while let Ok(Some(bytes)) = framing::read(&mut stream, MAX_MESSAGE).await {
        let Ok(msg) = Message::decode(&bytes) else { return };
        let mut reply = Message::default();
        for e in msg
            .entries
            .iter()
            .filter(|e| !e.cancel && e.want == WantType::Block)
        {
            if let Ok(Some(data)) = store.try_get(&e.cid) {
                reply.blocks.push((e.cid, corrupt(data)));
            }
        }
        if reply.is_empty() {
            continue;
        }
        if out.is_none() {
            let proto = StreamProtocol::new("/ipfs/bitswap/1.2.0");
            out = net.streams().open_stream(peer, proto).await.ok();
        }
        let Some(s) = out.as_mut() else { return };
        if framing::write(s, &reply.encode()).await.is_err() || s.flush().await.is_err() {
            return;
        }
    }
}
