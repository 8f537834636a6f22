//! `tend incident open|maintenance|update|resolve|cancel|list`: telling
//! affected customers first, and again when it is fixed (or, for a
//! maintenance called off, that it will not happen). Each command that
//! sends delivers its notices before it returns.

use crate::store::Incidents;
use crate::store::Upkeep;
use std::process::ExitCode;

use chrono::{DateTime, Utc};

use super::table::{Format, print_json, print_table};
use crate::clock::Clock;
use crate::config::{ConfigPath, Env, Loaded};
use crate::deliver::DeliverOutcome;
use crate::domain::incident::{IncidentKind, IncidentStatus};
use crate::incident::{self, Context, Opening, Outcome};
use crate::store::Db;

#[derive(Debug, clap::Subcommand)]
pub enum IncidentCommand {
    /// Open an incident and send its notice to every affected customer now.
    Open {
        id: String,
        #[arg(long)]
        title: String,
        /// Who it affects: a condition over customers, such as 'customer.attributes.region == "eu"'
        #[arg(long)]
        affects: String,
        /// The notice's template: its path inside the templates folder, without .md.hbs [default: incidents/notice]
        #[arg(long)]
        template: Option<String>,
        /// What customers are told
        #[arg(long, default_value = "")]
        message: String,
        #[arg(long, value_parser = super::parse_now)]
        now: Option<DateTime<Utc>>,
    },
    /// Schedule a maintenance, announced ahead at maintenance.announce lead times.
    Maintenance {
        id: String,
        #[arg(long)]
        title: String,
        #[arg(long)]
        affects: String,
        /// When it starts (RFC 3339)
        #[arg(long, value_parser = super::parse_now)]
        starts: DateTime<Utc>,
        /// When it ends (RFC 3339)
        #[arg(long, value_parser = super::parse_now)]
        ends: DateTime<Utc>,
        /// The announcement's template: its path inside the templates folder, without .md.hbs [default: incidents/maintenance]
        #[arg(long)]
        template: Option<String>,
        #[arg(long, default_value = "")]
        message: String,
        #[arg(long, value_parser = super::parse_now)]
        now: Option<DateTime<Utc>>,
    },
    /// Record news; with --notify, send it to everyone who got the first notice.
    Update {
        id: String,
        #[arg(long)]
        message: String,
        /// investigating, identified, monitoring (incidents); scheduled, in_progress (maintenance)
        #[arg(long, value_parser = IncidentStatus::parse)]
        status: Option<IncidentStatus>,
        #[arg(long)]
        notify: bool,
        #[arg(long, value_parser = super::parse_now)]
        now: Option<DateTime<Utc>>,
    },
    /// Resolve an incident (complete a maintenance) and tell those who got its first notice.
    Resolve {
        id: String,
        #[arg(long)]
        message: String,
        #[arg(long, value_parser = super::parse_now)]
        now: Option<DateTime<Utc>>,
    },
    /// Call off a maintenance that has not started: announcements not sent yet are withdrawn, and only those already told get the cancellation notice.
    Cancel {
        id: String,
        /// What those already told read (why, and whether it will be rescheduled)
        #[arg(long, default_value = "")]
        message: String,
        #[arg(long, value_parser = super::parse_now)]
        now: Option<DateTime<Utc>>,
    },
    /// List incidents and maintenance.
    List {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

pub async fn run(
    path: &ConfigPath,
    env: &Env,
    command: IncidentCommand,
) -> anyhow::Result<ExitCode> {
    let loaded = super::load(path, env, "warn")?;
    let store = super::open_store(&loaded).await?;
    let result = dispatch(&loaded, &store, command).await;
    store.close().await;
    result
}

async fn dispatch(
    loaded: &Loaded,
    store: &Db,
    command: IncidentCommand,
) -> anyhow::Result<ExitCode> {
    let cx = Context::new(&loaded.settings);
    let (what, outcome, now) = match command {
        IncidentCommand::List { format } => {
            let all = store.incidents().await?;
            match format {
                Format::Json => print_json(&all)?,
                Format::Table => {
                    let rows: Vec<Vec<String>> = all
                        .iter()
                        .map(|i| {
                            vec![
                                i.id.clone(),
                                i.kind.as_str().into(),
                                i.status.as_str().into(),
                                i.opened_at.format("%Y-%m-%d %H:%M").to_string(),
                                i.notified.to_string(),
                                i.title.clone(),
                            ]
                        })
                        .collect();
                    print_table(
                        &["id", "kind", "status", "opened (UTC)", "notified", "title"],
                        &rows,
                    )?;
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        IncidentCommand::Open {
            id,
            title,
            affects,
            template,
            message,
            now,
        } => {
            let now = Clock::from_flag(now).now();
            let opening = Opening {
                id: id.clone(),
                kind: IncidentKind::Incident,
                title,
                affects,
                template,
                message,
                starts_at: None,
                ends_at: None,
            };
            let outcome = open_and_deliver(loaded, store, &cx, &opening, now).await?;
            return say(&format!("{id} opened"), outcome);
        }
        IncidentCommand::Maintenance {
            id,
            title,
            affects,
            starts,
            ends,
            template,
            message,
            now,
        } => {
            let now = Clock::from_flag(now).now();
            let opening = Opening {
                id: id.clone(),
                kind: IncidentKind::Maintenance,
                title,
                affects,
                template,
                message,
                starts_at: Some(starts),
                ends_at: Some(ends),
            };
            let outcome = open_and_deliver(loaded, store, &cx, &opening, now).await?;
            return say(&format!("{id} scheduled"), outcome);
        }
        IncidentCommand::Update {
            id,
            message,
            status,
            notify,
            now,
        } => {
            let now = Clock::from_flag(now).now();
            let outcome = incident::update(store, &cx, &id, &message, status, notify, now).await?;
            (format!("{id} updated"), outcome, now)
        }
        IncidentCommand::Resolve { id, message, now } => {
            let now = Clock::from_flag(now).now();
            (
                format!("{id} closed"),
                incident::resolve(store, &cx, &id, &message, now).await?,
                now,
            )
        }
        IncidentCommand::Cancel { id, message, now } => {
            let now = Clock::from_flag(now).now();
            (
                format!("{id} cancelled"),
                incident::cancel(store, &cx, &id, &message, now).await?,
                now,
            )
        }
    };
    report(loaded, store, &what, outcome, now).await
}

/// Delivers what is due now (the notices among it) and says what happened.
async fn report(
    loaded: &Loaded,
    store: &Db,
    what: &str,
    outcome: Outcome,
    now: DateTime<Utc>,
) -> anyhow::Result<ExitCode> {
    let planner = crate::engine::planner(loaded)?;
    let deliverer = crate::engine::deliverer(loaded, &planner)?;
    let delivered = deliverer.deliver_once(store, now).await;
    deliverer.close().await;
    say(what, (outcome, delivered?))
}

/// Opens while delivering: the first affected customers' notices go while
/// the selector is still being evaluated over the rest, so the first
/// notice does not wait for the last customer to be looked at.
async fn open_and_deliver(
    loaded: &Loaded,
    store: &Db,
    cx: &Context<'_>,
    opening: &Opening,
    now: DateTime<Utc>,
) -> anyhow::Result<(Outcome, DeliverOutcome)> {
    let planner = crate::engine::planner(loaded)?;
    let deliverer = crate::engine::deliverer(loaded, &planner)?;
    let done = std::sync::atomic::AtomicBool::new(false);
    let opened = async {
        let opened = incident::open(store, cx, opening, now).await;
        done.store(true, std::sync::atomic::Ordering::Release);
        opened
    };
    let delivering = async {
        let mut total = DeliverOutcome::default();
        loop {
            // Read before the pass: a pass that starts after opening has
            // finished sees every notice.
            let last = done.load(std::sync::atomic::Ordering::Acquire);
            let pass = deliverer.deliver_once(store, now).await?;
            let idle =
                pass.sent + pass.deferred + pass.failed + pass.suppressed + pass.expired == 0;
            total.sent += pass.sent;
            total.deferred += pass.deferred;
            total.failed += pass.failed;
            total.suppressed += pass.suppressed;
            total.expired += pass.expired;
            if last {
                return Ok::<_, crate::store::Error>(total);
            }
            if idle {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    };
    let (opened, delivered) = tokio::join!(opened, delivering);
    deliverer.close().await;
    let (opened, delivered) = (opened?, delivered?);
    // As after a broadcast: an incident that reached many wrote and then
    // rewrote their notices, and counting who was told reads the index
    // alone once the table is vacuumed.
    crate::store::tidy_after(store, opened.notices + delivered.rewritten()).await;
    Ok((opened, delivered))
}

fn say(what: &str, (outcome, delivered): (Outcome, DeliverOutcome)) -> anyhow::Result<ExitCode> {
    let affected = if what.ends_with("opened") || what.ends_with("scheduled") {
        format!("{} customers affected, ", outcome.affected)
    } else {
        String::new()
    };
    println!(
        "{what}: {affected}{} notices; sent {}, suppressed {}, deferred {}, failed {}",
        outcome.notices, delivered.sent, delivered.suppressed, delivered.deferred, delivered.failed
    );
    Ok(ExitCode::SUCCESS)
}
