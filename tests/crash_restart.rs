//! A restart after a crash resumes at once. A daemon killed mid-send (or
//! stopped by SIGTERM after its stop timeout ran out) leaves claims behind;
//! the next start of the same instance releases them instead of waiting for
//! their leases: what was in flight becomes `unknown`, the rest is sent.
//! Every message ends `sent` or `unknown` within 30 s of the restart and
//! none reaches the server twice, on SQLite (the instance lock proves the
//! old process gone) and on PostgreSQL (the instance's stable name does).

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use common::daemon::Daemon;
use common::smtp::SmtpSink;
use common::{Project, free_port};

const MESSAGES: usize = 300;
/// At most seven chunks of `delivery.concurrency` (8) messages are
/// `sending` at once (three in the mail client's hands or about to be,
/// four sent and waiting for their outcomes to be recorded): all a crash
/// may leave `unknown`.
const IN_FLIGHT: usize = 7 * 8;

/// An urgent notice for each of 300 customers, due now (no send window, no
/// cap), sent over SMTP to `sink`, which takes 20 ms a message: sends are in
/// flight when a test kills or stops the daemon. On PostgreSQL at `url`, or
/// on the project's SQLite file. Leases keep their default: a restart that
/// waited for them would not settle in time.
fn outbox(sink: &SmtpSink, url: Option<&str>) -> Project {
    sink.slow_down(Duration::from_millis(20));
    let mut p = Project::new(&format!(
        "[mail]\ntransport = \"smtp\"\n[mail.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntimeout = \"30s\"\npool_size = 2\n\
         [http]\npublic_url = \"http://127.0.0.1:8080\"\n\
         [security]\nsecret = \"a-crash-test-secret-of-more-than-32-bytes\"\n\
         [schedule]\nplan_every = \"1h\"\ndeliver_every = \"1s\"\n",
        sink.port()
    ));
    if let Some(url) = url {
        p = p.env("TEND__DATABASE__URL", url);
    }
    std::fs::create_dir_all(p.path().join("config/playbooks")).unwrap();
    std::fs::create_dir_all(p.path().join("templates")).unwrap();
    p.file(
        "config/playbooks/notice.toml",
        "name = \"notice\"\nkind = \"incident\"\ncategory = \"incidents\"\n\n\
         [[step]]\nid = \"welcome\"\ntemplate = \"notice\"\nanchor = \"signup_at\"\nafter = \"1d\"\n",
    );
    p.file(
        "templates/notice.md.hbs",
        "+++\nsubject = \"Hello {{customer.first_name}}\"\n+++\nHi.\n",
    );
    let signup = (Utc::now() - chrono::Duration::days(1) - chrono::Duration::hours(1)).to_rfc3339();
    let rows: String = (0..MESSAGES)
        .map(|i| format!("c{i:03},c{i:03}@example.com,C {i},UTC,pro,{signup}\n"))
        .collect();
    p.file(
        "many.csv",
        format!("id,email,name,timezone,plan,signup_at\n{rows}"),
    );
    p.tend(&["import", "customers", "many.csv"]).expect_code(0);
    p
}

/// Waits (up to 20 s) until the server holds `n` messages.
fn wait_for_mail(sink: &SmtpSink, n: usize) {
    let started = Instant::now();
    while sink.received().len() < n {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "only {} of {n} messages arrived",
            sink.received().len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts the daemon again and checks that every message reaches `sent` or
/// `unknown` within 30 s, that none reached the server twice, that every
/// `sent` one reached it, and that only what was in flight is `unknown`.
fn restart_settles_everything(p: &Project, sink: &SmtpSink) {
    let restarted = Instant::now();
    let mut d = Daemon::start(p, free_port(), &[]);
    let settled = loop {
        let all = common::json(&p.tend(&["messages", "--format", "json"]).expect_code(0));
        let all = all.as_array().unwrap().clone();
        if all.len() == MESSAGES
            && all
                .iter()
                .all(|m| m["status"] == "sent" || m["status"] == "unknown")
        {
            break all;
        }
        let mut statuses: HashMap<String, usize> = HashMap::new();
        for m in &all {
            *statuses
                .entry(m["status"].as_str().unwrap_or("?").to_owned())
                .or_default() += 1;
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(30),
            "30 s after the restart, not every message is sent or unknown: {statuses:?}\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!("settled {:?} after the restart", restarted.elapsed());
    assert!(d.stop(Duration::from_secs(10)).success(), "{}", d.log());

    let mut arrived: HashMap<String, usize> = HashMap::new();
    for m in sink.received() {
        *arrived.entry(m.header("Message-ID").unwrap()).or_default() += 1;
    }
    let twice: Vec<_> = arrived.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent twice: {twice:?}");
    let mut unknown = 0;
    for m in &settled {
        let id = format!("<{}>", m["message_id"].as_str().unwrap());
        if m["status"] == "sent" {
            assert!(arrived.contains_key(&id), "sent {id} arrived");
        } else {
            unknown += 1;
        }
    }
    assert!(unknown <= IN_FLIGHT, "{unknown} unknown");
    eprintln!(
        "{} sent, {unknown} unknown, {} arrived",
        MESSAGES - unknown,
        arrived.len()
    );
}

/// kill -9 mid-send, then a restart.
fn killed_mid_send(url: Option<&str>) {
    let sink = SmtpSink::start();
    let p = outbox(&sink, url);
    let mut first = Daemon::start(&p, free_port(), &[]);
    wait_for_mail(&sink, 20);
    first.kill();
    let at_kill = sink.received().len();
    assert!(at_kill < MESSAGES, "the daemon was still at work");
    restart_settles_everything(&p, &sink);
}

/// SIGTERM mid-send with sends that outlast the stop timeout, then a
/// restart.
fn stopped_past_the_timeout(url: Option<&str>) {
    let sink = SmtpSink::start();
    let p = outbox(&sink, url);
    let mut first = Daemon::start(&p, free_port(), &[("TEND__INSTANCE__STOP_TIMEOUT", "1s")]);
    wait_for_mail(&sink, 20);
    // The server now takes longer over each message than the daemon may
    // wait for the sends in flight.
    sink.slow_down(Duration::from_secs(5));
    let status = first.stop(Duration::from_secs(15));
    assert!(status.success(), "{status}\n{}", first.log());
    assert!(
        first.log().contains("stopped before every send finished"),
        "{}",
        first.log()
    );
    sink.slow_down(Duration::from_millis(20));
    restart_settles_everything(&p, &sink);
}

#[test]
fn a_daemon_killed_mid_send_on_sqlite_resumes_at_once() {
    killed_mid_send(None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_mid_send_on_postgres_resumes_at_once() {
    common::on_fresh_postgres(|url| killed_mid_send(Some(url))).await;
}

#[test]
fn a_daemon_stopped_past_its_timeout_on_sqlite_resumes_at_once() {
    stopped_past_the_timeout(None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_stopped_past_its_timeout_on_postgres_resumes_at_once() {
    common::on_fresh_postgres(|url| stopped_past_the_timeout(Some(url))).await;
}
