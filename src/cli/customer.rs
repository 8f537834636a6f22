//! `tend customer show ID`: one person's timeline (see `crate::timeline`);
//! `tend customer export ID` and `tend customer erase ID`: privacy
//! requests (see `crate::privacy`).

use std::process::ExitCode;

use super::table::{Format, print_json, print_lines, print_table};
use crate::config::{ConfigPath, Env};
use crate::domain::customer::CustomerId;
use crate::store::Upkeep;
use crate::timeline::Timeline;

#[derive(Debug, clap::Subcommand)]
pub enum CustomerCommand {
    /// One customer: their record and account, every message with its
    /// status and reason, every response, the stages they entered, their
    /// events and what they are unsubscribed from.
    Show {
        /// The customer's id.
        #[arg(value_parser = CustomerId::parse)]
        id: CustomerId,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Everything tend holds about one person, as one JSON document: their
    /// record, account, messages with their attempts, responses, stages,
    /// events, suppressions and the raw mail they sent.
    Export {
        #[arg(value_parser = CustomerId::parse)]
        id: CustomerId,
        /// When the export is made (RFC 3339) [default: now]
        #[arg(long, value_parser = super::parse_now)]
        now: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// Erase one person at their request: their name, address, words and
    /// history go; what was sent and answered stays, under a stand-in, so
    /// reports stay true; their address is never imported or mailed again.
    Erase {
        #[arg(value_parser = CustomerId::parse)]
        id: CustomerId,
        /// When the erasure is made (RFC 3339) [default: now]
        #[arg(long, value_parser = super::parse_now)]
        now: Option<chrono::DateTime<chrono::Utc>>,
    },
}

fn missing(id: &CustomerId) -> anyhow::Error {
    anyhow::anyhow!(
        "no customer has id {:?}; check the id, or import the customer first",
        id.as_str()
    )
}

pub async fn run(path: &ConfigPath, env: &Env, what: CustomerCommand) -> anyhow::Result<ExitCode> {
    let (id, format) = match what {
        CustomerCommand::Show { id, format } => (id, format),
        CustomerCommand::Export { id, now } => {
            let loaded = super::load(path, env, "warn")?;
            let store = super::open_store(&loaded).await?;
            let now = crate::clock::Clock::from_flag(now).now();
            let read = crate::privacy::export(&store, &id, now).await;
            store.close().await;
            print_json(&read?.ok_or_else(|| missing(&id))?)?;
            return Ok(ExitCode::SUCCESS);
        }
        CustomerCommand::Erase { id, now } => {
            let loaded = super::load(path, env, "warn")?;
            let store = super::open_store(&loaded).await?;
            let now = crate::clock::Clock::from_flag(now).now();
            let done = crate::privacy::erase(&store, &id, now).await;
            store.close().await;
            let erased = done.map_err(|e| match e {
                crate::privacy::EraseError::Unknown(_) => missing(&id),
                other => anyhow::Error::new(other),
            })?;
            println!(
                "erased {}: their messages and responses now belong to {}, without their name, address or words; their address is refused if it is imported again",
                erased.id, erased.stand_in
            );
            return Ok(ExitCode::SUCCESS);
        }
    };
    let loaded = super::load(path, env, "warn")?;
    let store = super::open_store(&loaded).await?;
    let read = crate::timeline::read(&store, &id).await;
    store.close().await;
    let Some(timeline) = read? else {
        return Err(missing(&id));
    };
    match format {
        Format::Json => print_json(&timeline)?,
        Format::Table => print_timeline(&timeline)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "not set".into(),
        serde_json::Value::String(s) if s.is_empty() => "not set".into(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The calendar and the quiet period that apply to them, each said to be
/// their account's when it is.
fn in_force(t: &Timeline) -> (String, String) {
    let own = &t.availability;
    let applies = own.within(&t.account_availability);
    let whose = |theirs: bool| if theirs { "" } else { " (their account's)" };
    let holidays = applies.holidays.as_ref().map_or_else(
        || "delivery.holidays".to_owned(),
        |c| format!("{c}{}", whose(own.holidays.is_some())),
    );
    let quiet = applies.quiet_until.map_or_else(
        || "no quiet period".to_owned(),
        |q| {
            format!(
                "until {}{}",
                q.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                whose(own.quiet_until == Some(q))
            )
        },
    );
    (holidays, quiet)
}

fn print_timeline(t: &Timeline) -> anyhow::Result<()> {
    let c = &t.customer;
    let (holidays, quiet) = in_force(t);
    let account = t.account.as_ref().map_or_else(
        || "their own".to_owned(),
        |a| format!("{} {}", text(&a["id"]), text(&a["name"])),
    );
    print_lines([
        format!(
            "customer  {} {} <{}>",
            text(&c["id"]),
            text(&c["name"]),
            text(&c["email"])
        ),
        format!("account   {account}"),
        format!("plan      {}", text(&c["plan"])),
        format!("stage     {}", text(&c["stage"])),
        format!(
            "history   {}",
            if t.stages.is_empty() {
                "no stage entered yet".to_owned()
            } else {
                t.stages
                    .iter()
                    .map(|s| format!("entered {} on {}", s.stage, s.entered_at.format("%Y-%m-%d")))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
        format!(
            "leaves    {}",
            if t.suppressions.is_empty() {
                "nothing: every category reaches them".to_owned()
            } else {
                t.suppressions
                    .iter()
                    .map(|s| format!("{} ({})", s.category, s.reason))
                    .collect::<Vec<_>>()
                    .join("; ")
            }
        ),
        format!("holidays  {holidays}"),
        format!("quiet     {quiet}"),
        format!("events    {}", t.events.len()),
        String::new(),
    ])?;
    let rows: Vec<Vec<String>> = t
        .messages
        .iter()
        .map(|m| {
            vec![
                m.due_at.format("%Y-%m-%d %H:%M").to_string(),
                format!("{}/{}", m.playbook, m.step),
                m.status.clone(),
                m.reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print_table(&["due (UTC)", "playbook/step", "status", "reason"], &rows)?;
    if !t.responses.is_empty() {
        print_lines([String::new()])?;
        let rows: Vec<Vec<String>> = t
            .responses
            .iter()
            .map(|r| {
                vec![
                    r.received_at.format("%Y-%m-%d %H:%M").to_string(),
                    r.kind.clone(),
                    r.value.clone().unwrap_or_default(),
                    r.comment
                        .clone()
                        .unwrap_or_default()
                        .replace(['\r', '\n'], " "),
                ]
            })
            .collect();
        print_table(&["received (UTC)", "kind", "value", "comment"], &rows)?;
    }
    Ok(())
}
