//! Signed append-only logs, in the spirit of hypercore: entries addressed
//! by index, a Merkle tree over them in flat-tree layout, and its roots
//! signed with ed25519 together with the length and a fork id. Everything
//! here is sans-IO and deterministic; see `FORMAT.md` for the bytes.

pub mod flat;
pub mod mux;
pub mod replicate;
pub mod store;
pub mod tree;
pub mod wire;

pub use tree::{Node, Proof, RangeProof, SignedHead, Tree, TreeError, UpgradeProof};
