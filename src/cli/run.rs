//! `tend run`: the daemon. Applies migrations, validates everything (refusing
//! to start while anything is wrong, with every problem listed), takes the
//! single-instance lock on a SQLite store (or the instance's name on
//! PostgreSQL), releases what a crashed predecessor left claimed, then
//! serves until SIGTERM or Ctrl-C (see [`crate::daemon::run`] and
//! [`crate::daemon::stop_signal`]).

use std::process::ExitCode;

use crate::config::{ConfigPath, Env};
use crate::store::Customers;
use crate::store::DatabaseUrl;

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
    // Before the store is touched: a second daemon must not even migrate.
    // Held until the daemon exits.
    let _lock = match DatabaseUrl::parse(&loaded.settings.database.url)? {
        DatabaseUrl::Sqlite { path, .. } => Some(crate::daemon::instance::lock(&path)?),
        DatabaseUrl::Postgres { .. } => None,
    };
    // The outbox is there from the start, before its first message: an
    // operator looking for mail finds the folder, not a missing path.
    if loaded.settings.mail.transport == crate::config::settings::Transport::File {
        let dir = &loaded.settings.mail.file.dir;
        std::fs::create_dir_all(dir).map_err(|e| {
            anyhow::anyhow!("cannot create the outbox folder {dir} (mail.file.dir): {e}; create it or point mail.file.dir elsewhere")
        })?;
    }
    let store = super::open_store(&loaded).await?;
    // Before anything is claimed: what a dead predecessor held goes back at
    // once, instead of waiting for its leases.
    let instance = crate::daemon::instance::name(&loaded.settings.instance.name);
    let _name =
        crate::daemon::instance::resume(&store, &instance, loaded.settings.delivery.resend_unknown)
            .await?;
    let mut customers = store.count_customers().await?;
    if loaded.settings.demo.load {
        // Only an empty store gets the demo: it never mixes with real customers.
        let (demo, shown) = if customers == 0 {
            let now = chrono::Utc::now();
            let outcome = super::demo::load(&store, &loaded.settings, now).await?;
            customers = store.count_customers().await?;
            (
                Some(outcome),
                super::demo::showcase(&store, &loaded, now).await?,
            )
        } else {
            (None, None)
        };
        eprintln!(
            "{}",
            super::demo::banner(&loaded.settings, demo, shown.as_ref())
        );
    }
    tracing::info!(
        store = store.backend(),
        customers,
        config = %loaded.file.as_ref().map_or("built-in defaults".into(), |f| f.display().to_string()),
        "tend is starting; stop it with Ctrl-C or SIGTERM, reload with SIGHUP"
    );
    for (key, message) in crate::config::notices(&loaded.settings) {
        tracing::info!(key, "{message}");
    }
    // Caught only now: until here a SIGTERM or Ctrl-C stops a start that
    // hangs (a slow migration, a large demo) at once, as it always has.
    let stop = crate::daemon::stop_signal()?;
    crate::daemon::run(path, env, loaded, store, instance, stop).await?;
    Ok(ExitCode::SUCCESS)
}
