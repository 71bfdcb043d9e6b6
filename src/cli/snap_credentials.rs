//! The SNAP BI credentials `bank-gateway` and `bank-sim --snap` take: options, the
//! environment (`SNAP_*`), or a file of `SNAP_NAME=value` lines.

use clap::Args;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Credentials from options, the environment (`SNAP_*`), or a file of `SNAP_NAME=value` lines.
#[derive(Args, Clone, Default)]
pub struct CredentialArgs {
    /// A file of `SNAP_CLIENT_KEY=…` lines (the environment variable names below) for whatever is
    /// not given as an option or in the environment.
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,
    /// The partner's client key (`X-CLIENT-KEY`).
    #[arg(long, env = "SNAP_CLIENT_KEY", hide_env_values = true)]
    pub client_key: Option<String>,
    /// The HMAC-SHA512 secret of transactional signatures.
    #[arg(long, env = "SNAP_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
    /// `X-PARTNER-ID`.
    #[arg(long, env = "SNAP_PARTNER_ID")]
    pub partner_id: Option<String>,
}

impl CredentialArgs {
    pub fn file(&self) -> anyhow::Result<HashMap<String, String>> {
        let Some(path) = &self.credentials else {
            return Ok(HashMap::new());
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!("cannot read the credentials file {}: {e}", path.display())
        })?;
        let mut map = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line.split_once('=').ok_or_else(|| {
                anyhow::anyhow!("{} line {}: expected NAME=value", path.display(), n + 1)
            })?;
            map.insert(k.trim().to_owned(), v.trim().trim_matches('"').to_owned());
        }
        Ok(map)
    }

    /// Client key, client secret and partner id.
    pub fn identity(
        &self,
        file: &HashMap<String, String>,
    ) -> anyhow::Result<(String, String, String)> {
        Ok((
            Self::pick(&self.client_key, file, "SNAP_CLIENT_KEY", "client key")?,
            Self::pick(
                &self.client_secret,
                file,
                "SNAP_CLIENT_SECRET",
                "client secret",
            )?,
            Self::pick(&self.partner_id, file, "SNAP_PARTNER_ID", "partner id")?,
        ))
    }

    pub fn pick(
        given: &Option<String>,
        file: &HashMap<String, String>,
        var: &str,
        what: &str,
    ) -> anyhow::Result<String> {
        given
            .clone()
            .or_else(|| file.get(var).cloned())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "no {what}: set {var}, pass --{}, or put {var}= in --credentials",
                    var.trim_start_matches("SNAP_")
                        .to_lowercase()
                        .replace('_', "-")
                )
            })
    }
}

pub fn read_pem(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))
}
