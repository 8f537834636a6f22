//! `tend accounts` and `tend account show ID`: the companies customers
//! belong to, their contacts, and what each contact was sent and answered.

use std::process::ExitCode;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::table::{Format, print_json, print_lines, print_table};
use crate::config::settings::TeamMember;
use crate::config::{ConfigPath, Env};
use crate::domain::account::{Account, AccountId};
use crate::domain::customer::Customer;
use crate::domain::message::{MessageFilter, MessageView, ResponseView};
use crate::store::{Accounts, Db, Outbox, Planning, Responses, Upkeep};

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

/// An account as the commands show it (the JSON shape of `tend accounts`).
#[derive(Debug, Serialize)]
struct AccountView {
    id: String,
    name: String,
    plan: String,
    renewal_at: Option<chrono::DateTime<chrono::Utc>>,
    health: Option<u8>,
    owner: Option<String>,
    stage: Option<String>,
    contacts: u64,
    attributes: Map<String, Value>,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<&Account> for AccountView {
    fn from(a: &Account) -> Self {
        let r = &a.record;
        Self {
            id: r.id.to_string(),
            name: r.name.clone(),
            plan: r.plan.clone(),
            renewal_at: r.renewal_at,
            health: r.health,
            owner: r.owner.clone(),
            stage: a.stage.clone(),
            contacts: a.contacts,
            attributes: r.attributes.clone(),
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

/// A contact with what they were sent and answered.
#[derive(Debug, Serialize)]
struct ContactView {
    id: String,
    email: String,
    name: String,
    roles: Vec<String>,
    stage: Option<String>,
    messages: Vec<MessageView>,
    responses: Vec<ResponseView>,
}

/// The JSON shape of `tend account show`.
#[derive(Debug, Serialize)]
struct AccountShown<'a> {
    account: AccountView,
    /// The owner as the `[[team]]` has them; null when unset or unknown.
    owner: Option<&'a TeamMember>,
    /// Each stage the account entered, oldest first.
    stages: Vec<StageEntered>,
    /// The latest answer of each survey kind from any of its contacts.
    latest: BTreeMap<&'static str, Answer>,
    contacts: Vec<ContactView>,
}

#[derive(Debug, Serialize)]
struct StageEntered {
    stage: String,
    entered_at: DateTime<Utc>,
}

/// One survey answer, and whose.
#[derive(Debug, Serialize)]
struct Answer {
    value: String,
    at: DateTime<Utc>,
    contact: String,
}

/// What `tend account show` reads besides the account.
struct Read {
    account: Account,
    stages: Vec<StageEntered>,
    latest: BTreeMap<&'static str, Answer>,
    contacts: Vec<ContactView>,
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
    let read = read_account(&store, &id).await;
    store.close().await;
    let Some(Read {
        account,
        stages,
        latest,
        contacts,
    }) = read?
    else {
        anyhow::bail!(
            "no account has id {:?}; `tend accounts` lists them, and `tend import accounts FILE` adds them",
            id.as_str()
        );
    };
    let owner = account
        .record
        .owner
        .as_ref()
        .and_then(|o| loaded.settings.team.iter().find(|m| &m.id == o));
    let shown = AccountShown {
        account: AccountView::from(&account),
        owner,
        stages,
        latest,
        contacts,
    };
    match format {
        Format::Json => print_json(&shown)?,
        Format::Table => print_account(&shown)?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn read_account(store: &Db, id: &AccountId) -> Result<Option<Read>, crate::store::Error> {
    let Some(account) = store.account(id).await? else {
        return Ok(None);
    };
    let mut planning = store.account_planning(std::slice::from_ref(id)).await?;
    let (people, history) = planning.remove(id).unwrap_or_default();
    let mut stages: Vec<StageEntered> = history
        .stage_entries
        .into_iter()
        .map(|e| StageEntered {
            stage: e.stage,
            entered_at: e.entered_at,
        })
        .collect();
    stages.sort_by_key(|s| s.entered_at);
    let mut latest: BTreeMap<&'static str, Answer> = BTreeMap::new();
    let mut contacts = Vec::new();
    for contact in people {
        for (survey, value, at) in store.survey_answers_from(&contact.record.id).await? {
            let newer = latest.get(survey.as_str()).is_none_or(|a| a.at <= at);
            if newer {
                latest.insert(
                    survey.as_str(),
                    Answer {
                        value,
                        at,
                        contact: contact.record.id.to_string(),
                    },
                );
            }
        }
        contacts.push(contact_view(store, contact).await?);
    }
    Ok(Some(Read {
        account,
        stages,
        latest,
        contacts,
    }))
}

async fn contact_view(store: &Db, contact: Customer) -> Result<ContactView, crate::store::Error> {
    let filter = MessageFilter {
        status: None,
        customer: Some(contact.record.id.clone()),
    };
    let messages = store.messages(&filter).await?;
    let responses = store.responses_from(&contact.record.id).await?;
    let r = contact.record;
    Ok(ContactView {
        id: r.id.to_string(),
        email: r.email.to_string(),
        name: r.name,
        roles: r.roles.names().to_vec(),
        stage: contact.stage,
        messages,
        responses,
    })
}

fn print_account(shown: &AccountShown<'_>) -> anyhow::Result<()> {
    let a = &shown.account;
    let owner = match (&a.owner, shown.owner) {
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
