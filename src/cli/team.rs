//! `tend team`: the `[[team]]` members, their console roles and whether
//! each can sign in; `tend team set-password ID` sets a member's console
//! password, read from standard input so it appears in no process list
//! or shell history; `tend team audit` shows who signed in and changed
//! what in the console.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use chrono::Utc;
use serde::Serialize;

use super::table::{Format, print_json, print_table};
use crate::config::{ConfigPath, Env};
use crate::domain::console::{AuditAction, AuditEntry};
use crate::store::{Team, Upkeep};

#[derive(Debug, clap::Subcommand)]
pub enum TeamCommand {
    /// List team members with their console role and whether a password is set.
    List {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Set a member's console password (read from standard input); ends their sessions.
    SetPassword {
        /// The member's `[[team]]` id.
        id: String,
    },
    /// The console's audit, newest first: sign-ins, failures, sign-outs, changes.
    Audit {
        /// How many lines
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

/// One line of the audit as listed (the JSON shape).
#[derive(Debug, Serialize)]
struct Audited {
    at: chrono::DateTime<Utc>,
    member: String,
    action: &'static str,
    detail: String,
    address: String,
}

/// One member as listed (the JSON shape).
#[derive(Debug, Serialize)]
struct Member {
    id: String,
    name: String,
    email: String,
    role: &'static str,
    password_set: bool,
}

pub async fn run(path: &ConfigPath, env: &Env, what: TeamCommand) -> anyhow::Result<ExitCode> {
    let loaded = super::load(path, env, "warn")?;
    match what {
        TeamCommand::List { format } => {
            let store = super::open_store(&loaded).await?;
            let mut members = Vec::new();
            for m in &loaded.settings.team {
                members.push(Member {
                    id: m.id.clone(),
                    name: m.name.clone(),
                    email: m.email.clone(),
                    role: m.role.as_str(),
                    password_set: store.password_of(&m.id).await?.is_some(),
                });
            }
            store.close().await;
            match format {
                Format::Json => print_json(&members)?,
                Format::Table => print_table(
                    &["ID", "NAME", "EMAIL", "ROLE", "PASSWORD"],
                    &members
                        .iter()
                        .map(|m| {
                            vec![
                                m.id.clone(),
                                m.name.clone(),
                                m.email.clone(),
                                m.role.to_owned(),
                                if m.password_set { "set" } else { "not set" }.to_owned(),
                            ]
                        })
                        .collect::<Vec<_>>(),
                )?,
            }
            Ok(ExitCode::SUCCESS)
        }
        TeamCommand::Audit { limit, format } => {
            let store = super::open_store(&loaded).await?;
            let lines = store.latest_audit(limit).await;
            store.close().await;
            let lines: Vec<Audited> = lines?
                .into_iter()
                .map(|e| Audited {
                    at: e.at,
                    member: e.member,
                    action: e.action.as_str(),
                    detail: e.detail,
                    address: e.address,
                })
                .collect();
            match format {
                Format::Json => print_json(&lines)?,
                Format::Table => print_table(
                    &["AT (UTC)", "MEMBER", "ACTION", "DETAIL", "ADDRESS"],
                    &lines
                        .iter()
                        .map(|l| {
                            vec![
                                l.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                                l.member.clone(),
                                l.action.to_owned(),
                                l.detail.clone(),
                                l.address.clone(),
                            ]
                        })
                        .collect::<Vec<_>>(),
                )?,
            }
            Ok(ExitCode::SUCCESS)
        }
        TeamCommand::SetPassword { id } => {
            let Some(member) = loaded.settings.team.iter().find(|m| m.id == id) else {
                let known: Vec<&str> = loaded.settings.team.iter().map(|m| m.id.as_str()).collect();
                let file = loaded
                    .file
                    .as_ref()
                    .map_or("the configuration".to_owned(), |f| f.display().to_string());
                eprintln!(
                    "error: no team member {id:?} in {file}; the [[team]] ids are: {}",
                    if known.is_empty() {
                        "(none: add a [[team]] entry with id, name and email first)".to_owned()
                    } else {
                        known.join(", ")
                    }
                );
                return Ok(ExitCode::from(2));
            };
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                eprintln!(
                    "Password for {} (input is shown; end with Enter):",
                    member.name
                );
            }
            let mut line = String::new();
            stdin.lock().read_line(&mut line)?;
            let password = line.trim_end_matches(['\n', '\r']);
            let hash = match crate::credentials::hash_password(password) {
                Ok(hash) => hash,
                Err(e) => {
                    eprintln!("error: {e}; nothing was changed");
                    return Ok(ExitCode::from(2));
                }
            };
            let store = super::open_store(&loaded).await?;
            let now = Utc::now();
            let done = async {
                store.set_password(&member.id, &hash, now).await?;
                store
                    .record_audit(&AuditEntry {
                        member: member.id.clone(),
                        action: AuditAction::PasswordSet,
                        detail: "from the command line".into(),
                        address: String::new(),
                        at: now,
                    })
                    .await
            }
            .await;
            store.close().await;
            done?;
            println!(
                "password set for {} ({}); their earlier console sessions ended",
                member.id, member.name
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
