//! `PbNode::decode` on arbitrary bytes: never panics, and whatever it accepts
//! is canonical: it re-encodes to exactly the same bytes (one node, one CID).
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_ipld::dagpb::PbNode;

fuzz_target!(|data: &[u8]| {
    let Ok(node) = PbNode::decode(data) else {
        return;
    };
    let canonical = node.encode();
    assert_eq!(canonical, data, "accepted a non-canonical encoding");
    assert_eq!(
        canonical.len(),
        node.encoded_len(),
        "encoded_len() disagrees with encode()"
    );
    let again = PbNode::decode(&canonical).expect("canonical encoding of a decoded node must decode");
    assert_eq!(again, node, "decode(encode(node)) != node");
    // The canonical encoding is a fixed point.
    assert_eq!(
        again.encode(),
        canonical,
        "encode is not stable across a round trip"
    );
});
