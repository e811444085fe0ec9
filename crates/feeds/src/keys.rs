//! Feed keys. A feed is named by its ed25519 public key (64 hex digits);
//! the writer's secret seed lives in `SHOAL_HOME/feeds/NAME.key`, readable
//! only by its owner, and moves between machines as a `shoal-feed-secret:`
//! string.

use ed25519_dalek::{SigningKey, VerifyingKey};
use std::path::{Path, PathBuf};

const SECRET_PREFIX: &str = "shoal-feed-secret:";

/// A feed's public name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FeedId(pub [u8; 32]);

impl std::fmt::Display for FeedId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

impl std::str::FromStr for FeedId {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<FeedId, KeyError> {
        let bytes = hex32(s).ok_or_else(|| KeyError::BadId(s.chars().take(80).collect()))?;
        VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::BadId(s.into()))?;
        Ok(FeedId(bytes))
    }
}

impl FeedId {
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey::from_bytes(&self.0).expect("checked when parsed or derived")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("'{0}' is not a feed key (64 hex digits of an ed25519 public key)")]
    BadId(String),
    #[error("'{0}' is not a feed name (letters, digits, '-', '_', '.', up to 64)")]
    BadName(String),
    #[error("a feed named '{0}' already exists")]
    Exists(String),
    #[error("no feed named '{0}' (see `shoal feed list`)")]
    Unknown(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: readable by others; refusing to use it (chmod 600)")]
    Permissions(PathBuf),
    #[error("not a feed secret (expected '{SECRET_PREFIX}' and 64 hex digits)")]
    BadSecret,
    #[error("no randomness from the OS: {0}")]
    Random(String),
}

/// A feed we write.
pub struct FeedKey {
    pub name: String,
    signer: SigningKey,
}

fn check_name(name: &str) -> Result<(), KeyError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(KeyError::BadName(name.into()))
    }
}

fn key_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.key"))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.into(),
        source,
    }
}

impl FeedKey {
    pub fn id(&self) -> FeedId {
        FeedId(self.signer.verifying_key().to_bytes())
    }

    pub fn signer(&self) -> &SigningKey {
        &self.signer
    }

    /// Creates a new feed key `name` under `dir` (mode 0600).
    pub fn create(dir: &Path, name: &str) -> Result<FeedKey, KeyError> {
        check_name(name)?;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        Self::write(dir, name, seed)
    }

    /// Loads feed `name` from `dir`.
    pub fn load(dir: &Path, name: &str) -> Result<FeedKey, KeyError> {
        check_name(name)?;
        let path = key_path(dir, name);
        let meta = match std::fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(KeyError::Unknown(name.into())),
            other => other.map_err(io(&path))?,
        };
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(KeyError::Permissions(path));
        }
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        let seed = parse_secret(text.trim())?;
        Ok(FeedKey {
            name: name.into(),
            signer: SigningKey::from_bytes(&seed),
        })
    }

    /// The secret as a string for `feed export`.
    pub fn export(&self) -> String {
        let hex: String = self
            .signer
            .to_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{SECRET_PREFIX}{hex}")
    }

    /// Stores an exported secret as feed `name`.
    pub fn import(dir: &Path, name: &str, secret: &str) -> Result<FeedKey, KeyError> {
        check_name(name)?;
        Self::write(dir, name, parse_secret(secret.trim())?)
    }

    fn write(dir: &Path, name: &str, seed: [u8; 32]) -> Result<FeedKey, KeyError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let path = key_path(dir, name);
        let key = FeedKey {
            name: name.into(),
            signer: SigningKey::from_bytes(&seed),
        };
        let mut f = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(KeyError::Exists(name.into()))
            }
            other => other.map_err(io(&path))?,
        };
        f.write_all(format!("{}\n", key.export()).as_bytes())
            .map_err(io(&path))?;
        f.sync_all().map_err(io(&path))?;
        Ok(key)
    }

    /// The names of the feeds under `dir`.
    pub fn list(dir: &Path) -> Result<Vec<String>, KeyError> {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return Ok(Vec::new());
        };
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".key").map(str::to_owned))
            .collect();
        names.sort();
        Ok(names)
    }
}

fn parse_secret(s: &str) -> Result<[u8; 32], KeyError> {
    s.strip_prefix(SECRET_PREFIX)
        .and_then(hex32)
        .ok_or(KeyError::BadSecret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_load_export_import_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let k = FeedKey::create(dir.path(), "debian").unwrap();
        assert!(matches!(
            FeedKey::create(dir.path(), "debian"),
            Err(KeyError::Exists(_))
        ));
        let again = FeedKey::load(dir.path(), "debian").unwrap();
        assert_eq!(again.id(), k.id());
        let id: FeedId = k.id().to_string().parse().unwrap();
        assert_eq!(id, k.id());

        let other = tempfile::tempdir().unwrap();
        let moved = FeedKey::import(other.path(), "debian", &k.export()).unwrap();
        assert_eq!(moved.id(), k.id());
        assert_eq!(FeedKey::list(dir.path()).unwrap(), vec!["debian".to_string()]);

        for bad in ["", "../x", "a/b", ".hidden", &"x".repeat(65)] {
            assert!(
                matches!(FeedKey::create(dir.path(), bad), Err(KeyError::BadName(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            FeedKey::load(dir.path(), "nope"),
            Err(KeyError::Unknown(_))
        ));
        assert!(matches!(
            FeedKey::import(dir.path(), "x", "garbage"),
            Err(KeyError::BadSecret)
        ));
        assert!("zz".parse::<FeedId>().is_err());

        use std::os::unix::fs::PermissionsExt;
        let p = dir.path().join("debian.key");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            FeedKey::load(dir.path(), "debian"),
            Err(KeyError::Permissions(_))
        ));
    }
}
