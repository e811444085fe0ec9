//! Identify (`/ipfs/id/1.0.0`, push `/ipfs/id/push/1.0.0`) with signed peer
//! records in the standard format (RFC 0002/0003: domain
//! "libp2p-peer-record", payload type 0x0301), as go-libp2p and js-libp2p
//! send and check them.
//!
//! rust-libp2p's identify (0.48, the newest release) signs its record only
//! in a legacy rust format that js-libp2p rejects together with the whole
//! message (rust-libp2p #6204), so shoal speaks identify itself. On each
//! connection it asks the peer once, answers the peer's request, and pushes
//! its record to every peer when its addresses change. A received record is
//! checked (signature, peer id) and its addresses win over the unsigned
//! list; the peer's protocols are reported to the swarm (Kademlia uses
//! them) and its view of our address becomes an external address candidate.

use crate::streams::Upgrade;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{AsyncReadExt, AsyncWriteExt, FutureExt, StreamExt};
use libp2p::core::{Endpoint, Multiaddr, PeerRecord, SignedEnvelope};
use libp2p::identity::{Keypair, PublicKey};
use libp2p::swarm::handler::{
    ConnectionEvent, FullyNegotiatedInbound, FullyNegotiatedOutbound, ProtocolSupport, ProtocolsChange,
};
use libp2p::swarm::{
    ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm, NetworkBehaviour,
    NotifyHandler, Stream, StreamProtocol, SubstreamProtocol, THandler, THandlerInEvent, THandlerOutEvent,
    ToSwarm,
};
use libp2p::PeerId;
use shoal_ipld::dagpb::Reader;
use shoal_ipld::pb::bytes_field;
use shoal_ipld::varint;
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/ipfs/id/1.0.0");
pub const PUSH_PROTOCOL: StreamProtocol = StreamProtocol::new("/ipfs/id/push/1.0.0");
/// Largest identify message accepted.
pub const MAX_MESSAGE: usize = 64 << 10;
const MAX_ADDRS: usize = 128;
const MAX_PROTOCOLS: usize = 512;
/// Identify exchanges running at once on one connection.
const MAX_RUNNING: usize = 4;
const TIMEOUT: Duration = Duration::from_secs(15);

/// What a peer told us about itself (checked).
#[derive(Debug, Clone)]
pub struct Info {
    pub public_key: PublicKey,
    pub protocol_version: String,
    pub agent_version: String,
    /// From its signed record when it sent a valid one.
    pub listen_addrs: Vec<Multiaddr>,
    pub protocols: Vec<StreamProtocol>,
    /// Our address as the peer sees it.
    pub observed_addr: Option<Multiaddr>,
    /// Whether `listen_addrs` came from a valid signed peer record.
    pub signed: bool,
}

#[derive(Debug)]
pub enum Event {
    Received { peer_id: PeerId, info: Info },
}

/// The message as on the wire.
#[derive(Debug, Default, PartialEq)]
struct Message {
    public_key: Vec<u8>,
    listen_addrs: Vec<Vec<u8>>,
    protocols: Vec<String>,
    observed_addr: Option<Vec<u8>>,
    protocol_version: String,
    agent_version: String,
    signed_peer_record: Option<Vec<u8>>,
}

#[derive(Debug, thiserror::Error)]
pub enum IdError {
    #[error("identify message: {0}")]
    Malformed(String),
    #[error("identify stream: {0}")]
    Io(#[from] std::io::Error),
    #[error("identify timed out")]
    Timeout,
}

impl Message {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        bytes_field(&mut out, 1, &self.public_key);
        for a in &self.listen_addrs {
            bytes_field(&mut out, 2, a);
        }
        for p in &self.protocols {
            bytes_field(&mut out, 3, p.as_bytes());
        }
        if let Some(a) = &self.observed_addr {
            bytes_field(&mut out, 4, a);
        }
        bytes_field(&mut out, 5, self.protocol_version.as_bytes());
        bytes_field(&mut out, 6, self.agent_version.as_bytes());
        if let Some(r) = &self.signed_peer_record {
            bytes_field(&mut out, 8, r);
        }
        out
    }

    fn decode(buf: &[u8]) -> Result<Message, IdError> {
        let bad = |e: &dyn std::fmt::Display| IdError::Malformed(e.to_string());
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|e| bad(&e));
        let mut m = Message::default();
        let mut r = Reader::new(buf);
        while !r.done() {
            let (n, wire) = r.key().map_err(|e| bad(&e))?;
            if wire == 0 {
                r.varint().map_err(|e| bad(&e))?;
                continue;
            }
            if wire != 2 {
                return Err(bad(&format!("field {n} has wire type {wire}")));
            }
            let b = r.bytes().map_err(|e| bad(&e))?;
            match n {
                1 => m.public_key = b.to_vec(),
                2 if m.listen_addrs.len() < MAX_ADDRS => m.listen_addrs.push(b.to_vec()),
                3 if m.protocols.len() < MAX_PROTOCOLS => m.protocols.push(text(b)?),
                4 => m.observed_addr = Some(b.to_vec()),
                5 => m.protocol_version = text(b)?,
                6 => m.agent_version = text(b)?,
                8 => m.signed_peer_record = Some(b.to_vec()),
                _ => {}
            }
        }
        Ok(m)
    }

    /// Checks the message came from `peer` and turns it into `Info`.
    fn check(self, peer: PeerId) -> Result<Info, IdError> {
        let public_key = PublicKey::try_decode_protobuf(&self.public_key)
            .map_err(|e| IdError::Malformed(format!("public key: {e}")))?;
        if public_key.to_peer_id() != peer {
            return Err(IdError::Malformed("the public key is not the peer's".into()));
        }
        let record = self.signed_peer_record.as_deref().and_then(|bytes| {
            let env = SignedEnvelope::from_protobuf_encoding(bytes).ok()?;
            let rec = PeerRecord::from_signed_envelope_interop(env.clone())
                .or_else(|_| PeerRecord::from_signed_envelope(env))
                .ok()?;
            (rec.peer_id() == peer).then(|| rec.addresses().to_vec())
        });
        let signed = record.is_some();
        let listen_addrs = record.unwrap_or_else(|| {
            self.listen_addrs
                .iter()
                .filter_map(|a| Multiaddr::try_from(a.clone()).ok())
                .collect()
        });
        let protocols = self
            .protocols
            .into_iter()
            .filter_map(|p| StreamProtocol::try_from_owned(p).ok())
            .collect();
        Ok(Info {
            public_key,
            protocol_version: self.protocol_version,
            agent_version: self.agent_version,
            listen_addrs,
            protocols,
            observed_addr: self.observed_addr.and_then(|a| Multiaddr::try_from(a).ok()),
            signed,
        })
    }
}

/// What we say about ourselves (shared with every connection's handler).
struct Local {
    key: Keypair,
    protocol_version: String,
    agent_version: String,
    /// Our addresses and their signed record.
    addrs: Mutex<(Vec<Multiaddr>, Option<Vec<u8>>)>,
}

impl Local {
    fn set_addrs(&self, addrs: Vec<Multiaddr>) {
        let record = PeerRecord::new_interop(&self.key, addrs.clone())
            .ok()
            .map(|r| r.into_signed_envelope().into_protobuf_encoding());
        *self.addrs.lock().unwrap_or_else(|p| p.into_inner()) = (addrs, record);
    }

    fn message(&self, observed: &Multiaddr, protocols: &HashSet<StreamProtocol>) -> Message {
        let (addrs, record) = self.addrs.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut protocols: Vec<String> = protocols.iter().map(|p| p.to_string()).collect();
        protocols.sort();
        Message {
            public_key: self.key.public().encode_protobuf(),
            listen_addrs: addrs.iter().map(|a| a.to_vec()).collect(),
            protocols,
            observed_addr: Some(observed.to_vec()),
            protocol_version: self.protocol_version.clone(),
            agent_version: self.agent_version.clone(),
            signed_peer_record: record,
        }
    }
}

/// The swarm side.
pub struct Behaviour {
    local: Arc<Local>,
    listen: Vec<Multiaddr>,
    external: Vec<Multiaddr>,
    connections: Vec<(PeerId, ConnectionId)>,
    out: VecDeque<ToSwarm<Event, Push>>,
}

/// Ask a handler to push our current record.
#[derive(Debug)]
pub struct Push;

impl Behaviour {
    pub fn new(key: &Keypair, protocol_version: &str, agent_version: &str) -> Behaviour {
        let local = Arc::new(Local {
            key: key.clone(),
            protocol_version: protocol_version.into(),
            agent_version: agent_version.into(),
            addrs: Mutex::new((Vec::new(), None)),
        });
        local.set_addrs(Vec::new());
        Behaviour {
            local,
            listen: Vec::new(),
            external: Vec::new(),
            connections: Vec::new(),
            out: VecDeque::new(),
        }
    }

    fn addrs_changed(&mut self) {
        let mut all = self.listen.clone();
        all.extend(self.external.iter().filter(|a| !self.listen.contains(a)).cloned());
        self.local.set_addrs(all);
        for (peer_id, conn) in &self.connections {
            self.out.push_back(ToSwarm::NotifyHandler {
                peer_id: *peer_id,
                handler: NotifyHandler::One(*conn),
                event: Push,
            });
        }
    }

    fn handler(&self, peer: PeerId, observed: &Multiaddr) -> Handler {
        Handler {
            local: self.local.clone(),
            peer,
            observed: observed.clone(),
            protocols: HashSet::new(),
            asked: false,
            push: false,
            running: FuturesUnordered::new(),
            events: VecDeque::new(),
        }
    }
}

fn change(list: &mut Vec<Multiaddr>, addr: &Multiaddr, add: bool) -> bool {
    let had = list.contains(addr);
    if add && !had {
        list.push(addr.clone());
    } else if !add && had {
        list.retain(|a| a != addr);
    }
    had != add
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Handler;
    type ToSwarm = Event;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.handler(peer, remote))
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        _: Endpoint,
        _: libp2p::core::transport::PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.handler(peer, addr))
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        let changed = match event {
            FromSwarm::NewListenAddr(e) => change(&mut self.listen, e.addr, true),
            FromSwarm::ExpiredListenAddr(e) => change(&mut self.listen, e.addr, false),
            FromSwarm::ExternalAddrConfirmed(e) => change(&mut self.external, e.addr, true),
            FromSwarm::ExternalAddrExpired(e) => change(&mut self.external, e.addr, false),
            FromSwarm::ConnectionEstablished(e) => {
                self.connections.push((e.peer_id, e.connection_id));
                false
            }
            FromSwarm::ConnectionClosed(e) => {
                self.connections.retain(|(_, c)| *c != e.connection_id);
                false
            }
            _ => false,
        };
        if changed {
            self.addrs_changed();
        }
    }

    fn on_connection_handler_event(
        &mut self,
        peer_id: PeerId,
        _: ConnectionId,
        info: THandlerOutEvent<Self>,
    ) {
        if let Some(addr) = &info.observed_addr {
            self.out
                .push_back(ToSwarm::NewExternalAddrCandidate(addr.clone()));
        }
        self.out
            .push_back(ToSwarm::GenerateEvent(Event::Received { peer_id, info }));
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Event, THandlerInEvent<Self>>> {
        match self.out.pop_front() {
            Some(e) => Poll::Ready(e),
            None => Poll::Pending,
        }
    }
}

type Running = BoxFuture<'static, Result<Option<Message>, IdError>>;

/// One connection's side.
pub struct Handler {
    local: Arc<Local>,
    peer: PeerId,
    observed: Multiaddr,
    protocols: HashSet<StreamProtocol>,
    asked: bool,
    push: bool,
    running: FuturesUnordered<Running>,
    events: VecDeque<ConnectionHandlerEvent<Upgrade, (), Info>>,
}

async fn read_message(mut s: Stream) -> Result<Option<Message>, IdError> {
    let mut buf = Vec::new();
    (&mut s)
        .take(MAX_MESSAGE as u64 + 16)
        .read_to_end(&mut buf)
        .await?;
    let (len, n) = varint::decode(&buf).ok_or_else(|| IdError::Malformed("no length".into()))?;
    let body = buf
        .get(n..)
        .filter(|b| b.len() as u64 == len && b.len() <= MAX_MESSAGE)
        .ok_or_else(|| IdError::Malformed("length does not match".into()))?;
    Message::decode(body).map(Some)
}

async fn write_message(mut s: Stream, m: Message) -> Result<Option<Message>, IdError> {
    let body = m.encode();
    let mut buf = Vec::with_capacity(body.len() + 4);
    varint::encode(body.len() as u64, &mut buf);
    buf.extend_from_slice(&body);
    s.write_all(&buf).await?;
    s.close().await?;
    Ok(None)
}

impl Handler {
    fn run(
        &mut self,
        f: impl std::future::Future<Output = Result<Option<Message>, IdError>> + Send + 'static,
    ) {
        if self.running.len() >= MAX_RUNNING {
            tracing::debug!(peer = %self.peer, "identify: too many exchanges at once, dropping one");
            return;
        }
        let timed = async move {
            tokio::time::timeout(TIMEOUT, f)
                .await
                .unwrap_or(Err(IdError::Timeout))
        };
        self.running.push(timed.boxed());
    }

    fn our_message(&self) -> Message {
        self.local.message(&self.observed, &self.protocols)
    }
}

impl ConnectionHandler for Handler {
    type FromBehaviour = Push;
    type ToBehaviour = Info;
    type InboundProtocol = Upgrade;
    type OutboundProtocol = Upgrade;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = ();

    fn listen_protocol(&self) -> SubstreamProtocol<Upgrade, ()> {
        SubstreamProtocol::new(Upgrade(vec![PROTOCOL, PUSH_PROTOCOL]), ())
    }

    fn on_behaviour_event(&mut self, _: Push) {
        self.push = true;
    }

    fn connection_keep_alive(&self) -> bool {
        !self.running.is_empty()
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ConnectionHandlerEvent<Upgrade, (), Info>> {
        if let Some(e) = self.events.pop_front() {
            return Poll::Ready(e);
        }
        if !self.asked || self.push {
            let proto = if self.asked { PUSH_PROTOCOL } else { PROTOCOL };
            self.push &= self.asked;
            self.asked = true;
            let protocol = SubstreamProtocol::new(Upgrade(vec![proto]), ()).with_timeout(TIMEOUT);
            return Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest { protocol });
        }
        while let Poll::Ready(Some(done)) = self.running.poll_next_unpin(cx) {
            match done.and_then(|m| m.map(|m| m.check(self.peer)).transpose()) {
                Ok(Some(info)) => {
                    let protocols = info.protocols.iter().cloned().collect();
                    self.events
                        .push_back(ConnectionHandlerEvent::ReportRemoteProtocols(
                            ProtocolSupport::Added(protocols),
                        ));
                    self.events
                        .push_back(ConnectionHandlerEvent::NotifyBehaviour(info));
                }
                Ok(None) => {}
                Err(e) => tracing::debug!(peer = %self.peer, "identify: {e}"),
            }
        }
        match self.events.pop_front() {
            Some(e) => Poll::Ready(e),
            None => Poll::Pending,
        }
    }

    fn on_connection_event(&mut self, event: ConnectionEvent<Upgrade, Upgrade, (), ()>) {
        match event {
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
                protocol: (stream, proto),
                ..
            }) => {
                if proto == PROTOCOL {
                    let m = self.our_message();
                    self.run(write_message(stream, m));
                } else {
                    self.run(read_message(stream));
                }
            }
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol: (stream, proto),
                ..
            }) => {
                if proto == PROTOCOL {
                    self.run(read_message(stream));
                } else {
                    let m = self.our_message();
                    self.run(write_message(stream, m));
                }
            }
            ConnectionEvent::LocalProtocolsChange(change) => match change {
                ProtocolsChange::Added(added) => self.protocols.extend(added.cloned()),
                ProtocolsChange::Removed(removed) => {
                    for p in removed {
                        self.protocols.remove(p);
                    }
                }
            },
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_round_trips_and_its_signed_record_checks() {
        let key = Keypair::generate_ed25519();
        let peer = key.public().to_peer_id();
        let local = Local {
            key: key.clone(),
            protocol_version: "ipfs/0.1.0".into(),
            agent_version: "shoal/test".into(),
            addrs: Mutex::new((Vec::new(), None)),
        };
        let addr: Multiaddr = "/ip4/10.0.0.1/tcp/4101".parse().unwrap();
        local.set_addrs(vec![addr.clone()]);
        let protocols = HashSet::from([PROTOCOL, PUSH_PROTOCOL]);
        let observed: Multiaddr = "/ip4/192.0.2.7/tcp/5555".parse().unwrap();
        let m = local.message(&observed, &protocols);
        let wire = m.encode();
        let back = Message::decode(&wire).unwrap();
        assert_eq!(back, m);
        let info = back.check(peer).unwrap();
        assert!(info.signed, "the standard-format record verifies");
        assert_eq!(info.listen_addrs, vec![addr]);
        assert_eq!(info.observed_addr, Some(observed));
        assert_eq!(info.agent_version, "shoal/test");

        // the record checks with the standard domain, as go and js check it
        let env = SignedEnvelope::from_protobuf_encoding(m.signed_peer_record.as_ref().unwrap()).unwrap();
        assert!(env.verify("libp2p-peer-record".into()));

        // someone else's message, or a forged record, is not believed
        let other = Keypair::generate_ed25519().public().to_peer_id();
        assert!(Message::decode(&wire).unwrap().check(other).is_err());
        let mut forged = Message::decode(&wire).unwrap();
        let liar = Keypair::generate_ed25519();
        forged.signed_peer_record = Some(
            PeerRecord::new_interop(&liar, vec!["/ip4/6.6.6.6/tcp/1".parse().unwrap()])
                .unwrap()
                .into_signed_envelope()
                .into_protobuf_encoding(),
        );
        let info = forged.check(peer).unwrap();
        assert!(!info.signed);
        assert_eq!(
            info.listen_addrs,
            vec!["/ip4/10.0.0.1/tcp/4101".parse::<Multiaddr>().unwrap()]
        );
    }

    #[test]
    fn bad_messages_are_errors_not_panics() {
        let mut x: u64 = 7;
        for len in 0..3000usize {
            let buf: Vec<u8> = (0..len % 200)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            if let Ok(m) = Message::decode(&buf) {
                let _ = m.check(PeerId::random());
            }
        }
    }
}
