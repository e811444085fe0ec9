//! `shoal-liar STORE`: a test peer that lies. It is a real libp2p node
//! (shoal's network layer) serving the blocks of a real shoal store over
//! the sync protocol and bitswap, except that every block it sends has one
//! byte flipped. Prints `{"peer_id": .., "addr": ..}` when ready; runs until
//! killed. Used by the multi-node tests to check that a lying peer is
//! detected, penalised, and that the fetch completes from honest peers.
//!
//! It also claims every feed it is asked about (`/shoal/feeds/1.0.0`) and
//! answers with a head it cannot have signed.
//!
//! `shoal-liar attack STORE MULTIADDR`: connects to a node and sends it bad
//! wire input (see `attack`), then prints what it sent as JSON and exits.

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
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 4 && args[1] == "attack" {
        return attack(&args[2], &args[3]).await;
    }
    let dir = args
        .get(1)
        .expect("usage: shoal-liar STORE_DIR | attack STORE_DIR MULTIADDR");
    let store = Arc::new(BlockStore::open(dir).expect("open store"));
    let cfg = NetConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        mdns: false,
        kad_mode: KadMode::Server,
        ..NetConfig::default()
    };
    let (net, _task) = start_net(dir, cfg).await;
    let mut sync_in = net
        .streams()
        .accept(StreamProtocol::new(shoal_exchange::sync::PROTOCOL))
        .expect("sync protocol");
    let mut bitswap_in = net
        .streams()
        .accept(StreamProtocol::new("/ipfs/bitswap/1.2.0"))
        .expect("bitswap protocol");
    let mut feeds_in = net
        .streams()
        .accept(shoal_node::feed_net::PROTOCOL)
        .expect("feeds protocol");
    let addr = net.listen_addrs().await.expect("addrs")[0].clone();
    println!(
        "{}",
        serde_json::json!({"peer_id": net.peer_id().to_string(), "addr": format!("{addr}/p2p/{}", net.peer_id())})
    );
    loop {
        tokio::select! {
            Some((_, s)) = sync_in.recv() => { tokio::spawn(lie_sync(store.clone(), s)); }
            Some((peer, s)) = bitswap_in.recv() => { tokio::spawn(lie_bitswap(store.clone(), net.clone(), peer, s)); }
            Some((_, s)) = feeds_in.recv() => { tokio::spawn(lie_feed(s)); }
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

/// Opens every feed channel the peer opens and claims a long forged head.
async fn lie_feed(mut stream: Stream) {
    use futures::AsyncWriteExt;
    use shoal_log::mux::{Frame, MAX_FRAME};
    use shoal_log::wire::Message as LogMessage;
    while let Ok(Some(bytes)) = framing::read(&mut stream, MAX_FRAME).await {
        let Ok(Frame::Open { key, .. }) = Frame::decode(&bytes) else {
            continue;
        };
        let forged = shoal_log::SignedHead {
            fork: 0,
            length: 1000,
            tree_hash: [7; 32],
            signature: [9; 64],
        };
        let frames = [
            Frame::Open { channel: 0, key },
            Frame::Message {
                channel: 0,
                bytes: LogMessage::Head(forged).encode(),
            },
        ];
        for f in frames {
            if framing::write(&mut stream, &f.encode()).await.is_err() {
                return;
            }
        }
        if stream.flush().await.is_err() {
            return;
        }
    }
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

async fn start_net(dir: &str, cfg: NetConfig) -> (shoal_net::NodeHandle, tokio::task::JoinHandle<()>) {
    let key_file = std::path::Path::new(dir).with_extension("liar.key");
    let key = shoal_net::identity::load_or_create(&key_file).expect("identity");
    shoal_net::start(key, cfg).await.expect("start network")
}

fn random_cid(n: u64) -> Cid {
    shoal_ipld::block::cid_of(shoal_ipld::Codec::Raw, 1, &n.to_le_bytes())
}

fn wants(range: std::ops::Range<u64>, want: WantType) -> Message {
    let entries = range
        .map(|n| shoal_exchange::bitswap::message::Entry {
            cid: random_cid(n),
            priority: 1,
            cancel: false,
            want,
            send_dont_have: true,
        })
        .collect();
    Message {
        entries,
        ..Message::default()
    }
}

/// Sends `target` bad input on fresh streams: garbage, an oversized length,
/// a CID that does not parse, too many entries in one message, wantlists
/// past the per-peer limit, a want-block flood for blocks nobody has, and
/// malformed and oversized sync requests.
async fn attack(dir: &str, target: &str) {
    use futures::AsyncWriteExt;
    let cfg = NetConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        mdns: false,
        ..NetConfig::default()
    };
    let (net, _task) = start_net(dir, cfg).await;
    // take the answers (DONT_HAVEs) and drop them
    let mut answers = net
        .streams()
        .accept(StreamProtocol::new("/ipfs/bitswap/1.2.0"))
        .expect("bitswap protocol");
    tokio::spawn(async move {
        while let Some((_, mut s)) = answers.recv().await {
            tokio::spawn(
                async move { while let Ok(Some(_)) = framing::read(&mut s, MAX_MESSAGE * 2).await {} },
            );
        }
    });
    let peer = net
        .connect(target.parse().expect("multiaddr"))
        .await
        .expect("connect");
    let bitswap = StreamProtocol::new("/ipfs/bitswap/1.2.0");
    let sync = StreamProtocol::new(shoal_exchange::sync::PROTOCOL);
    let mut bad_entry = Vec::new();
    // wantlist { entry { block: not a CID } }
    bad_entry.extend_from_slice(&[0x0a, 0x08, 0x0a, 0x06, 0x0a, 0x04, 0xde, 0xad, 0xbe, 0xef]);
    let mut huge = Vec::new();
    shoal_ipld::varint::encode(64 << 20, &mut huge);
    huge.extend_from_slice(&[0u8; 1024]);
    let raw_sends: Vec<(&str, StreamProtocol, Vec<u8>)> = vec![
        (
            "bitswap garbage",
            bitswap.clone(),
            framed(b"\xff\xff\xff\x07 this is not protobuf"),
        ),
        ("bitswap oversized length", bitswap.clone(), huge.clone()),
        ("bitswap bad CID", bitswap.clone(), framed(&bad_entry)),
        (
            "bitswap 1100 entries in one message",
            bitswap.clone(),
            framed(&wants(0..1100, WantType::Have).encode()),
        ),
        (
            "sync garbage request",
            sync.clone(),
            framed(b"\x08\x01\x12\x03abc"),
        ),
        ("sync oversized request", sync.clone(), huge),
    ];
    let mut sent = Vec::new();
    for (what, proto, bytes) in raw_sends {
        let Ok(mut s) = net.streams().open_stream(peer, proto).await else {
            panic!("{what}: could not open a stream");
        };
        let _ = s.write_all(&bytes).await;
        let _ = s.flush().await;
        // the target closes the stream on bad input; wait for that
        let mut buf = [0u8; 256];
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            futures::AsyncReadExt::read(&mut s, &mut buf),
        )
        .await;
        sent.push(what);
    }
    // a valid stream carrying wantlists past the limit and a want-block flood
    let mut s = net.streams().open_stream(peer, bitswap).await.expect("stream");
    for m in [
        wants(10_000..11_000, WantType::Have),
        wants(11_000..12_000, WantType::Have),
        wants(12_000..13_000, WantType::Block),
        wants(13_000..14_000, WantType::Block),
    ] {
        framing::write(&mut s, &m.encode()).await.expect("send wants");
    }
    s.flush().await.expect("flush");
    sent.push("4000 wants for blocks nobody has");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    println!("{}", serde_json::json!({ "sent": sent }));
}

fn framed(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    shoal_ipld::varint::encode(bytes.len() as u64, &mut out);
    out.extend_from_slice(bytes);
    out
}
