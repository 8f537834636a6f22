//! `tend messages [--status S] [--customer ID] [--since T]`: the outbox and its history.

use crate::store::Outbox;
use crate::store::Upkeep;
use std::process::ExitCode;

use super::table::{Format, print_json, print_table};
use crate::config::{ConfigPath, Env};
use crate::domain::customer::CustomerId;
use crate::domain::message::{MessageFilter, Status};

#[derive(Debug, clap::Args)]
pub struct MessagesArgs {
    /// Only messages in this status (planned, sending, sent, deferred, failed, suppressed, expired, unknown)
    #[arg(long, value_parser = Status::parse)]
    pub status: Option<Status>,
    /// Only this customer's messages
    #[arg(long, value_parser = CustomerId::parse)]
    pub customer: Option<CustomerId>,
    /// Only messages planned or changed at or after this time (RFC 3339)
    #[arg(long, value_parser = super::parse_now)]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

pub async fn run(path: &ConfigPath, env: &Env, args: MessagesArgs) -> anyhow::Result<ExitCode> {
    let loaded = super::load(path, env, "warn")?;
    let store = super::open_store(&loaded).await?;
    let filter = MessageFilter {
        status: args.status,
        customer: args.customer,
        since: args.since,
    };
    let messages = store.messages(&filter).await?;
    store.close().await;
    match args.format {
        Format::Json => print_json(&messages)?,
        Format::Table => {
            let rows: Vec<Vec<String>> = messages
                .iter()
                .map(|m| {
                    vec![
                        m.due_at.format("%Y-%m-%d %H:%M").to_string(),
                        m.customer_id.clone(),
                        format!("{}/{}", m.playbook, m.step),
                        m.kind.clone(),
                        m.status.clone(),
                        m.attempts.to_string(),
                        m.reason.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            print_table(
                &[
                    "due (UTC)",
                    "customer",
                    "playbook/step",
                    "kind",
                    "status",
                    "tries",
                    "reason",
                ],
                &rows,
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
