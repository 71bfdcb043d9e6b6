//! `salur reconcile FILE --bank CODE`: reconcile a bank statement (MT940 or the CSV export)
//! line by line; `--list` and `--show ID` read the stored ones.

use salur::config::Settings;
use salur::ops::reconcile;
use std::path::PathBuf;
use std::process::ExitCode;
use uuid::Uuid;

#[derive(clap::Args)]
pub struct Args {
    /// The statement: MT940 (`:20:` first) or the CSV export (see the README).
    #[arg(required_unless_present_any = ["list", "show"])]
    file: Option<PathBuf>,
    /// The bank whose statement it is (e.g. 002).
    #[arg(long, required_unless_present_any = ["list", "show"])]
    bank: Option<String>,
    /// List the latest reconciliations (of --bank if given) instead.
    #[arg(long, conflicts_with_all = ["file", "show"])]
    list: bool,
    /// Show a stored reconciliation with its exceptions instead.
    #[arg(long, value_name = "ID", conflicts_with = "file")]
    show: Option<Uuid>,
    /// The person reconciling, named on the audit trail (default: the login name).
    #[arg(long)]
    person: Option<String>,
    #[arg(long)]
    json: bool,
}

pub async fn run(settings: &Settings, a: Args) -> anyhow::Result<ExitCode> {
    let pool = salur::store::connect(settings).await?;
    if a.list {
        let list = reconcile::list(&pool, a.bank.as_deref(), 100).await?;
        if a.json {
            println!("{}", serde_json::to_string_pretty(&list)?);
        } else {
            for s in list {
                println!(
                    "{} bank {} {} {} {:>6} matched {:>5} returned {:>5} exceptions",
                    s.id,
                    s.bank_code,
                    s.statement_ref,
                    s.statement_date,
                    s.matched,
                    s.returned,
                    s.exception_count
                );
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let report = match (a.show, &a.file, &a.bank) {
        (Some(id), _, _) => reconcile::show(&pool, id).await?,
        (None, Some(file), Some(bank)) => {
            let bytes = std::fs::read(file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let name = file.display().to_string();
            let actor = super::shared::actor(a.person.clone());
            reconcile::reconcile(&pool, bank, &name, &bytes, &actor).await?
        }
        _ => unreachable!("clap requires FILE and --bank"),
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(ExitCode::SUCCESS)
}
