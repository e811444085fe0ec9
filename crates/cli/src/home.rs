//! `SHOAL_HOME`: where shoal keeps its store and settings.

use anyhow::{Context, Result};
use shoal_store::BlockStore;
use std::path::PathBuf;

/// The home directory: `$SHOAL_HOME`, else `~/.shoal`.
pub fn dir() -> Result<PathBuf> {
    if let Some(h) = std::env::var_os("SHOAL_HOME").filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(h));
    }
    let home = std::env::var_os("HOME").context("neither SHOAL_HOME nor HOME is set")?;
    Ok(PathBuf::from(home).join(".shoal"))
}

/// Creates the home (and store) if needed and opens the store.
pub fn open_store() -> Result<BlockStore> {
    let home = dir()?;
    std::fs::create_dir_all(&home).with_context(|| format!("creating {}", home.display()))?;
    let path = home.join("store");
    BlockStore::open(&path).with_context(|| format!("opening the store in {}", path.display()))
}
