//! `tend forecast [--days N] [--now T] [--customer ID] [--playbook NAME]`:
//! what will be sent, from the planner's own code path, writing nothing.

use std::process::ExitCode;

use chrono::{DateTime, Duration, Utc};

use super::table::{Format, print_json, print_table_in};
use crate::clock::Clock;
use crate::config::{ConfigPath, Env};
use crate::domain::control::escape_line;
use crate::domain::customer::CustomerId;
use crate::domain::message::MessageId;
use crate::planner::{Forecast, Forecasting};
use crate::render::{Letter, Renderer};
use crate::store::{Customers, Upkeep};

#[derive(Debug, clap::Args)]
pub struct ForecastArgs {
    /// How many days ahead to look (up to three years)
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_DAYS)))]
    pub days: u32,
    /// Forecast as of this time (RFC 3339) [default: now]
    #[arg(long, value_parser = super::parse_now)]
    pub now: Option<DateTime<Utc>>,
    /// Only this customer
    #[arg(long, value_parser = CustomerId::parse)]
    pub customer: Option<CustomerId>,
    /// Only this playbook's messages
    #[arg(long)]
    pub playbook: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// The longest horizon: a yearly renewal step three renewals ahead.
const MAX_DAYS: u32 = 3 * 366;

/// How far an empty table looks for the next message: a yearly renewal
/// step's next time, without planning years of a frequent step for every
/// customer.
const NEXT_WITHIN_DAYS: u32 = 400;

pub async fn run(path: &ConfigPath, env: &Env, args: ForecastArgs) -> anyhow::Result<ExitCode> {
    let (_, (planner, renderer), store) = super::load_while_connecting(path, env, |loaded| {
        let planner = crate::engine::planner(loaded)?;
        // Subjects only: links are not shown, so a throwaway key signs them
        // and the real one is neither read nor created.
        let renderer = Renderer::load(&loaded.settings, crate::token::Signer::new(b"forecast"))
            .map_err(|problems| {
                anyhow::anyhow!(
                    "the templates have {} problem(s); run tend check to list them",
                    problems.len()
                )
            })?;
        Ok((planner, renderer))
    })
    .await?;
    if let Some(id) = &args.customer
        && store.customer(id).await?.is_none()
    {
        store.close().await;
        anyhow::bail!(
            "no customer has id {:?}; check the id (tend messages lists customers with mail)",
            id.as_str()
        );
    }
    let now = Clock::from_flag(args.now).now();
    let until = now + Duration::days(i64::from(args.days));
    let subject = |f: &Forecasting<'_>| {
        let letter = Letter {
            message: MessageId(uuid::Uuid::nil()),
            customer: f.customer,
            category: f.category,
            survey: f.survey,
            incident: f.incident,
            account: f.account,
            sender: None,
            now: f.at,
        };
        renderer.render(f.template, &letter).ok().map(|r| r.subject)
    };
    if let Some(name) = &args.playbook
        && !planner.playbook_names().any(|p| p == name)
    {
        store.close().await;
        let names: Vec<&str> = planner.playbook_names().collect();
        anyhow::bail!(
            "no playbook is named {name:?}{}; the playbooks are: {}",
            crate::suggest::did_you_mean(name, names.iter().copied()),
            names.join(", ")
        );
    }
    let mine = |playbook: &str| args.playbook.as_ref().is_none_or(|p| p == playbook);
    let of_playbook = |f: Forecast| Forecast {
        rows: f.rows.into_iter().filter(|r| mine(&r.playbook)).collect(),
        held: f.held.into_iter().filter(|h| mine(&h.playbook)).collect(),
    };
    let forecast = planner
        .forecast(&store, now, until, args.customer.as_ref(), subject)
        .await
        .map(of_playbook);
    // Nothing in the window: look further for the next message, so
    // "nothing" comes with when something will be.
    let next = match &forecast {
        // Only a table says it; JSON stays what the window holds.
        Ok(f)
            if matches!(args.format, Format::Table)
                && f.rows.iter().all(|r| r.reason.is_some())
                && args.days < NEXT_WITHIN_DAYS =>
        {
            planner
                .forecast(
                    &store,
                    now,
                    now + Duration::days(i64::from(NEXT_WITHIN_DAYS)),
                    args.customer.as_ref(),
                    |_| None,
                )
                .await
                .map(of_playbook)
                .map(|later| {
                    later
                        .rows
                        .into_iter()
                        .filter(|r| r.reason.is_none())
                        .min_by_key(|r| r.at)
                })
        }
        _ => Ok(None),
    };
    store.close().await;
    let Forecast { rows, held } = forecast?;
    let next = next?;
    match args.format {
        // The JSON shape is a contract: what goes, and when.
        Format::Json => print_json(&rows)?,
        Format::Table => {
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.at.format("%a %Y-%m-%d %H:%M").to_string(),
                        r.at.with_timezone(&r.zone)
                            .format("%a %H:%M %Z")
                            .to_string(),
                        r.customer_id.clone(),
                        format!("{}/{}", r.playbook, r.step),
                        {
                            let subject = r.subject.clone().unwrap_or_else(|| {
                                format!(
                                    "(does not render: tend preview {} --customer {})",
                                    r.template, r.customer_id
                                )
                            });
                            // Catch-up: a line that will not go says so first.
                            match &r.reason {
                                Some(reason) => format!(
                                    "not sent, {reason} (due {}): {subject}",
                                    r.due_at
                                        .with_timezone(&r.zone)
                                        .format("%a %Y-%m-%d %H:%M %Z")
                                ),
                                None => match (&r.quiet_until, &r.waits_out) {
                                    (Some(quiet), _) => format!(
                                        "{subject} (after the customer's quiet period, until {})",
                                        quiet.with_timezone(&r.zone).format("%Y-%m-%d %H:%M %Z")
                                    ),
                                    (None, Some(holiday)) => {
                                        format!("{subject} (after a holiday: {holiday})")
                                    }
                                    (None, None) => subject,
                                },
                            }
                        },
                    ]
                })
                .collect();
            // Their time stands out: it is when the customer reads it.
            print_table_in(
                &[
                    "at (UTC)",
                    "their time",
                    "customer",
                    "playbook/step",
                    "subject",
                ],
                &table,
                &[
                    Some(console::Style::new().dim()),
                    Some(console::Style::new().green()),
                    None,
                    Some(console::Style::new().cyan()),
                ],
            )?;
            if rows.iter().all(|r| r.reason.is_some()) {
                println!("{}", nothing_until(args.days, now, next.as_ref()));
            }
            // Held with no end known: delivery's reason, as `tend messages`
            // shows it, so nobody wonders where a step went.
            if !held.is_empty() {
                println!("\nheld, with no time yet:");
                for h in &held {
                    // Shown literally, as the table shows its cells.
                    let line = format!("{} {}/{}: {}", h.customer_id, h.playbook, h.step, h.reason);
                    println!("  {}", escape_line(&line));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What an empty forecast says: nothing in the window, and when the next
/// message goes with the horizon that would show it.
fn nothing_until(
    days: u32,
    now: DateTime<Utc>,
    next: Option<&crate::planner::ForecastRow>,
) -> String {
    let nothing = format!("nothing would go out in the next {days} day(s)");
    match next {
        Some(r) => {
            let ahead = (r.at - now).num_days() + 1;
            format!(
                "{nothing}; the next is {}/{} to {} on {}; tend forecast --days {ahead} shows it",
                r.playbook,
                r.step,
                r.customer_id,
                r.at.format("%a %Y-%m-%d %H:%M UTC")
            )
        }
        None if days < NEXT_WITHIN_DAYS => {
            format!("{nothing}, nor in the next {NEXT_WITHIN_DAYS} days")
        }
        None => nothing,
    }
}
