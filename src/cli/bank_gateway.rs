//! `salur bank-gateway`: serve one bank's requests by calling its SNAP BI API; `sign` and
//! `sign-token` print SNAP signatures.

use super::shared;
use super::snap_credentials::{CredentialArgs, read_pem};
use clap::Subcommand;
use salur::bank::gateway::{self, Credentials, GatewayOptions};
use salur::bank::snap::{Paths, sign};
use salur::config::Settings;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<GatewayCommand>,
    #[command(flatten)]
    run: GatewayRunArgs,
}

#[derive(clap::Args)]
pub struct GatewayRunArgs {
    /// The bank whose requests are served (queue salur.bank.CODE), e.g. 009.
    #[arg(long, value_name = "CODE")]
    pub bank: Option<String>,
    /// Base URL of the bank's SNAP API, e.g. https://api.bank.example.
    #[arg(long, env = "SNAP_URL", value_name = "URL")]
    pub snap_url: Option<String>,
    /// The bank whose SNAP API is called, holding the programme's source account (default:
    /// --bank). When it differs, inquiries are external and transfers interbank.
    #[arg(long, value_name = "CODE")]
    pub snap_bank: Option<String>,
    /// Path layout of the bank's API: `standard` (/snap/v1.0/…) or `bni` (/snap-service/v1/…).
    #[arg(long, default_value = "standard")]
    pub paths: String,
    #[command(flatten)]
    pub credentials: CredentialArgs,
    /// The partner's RSA private key (PEM), for the access-token signature.
    #[arg(long, env = "SNAP_PRIVATE_KEY", value_name = "PEM")]
    pub private_key: Option<PathBuf>,
    /// `CHANNEL-ID`.
    #[arg(long, env = "SNAP_CHANNEL_ID")]
    pub channel_id: Option<String>,
    /// The programme account transfers are paid from (`sourceAccountNo`).
    #[arg(long, env = "SNAP_SOURCE_ACCOUNT")]
    pub source_account: Option<String>,
    /// SNAP calls in flight at most (per bank).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// SNAP calls per second at most (0: no limit).
    #[arg(long, default_value_t = 0.0)]
    pub rate_limit: f64,
    /// Seconds to wait for a SNAP answer (none is ambiguous: a status inquiry follows).
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
    /// Bank requests handled at once.
    #[arg(long, default_value_t = 8)]
    pub prefetch: u16,
    /// The transfer journal (default salur-gateway-CODE.journal in the working directory).
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// RabbitMQ URL with the bank's own user (default: AMQP_URL).
    #[arg(long, value_name = "URL")]
    pub amqp_url: Option<String>,
}

#[derive(Subcommand)]
pub enum GatewayCommand {
    /// Print the transactional X-SIGNATURE: base64(HMAC-SHA512(secret,
    /// METHOD:path:token:hex(sha256(minify(body))):timestamp)).
    Sign {
        #[arg(long)]
        secret: String,
        #[arg(long, default_value = "POST")]
        method: String,
        #[arg(long)]
        path: String,
        #[arg(long)]
        token: String,
        /// The request body (JSON; minified before hashing). `-` for standard input.
        #[arg(long)]
        body: PathBuf,
        /// e.g. 2026-11-30T10:00:00+07:00
        #[arg(long)]
        timestamp: String,
    },
    /// Print the access-token X-SIGNATURE: base64(SHA256withRSA(key, client_key|timestamp)).
    SignToken {
        /// The partner's RSA private key (PEM).
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        client_key: String,
        #[arg(long)]
        timestamp: String,
    },
}

impl Args {
    /// Whether the gateway serves (rather than printing a signature).
    pub fn serves(&self) -> bool {
        self.command.is_none()
    }
}

pub async fn run(mut settings: Settings, args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(GatewayCommand::Sign {
            secret,
            method,
            path,
            token,
            body,
            timestamp,
        }) => {
            let body = if body.as_os_str() == "-" {
                let mut buf = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)?;
                buf
            } else {
                std::fs::read(&body)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", body.display()))?
            };
            println!(
                "{}",
                sign::transactional(&secret, &method, &path, &token, &body, &timestamp)
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(GatewayCommand::SignToken {
            key,
            client_key,
            timestamp,
        }) => {
            let signer = sign::TokenSigner::from_pem(&read_pem(&key)?)
                .map_err(|e| anyhow::anyhow!("{}: {e}", key.display()))?;
            println!("{}", signer.sign(&client_key, &timestamp));
            Ok(ExitCode::SUCCESS)
        }
        None => {
            let a = args.run;
            let bank = a.bank.ok_or_else(|| {
                anyhow::anyhow!("--bank CODE is required (the bank whose requests to serve)")
            })?;
            let snap_url = a
                .snap_url
                .ok_or_else(|| anyhow::anyhow!("--snap-url URL (or SNAP_URL) is required"))?;
            let file = a.credentials.file()?;
            let c = &a.credentials;
            let key_path = a
                .private_key
                .clone()
                .or_else(|| file.get("SNAP_PRIVATE_KEY").map(PathBuf::from))
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "no private key: set SNAP_PRIVATE_KEY or pass --private-key PEM"
                    )
                })?;
            let signer = sign::TokenSigner::from_pem(&read_pem(&key_path)?)
                .map_err(|e| anyhow::anyhow!("{}: {e}", key_path.display()))?;
            let (client_key, client_secret, partner_id) = c.identity(&file)?;
            let credentials = Credentials {
                client_key,
                client_secret,
                partner_id,
                channel_id: CredentialArgs::pick(
                    &a.channel_id,
                    &file,
                    "SNAP_CHANNEL_ID",
                    "channel id",
                )?,
                signer,
            };
            let opts = GatewayOptions {
                snap_bank: a.snap_bank.unwrap_or_else(|| bank.clone()),
                journal: a
                    .journal
                    .unwrap_or_else(|| PathBuf::from(format!("salur-gateway-{bank}.journal"))),
                bank,
                snap_url: snap_url.trim_end_matches('/').to_owned(),
                paths: Paths::profile(&a.paths)?,
                credentials,
                source_account: CredentialArgs::pick(
                    &a.source_account,
                    &file,
                    "SNAP_SOURCE_ACCOUNT",
                    "source account",
                )?,
                concurrency: a.concurrency,
                rate_limit: (a.rate_limit > 0.0).then_some(a.rate_limit),
                http_timeout: Duration::from_secs(a.timeout.max(1)),
                prefetch: a.prefetch,
            };
            if let Some(url) = a.amqp_url {
                settings.amqp_url = url;
            }
            gateway::run(settings, opts, shared::shutdown_token()).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
