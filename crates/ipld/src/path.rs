//! Parsing `CID[/path]` (optionally prefixed by `/ipfs/`) as users and
//! gateways write it.

use cid::Cid;

/// Longest path below the CID (bytes) and most segments. The whole text
/// may be longer by the CID itself, in whatever base it is written.
pub const MAX_PATH_LEN: usize = 4096;
const MAX_CID_TEXT: usize = 256;
pub const MAX_SEGMENTS: usize = 256;

/// A CID and a path of names below it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpfsPath {
    pub root: Cid,
    pub segments: Vec<String>,
}

/// Why a `CID[/path]` string was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    #[error("path is empty")]
    Empty,
    #[error("path is longer than {MAX_PATH_LEN} bytes or {MAX_SEGMENTS} segments")]
    TooLong,
    #[error("'{text}' is not a CID: {reason}")]
    BadCid { text: String, reason: String },
    #[error("path segment '{0}' is not allowed ('.', '..' and names with NUL are refused)")]
    BadSegment(String),
}

impl std::str::FromStr for IpfsPath {
    type Err = PathError;

    fn from_str(s: &str) -> Result<Self, PathError> {
        if s.len() > MAX_PATH_LEN + MAX_CID_TEXT + "/ipfs/".len() {
            return Err(PathError::TooLong);
        }
        let s = s.strip_prefix("/ipfs/").unwrap_or(s);
        let s = s.trim_start_matches('/');
        let mut parts = s.split('/');
        let text = parts.next().filter(|t| !t.is_empty()).ok_or(PathError::Empty)?;
        if text.len() > MAX_CID_TEXT {
            return Err(PathError::TooLong);
        }
        let root = Cid::try_from(text).map_err(|e| PathError::BadCid {
            text: text.chars().take(100).collect(),
            reason: e.to_string(),
        })?;
        let mut segments = Vec::new();
        let mut below = 0;
        for seg in parts.filter(|p| !p.is_empty()) {
            below += seg.len() + 1;
            if below > MAX_PATH_LEN {
                return Err(PathError::TooLong);
            }
            if seg == "." || seg == ".." || seg.contains('\0') {
                return Err(PathError::BadSegment(seg.to_owned()));
            }
            if segments.len() == MAX_SEGMENTS {
                return Err(PathError::TooLong);
            }
            segments.push(seg.to_owned());
        }
        Ok(IpfsPath { root, segments })
    }
}

impl std::fmt::Display for IpfsPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.root)?;
        for s in &self.segments {
            write!(f, "/{s}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CID: &str = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e";

    #[test]
    fn parses_forms() {
        let p: IpfsPath = format!("/ipfs/{CID}/a/b/").parse().unwrap();
        assert_eq!(p.segments, ["a", "b"]);
        assert_eq!(p.to_string(), format!("{CID}/a/b"));
        let p: IpfsPath = CID.parse().unwrap();
        assert!(p.segments.is_empty());
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!("".parse::<IpfsPath>(), Err(PathError::Empty));
        assert!(matches!(
            "nope/x".parse::<IpfsPath>(),
            Err(PathError::BadCid { .. })
        ));
        assert_eq!(
            format!("{CID}/../etc").parse::<IpfsPath>(),
            Err(PathError::BadSegment("..".into()))
        );
        assert_eq!("x".repeat(5000).parse::<IpfsPath>(), Err(PathError::TooLong));
        // found by the fuzzer: a base58 CID near the limit displays longer (base32)
        let long = format!(
            "zb2rhj7crUKTQYRGCRATFaQ6YFLTde2YzdqbbhAASkL9uRDXn/{}",
            "a".repeat(4046)
        );
        let p: IpfsPath = long.parse().unwrap();
        assert_eq!(p.to_string().parse::<IpfsPath>().unwrap(), p);
    }
}
