//! `tend config`: the configuration in force after the file and the
//! environment are layered, as TOML, secrets masked.

use std::process::ExitCode;

use crate::config::{ConfigPath, Env};

pub fn run(path: &ConfigPath, env: &Env) -> anyhow::Result<ExitCode> {
    let loaded = super::load(path, env, "warn")?;
    let mut settings = loaded.settings;
    // A PostgreSQL URL may carry a password; show it as the logs do.
    if let Ok(url) = crate::config::database_url::DatabaseUrl::parse(&settings.database.url) {
        settings.database.url = url.shown().to_owned();
    }
    // A Slack incoming webhook's secret is its path; any URL may carry a
    // login. Shown as `tend webhooks` shows them.
    for hook in &mut settings.webhooks {
        hook.url = crate::webhook::post::shown(&hook.url) + "/[redacted]";
    }
    let from = match &loaded.file {
        Some(file) => format!("{} and the environment", file.display()),
        None => format!(
            "the built-in defaults and the environment (no config file named and none at {})",
            path.path().display()
        ),
    };
    let body = toml::to_string_pretty(&settings)?;
    super::table::print_lines([
        format!("# The configuration in force, from {from}; secrets show as [redacted]."),
        body,
    ])?;
    Ok(ExitCode::SUCCESS)
}
