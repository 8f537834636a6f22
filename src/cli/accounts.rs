//! `tend accounts` and `tend account show ID`: the companies customers
//! belong to, their contacts, and what each contact was sent and answered.

use std::process::ExitCode;

use super::table::{Format, print_json, print_lines, print_table};
use crate::config::{ConfigPath, Env};
use crate::domain::account::{Account, AccountId};
use crate::store::{Accounts, Db, Upkeep};
use crate::timeline::{AccountShown, AccountView};

/// Accounts read from the store at a time.
const PAGE: u32 = 500;

#[derive(Debug, clap::Args)]
pub struct AccountsArgs {
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, clap::Subcommand)]
pub enum AccountCommand {
    /// One account: its fields, owner, contacts with their roles, and each
    /// contact's messages and responses.
    Show {
        /// The account's id.
        #[arg(value_parser = AccountId::parse)]
        id: AccountId,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

pub async fn list(path: &ConfigPath, env: &Env, args: AccountsArgs) -> anyhow::Result<ExitCode> {
    let loaded = super::load(path, env, "warn")?;
    let store = super::open_store(&loaded).await?;
    let accounts = all_accounts(&store).await;
    store.close().await;
    let accounts: Vec<AccountView> = accounts?.iter().map(AccountView::from).collect();
    match args.format {
        Format::Json => print_json(&accounts)?,
        Format::Table => {
            let rows: Vec<Vec<String>> = accounts
                .iter()
                .map(|a| {
                    vec![
                        a.id.clone(),
                        a.name.clone(),
                        a.plan.clone(),
                        a.owner.clone().unwrap_or_default(),
                        a.contacts.to_string(),
                        a.health.map(|h| h.to_string()).unwrap_or_default(),
                        a.renewal_at
                            .map(|t| t.format("%Y-%m-%d").to_string())
                            .unwrap_or_default(),
                        a.stage.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            print_table(
                &[
                    "account", "name", "plan", "owner", "contacts", "health", "renews", "stage",
                ],
                &rows,
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn all_accounts(store: &Db) -> Result<Vec<Account>, crate::store::Error> {
    let mut all = Vec::new();
    loop {
        let after = all.last().map(|a: &Account| a.record.id.clone());
        let page = store.accounts_page(after.as_ref(), PAGE).await?;
        let done = page.len() < PAGE as usize;
        all.extend(page);
        if done {
            return Ok(all);
        }
    }
}

pub async fn run(path: &ConfigPath, env: &Env, what: AccountCommand) -> anyhow::Result<ExitCode> {
    let AccountCommand::Show { id, format } = what;
    let loaded = super::load(path, env, "warn")?;
    let store = super::open_store(&loaded).await?;
    let read = crate::timeline::account(&store, &id, &loaded.settings.team).await;
    store.close().await;
    let Some(shown) = read? else {
        anyhow::bail!(
            "no account has id {:?}; `tend accounts` lists them, and `tend import accounts FILE` adds them",
            id.as_str()
        );
    };
    match format {
        Format::Json => print_json(&shown)?,
        Format::Table => print_account(&shown)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn print_account(shown: &AccountShown) -> anyhow::Result<()> {
    let a = &shown.account;
    let owner = match (&a.owner, shown.owner.as_ref()) {
        (_, Some(m)) => format!("{} <{}>", m.name, m.email),
        (Some(id), None) => format!("{id} (not in [[team]])"),
        (None, None) => "none".into(),
    };
    let or_none = |v: Option<String>| v.unwrap_or_else(|| "not set".into());
    print_lines([
        format!("account   {} {}", a.id, a.name),
        format!("plan      {}", a.plan),
        format!("owner     {owner}"),
        format!("health    {}", or_none(a.health.map(|h| h.to_string()))),
        format!(
            "renews    {}",
            or_none(a.renewal_at.map(|t| t.format("%Y-%m-%d").to_string()))
        ),
        format!(
            "holidays  {}",
            a.holidays
                .clone()
                .unwrap_or_else(|| "delivery.holidays".into())
        ),
        format!(
            "quiet     {}",
            a.quiet_until.map_or("no quiet period".into(), |t| format!(
                "until {}",
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ))
        ),
        format!("stage     {}", or_none(a.stage.clone())),
        format!(
            "history   {}",
            if shown.stages.is_empty() {
                "no stage entered yet".to_owned()
            } else {
                shown
                    .stages
                    .iter()
                    .map(|s| format!("entered {} on {}", s.stage, s.entered_at.format("%Y-%m-%d")))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
        format!(
            "latest    {}",
            if shown.latest.is_empty() {
                "no survey answered yet".to_owned()
            } else {
                shown
                    .latest
                    .iter()
                    .map(|(kind, a)| {
                        format!(
                            "{} {} ({}, {})",
                            kind.to_uppercase(),
                            a.value,
                            a.contact,
                            a.at.format("%Y-%m-%d")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            }
        ),
        format!("contacts  {}", a.contacts),
        String::new(),
    ])?;
    let rows: Vec<Vec<String>> = shown
        .contacts
        .iter()
        .map(|c| {
            let sent = c.messages.iter().filter(|m| m.status == "sent").count();
            let waiting = c
                .messages
                .iter()
                .filter(|m| matches!(m.status.as_str(), "planned" | "deferred"))
                .count();
            let last_answer = c
                .responses
                .iter()
                .rev()
                .find(|r| r.kind == "survey")
                .and_then(|r| r.value.clone())
                .unwrap_or_default();
            vec![
                c.id.clone(),
                c.email.clone(),
                c.roles.join(", "),
                sent.to_string(),
                waiting.to_string(),
                c.responses.len().to_string(),
                last_answer,
            ]
        })
        .collect();
    print_table(
        &[
            "contact",
            "email",
            "roles",
            "sent",
            "waiting",
            "responses",
            "last answer",
        ],
        &rows,
    )
}
