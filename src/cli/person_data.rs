//! `salur person-data export`: a data subject's access (and erasure) request, by NIK.

use super::shared;
use clap::Subcommand;
use salur::config::Settings;
use salur::ops::privacy;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum Command {
    /// Write everything salur holds about the person with this NIK, decrypted (audited).
    Export {
        #[arg(long)]
        nik: String,
        /// Who asks (recorded in personal_data_log). Default: $USER.
        #[arg(long)]
        actor: Option<String>,
        /// Write here instead of standard output (the file is created readable by you only).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Then erase this person's personal fields (a lawful erasure request); refused while a
        /// payment of theirs is in flight.
        #[arg(long)]
        erase: bool,
    },
}

pub async fn run(settings: &Settings, command: Command) -> anyhow::Result<ExitCode> {
    let pool = salur::store::connect(settings).await?;
    let Command::Export {
        nik,
        actor,
        out,
        erase,
    } = command;
    let actor = actor.unwrap_or_else(shared::operator);
    let data = privacy::person_data(&pool, &nik, &actor, erase).await?;
    let text = serde_json::to_string_pretty(&data)?;
    match out {
        Some(path) => {
            write_private(&path, &text)?;
            eprintln!(
                "{} records written to {}",
                data.records.len(),
                path.display()
            );
        }
        None => println!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `text` to a file only its owner may read (it holds personal data in clear).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)?.write_all(text.as_bytes())
}
