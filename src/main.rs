//! The `tend` binary: parse the command line, run it, map the outcome to an
//! exit code (0 ok, 1 bad input or a failure explained on stderr, 2 usage).

use std::process::ExitCode;

use clap::Parser;

// Planning allocates and frees many small values a customer (records,
// their attributes, condition scopes, messages): glibc's allocator spent
// about a third of tend's time there in a pass over 1,000,000 customers,
// mimalloc much less (tend's CPU time 24–28 s instead of 35–37 s).
// Built without transparent huge pages (`no_thp`): with them, each new
// region of its heap was a 2 MiB page the kernel zeroed on first touch,
// a quarter of a short command's CPU time, and 10 MB more memory.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
