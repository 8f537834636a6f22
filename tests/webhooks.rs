//! Webhooks and alerts through the binary, a real HTTP receiver and a real
//! SMTP server, on both stores: an endpoint that is down for hours loses
//! nothing, gets its deliveries in order once it answers (the retries
//! carrying the same `webhook-id`), and never holds back mail; every
//! delivery passes the Standard Webhooks reference verifier from PyPI; a
//! full endpoint's backlog drops (and counts) what it cannot keep; a human
//! reply reaches the account's owner by mail and a Slack channel as text,
//! once.

mod common;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use common::receiver::{Hit, Receiver};
use common::smtp::{Received, SmtpSink};
use common::{Project, json, on_fresh_postgres, tick};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

const PLAYBOOK: &str = r#"
name = "checkin"
kind = "checkin"
category = "checkins"

[[step]]
id = "first"
template = "first"
anchor = "signup_at"
after = "1d"
"#;

const TEMPLATE: &str = "+++\nsubject = \"How is it going, {{customer.first_name}}?\"\n+++\nHi {{customer.first_name}}, tell us how it goes.\n";

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn project(smtp: u16, hooks: &Receiver, signup: DateTime<Utc>, database: Option<&str>) -> Project {
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
[delivery]
window = {{ days = "mon-sun", start = "00:00", end = "23:59" }}
[[team]]
id = "maria"
name = "Maria Costa"
email = "maria@acme.example"

[[webhook]]
name = "crm"
url = "{crm}"
events = ["message.sent", "response.*"]
secret_file = "crm.secret"

[[webhook]]
name = "tiny"
url = "{tiny}"
events = ["message.sent"]
secret_file = "crm.secret"
max_backlog = 1

[[webhook]]
name = "slack"
url = "{slack}"
format = "slack"

[[alert]]
on = "reply"
to = "slack"
"#,
        crm = hooks.url("/crm"),
        tiny = hooks.url("/tiny"),
        slack = hooks.url("/slack"),
    );
    let mut p = Project::new(&config);
    if let Some(url) = database {
        p = p.env("TEND__DATABASE__URL", url);
    }
    std::fs::create_dir_all(p.path().join("config/playbooks")).unwrap();
    std::fs::create_dir_all(p.path().join("templates")).unwrap();
    p.file("config/playbooks/checkin.toml", PLAYBOOK);
    p.file("templates/first.md.hbs", TEMPLATE);
    p.file("crm.secret", format!("{SECRET}\n"));
    p.file("accounts.csv", "id,name,owner\nglobex,Globex,maria\n");
    p.file(
        "contacts.csv",
        format!(
            "id,email,name,account_id,signup_at\nhank,hank@globex.example,Hank Scorpio,globex,{s}\nsolo,solo@example.com,Sol Oakes,,{s}\n",
            s = at(signup)
        ),
    );
    p.tend(&["check"]).expect_code(0);
    p.tend(&["import", "accounts", "accounts.csv"])
        .expect_code(0);
    p.tend(&["import", "customers", "contacts.csv"])
        .expect_code(0);
    p
}

/// `tend webhooks --format json`, by target.
fn queues(p: &Project) -> serde_json::Map<String, serde_json::Value> {
    let listed = json(&p.tend(&["webhooks", "--format", "json"]).expect_code(0));
    listed
        .as_array()
        .unwrap()
        .iter()
        .map(|q| (q["target"].as_str().unwrap().to_owned(), q.clone()))
        .collect()
}

/// Whether the Standard Webhooks reference package accepts `hit`.
fn verified(hit: &Hit) -> bool {
    let python = common::python::venv(
        "standardwebhooks",
        &["standardwebhooks"],
        "from standardwebhooks import Webhook",
    );
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body.json");
    std::fs::write(&body, &hit.body).unwrap();
    let headers = serde_json::to_string(&hit.headers).unwrap();
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(
            "import json, sys\n\
             from standardwebhooks import Webhook\n\
             try:\n\
             \x20   Webhook(sys.argv[1]).verify(open(sys.argv[2], 'rb').read(), json.loads(sys.argv[3]))\n\
             \x20   print('valid')\n\
             except Exception as e:\n\
             \x20   print('invalid', e)\n",
        )
        .arg(SECRET)
        .arg(&body)
        .arg(headers)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).starts_with("valid")
}

fn to(received: &[Received], address: &str) -> Vec<Received> {
    received
        .iter()
        .filter(|r| r.to.iter().any(|t| t == address))
        .cloned()
        .collect()
}

fn an_endpoint_down_for_hours_loses_nothing(database: Option<&str>) {
    let sink = SmtpSink::start();
    let hooks = Receiver::start();
    // The last tick runs at the real time, so the reference verifier (which
    // allows five minutes either way) accepts its timestamps.
    let end = Utc::now();
    let start = end - Duration::hours(3);
    let p = project(sink.port(), &hooks, start - Duration::days(1), database);
    hooks.answer("/crm", 503);
    hooks.answer("/tiny", 503);

    // The endpoints are down: mail goes all the same.
    let done = tick(&p, &at(start));
    assert_eq!(done["sent"], 2, "{done}");
    assert_eq!(sink.received().len(), 2);
    let first = hooks.hits("/crm");
    assert_eq!(first.len(), 1, "only the head of the queue is tried");
    assert_eq!(first[0].status, 503);
    let listed = queues(&p);
    let crm = &listed["webhook:crm"];
    assert_eq!(crm["backlog"], 2, "{crm}");
    assert!(crm["last_error"].as_str().unwrap().contains("503"), "{crm}");
    let tiny = &listed["webhook:tiny"];
    assert_eq!(tiny["backlog"], 1, "{tiny}");
    assert_eq!(
        tiny["dropped"], 1,
        "a full backlog drops, and says so: {tiny}"
    );
    assert_eq!(listed["webhook:slack"]["backlog"], 0);

    // Still down an hour later: tried again, nothing lost, nothing skipped.
    tick(&p, &at(start + Duration::seconds(10)));
    tick(&p, &at(start + Duration::hours(1)));
    let failed = hooks.hits("/crm");
    assert_eq!(failed.len(), 3, "{failed:?}");
    assert!(
        failed
            .iter()
            .all(|h| h.header("webhook-id") == failed[0].header("webhook-id"))
    );
    assert_eq!(queues(&p)["webhook:crm"]["backlog"], 2);

    // Back up: the queue drains in the order it was recorded.
    hooks.answer("/crm", 200);
    hooks.answer("/tiny", 200);
    tick(&p, &at(end));
    let hits = hooks.hits("/crm");
    let delivered: Vec<&Hit> = hits.iter().filter(|h| h.status == 200).collect();
    assert_eq!(delivered.len(), 2, "{hits:?}");
    assert_eq!(
        delivered[0].header("webhook-id"),
        failed[0].header("webhook-id")
    );
    assert_ne!(
        delivered[0].header("webhook-id"),
        delivered[1].header("webhook-id")
    );
    let events: Vec<serde_json::Value> = delivered.iter().map(|h| h.json()).collect();
    for (event, hit) in events.iter().zip(&delivered) {
        assert_eq!(event["type"], "message.sent", "{event}");
        assert_eq!(event["id"], hit.header("webhook-id"));
        assert_eq!(event["data"]["status"], "sent");
        assert!(verified(hit), "the reference verifier refused {hit:?}");
    }
    let order: Vec<&str> = events
        .iter()
        .map(|e| e["data"]["customer_id"].as_str().unwrap())
        .collect();
    let messages = json(&p.tend(&["messages", "--format", "json"]).expect_code(0));
    let mut sent: Vec<(String, String)> = messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_owned(),
                m["customer_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    // Settled in one transaction, recorded in id order.
    sent.sort();
    assert_eq!(
        order,
        sent.iter().map(|(_, c)| c.as_str()).collect::<Vec<_>>()
    );
    let tiny = hooks.hits("/tiny");
    assert_eq!(tiny.iter().filter(|h| h.status == 200).count(), 1);
    let listed = queues(&p);
    assert_eq!(listed["webhook:crm"]["backlog"], 0);
    assert_eq!(listed["webhook:crm"]["sent"], 2);

    // Hank replies: the owner hears of it by mail, the channel on Slack,
    // the CRM as a response.reply event.
    let hank = to(&sink.received(), "hank@globex.example").remove(0);
    let token = hank
        .header("Reply-To")
        .unwrap()
        .split(['<', '>'])
        .find(|part| part.starts_with("success+"))
        .unwrap()
        .to_owned();
    let subject = hank.header("Subject").unwrap();
    p.file(
        "reply.eml",
        format!(
            "From: Hank Scorpio <hank@globex.example>\r\nTo: {token}\r\nSubject: Re: {subject}\r\nMessage-ID: <reply-1@globex.example>\r\nIn-Reply-To: {}\r\nDate: Tue, 03 Mar 2026 12:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe export is slow for us; can we talk?\r\n",
            hank.header("Message-ID").unwrap()
        ),
    );
    let replied = end + Duration::seconds(1);
    p.tend(&["inbound", "reply.eml", "--now", &at(replied)])
        .expect_code(0);
    tick(&p, &at(replied + Duration::seconds(1)));
    let alerts = to(&sink.received(), "maria@acme.example");
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let alert = &alerts[0];
    assert_eq!(
        alert.header("Subject").unwrap(),
        format!("Reply from Hank Scorpio (Globex): {subject}")
    );
    assert!(
        alert
            .header("Reply-To")
            .unwrap()
            .contains("hank@globex.example")
    );
    assert_eq!(alert.header("Auto-Submitted").unwrap(), "auto-generated");
    for words in [
        "> The export is slow for us; can we talk?",
        "Account: Globex (globex), owned by Maria Costa",
        "tend account show globex",
    ] {
        assert!(
            alert.data.contains(words),
            "{words:?} not in\n{}",
            alert.data
        );
    }
    let slack = hooks.hits("/slack");
    assert_eq!(slack.len(), 1, "{slack:?}");
    let text = slack[0].json();
    assert_eq!(text.as_object().unwrap().len(), 1, "{text}");
    assert!(
        text["text"]
            .as_str()
            .unwrap()
            .contains("Reply from Hank Scorpio (Globex)"),
        "{text}"
    );
    assert!(!slack[0].headers.contains_key("webhook-signature"));
    let reply = hooks.hits("/crm").last().unwrap().json();
    assert_eq!(reply["type"], "response.reply", "{reply}");
    assert_eq!(reply["data"]["customer_id"], "hank");
    assert_eq!(
        reply["data"]["comment"],
        "The export is slow for us; can we talk?"
    );

    // Once: later passes send nothing again.
    tick(&p, &at(replied + Duration::minutes(5)));
    assert_eq!(to(&sink.received(), "maria@acme.example").len(), 1);
    assert_eq!(hooks.hits("/slack").len(), 1);
    assert_eq!(
        hooks
            .hits("/crm")
            .iter()
            .filter(|h| h.status == 200)
            .count(),
        3
    );
}

#[test]
fn an_endpoint_down_for_hours_loses_nothing_on_sqlite() {
    an_endpoint_down_for_hours_loses_nothing(None);
}

#[tokio::test]
async fn an_endpoint_down_for_hours_loses_nothing_on_postgres() {
    on_fresh_postgres(|url| an_endpoint_down_for_hours_loses_nothing(Some(url))).await;
}
