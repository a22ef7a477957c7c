//! `batch-standin --listen 127.0.0.1:PORT`: serves until Ctrl-C.

use std::process::ExitCode;

use batch_standin::cli::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::from_args();
    let print_url = cli.print_url;
    let run = async {
        let handle = batch_standin::serve(cli.try_into()?).await?;
        if print_url {
            println!("{}", handle.url());
        }
        let _ = tokio::signal::ctrl_c().await;
        handle.shutdown().await;
        Ok::<_, batch_standin::Error>(())
    };
    match run.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("batch-standin: {}", e.chain());
            ExitCode::from(2)
        }
    }
}
