//! `tend check [--overlaps]`.

use crate::store::Planning;
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
