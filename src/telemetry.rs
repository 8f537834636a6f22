//! tend's metrics: every name and label in one place, recorded through the
//! `metrics` facade (a no-op until the daemon installs the Prometheus
//! recorder) and rendered at `GET /metrics`.

use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::domain::message::Status;

/// Messages that reached a state, by status and playbook.
const MESSAGES: &str = "tend_messages_total";
/// One SMTP transaction (or file write), in seconds.
const SEND_SECONDS: &str = "tend_send_seconds";
/// One plan pass, in seconds.
const PLAN_SECONDS: &str = "tend_plan_seconds";
/// One delivery pass, in seconds.
const DELIVER_SECONDS: &str = "tend_deliver_seconds";
/// Messages due now and not yet sent (planned or deferred), after a pass.
const OUTBOX_DUE: &str = "tend_outbox_due";
/// Customer responses recorded, by kind.
const RESPONSES: &str = "tend_responses_total";
/// A job pass that failed, by job.
const JOB_FAILURES: &str = "tend_job_failures_total";
/// Configuration reloads, by result.
const RELOADS: &str = "tend_config_reloads_total";
/// Rows taken in by the ingestion API, by kind and result.
const INGESTED: &str = "tend_ingested_rows_total";
/// Requests to the links in mail refused by the per-address rate limit.
const LIMITED: &str = "tend_http_limited_total";

/// Notification attempts (alerts, webhook POSTs), by target and outcome.
const NOTIFICATIONS: &str = "tend_notifications_total";
/// Notifications waiting per target (webhook endpoint or alert
/// recipient), after a pass.
const NOTIFICATION_BACKLOG: &str = "tend_notification_backlog";

/// The jobs whose failures are counted.
const JOBS: [&str; 5] = ["plan", "deliver", "inbound", "housekeeping", "notify"];
/// What the ingestion API takes in.
const INGESTED_KINDS: [&str; 3] = ["customers", "accounts", "events"];
/// Response kinds, as the store records them.
const RESPONSE_KINDS: [&str; 7] = [
    "survey",
    "click",
    "reply",
    "auto_reply",
    "unsubscribe",
    "bounce",
    "complaint",
];

/// Installs the process-wide Prometheus recorder. Called once, by the
/// daemon; one-shot commands record into the no-op default (the same code
/// paths count, but a short-lived process has no `/metrics` to read).
/// `playbooks` are the names known at start, whose message counters are
/// shown from the first scrape.
pub fn install<'a>(
    playbooks: impl IntoIterator<Item = &'a str>,
) -> Result<PrometheusHandle, String> {
    let seconds = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        60.0,
    ];
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)
        .and_then(|b| b.install_recorder())
        .map_err(|e| format!("cannot set up metrics: {e}"))?;
    describe();
    gauge!("tend_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    register_at_zero(playbooks);
    Ok(handle)
}

/// Every counter with every label set tend knows at start, at 0: an alert on
/// "any increase" needs a series to exist before its first increment, and
/// Prometheus shows no series until a value is recorded.
fn register_at_zero<'a>(playbooks: impl IntoIterator<Item = &'a str>) {
    for kind in RESPONSE_KINDS {
        counter!(RESPONSES, "kind" => kind).absolute(0);
    }
    for job in JOBS {
        counter!(JOB_FAILURES, "job" => job).absolute(0);
    }
    for result in ["applied", "rejected"] {
        counter!(RELOADS, "result" => result).absolute(0);
    }
    for kind in INGESTED_KINDS {
        for result in ["accepted", "rejected"] {
            counter!(INGESTED, "kind" => kind, "result" => result).absolute(0);
        }
    }
    counter!(LIMITED).absolute(0);
    for playbook in playbooks {
        for status in Status::ALL {
            counter!(MESSAGES, "status" => status.as_str(), "playbook" => playbook.to_owned())
                .absolute(0);
        }
    }
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!("tend_build_info", "tend's version; always 1");
    describe_counter!(
        MESSAGES,
        "messages that reached a status, by status and playbook"
    );
    describe_histogram!(
        SEND_SECONDS,
        Unit::Seconds,
        "one message handed to the transport"
    );
    describe_histogram!(PLAN_SECONDS, Unit::Seconds, "one planning pass");
    describe_histogram!(DELIVER_SECONDS, Unit::Seconds, "one delivery pass");
    describe_gauge!(OUTBOX_DUE, "messages due and not yet sent");
    describe_counter!(RESPONSES, "customer responses recorded, by kind");
    describe_counter!(JOB_FAILURES, "job passes that failed, by job");
    describe_counter!(RELOADS, "configuration reloads, by result");
    describe_counter!(INGESTED, "rows taken in by the API, by kind and result");
    describe_counter!(
        LIMITED,
        "link requests refused by the per-address rate limit"
    );
    describe_counter!(
        NOTIFICATIONS,
        "alert and webhook attempts, by target and outcome (sent, retrying, failed)"
    );
    describe_gauge!(
        NOTIFICATION_BACKLOG,
        "alerts and webhook deliveries waiting, by target"
    );
}

/// One notification attempt ended so.
pub fn notification_attempt(target: &str, outcome: &crate::domain::notification::Outcome) {
    use crate::domain::notification::Outcome;
    let outcome = match outcome {
        Outcome::Sent => "sent",
        Outcome::Retry { .. } => "retrying",
        Outcome::Failed { .. } => "failed",
    };
    counter!(NOTIFICATIONS, "target" => label(target), "outcome" => outcome).increment(1);
}

/// A target as a metric names it: an alert's by its rule, never by the
/// address it goes to.
fn label(target: &str) -> String {
    match target.strip_prefix("alert:") {
        Some(rest) => format!("alert:{}", rest.split(':').next().unwrap_or(rest)),
        None => target.to_owned(),
    }
}

/// Each target's waiting notifications.
pub fn notification_backlog(targets: &[crate::domain::notification::TargetStatus]) {
    let mut by_label: std::collections::BTreeMap<String, u64> = Default::default();
    for t in targets {
        *by_label.entry(label(&t.target)).or_default() += t.backlog;
    }
    for (target, backlog) in by_label {
        gauge!(NOTIFICATION_BACKLOG, "target" => target).set(backlog as f64);
    }
}

/// A message reached `status` (held messages are not counted: they wait).
pub fn message_settled(playbook: &str, status: Status) {
    counter!(MESSAGES, "status" => status.as_str(), "playbook" => playbook.to_owned()).increment(1);
}

pub fn message_sent_in(took: Duration) {
    histogram!(SEND_SECONDS).record(took.as_secs_f64());
}

pub fn plan_pass(took: Duration) {
    histogram!(PLAN_SECONDS).record(took.as_secs_f64());
}

pub fn deliver_pass(took: Duration) {
    histogram!(DELIVER_SECONDS).record(took.as_secs_f64());
}

pub fn outbox_due(count: u64) {
    gauge!(OUTBOX_DUE).set(count as f64);
}

/// `job` is one of [`JOBS`].
pub fn job_failed(job: &'static str) {
    counter!(JOB_FAILURES, "job" => job).increment(1);
}

pub fn reloaded(ok: bool) {
    counter!(RELOADS, "result" => if ok { "applied" } else { "rejected" }).increment(1);
}

pub fn response_recorded(kind: &'static str) {
    counter!(RESPONSES, "kind" => kind).increment(1);
}

pub fn request_limited() {
    counter!(LIMITED).increment(1);
}

pub fn ingested(kind: &'static str, accepted: u64, rejected: u64) {
    counter!(INGESTED, "kind" => kind, "result" => "accepted").increment(accepted);
    counter!(INGESTED, "kind" => kind, "result" => "rejected").increment(rejected);
}
