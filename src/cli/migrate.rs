//! `tend migrate`.

use std::process::ExitCode;

use crate::config::{ConfigPath, Env};
use crate::store::Upkeep;

pub async fn run(path: &ConfigPath, env: &Env) -> anyhow::Result<ExitCode> {
    let loaded = super::load(path, env, "warn")?;
    let store = super::open_store(&loaded).await?;
    println!("migrations applied ({} store)", store.backend());
    store.close().await;
    Ok(ExitCode::SUCCESS)
}
