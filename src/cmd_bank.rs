//! The command line of the bank channels: `salur bank-gateway` (SNAP BI), bank-sim's SNAP
//! options, and `salur bank export-accounts | import-accounts` (collective account opening by
//! file).

use clap::{Args, Subcommand};
use salur::bank::gateway::{self, Credentials, GatewayOptions};
use salur::bank::snap::{Paths, sign};
use salur::bank::{files, sim_snap};
use salur::config::Settings;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

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
    fn file(&self) -> anyhow::Result<HashMap<String, String>> {
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
    fn identity(&self, file: &HashMap<String, String>) -> anyhow::Result<(String, String, String)> {
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

    fn pick(
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

fn read_pem(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct GatewayArgs {
    #[command(subcommand)]
    pub command: Option<GatewayCommand>,
    #[command(flatten)]
    pub run: GatewayRunArgs,
}

#[derive(Args)]
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

pub async fn gateway(
    mut settings: Settings,
    args: GatewayArgs,
    cancel: impl FnOnce() -> CancellationToken,
) -> anyhow::Result<()> {
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
            Ok(())
        }
        Some(GatewayCommand::SignToken {
            key,
            client_key,
            timestamp,
        }) => {
            let signer = sign::TokenSigner::from_pem(&read_pem(&key)?)
                .map_err(|e| anyhow::anyhow!("{}: {e}", key.display()))?;
            println!("{}", signer.sign(&client_key, &timestamp));
            Ok(())
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
            gateway::run(settings, opts, cancel()).await
        }
    }
}

/// bank-sim over SNAP BI.
#[derive(Args, Clone, Default)]
pub struct SimSnapArgs {
    /// Also serve SNAP BI here (e.g. 127.0.0.1:8443). Without --bank, bank-sim then serves SNAP
    /// only (no AMQP bank queue), leaving the queues to `salur bank-gateway`.
    #[arg(long, value_name = "ADDR")]
    pub snap: Option<std::net::SocketAddr>,
    /// The bank the SNAP server is (its internal accounts, intrabank transfers).
    #[arg(long, default_value = "009")]
    pub snap_bank: String,
    #[command(flatten)]
    pub credentials: CredentialArgs,
    /// The partner's registered RSA public key (PEM).
    #[arg(long, env = "SNAP_PUBLIC_KEY", value_name = "PEM")]
    pub snap_public_key: Option<PathBuf>,
    /// Seconds an access token lives.
    #[arg(long, default_value_t = 900)]
    pub snap_token_ttl: u64,
    /// Timestamps further than this many seconds from bank-sim's clock are refused.
    #[arg(long, default_value_t = 300)]
    pub snap_max_skew: u64,
    /// bank-sim's clock is off by this many seconds (to show clock-skew handling).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub snap_clock_offset: i64,
    /// Share of SNAP transfers carried out and then answered 504 Timeout (0..1).
    #[arg(long, default_value_t = 0.0)]
    pub timeout_rate: f64,
    /// Milliseconds a lost SNAP answer keeps the caller waiting.
    #[arg(long, default_value_t = 60_000)]
    pub snap_lost_delay_ms: u64,
}

impl SimSnapArgs {
    pub fn options(
        &self,
        sim: &salur::bank::sim::SimOptions,
    ) -> anyhow::Result<Option<sim_snap::SnapOptions>> {
        let Some(addr) = self.snap else {
            return Ok(None);
        };
        let file = self.credentials.file()?;
        let c = &self.credentials;
        let key = self
            .snap_public_key
            .clone()
            .or_else(|| file.get("SNAP_PUBLIC_KEY").map(PathBuf::from))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "no partner public key: set SNAP_PUBLIC_KEY or pass --snap-public-key PEM"
                )
            })?;
        let (client_key, client_secret, partner_id) = c.identity(&file)?;
        Ok(Some(sim_snap::SnapOptions {
            addr,
            bank_code: self.snap_bank.clone(),
            client_key,
            client_secret,
            partner_id,
            public_key: sign::TokenVerifier::from_pem(&read_pem(&key)?)
                .map_err(|e| anyhow::anyhow!("{}: {e}", key.display()))?,
            token_ttl: Duration::from_secs(self.snap_token_ttl),
            max_skew: Duration::from_secs(self.snap_max_skew),
            clock_offset: chrono::Duration::seconds(self.snap_clock_offset),
            timeout_rate: self.timeout_rate,
            lost_answer_rate: sim.lost_answer_rate,
            duplicate_rate: sim.duplicate_rate,
            lost_delay: Duration::from_millis(self.snap_lost_delay_ms),
            delay: sim.delay,
            seed: sim.seed,
        }))
    }
}

#[derive(Subcommand)]
pub enum BankCommand {
    /// Create the bank's RabbitMQ user (or give it a new password) and print the password once.
    /// The user may read only the bank's request queue and publish only to the replies
    /// exchange, with routing keys bank.<code>.*. Uses RabbitMQ's management HTTP API
    /// (RABBITMQ_MANAGEMENT_URL, default port 15672 on the host of AMQP_URL).
    Add {
        /// The bank's BI code, e.g. 002.
        code: String,
        /// The bank's name, e.g. "BRI".
        #[arg(long)]
        name: String,
        /// Print {"bank": ..., "user": ..., "password": ..., "amqp_url": ...}.
        #[arg(long)]
        json: bool,
    },
    /// The registered banks and whether their user exists on the broker.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Delete the bank's user (RabbitMQ closes its connections) and forget the bank.
    Remove { code: String },
    /// Write a batch's account-opening requests for one bank as the bank's collective
    /// account-opening file (CSV; layout in the README).
    ExportAccounts {
        #[arg(long, value_name = "CODE")]
        bank: String,
        #[arg(long, value_name = "ID")]
        batch: Uuid,
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Apply the bank's result file (opened with account number and name, or refused with a
    /// code) as account-opening answers: all or nothing.
    ImportAccounts {
        file: PathBuf,
        #[arg(long, value_name = "CODE")]
        bank: String,
        #[arg(long)]
        json: bool,
    },
    /// bank-sim's side of collective account opening: answer a request file with a result
    /// file, deciding as bank-sim does over AMQP (same ledger).
    SimulateResults {
        request: PathBuf,
        #[arg(long, short)]
        output: PathBuf,
        #[arg(long, value_name = "CODE")]
        bank: String,
        /// Share of accounts refused (NIK not found).
        #[arg(long, default_value_t = 0.0)]
        reject_rate: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

pub async fn bank(settings: Settings, command: BankCommand) -> anyhow::Result<()> {
    let pool = salur::store::connect(&settings).await?;
    match command {
        BankCommand::Add { code, name, json } => {
            let creds = salur::bank::users::add(&settings, &pool, &code, &name).await?;
            let url = creds.amqp_url(&settings)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "bank": creds.bank, "user": creds.user,
                        "password": creds.password, "amqp_url": url,
                    })
                );
            } else {
                println!("{}", creds.password);
                eprintln!(
                    "bank {} added as RabbitMQ user {}; keep this password: it is not \
                     shown again. The bank connects with AMQP_URL={}",
                    creds.bank,
                    creds.user,
                    salur::config::redact_url(&url)
                );
            }
        }
        BankCommand::List { json } => {
            let banks = salur::bank::users::list(&settings, &pool).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&banks)?);
            } else {
                println!("{:<6} {:<34} {:<6} name", "bank", "user", "exists");
                for b in banks {
                    println!(
                        "{:<6} {:<34} {:<6} {}",
                        b.bank,
                        b.user,
                        if b.user_exists { "yes" } else { "NO" },
                        b.name
                    );
                }
            }
        }
        BankCommand::Remove { code } => {
            if !salur::bank::users::remove(&settings, &pool, &code).await? {
                anyhow::bail!("bank {code} has no user: see `salur bank list`");
            }
            println!("bank {code} removed");
        }
        BankCommand::ExportAccounts {
            bank,
            batch,
            output,
        } => {
            let n = files::export_accounts(&pool, &bank, batch, &output).await?;
            eprintln!(
                "{n} account-opening requests written to {}",
                output.display()
            );
        }
        BankCommand::ImportAccounts { file, bank, json } => {
            let summary = files::import_accounts(&settings, &pool, &bank, &file).await?;
            salur::ops::submit::publish_now(&settings, &pool).await;
            if json {
                println!("{}", serde_json::to_string(&summary)?);
            } else {
                println!("{summary}");
            }
        }
        BankCommand::SimulateResults {
            request,
            output,
            bank,
            reject_rate,
            seed,
        } => {
            salur::bank::sim::ensure_schema(&pool).await?;
            let opts = salur::bank::sim::SimOptions {
                reject_rate,
                seed,
                ..Default::default()
            };
            let sim = salur::bank::sim::Sim::new(settings, pool, opts);
            let (opened, refused) = files::simulate_results(&sim, &bank, &request, &output).await?;
            eprintln!("{opened} opened, {refused} refused: {}", output.display());
        }
    }
    Ok(())
}
