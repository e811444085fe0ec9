//! `SHOAL_HOME/config.toml`: every option, its default, and what it does.
//! A missing file means all defaults; unknown keys are errors (typos should
//! not be silently ignored).

use serde::{Deserialize, Serialize};
use shoal_net::NetConfig;
use std::path::Path;

/// The whole configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub network: NetConfig,
    pub api: ApiConfig,
    pub gateway: GatewayConfig,
}

/// The RPC API the CLI and other programs use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Address of the HTTP/JSON RPC API (loopback only; port 0 picks one).
    pub listen: String,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: "127.0.0.1:5101".into(),
        }
    }
}

/// The HTTP gateway: `/ipfs/CID[/path]` and `/feeds/KEY[@SEQ][/path]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// Address to serve it on (port 0 picks one; "" disables the gateway).
    /// Every feed and CID is served from one origin: keep it on loopback
    /// unless the content is trusted.
    pub listen: String,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            listen: "127.0.0.1:8180".into(),
        }
    }
}

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
}

impl Config {
    /// Reads `path`, or the defaults when it does not exist.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map_err(|e| ConfigError::Parse {
                path: shown,
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(source) => Err(ConfigError::Io { path: shown, source }),
        }
    }

    /// The effective configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_and_typos_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        assert_eq!(Config::load(&path).unwrap(), Config::default());
        std::fs::write(&path, Config::default().to_toml()).unwrap();
        assert_eq!(Config::load(&path).unwrap(), Config::default());
        std::fs::write(
            &path,
            "[network]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\nmdns = false\n",
        )
        .unwrap();
        let c = Config::load(&path).unwrap();
        assert!(!c.network.mdns);
        assert_eq!(c.network.max_inbound, NetConfig::default().max_inbound);
        std::fs::write(&path, "[network]\nmdsn = false\n").unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(err.contains("mdsn"), "{err}");
    }
}
