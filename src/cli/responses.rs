//! `tend responses [--since T]`: everything customers (and their mail
//! systems) sent back: answers, clicks, replies, unsubscribes, bounces.

use crate::store::Responses;
use crate::store::Upkeep;
use std::process::ExitCode;

use chrono::{DateTime, Utc};

use super::table::{Format, print_json, print_table};
use crate::config::{ConfigPath, Env};

#[derive(Debug, clap::Args)]
pub struct ResponsesArgs {
    /// Only what arrived at or after this time (RFC 3339) [default: everything]
    #[arg(long, value_parser = super::parse_now)]
    pub since: Option<DateTime<Utc>>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// The longest comment shown in a table cell; JSON has it whole.
const SHOWN: usize = 60;

pub async fn run(path: &ConfigPath, env: &Env, args: ResponsesArgs) -> anyhow::Result<ExitCode> {
    let loaded = super::load(path, env, "warn")?;
    let store = super::open_store(&loaded).await?;
    let responses = store
        .responses(args.since.unwrap_or(DateTime::UNIX_EPOCH))
        .await;
    store.close().await;
    let responses = responses?;
    match args.format {
        Format::Json => print_json(&responses)?,
        Format::Table => {
            let rows: Vec<Vec<String>> = responses
                .iter()
                .map(|r| {
                    let comment = r
                        .comment
                        .as_deref()
                        .unwrap_or_default()
                        .replace(['\r', '\n'], " ");
                    let shown: String = comment.chars().take(SHOWN).collect();
                    vec![
                        r.received_at.format("%Y-%m-%d %H:%M").to_string(),
                        r.customer_id
                            .clone()
                            .unwrap_or_else(|| "(unmatched)".into()),
                        r.kind.clone(),
                        r.value.clone().unwrap_or_default(),
                        if shown.len() < comment.len() {
                            format!("{shown}…")
                        } else {
                            shown
                        },
                    ]
                })
                .collect();
            print_table(
                &["received (UTC)", "customer", "kind", "value", "comment"],
                &rows,
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
