//! `tend webhooks`: every webhook endpoint and alert recipient, with its
//! waiting deliveries, what went, what failed, and the last error, so an
//! operator sees at once which endpoint is down and since when.

use std::process::ExitCode;

use serde::Serialize;

use super::table::{Format, print_json, print_table};
use crate::config::{ConfigPath, Env};
use crate::domain::notification::TargetStatus;
use crate::store::{Signals, Upkeep};

#[derive(Debug, clap::Args)]
pub struct WebhooksArgs {
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// One queue as listed (the JSON shape).
#[derive(Debug, Serialize)]
struct Queue {
    /// `webhook:NAME` or `alert:RULE:ADDRESS`.
    target: String,
    /// The endpoint's URL, for a configured webhook.
    url: Option<String>,
    #[serde(flatten)]
    status: TargetStatus,
}

pub async fn run(path: &ConfigPath, env: &Env, args: WebhooksArgs) -> anyhow::Result<ExitCode> {
    let loaded = super::load(path, env, "warn")?;
    let store = super::open_store(&loaded).await?;
    let targets = store.notification_targets().await;
    store.close().await;
    let mut targets = targets?;
    // A configured endpoint nothing was routed to yet is listed too.
    for hook in &loaded.settings.webhooks {
        let target = format!("webhook:{}", hook.name);
        if !targets.iter().any(|t| t.target == target) {
            targets.push(TargetStatus {
                target,
                ..TargetStatus::default()
            });
        }
    }
    targets.sort_by(|a, b| a.target.cmp(&b.target));
    let queues: Vec<Queue> = targets
        .into_iter()
        .map(|status| Queue {
            target: status.target.clone(),
            url: status
                .target
                .strip_prefix("webhook:")
                .and_then(|name| loaded.settings.webhooks.iter().find(|w| w.name == name))
                .map(|w| crate::webhook::post::shown(&w.url)),
            status,
        })
        .collect();
    match args.format {
        Format::Json => print_json(&queues)?,
        Format::Table => {
            let when = |t: Option<chrono::DateTime<chrono::Utc>>| {
                t.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_default()
            };
            let rows: Vec<Vec<String>> = queues
                .iter()
                .map(|q| {
                    vec![
                        q.target.clone(),
                        q.status.backlog.to_string(),
                        when(q.status.oldest_waiting),
                        q.status.sent.to_string(),
                        q.status.failed.to_string(),
                        q.status.dropped.to_string(),
                        when(q.status.last_sent_at),
                        q.status.last_error.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            print_table(
                &[
                    "target",
                    "waiting",
                    "oldest waiting",
                    "sent",
                    "failed",
                    "dropped",
                    "last sent",
                    "last error",
                ],
                &rows,
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
