//! The `trainer` binary: parse flags, run, map the outcome to an exit code (see `trainer::Error`).

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match trainer::cli::parse(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => {
            let (text, code) = trainer::cli::render_clap_error(&e);
            if code == 0 {
                print!("{text}")
            } else {
                eprintln!("{text}")
            }
            return ExitCode::from(code);
        }
    };
    if cli.check {
        return match cli.params() {
            Ok(_) => ExitCode::SUCCESS,
            Err(problem) => {
                eprintln!(
                    "{}",
                    trainer::one_line(&trainer::cli::check_message(&problem))
                );
                ExitCode::from(1)
            }
        };
    }
    match trainer::Config::try_from(cli).and_then(|config| trainer::run(&config)) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", trainer::one_line(&format!("trainer: error: {e}")));
            ExitCode::from(e.exit_code())
        }
    }
}
