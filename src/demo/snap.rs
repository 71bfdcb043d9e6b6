//! `salur demo --snap`: the demo's banks over SNAP BI instead of AMQP. bank-sim serves SNAP (as
//! bank 009), a `bank-gateway` per bank consumes its queue and calls it (intrabank for 009,
//! interbank for the others), and account opening goes by file: every second each bank's
//! waiting records are exported, answered by bank-sim and imported, as a bank exchanging files
//! would. The keys are the repository's **test-only** key pair (tests/fixtures/snap/).

use crate::bank::files;
use crate::bank::gateway::{self, Credentials, GatewayOptions};
use crate::bank::sim::{Sim, SimOptions};
use crate::bank::sim_snap::{self, SnapOptions};
use crate::bank::snap::{Paths, sign};
use crate::config::Settings;
use crate::domain::BankCode;
use sqlx::PgPool;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const TEST_ONLY_KEY: &str = include_str!("../../tests/fixtures/snap/partner.key.pem");
const TEST_ONLY_PUB: &str = include_str!("../../tests/fixtures/snap/partner.pub.pem");
const SNAP_BANK: &str = "009";

/// Starts bank-sim's SNAP server and a gateway per known bank; returns bank-sim (for the file
/// exchange).
pub async fn start(
    settings: &Settings,
    pool: &PgPool,
    ledger: &PgPool,
    bank: &SimOptions,
    dir: &std::path::Path,
    services: &mut JoinSet<anyhow::Result<()>>,
    cancel: &CancellationToken,
) -> anyhow::Result<Arc<Sim>> {
    let secret = Uuid::new_v4().simple().to_string();
    let sim = Arc::new(Sim::new(settings.clone(), ledger.clone(), bank.clone()));
    let opts = SnapOptions {
        addr: "127.0.0.1:0".parse()?,
        bank_code: SNAP_BANK.into(),
        client_key: "salur-demo".into(),
        client_secret: secret.clone(),
        partner_id: "SALURDEMO".into(),
        public_key: sign::TokenVerifier::from_pem(TEST_ONLY_PUB)?,
        token_ttl: Duration::from_secs(900),
        max_skew: Duration::from_secs(300),
        clock_offset: chrono::Duration::zero(),
        timeout_rate: 0.0,
        // A lost answer: paid, then no answer within the gateway's timeout.
        lost_answer_rate: bank.lost_answer_rate,
        duplicate_rate: 0.0,
        lost_delay: Duration::from_secs(15),
        delay: Duration::ZERO,
        seed: bank.seed,
    };
    let (addr, task) = sim_snap::serve(sim.clone(), ledger.clone(), opts, cancel.clone()).await?;
    services.spawn(async move { task.await? });
    let signer = sign::TokenSigner::from_pem(TEST_ONLY_KEY)?;
    for (code, _) in BankCode::KNOWN {
        let opts = GatewayOptions {
            bank: (*code).into(),
            snap_bank: SNAP_BANK.into(),
            snap_url: format!("http://{addr}"),
            paths: Paths::profile("standard")?,
            credentials: Credentials {
                client_key: "salur-demo".into(),
                client_secret: secret.clone(),
                partner_id: "SALURDEMO".into(),
                channel_id: "95221".into(),
                signer: signer.clone(),
            },
            source_account: "0090000000001".into(),
            concurrency: 16,
            rate_limit: None,
            http_timeout: Duration::from_secs(10),
            journal: dir.join(format!("gateway-{code}.journal")),
            prefetch: 8,
        };
        let bank_settings = gateway::as_bank_user(settings, pool, code).await?;
        services.spawn(gateway::run(bank_settings, opts, cancel.clone()));
    }
    Ok(sim)
}

/// The file exchange of account openings for `batch`, every second until `cancel`.
pub async fn exchange_files(
    settings: Settings,
    pool: PgPool,
    sim: Arc<Sim>,
    batch: Uuid,
    dir: PathBuf,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        for (code, _) in BankCode::KNOWN {
            let request = dir.join(format!("rekening-{code}.csv"));
            let result = dir.join(format!("hasil-{code}.csv"));
            if files::export_accounts(&pool, code, batch, &request).await? == 0 {
                continue;
            }
            let (opened, refused) = files::simulate_results(&sim, code, &request, &result).await?;
            if opened + refused > 0 {
                files::import_accounts(&settings, &pool, code, &result).await?;
            }
        }
    }
}
