//! Mail coming back, through the binary on both stores: `tend inbound` with
//! fixtures filled with a real message's Message-ID and reply address,
//! then `tend responses` and `tend report` in their JSON shapes.

mod common;

use std::path::Path;

use common::{Project, json, tick};
use serde_json::Value;

const PLAYBOOK: &str = r#"
name = "onboarding"
kind = "checkin"
category = "onboarding"

[[step]]
id = "welcome"
template = "welcome"
anchor = "signup_at"
after = "1d"
survey = "nps"
"#;

const CUSTOMERS: &str = "\
id,email,name,timezone,plan,signup_at
ana,ana@example.com,Ana Lima,UTC,pro,2026-03-02T08:00:00Z
bo,bo@example.org,Bo Berg,UTC,pro,2026-03-02T08:00:00Z
";

fn project(database: Option<&str>) -> Project {
    let mut p = Project::new("[mail]\ntransport = \"file\"\n[mail.file]\ndir = \"outbox\"\n");
    if let Some(url) = database {
        p = p.env("TEND__DATABASE__URL", url);
    }
    std::fs::create_dir_all(p.path().join("config/playbooks")).unwrap();
    std::fs::create_dir_all(p.path().join("templates")).unwrap();
    p.file(
        "templates/welcome.md.hbs",
        "+++\nsubject = \"Welcome, {{customer.first_name}}\"\n+++\nHi {{customer.first_name}}.\n\n{{> survey}}\n",
    );
    p.file("config/playbooks/onboarding.toml", PLAYBOOK);
    p.file("customers.csv", CUSTOMERS);
    p.tend(&["import", "customers", "customers.csv"])
        .expect_code(0);
    p
}

/// The sent message to `customer`: (tend's id, Message-ID, reply address).
fn sent_to(p: &Project, customer: &str) -> (String, String, String) {
    let all = json(&p.tend(&["messages", "--format", "json"]).expect_code(0));
    let m = all
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["customer_id"] == customer)
        .unwrap_or_else(|| panic!("{all:#}"));
    let message_id = m["message_id"].as_str().unwrap().to_owned();
    let eml = common::sent_eml(p, &message_id);
    let parsed = mail_parser::MessageParser::default().parse(&eml).unwrap();
    let reply_to = parsed
        .reply_to()
        .unwrap()
        .first()
        .unwrap()
        .address()
        .unwrap()
        .to_owned();
    (m["id"].as_str().unwrap().to_owned(), message_id, reply_to)
}

/// A corpus fixture answering that message, written into the project.
fn answer(p: &Project, fixture: &str, message_id: &str, reply_to: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/inbound")
        .join(fixture);
    let raw = std::fs::read(path).unwrap();
    let filled = match String::from_utf8(raw) {
        Ok(text) => text
            .replace("{{MESSAGE_ID}}", message_id)
            .replace("{{REPLY_TO}}", reply_to)
            .into_bytes(),
        Err(garbage) => garbage.into_bytes(),
    };
    p.file(fixture, filled);
    fixture.to_owned()
}

fn by_kind<'a>(all: &'a Value, kind: &str) -> Vec<&'a Value> {
    all.as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == kind)
        .collect()
}

fn replies_bounces_and_reports(p: &Project) {
    let sent = tick(p, "2026-03-03T10:00:00Z");
    assert_eq!(sent["sent"], 2, "{sent}");
    let (ana, ana_header, ana_reply_to) = sent_to(p, "ana");
    let (bo, bo_header, _) = sent_to(p, "bo");

    // Ana replies (matched by her reply token).
    let reply = answer(p, "reply_gmail.eml", &ana_header, &ana_reply_to);
    let out = p
        .tend(&["inbound", &reply, "--now", "2026-03-03T11:00:00Z"])
        .expect_code(0)
        .stdout();
    assert!(
        out.contains(&format!("a reply to message {ana} (customer ana)")),
        "{out}"
    );
    let again = p.tend(&["inbound", &reply]).expect_code(0).stdout();
    assert!(again.contains("taken before, nothing changed"), "{again}");

    // Bo's address bounces (matched by the quoted Message-ID alone).
    let bounce = answer(
        p,
        "exim_legacy_bounce.eml",
        &bo_header,
        "success@acme.example",
    );
    let out = p
        .tend(&["inbound", &bounce, "--now", "2026-03-03T11:05:00Z"])
        .expect_code(0)
        .stdout();
    assert!(
        out.contains(&format!(
            "a hard bounce (5.1.1) to message {bo} (customer bo)"
        )),
        "{out}"
    );
    assert!(out.contains("all mail to them is now suppressed"), "{out}");

    // An out-of-office, a stray mail and garbage are kept; none is a reply.
    let away = answer(p, "gmail_vacation.eml", &ana_header, &ana_reply_to);
    p.tend(&["inbound", &away, "--now", "2026-03-03T11:10:00Z"])
        .expect_code(0);
    let stray = answer(p, "reply_unmatched.eml", &ana_header, &ana_reply_to);
    let out = p
        .tend(&["inbound", &stray, "--now", "2026-03-03T11:15:00Z"])
        .expect_code(0)
        .stdout();
    assert!(out.contains("kept as unmatched"), "{out}");
    let garbage = answer(p, "garbage.eml", "", "");
    let out = p
        .tend(&["inbound", &garbage, "--now", "2026-03-03T11:20:00Z"])
        .expect_code(0)
        .stdout();
    assert!(out.contains("not readable as mail"), "{out}");

    // Bad input: clear errors, nothing recorded.
    p.file("empty.eml", "");
    let empty = p.tend(&["inbound", "empty.eml"]).expect_code(1).stderr();
    assert!(empty.contains("empty.eml is empty"), "{empty}");
    let missing = p.tend(&["inbound", "nowhere.eml"]).expect_code(1).stderr();
    assert!(missing.contains("cannot read nowhere.eml"), "{missing}");

    let all = json(&p.tend(&["responses", "--format", "json"]).expect_code(0));
    assert_eq!(all.as_array().unwrap().len(), 4, "{all:#}");
    let replies = by_kind(&all, "reply");
    assert_eq!(replies.len(), 2, "{all:#}");
    assert_eq!(replies[0]["message_id"], ana.as_str());
    assert_eq!(replies[0]["customer_id"], "ana");
    assert_eq!(
        replies[0]["comment"],
        "Thanks! The import worked. Could someone show us the API keys page?\n\nAna"
    );
    assert_eq!(replies[0]["received_at"], "2026-03-03T11:00:00Z");
    assert_eq!(replies[0]["source"], "file");
    assert_eq!(replies[1]["message_id"], Value::Null, "unmatched");
    let bounce = by_kind(&all, "bounce");
    assert_eq!(
        (
            bounce[0]["value"].as_str(),
            bounce[0]["customer_id"].as_str()
        ),
        (Some("5.1.1"), Some("bo"))
    );
    assert_eq!(by_kind(&all, "auto_reply").len(), 1);
    for r in all.as_array().unwrap() {
        let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "comment",
                "customer_id",
                "id",
                "kind",
                "message_id",
                "received_at",
                "source",
                "value"
            ]
        );
    }
    let later = json(
        &p.tend(&[
            "responses",
            "--since",
            "2026-03-03T11:12:00Z",
            "--format",
            "json",
        ])
        .expect_code(0),
    );
    assert_eq!(later.as_array().unwrap().len(), 1, "{later:#}");

    let report = json(&p.tend(&["report", "--format", "json"]).expect_code(0));
    assert_eq!(report["messages"]["sent"], 2, "{report:#}");
    assert_eq!(
        (report["replies"].as_i64(), report["bounces"].as_i64()),
        (Some(2), Some(1))
    );
    assert_eq!(report["unsubscribes"], 0);
    let step = &report["playbooks"][0];
    assert_eq!(
        (step["playbook"].as_str(), step["step"].as_str()),
        (Some("onboarding"), Some("welcome"))
    );
    assert_eq!(
        (step["sent"].as_i64(), step["responses"].as_i64()),
        (Some(2), Some(1))
    );
    assert_eq!(report["surveys"]["nps"]["responses"], 0);
    assert_eq!(report["surveys"]["nps"]["score"], Value::Null);
    let table = p.tend(&["report"]).expect_code(0).stdout();
    assert!(table.contains("onboarding/welcome  2"), "{table}");
}

#[test]
fn replies_bounces_and_reports_on_sqlite() {
    replies_bounces_and_reports(&project(None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_bounces_and_reports_on_postgres() {
    common::on_fresh_postgres(move |url| replies_bounces_and_reports(&project(Some(url)))).await;
}
