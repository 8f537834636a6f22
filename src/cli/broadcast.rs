//! `tend broadcast TEMPLATE --audience CEL [--at T] [--yes]`: one
//! announcement (a release, a price change) to everyone the audience
//! matches, sent by the same windows, cap, priorities and suppressions as
//! everything else. Without `--yes` it only says how far it would reach
//! and when (see `crate::broadcast`).

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::table::{Format, print_json};
use crate::broadcast::{Asked, prepare, reach};
use crate::config::{ConfigPath, Env};
use crate::domain::broadcast::{Broadcast, LIFETIME, Reach};
use crate::domain::playbook::Kind;
use crate::store::Upkeep;

#[derive(Debug, clap::Args)]
pub struct BroadcastArgs {
    /// The template to send (under the templates folder, as in playbooks)
    pub template: String,
    /// Who gets it: a CEL condition over `customer` and `account`, as an
    /// incident's --affects (e.g. 'customer.plan == "pro"'; 'true' for all)
    #[arg(long)]
    pub audience: String,
    /// When it starts (RFC 3339) [default: now]; each customer gets it in
    /// their send window from then on
    #[arg(long, value_parser = super::parse_now)]
    pub at: Option<DateTime<Utc>>,
    /// The category customers can leave it by (a configured [[category]])
    #[arg(long, default_value = "announcements")]
    pub category: String,
    /// The kind of mail it is (tips and check-ins wait while an incident affects the customer)
    #[arg(long, default_value = "tip", value_parser = parse_kind)]
    pub kind: Kind,
    /// Its name, the step its messages show [default: the template's
    /// name]; a second run with the same name sends nobody a second copy,
    /// so a new announcement from the same template needs a new one
    #[arg(long)]
    pub id: Option<String>,
    /// Put the messages into the outbox; without it nothing is written
    #[arg(long)]
    pub yes: bool,
    /// The time taken as now (RFC 3339) [default: now]
    #[arg(long, value_parser = super::parse_now)]
    pub now: Option<DateTime<Utc>>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

fn parse_kind(raw: &str) -> Result<Kind, String> {
    match raw {
        "tip" => Ok(Kind::Tip),
        "checkin" => Ok(Kind::Checkin),
        "reminder" => Ok(Kind::Reminder),
        _ => Err(format!(
            "{raw:?} is not a kind a broadcast can be; use tip, checkin or reminder (incidents are opened with `tend incident open`)"
        )),
    }
}

/// The JSON shape.
#[derive(Debug, Serialize)]
struct Shown<'a> {
    id: &'a str,
    template: &'a str,
    category: &'a str,
    at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    sent: bool,
    #[serde(flatten)]
    reach: &'a Reach,
}

pub async fn run(path: &ConfigPath, env: &Env, args: BroadcastArgs) -> anyhow::Result<ExitCode> {
    let loaded = super::load(path, env, "warn")?;
    let planner = crate::engine::planner(&loaded)?;
    let now = crate::clock::Clock::from_flag(args.now).now();
    let asked = Asked {
        template: args.template.clone(),
        audience: args.audience.clone(),
        category: args.category.clone(),
        kind: args.kind,
        id: args.id.clone(),
        at: args.at,
    };
    let broadcast = prepare(&loaded.settings, &asked, now)?;
    let store = super::open_store(&loaded).await?;
    let reached = reach(
        &store,
        &loaded.settings,
        planner.windows(),
        &broadcast,
        &args.audience,
        now,
        args.yes,
    )
    .await;
    if let Ok(reached) = &reached {
        // As after a large planning pass: the pages of the read API and
        // the next claims are planned on what the store knows of the rows.
        crate::store::tidy_after(&store, reached.queued).await;
    }
    store.close().await;
    let reached = reached?;
    match args.format {
        Format::Json => print_json(&Shown {
            id: &broadcast.id,
            template: &broadcast.template,
            category: &broadcast.category,
            at: broadcast.at,
            expires_at: broadcast.expires_at(),
            sent: args.yes,
            reach: &reached,
        })?,
        Format::Table => println!("{}", describe(&broadcast, &reached, args.yes)),
    }
    Ok(ExitCode::SUCCESS)
}

/// What a person reads: how far it reaches, when, and what was done.
fn describe(b: &Broadcast, r: &Reach, sent: bool) -> String {
    let at = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    let mut lines = vec![
        format!(
            "broadcast {} (template {}, category {}), from {}",
            b.id,
            b.template,
            b.category,
            at(b.at)
        ),
        format!(
            "  the audience matches {} customers: {} left {} or all mail, {} have it already",
            r.matched, r.suppressed, b.category, r.already
        ),
    ];
    let mut reach = format!("  it reaches {}", r.reaches);
    if let (Some(first), Some(last)) = (r.first_at, r.last_at) {
        reach.push_str(&format!(
            ": {} when it starts, {} later in their send window or under the frequency cap; the first at {}, the last at {}",
            r.at_start,
            r.waiting,
            at(first),
            at(last)
        ));
    }
    lines.push(reach);
    if r.held > 0 {
        lines.push(format!(
            "  {} are held while an open incident affects them; it goes once it is resolved",
            r.held
        ));
    }
    if r.expiring > 0 {
        lines.push(format!(
            "  {} would not get it: the frequency cap holds it past {} days, when it expires unsent",
            r.expiring,
            LIFETIME.num_days()
        ));
    }
    lines.push(if sent {
        format!(
            "queued {} messages; `tend forecast` shows when each goes, `tend messages --status planned` what waits",
            r.queued
        )
    } else {
        "nothing was queued: run it again with --yes to send it".to_owned()
    });
    lines.join("\n")
}
