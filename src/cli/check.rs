//! `tend check [--overlaps]`.

use crate::store::Planning;
use crate::store::{Accounts, ConnectOptions, DatabaseUrl, Db};
use crate::store::{Customers, Upkeep};
use std::process::ExitCode;

use crate::check::OVERLAP_DAYS;
use crate::config::{ConfigPath, Env};

/// How many of the store's customers `--overlaps` plans ahead for.
const SAMPLE: u32 = 1_000;

/// `check`, then every overlap among a sample of the store's customers (the
/// demo customers when the store has none).
pub async fn run_with_overlaps(path: &ConfigPath, env: &Env) -> anyhow::Result<ExitCode> {
    let code = run(path, env);
    if code != ExitCode::SUCCESS {
        return Ok(code);
    }
    let (loaded, planner, store) =
        super::load_while_connecting(path, env, crate::engine::planner).await?;
    let customers = store.customers_page(None, SAMPLE, None).await;
    let ids: Vec<_> = customers
        .as_ref()
        .map(|c| c.iter().map(|c| c.record.id.clone()).collect())
        .unwrap_or_default();
    let histories = store.planning_history(&ids).await;
    store.close().await;
    let mut histories = histories?;
    let now = chrono::Utc::now();
    let (whose, sample): (&str, Vec<_>) = match customers? {
        found if found.is_empty() => ("demo", crate::demo::sample(&loaded.settings, now)),
        found => (
            "sampled",
            found
                .into_iter()
                .map(|c| {
                    let history = histories.remove(&c.record.id).unwrap_or_default();
                    (c, history)
                })
                .collect(),
        ),
    };
    let count = sample.len();
    let found = planner.overlaps(sample, now, OVERLAP_DAYS);
    for overlap in &found {
        println!("overlap: {overlap}");
    }
    println!(
        "{} overlap{} among {count} {whose} customers over the next {OVERLAP_DAYS} days",
        if found.is_empty() {
            "no".to_owned()
        } else {
            found.len().to_string()
        },
        if found.len() == 1 { "" } else { "s" },
    );
    Ok(ExitCode::SUCCESS)
}

/// `check`, then, when the store exists, a warning for each role a step's
/// `to` names that no contact holds (its mail goes to the fallback), and for
/// each holiday calendar customers or accounts name that the config does
/// not declare (they keep the default one instead).
pub async fn run_with_store(path: &ConfigPath, env: &Env) -> anyhow::Result<ExitCode> {
    let code = run(path, env);
    if code != ExitCode::SUCCESS {
        return Ok(code);
    }
    let Ok(loaded) = crate::config::load(path, env) else {
        return Ok(code);
    };
    let Ok(planner) = crate::engine::planner(&loaded) else {
        return Ok(code);
    };
    let store = match stored(&loaded.settings.database).await {
        Ok(Some(store)) => store,
        Ok(None) => return Ok(code),
        Err(e) => {
            eprintln!(
                "notice: the store could not be read ({e}), so it was not compared with the config (the roles steps send to, the holiday calendars customers name)"
            );
            return Ok(code);
        }
    };
    let named = planner.roles_named();
    if !named.is_empty() {
        match store.roles_held().await {
            Ok(held) => {
                for (role, steps) in named.iter().filter(|(r, _)| !held.contains(*r)) {
                    let instead = if role == "admin" {
                        "every contact of those accounts gets it instead"
                    } else {
                        "those accounts' admins get it instead (or every contact)"
                    };
                    eprintln!(
                        "warning: no contact holds the role {role:?}, which {} sends to: {instead}; give contacts the role in their import (roles[])",
                        steps.join(", ")
                    );
                }
            }
            Err(e) => eprintln!(
                "notice: the store could not be read ({e}), so the roles steps send to were not compared with the roles contacts hold"
            ),
        }
    }
    match store.calendars_named().await {
        Ok(calendars) => {
            let settings = &loaded.settings;
            let mut unknown: Vec<&String> = calendars
                .iter()
                .filter(|c| !settings.holidays.iter().any(|h| &h.name == *c))
                .collect();
            unknown.sort();
            let instead = match &settings.delivery.holidays {
                Some(default) => format!("delivery.holidays ({default:?})"),
                None => "no calendar".to_owned(),
            };
            for calendar in unknown {
                eprintln!(
                    "warning: customers or accounts in the store keep the holiday calendar {calendar:?}, which no [[holidays]] declares, so {instead} applies to them instead; declare it again, or import them with a declared one"
                );
            }
        }
        Err(e) => eprintln!(
            "notice: the store could not be read ({e}), so the holiday calendars customers name were not compared with those declared"
        ),
    }
    store.close().await;
    Ok(code)
}

/// The store, when there is one to ask: a SQLite file that does not exist
/// yet is not created, and nothing is migrated.
async fn stored(db: &crate::config::settings::Database) -> anyhow::Result<Option<Db>> {
    let url = DatabaseUrl::parse(&db.url)?;
    if let DatabaseUrl::Sqlite { path, .. } = &url
        && !path.exists()
    {
        return Ok(None);
    }
    let options = ConnectOptions {
        max_connections: 1,
        connect_timeout: db
            .connect_timeout
            .as_std()
            .min(std::time::Duration::from_secs(3)),
        busy_timeout: db.busy_timeout.as_std(),
    };
    Ok(Some(Db::connect(&url, &options).await?))
}

pub fn run(path: &ConfigPath, env: &Env) -> ExitCode {
    let report = crate::check::check(path, env);
    if let Some(preface) = &report.preface {
        println!("{preface}");
    }
    for notice in &report.notices {
        eprintln!("notice: {notice}");
    }
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    if report.problems.is_empty() {
        println!("ok: {}", report.checked.join(", "));
        for record in &report.records {
            println!("dkim: publish {record}");
        }
        return ExitCode::SUCCESS;
    }
    for problem in &report.problems {
        eprintln!("{problem}");
    }
    eprintln!(
        "{} problem{} found; fix {} and run tend check again",
        report.problems.len(),
        if report.problems.len() == 1 { "" } else { "s" },
        if report.problems.len() == 1 {
            "it"
        } else {
            "them"
        }
    );
    ExitCode::from(super::EXIT_INVALID)
}
