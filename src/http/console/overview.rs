//! `GET /console`: what went out and what waits, today and this week,
//! and how customers answered this week: the same counts as `tend report
//! --since`, from the same store method.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::Member;
use super::chart::{self, Bar, Point};
use crate::domain::console::{overview_is_stale, today_and_week, week_starts};
use crate::domain::message::ResponseView;
use crate::domain::report::{Counts, Report, Surveys, WeekScores, weekly_scores};
use crate::http::AppState;
use crate::http::page::escape;
use crate::store::Responses;

pub async fn show(State(shared): State<Arc<AppState>>, member: Member) -> Response {
    match shared.overview.read(&shared).await {
        Ok((at, body)) => member.page(
            StatusCode::OK,
            "Overview",
            &format!(
                "<p class=\"as-of\">Figures as of {} UTC; they are read again every minute.</p>{body}",
                at.format("%Y-%m-%d %H:%M:%S")
            ),
        ),
        Err(e) => member.unavailable("Overview", &e),
    }
}

/// The overview's last reading, shared by every member's page.
#[derive(Default)]
pub struct Overview {
    last: tokio::sync::Mutex<Option<Reading>>,
    refreshing: std::sync::atomic::AtomicBool,
}

#[derive(Clone)]
struct Reading {
    /// When it was read, by the handlers' clock.
    at: chrono::DateTime<chrono::Utc>,
    body: Arc<String>,
}

impl Overview {
    /// The figures (when read, and the page's body): the last reading
    /// while fresh; a stale one while a new one is read behind it; read
    /// now when there is none (one request reads, the others wait for
    /// it).
    async fn read(
        &self,
        shared: &Arc<AppState>,
    ) -> Result<(chrono::DateTime<chrono::Utc>, Arc<String>), crate::store::Error> {
        use std::sync::atomic::Ordering;
        let mut last = self.last.lock().await;
        if let Some(reading) = last.as_ref() {
            let stale = overview_is_stale(reading.at, shared.clock.now());
            if stale && !self.refreshing.swap(true, Ordering::AcqRel) {
                let shared = Arc::clone(shared);
                tokio::spawn(async move {
                    // However the reading ends (a panic too), the next
                    // stale page may start another.
                    struct Done(Arc<AppState>);
                    impl Drop for Done {
                        fn drop(&mut self) {
                            self.0.overview.refreshing.store(false, Ordering::Release);
                        }
                    }
                    let done = Done(Arc::clone(&shared));
                    let at = shared.clock.now();
                    match compute(&shared, at).await {
                        Ok(body) => {
                            *shared.overview.last.lock().await = Some(Reading {
                                at,
                                body: Arc::new(body),
                            });
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "reading the console's overview failed")
                        }
                    }
                    drop(done);
                });
            }
            return Ok((reading.at, Arc::clone(&reading.body)));
        }
        let at = shared.clock.now();
        let body = Arc::new(compute(shared, at).await?);
        *last = Some(Reading {
            at,
            body: Arc::clone(&body),
        });
        Ok((at, body))
    }
}

/// The overview's body as of `now`.
async fn compute(
    shared: &AppState,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<String, crate::store::Error> {
    let zone = shared.engine().planner.default_zone();
    let (today, week) = today_and_week(now, zone);
    let starts = week_starts(now, zone, WEEKS);
    let first = starts[0];
    // Each figure from the statement that counts it alone: the report's
    // other counts would be read for nothing.
    let read = async {
        Ok::<_, crate::store::Error>((
            shared.store.message_counts(today).await?,
            shared.store.message_counts(week).await?,
            shared.store.survey_answers_since(first).await?,
            shared.store.step_counts(first).await?,
            shared.store.latest_replies(LATEST).await?,
            shared.store.latest_detractors(LATEST).await?,
        ))
    };
    let (today_counts, week_counts, answers, steps, replies, detractors) = match read.await {
        Ok(read) => read,
        Err(e) => return Err(e),
    };
    let report = |statuses, steps| {
        Report::from_counts(&Counts {
            statuses,
            steps,
            ..Counts::default()
        })
    };
    let today_report = report(today_counts, Vec::new());
    let week_report = report(week_counts, Vec::new());
    let period = report(Vec::new(), steps);
    let weeks = weekly_scores(&answers, &starts);
    let this_week = weeks.last().map(|w| w.surveys.clone());
    let body = format!(
        "<p>Times are in {zone} (<code>customers.default_timezone</code>); a message counts on the day it was due, an answer on the day it came.</p>\
         {}{}{}{}{}{}{}",
        cards("Today", &today_report),
        cards("This week", &week_report),
        this_week.as_ref().map(scores).unwrap_or_default(),
        by_week(&weeks, zone),
        rates(&period),
        latest("replies", "Latest replies", &replies, "No replies yet."),
        latest(
            "detractors",
            "Latest detractors (NPS 0–6)",
            &detractors,
            "No detractors: nobody answered 0 to 6."
        ),
        zone = escape(zone.name()),
    );
    Ok(body)
}

/// How many weeks the charts go back, this one included.
const WEEKS: u32 = 12;

/// How many of the latest replies and detractors are listed.
const LATEST: u32 = 5;

/// NPS, CSAT and CES week by week, as charts and as a table.
fn by_week(weeks: &[WeekScores], zone: chrono_tz::Tz) -> String {
    let label = |w: &WeekScores| w.week_of.with_timezone(&zone).format("%-d %b").to_string();
    let points = |pick: fn(&WeekScores) -> (Option<f64>, i64)| -> Vec<Point> {
        weeks
            .iter()
            .map(|w| {
                let (value, count) = pick(w);
                Point {
                    label: label(w),
                    value,
                    count,
                }
            })
            .collect()
    };
    let nps = points(|w| (w.surveys.nps.score, w.surveys.nps.responses));
    let csat = points(|w| (w.surveys.csat.average, w.surveys.csat.responses));
    let ces = points(|w| (w.surveys.ces.average, w.surveys.ces.responses));
    let cell = |value: Option<f64>, count: i64, id: String| {
        format!(
            "<td data-figure=\"{id}\">{}</td><td>{count}</td>",
            value.map_or("—".to_owned(), |v| v.to_string())
        )
    };
    let rows: String = weeks
        .iter()
        .map(|w| {
            let day = w
                .week_of
                .with_timezone(&zone)
                .format("%Y-%m-%d")
                .to_string();
            format!(
                "<tr><th scope=\"row\">{day}</th>{}{}{}</tr>",
                cell(
                    w.surveys.nps.score,
                    w.surveys.nps.responses,
                    format!("nps-{day}")
                ),
                cell(
                    w.surveys.csat.average,
                    w.surveys.csat.responses,
                    format!("csat-{day}")
                ),
                cell(
                    w.surveys.ces.average,
                    w.surveys.ces.responses,
                    format!("ces-{day}")
                ),
            )
        })
        .collect();
    format!(
        "<section aria-labelledby=\"weekly\"><h2 id=\"weekly\">Scores by week</h2>\
         <p>The last {WEEKS} weeks, by the week each answer came in; a gap is a week nobody answered.</p>\
         <div class=\"charts\"><figure>{}<figcaption>NPS, −100 to 100</figcaption></figure>\
         <figure>{}<figcaption>CSAT, 1 to 5</figcaption></figure>\
         <figure>{}<figcaption>CES, 1 to 7</figcaption></figure></div>\
         <details><summary>The numbers</summary><div class=\"scroll\"><table><thead><tr>\
         <th scope=\"col\">Week of</th><th scope=\"col\">NPS</th><th scope=\"col\">answers</th>\
         <th scope=\"col\">CSAT</th><th scope=\"col\">answers</th><th scope=\"col\">CES</th><th scope=\"col\">answers</th>\
         </tr></thead><tbody>{rows}</tbody></table></div></details></section>",
        chart::line(
            "nps-chart",
            "NPS by week",
            &nps,
            -100.0,
            100.0,
            &[-100.0, -50.0, 0.0, 50.0, 100.0]
        ),
        chart::line(
            "csat-chart",
            "CSAT by week",
            &csat,
            1.0,
            5.0,
            &[1.0, 2.0, 3.0, 4.0, 5.0]
        ),
        chart::line(
            "ces-chart",
            "CES by week",
            &ces,
            1.0,
            7.0,
            &[1.0, 3.0, 5.0, 7.0]
        ),
    )
}

/// Responses per message sent, for each playbook step, over the weeks
/// the charts show.
fn rates(period: &Report) -> String {
    let steps: Vec<_> = period.playbooks.iter().filter(|s| s.sent > 0).collect();
    if steps.is_empty() {
        return format!(
            "<section aria-labelledby=\"rates\"><h2 id=\"rates\">Response rate by step</h2><p>Nothing was sent in the last {WEEKS} weeks.</p></section>"
        );
    }
    let bars: Vec<Bar> = steps
        .iter()
        .map(|s| Bar {
            label: format!("{}/{}", s.playbook, s.step),
            share: s.response_rate.unwrap_or(0.0),
            of: s.sent,
        })
        .collect();
    let rows: String = steps
        .iter()
        .map(|s| {
            let name = format!("{}/{}", s.playbook, s.step);
            format!(
                "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td data-figure=\"rate-{}\">{}</td></tr>",
                escape(&name),
                s.sent,
                s.responses,
                escape(&name),
                s.response_rate.map_or("—".to_owned(), |r| r.to_string()),
            )
        })
        .collect();
    format!(
        "<section aria-labelledby=\"rates\"><h2 id=\"rates\">Response rate by step</h2>\
         <p>Messages due in the last {WEEKS} weeks that got an answer, a click or a reply.</p><figure class=\"bars\">{}</figure>\
         <details><summary>The numbers</summary><div class=\"scroll\"><table><thead><tr>\
         <th scope=\"col\">Step</th><th scope=\"col\">Sent</th><th scope=\"col\">With a response</th><th scope=\"col\">Rate</th>\
         </tr></thead><tbody>{rows}</tbody></table></div></details></section>",
        chart::bars("rate-chart", "Response rate by step", &bars),
    )
}

/// The newest responses of one sort, each with who and what they said.
fn latest(id: &str, heading: &str, responses: &[ResponseView], when_empty: &str) -> String {
    let items: String = responses
        .iter()
        .map(|r| {
            let who = r
                .customer_id
                .as_deref()
                .map_or("someone unmatched".to_owned(), |c| {
                    let path = super::segment(c);
                    format!("<a href=\"/console/customers/{path}\">{}</a>", escape(c))
                });
            let value = r
                .value
                .as_deref()
                .map(|v| format!(" answered <strong>{}</strong>", escape(v)))
                .unwrap_or_default();
            let comment = r
                .comment
                .as_deref()
                .filter(|c| !c.trim().is_empty())
                .map(|c| {
                    format!(
                        "<blockquote>{}</blockquote>",
                        escape(c).replace('\n', "<br>")
                    )
                })
                .unwrap_or_default();
            format!(
                "<li>{who}{value} <span>({} UTC)</span>{comment}</li>",
                r.received_at.format("%Y-%m-%d %H:%M")
            )
        })
        .collect();
    let content = if responses.is_empty() {
        format!("<p>{when_empty}</p>")
    } else {
        format!("<ul class=\"latest\">{items}</ul>")
    };
    format!("<section aria-labelledby=\"{id}\"><h2 id=\"{id}\">{heading}</h2>{content}</section>")
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
fn scores(surveys: &Surveys) -> String {
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
