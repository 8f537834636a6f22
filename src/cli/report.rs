//! `tend report [--since T] [--by account|owner|plan|stage]`: what came of
//! the mail: messages by status, per-step sent and response rates, survey
//! scores, unsubscribes, bounces and replies; or those figures rolled up
//! per company, success manager, plan or stage.

use crate::store::Responses;
use crate::store::Upkeep;
use std::process::ExitCode;

use chrono::{DateTime, Utc};

use super::table::{Format, print_json, print_table};
use crate::config::{ConfigPath, Env};
use crate::domain::report::{GroupFigures, Grouping, Report};

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Only messages due and responses received at or after this time (RFC 3339) [default: everything]
    #[arg(long, value_parser = super::parse_now)]
    pub since: Option<DateTime<Utc>>,
    /// Roll the figures up per account, owner, plan or stage (the
    /// account's, or a person's own when they have none)
    #[arg(long, value_parser = Grouping::parse, value_name = "account|owner|plan|stage")]
    pub by: Option<Grouping>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

pub async fn run(path: &ConfigPath, env: &Env, args: ReportArgs) -> anyhow::Result<ExitCode> {
    let loaded = super::load(path, env, "warn")?;
    let store = super::open_store(&loaded).await?;
    if let Some(grouping) = args.by {
        let since = args.since.unwrap_or(DateTime::UNIX_EPOCH);
        let groups = store.report_by(grouping, since).await;
        store.close().await;
        let figures: Vec<GroupFigures> = groups?
            .into_iter()
            .map(|(group, counts)| GroupFigures::from_counts(group, &counts))
            .collect();
        match args.format {
            Format::Json => print_json(&figures)?,
            Format::Table => print_groups(grouping, &figures)?,
        }
        return Ok(ExitCode::SUCCESS);
    }
    let counts = store
        .report_counts(args.since.unwrap_or(DateTime::UNIX_EPOCH))
        .await;
    store.close().await;
    let report = Report::from_counts(&counts?);
    match args.format {
        Format::Json => print_json(&report)?,
        Format::Table => print_report(&report)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn print_groups(grouping: Grouping, groups: &[GroupFigures]) -> anyhow::Result<()> {
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            vec![
                if g.group.is_empty() {
                    "(none)".into()
                } else {
                    g.group.clone()
                },
                g.sent.to_string(),
                g.responses.to_string(),
                g.response_rate
                    .map_or_else(|| "–".into(), |x| format!("{:.1} %", x * 100.0)),
                format!("{} ({})", shown(g.nps.score), g.nps.responses),
                format!("{} ({})", shown(g.csat.average), g.csat.responses),
                g.replies.to_string(),
                g.unsubscribes.to_string(),
                g.bounces.to_string(),
            ]
        })
        .collect();
    print_table(
        &[
            grouping.as_str(),
            "sent",
            "responses",
            "rate",
            "NPS (answers)",
            "CSAT (answers)",
            "replies",
            "unsubscribes",
            "bounces",
        ],
        &rows,
    )
}

fn shown(x: Option<f64>) -> String {
    x.map_or_else(|| "–".into(), |x| format!("{x}"))
}

fn print_report(r: &Report) -> anyhow::Result<()> {
    let statuses: Vec<String> = r.messages.iter().map(|(s, n)| format!("{s} {n}")).collect();
    println!(
        "Messages: {}",
        if statuses.is_empty() {
            "none".into()
        } else {
            statuses.join(", ")
        }
    );
    println!();
    let rows: Vec<Vec<String>> = r
        .playbooks
        .iter()
        .map(|s| {
            vec![
                format!("{}/{}", s.playbook, s.step),
                s.sent.to_string(),
                s.responses.to_string(),
                s.response_rate
                    .map_or_else(|| "–".into(), |x| format!("{:.1} %", x * 100.0)),
            ]
        })
        .collect();
    print_table(&["playbook/step", "sent", "responses", "rate"], &rows)?;
    println!();
    let s = &r.surveys;
    println!(
        "NPS {} ({} answers: {} promoters, {} passives, {} detractors)",
        shown(s.nps.score),
        s.nps.responses,
        s.nps.promoters,
        s.nps.passives,
        s.nps.detractors
    );
    println!(
        "CSAT {} of 5 ({} answers)",
        shown(s.csat.average),
        s.csat.responses
    );
    println!(
        "CES {} of 7 ({} answers)",
        shown(s.ces.average),
        s.ces.responses
    );
    println!("Yes/no: {} yes, {} no", s.yesno.yes, s.yesno.no);
    println!();
    println!(
        "Replies {}, clicks {}, unsubscribes {}, bounces {}, complaints {}, automatic replies {}",
        r.replies, r.clicks, r.unsubscribes, r.bounces, r.complaints, r.auto_replies
    );
    Ok(())
}
