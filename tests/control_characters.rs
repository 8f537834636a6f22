//! Text that could drive a terminal or a header, through the real binary on
//! both stores: names with control characters, bidi overrides or hundreds
//! of characters are refused by `tend import` (CSV and JSONL) and by the
//! customer API, row by row; replies, survey comments and bounce
//! diagnostics that carry them are kept as they came and shown escaped by
//! `tend responses` and `tend messages`, while their JSON stays exact.

mod common;

use common::daemon::Daemon;
use common::{Project, free_port, json, tick};
use tend::domain::customer::CustomerId;
use tend::store::Customers;

/// What a terminal would act on: C0 (but tab and line feed), DEL, C1 and
/// the bidi controls.
fn acts(c: char) -> bool {
    (c.is_control() && c != '\n') || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn project(database: Option<&str>) -> Project {
    let mut p = Project::new(
        "[mail]\ntransport = \"file\"\n[mail.file]\ndir = \"outbox\"\n[http]\napi_token = \"tok\"\n",
    );
    if let Some(url) = database {
        p = p.env("TEND__DATABASE__URL", url);
    }
    p
}

/// The rejected lines of an import's stderr, as `(line, reason)`.
fn rejected(stderr: &str, file: &str) -> Vec<(usize, String)> {
    stderr
        .lines()
        .map(|l| {
            let rest = l
                .strip_prefix(&format!("{file}:"))
                .unwrap_or_else(|| panic!("{l:?} does not start with {file}:"));
            let (line, reason) = rest.split_once(": ").unwrap();
            (line.parse().unwrap(), reason.to_owned())
        })
        .collect()
}

fn assert_reasons(found: &[(usize, String)], expected: &[(usize, &str)]) {
    assert_eq!(found.len(), expected.len(), "{found:#?}");
    for ((line, reason), (want_line, want)) in found.iter().zip(expected) {
        assert_eq!(line, want_line, "{found:#?}");
        assert!(
            reason.contains(want),
            "line {line}: {reason:?} lacks {want:?}"
        );
    }
}

async fn names(p: &Project, url: Option<&str>) -> Vec<(String, String)> {
    let store = match url {
        Some(url) => {
            let url = tend::store::DatabaseUrl::parse(url).unwrap();
            let options = tend::store::ConnectOptions {
                max_connections: 1,
                connect_timeout: std::time::Duration::from_secs(10),
                busy_timeout: std::time::Duration::from_secs(5),
            };
            tend::store::Db::connect(&url, &options).await.unwrap()
        }
        None => p.store().await,
    };
    let mut found = Vec::new();
    for id in ["ok1", "ok2", "nul", "esc", "bidi", "long", "huge", "c1"] {
        if let Some(c) = store
            .customer(&CustomerId::parse(id).unwrap())
            .await
            .unwrap()
        {
            found.push((id.to_owned(), c.record.name));
        }
    }
    found
}

fn import_refuses_hostile_names(p: &Project) {
    let long = "L".repeat(257);
    let huge = "H".repeat(200 * 1024);
    let csv = format!(
        "id,email,name\n\
         ok1,ok1@example.com,Zoë 山田\n\
         nul,nul@example.com,Ana\0Lima\n\
         esc,esc@example.com,\u{1b}[2J\u{1b}]0;pwned\u{7}Ana\n\
         bidi,bidi@example.com,Ana \u{202e}gnp.exe\n\
         long,long@example.com,{long}\n\
         huge,huge@example.com,{huge}\n\
         c1,c1@example.com,Ana\u{9b}31mLima\n\
         ok2,ok2@example.com,{}\n",
        "N".repeat(256)
    );
    p.file("customers.csv", &csv);
    let run = p
        .tend(&["import", "customers", "customers.csv"])
        .expect_code(1);
    assert_eq!(run.stdout(), "imported 2, updated 0, rejected 6\n");
    let err = run.stderr();
    assert!(!err.chars().any(acts), "stderr carries no control: {err:?}");
    assert_reasons(
        &rejected(&err, "customers.csv"),
        &[
            (
                3,
                "name contains the control character \\u{0} at character 4",
            ),
            (
                4,
                "name contains the control character \\u{1b} at character 1",
            ),
            (
                5,
                "name contains the control character \\u{202e} at character 5",
            ),
            (6, "name is 257 characters long; at most 256 are allowed"),
            (7, "name is 204800 characters long; at most 256 are allowed"),
            (
                8,
                "name contains the control character \\u{9b} at character 4",
            ),
        ],
    );

    let jsonl = [
        r#"{"id":"nul","email":"nul@example.com","name":"Ana\u0000Lima"}"#.to_owned(),
        r#"{"id":"esc","email":"esc@example.com","name":"\u001b[31mAna"}"#.to_owned(),
        r#"{"id":"bidi","email":"bidi@example.com","name":"Ana\u2066x\u2069"}"#.to_owned(),
        format!(r#"{{"id":"long","email":"long@example.com","name":"{long}"}}"#),
        r#"{"id":"ok1","email":"ok1@example.com","name":"Zoë Yamada"}"#.to_owned(),
    ]
    .join("\n");
    p.file("customers.jsonl", jsonl);
    let run = p
        .tend(&["import", "customers", "customers.jsonl"])
        .expect_code(1);
    assert_eq!(run.stdout(), "imported 0, updated 1, rejected 4\n");
    assert_reasons(
        &rejected(&run.stderr(), "customers.jsonl"),
        &[
            (1, "control character \\u{0}"),
            (2, "control character \\u{1b}"),
            (3, "control character \\u{2066}"),
            (4, "name is 257 characters long"),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_refuses_hostile_names_on_sqlite() {
    let p = project(None);
    tokio::task::block_in_place(|| import_refuses_hostile_names(&p));
    assert_eq!(
        names(&p, None).await,
        [
            ("ok1".to_owned(), "Zoë Yamada".to_owned()),
            ("ok2".to_owned(), "N".repeat(256))
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_refuses_hostile_names_on_postgres() {
    let pg = common::PgDatabase::create().await;
    let url = pg.url.clone();
    let p = tokio::task::spawn_blocking(move || {
        let p = project(Some(&url));
        import_refuses_hostile_names(&p);
        p
    })
    .await
    .unwrap();
    assert_eq!(
        names(&p, Some(&pg.url)).await,
        [
            ("ok1".to_owned(), "Zoë Yamada".to_owned()),
            ("ok2".to_owned(), "N".repeat(256))
        ]
    );
}

/// The customer API shares import's record rules.
fn api_refuses_hostile_names(p: &Project) {
    let d = Daemon::start(p, free_port(), &[]);
    let body = serde_json::json!([
        {"id": "ok1", "email": "ok1@example.com", "name": "Ana Lima"},
        {"id": "nul", "email": "nul@example.com", "name": "Ana\u{0}Lima"},
        {"id": "esc", "email": "esc@example.com", "name": "\u{1b}[2JAna"},
        {"id": "long", "email": "long@example.com", "name": "L".repeat(300)},
    ]);
    let reply = d.request(
        "POST",
        "/api/v1/customers",
        &[
            ("Authorization", "Bearer tok"),
            ("Content-Type", "application/json"),
        ],
        body.to_string().as_bytes(),
    );
    assert_eq!(reply.status, 422, "{}", reply.body);
    let answer = reply.json();
    assert_eq!(
        (answer["imported"].as_u64(), answer["rejected"].as_u64()),
        (Some(1), Some(3))
    );
    let errors: Vec<(u64, String)> = answer["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().unwrap(),
                e["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert_eq!(errors[0].0, 2);
    assert!(
        errors[0].1.contains("control character \\u{0}"),
        "{errors:?}"
    );
    assert_eq!(errors[1].0, 3);
    assert!(
        errors[1].1.contains("control character \\u{1b}"),
        "{errors:?}"
    );
    assert_eq!(errors[2].0, 4);
    assert!(errors[2].1.contains("300 characters long"), "{errors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_refuses_hostile_names_on_sqlite() {
    let p = project(None);
    tokio::task::block_in_place(|| api_refuses_hostile_names(&p));
    assert_eq!(
        names(&p, None).await,
        [("ok1".to_owned(), "Ana Lima".to_owned())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_refuses_hostile_names_on_postgres() {
    let pg = common::PgDatabase::create().await;
    let url = pg.url.clone();
    let p = tokio::task::spawn_blocking(move || {
        let p = project(Some(&url));
        api_refuses_hostile_names(&p);
        p
    })
    .await
    .unwrap();
    assert_eq!(
        names(&p, Some(&pg.url)).await,
        [("ok1".to_owned(), "Ana Lima".to_owned())]
    );
}

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

[[step]]
id = "later"
template = "welcome"
anchor = "signup_at"
after = "3d"
"#;

/// What a hostile reply says, and what a hostile bounce's diagnostic says.
const SAID: &str = "Thanks!\u{1b}[2J\u{1b}]0;owned\u{7} see \u{202e}gnp.exe\u{7f}\u{9b}";
const DIAGNOSTIC: &str = "550 5.1.1 gone\u{1b}[8m hidden";

/// The sent message to Ana: (Message-ID, reply address).
fn sent_to_ana(p: &Project) -> (String, String) {
    let all = json(&p.tend(&["messages", "--format", "json"]).expect_code(0));
    let m = &all[0];
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
    (message_id, reply_to)
}

/// What a hostile survey comment says, and the same as a form sends it.
const COMMENTED: &str = "Fine\u{1b}[1A\u{1b}[2K \u{2067}x";
const COMMENTED_FORM: &str = "Fine%1B%5B1A%1B%5B2K+%E2%81%A7x";

/// Answers the survey in the message with `message_id` through a daemon,
/// with [`COMMENTED`] as the comment.
fn answer_the_survey(p: &Project, message_id: &str) {
    let eml = common::sent_eml(p, message_id);
    let parsed = mail_parser::MessageParser::default().parse(&eml).unwrap();
    let html = parsed.body_html(0).unwrap().into_owned();
    // Rendered with the default public URL; the daemon listens elsewhere.
    let base = "http://127.0.0.1:8080";
    let at = html.find(&format!("{base}/r/")).expect("a survey link") + base.len();
    let path = html[at..][..html[at..].find('"').unwrap()].to_owned();
    // The mail is dated in March; the links must still work.
    let d = Daemon::start(p, free_port(), &[("TEND__HTTP__LINK_LIFETIME", "3650d")]);
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let body = format!("answer=9&comment={COMMENTED_FORM}");
    let reply = d.request("POST", &path, &form, body.as_bytes());
    assert_eq!(reply.status, 200, "{}", reply.body);
}

fn hostile_answers_are_shown_escaped(p: &Project) {
    std::fs::create_dir_all(p.path().join("config/playbooks")).unwrap();
    std::fs::create_dir_all(p.path().join("templates")).unwrap();
    p.file(
        "templates/welcome.md.hbs",
        "+++\nsubject = \"Welcome, {{customer.first_name}}\"\n+++\nHi {{customer.first_name}}.\n\n{{> survey}}\n",
    );
    p.file("config/playbooks/onboarding.toml", PLAYBOOK);
    p.file(
        "customers.csv",
        "id,email,name,timezone,signup_at\nana,ana@example.com,Ana Lima,UTC,2026-03-02T08:00:00Z\n",
    );
    p.tend(&["import", "customers", "customers.csv"])
        .expect_code(0);
    assert_eq!(tick(p, "2026-03-03T10:00:00Z")["sent"], 1);
    let (message_id, reply_to) = sent_to_ana(p);

    p.file(
        "reply.eml",
        format!(
            "From: Ana Lima <ana@example.com>\r\nTo: {reply_to}\r\nSubject: Re: Welcome\r\n\
             Date: Tue, 3 Mar 2026 11:00:00 +0000\r\nMessage-ID: <r1@example.com>\r\n\
             In-Reply-To: <{message_id}>\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
             {SAID}\r\n"
        ),
    );
    p.tend(&["inbound", "reply.eml", "--now", "2026-03-03T11:00:00Z"])
        .expect_code(0);
    p.file(
        "bounce.eml",
        format!(
            "From: MAILER-DAEMON@mx.acme.example\r\nTo: {reply_to}\r\n\
             Subject: Undelivered Mail Returned to Sender\r\nDate: Tue, 3 Mar 2026 11:05:00 +0000\r\n\
             Message-ID: <b1@mx.acme.example>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
             --B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\
             --B\r\nContent-Type: message/delivery-status\r\n\r\n\
             Reporting-MTA: dns; mx.acme.example\r\n\r\n\
             Final-Recipient: rfc822; ana@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n\
             Diagnostic-Code: smtp; {DIAGNOSTIC}\r\n\r\n\
             --B\r\nContent-Type: text/rfc822-headers\r\n\r\n\
             Message-ID: <{message_id}>\r\nTo: ana@example.com\r\n\r\n--B--\r\n"
        ),
    );
    p.tend(&["inbound", "bounce.eml", "--now", "2026-03-03T11:05:00Z"])
        .expect_code(0);
    // Her next message is suppressed, with the diagnostic in its reason.
    tick(p, "2026-03-05T10:00:00Z");
    answer_the_survey(p, &message_id);

    // JSON keeps every character as it came.
    let all = json(&p.tend(&["responses", "--format", "json"]).expect_code(0));
    let comments: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["comment"].as_str())
        .collect();
    assert!(comments.iter().any(|c| c.contains(SAID)), "{all:#}");
    assert!(comments.iter().any(|c| c.contains(DIAGNOSTIC)), "{all:#}");
    assert!(comments.contains(&COMMENTED), "{all:#}");
    let messages = json(&p.tend(&["messages", "--format", "json"]).expect_code(0));
    let reason = messages
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["status"] == "suppressed")
        .and_then(|m| m["reason"].as_str())
        .unwrap_or_else(|| panic!("{messages:#}"))
        .to_owned();
    assert!(reason.contains(DIAGNOSTIC), "{reason:?}");

    // Tables show them escaped; nothing reaches the terminal as itself.
    let table = p.tend(&["responses"]).expect_code(0).stdout();
    assert!(!table.chars().any(acts), "{table:?}");
    assert!(
        table.contains("Thanks!\\u{1b}[2J\\u{1b}]0;owned\\u{7} see \\u{202e}gnp.exe\\u{7f}\\u{9b}"),
        "{table}"
    );
    assert!(table.contains("550 5.1.1 gone\\u{1b}[8m hidden"), "{table}");
    assert!(
        table.contains("Fine\\u{1b}[1A\\u{1b}[2K \\u{2067}x"),
        "{table}"
    );
    let table = p.tend(&["messages"]).expect_code(0).stdout();
    assert!(!table.chars().any(acts), "{table:?}");
    assert!(table.contains("gone\\u{1b}[8m hidden"), "{table}");
}

#[test]
fn hostile_answers_are_shown_escaped_on_sqlite() {
    hostile_answers_are_shown_escaped(&project(None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_answers_are_shown_escaped_on_postgres() {
    common::on_fresh_postgres(move |url| hostile_answers_are_shown_escaped(&project(Some(url))))
        .await;
}
