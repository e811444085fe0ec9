//! Talking to a running daemon over its RPC API.

use anyhow::{anyhow, bail, Context, Result};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// A connection to the daemon whose address and token are in SHOAL_HOME.
pub struct Client {
    agent: ureq::Agent,
    url: String,
    token: String,
}

impl Client {
    /// The daemon of `home`, if one is running and answers.
    pub fn find(home: &Path) -> Result<Option<Client>> {
        let Ok(url) = std::fs::read_to_string(shoal_node::daemon::api_file(home)) else {
            return Ok(None);
        };
        let token_path = shoal_node::daemon::token_file(home);
        let token = std::fs::read_to_string(&token_path).with_context(|| {
            format!(
                "a daemon API is announced but {} cannot be read",
                token_path.display()
            )
        })?;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(2)))
            .build();
        let client = Client {
            agent: config.into(),
            url: url.trim().to_owned(),
            token: token.trim().to_owned(),
        };
        // a stale file from a daemon that died: fall back to offline
        match client
            .agent
            .post(format!("{}/api/v1/id", client.url))
            .header("authorization", client.auth())
            .send_empty()
        {
            Ok(_) => Ok(Some(client)),
            Err(_) => Ok(None),
        }
    }

    fn auth(&self) -> String {
        format!("Bearer {}", self.token)
    }

    fn send(&self, command: &str, args: &Value) -> Result<http::Response<ureq::Body>> {
        let resp = self
            .agent
            .post(format!("{}/api/v1/{command}", self.url))
            .header("authorization", self.auth())
            .send_json(args)
            .map_err(|e| anyhow!("daemon at {}: {e}", self.url))?;
        if !resp.status().is_success() {
            let status = resp.status();
            let mut resp = resp;
            let body: Value = resp.body_mut().read_json().unwrap_or_default();
            let msg = body["error"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| status.to_string());
            bail!("{msg}");
        }
        Ok(resp)
    }

    /// Calls `command` and decodes its JSON reply.
    pub fn call<T: DeserializeOwned>(&self, command: &str, args: Value) -> Result<T> {
        let mut resp = self.send(command, &args)?;
        resp.body_mut()
            .with_config()
            .limit(256 << 20)
            .read_json()
            .with_context(|| format!("decoding the daemon's reply to {command}"))
    }

    /// Calls `command` and copies its raw reply body into `out`.
    /// Calls a command that answers with JSON lines; `each` sees every line.
    pub fn lines(&self, command: &str, args: Value, mut each: impl FnMut(Value)) -> Result<()> {
        use std::io::BufRead;
        let resp = self.send(command, &args)?;
        let reader = std::io::BufReader::new(resp.into_body().into_reader());
        for line in reader.lines() {
            let line = line.context("reading the daemon's reply")?;
            each(serde_json::from_str(&line).context("the daemon sent a line that is not JSON")?);
        }
        Ok(())
    }

    pub fn stream(&self, command: &str, args: Value, out: &mut dyn std::io::Write) -> Result<u64> {
        let resp = self.send(command, &args)?;
        let mut reader = resp.into_body().into_reader();
        std::io::copy(&mut reader, out).context("reading the daemon's reply (did the read fail part way?)")
    }
}
