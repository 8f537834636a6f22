//! `GET /console`: what went out and what waits, today and this week,
//! and how customers answered this week: the same counts as `tend report
//! --since`, from the same store method.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};

use super::Member;
use crate::domain::console::today_and_week;
use crate::domain::report::Report;
use crate::http::AppState;
use crate::http::page::escape;
use crate::store::Responses;

pub async fn show(State(shared): State<Arc<AppState>>, member: Member) -> Response {
    let now = shared.clock.now();
    let zone = shared
        .engine()
        .loaded
        .settings
        .customers
        .default_timezone
        .parse::<chrono_tz::Tz>()
        .unwrap_or(chrono_tz::UTC);
    let (today, week) = today_and_week(now, zone);
    let (today_report, week_report) =
        match (report(&shared, today).await, report(&shared, week).await) {
            (Ok(t), Ok(w)) => (t, w),
            (Err(e), _) | (_, Err(e)) => return member.unavailable("Overview", &e),
        };
    let body = format!(
        "<p>Times are in {zone} (<code>customers.default_timezone</code>); a message counts on the day it was due.</p>\
         {}{}{}",
        cards("Today", &today_report),
        cards("This week", &week_report),
        scores(&week_report),
        zone = escape(zone.name()),
    );
    member.page(StatusCode::OK, "Overview", &body)
}

async fn report(shared: &AppState, since: DateTime<Utc>) -> Result<Report, crate::store::Error> {
    let counts = shared.store.report_counts(since).await?;
    Ok(Report::from_counts(&counts))
}

/// Messages by what became of them, as a list of figures.
fn cards(heading: &str, report: &Report) -> String {
    let count = |statuses: &[&str]| -> i64 {
        statuses
            .iter()
            .map(|s| report.messages.get(*s).copied().unwrap_or(0))
            .sum()
    };
    let figures = [
        ("Sent", count(&["sent"])),
        ("Waiting", count(&["planned", "deferred", "sending"])),
        ("Failed", count(&["failed", "unknown"])),
        ("Suppressed", count(&["suppressed"])),
    ];
    let id = heading.to_lowercase().replace(' ', "-");
    let items: String = figures
        .iter()
        .map(|(label, n)| {
            format!(
                "<div><dt>{label}</dt><dd data-figure=\"{id}-{}\">{n}</dd></div>",
                label.to_lowercase()
            )
        })
        .collect();
    format!(
        "<section aria-labelledby=\"{id}\"><h2 id=\"{id}\">{heading}</h2><dl class=\"cards\">{items}</dl></section>"
    )
}

/// This week's survey scores, with how many answered.
fn scores(report: &Report) -> String {
    let surveys = &report.surveys;
    let score = |value: Option<f64>| value.map_or("—".to_owned(), |v| format!("{v}"));
    format!(
        "<section aria-labelledby=\"scores\"><h2 id=\"scores\">Answers this week</h2>\
         <table><thead><tr><th scope=\"col\">Survey</th><th scope=\"col\">Score</th><th scope=\"col\">Answers</th></tr></thead><tbody>\
         <tr><th scope=\"row\">NPS</th><td data-figure=\"nps\">{}</td><td>{}</td></tr>\
         <tr><th scope=\"row\">CSAT</th><td data-figure=\"csat\">{}</td><td>{}</td></tr>\
         <tr><th scope=\"row\">CES</th><td data-figure=\"ces\">{}</td><td>{}</td></tr>\
         </tbody></table></section>",
        score(surveys.nps.score),
        surveys.nps.responses,
        score(surveys.csat.average),
        surveys.csat.responses,
        score(surveys.ces.average),
        surveys.ces.responses,
    )
}
