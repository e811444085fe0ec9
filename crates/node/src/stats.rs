//! Counters of the exchange as JSON (the `stats` RPC command; Prometheus
//! metrics come with the metrics issue).

use crate::exchange::Exchange;
use serde_json::{json, Value};
use std::sync::atomic::Ordering::Relaxed;

pub fn exchange(x: &Exchange) -> Value {
    let b = &x.bitswap.stats;
    let l = x.bitswap.ledger_stats();
    let s = &x.sync.stats;
    json!({
        "bitswap": {
            "bad_messages": b.bad_messages.load(Relaxed),
            "blocks_sent": b.blocks_sent.load(Relaxed),
            "blocks_received": b.blocks_received.load(Relaxed),
            "unrequested_blocks": b.unrequested.load(Relaxed),
            "peers_banned": b.peers_banned.load(Relaxed),
            "wants_over_limit": l.over_limit,
            "wants_not_found": l.not_found,
        },
        "net": {
            "inbound_streams_dropped": x.net.streams().dropped(),
        },
        "sync": {
            "served": s.served.load(Relaxed),
            "refused": s.refused.load(Relaxed),
            "bad_requests": s.bad_requests.load(Relaxed),
            "blocks_sent": s.blocks_sent.load(Relaxed),
            "blocks_received": s.blocks_received.load(Relaxed),
            "bytes_received": s.bytes_received.load(Relaxed),
            "violations": s.violations.load(Relaxed),
        },
    })
}
