//! `tend run` as operators meet it: the real binary, a real socket, a real
//! SMTP server, signals. Readiness, health and metrics; the ingestion API's
//! auth and bad bodies; an event mailed without waiting for the next plan;
//! SIGHUP reload (a good edit applied, a broken one refused while serving);
//! SIGTERM; systemd notifications; one daemon per SQLite file; several
//! daemons sharing one PostgreSQL database.

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use chrono::Utc;
use common::daemon::Daemon;
use common::smtp::SmtpSink;
use common::{Project, free_port};
use tend::domain::message::MessageId;
use tend::store::Responses;

const TOKEN: &str = "s3cret-token";

/// An urgent notice (no send window, no cap) one second after an event.
const NOTICE: &str = r#"
name = "upgrade"
kind = "incident"
category = "incidents"

[[step]]
id = "failed"
template = "failed"
anchor = "event:upgrade_failed"
after = "1s"
"#;

fn project(smtp_port: u16) -> Project {
    let p = Project::new(&format!(
        "[mail]\ntransport = \"smtp\"\n[mail.smtp]\nhost = \"127.0.0.1\"\nport = {smtp_port}\ntimeout = \"5s\"\n\
         [http]\napi_token = \"{TOKEN}\"\n\
         [schedule]\nplan_every = \"1h\"\ndeliver_every = \"1h\"\n"
    ));
    std::fs::create_dir_all(p.path().join("config/playbooks")).unwrap();
    std::fs::create_dir_all(p.path().join("templates")).unwrap();
    p.file("config/playbooks/upgrade.toml", NOTICE);
    p.file(
        "templates/failed.md.hbs",
        "+++\nsubject = \"Your upgrade needs a hand, {{customer.first_name}}\"\n+++\nHi {{customer.first_name}}, we saw the upgrade fail.\n",
    );
    p
}

fn auth() -> [(&'static str, &'static str); 2] {
    [
        ("Authorization", "Bearer s3cret-token"),
        ("Content-Type", "application/json"),
    ]
}

/// Waits until the server has taken `n` messages: up to a minute, which
/// only a failing run reaches (300 slowed sends take about 10 s on two
/// loaded cores).
fn wait_for_mail(sink: &SmtpSink, n: usize) -> Duration {
    let started = Instant::now();
    while sink.received().len() < n {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "only {} of {n} messages arrived",
            sink.received().len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

fn post_customer_and_event(d: &Daemon, id: &str) {
    let customer = format!(r#"[{{"id":"{id}","email":"{id}@example.com","name":"Ana Lima"}}]"#);
    let r = d.request("POST", "/api/v1/customers", &auth(), customer.as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    let at = (Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let event = format!(r#"{{"customer_id":"{id}","name":"upgrade_failed","occurred_at":"{at}"}}"#);
    let r = d.request("POST", "/api/v1/events", &auth(), event.as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn serves_health_readiness_and_metrics_and_stops_on_sigterm() {
    let sink = SmtpSink::start();
    let p = project(sink.port());
    let mut d = Daemon::start(&p, free_port(), &[]);
    let health = d.get("/healthz");
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    let ready = d.get("/readyz");
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["ready"], true, "{}", ready.body);
    assert_eq!(ready.json()["store"], "ok");
    // The first plan and delivery passes run at start; their figures appear
    // once they have.
    let started = Instant::now();
    let mut metrics = d.get("/metrics");
    while !(metrics.body.contains("tend_plan_seconds") && metrics.body.contains("tend_outbox_due"))
        && started.elapsed() < Duration::from_secs(20)
    {
        std::thread::sleep(Duration::from_millis(50));
        metrics = d.get("/metrics");
    }
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.head.contains("text/plain; version=0.0.4"),
        "{}",
        metrics.head
    );
    for expected in [
        "# TYPE tend_build_info gauge",
        "tend_build_info{version=\"",
        "# TYPE tend_outbox_due gauge",
        "# TYPE tend_plan_seconds histogram",
        "tend_responses_total{kind=\"survey\"} 0",
        // Every counter is there at 0 before anything happened, so an alert
        // on any increase can fire on the first one.
        "# TYPE tend_job_failures_total counter",
        "tend_job_failures_total{job=\"plan\"} 0",
        "tend_job_failures_total{job=\"deliver\"} 0",
        "tend_job_failures_total{job=\"inbound\"} 0",
        "tend_job_failures_total{job=\"housekeeping\"} 0",
        "tend_config_reloads_total{result=\"applied\"} 0",
        "tend_config_reloads_total{result=\"rejected\"} 0",
        "tend_ingested_rows_total{kind=\"customers\",result=\"accepted\"} 0",
        "tend_ingested_rows_total{kind=\"events\",result=\"rejected\"} 0",
        "tend_http_limited_total 0",
        "tend_messages_total{status=\"sent\",playbook=\"upgrade\"} 0",
        "tend_messages_total{status=\"failed\",playbook=\"upgrade\"} 0",
    ] {
        assert!(
            metrics.body.contains(expected),
            "{expected} in\n{}",
            metrics.body
        );
    }
    // Every sample line is NAME{labels} VALUE or NAME VALUE.
    for line in metrics
        .body
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "bad sample line {line:?}");
    }
    let status = d.stop(Duration::from_secs(10));
    assert!(status.success(), "{status}\n{}", d.log());
    assert!(d.log().contains("stopped"), "{}", d.log());
}

#[test]
fn an_event_is_mailed_at_once_and_the_message_is_counted() {
    let sink = SmtpSink::start();
    let p = project(sink.port());
    let mut d = Daemon::start(&p, free_port(), &[]);
    // Planning and delivery run only hourly here: only the event can have
    // woken them.
    std::thread::sleep(Duration::from_millis(200));
    post_customer_and_event(&d, "ana");
    let took = wait_for_mail(&sink, 1);
    eprintln!("event to SMTP acceptance: {took:?}");
    let mail = &sink.received()[0];
    assert_eq!(mail.to, vec!["ana@example.com"]);
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("Your upgrade needs a hand, Ana")
    );
    // The server accepts the mail a moment before the send is recorded.
    let counted = "tend_messages_total{status=\"sent\",playbook=\"upgrade\"} 1";
    let started = Instant::now();
    let mut metrics = d.get("/metrics").body;
    while !metrics.contains(counted) && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
        metrics = d.get("/metrics").body;
    }
    assert!(metrics.contains(counted), "{metrics}");
    assert!(d.stop(Duration::from_secs(10)).success());
    let messages = common::json(&p.tend(&["messages", "--format", "json"]).expect_code(0));
    assert_eq!(messages[0]["status"], "sent", "{messages:#}");
}

#[test]
fn the_api_wants_its_token_and_names_what_is_wrong_with_a_body() {
    let sink = SmtpSink::start();
    let p = project(sink.port());
    let d = Daemon::start(&p, free_port(), &[]);
    let row = br#"[{"id":"a","email":"a@example.com"}]"#;

    let none = d.request("POST", "/api/v1/customers", &[], row);
    assert_eq!(none.status, 401);
    assert!(
        none.head
            .to_ascii_lowercase()
            .contains("www-authenticate: bearer")
    );
    assert!(none.json()["error"].as_str().unwrap().contains("Bearer"));
    let wrong = d.request(
        "POST",
        "/api/v1/customers",
        &[("Authorization", "Bearer s3cret-tokem")],
        row,
    );
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.json()["error"], "the API token is wrong");

    let broken = d.request("POST", "/api/v1/customers", &auth(), br#"[{"id":"a","#);
    assert_eq!(broken.status, 400);
    assert!(
        broken.json()["error"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{}",
        broken.body
    );
    let line = d.request(
        "POST",
        "/api/v1/events",
        &auth(),
        b"{\"customer_id\":\"a\"}\nnot json\n",
    );
    assert_eq!(line.status, 400);
    assert!(
        line.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("line 2:")
    );

    let huge = vec![b' '; 17 * 1024 * 1024];
    let big = d.request("POST", "/api/v1/customers", &auth(), &huge);
    assert_eq!(big.status, 413, "{}", big.body);

    // Valid JSON, one bad row: the good rows are kept, the bad one named.
    let mixed = d.request(
        "POST",
        "/api/v1/customers",
        &auth(),
        br#"[{"id":"a","email":"a@example.com"},{"id":"b","email":"not-an-address"},{"id":"c","email":"c@example.com","timezone":"Mars/Olympus"}]"#,
    );
    assert_eq!(mixed.status, 422, "{}", mixed.body);
    let body = mixed.json();
    assert_eq!(body["imported"], 1);
    assert_eq!(body["rejected"], 2);
    assert_eq!(body["errors"][0]["line"], 2);
    assert!(
        body["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("email")
    );
    assert!(
        body["errors"][1]["reason"]
            .as_str()
            .unwrap()
            .contains("Mars/Olympus")
    );
    let event = d.request(
        "POST",
        "/api/v1/events",
        &auth(),
        br#"[{"customer_id":"nobody","name":"login","occurred_at":"2026-11-02T10:00:00Z"}]"#,
    );
    assert_eq!(event.status, 422);
    assert!(event.body.contains("no customer has id"), "{}", event.body);
    // Nothing broke: the daemon still serves.
    assert_eq!(d.get("/readyz").status, 200);
}

#[test]
fn sighup_applies_a_good_edit_and_keeps_serving_through_a_broken_one() {
    let sink = SmtpSink::start();
    let p = project(sink.port());
    let d = Daemon::start(&p, free_port(), &[]);

    p.file(
        "config/playbooks/upgrade.toml",
        "name = \"upgrade\"\n[[step]\n",
    );
    d.signal("HUP");
    d.wait_for_log("reload rejected");
    assert!(d.log().contains("upgrade.toml:2"), "{}", d.log());
    assert_eq!(d.get("/readyz").status, 200, "still serving");
    // The running version still works.
    post_customer_and_event(&d, "ana");
    wait_for_mail(&sink, 1);

    p.file("config/playbooks/upgrade.toml", NOTICE);
    p.file(
        "templates/failed.md.hbs",
        "+++\nsubject = \"Edited: {{customer.first_name}}\"\n+++\nHello again.\n",
    );
    d.signal("HUP");
    d.wait_for_log("reloaded config, playbooks and templates");
    post_customer_and_event(&d, "bea");
    wait_for_mail(&sink, 2);
    let subjects: Vec<_> = sink
        .received()
        .iter()
        .map(|m| m.header("Subject").unwrap())
        .collect();
    assert_eq!(subjects[1], "Edited: Ana");
    let metrics = d.get("/metrics").body;
    assert!(metrics.contains("tend_config_reloads_total{result=\"rejected\"} 1"));
    assert!(metrics.contains("tend_config_reloads_total{result=\"applied\"} 1"));
}

/// An emptied config file is refused on SIGHUP: the daemon keeps its API
/// token and its SMTP transport rather than falling back to the defaults.
#[test]
fn sighup_with_an_emptied_config_file_keeps_the_running_config() {
    let sink = SmtpSink::start();
    let p = project(sink.port());
    let d = Daemon::start(&p, free_port(), &[]);
    for (n, emptied) in ["", "# the settings moved elsewhere\n\n"]
        .iter()
        .enumerate()
    {
        p.file("config/tend.toml", emptied);
        d.signal("HUP");
        let started = Instant::now();
        while d.log().matches("reload rejected").count() <= n {
            assert!(started.elapsed() < Duration::from_secs(20), "{}", d.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let log = d.log();
    assert!(
        log.contains("config/tend.toml: the config file sets nothing"),
        "the log names the file and why:\n{log}"
    );
    assert!(!log.contains("reloaded config"), "{log}");
    assert!(!p.path().join("data/outbox").exists(), "{log}");
    // Still the same API token, still SMTP.
    post_customer_and_event(&d, "ana");
    wait_for_mail(&sink, 1);
    let unauthorised = d.request("POST", "/api/v1/customers", &[], b"[]");
    assert_eq!(unauthorised.status, 401, "{}", unauthorised.body);
    let metrics = d.get("/metrics").body;
    assert!(
        metrics.contains("tend_config_reloads_total{result=\"rejected\"}"),
        "{metrics}"
    );
}

#[test]
fn a_second_daemon_on_one_sqlite_file_refuses_to_start() {
    let sink = SmtpSink::start();
    let p = project(sink.port());
    let _first = Daemon::start(&p, free_port(), &[]);
    let second = p
        .env("TEND__HTTP__LISTEN", &format!("127.0.0.1:{}", free_port()))
        .tend(&["run"])
        .expect_code(1);
    assert!(
        second
            .stderr()
            .contains("another tend run is already using data/tend.db"),
        "{}",
        second.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_under_one_name_on_one_postgres_database_refuses_to_start() {
    common::on_fresh_postgres(move |url| {
        let sink = SmtpSink::start();
        let p = project(sink.port()).env("TEND__DATABASE__URL", url);
        let _first = Daemon::start(&p, free_port(), &[("TEND__INSTANCE__NAME", "web1")]);
        // Under the same name it would release the first one's claims.
        let second = p
            .env("TEND__INSTANCE__NAME", "web1")
            .env("TEND__HTTP__LISTEN", &format!("127.0.0.1:{}", free_port()))
            .tend(&["run"])
            .expect_code(1);
        assert!(
            second
                .stderr()
                .contains("another running tend instance on this database is named \"web1\""),
            "{}",
            second.stderr()
        );
    })
    .await;
}

#[test]
fn systemd_hears_ready_reloading_watchdog_and_stopping() {
    let sink = SmtpSink::start();
    let p = project(sink.port());
    let socket_path = p.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut d = Daemon::start(
        &p,
        free_port(),
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "200000"),
        ],
    );
    listen_until(&socket, "READY=1");
    listen_until(&socket, "WATCHDOG=1");
    d.signal("HUP");
    let reloading = listen_until(&socket, "RELOADING=1");
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading:?}");
    listen_until(&socket, "READY=1");
    assert!(d.stop(Duration::from_secs(10)).success());
    listen_until(&socket, "STOPPING=1");
}

/// Reads notifications until one contains `what`; returns all it read.
fn listen_until(socket: &UnixDatagram, what: &str) -> String {
    let mut heard = String::new();
    let mut buf = [0u8; 4096];
    while !heard.contains(what) {
        let n = socket
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no {what} from tend ({e}); heard {heard:?}"));
        heard.push_str(&String::from_utf8_lossy(&buf[..n]));
        heard.push('\n');
    }
    heard
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_daemons_on_one_postgres_database_send_each_message_once() {
    common::on_fresh_postgres(move |url| {
        let sink = SmtpSink::start();
        let p = slow_outbox(&sink, url);
        // On one machine, each needs a name of its own.
        let mut daemons: Vec<Daemon> = (0..3)
            .map(|i| {
                Daemon::start(
                    &p,
                    free_port(),
                    &[("TEND__INSTANCE__NAME", &format!("d{i}"))],
                )
            })
            .collect();
        wait_for_mail(&sink, 300);
        for d in &mut daemons {
            assert!(d.stop(Duration::from_secs(10)).success(), "{}", d.log());
        }
        let received = sink.received();
        let mut ids: Vec<String> = received
            .iter()
            .map(|m| m.header("Message-ID").unwrap())
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(received.len(), 300, "every message once");
        assert_eq!(ids.len(), 300, "no message twice");
        let messages = common::json(&p.tend(&["messages", "--format", "json"]).expect_code(0));
        let not_sent: Vec<_> = messages
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["status"] != "sent")
            .collect();
        assert!(not_sent.is_empty(), "{not_sent:#?}");
        let delivered_by: usize = daemons
            .iter()
            .filter(|d| d.log().contains("delivered"))
            .count();
        eprintln!("{delivered_by} of 3 daemons delivered");
        // The imported people waited for their search terms; the planning
        // pass wrote them, each person once, whichever daemon planned.
        let filled: Vec<String> = daemons
            .iter()
            .flat_map(|d| d.log().lines().map(str::to_owned).collect::<Vec<_>>())
            .filter(|l| l.contains("made imported people searchable"))
            .collect();
        let people: u64 = filled
            .iter()
            .filter_map(|l| {
                l.split("people=")
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .sum();
        assert_eq!(people, 300, "{filled:#?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_mid_run_leaves_its_work_to_the_others_and_nothing_is_lost() {
    common::on_fresh_postgres(move |url| {
        let sink = SmtpSink::start();
        let p = slow_outbox(&sink, url);
        // The first daemon claims the whole outbox and starts sending…
        let mut first = Daemon::start(&p, free_port(), &[("TEND__INSTANCE__NAME", "first")]);
        wait_for_mail(&sink, 20);
        // …and dies mid-run.
        first.kill();
        let at_kill = sink.received().len();
        assert!(at_kill < 300, "the first daemon was still at work");
        let mut others: Vec<Daemon> = (0..2)
            .map(|i| Daemon::start(&p, free_port(), &[("TEND__INSTANCE__NAME", &format!("other{i}"))]))
            .collect();

        // After its lease, the others send what it had not started, and
        // mark what it was sending as unknown.
        let started = Instant::now();
        let settled = loop {
            let all = common::json(&p.tend(&["messages", "--format", "json"]).expect_code(0));
            let all = all.as_array().unwrap().clone();
            if all.len() == 300 && all.iter().all(|m| m["status"] == "sent" || m["status"] == "unknown") {
                break all;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "not every message settled: {:?}",
                all.iter().map(|m| m["status"].as_str().unwrap_or("?")).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        for d in &mut others {
            assert!(d.stop(Duration::from_secs(10)).success(), "{}", d.log());
        }
        let received = sink.received();
        let mut ids: Vec<String> = received
            .iter()
            .map(|m| m.header("Message-ID").unwrap())
            .collect();
        ids.sort();
        let arrived = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), arrived, "no message arrived twice");
        let sent: Vec<_> = settled.iter().filter(|m| m["status"] == "sent").collect();
        let unknown = settled.len() - sent.len();
        for m in &sent {
            let id = format!("<{}>", m["message_id"].as_str().unwrap());
            assert!(ids.binary_search(&id).is_ok(), "sent {id} arrived");
        }
        // Only what was in flight at the kill can be unknown: at most three
        // chunks of delivery.concurrency (8) messages; the rest was sent by
        // the other daemons once the dead one's lease ran out.
        assert!(unknown <= 3 * 8, "{unknown} unknown");
        assert!(sent.len() >= 300 - 3 * 8);
        eprintln!(
            "at the kill {at_kill} had arrived; in the end {} sent, {unknown} unknown, {arrived} arrived",
            sent.len()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_daemon_keeps_the_batch_it_claimed_however_long_it_takes() {
    common::on_fresh_postgres(move |url| {
        let sink = SmtpSink::start();
        let p = slow_outbox(&sink, url);
        // 60 ms a message over two connections: the batch the first daemon
        // claims takes about three leases (3 s) to send.
        sink.slow_down(Duration::from_millis(60));
        let mut first = Daemon::start(&p, free_port(), &[("TEND__INSTANCE__NAME", "first")]);
        wait_for_mail(&sink, 8);
        let mut second = Daemon::start(&p, free_port(), &[("TEND__INSTANCE__NAME", "second")]);
        wait_for_mail(&sink, 300);
        for d in [&mut first, &mut second] {
            assert!(d.stop(Duration::from_secs(10)).success(), "{}", d.log());
        }
        // The first renewed its leases while it sent: the second, though
        // it looked every second, never took a message from it.
        for d in [&first, &second] {
            assert!(
                !d.log().contains("lease ran out before their turn"),
                "{}",
                d.log()
            );
        }
        let mut ids: Vec<String> = sink
            .received()
            .iter()
            .map(|m| m.header("Message-ID").unwrap())
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 300);
        assert_eq!(sink.received().len(), 300, "no message twice");
    })
    .await;
}

/// 300 customers with a notice due now, on PostgreSQL at `url`, sent to a
/// server that takes 20 ms a message: sends are in flight when a test
/// stops or kills a daemon. Leases last 3 s and housekeeping runs each
/// second, so a dead daemon's work is taken over quickly.
fn slow_outbox(sink: &SmtpSink, url: &str) -> Project {
    sink.slow_down(Duration::from_millis(20));
    let p = Project::new(&format!(
            "[mail]\ntransport = \"smtp\"\n[mail.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntimeout = \"5s\"\npool_size = 2\n\
             [delivery]\nlease = \"3s\"\n\
             [schedule]\nplan_every = \"1h\"\ndeliver_every = \"1s\"\nhousekeeping_every = \"1s\"\n",
            sink.port()
        ))
        .env("TEND__DATABASE__URL", url);
    std::fs::create_dir_all(p.path().join("config/playbooks")).unwrap();
    std::fs::create_dir_all(p.path().join("templates")).unwrap();
    p.file(
        "config/playbooks/upgrade.toml",
        NOTICE
            .replace("event:upgrade_failed", "signup_at")
            .replace("after = \"1s\"", "after = \"1d\""),
    );
    p.file(
        "templates/failed.md.hbs",
        "+++\nsubject = \"Hello {{customer.first_name}}\"\n+++\nHi.\n",
    );
    let signup = (Utc::now() - chrono::Duration::days(1) - chrono::Duration::hours(1)).to_rfc3339();
    let rows: String = (0..300)
        .map(|i| format!("c{i:03},c{i:03}@example.com,C {i},UTC,pro,{signup}\n"))
        .collect();
    p.file(
        "many.csv",
        format!("id,email,name,timezone,plan,signup_at\n{rows}"),
    );
    p.tend(&["import", "customers", "many.csv"]).expect_code(0);

    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_run_finishes_or_puts_back_every_message() {
    common::on_fresh_postgres(move |url| {
        let sink = SmtpSink::start();
        let p = slow_outbox(&sink, url);
        let mut d = Daemon::start(&p, free_port(), &[]);
        wait_for_mail(&sink, 20);
        let status = d.stop(Duration::from_secs(10));
        assert!(status.success(), "{status}\n{}", d.log());
        let all = common::json(&p.tend(&["messages", "--format", "json"]).expect_code(0));
        let all = all.as_array().unwrap();
        assert_eq!(all.len(), 300);
        let sent = all.iter().filter(|m| m["status"] == "sent").count();
        let waiting = all.iter().filter(|m| m["status"] == "planned").count();
        assert_eq!(
            sent + waiting,
            300,
            "each message sent or waiting, none unknown: {all:#?}"
        );
        assert!(waiting > 0, "the stop came mid-run");
        assert_eq!(
            sink.received().len(),
            sent,
            "what was recorded sent is what arrived"
        );
        // The next daemon sends the rest at once, not after a lease.
        let _next = Daemon::start(&p, free_port(), &[]);
        wait_for_mail(&sink, 300);
    })
    .await;
}

/// The paths (after `base`) of the links to `base/route/…` in a mail's
/// HTML part, in order.
fn linked_paths(mail: &common::smtp::Received, base: &str, route: &str) -> Vec<String> {
    let parsed = mail_parser::MessageParser::default()
        .parse(mail.data.as_bytes())
        .unwrap();
    let html = parsed.body_html(0).unwrap().into_owned();
    let prefix = format!("{base}/{route}/");
    html.match_indices(&prefix)
        .map(|(at, _)| {
            let link = &html[at + base.len()..];
            link[..link.find('"').unwrap()].to_owned()
        })
        .collect()
}

/// `path` with one character of its token changed.
fn forged(path: &str, at: usize) -> String {
    let mut forged = path.to_owned();
    let was = &path[at..at + 1];
    forged.replace_range(at..at + 1, if was == "A" { "B" } else { "A" });
    forged
}

/// The https (here http) URL inside a List-Unsubscribe header.
fn unsubscribe_url(header: &str) -> String {
    header
        .split(',')
        .filter_map(|part| part.trim().strip_prefix('<')?.strip_suffix('>'))
        .find(|url| url.starts_with("http"))
        .unwrap_or_else(|| panic!("no web link in {header:?}"))
        .to_owned()
}

#[test]
fn one_click_unsubscribe_stops_that_category_and_a_get_changes_nothing() {
    let sink = SmtpSink::start();
    let p = project(sink.port());
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let d = Daemon::start(&p, port, &[("TEND__HTTP__PUBLIC_URL", &base)]);
    post_customer_and_event(&d, "ana");
    wait_for_mail(&sink, 1);
    let header = sink.received()[0].header("List-Unsubscribe").unwrap();
    let url = unsubscribe_url(&header);
    let path = url.strip_prefix(&base).unwrap().to_owned();
    let one_click = [("Content-Type", "application/x-www-form-urlencoded")];

    // What a mail scanner does: open the link. A page, nothing recorded.
    let page = d.get(&path);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("<form method=\"post\">"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Incident and maintenance notices"));
    // A forged link is refused and records nothing either.
    let bad = d.request(
        "POST",
        &forged(&path, path.len() - 1),
        &one_click,
        b"List-Unsubscribe=One-Click",
    );
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("This link does not work"));
    post_customer_and_event(&d, "ana");
    wait_for_mail(&sink, 2);

    // RFC 8058 one-click: a POST with that body, no cookies, no redirect.
    let done = d.request("POST", &path, &one_click, b"List-Unsubscribe=One-Click");
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("You are unsubscribed"), "{}", done.body);
    post_customer_and_event(&d, "ana");
    let started = Instant::now();
    let suppressed = loop {
        let all = common::json(&p.tend(&["messages", "--format", "json"]).expect_code(0));
        if let Some(m) = all
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["status"] == "suppressed")
        {
            break m.clone();
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{all:#}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let reason = suppressed["reason"].as_str().unwrap();
    assert!(
        reason.contains("unsubscribed from incidents (one-click)"),
        "{reason}"
    );
    assert_eq!(sink.received().len(), 2, "nothing more was sent");
    let metrics = d.get("/metrics").body;
    assert!(
        metrics.contains("tend_responses_total{kind=\"unsubscribe\"} 1"),
        "{metrics}"
    );
}

#[test]
fn a_tracked_link_records_the_click_and_goes_only_where_the_token_says() {
    let sink = SmtpSink::start();
    let p = project(sink.port());
    p.file(
        "templates/failed.md.hbs",
        "+++\nsubject = \"Upgrade\"\n+++\nSee [the notes](https://status.acme.example/m/1?a=1&b=2) and [the café](https://acme.example/café).\n",
    );
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let d = Daemon::start(&p, port, &[("TEND__HTTP__PUBLIC_URL", &base)]);
    post_customer_and_event(&d, "ana");
    wait_for_mail(&sink, 1);
    let links = linked_paths(&sink.received()[0], &base, "c");
    assert_eq!(links.len(), 2, "{links:?}");
    let path = &links[0];

    let followed = d.get(&format!("{path}?url=https://evil.example/"));
    assert_eq!(followed.status, 303, "{}", followed.body);
    assert!(
        followed
            .head
            .lines()
            .any(|l| l.eq_ignore_ascii_case("location: https://status.acme.example/m/1?a=1&b=2")),
        "{}",
        followed.head
    );
    let bad = d.get(&forged(path, path.len() - 1));
    assert_eq!(bad.status, 400);
    assert!(!bad.head.to_ascii_lowercase().contains("location:"));
    // A link with a character a header cannot carry arrives encoded.
    let cafe = d.get(&links[1]);
    assert_eq!(cafe.status, 303, "{}", cafe.body);
    assert!(
        cafe.head.contains("https://acme.example/caf%C3%A9"),
        "{}",
        cafe.head
    );
    let metrics = d.get("/metrics").body;
    assert!(
        metrics.contains("tend_responses_total{kind=\"click\"} 2"),
        "{metrics}"
    );
}

/// A daemon that has mailed Ana an NPS survey.
struct Surveyed {
    _sink: SmtpSink,
    project: Project,
    daemon: Daemon,
    base: String,
    /// The survey links' path without their answer (`/r/TOKEN`).
    answers: String,
    /// tend's id of the message.
    message: MessageId,
}

impl Surveyed {
    fn start() -> Self {
        let sink = SmtpSink::start();
        let project = survey_project(&sink);
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let daemon = Daemon::start(&project, port, &[("TEND__HTTP__PUBLIC_URL", &base)]);
        tokio::task::block_in_place(|| {
            post_customer_and_event(&daemon, "ana");
            wait_for_mail(&sink, 1);
        });
        let links = linked_paths(&sink.received()[0], &base, "r");
        assert!(!links.is_empty(), "a survey link");
        let answers = links[0].rsplit_once('/').unwrap().0.to_owned();
        let messages = common::json(
            &project
                .tend(&["messages", "--format", "json"])
                .expect_code(0),
        );
        let message: MessageId = messages[0]["id"].as_str().unwrap().parse().unwrap();
        Self {
            _sink: sink,
            project,
            daemon,
            base,
            answers,
            message,
        }
    }
}

/// The notice playbook with an NPS survey in its message.
fn survey_project(sink: &SmtpSink) -> Project {
    let p = project(sink.port());
    p.file(
        "config/playbooks/upgrade.toml",
        NOTICE.replace("after = \"1s\"", "after = \"1s\"\nsurvey = \"nps\""),
    );
    p.file(
        "templates/failed.md.hbs",
        "+++\nsubject = \"Upgrade\"\n+++\nHow likely are you to recommend us?\n\n{{> survey}}\n",
    );
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_survey_answer_is_recorded_only_by_the_button_and_the_last_one_wins() {
    let survey = Surveyed::start();
    let (d, id) = (&survey.daemon, survey.message);
    // The links end in their answer: take the one for 7.
    let path = format!("{}/7", survey.answers);
    let store = survey.project.store().await;

    // A scanner's GET: the page, the answer pre-selected, nothing recorded.
    let page = tokio::task::block_in_place(|| d.get(&path));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("value=\"7\" checked"), "{}", page.body);
    assert!(page.body.contains("<textarea"));
    assert!(store.responses_of(id).await.unwrap().is_empty());

    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let post = |body: &str| {
        tokio::task::block_in_place(|| d.request("POST", &path, &form, body.as_bytes()))
    };
    let first = post("answer=7&comment=Setup+was+%3Cb%3Eslow%3C%2Fb%3E");
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(first.body.contains("We recorded your answer"));
    let second = post("answer=9&comment=Better+now");
    assert_eq!(second.status, 200);
    assert_eq!(
        store.responses_of(id).await.unwrap(),
        vec![(
            "survey".to_owned(),
            Some("9".to_owned()),
            Some("Better now".to_owned())
        )],
        "the last answer wins"
    );
    // Off the scale, or a forged link: refused, nothing changes.
    assert_eq!(post("answer=11").status, 400);
    let bad =
        tokio::task::block_in_place(|| d.request("POST", &forged(&path, 4), &form, b"answer=3"));
    assert_eq!(bad.status, 400);
    assert_eq!(store.responses_of(id).await.unwrap().len(), 1);
}

/// Waits until `tend messages` shows a message with `status`; returns it.
fn wait_for_status(p: &Project, status: &str) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let all = common::json(&p.tend(&["messages", "--format", "json"]).expect_code(0));
        if let Some(m) = all
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["status"] == status)
        {
            return m.clone();
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{all:#}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_preference_form_chooses_categories_and_can_bring_mail_back() {
    let sink = SmtpSink::start();
    let p = project(sink.port());
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let d = Daemon::start(&p, port, &[("TEND__HTTP__PUBLIC_URL", &base)]);
    post_customer_and_event(&d, "ana");
    wait_for_mail(&sink, 1);
    let header = sink.received()[0].header("List-Unsubscribe").unwrap();
    let path = unsubscribe_url(&header)
        .strip_prefix(&base)
        .unwrap()
        .to_owned();
    let form = [("Content-Type", "application/x-www-form-urlencoded")];

    // Every category the customer may leave is offered, all still wanted.
    let page = d.get(&path).body;
    for category in ["onboarding", "tips", "checkins", "maintenance", "incidents"] {
        assert!(
            page.contains(&format!("name=\"category\" value=\"{category}\" checked")),
            "{category}: {page}"
        );
    }
    assert!(page.contains("<label for=\"c-tips\">Tips and best practices</label>"));
    // Branded as the messages are: the product on top, the company and its
    // postal address below, laid out for a phone.
    assert!(page.contains("<p class=\"brand\">Acme Cloud</p>"), "{page}");
    assert!(page.contains("Acme · 1 Main St, Springfield"), "{page}");
    assert!(page.contains("width=device-width"));

    // Keep only incidents: the rest are left, and the page says so.
    let saved = d.request("POST", &path, &form, b"action=save&category=incidents");
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert!(
        saved.body.contains("You will no longer receive"),
        "{}",
        saved.body
    );
    assert!(saved.body.contains("<li>Tips and best practices</li>"));
    let page = d.get(&path).body;
    assert!(page.contains("value=\"incidents\" checked"), "{page}");
    assert!(page.contains("value=\"tips\">"), "{page}");
    post_customer_and_event(&d, "ana");
    wait_for_mail(&sink, 2);

    // No email at all: the next notice (incidents) is suppressed too.
    let stop = d.request(
        "POST",
        &path,
        &form,
        b"action=save&category=incidents&all=stop",
    );
    assert!(stop.body.contains("You will get no email"), "{}", stop.body);
    post_customer_and_event(&d, "ana");
    let held = wait_for_status(&p, "suppressed");
    assert!(
        held["reason"]
            .as_str()
            .unwrap()
            .contains("unsubscribed from * (preferences page)"),
        "{held}"
    );
    assert_eq!(sink.received().len(), 2);

    // Back again: mail flows.
    let back = d.request("POST", &path, &form, b"action=save&category=incidents");
    assert_eq!(back.status, 200);
    assert!(
        d.get(&path)
            .body
            .contains("Stop receiving emails about Incident")
    );
    post_customer_and_event(&d, "ana");
    wait_for_mail(&sink, 3);
}

#[test]
fn links_are_rate_limited_per_address_and_old_ones_have_expired() {
    let sink = SmtpSink::start();
    let p = project(sink.port());
    let port = free_port();
    let d = Daemon::start(
        &p,
        port,
        &[
            ("TEND__HTTP__RATE_PER_MINUTE", "3"),
            ("TEND__HTTP__LINK_LIFETIME", "30d"),
            ("TEND__SECURITY__SECRET", "a-known-key-of-at-least-32-bytes"),
        ],
    );
    // Links signed with the daemon's key on an old day: expired, except
    // unsubscribing, which always works.
    let signer = tend::token::Signer::new(b"a-known-key-of-at-least-32-bytes");
    let message = MessageId::new();
    let long_ago = Utc::now() - chrono::Duration::days(45);
    let survey = signer.sign(tend::token::Purpose::Survey, message, "nps", long_ago);
    let old = d.get(&format!("/r/{survey}/9"));
    assert_eq!(old.status, 410, "{}", old.body);
    assert!(old.body.contains("This link has expired"));
    let click = signer.sign(
        tend::token::Purpose::Click,
        message,
        "https://docs.acme.example/start",
        long_ago,
    );
    let old = d.get(&format!("/c/{click}"));
    assert_eq!(old.status, 410, "{}", old.body);
    assert!(
        old.body
            .contains("href=\"https://docs.acme.example/start\""),
        "{}",
        old.body
    );
    let unsubscribe = signer.sign(tend::token::Purpose::Unsubscribe, message, "tips", long_ago);
    let still = d.get(&format!("/u/{unsubscribe}"));
    assert_eq!(
        still.status, 400,
        "not expired, but for no message: {}",
        still.body
    );
    assert!(still.body.contains("no longer exists"));

    // That was three link requests this minute: the fourth waits.
    let limited = d.get(&format!("/r/{survey}/9"));
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert!(
        limited
            .head
            .to_ascii_lowercase()
            .contains("retry-after: 60"),
        "{}",
        limited.head
    );
    // Health and the API are not held back by the links' limit.
    assert_eq!(d.get("/healthz").status, 200);
    let metrics = d.get("/metrics").body;
    assert!(metrics.contains("tend_http_limited_total 1"), "{metrics}");
}

#[test]
fn the_inbound_webhook_takes_raw_mail_behind_the_token() {
    let sink = SmtpSink::start();
    let p = project(sink.port());
    let port = free_port();
    let d = Daemon::start(&p, port, &[]);
    post_customer_and_event(&d, "ana");
    wait_for_mail(&sink, 1);
    let sent = &sink.received()[0];
    let message_id = sent.header("Message-ID").unwrap();
    let message_id = message_id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    let fixture = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/inbound/postfix_hard_bounce.eml"),
    )
    .unwrap()
    .replace("{{MESSAGE_ID}}", message_id)
    .replace("{{REPLY_TO}}", "success@acme.example");
    let raw = [
        ("Authorization", "Bearer s3cret-token"),
        ("Content-Type", "message/rfc822"),
    ];

    let refused = d.request("POST", "/api/v1/inbound", &[], fixture.as_bytes());
    assert_eq!(refused.status, 401);
    let empty = d.request("POST", "/api/v1/inbound", &raw, b"");
    assert_eq!(empty.status, 400, "{}", empty.body);
    let huge = vec![b'x'; 16 * 1024 * 1024 + 1];
    assert_eq!(
        d.request("POST", "/api/v1/inbound", &raw, &huge).status,
        413
    );

    let taken = d.request("POST", "/api/v1/inbound", &raw, fixture.as_bytes());
    assert_eq!(taken.status, 200, "{}", taken.body);
    let body = taken.json();
    assert_eq!(body["classification"], "hard_bounce", "{body}");
    assert_eq!(body["customer_id"], "ana");
    assert_eq!(body["suppressed"], true);
    let again = d
        .request("POST", "/api/v1/inbound", &raw, fixture.as_bytes())
        .json();
    assert_eq!(again["duplicate"], true, "{again}");

    // The next notice to Ana is suppressed with the bounce as its reason.
    post_customer_and_event(&d, "ana");
    let held = wait_for_status(&p, "suppressed");
    assert!(
        held["reason"]
            .as_str()
            .unwrap()
            .contains("hard bounce: 5.1.1"),
        "{held}"
    );
    let metrics = d.get("/metrics").body;
    assert!(
        metrics.contains("tend_responses_total{kind=\"bounce\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_real_browser_the_answer_is_recorded_only_when_the_button_is_pressed() {
    let survey = Surveyed::start();
    let id = survey.message;
    let eight = format!("{}{}/8", survey.base, survey.answers);
    let store = survey.project.store().await;

    let browser = tokio::task::block_in_place(common::browser::Browser::start);
    // Opening the link in a browser, as scanners do: a page, nothing kept.
    tokio::task::block_in_place(|| browser.open(&eight));
    let page = tokio::task::block_in_place(|| browser.source());
    assert!(page.contains("Send my answer"), "{page}");
    assert!(
        store.responses_of(id).await.unwrap().is_empty(),
        "a GET in a browser records nothing"
    );

    // A person writes a comment and presses the button.
    tokio::task::block_in_place(|| {
        browser.type_into("textarea", "Setup took a while");
        browser.click("button[type=submit]");
    });
    let thanks = tokio::task::block_in_place(|| browser.source_with("We recorded your answer"));
    assert!(thanks.contains("We recorded your answer"), "{thanks}");
    assert_eq!(
        store.responses_of(id).await.unwrap(),
        vec![(
            "survey".to_owned(),
            Some("8".to_owned()),
            Some("Setup took a while".to_owned())
        )]
    );
}

#[test]
fn monitoring_opens_updates_and_resolves_an_incident_through_the_api() {
    let sink = SmtpSink::start();
    let p = project(sink.port());
    let port = free_port();
    let d = Daemon::start(&p, port, &[]);
    let customers =
        br#"[{"id":"ana","email":"ana@example.com","name":"Ana","attributes":{"region":"eu"}},
        {"id":"bo","email":"bo@example.com","name":"Bo","attributes":{"region":"us"}}]"#;
    assert_eq!(
        d.request("POST", "/api/v1/customers", &auth(), customers)
            .status,
        200
    );

    let bad = d.request(
        "POST",
        "/api/v1/incidents",
        &auth(),
        br#"{"id":"INC-1","title":"x","affects":"customer.plan =="}"#,
    );
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(
        bad.json()["error"]
            .as_str()
            .unwrap()
            .contains("does not parse")
    );
    let malformed = d.request("POST", "/api/v1/incidents", &auth(), b"{not json");
    assert_eq!(malformed.status, 400);
    assert_eq!(
        d.request("POST", "/api/v1/incidents", &[], b"{}").status,
        401
    );

    let open = br#"{"id":"INC-7","title":"EU API latency","affects":"customer.attributes.region == \"eu\"","message":"Slow requests in the EU."}"#;
    let opened = d.request("POST", "/api/v1/incidents", &auth(), open);
    assert_eq!(opened.status, 200, "{}", opened.body);
    assert_eq!(opened.json()["affected"], 1);
    wait_for_mail(&sink, 1);
    let first = &sink.received()[0];
    assert_eq!(first.to, ["ana@example.com"]);
    let first_id = first.header("Message-ID").unwrap();
    assert_eq!(
        d.request("POST", "/api/v1/incidents", &auth(), open).status,
        409
    );

    let unknown = d.request(
        "POST",
        "/api/v1/incidents/INC-9/updates",
        &auth(),
        br#"{"message":"x","notify":true}"#,
    );
    assert_eq!(unknown.status, 404);
    let news = br#"{"message":"Rolling back.","status":"identified","notify":true}"#;
    assert_eq!(
        d.request("POST", "/api/v1/incidents/INC-7/updates", &auth(), news)
            .status,
        200
    );
    wait_for_mail(&sink, 2);
    let resolved = d.request(
        "POST",
        "/api/v1/incidents/INC-7/resolve",
        &auth(),
        br#"{"message":"Fixed."}"#,
    );
    assert_eq!(resolved.status, 200, "{}", resolved.body);
    wait_for_mail(&sink, 3);
    let last = &sink.received()[2];
    assert_eq!(last.to, ["ana@example.com"], "only the notified");
    assert_eq!(last.header("In-Reply-To").unwrap().trim(), first_id.trim());
    assert_eq!(
        d.request(
            "POST",
            "/api/v1/incidents/INC-7/resolve",
            &auth(),
            br#"{"message":"again"}"#
        )
        .status,
        409
    );
}

#[test]
fn a_selector_past_the_condition_limits_gets_422_and_the_next_incident_opens() {
    let sink = SmtpSink::start();
    let p = project(sink.port());
    let d = Daemon::start(&p, free_port(), &[]);
    let customers =
        br#"[{"id":"ana","email":"ana@example.com","name":"Ana","attributes":{"region":"eu"}}]"#;
    assert_eq!(
        d.request("POST", "/api/v1/customers", &auth(), customers)
            .status,
        200
    );
    let list: Vec<String> = (1..=100).map(|i| i.to_string()).collect();
    let list = format!("[{}]", list.join(","));
    for (affects, expected) in [
        (
            format!("{}true{}", "(".repeat(100_000), ")".repeat(100_000)),
            "over the limit of 4096",
        ),
        (
            format!("{}true{}", "(".repeat(1000), ")".repeat(1000)),
            "nests brackets 1000 deep",
        ),
        (
            format!("customer.attributes{} == 1", ".a".repeat(2000)),
            "deep, over the limit of 100",
        ),
        (
            format!(
                "{list}.all(a, {list}.all(b, {list}.all(c, {list}.exists(d, a + b + c + d == 0))))"
            ),
            "nests 4 list macros",
        ),
    ] {
        let body = serde_json::json!({"id": "INC-1", "title": "x", "affects": affects});
        let bad = d.request(
            "POST",
            "/api/v1/incidents",
            &auth(),
            body.to_string().as_bytes(),
        );
        assert_eq!(bad.status, 422, "{}", bad.body);
        let error = bad.json()["error"].as_str().unwrap().to_owned();
        assert!(error.contains(expected), "no {expected:?} in {error}");
    }
    let open = br#"{"id":"INC-1","title":"EU API latency","affects":"customer.attributes.region == \"eu\""}"#;
    let opened = d.request("POST", "/api/v1/incidents", &auth(), open);
    assert_eq!(opened.status, 200, "{}", opened.body);
    assert_eq!(opened.json()["affected"], 1);
    wait_for_mail(&sink, 1);
}
