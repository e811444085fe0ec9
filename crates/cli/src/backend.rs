//! Where a command runs: through the daemon when one is running (it holds
//! the store), or directly on the store otherwise.

use crate::client::Client;
use crate::home;
use anyhow::Result;
use serde::de::DeserializeOwned;
use serde_json::Value;
use shoal_store::BlockStore;

pub enum Backend {
    Local(BlockStore),
    Remote(Client),
}

impl Backend {
    /// The daemon if it answers, else the store opened directly.
    pub fn connect() -> Result<Backend> {
        let home = home::dir()?;
        if let Some(client) = Client::find(&home)? {
            return Ok(Backend::Remote(client));
        }
        Ok(Backend::Local(home::open_store()?))
    }

    /// Runs `local` on the store, or sends `command` with `args` to the daemon.
    pub fn run<T: DeserializeOwned>(
        &self,
        command: &str,
        args: Value,
        local: impl FnOnce(&BlockStore) -> Result<T, shoal_node::ops::OpError>,
    ) -> Result<T> {
        match self {
            Backend::Local(store) => Ok(local(store)?),
            Backend::Remote(client) => client.call(command, args),
        }
    }

    pub fn is_remote(&self) -> bool {
        matches!(self, Backend::Remote(_))
    }
}
