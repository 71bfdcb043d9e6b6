//! The `salur` command: parses the command line, sets up logging, runs the command (one file
//! per command in `cli/`) and turns its outcome into the exit code.

use clap::Parser as _;
use std::process::ExitCode;

mod cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    cli.init_logging();
    match cli.run().await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            cli::exit_code(&e)
        }
    }
}
