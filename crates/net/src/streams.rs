//! Raw protocol streams for the exchange protocols (bitswap, DAG sync):
//! a behaviour that accepts inbound streams into a bounded queue per
//! protocol, and opens outbound ones (dialing the peer if needed).
//!
//! It replaces `libp2p-stream`, whose accept queue holds a single stream
//! and drops the rest of a burst: Helia opens one stream per bitswap
//! message, twenty at once, and never resends what was dropped.

use libp2p::core::upgrade::{InboundUpgrade, OutboundUpgrade, UpgradeInfo};
use libp2p::core::{Endpoint, Multiaddr};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::handler::{
    ConnectionEvent, DialUpgradeError, FullyNegotiatedInbound, FullyNegotiatedOutbound,
};
use libp2p::swarm::{
    ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm, NetworkBehaviour,
    NotifyHandler, Stream, StreamProtocol, StreamUpgradeError, SubstreamProtocol, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm,
};
use libp2p::PeerId;
use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::future::{ready, Ready};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Inbound streams queued per protocol before new ones are refused.
pub const ACCEPT_QUEUE: usize = 256;
/// Open requests queued towards the swarm.
const OPEN_QUEUE: usize = 256;
/// Time to negotiate an outbound stream's protocol.
const NEGOTIATION_TIMEOUT: Duration = Duration::from_secs(15);

/// Inbound streams of one protocol.
pub type Incoming = mpsc::Receiver<(PeerId, Stream)>;

/// Why a stream could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenStreamError {
    #[error("the peer does not speak {0}")]
    UnsupportedProtocol(StreamProtocol),
    #[error("could not reach the peer: {0}")]
    Dial(String),
    #[error("negotiating the stream timed out")]
    Timeout,
    #[error("stream: {0}")]
    Io(String),
    #[error("the node is stopping")]
    Stopped,
}

/// The protocol is already being accepted elsewhere.
#[derive(Debug, thiserror::Error)]
#[error("{0} is already accepted")]
pub struct AlreadyRegistered(StreamProtocol);

type Reply = oneshot::Sender<Result<Stream, OpenStreamError>>;

#[derive(Debug)]
pub struct OpenRequest {
    peer: PeerId,
    protocol: StreamProtocol,
    reply: Reply,
}

#[derive(Default)]
struct Shared {
    accept: Mutex<HashMap<StreamProtocol, mpsc::Sender<(PeerId, Stream)>>>,
    dropped: AtomicU64,
}

impl Shared {
    fn protocols(&self) -> Vec<StreamProtocol> {
        let mut map = self.accept.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, tx| !tx.is_closed());
        map.keys().cloned().collect()
    }

    fn deliver(&self, peer: PeerId, stream: Stream, protocol: &StreamProtocol) {
        let map = self.accept.lock().unwrap_or_else(|p| p.into_inner());
        let delivered = map
            .get(protocol)
            .is_some_and(|tx| tx.try_send((peer, stream)).is_ok());
        if !delivered {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, %protocol, "inbound stream queue full or closed: stream dropped");
        }
    }
}

/// The handle callers use (cheap to clone).
#[derive(Clone)]
pub struct Streams {
    shared: Arc<Shared>,
    open: mpsc::Sender<OpenRequest>,
}

impl Streams {
    /// Starts accepting `protocol`; streams beyond `ACCEPT_QUEUE` waiting
    /// ones are refused.
    pub fn accept(&self, protocol: StreamProtocol) -> Result<Incoming, AlreadyRegistered> {
        let mut map = self.shared.accept.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, tx| !tx.is_closed());
        if map.contains_key(&protocol) {
            return Err(AlreadyRegistered(protocol));
        }
        let (tx, rx) = mpsc::channel(ACCEPT_QUEUE);
        map.insert(protocol, tx);
        Ok(rx)
    }

    /// Opens a stream to `peer` speaking `protocol` (dialing if needed).
    pub async fn open_stream(
        &self,
        peer: PeerId,
        protocol: StreamProtocol,
    ) -> Result<Stream, OpenStreamError> {
        let (reply, rx) = oneshot::channel();
        let req = OpenRequest {
            peer,
            protocol,
            reply,
        };
        self.open.send(req).await.map_err(|_| OpenStreamError::Stopped)?;
        rx.await.map_err(|_| OpenStreamError::Stopped)?
    }

    /// Inbound streams dropped because their queue was full.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

/// The swarm side.
pub struct Behaviour {
    shared: Arc<Shared>,
    requests: mpsc::Receiver<OpenRequest>,
    connected: HashMap<PeerId, HashSet<ConnectionId>>,
    waiting_dial: HashMap<PeerId, Vec<OpenRequest>>,
    out: VecDeque<ToSwarm<Infallible, OpenRequest>>,
}

impl Behaviour {
    pub fn new() -> (Behaviour, Streams) {
        let shared = Arc::new(Shared::default());
        let (open, requests) = mpsc::channel(OPEN_QUEUE);
        let b = Behaviour {
            shared: shared.clone(),
            requests,
            connected: HashMap::new(),
            waiting_dial: HashMap::new(),
            out: VecDeque::new(),
        };
        (b, Streams { shared, open })
    }

    fn route(&mut self, req: OpenRequest) {
        if self.connected.contains_key(&req.peer) {
            self.out.push_back(ToSwarm::NotifyHandler {
                peer_id: req.peer,
                handler: NotifyHandler::Any,
                event: req,
            });
            return;
        }
        let peer = req.peer;
        let first = !self.waiting_dial.contains_key(&peer);
        self.waiting_dial.entry(peer).or_default().push(req);
        if first {
            self.out.push_back(ToSwarm::Dial {
                opts: DialOpts::peer_id(peer).build(),
            });
        }
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Handler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(Handler::new(peer, self.shared.clone()))
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: libp2p::core::transport::PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(Handler::new(peer, self.shared.clone()))
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionEstablished(e) => {
                self.connected
                    .entry(e.peer_id)
                    .or_default()
                    .insert(e.connection_id);
                for req in self.waiting_dial.remove(&e.peer_id).unwrap_or_default() {
                    self.out.push_back(ToSwarm::NotifyHandler {
                        peer_id: e.peer_id,
                        handler: NotifyHandler::One(e.connection_id),
                        event: req,
                    });
                }
            }
            FromSwarm::ConnectionClosed(e) => {
                if let Some(set) = self.connected.get_mut(&e.peer_id) {
                    set.remove(&e.connection_id);
                    if set.is_empty() {
                        self.connected.remove(&e.peer_id);
                    }
                }
            }
            FromSwarm::DialFailure(e) => {
                let Some(peer) = e.peer_id else { return };
                if self.connected.contains_key(&peer) {
                    return;
                }
                for req in self.waiting_dial.remove(&peer).unwrap_or_default() {
                    let _ = req.reply.send(Err(OpenStreamError::Dial(e.error.to_string())));
                }
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(&mut self, _: PeerId, _: ConnectionId, event: THandlerOutEvent<Self>) {
        match event {}
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        while let Poll::Ready(Some(req)) = self.requests.poll_recv(cx) {
            self.route(req);
        }
        match self.out.pop_front() {
            Some(ev) => Poll::Ready(ev),
            None => Poll::Pending,
        }
    }
}

/// Negotiates any of a list of protocols and hands the stream over as is.
pub struct Upgrade(pub(crate) Vec<StreamProtocol>);

impl UpgradeInfo for Upgrade {
    type Info = StreamProtocol;
    type InfoIter = std::vec::IntoIter<StreamProtocol>;

    fn protocol_info(&self) -> Self::InfoIter {
        self.0.clone().into_iter()
    }
}

impl InboundUpgrade<Stream> for Upgrade {
    type Output = (Stream, StreamProtocol);
    type Error = Infallible;
    type Future = Ready<Result<Self::Output, Infallible>>;

    fn upgrade_inbound(self, stream: Stream, info: StreamProtocol) -> Self::Future {
        ready(Ok((stream, info)))
    }
}

impl OutboundUpgrade<Stream> for Upgrade {
    type Output = (Stream, StreamProtocol);
    type Error = Infallible;
    type Future = Ready<Result<Self::Output, Infallible>>;

    fn upgrade_outbound(self, stream: Stream, info: StreamProtocol) -> Self::Future {
        ready(Ok((stream, info)))
    }
}

/// One connection's side.
pub struct Handler {
    peer: PeerId,
    shared: Arc<Shared>,
    pending: VecDeque<OpenRequest>,
}

impl Handler {
    fn new(peer: PeerId, shared: Arc<Shared>) -> Handler {
        Handler {
            peer,
            shared,
            pending: VecDeque::new(),
        }
    }
}

impl ConnectionHandler for Handler {
    type FromBehaviour = OpenRequest;
    type ToBehaviour = Infallible;
    type InboundProtocol = Upgrade;
    type OutboundProtocol = Upgrade;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = (StreamProtocol, Reply);

    fn listen_protocol(&self) -> SubstreamProtocol<Upgrade, ()> {
        SubstreamProtocol::new(Upgrade(self.shared.protocols()), ())
    }

    fn on_behaviour_event(&mut self, req: OpenRequest) {
        self.pending.push_back(req);
    }

    fn connection_keep_alive(&self) -> bool {
        !self.pending.is_empty()
    }

    #[allow(deprecated)]
    fn poll(
        &mut self,
        _: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Upgrade, (StreamProtocol, Reply), Infallible>> {
        match self.pending.pop_front() {
            Some(req) => {
                let upgrade = Upgrade(vec![req.protocol.clone()]);
                let protocol = SubstreamProtocol::new(upgrade, (req.protocol, req.reply))
                    .with_timeout(NEGOTIATION_TIMEOUT);
                Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest { protocol })
            }
            None => Poll::Pending,
        }
    }

    #[allow(deprecated)]
    fn on_connection_event(&mut self, event: ConnectionEvent<Upgrade, Upgrade, (), (StreamProtocol, Reply)>) {
        match event {
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
                protocol: (stream, protocol),
                ..
            }) => self.shared.deliver(self.peer, stream, &protocol),
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol: (stream, _),
                info: (_, reply),
            }) => {
                let _ = reply.send(Ok(stream));
            }
            ConnectionEvent::DialUpgradeError(DialUpgradeError {
                info: (protocol, reply),
                error,
            }) => {
                let e = match error {
                    StreamUpgradeError::NegotiationFailed => OpenStreamError::UnsupportedProtocol(protocol),
                    StreamUpgradeError::Timeout => OpenStreamError::Timeout,
                    StreamUpgradeError::Io(e) => OpenStreamError::Io(e.to_string()),
                    StreamUpgradeError::Apply(never) => match never {},
                };
                let _ = reply.send(Err(e));
            }
            _ => {}
        }
    }
}
