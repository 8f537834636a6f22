//! `tend suppressions [list]`: who is not mailed, for what and why;
//! `tend suppressions lift ID --reason TEXT`: lifts one, keeping who and
//! why.

use std::process::ExitCode;

use super::table::{Format, print_json, print_table};
use crate::config::{ConfigPath, Env};
use crate::domain::customer::CustomerId;
use crate::domain::feed::MAX_PAGE;
use crate::domain::suppression::{Lift, SuppressionFilter, SuppressionId, SuppressionView};
use crate::store::{Responses, Upkeep};

#[derive(Debug, clap::Subcommand)]
pub enum SuppressionsCommand {
    /// Every suppression: customer, address, category (`*` is all mail),
    /// reason and source (the default).
    List(ListArgs),
    /// Lift one suppression (as `list` shows its id, CATEGORY:CUSTOMER):
    /// the customer is mailed again in that category. Who lifted it, when
    /// and why are kept.
    Lift {
        #[arg(value_parser = SuppressionId::parse)]
        id: SuppressionId,
        /// Why it is lifted, e.g. "the customer asked by phone on 3 May"
        #[arg(long)]
        reason: String,
        /// Who lifts it [default: the login name running tend]
        #[arg(long)]
        by: Option<String>,
        /// When it is lifted (RFC 3339) [default: now]
        #[arg(long, value_parser = super::parse_now)]
        now: Option<chrono::DateTime<chrono::Utc>>,
    },
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only this customer's
    #[arg(long, value_parser = CustomerId::parse)]
    customer: Option<CustomerId>,
    /// Only this category's (`*` for the suppressions of all mail)
    #[arg(long)]
    category: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub async fn run(
    path: &ConfigPath,
    env: &Env,
    what: SuppressionsCommand,
) -> anyhow::Result<ExitCode> {
    let loaded = super::load(path, env, "warn")?;
    match what {
        SuppressionsCommand::List(args) => {
            let store = super::open_store(&loaded).await?;
            let all = list(&store, args.customer, args.category).await;
            store.close().await;
            show(&all?, args.format)?;
        }
        SuppressionsCommand::Lift {
            id,
            reason,
            by,
            now,
        } => {
            let by = by
                .or_else(|| env.login().map(str::to_owned))
                .ok_or_else(|| anyhow::anyhow!("say who lifts the suppression with --by NAME"))?;
            let lift = Lift::new(&by, &reason).map_err(anyhow::Error::msg)?;
            let store = super::open_store(&loaded).await?;
            let now = crate::clock::Clock::from_flag(now).now();
            let lifted = store.lift_suppression(&id, &lift, now).await;
            store.close().await;
            match lifted? {
                Some(lifted) => println!(
                    "lifted {id} ({}, from {}), by {} because {:?}",
                    lifted.reason, lifted.source, lifted.lifted_by, lifted.why
                ),
                None => anyhow::bail!(
                    "no suppression has id {id}; `tend suppressions list` shows them as CATEGORY:CUSTOMER"
                ),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Every suppression the filter takes, page by page.
async fn list(
    store: &crate::store::Db,
    customer: Option<CustomerId>,
    category: Option<String>,
) -> Result<Vec<SuppressionView>, crate::store::Error> {
    let filter = SuppressionFilter { customer, category };
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = store.suppressions_page(&filter, after, MAX_PAGE).await?;
        all.extend(page.data);
        if !page.has_more {
            return Ok(all);
        }
        after =
            Some(SuppressionId::parse(&page.next_cursor).map_err(crate::store::Error::Corrupt)?);
    }
}

fn show(all: &[SuppressionView], format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => print_json(&all),
        Format::Table => {
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|s| {
                    vec![
                        s.id.clone(),
                        s.email.clone(),
                        s.reason.clone(),
                        s.source.clone(),
                        s.created_at.format("%Y-%m-%d %H:%M").to_string(),
                    ]
                })
                .collect();
            print_table(&["id", "email", "reason", "source", "since (UTC)"], &rows)
        }
    }
}
