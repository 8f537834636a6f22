//! Privacy requests through the binary, on both stores: an export holds
//! everything about the person (their reply and the raw mail it came in);
//! after an erasure a full dump of the database (Python's sqlite3
//! `iterdump`, PostgreSQL's `pg_dump`) holds neither their address, nor
//! their name, nor their words; `tend report` is unchanged; their address
//! is refused when an import brings it back; nothing new is planned.

mod common;

use std::process::{Command, Stdio};

use common::receiver::Receiver;
use common::{Project, json, on_fresh_postgres, sent_eml, tick};

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

const TEMPLATE: &str = "+++\nsubject = \"How is it going, {{customer.first_name}}?\"\n+++\nHi {{customer.first_name}}, tell us.\n";

const CONTACTS: &str = "\
id,email,name,account_id,signup_at
hank,hank.scorpio@globex.example,Hank Scorpio,globex,2026-03-01T08:00:00Z
solo,solo@example.com,Sol Oakes,,2026-03-01T08:00:00Z
";

const WORDS: &str = "Call me on 555-0199 about the Cypress Creek rollout";

fn project(database: Option<&str>, crm: &str) -> Project {
    let config = format!(
        "[company]\nname = \"Acme\"\n[mail]\nfrom = \"Acme Success <success@acme.example>\"\nreply_to = \"success@acme.example\"\n[mail.file]\ndir = \"outbox\"\n\
                  [delivery]\nwindow = {{ days = \"mon-sun\", start = \"00:00\", end = \"23:59\" }}\n\
                  [[team]]\nid = \"maria\"\nname = \"Maria Costa\"\nemail = \"maria@acme.example\"\n\
                  [[webhook]]\nname = \"crm\"\nurl = \"{crm}\"\nevents = [\"customer.erased\"]\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n"
    );
    let mut p = Project::new(&config);
    if let Some(url) = database {
        p = p.env("TEND__DATABASE__URL", url);
    }
    std::fs::create_dir_all(p.path().join("config/playbooks")).unwrap();
    std::fs::create_dir_all(p.path().join("templates")).unwrap();
    p.file("config/playbooks/checkin.toml", PLAYBOOK);
    p.file("templates/first.md.hbs", TEMPLATE);
    p.file("accounts.csv", "id,name,owner\nglobex,Globex,maria\n");
    p.file("contacts.csv", CONTACTS);
    p.file(
        "events.csv",
        "id,customer_id,name,occurred_at\ne1,hank,report_exported,2026-03-02T09:00:00Z\n",
    );
    p.tend(&["import", "accounts", "accounts.csv"])
        .expect_code(0);
    p.tend(&["import", "customers", "contacts.csv"])
        .expect_code(0);
    p.tend(&["import", "events", "events.csv"]).expect_code(0);
    p
}

/// Every row of the store as text: the SQLite file through Python's
/// sqlite3 module, PostgreSQL through pg_dump.
fn dump(p: &Project, database: Option<&str>) -> String {
    let out = match database {
        None => Command::new(common::python::python3())
            .arg("-c")
            .arg("import sqlite3, sys\nfor line in sqlite3.connect(sys.argv[1]).iterdump(): print(line)")
            .arg(p.path().join("data/tend.db"))
            .output()
            .unwrap(),
        Some(url) => {
            common::python::apt_install("postgresql-client", || {
                Command::new("pg_dump")
                    .arg("--version")
                    .stdout(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            });
            Command::new("pg_dump")
                .args(["--data-only", "--inserts", url])
                .output()
                .unwrap()
        }
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn a_person_is_exported_then_erased(database: Option<&str>) {
    let crm = Receiver::start();
    let p = project(database, &crm.url("/crm"));
    let done = tick(&p, "2026-03-03T10:00:00Z");
    assert_eq!(done["sent"], 2, "{done}");
    let messages = json(
        &p.tend(&["messages", "--customer", "hank", "--format", "json"])
            .expect_code(0),
    );
    let header_id = messages[0]["message_id"].as_str().unwrap().to_owned();
    let sent = String::from_utf8(sent_eml(&p, &header_id)).unwrap();
    let token = sent
        .split(['<', '>', ' ', '\r', '\n'])
        .find(|part| part.starts_with("success+") && !part.starts_with("success+u-"))
        .unwrap()
        .to_owned();
    p.file(
        "reply.eml",
        format!(
            "From: Hank Scorpio <hank.scorpio@globex.example>\r\nTo: {token}\r\nSubject: Re: How is it going, Hank?\r\nMessage-ID: <r1@globex.example>\r\nIn-Reply-To: <{header_id}>\r\nDate: Tue, 03 Mar 2026 12:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{WORDS}\r\n"
        ),
    );
    p.tend(&["inbound", "reply.eml", "--now", "2026-03-03T12:00:00Z"])
        .expect_code(0);
    // The owner's alert (the built-in rule) carries the reply too.
    tick(&p, "2026-03-03T12:00:05Z");
    let before = json(&p.tend(&["report", "--format", "json"]).expect_code(0));
    assert_eq!(before["replies"], 1, "{before}");
    let by = |what: &str| {
        json(
            &p.tend(&["report", "--by", what, "--format", "json"])
                .expect_code(0),
        )
    };
    let by_account = by("account");
    let by_stage = by("stage");

    let export = json(&p.tend(&["customer", "export", "hank"]).expect_code(0));
    assert_eq!(export["customer"]["email"], "hank.scorpio@globex.example");
    assert_eq!(export["responses"][0]["comment"], WORDS);
    assert_eq!(export["events"][0]["name"], "report_exported");
    assert!(
        export["inbound"][0]["raw"]
            .as_str()
            .unwrap()
            .contains(WORDS),
        "{export}"
    );
    let first = messages[0]["id"].as_str().unwrap();
    assert_eq!(export["attempts"][first][0]["outcome"], "sent", "{export}");
    let dumped = dump(&p, database);
    assert!(dumped.contains("hank.scorpio@globex.example") && dumped.contains(WORDS));

    let erased = p
        .tend(&["customer", "erase", "hank", "--now", "2026-03-04T09:00:00Z"])
        .expect_code(0);
    assert!(
        erased.stdout().starts_with("erased hank"),
        "{}",
        erased.stdout()
    );
    // A system that copied them (through a webhook) is told to erase them
    // too: by their id, nothing else of them.
    tick(&p, "2026-03-04T09:00:05Z");
    let told = crm.hits("/crm");
    assert_eq!(told.len(), 1, "one customer.erased event");
    let event = told[0].json();
    assert_eq!(event["type"], "customer.erased", "{event}");
    assert_eq!(event["data"]["customer_id"], "hank", "{event}");
    assert!(!told[0].body.contains("globex.example"), "{}", told[0].body);
    let dumped = dump(&p, database);
    for personal in [
        "hank.scorpio@globex.example",
        "Hank Scorpio",
        "Hank",
        "555-0199",
        "Cypress Creek",
    ] {
        assert!(
            !dumped.contains(personal),
            "{personal:?} is still in the store:\n{}",
            dumped
                .lines()
                .filter(|l| l.contains(personal))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    assert!(dumped.contains("solo@example.com"), "others are kept");
    let after = json(&p.tend(&["report", "--format", "json"]).expect_code(0));
    assert_eq!(after, before, "the figures stay true");
    assert_eq!(by("account"), by_account, "rolled up by account too");
    assert_eq!(by("stage"), by_stage);
    let globex = json(
        &p.tend(&["account", "show", "globex", "--format", "json"])
            .expect_code(0),
    );
    assert_eq!(
        globex["account"]["contacts"], 0,
        "a stand-in is no contact: {globex}"
    );

    // A late reply to their message records nothing of theirs again.
    p.file(
        "late.eml",
        std::fs::read_to_string(p.path().join("reply.eml"))
            .unwrap()
            .replace("<r1@globex.example>", "<r2@globex.example>"),
    );
    p.tend(&["inbound", "late.eml", "--now", "2026-03-04T10:00:00Z"])
        .expect_code(0);
    assert!(
        !dump(&p, database).contains("555-0199"),
        "a late reply leaves no words"
    );
    let gone = p.tend(&["customer", "show", "hank"]).expect_code(1);
    assert!(gone.stderr().contains("no customer has id \"hank\""));
    p.tend(&["customer", "erase", "hank"]).expect_code(1);

    // Imported again (a nightly sync): refused, and never mailed.
    let again = p
        .tend(&["import", "customers", "contacts.csv"])
        .expect_code(1);
    assert!(
        again.stderr().contains("contacts.csv:2: hank.scorpio@globex.example belongs to a person erased at their request"),
        "{}",
        again.stderr()
    );
    assert!(again.stdout().contains("rejected 1"), "{}", again.stdout());
    let later = tick(&p, "2026-03-10T10:00:00Z");
    assert_eq!(
        later["planned"], 0,
        "the stand-in is never planned: {later}"
    );
    let after = json(&p.tend(&["report", "--format", "json"]).expect_code(0));
    assert_eq!(after, before);
}

#[test]
fn a_person_is_exported_then_erased_on_sqlite() {
    a_person_is_exported_then_erased(None);
}

#[tokio::test]
async fn a_person_is_exported_then_erased_on_postgres() {
    on_fresh_postgres(|url| a_person_is_exported_then_erased(Some(url))).await;
}
