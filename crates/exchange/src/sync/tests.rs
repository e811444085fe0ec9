//! Responder and requester driven against each other, no sockets.

use super::*;
use shoal_ipld::block::cid_of;
use shoal_ipld::dagpb::{PbLink, PbNode};
use shoal_ipld::{Cid, Codec};
use shoal_unixfs::data::{NodeType, UnixFsData};
use std::collections::HashMap;

#[derive(Default)]
struct Mem(HashMap<Cid, Vec<u8>>);

impl Dag for Mem {
    type Error = std::convert::Infallible;
    fn get(&mut self, cid: &Cid) -> Result<Option<Vec<u8>>, Self::Error> {
        Ok(self.0.get(cid).cloned())
    }
}

impl Mem {
    fn leaf(&mut self, bytes: &[u8]) -> Cid {
        let cid = cid_of(Codec::Raw, 1, bytes);
        self.0.insert(cid, bytes.to_vec());
        cid
    }

    fn node(&mut self, kind: NodeType, links: Vec<PbLink>, blocksizes: Vec<u64>) -> Cid {
        let mut data = UnixFsData::new(kind);
        if kind == NodeType::File {
            data.filesize = Some(blocksizes.iter().sum());
        }
        data.blocksizes = blocksizes;
        let bytes = PbNode {
            links,
            data: Some(data.encode()),
        }
        .encode();
        let cid = cid_of(Codec::DagPb, 1, &bytes);
        self.0.insert(cid, bytes);
        cid
    }

    /// A file of `chunks`, each a raw leaf.
    fn file(&mut self, chunks: &[&[u8]]) -> Cid {
        let links = chunks.iter().map(|c| link(self.leaf(c), None)).collect();
        self.node(
            NodeType::File,
            links,
            chunks.iter().map(|c| c.len() as u64).collect(),
        )
    }

    fn dir(&mut self, entries: &[(&str, Cid)]) -> Cid {
        let links = entries.iter().map(|(n, c)| link(*c, Some(n))).collect();
        self.node(NodeType::Directory, links, Vec::new())
    }
}

fn link(hash: Cid, name: Option<&str>) -> PbLink {
    PbLink {
        hash,
        name: name.map(str::to_owned),
        tsize: None,
    }
}

/// Drives a responder over `dag` against a requester for `req`; returns
/// the accepted blocks in order and the end status. Checks that the block
/// bytes in flight never exceed the credit granted by more than one block.
fn exchange(req: &Request, dag: &mut Mem) -> (Vec<Cid>, Vec<Cid>, EndStatus) {
    let mut resp = Responder::new(req, dag);
    let mut reqr = Requester::new(req);
    let (mut blocks, mut dont_have) = (Vec::new(), Vec::new());
    let mut granted = req.window;
    let mut received = 0u64;
    for _ in 0..10_000 {
        let Some(frame) = resp.next(dag) else {
            assert!(resp.needs_credit(), "responder stalled without needing credit");
            let c = reqr
                .credit()
                .expect("requester owes credit when the responder waits");
            granted += c;
            resp.add_credit(c);
            continue;
        };
        match reqr.handle(frame).expect("honest responder") {
            Event::Block { cid, data, .. } => {
                received += data.len() as u64;
                assert!(received <= granted + data.len() as u64, "sent past the credit");
                blocks.push(cid);
            }
            Event::DontHave(cid) => dont_have.push(cid),
            Event::End { status, .. } => {
                assert!(resp.is_finished());
                return (blocks, dont_have, status);
            }
        }
        if let Some(c) = reqr.credit() {
            granted += c;
            resp.add_credit(c);
        }
    }
    panic!("no end");
}

fn tree(m: &mut Mem) -> (Cid, Cid, Cid) {
    let a = m.file(&[b"aaaa", b"bbbb", b"cccc"]);
    let b = m.file(&[b"dddd", b"eeee"]);
    let root = m.dir(&[("a", a), ("b", b)]);
    (root, a, b)
}

fn leaves(m: &Mem, file: Cid) -> Vec<Cid> {
    PbNode::decode(&m.0[&file])
        .unwrap()
        .links
        .iter()
        .map(|l| l.hash)
        .collect()
}

#[test]
fn a_whole_dag_arrives_verified_in_depth_first_order() {
    let mut m = Mem::default();
    let (root, a, b) = tree(&mut m);
    let (blocks, missing, status) = exchange(&Request::new(root), &mut m);
    let mut want = vec![root, a];
    want.extend(leaves(&m, a));
    want.push(b);
    want.extend(leaves(&m, b));
    assert_eq!(blocks, want);
    assert!(missing.is_empty());
    assert_eq!(status, EndStatus::Done);
}

#[test]
fn the_frontier_and_have_roots_leave_out_what_the_requester_holds() {
    let mut m = Mem::default();
    let (root, a, b) = tree(&mut m);
    let mut req = Request::new(root);
    req.want = vec![b];
    let (blocks, _, _) = exchange(&req, &mut m);
    assert_eq!(blocks[0], b);
    assert_eq!(blocks.len(), 3);

    let mut req = Request::new(root);
    req.have = vec![a];
    let (blocks, _, _) = exchange(&req, &mut m);
    assert!(!blocks.contains(&a) && blocks.contains(&b));
    assert!(leaves(&m, a).iter().all(|l| !blocks.contains(l)));

    // blocks only: the wanted nodes without their subtrees
    let mut req = Request::new(root);
    req.want = vec![b, a];
    req.blocks_only = true;
    let (blocks, _, _) = exchange(&req, &mut m);
    assert_eq!(blocks, vec![b, a]);
}

#[test]
fn a_path_and_a_range_send_only_the_blocks_they_need() {
    let mut m = Mem::default();
    let (root, a, _) = tree(&mut m);
    let mut req = Request::new(root);
    req.path = vec!["a".into()];
    req.range = Some(ByteRange {
        start: 5,
        len: Some(2),
    });
    let (blocks, _, status) = exchange(&req, &mut m);
    assert_eq!(status, EndStatus::Done);
    assert_eq!(blocks, vec![root, a, leaves(&m, a)[1]]);

    req.range = Some(ByteRange { start: 3, len: None });
    let (blocks, _, _) = exchange(&req, &mut m);
    let mut want = vec![root, a];
    want.extend(leaves(&m, a));
    assert_eq!(blocks, want);

    req.path = vec!["nope".into()];
    assert_eq!(exchange(&req, &mut m).2, EndStatus::NotFound);
}

#[test]
fn a_sharded_directory_path_resolves_through_its_shards() {
    let mut m = Mem::default();
    let f = m.file(&[b"x"]);
    // a one-level HAMT: the entry's link is named slot-prefix + name
    let slot = shoal_unixfs::hamt::slot("name", 0);
    let mut data = UnixFsData::new(NodeType::HamtShard);
    data.fanout = Some(256);
    data.hash_type = Some(0x22);
    data.data = {
        let mut bits = vec![0u8; 32];
        bits[31 - (slot as usize / 8)] |= 1 << (slot % 8);
        bits
    };
    let bytes = PbNode {
        links: vec![link(f, Some(&format!("{slot:02X}name")))],
        data: Some(data.encode()),
    }
    .encode();
    let shard = cid_of(Codec::DagPb, 1, &bytes);
    m.0.insert(shard, bytes);
    let mut req = Request::new(shard);
    req.path = vec!["name".into()];
    let (blocks, _, status) = exchange(&req, &mut m);
    assert_eq!(status, EndStatus::Done);
    assert_eq!(&blocks[..2], &[shard, f]);
}

#[test]
fn a_small_window_keeps_the_responder_waiting_for_credit() {
    let mut m = Mem::default();
    let (root, _, _) = tree(&mut m);
    let mut req = Request::new(root);
    req.window = 1;
    let mut resp = Responder::new(&req, &mut m);
    assert!(matches!(resp.next(&mut m), Some(Frame::Block { .. })));
    assert_eq!(resp.next(&mut m), None);
    assert!(resp.needs_credit());
    // and the full exchange still completes, never past its credit
    assert_eq!(exchange(&req, &mut m).0.len(), 8);
}

#[test]
fn missing_blocks_are_reported_and_their_siblings_still_sent() {
    let mut m = Mem::default();
    let (root, a, b) = tree(&mut m);
    m.0.remove(&a);
    let (blocks, missing, status) = exchange(&Request::new(root), &mut m);
    assert_eq!(missing, vec![a]);
    assert_eq!(blocks[..2], [root, b]);
    assert_eq!(status, EndStatus::Done);
}

#[test]
fn a_block_shared_by_two_files_is_sent_once() {
    let mut m = Mem::default();
    let a = m.file(&[b"same", b"one"]);
    let b = m.file(&[b"same", b"two"]);
    let root = m.dir(&[("a", a), ("b", b)]);
    let (blocks, _, _) = exchange(&Request::new(root), &mut m);
    assert_eq!(blocks.len(), 6);
}

#[test]
fn lying_responders_are_caught() {
    let mut m = Mem::default();
    let (root, a, _) = tree(&mut m);
    let req = Request::new(root);
    let mut r = Requester::new(&req);
    let stranger = cid_of(Codec::Raw, 1, b"not in this DAG");
    let block = |cid: Cid, data: &[u8]| Frame::Block {
        cid,
        data: data.to_vec(),
    };
    assert_eq!(
        r.handle(block(stranger, b"not in this DAG")),
        Err(Violation::Unrequested(stranger))
    );
    assert_eq!(r.handle(block(root, b"garbage")), Err(Violation::Corrupt(root)));
    assert!(matches!(
        r.handle(block(root, &m.0[&root])),
        Ok(Event::Block { .. })
    ));
    // a dag-pb CID whose bytes hash right but do not decode
    let junk = b"\xff\xff".to_vec();
    let junk_cid = cid_of(Codec::DagPb, 1, &junk);
    let mut r2 = Requester::new(&Request::new(junk_cid));
    assert!(matches!(
        r2.handle(block(junk_cid, &junk)),
        Err(Violation::Malformed(..))
    ));
    assert!(matches!(r.handle(block(a, &m.0[&a])), Ok(Event::Block { .. })));
    assert_eq!(r.handle(Frame::Credit(5)), Err(Violation::Credit));
    let end = Frame::End {
        status: EndStatus::Done,
        message: String::new(),
    };
    assert!(r.handle(end.clone()).is_ok());
    assert_eq!(r.handle(end), Err(Violation::AfterEnd));
}
