//! Blocks: bytes addressed by a CID, and checking that they match it.

use cid::Cid;
use multihash::Multihash;
use sha2::{Digest, Sha256};

/// Multihash code of sha2-256.
pub const SHA2_256: u64 = 0x12;
/// Multihash code of the identity "hash" (the digest is the data).
pub const IDENTITY: u64 = 0x00;
/// Largest identity-hashed block accepted (bytes).
pub const MAX_IDENTITY_LEN: usize = 64;

/// The IPLD codecs shoal understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// Raw bytes, no links (0x55).
    Raw,
    /// Protobuf-encoded `PBNode` (0x70), the codec of UnixFS.
    DagPb,
}

impl Codec {
    /// The multicodec code.
    pub fn code(self) -> u64 {
        match self {
            Codec::Raw => 0x55,
            Codec::DagPb => 0x70,
        }
    }

    /// The codec of `cid`, or an error naming the unknown code.
    pub fn of(cid: &Cid) -> Result<Codec, BlockError> {
        match cid.codec() {
            0x55 => Ok(Codec::Raw),
            0x70 => Ok(Codec::DagPb),
            code => Err(BlockError::UnsupportedCodec { cid: *cid, code }),
        }
    }
}

/// Why a block could not be accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BlockError {
    #[error("block {cid}: codec 0x{code:x} is not supported (shoal stores raw and dag-pb blocks)")]
    UnsupportedCodec { cid: Cid, code: u64 },
    #[error("block {cid}: hash function 0x{code:x} is not supported (use sha2-256)")]
    UnsupportedHash { cid: Cid, code: u64 },
    #[error("block {cid}: its bytes do not match its CID (corrupt or forged)")]
    HashMismatch { cid: Cid },
}

/// A block: its CID and its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub cid: Cid,
    pub data: Vec<u8>,
}

impl Block {
    /// Hashes `data` with sha2-256 into a block of `codec`. CIDv0 is only
    /// possible for dag-pb; asking for v0 with raw yields v1.
    pub fn new(codec: Codec, cid_version: u8, data: Vec<u8>) -> Block {
        let cid = cid_of(codec, cid_version, &data);
        Block { cid, data }
    }
}

/// The sha2-256 multihash of `data`.
pub fn sha256(data: &[u8]) -> Multihash<64> {
    let digest = Sha256::digest(data);
    Multihash::wrap(SHA2_256, &digest).expect("32-byte digest fits in 64")
}

/// The CID of `data` under `codec`, hashed with sha2-256.
pub fn cid_of(codec: Codec, cid_version: u8, data: &[u8]) -> Cid {
    let mh = sha256(data);
    if cid_version == 0 && codec == Codec::DagPb {
        Cid::new_v0(mh).expect("sha2-256 multihash is valid for v0")
    } else {
        Cid::new_v1(codec.code(), mh)
    }
}

/// Checks that `data` hashes to `cid` (sha2-256 or identity).
pub fn verify(cid: &Cid, data: &[u8]) -> Result<(), BlockError> {
    let mh = cid.hash();
    let ok = match mh.code() {
        SHA2_256 => Sha256::digest(data).as_slice() == mh.digest(),
        IDENTITY => mh.digest() == data,
        code => return Err(BlockError::UnsupportedHash { cid: *cid, code }),
    };
    if ok {
        Ok(())
    } else {
        Err(BlockError::HashMismatch { cid: *cid })
    }
}

/// Parses CID bytes that must be exactly one CID (the `cid` crate ignores
/// trailing bytes, which would make encodings non-canonical).
pub fn cid_exact(bytes: &[u8]) -> Result<Cid, String> {
    let mut cursor = std::io::Cursor::new(bytes);
    let cid = Cid::read_bytes(&mut cursor).map_err(|e| e.to_string())?;
    if cursor.position() as usize != bytes.len() {
        return Err(format!(
            "{} trailing bytes after the CID",
            bytes.len() - cursor.position() as usize
        ));
    }
    Ok(cid)
}

/// Checks that `cid` is something shoal can store: a known codec and hash.
pub fn check_supported(cid: &Cid) -> Result<Codec, BlockError> {
    let codec = Codec::of(cid)?;
    match cid.hash().code() {
        SHA2_256 if cid.hash().size() == 32 => Ok(codec),
        IDENTITY if usize::from(cid.hash().size()) <= MAX_IDENTITY_LEN => Ok(codec),
        code => Err(BlockError::UnsupportedHash { cid: *cid, code }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_world_raw_cid_matches_kubo() {
        let b = Block::new(Codec::Raw, 1, b"hello world".to_vec());
        assert_eq!(
            b.cid.to_string(),
            "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
        );
        verify(&b.cid, &b.data).unwrap();
        assert_eq!(
            verify(&b.cid, b"hello worle"),
            Err(BlockError::HashMismatch { cid: b.cid })
        );
    }

    #[test]
    fn v0_requested_for_raw_gives_v1() {
        let b = Block::new(Codec::Raw, 0, vec![1, 2, 3]);
        assert_eq!(b.cid.version(), cid::Version::V1);
    }

    #[test]
    fn unknown_codec_is_named() {
        let cid = Cid::new_v1(0x71, sha256(b"x"));
        let err = check_supported(&cid).unwrap_err();
        assert!(err.to_string().contains("0x71"), "{err}");
    }
}
