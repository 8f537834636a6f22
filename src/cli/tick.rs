//! `tend tick [--now T]`: one full cycle at time T, then exit: move the
//! maintenances whose start or end has come, plan what is due, deliver it,
//! then take the mail waiting in the reply mailbox (when `[inbound.imap]`
//! is configured).

use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::table::{Format, print_json};
use crate::clock::Clock;
use crate::config::{ConfigPath, Env};
use crate::store::Upkeep;

#[derive(Debug, clap::Args)]
pub struct TickArgs {
    /// The cycle's time (RFC 3339) [default: now]
    #[arg(long, value_parser = super::parse_now)]
    pub now: Option<DateTime<Utc>>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

async fn poll_mailbox(
    loaded: &crate::config::Loaded,
    store: &crate::store::Db,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<crate::inbound::imap::Polled>> {
    let signer = crate::engine::signer(loaded)?;
    Ok(crate::inbound::poll_mailbox(loaded, &signer, store, now).await?)
}

/// What one cycle did (the JSON shape is a contract).
#[derive(Debug, Default, Serialize)]
struct TickOutcome {
    planned: u64,
    sent: u64,
    deferred: u64,
    failed: u64,
    suppressed: u64,
    expired: u64,
}

pub async fn run(path: &ConfigPath, env: &Env, args: TickArgs) -> anyhow::Result<ExitCode> {
    let (loaded, (planner, deliverer), store) =
        super::load_while_connecting(path, env, crate::engine::planner_and_deliverer).await?;
    let now = Clock::from_flag(args.now).now();
    let started = std::time::Instant::now();
    // First, so no announcement a start made stale is delivered.
    let cx = crate::incident::Context::new(&loaded.settings);
    let advanced = crate::incident::advance(&store, &cx, now)
        .await
        .context("moving maintenances at their start and end")?;
    let planned = planner.plan_once(&store, now).await?;
    let planning = started.elapsed();
    let delivered = deliverer.deliver_once(&store, now).await;
    let delivery = started.elapsed() - planning;
    // Then the reply mailbox; a failed delivery is reported first.
    let inbound = match &delivered {
        Ok(_) => Some(poll_mailbox(&loaded, &store, now).await),
        Err(_) => None,
    };
    // Then what the cycle's sends and answers tell people and endpoints.
    let notified = match &delivered {
        Ok(_) => {
            let notifier = crate::engine::notifier(&loaded, deliverer.owner())?;
            let stop = tokio_util::sync::CancellationToken::new();
            let clock = Clock::from_flag(args.now);
            Some(notifier.pass(&store, &deliverer, clock, &stop).await)
        }
        Err(_) => None,
    };
    deliverer.close().await;
    // Last, with the mail out and the SMTP connections closed.
    let delivered_rows = delivered.as_ref().map_or(0, |d| d.rewritten());
    crate::store::tidy_after(&store, planned.rewritten() + delivered_rows).await;
    store.close().await;
    let delivered = delivered?;
    let inbound = inbound.transpose()?.flatten();
    let notified = notified.transpose()?.unwrap_or_default();
    let outcome = TickOutcome {
        planned: planned.planned,
        sent: delivered.sent,
        deferred: delivered.deferred,
        failed: delivered.failed,
        suppressed: delivered.suppressed,
        expired: advanced.expired + planned.expired + delivered.expired,
    };
    if let Some(polled) = inbound {
        // Not in the JSON shape (a contract); a person sees it.
        eprintln!(
            "inbound: took {} message(s) from the reply mailbox",
            polled.taken
        );
    }
    if notified.sent + notified.retrying + notified.failed > 0 {
        // Not in the JSON shape either.
        eprintln!(
            "alerts and webhooks: {} sent, {} to retry, {} failed (tend webhooks shows each queue)",
            notified.sent, notified.retrying, notified.failed
        );
    }
    match args.format {
        Format::Json => print_json(&outcome)?,
        Format::Table => println!(
            "planned {}, sent {}, deferred {}, failed {}, suppressed {}, expired {} (at {}; planning {:.2} s, delivery {:.2} s)",
            outcome.planned,
            outcome.sent,
            outcome.deferred,
            outcome.failed,
            outcome.suppressed,
            outcome.expired,
            now.to_rfc3339(),
            planning.as_secs_f64(),
            delivery.as_secs_f64()
        ),
    }
    Ok(ExitCode::SUCCESS)
}
