//! Incidents and maintenance through the binary on both stores, at fixed
//! instants: affected-only notices at a Saturday 03:00Z, suppression
//! honoured, updates and the resolution to exactly the notified set in the
//! opening's thread, tips held while the incident lasts and released after,
//! maintenance announced at each lead time once; and bad input refused
//! with nothing sent.

mod common;

use common::{Project, json, tick};
use serde_json::Value;

const TIPS: &str = r#"
name = "tips"
kind = "tip"
category = "tips"

[[step]]
id = "first"
template = "tip"
anchor = "signup_at"
after = "1d"

[[step]]
id = "second"
template = "tip"
anchor = "signup_at"
after = "3d"
"#;

const CUSTOMERS: &str = "\
id,email,name,timezone,plan,signup_at,region,features[]
ana,ana@example.com,Ana Lima,UTC,pro,2026-03-05T10:00:00Z,eu,api;sso
bo,bo@example.com,Bo Berg,UTC,pro,2026-03-05T10:00:00Z,eu,dashboards
cy,cy@example.com,Cy Young,UTC,pro,2026-03-05T10:00:00Z,us,api
dee,dee@example.com,Dee Park,UTC,pro,2026-03-05T10:00:00Z,eu,api
";

const AFFECTS: &str =
    r#"customer.attributes.region == "eu" && "api" in customer.attributes.features"#;

fn project(database: Option<&str>) -> Project {
    let mut p = Project::new("[mail]\ntransport = \"file\"\n[mail.file]\ndir = \"outbox\"\n");
    if let Some(url) = database {
        p = p.env("TEND__DATABASE__URL", url);
    }
    std::fs::create_dir_all(p.path().join("config/playbooks")).unwrap();
    std::fs::create_dir_all(p.path().join("templates")).unwrap();
    p.file(
        "templates/tip.md.hbs",
        "+++\nsubject = \"A tip\"\n+++\nHi {{customer.first_name}}.\n",
    );
    p
}

fn messages(p: &Project) -> Vec<Value> {
    json(&p.tend(&["messages", "--format", "json"]).expect_code(0))
        .as_array()
        .unwrap()
        .clone()
}

/// (customer, status) of the notices of one step, sorted.
fn notices(p: &Project, step: &str) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = messages(p)
        .iter()
        .filter(|m| m["playbook"] == "incident" && m["step"] == step)
        .map(|m| {
            (
                m["customer_id"].as_str().unwrap().into(),
                m["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    found.sort();
    found
}

fn pair(customer: &str, status: &str) -> (String, String) {
    (customer.into(), status.into())
}

/// The .eml of a sent message.
fn eml(p: &Project, message_id: &str) -> String {
    std::fs::read_dir(p.path().join("outbox"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .find(|text| text.contains(&format!("Message-ID: <{message_id}>")))
        .unwrap_or_else(|| panic!("no .eml with {message_id}"))
}

fn message_id(p: &Project, customer: &str, step: &str) -> String {
    messages(p)
        .iter()
        .find(|m| m["customer_id"] == customer && m["step"] == step)
        .unwrap()["message_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn incidents_notify_the_affected_and_close_the_thread(p: &Project) {
    p.file("config/playbooks/tips.toml", TIPS);
    p.file("customers.csv", CUSTOMERS);
    p.tend(&["import", "customers", "customers.csv"])
        .expect_code(0);
    // Friday 10:00: everyone's first tip. Dee's address bounces.
    assert_eq!(tick(p, "2026-03-06T10:00:00Z")["sent"], 4);
    let dee_tip = message_id(p, "dee", "first");
    let bounce = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/inbound/postfix_hard_bounce.eml"),
    )
    .unwrap()
    .replace("{{MESSAGE_ID}}", &dee_tip)
    .replace("{{REPLY_TO}}", "success@acme.example");
    p.file("bounce.eml", bounce);
    p.tend(&["inbound", "bounce.eml", "--now", "2026-03-06T11:00:00Z"])
        .expect_code(0);

    // Bad input first: nothing recorded, nothing sent.
    let bad = p
        .tend(&[
            "incident",
            "open",
            "INC-1",
            "--title",
            "x",
            "--affects",
            "customer.plan ==",
            "--now",
            "2026-03-07T03:00:00Z",
        ])
        .expect_code(1)
        .stderr();
    assert!(
        bad.contains("--affects") && bad.contains("does not parse"),
        "{bad}"
    );
    let unknown = p
        .tend(&[
            "incident",
            "update",
            "INC-9",
            "--message",
            "news",
            "--notify",
        ])
        .expect_code(1)
        .stderr();
    assert!(
        unknown.contains("no incident has id \"INC-9\""),
        "{unknown}"
    );
    assert_eq!(
        json(
            &p.tend(&["incident", "list", "--format", "json"])
                .expect_code(0)
        ),
        Value::Array(vec![])
    );

    // Saturday 03:00Z: only the affected are told, at once; Dee is
    // suppressed by her bounce, with the reason.
    let opened = p
        .tend(&[
            "incident",
            "open",
            "INC-42",
            "--title",
            "EU API latency",
            "--affects",
            AFFECTS,
            "--message",
            "Requests to the EU API are slow.",
            "--now",
            "2026-03-07T03:00:00Z",
        ])
        .expect_code(0)
        .stdout();
    assert!(
        opened.contains("INC-42 opened: 2 customers affected, 2 notices; sent 1, suppressed 1"),
        "{opened}"
    );
    assert_eq!(
        notices(p, "open"),
        [pair("ana", "sent"), pair("dee", "suppressed")]
    );
    let dee = messages(p)
        .into_iter()
        .find(|m| m["customer_id"] == "dee" && m["step"] == "open")
        .unwrap();
    assert!(
        dee["reason"].as_str().unwrap().contains("hard bounce"),
        "{dee}"
    );
    let ana_open = message_id(p, "ana", "open");
    let notice = eml(p, &ana_open);
    assert!(
        notice.contains("Subject: [Acme Cloud] EU API latency"),
        "{notice}"
    );
    assert!(notice.contains("Requests to the EU API are slow."));
    let again = p
        .tend(&[
            "incident",
            "open",
            "INC-42",
            "--title",
            "again",
            "--affects",
            "true",
        ])
        .expect_code(1)
        .stderr();
    assert!(again.contains("exists already"), "{again}");

    // Monday: tips go to the others; Ana's waits for the incident.
    let monday = tick(p, "2026-03-09T10:00:00Z");
    assert_eq!(monday["sent"], 2, "{monday}");
    let held = messages(p)
        .into_iter()
        .find(|m| m["customer_id"] == "ana" && m["step"] == "second")
        .unwrap();
    assert_eq!(held["status"], "planned");
    assert!(
        held["reason"]
            .as_str()
            .unwrap()
            .contains("held while incident INC-42"),
        "{held}"
    );

    // Eve matches the selector, but arrives after the opening.
    p.file("eve.csv", "id,email,name,timezone,plan,signup_at,region,features[]\neve,eve@example.com,Eve Adams,UTC,pro,2026-03-09T10:00:00Z,eu,api\n");
    p.tend(&["import", "customers", "eve.csv"]).expect_code(0);

    let update = p
        .tend(&[
            "incident",
            "update",
            "INC-42",
            "--status",
            "identified",
            "--message",
            "A bad deploy; rolling back.",
            "--notify",
            "--now",
            "2026-03-09T10:30:00Z",
        ])
        .expect_code(0)
        .stdout();
    assert!(update.contains("1 notices; sent 1"), "{update}");
    let resolved = p
        .tend(&[
            "incident",
            "resolve",
            "INC-42",
            "--message",
            "Rolled back; latency is normal.",
            "--now",
            "2026-03-09T11:00:00Z",
        ])
        .expect_code(0)
        .stdout();
    // The resolution goes; Ana's tip is no longer held for the incident,
    // but the notices count toward her frequency cap.
    assert!(resolved.contains("1 notices; sent 1"), "{resolved}");
    assert_eq!(
        notices(p, "resolved"),
        [pair("ana", "sent")],
        "exactly those who got the opening"
    );
    let closing = eml(p, &message_id(p, "ana", "resolved"));
    assert!(
        closing.contains(&format!("In-Reply-To: <{ana_open}>")),
        "{closing}"
    );
    assert!(closing.contains(&format!("References: <{ana_open}>")));
    assert!(closing.contains("Subject: Resolved: EU API latency"));
    let twice = p
        .tend(&["incident", "resolve", "INC-42", "--message", "again"])
        .expect_code(1)
        .stderr();
    assert!(twice.contains("was closed at"), "{twice}");

    // After the resolution Ana's tip is no longer held for the incident,
    // but her first tip and the three notices of this week fill her cap (2
    // a week; notices are never held by it) past the tip's expiry. Expired,
    // saying why.
    let tip = messages(p)
        .into_iter()
        .find(|m| m["customer_id"] == "ana" && m["step"] == "second")
        .unwrap();
    assert_eq!(tip["status"], "expired", "{tip}");
    assert_eq!(
        tip["reason"], "expired waiting for the frequency cap (2 per 7 days)",
        "{tip}"
    );

    let list = json(
        &p.tend(&["incident", "list", "--format", "json"])
            .expect_code(0),
    );
    let inc = &list[0];
    let keys: Vec<&str> = inc
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "notified",
            "opened_at",
            "resolved_at",
            "status",
            "title"
        ]
    );
    assert_eq!(
        (
            inc["id"].as_str(),
            inc["status"].as_str(),
            inc["notified"].as_i64()
        ),
        (Some("INC-42"), Some("resolved"), Some(1))
    );
    assert_eq!(inc["opened_at"], "2026-03-07T03:00:00Z");
    assert_eq!(inc["resolved_at"], "2026-03-09T11:00:00Z");
}

#[test]
fn incidents_on_sqlite() {
    incidents_notify_the_affected_and_close_the_thread(&project(None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_on_postgres() {
    common::on_fresh_postgres(move |url| {
        incidents_notify_the_affected_and_close_the_thread(&project(Some(url)))
    })
    .await;
}

#[test]
fn maintenance_is_announced_at_each_lead_time_once() {
    let p = project(None);
    p.file("customers.csv", CUSTOMERS);
    p.tend(&["import", "customers", "customers.csv"])
        .expect_code(0);
    let bad = p
        .tend(&[
            "incident",
            "maintenance",
            "MNT-1",
            "--title",
            "DB upgrade",
            "--affects",
            "true",
            "--starts",
            "2026-03-21T02:00:00Z",
            "--ends",
            "2026-03-21T01:00:00Z",
            "--now",
            "2026-03-10T10:00:00Z",
        ])
        .expect_code(1)
        .stderr();
    assert!(bad.contains("--ends must be after --starts"), "{bad}");
    let scheduled = p
        .tend(&[
            "incident",
            "maintenance",
            "MNT-1",
            "--title",
            "Database upgrade",
            "--affects",
            r#"customer.attributes.region == "us""#,
            "--starts",
            "2026-03-21T02:00:00Z",
            "--ends",
            "2026-03-21T04:00:00Z",
            "--message",
            "Expect a few minutes of read-only mode.",
            "--now",
            "2026-03-10T10:00:00Z",
        ])
        .expect_code(0)
        .stdout();
    assert!(
        scheduled.contains("1 customers affected, 3 notices; sent 0"),
        "{scheduled}"
    );
    // A week ahead lands on Saturday 02:00Z: it waits for Monday's window.
    assert_eq!(tick(&p, "2026-03-14T02:00:00Z")["sent"], 0);
    assert_eq!(tick(&p, "2026-03-16T09:30:00Z")["sent"], 1);
    assert_eq!(tick(&p, "2026-03-16T09:45:00Z")["sent"], 0, "once");
    assert_eq!(
        tick(&p, "2026-03-20T09:30:00Z")["sent"],
        1,
        "the day before"
    );
    // An hour ahead: at once, at night.
    assert_eq!(tick(&p, "2026-03-21T01:00:00Z")["sent"], 1);
    assert_eq!(
        notices(&p, "announce-7d")
            .into_iter()
            .chain(notices(&p, "announce-1d"))
            .chain(notices(&p, "announce-1h"))
            .collect::<Vec<_>>(),
        [pair("cy", "sent"), pair("cy", "sent"), pair("cy", "sent")]
    );
    let announced = eml(&p, &message_id(&p, "cy", "announce-1h"));
    assert!(
        announced.contains("Subject: Scheduled maintenance: Database upgrade"),
        "{announced}"
    );
    assert!(
        announced.contains("Saturday March 21, 02:00"),
        "in the customer's zone"
    );
    let done = p
        .tend(&[
            "incident",
            "resolve",
            "MNT-1",
            "--message",
            "All done.",
            "--now",
            "2026-03-21T03:30:00Z",
        ])
        .expect_code(0)
        .stdout();
    assert!(done.contains("MNT-1 closed: 1 notices; sent 1"), "{done}");
    let completed = eml(&p, &message_id(&p, "cy", "completed"));
    assert!(completed.contains("Subject: Maintenance complete: Database upgrade"));
    assert!(completed.contains(&format!(
        "In-Reply-To: <{}>",
        message_id(&p, "cy", "announce-7d")
    )));
}

/// `tend incident open INC-7 … --template NAME`.
fn open_with_template(p: &Project, name: &str) -> common::Run {
    p.tend(&[
        "incident",
        "open",
        "INC-7",
        "--title",
        "EU API latency",
        "--affects",
        AFFECTS,
        "--template",
        name,
        "--now",
        "2026-03-07T03:00:00Z",
    ])
}

fn a_template_must_be_inside_the_templates_folder(p: &Project) {
    p.file("customers.csv", CUSTOMERS);
    p.tend(&["import", "customers", "customers.csv"])
        .expect_code(0);
    std::fs::create_dir_all(p.path().join("templates/incidents")).unwrap();
    let notice = "+++\nsubject = \"Trouble: {{incident.title}}\"\n+++\nWe are on it.\n";
    p.file("templates/incidents/outage.md.hbs", notice);
    // Templates of the right shape outside the folder, one linked into it.
    p.file("private.md.hbs", notice);
    std::os::unix::fs::symlink(
        p.path().join("private.md.hbs"),
        p.path().join("templates/incidents/linked.md.hbs"),
    )
    .unwrap();
    let folder = p.path().join("templates");
    let private = p.path().join("private");

    for name in [
        "../private",
        private.to_str().unwrap(),
        "incidents/../../private",
    ] {
        let err = open_with_template(p, name).expect_code(1).stderr();
        assert!(
            err.contains(&format!(
                "--template: {name:?} is not a template name: name a template by its path inside the templates folder {}",
                folder.display()
            )),
            "{err}"
        );
        assert!(err.contains("such as incidents/notice"), "{err}");
    }
    let err = open_with_template(p, "incidents/linked")
        .expect_code(1)
        .stderr();
    assert!(err.contains("leads outside the templates folder"), "{err}");
    let err = open_with_template(p, "incidents/outge")
        .expect_code(1)
        .stderr();
    assert!(
        err.contains(&format!(
            "the template \"incidents/outge\" does not exist (did you mean `incidents/outage`?): there is no {}",
            folder.join("incidents/outge.md.hbs").display()
        )),
        "{err}"
    );
    assert!(
        err.contains("incidents/notice, incidents/outage, incidents/resolved"),
        "the names that work are listed: {err}"
    );
    // Nothing was recorded or sent.
    assert_eq!(
        json(
            &p.tend(&["incident", "list", "--format", "json"])
                .expect_code(0)
        ),
        Value::Array(vec![])
    );
    assert!(messages(p).is_empty());

    let opened = open_with_template(p, "incidents/outage.md.hbs")
        .expect_code(0)
        .stdout();
    assert!(opened.contains("sent 2"), "{opened}");
    let ana = eml(p, &message_id(p, "ana", "open"));
    assert!(ana.contains("Subject: Trouble: EU API latency"), "{ana}");
}

#[test]
fn a_template_must_be_inside_the_templates_folder_on_sqlite() {
    a_template_must_be_inside_the_templates_folder(&project(None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_must_be_inside_the_templates_folder_on_postgres() {
    common::on_fresh_postgres(move |url| {
        a_template_must_be_inside_the_templates_folder(&project(Some(url)))
    })
    .await;
}

#[test]
fn the_api_refuses_a_template_outside_the_folder() {
    let p = project(None).env("TEND__HTTP__API_TOKEN", "tok");
    p.file("private.md.hbs", "+++\nsubject = \"x\"\n+++\nx\n");
    let d = common::daemon::Daemon::start(&p, common::free_port(), &[]);
    let body = serde_json::json!({
        "id": "INC-8", "title": "x", "affects": "true", "template": "../private",
    });
    let reply = d.request(
        "POST",
        "/api/v1/incidents",
        &[
            ("Authorization", "Bearer tok"),
            ("Content-Type", "application/json"),
        ],
        body.to_string().as_bytes(),
    );
    assert_eq!(reply.status, 422, "{}", reply.body);
    let said = reply.json()["error"].as_str().unwrap().to_owned();
    assert!(
        said.contains("\"../private\" is not a template name")
            && said.contains(&p.path().join("templates").display().to_string()),
        "{said}"
    );
}

#[test]
fn a_selector_past_the_condition_limits_is_refused_and_the_next_one_opens() {
    let p = project(None);
    p.file("customers.csv", CUSTOMERS);
    p.tend(&["import", "customers", "customers.csv"])
        .expect_code(0);
    let open = |id: &str, affects: &str| {
        p.tend(&[
            "incident",
            "open",
            id,
            "--title",
            "EU API latency",
            "--affects",
            affects,
            "--now",
            "2026-03-07T03:00:00Z",
        ])
    };
    // 100,000 opening brackets (an argument may not be much longer).
    let parentheses = "(".repeat(100_000);
    let deep = format!("{}true{}", "(".repeat(40), ")".repeat(40));
    for (affects, expected) in [
        (
            parentheses.as_str(),
            "--affects: the condition is 100000 bytes long, over the limit of 4096; shorten it",
        ),
        (
            deep.as_str(),
            "--affects: the condition nests brackets 40 deep (line 1, column 33), over the limit of 32",
        ),
    ] {
        let bad = open("INC-1", affects).expect_code(1).stderr();
        assert!(bad.contains(expected), "no {expected:?} in\n{bad}");
    }
    assert_eq!(
        json(
            &p.tend(&["incident", "list", "--format", "json"])
                .expect_code(0)
        ),
        Value::Array(vec![])
    );
    let opened = open("INC-1", AFFECTS).expect_code(0).stdout();
    assert!(opened.contains("2 customers affected"), "{opened}");
}
