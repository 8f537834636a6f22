//! `tend forecast [--days N] [--now T] [--customer ID]`: what will be sent,
//! from the planner's own code path, writing nothing.

use std::process::ExitCode;

use chrono::{DateTime, Duration, Utc};

use super::table::{Format, print_json, print_table_in};
use crate::clock::Clock;
use crate::config::{ConfigPath, Env};
use crate::domain::customer::CustomerId;
use crate::planner::Forecasting;
use crate::render::{Letter, Renderer};
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct ForecastArgs {
    /// How many days ahead to look
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=366))]
    pub days: u32,
    /// Forecast as of this time (RFC 3339) [default: now]
    #[arg(long, value_parser = super::parse_now)]
    pub now: Option<DateTime<Utc>>,
    /// Only this customer
    #[arg(long, value_parser = CustomerId::parse)]
    pub customer: Option<CustomerId>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

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
            message: uuid::Uuid::nil(),
            customer: f.customer,
            category: f.category,
            survey: f.survey,
            incident: f.incident,
            now: f.at,
        };
        renderer.render(f.template, &letter).ok().map(|r| r.subject)
    };
    let rows = planner
        .forecast(&store, now, until, args.customer.as_ref(), subject)
        .await;
    store.close().await;
    let rows = rows?;
    match args.format {
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
                                None => subject,
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
                println!("nothing would go out in the next {} day(s)", args.days);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
