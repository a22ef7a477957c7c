//! `batch-standin --listen 127.0.0.1:PORT`: serves until Ctrl-C.

use std::process::ExitCode;

use batch_standin::cli::Cli;
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let print_url = cli.print_url;
    let result = async {
        let handle = batch_standin::serve(cli.try_into()?).await?;
        if print_url {
            println!("{}", handle.url());
        }
        let _ = tokio::signal::ctrl_c().await;
        handle.shutdown().await;
        Ok::<_, batch_standin::Error>(())
    };
    match result.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut msg = format!("batch-standin: {e}");
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            eprintln!("{msg}");
            ExitCode::from(2)
        }
    }
}
