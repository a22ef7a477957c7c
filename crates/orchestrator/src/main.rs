//! The `orchestrator` binary: parse the command line, hand it to the library, exit with its
//! code. All behaviour lives in `orchestrator::cli`.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    orchestrator::cli::main(orchestrator::cli::Cli::parse()).await
}
