//! `salur keys status | rotate | generate`: the data keys that seal personal fields.

use clap::Subcommand;
use salur::config::Settings;
use salur::ops::privacy;
use salur::store::{self, sealed::Keyring};
use std::fmt;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum Command {
    /// The keys in the ring, the keys the database knows, and how many values each seals.
    Status,
    /// Add a data key and re-seal every value under it, in chunks, while the pipeline runs;
    /// the old keys are then retired (and may be removed from the key ring).
    Rotate {
        /// Do not add a key: re-seal under the ring's newest key (when the keys come from
        /// SALUR_DATA_KEYS, add the new key there first).
        #[arg(long)]
        no_new_key: bool,
    },
    /// Print a new key ring (a hash key and key 1) for a new installation's key file.
    Generate,
}

/// What a rotation did.
struct Rotation {
    /// The key that encrypts now.
    key: u16,
    resealed: u64,
    /// Keys nothing is sealed with any more.
    retired: Vec<i32>,
}

impl fmt::Display for Rotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Rotation {
            key,
            resealed,
            retired,
        } = self;
        writeln!(f, "key {key} encrypts; {resealed} records re-sealed")?;
        if !retired.is_empty() {
            writeln!(
                f,
                "keys {retired:?} are retired: nothing is sealed with them any more; they \
                 may be removed from the key ring once every process runs with key {key}"
            )?;
        }
        Ok(())
    }
}

pub async fn run(settings: &Settings, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Generate => {
            print!("{}", Keyring::generate().to_text());
        }
        Command::Status => {
            let pool = store::connect(settings).await?;
            print!("{}", privacy::key_status(&pool).await?);
        }
        Command::Rotate { no_new_key } => {
            let pool = store::connect(settings).await?;
            let (key, resealed, retired) = privacy::rotate(&pool, no_new_key, |n| {
                if n % 10_000 < 1000 {
                    eprintln!("re-sealed {n} records…");
                }
            })
            .await?;
            let rotation = Rotation {
                key,
                resealed,
                retired,
            };
            print!("{rotation}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
