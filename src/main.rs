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
    quiet_on_closed_stdout();
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
        // The reader went away (`tend messages | head -1`): it has what it
        // wanted, and nobody is left to read an error.
        Err(e) if closed_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the cause chain on one line: "what failed: why".
            eprintln!("error: {e:#}");
            ExitCode::from(tend::cli::EXIT_INVALID)
        }
    }
}

/// Whether `e` is a write to a pipe whose reader has gone.
fn closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == Some(std::io::ErrorKind::BrokenPipe)
    })
}

/// The printing helpers return a closed pipe as an error; the few lines a
/// command prints with `println!` would panic on one instead. This turns
/// that panic alone into the same quiet exit; any other panic is reported
/// as before.
fn quiet_on_closed_stdout() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("os error 32") {
            std::process::exit(0);
        }
        report(info);
    }));
}
