//! Alerts through the running daemon, a real SMTP server and both stores:
//! a detractor's survey answer, posted over HTTP, reaches the account's
//! owner by mail within the minute the spec promises, with who answered,
//! the message answered, the score and the comment; an `[[alert]]` rule's
//! CEL condition sends promoters to an address; each alert goes once, even
//! with another instance running passes beside the daemon.

mod common;

use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use common::daemon::Daemon;
use common::smtp::{Received, SmtpSink};
use common::{Project, free_port, json, on_fresh_postgres};

const PLAYBOOK: &str = r#"
name = "checkin"
kind = "checkin"
category = "checkins"

[[step]]
id = "nps"
template = "nps"
anchor = "signup_at"
after = "1d"
survey = "nps"
"#;

const TEMPLATE: &str = "+++\nsubject = \"Would you recommend us, {{customer.first_name}}?\"\n+++\nHi {{customer.first_name}}, one question.\n\n{{> survey}}\n";

fn project(smtp: u16, base: &str, database: Option<&str>) -> Project {
    let config = format!(
        r#"[company]
name = "Acme"
[mail]
from = "Acme Success <success@acme.example>"
reply_to = "success@acme.example"
transport = "smtp"
[mail.smtp]
host = "127.0.0.1"
port = {smtp}
timeout = "5s"
[http]
public_url = "{base}"
[security]
secret = "a-signing-key-of-more-than-thirty-two-bytes"
[delivery]
window = {{ days = "mon-sun", start = "00:00", end = "23:59" }}
[[team]]
id = "maria"
name = "Maria Costa"
email = "maria@acme.example"

[[alert]]
name = "promoters"
on = "survey"
when = 'response.survey == "nps" && response.value >= 9'
to = "cheers@acme.example"
template = "alerts/promoter"
"#
    );
    let mut p = Project::new(&config);
    if let Some(url) = database {
        p = p.env("TEND__DATABASE__URL", url);
    }
    std::fs::create_dir_all(p.path().join("config/playbooks")).unwrap();
    std::fs::create_dir_all(p.path().join("templates")).unwrap();
    p.file("config/playbooks/checkin.toml", PLAYBOOK);
    p.file("templates/nps.md.hbs", TEMPLATE);
    std::fs::create_dir_all(p.path().join("templates/alerts")).unwrap();
    p.file(
        "templates/alerts/promoter.txt.hbs",
        "{{customer.first_name}} gave us {{signal.data.value}} out of 10 (\"{{message.subject}}\").\nAsk them for a review: {{customer.email}}\n",
    );
    p.file("accounts.csv", "id,name,owner\nglobex,Globex,maria\n");
    let signup =
        (Utc::now() - chrono::Duration::days(2)).to_rfc3339_opts(SecondsFormat::Secs, true);
    p.file(
        "contacts.csv",
        format!(
            "id,email,name,account_id,signup_at\nhank,hank@globex.example,Hank Scorpio,globex,{signup}\nsolo,solo@example.com,Sol Oakes,,{signup}\n"
        ),
    );
    p.tend(&["check"]).expect_code(0);
    p.tend(&["import", "accounts", "accounts.csv"])
        .expect_code(0);
    p.tend(&["import", "customers", "contacts.csv"])
        .expect_code(0);
    p
}

fn to(sink: &SmtpSink, address: &str) -> Vec<Received> {
    sink.received()
        .into_iter()
        .filter(|r| r.to.iter().any(|t| t == address))
        .collect()
}

/// Waits (at most the minute the spec allows) for mail to `address`.
fn wait_for(sink: &SmtpSink, address: &str, d: &Daemon) -> (Received, Duration) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if let Some(mail) = to(sink, address).pop() {
            return (mail, started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no alert to {address} within a minute:\n{}", d.log());
}

/// The survey link's path for `answer` in a mail's HTML part.
fn survey_path(mail: &Received, base: &str, answer: &str) -> String {
    let parsed = mail_parser::MessageParser::default()
        .parse(mail.data.as_bytes())
        .unwrap();
    let html = parsed.body_html(0).unwrap().into_owned();
    let end = format!("/{answer}\"");
    html.match_indices(&format!("{base}/r/"))
        .map(|(at, _)| &html[at + base.len()..])
        .map(|link| &link[..link.find('"').unwrap() + 1])
        .find(|link| link.ends_with(&end))
        .map(|link| link.trim_end_matches('"').to_owned())
        .unwrap_or_else(|| panic!("no survey link for {answer} in {html}"))
}

fn answer(d: &Daemon, path: &str, form: &str) {
    let reply = d.request(
        "POST",
        path,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
}

fn a_detractor_reaches_the_owner_within_a_minute(database: Option<&str>) {
    let sink = SmtpSink::start();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let p = project(sink.port(), &base, database);
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    let sent = json(
        &p.tend(&["tick", "--now", &now, "--format", "json"])
            .expect_code(0),
    );
    assert_eq!(sent["sent"], 2, "{sent}");
    let d = Daemon::start(&p, port, &[]);

    let hank = to(&sink, "hank@globex.example").remove(0);
    answer(
        &d,
        &survey_path(&hank, &base, "3"),
        "answer=3&comment=Exports+are+slow+since+the+update",
    );
    let (alert, took) = wait_for(&sink, "maria@acme.example", &d);
    eprintln!(
        "the detractor's alert left {} ms after the answer",
        took.as_millis()
    );
    assert_eq!(
        alert.header("Subject").unwrap(),
        "NPS 3 from Hank Scorpio (Globex)"
    );
    assert!(
        alert
            .header("Reply-To")
            .unwrap()
            .contains("hank@globex.example")
    );
    let body = mail_parser::MessageParser::default()
        .parse(alert.data.as_bytes())
        .unwrap()
        .body_text(0)
        .unwrap()
        .into_owned();
    // As an independent parser reads it: Python's strict policy, every
    // header parsed, one text/plain part, Reply-To the customer.
    let eml = p.path().join("alert.eml");
    std::fs::write(&eml, &alert.data).unwrap();
    let read = std::process::Command::new(common::python::python3())
        .arg("-c")
        .arg(
            "import email, email.policy, sys\n\
             msg = email.message_from_bytes(open(sys.argv[1], 'rb').read(), policy=email.policy.strict)\n\
             for name, value in msg.items():\n\
             \x20   str(value)\n\
             \x20   assert not getattr(value, 'defects', ()), (name, value.defects)\n\
             assert not msg.defects, msg.defects\n\
             assert msg.get_content_type() == 'text/plain', msg.get_content_type()\n\
             assert msg.get_content_charset() == 'utf-8', msg.get_content_charset()\n\
             print(msg['Reply-To'].addresses[0].addr_spec)\n\
             print(msg['Subject'])\n\
             print(msg.get_content())\n",
        )
        .arg(&eml)
        .output()
        .unwrap();
    assert!(
        read.status.success(),
        "Python's strict parser refused the alert:\n{}",
        String::from_utf8_lossy(&read.stderr)
    );
    let read = String::from_utf8_lossy(&read.stdout);
    assert!(
        read.starts_with("hank@globex.example\nNPS 3 from Hank Scorpio (Globex)\n"),
        "{read}"
    );
    assert!(
        read.contains("> Exports are slow since the update"),
        "{read}"
    );
    for words in [
        "Who: Hank Scorpio <hank@globex.example> (customer hank)",
        "Account: Globex (globex), owned by Maria Costa",
        "In answer to: \"Would you recommend us, Hank?\" (checkin / nps",
        "Their answer (nps): 3",
        "> Exports are slow since the update",
        "tend customer show hank",
    ] {
        assert!(body.contains(words), "{words:?} not in\n{body}");
    }

    // A promoter without an account: the rule's address, not the owner.
    let solo = to(&sink, "solo@example.com").remove(0);
    answer(&d, &survey_path(&solo, &base, "10"), "answer=10");
    let (cheers, _) = wait_for(&sink, "cheers@acme.example", &d);
    assert_eq!(cheers.header("Subject").unwrap(), "NPS 10 from Sol Oakes");
    let text = mail_parser::MessageParser::default()
        .parse(cheers.data.as_bytes())
        .unwrap()
        .body_text(0)
        .unwrap()
        .into_owned();
    assert_eq!(
        text.replace("\r\n", "\n").trim_end(),
        "Sol gave us 10 out of 10 (\"Would you recommend us, Sol?\").\nAsk them for a review: solo@example.com",
        "the rule's own template"
    );

    // The server has the mails a moment before their sends are recorded.
    let started = std::time::Instant::now();
    let both_sent = |queues: &serde_json::Value| {
        queues
            .as_array()
            .unwrap()
            .iter()
            .all(|q| q["sent"].as_u64() == Some(1))
    };
    loop {
        let queues = json(&p.tend(&["webhooks", "--format", "json"]).expect_code(0));
        if both_sent(&queues) {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{queues}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Once: another instance's pass beside the daemon sends nothing more.
    let later = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    p.tend(&["tick", "--now", &later]).expect_code(0);
    let queues = json(&p.tend(&["webhooks", "--format", "json"]).expect_code(0));
    for q in queues.as_array().unwrap() {
        assert_eq!(
            (q["sent"].as_u64(), q["backlog"].as_u64()),
            (Some(1), Some(0)),
            "{q}"
        );
    }
    assert_eq!(queues.as_array().unwrap().len(), 2, "{queues}");
    assert_eq!(to(&sink, "maria@acme.example").len(), 1);
    assert_eq!(to(&sink, "cheers@acme.example").len(), 1);
}

#[test]
fn a_detractor_reaches_the_owner_within_a_minute_on_sqlite() {
    a_detractor_reaches_the_owner_within_a_minute(None);
}

#[tokio::test]
async fn a_detractor_reaches_the_owner_within_a_minute_on_postgres() {
    on_fresh_postgres(|url| a_detractor_reaches_the_owner_within_a_minute(Some(url))).await;
}
