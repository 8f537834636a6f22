//! Account-scope playbooks through the real binary and a real SMTP server,
//! on both stores: anchors, stage and audience on the account, one message
//! per contact in the step's roles (else the admins), from the owner, once
//! per (account, playbook, step, occurrence, contact) across re-plans and a
//! contact joining later; and `tend check` naming every mistake of an
//! account-scope playbook with its line.

mod common;

use common::smtp::SmtpSink;
use common::{Project, json, on_fresh_postgres, tick};

const RENEWALS: &str = r#"
name = "renewals"
kind = "reminder"
category = "checkins"
scope = "account"
from = "owner"
to = ["billing"]
audience = 'account.plan != "free"'

[[step]]
id = "thirty-days"
template = "renewal"
anchor = "renewal_at"
before = "30d"

[[step]]
id = "welcome-to-renewal"
template = "renewal_stage"
anchor = "stage:renewal"
to = ["champion"]
"#;

const ACCOUNTS: &str = "\
id,name,plan,renewal_at,owner
globex,Globex,enterprise,2026-04-01,maria
initech,Initech,team,2026-04-01,
hooli,Hooli,free,2026-04-01,maria
umbrella,Umbrella,enterprise,2027-01-01,maria
";

const CONTACTS: &str = "\
id,email,name,account_id,roles[],timezone
bill,bill@globex.example,Bill Lumbergh,globex,billing,UTC
hank,hank@globex.example,Hank Scorpio,globex,admin;champion,UTC
homer,homer@globex.example,Homer Simpson,globex,technical,UTC
peter,peter@initech.example,Peter Gibbons,initech,technical,UTC
milton,milton@initech.example,Milton Waddams,initech,admin,UTC
gavin,gavin@hooli.example,Gavin Belson,hooli,billing,UTC
alice,alice@umbrella.example,Alice,umbrella,billing,UTC
";

fn project(smtp_port: u16, database: Option<&str>) -> Project {
    let config = format!(
        r#"[company]
name = "Acme"
[mail]
transport = "smtp"
[mail.smtp]
host = "127.0.0.1"
port = {smtp_port}
timeout = "5s"
[delivery]
window = {{ days = "mon-sun", start = "00:00", end = "23:59" }}
cap = {{ max = 10, per = "7d" }}

[[team]]
id = "maria"
name = "Maria Costa"
email = "maria@acme.example"
"#
    );
    let mut p = Project::new(&config);
    if let Some(url) = database {
        p = p.env("TEND__DATABASE__URL", url);
    }
    std::fs::create_dir_all(p.path().join("config/playbooks")).unwrap();
    std::fs::create_dir_all(p.path().join("templates")).unwrap();
    p.file("config/playbooks/renewals.toml", RENEWALS);
    p.file(
        "templates/renewal.md.hbs",
        "+++\nsubject = \"{{account.name}} renews on {{date account.renewal_at}}\"\n+++\nHi {{customer.first_name}}, {{account.name}} renews soon.\n",
    );
    p.file(
        "templates/renewal_stage.md.hbs",
        "+++\nsubject = \"Planning {{account.name}}'s next year ({{account.stage}})\"\n+++\nHi {{customer.first_name}}.\n",
    );
    p.file("accounts.csv", ACCOUNTS);
    p.file("contacts.csv", CONTACTS);
    p.tend(&["check"]).expect_code(0);
    p.tend(&["import", "accounts", "accounts.csv"])
        .expect_code(0);
    p.tend(&["import", "customers", "contacts.csv"])
        .expect_code(0);
    p
}

/// (recipient, subject) of every message received, sorted.
fn received(sink: &SmtpSink) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = sink
        .received()
        .iter()
        .map(|r| (r.to.join(","), r.header("Subject").unwrap_or_default()))
        .collect();
    all.sort();
    all
}

fn account_steps_go_once_to_their_roles(database: Option<&str>) {
    let sink = SmtpSink::start();
    let p = project(sink.port(), database);
    // The forecast shows what the account steps will send, to whom.
    let forecast = json(
        &p.tend(&[
            "forecast",
            "--now",
            "2026-02-20T10:00:00Z",
            "--days",
            "20",
            "--format",
            "json",
        ])
        .expect_code(0),
    );
    let mut coming: Vec<(&str, &str)> = forecast
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["customer_id"].as_str().unwrap(),
                r["step"].as_str().unwrap(),
            )
        })
        .collect();
    coming.sort_unstable();
    // The stage step as the accounts enter `renewal` (60 days ahead), the
    // renewal itself 30 days ahead; each to its roles.
    assert_eq!(
        coming,
        [
            ("bill", "thirty-days"),
            ("hank", "welcome-to-renewal"),
            ("milton", "thirty-days"),
            ("milton", "welcome-to-renewal")
        ],
        "{forecast}"
    );
    let subjects: Vec<&str> = forecast
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["subject"].as_str().unwrap_or("(none)"))
        .collect();
    assert!(
        subjects.contains(&"Globex renews on April 1, 2026")
            && subjects.contains(&"Planning Globex's next year (renewal)"),
        "{subjects:?}"
    );
    // Thirty days before Globex and Initech renew; Hooli is free, and
    // Umbrella renews next year.
    let done = tick(&p, "2026-03-02T10:00:00Z");
    assert_eq!(done["sent"], 4, "{done}");
    assert_eq!(
        received(&sink),
        [
            (
                "bill@globex.example".to_owned(),
                "Globex renews on April 1, 2026".to_owned()
            ),
            (
                "hank@globex.example".to_owned(),
                "Planning Globex's next year (renewal)".to_owned()
            ),
            (
                "milton@initech.example".to_owned(),
                "Initech renews on April 1, 2026".to_owned()
            ),
            (
                "milton@initech.example".to_owned(),
                "Planning Initech's next year (renewal)".to_owned()
            ),
        ],
        "Initech has no billing contact and no champion: its admin hears"
    );
    // From the owner where there is one.
    let mail = sink.received();
    let bill = mail
        .iter()
        .find(|m| m.to == ["bill@globex.example"])
        .unwrap();
    assert!(
        bill.header("From")
            .unwrap()
            .starts_with("\"Maria Costa at Acme\""),
        "{:?}",
        bill.header("From")
    );
    let milton = mail
        .iter()
        .find(|m| m.to == ["milton@initech.example"])
        .unwrap();
    assert!(
        !milton.header("From").unwrap().contains("Maria"),
        "Initech has no owner"
    );
    let messages = json(
        &p.tend(&["messages", "--customer", "bill", "--format", "json"])
            .expect_code(0),
    );
    assert_eq!(messages[0]["occurrence"], "globex/renewal_at");
    let accounts = json(&p.tend(&["accounts", "--format", "json"]).expect_code(0));
    let stages: Vec<(&str, &str)> = accounts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["id"].as_str().unwrap(), a["stage"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        stages,
        [
            ("globex", "renewal"),
            ("hooli", "renewal"),
            ("initech", "renewal"),
            ("umbrella", "active")
        ]
    );

    // The account's page: its stage history, and no answers yet.
    let shown = json(
        &p.tend(&["account", "show", "globex", "--format", "json"])
            .expect_code(0),
    );
    assert_eq!(shown["stages"][0]["stage"], "renewal", "{shown}");
    assert_eq!(shown["stages"][0]["entered_at"], "2026-03-02T10:00:00Z");
    assert_eq!(shown["latest"], serde_json::json!({}));
    let bill_messages = shown["contacts"][0]["messages"].as_array().unwrap();
    assert_eq!(bill_messages.len(), 1, "{shown}");
    let table = p
        .tend(&["account", "show", "globex"])
        .expect_code(0)
        .stdout();
    assert!(
        table.contains("history   entered renewal on 2026-03-02"),
        "{table}"
    );

    // The roll-ups: per company and per success manager.
    let by_account = json(
        &p.tend(&["report", "--by", "account", "--format", "json"])
            .expect_code(0),
    );
    let sent: Vec<(&str, i64)> = by_account
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["group"].as_str().unwrap(), g["sent"].as_i64().unwrap()))
        .collect();
    assert_eq!(sent, [("globex", 2), ("initech", 2)], "{by_account}");
    let by_owner = json(
        &p.tend(&["report", "--by", "owner", "--format", "json"])
            .expect_code(0),
    );
    assert_eq!(by_owner[0]["group"], "", "Initech has no owner");
    assert_eq!(by_owner[1]["group"], "maria");
    assert_eq!(by_owner[1]["sent"], 2);
    let table = p.tend(&["report", "--by", "plan"]).expect_code(0).stdout();
    assert!(
        table.contains("enterprise") && table.contains("team"),
        "{table}"
    );
    let bad = p
        .tend(&["report", "--by", "region"])
        .expect_code(2)
        .stderr();
    assert!(
        bad.contains("--by \"region\" is not a grouping; use account, owner, plan or stage"),
        "{bad}"
    );

    // Planned again, and later: nothing goes twice.
    let again = tick(&p, "2026-03-02T11:00:00Z");
    assert_eq!(
        (again["planned"].as_u64(), again["sent"].as_u64()),
        (Some(0), Some(0)),
        "{again}"
    );
    // A billing contact who joins Globex later does not get the occurrence
    // its account already had.
    p.file(
        "new.csv",
        "id,email,account_id,roles[]\nbob,bob@globex.example,globex,billing\n",
    );
    p.tend(&["import", "customers", "new.csv"]).expect_code(0);
    let later = tick(&p, "2026-03-03T10:00:00Z");
    assert_eq!(later["sent"], 0, "{later}");
    assert_eq!(sink.received().len(), 4);
}

#[test]
fn account_steps_go_once_to_their_roles_on_sqlite() {
    account_steps_go_once_to_their_roles(None);
}

#[tokio::test]
async fn account_steps_go_once_to_their_roles_on_postgres() {
    on_fresh_postgres(|url| account_steps_go_once_to_their_roles(Some(url))).await;
}

#[test]
fn check_names_every_mistake_of_an_account_playbook() {
    let p = project(2525, None);
    p.file(
        "config/playbooks/renewals.toml",
        r#"name = "renewals"
kind = "reminder"
category = "checkins"
scope = "account"
from = "mario"
to = ["biling"]

[[step]]
id = "thirty-days"
template = "renewal"
anchor = "signup_at"
after = "1d"
when = 'customer.plan == "pro" && account.tier == "gold"'

[[step]]
id = "person"
template = "renewal"
scope = "person"
anchor = "renewal_at"
before = "30d"
to = ["billing"]
"#,
    );
    let run = p.tend(&["check"]).expect_code(1);
    let out = run.stdout() + &run.stderr();
    for expected in [
        "renewals.toml:5: from = \"mario\" names no [[team]] member (did you mean `maria`?)",
        "renewals.toml:6: to names the role \"biling\", which [accounts] roles does not declare (did you mean `billing`?)",
        "renewals.toml:11: anchor \"signup_at\" is a person's",
        "renewals.toml:13: step.0.when: the condition has mistakes:",
        "account.tier is not an account field",
        "renewals.toml:13: step.0.when: an account-scope step is about the account, not one person: use account.* instead of customer.*",
        "renewals.toml:21: step \"person\": to names the roles that receive an account-scope step",
    ] {
        assert!(out.contains(expected), "{expected}\n--- in\n{out}");
    }
}

fn incidents_reach_the_technical_contacts_of_affected_accounts(database: Option<&str>) {
    let sink = SmtpSink::start();
    let p = project(sink.port(), database);
    // Only incident mail here.
    std::fs::remove_file(p.path().join("config/playbooks/renewals.toml")).unwrap();
    // A person of their own, outside any account, on the same plan.
    p.file(
        "solo.csv",
        "id,email,plan\nsolo,solo@example.com,enterprise\n",
    );
    p.tend(&["import", "customers", "solo.csv"]).expect_code(0);
    let opened = p
        .tend(&[
            "incident",
            "open",
            "INC-7",
            "--title",
            "EU API latency",
            "--affects",
            r#"account.plan == "enterprise""#,
            "--message",
            "Requests are slow.",
            "--now",
            "2026-03-07T03:00:00Z",
        ])
        .expect_code(0)
        .stdout();
    assert!(opened.contains("4 customers affected"), "{opened}");
    let told = |sink: &SmtpSink| -> Vec<String> {
        let mut to: Vec<String> = sink.received().iter().map(|r| r.to.join(",")).collect();
        to.sort();
        to
    };
    // Globex's technical contact and its admin; Umbrella has neither, so
    // its only contact; Solo is their own account; Initech and Hooli are
    // not on the enterprise plan.
    let first = [
        "alice@umbrella.example",
        "hank@globex.example",
        "homer@globex.example",
        "solo@example.com",
    ];
    assert_eq!(told(&sink), first);
    p.tend(&[
        "incident",
        "resolve",
        "INC-7",
        "--message",
        "Fixed.",
        "--now",
        "2026-03-07T05:00:00Z",
    ])
    .expect_code(0);
    tick(&p, "2026-03-07T05:00:00Z");
    let all = told(&sink);
    let mut expected: Vec<&str> = first.iter().chain(first.iter()).copied().collect();
    expected.sort_unstable();
    assert_eq!(all, expected, "the resolution goes to exactly those told");
}

#[test]
fn incidents_reach_the_technical_contacts_of_affected_accounts_on_sqlite() {
    incidents_reach_the_technical_contacts_of_affected_accounts(None);
}

#[tokio::test]
async fn incidents_reach_the_technical_contacts_of_affected_accounts_on_postgres() {
    on_fresh_postgres(|url| incidents_reach_the_technical_contacts_of_affected_accounts(Some(url)))
        .await;
}

/// Everyone of an account hears of its news (no `to`), and one contact
/// leaving the category silences only them.
const NEWS: &str = r#"
name = "news"
kind = "tip"
category = "tips"
scope = "account"

[[step]]
id = "seats"
template = "news"
anchor = "event:seats_changed"
"#;

fn one_contact_leaving_silences_only_them(database: Option<&str>) {
    let sink = SmtpSink::start();
    let p = project(sink.port(), database);
    std::fs::remove_file(p.path().join("config/playbooks/renewals.toml")).unwrap();
    p.file("config/playbooks/news.toml", NEWS);
    p.file(
        "templates/news.md.hbs",
        "+++\nsubject = \"News for {{account.name}}\"\n+++\nHi {{customer.first_name}}.\n",
    );
    p.file(
        "events.csv",
        "id,customer_id,name,occurred_at\ne1,homer,seats_changed,2026-03-02T09:00:00Z\n",
    );
    p.tend(&["import", "events", "events.csv"]).expect_code(0);
    let done = tick(&p, "2026-03-02T10:00:00Z");
    assert_eq!(done["sent"], 3, "every Globex contact: {done}");
    let bill = sink
        .received()
        .into_iter()
        .find(|m| m.to == ["bill@globex.example"])
        .unwrap();
    let header = bill.header("List-Unsubscribe").unwrap();
    let address = header
        .split(',')
        .filter_map(|part| part.trim().strip_prefix("<mailto:")?.strip_suffix('>'))
        .map(|uri| uri.split('?').next().unwrap().to_owned())
        .next()
        .unwrap_or_else(|| panic!("no mailto in {header}"));
    p.file(
        "leave.eml",
        format!(
            "From: Bill Lumbergh <bill@globex.example>\r\nTo: {address}\r\nSubject: unsubscribe\r\nMessage-ID: <leave-1@globex.example>\r\nDate: Mon, 02 Mar 2026 11:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nunsubscribe\r\n"
        ),
    );
    p.tend(&["inbound", "leave.eml", "--now", "2026-03-02T11:00:00Z"])
        .expect_code(0);
    p.file(
        "events.csv",
        "id,customer_id,name,occurred_at\ne2,hank,seats_changed,2026-03-03T09:00:00Z\n",
    );
    p.tend(&["import", "events", "events.csv"]).expect_code(0);
    let done = tick(&p, "2026-03-03T10:00:00Z");
    assert_eq!(
        (done["sent"].as_u64(), done["suppressed"].as_u64()),
        (Some(2), Some(1)),
        "{done}"
    );
    let mut second: Vec<String> = sink.received()[3..]
        .iter()
        .map(|m| m.to.join(","))
        .collect();
    second.sort();
    assert_eq!(second, ["hank@globex.example", "homer@globex.example"]);
}

#[test]
fn one_contact_leaving_silences_only_them_on_sqlite() {
    one_contact_leaving_silences_only_them(None);
}

#[tokio::test]
async fn one_contact_leaving_silences_only_them_on_postgres() {
    on_fresh_postgres(|url| one_contact_leaving_silences_only_them(Some(url))).await;
}

/// Two instances ticking at once on one PostgreSQL database plan and send
/// each account occurrence once per contact.
#[tokio::test]
async fn two_instances_send_each_account_occurrence_once_per_contact() {
    on_fresh_postgres(|url| {
        let sink = SmtpSink::start();
        let p = project(sink.port(), Some(url));
        let tick_at = |now: &str| {
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tend"));
            cmd.args(["tick", "--now", now, "--format", "json"])
                .current_dir(p.path())
                .env_clear()
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            if let Ok(path) = std::env::var("PATH") {
                cmd.env("PATH", path);
            }
            for (k, v) in p.env_pairs() {
                cmd.env(k, v);
            }
            cmd.spawn().unwrap()
        };
        let first = tick_at("2026-03-02T10:00:00Z");
        let second = tick_at("2026-03-02T10:00:00Z");
        let outputs = [
            first.wait_with_output().unwrap(),
            second.wait_with_output().unwrap(),
        ];
        let mut planned = 0;
        for out in &outputs {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let done: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            planned += done["planned"].as_u64().unwrap();
        }
        assert_eq!(planned, 4, "each occurrence planned once between them");
        // Whatever one of them left for later goes at the next tick.
        tick(&p, "2026-03-02T10:05:00Z");
        assert_eq!(
            received(&sink).len(),
            4,
            "each contact got each occurrence once: {:?}",
            received(&sink)
        );
    })
    .await;
}

#[test]
fn check_warns_of_a_role_no_contact_holds() {
    let p = project(2525, None);
    p.file(
        "config/playbooks/users.toml",
        r#"name = "users"
kind = "tip"
category = "tips"
scope = "account"

[[step]]
id = "digest"
template = "renewal"
cron = "0 9 * * mon"
to = ["user"]
"#,
    );
    let run = p.tend(&["check"]).expect_code(0);
    assert!(
        run.stderr().contains(
            "warning: no contact holds the role \"user\", which users/digest sends to: those accounts' admins get it instead"
        ),
        "{}",
        run.stderr()
    );
    assert!(!run.stderr().contains("\"billing\""), "{}", run.stderr());
    // Without a store, check reads none and creates none.
    let fresh = Project::new("");
    std::fs::create_dir_all(fresh.path().join("config/playbooks")).unwrap();
    std::fs::create_dir_all(fresh.path().join("templates")).unwrap();
    fresh.file(
        "config/playbooks/users.toml",
        std::fs::read_to_string(p.path().join("config/playbooks/users.toml")).unwrap(),
    );
    fresh.file("templates/renewal.md.hbs", "+++\nsubject = \"x\"\n+++\nx\n");
    let quiet = fresh.tend(&["check"]).expect_code(0);
    assert!(!quiet.stderr().contains("role"), "{}", quiet.stderr());
    assert!(!fresh.path().join("data/tend.db").exists());
}

/// A weekly account-scope step whose message still waits when the next
/// week's falls due: the old one is superseded for every contact, and only
/// the new one waits.
#[test]
fn a_newer_account_occurrence_supersedes_what_still_waits() {
    let p = project(2525, None);
    std::fs::remove_file(p.path().join("config/playbooks/renewals.toml")).unwrap();
    p.file(
        "config/playbooks/weekly.toml",
        r#"name = "weekly"
kind = "tip"
category = "tips"
scope = "account"
window = { days = "mon", start = "09:00", end = "09:30" }

[[step]]
id = "digest"
template = "renewal"
cron = "0 10 * * mon"
to = ["technical"]
expires = "30d"
"#,
    );
    let status_of = |occurrence: &str| -> String {
        let messages = json(
            &p.tend(&["messages", "--customer", "homer", "--format", "json"])
                .expect_code(0),
        );
        messages
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["occurrence"] == format!("globex/{occurrence}"))
            .map_or("none".to_owned(), |m| {
                m["status"].as_str().unwrap().to_owned()
            })
    };
    // Monday 2 March, 10:05: after the window, so it waits a week (the
    // weeks before, a backlog, are caught up: only the latest waits).
    tick(&p, "2026-03-02T10:05:00Z");
    assert_eq!(status_of("2026-03-02T10:00:00Z"), "planned");
    assert_eq!(status_of("2026-02-23T10:00:00Z"), "expired");
    // The next Monday's falls due while the first still waits.
    tick(&p, "2026-03-09T10:05:00Z");
    assert_eq!(status_of("2026-03-02T10:00:00Z"), "expired", "superseded");
    assert_eq!(status_of("2026-03-09T10:00:00Z"), "planned");
}
