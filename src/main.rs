//! The `tend` binary: parse the command line, run it, map the outcome to an
//! exit code (0 ok, 1 bad input or a failure explained on stderr, 2 usage).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = tend::cli::Cli::parse();
    let env = tend::config::Env::capture();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(tend::cli::run(cli, env)) {
        Ok(code) => code,
        Err(e) => {
            // `{:#}` prints the cause chain on one line: "what failed: why".
            eprintln!("error: {e:#}");
            ExitCode::from(tend::cli::EXIT_INVALID)
        }
    }
}
