//! Import settings and the named profiles of IPIP-499.

/// How a directory's size is estimated when deciding whether to shard it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardEstimate {
    /// Σ (name length + CID length) of the children (kubo's classic rule).
    LinksBytes,
    /// The exact size of the flat directory block (IPIP-499).
    BlockBytes,
}

/// Everything that decides the CIDs of an import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportOptions {
    pub cid_version: u8,
    pub raw_leaves: bool,
    pub chunk_size: usize,
    pub max_links: usize,
    pub shard_estimate: ShardEstimate,
    /// A directory whose estimate is strictly greater is sharded.
    pub shard_threshold: u64,
    pub preserve_mode: bool,
    pub preserve_mtime: bool,
}

/// Named sets of options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// kubo's historical default: CIDv0, 256 KiB chunks, 174 links, dag-pb leaves.
    UnixfsV0_2015,
    /// IPIP-499: CIDv1, raw leaves, 1 MiB chunks, 1024 links, block-size sharding.
    UnixfsV1_2025,
}

/// Largest chunk accepted (bytes): blocks bigger than 2 MiB do not travel
/// between IPFS implementations.
pub const MAX_CHUNK_SIZE: usize = 2 << 20;

impl Profile {
    pub const NAMES: [&'static str; 2] = ["unixfs-v0-2015", "unixfs-v1-2025"];

    /// The profile's name, as `--profile` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Profile::UnixfsV0_2015 => Self::NAMES[0],
            Profile::UnixfsV1_2025 => Self::NAMES[1],
        }
    }

    pub fn options(self) -> ImportOptions {
        match self {
            Profile::UnixfsV0_2015 => ImportOptions {
                cid_version: 0,
                raw_leaves: false,
                chunk_size: 256 << 10,
                max_links: 174,
                shard_estimate: ShardEstimate::LinksBytes,
                shard_threshold: 256 << 10,
                preserve_mode: false,
                preserve_mtime: false,
            },
            Profile::UnixfsV1_2025 => ImportOptions {
                cid_version: 1,
                raw_leaves: true,
                chunk_size: 1 << 20,
                max_links: 1024,
                shard_estimate: ShardEstimate::BlockBytes,
                shard_threshold: 256 << 10,
                preserve_mode: false,
                preserve_mtime: false,
            },
        }
    }
}

impl std::str::FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "unixfs-v0-2015" => Ok(Profile::UnixfsV0_2015),
            "unixfs-v1-2025" => Ok(Profile::UnixfsV1_2025),
            _ => Err(format!(
                "unknown profile '{s}' (expected one of {})",
                Profile::NAMES.join(", ")
            )),
        }
    }
}

impl Default for ImportOptions {
    fn default() -> Self {
        Profile::UnixfsV1_2025.options()
    }
}

impl ImportOptions {
    /// Checks the settings are usable.
    pub fn validate(&self) -> Result<(), String> {
        if self.chunk_size == 0 || self.chunk_size > MAX_CHUNK_SIZE {
            return Err(format!("chunk size must be 1..={MAX_CHUNK_SIZE} bytes"));
        }
        if self.max_links < 2 {
            return Err("max links must be at least 2".into());
        }
        if self.cid_version > 1 {
            return Err("CID version must be 0 or 1".into());
        }
        Ok(())
    }
}

/// Parses a chunker spec `size-N`.
pub fn parse_chunker(s: &str) -> Result<usize, String> {
    s.strip_prefix("size-")
        .and_then(|n| n.parse().ok())
        .filter(|&n: &usize| n > 0 && n <= MAX_CHUNK_SIZE)
        .ok_or_else(|| format!("chunker '{s}' is not supported: use size-N with 1 <= N <= {MAX_CHUNK_SIZE}"))
}
