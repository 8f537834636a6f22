//! `tend forecast [--days N] [--now T] [--customer ID]`: what will be sent,
//! from the planner's own code path, writing nothing.

use std::process::ExitCode;

use chrono::{DateTime, Duration, Utc};

use super::table::{Format, print_json, print_table};
use crate::clock::Clock;
use crate::config::{ConfigPath, Env};
use crate::domain::customer::CustomerId;
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
    let (loaded, planner) = super::load_planner(path, env)?;
    let store = super::open_store(&loaded).await?;
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
    let rows = planner
        .forecast(&store, now, until, args.customer.as_ref())
        .await?;
    store.close().await;
    match args.format {
        Format::Json => print_json(&rows)?,
        Format::Table => {
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.at.format("%Y-%m-%d %H:%M").to_string(),
                        r.customer_id.clone(),
                        format!("{}/{}", r.playbook, r.step),
                        r.template.clone(),
                    ]
                })
                .collect();
            print_table(
                &["at (UTC)", "customer", "playbook/step", "template"],
                &table,
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
