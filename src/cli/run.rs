//! `tend run`: the daemon. Applies migrations, validates everything (refusing
//! to start while anything is wrong), then serves until SIGTERM or Ctrl-C.

use std::process::ExitCode;

use crate::config::{ConfigPath, Env};
use crate::store::Store;

pub async fn run(path: &ConfigPath, env: &Env) -> anyhow::Result<ExitCode> {
    let report = crate::check::check(path, env);
    if !report.problems.is_empty() {
        for problem in &report.problems {
            eprintln!("{problem}");
        }
        anyhow::bail!(
            "tend did not start: {} problem(s) above; fix them (tend check lists them) and start again",
            report.problems.len()
        );
    }
    let loaded = super::load(path, env, "")?;
    let store = super::open_store(&loaded).await?;
    let customers = store.count_customers().await?;
    tracing::info!(
        store = store.backend(),
        customers,
        config = %loaded.file.as_ref().map_or("built-in defaults".into(), |f| f.display().to_string()),
        "tend is running; stop it with Ctrl-C or SIGTERM"
    );
    wait_for_stop().await?;
    tracing::info!("stopping");
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_stop() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        result = tokio::signal::ctrl_c() => result?,
    }
    Ok(())
}
