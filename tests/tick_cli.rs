//! `tend tick`, `tend messages` and `tend forecast` through the real binary,
//! against SQLite and PostgreSQL, with time injected by --now.

mod common;

use common::{Project, json, tick};

const PLAYBOOK: &str = r#"name = "onboarding"
kind = "checkin"
category = "onboarding"

[[step]]
id = "welcome"
template = "onboarding/welcome"
anchor = "signup_at"
after = "1d"
survey = "ces"

[[step]]
id = "dashboards"
kind = "tip"
category = "tips"
template = "onboarding/welcome"
anchor = "signup_at"
after = "3d"
when = '!("dashboards" in customer.attributes.features)'

[[step]]
id = "rescue"
template = "onboarding/welcome"
anchor = "stage:at_risk"
"#;

// Signed up on Monday 2026-03-02 at 08:00 UTC; Tokyo and New York too.
const CUSTOMERS: &str = "\
id,email,name,timezone,plan,signup_at,health,features[]
ana,ana@example.com,Ana,UTC,pro,2026-03-02T08:00:00Z,80,api
bo,bo@example.com,Bo,Asia/Tokyo,pro,2026-03-02T08:00:00Z,80,dashboards
cy,cy@example.com,Cy,America/New_York,pro,2026-03-02T08:00:00Z,20,api
";

fn project(extra_env: Option<&str>) -> Project {
    let mut p = Project::new("");
    if let Some(url) = extra_env {
        p = p.env("TEND__DATABASE__URL", url);
    }
    std::fs::create_dir_all(p.path().join("config/playbooks")).unwrap();
    std::fs::create_dir_all(p.path().join("templates/onboarding")).unwrap();
    p.file(
        "templates/onboarding/welcome.md.hbs",
        "+++\nsubject = \"Welcome\"\n+++\nHi\n",
    );
    p.file("config/playbooks/onboarding.toml", PLAYBOOK);
    p.file("customers.csv", CUSTOMERS);
    p.tend(&["import", "customers", "customers.csv"])
        .expect_code(0);
    p
}

fn ticks_plan_each_occurrence_once(p: &Project) {
    // Tuesday 09:30 UTC: the welcome is due for all three; Cy entered
    // at_risk. Only Ana's window is open (Tokyo is at 18:30, New York at
    // 04:30), so only hers goes out, as an .eml file.
    let first = tick(p, "2026-03-03T09:30:00Z");
    assert_eq!(
        first,
        serde_json::json!({"planned": 4, "sent": 1, "deferred": 0, "failed": 0, "suppressed": 0, "expired": 0})
    );
    let outbox: Vec<_> = std::fs::read_dir(p.path().join("data/outbox"))
        .unwrap()
        .collect();
    assert_eq!(outbox.len(), 1);
    for _ in 0..5 {
        assert_eq!(
            tick(p, "2026-03-03T09:30:00Z")["planned"],
            0,
            "a re-plan never duplicates"
        );
    }
    let messages = json(&p.tend(&["messages", "--format", "json"]).expect_code(0));
    let messages = messages.as_array().unwrap();
    assert_eq!(messages.len(), 4);
    for key in [
        "id",
        "customer_id",
        "to",
        "playbook",
        "step",
        "occurrence",
        "kind",
        "status",
        "reason",
        "subject",
        "due_at",
        "sent_at",
        "attempts",
        "message_id",
    ] {
        assert!(
            messages.iter().all(|m| m.get(key).is_some()),
            "every message has {key}"
        );
    }
    let steps: Vec<(String, String)> = messages
        .iter()
        .map(|m| {
            (
                m["customer_id"].as_str().unwrap().into(),
                m["step"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        steps.contains(&("cy".into(), "rescue".into())),
        "the stage entry fires in the same tick: {steps:?}"
    );
    let welcome = messages
        .iter()
        .find(|m| m["customer_id"] == "ana" && m["step"] == "welcome")
        .unwrap();
    assert_eq!(welcome["kind"], "checkin");
    assert_eq!(welcome["status"], "sent");
    assert_eq!(welcome["subject"], "Welcome");
    assert_eq!(welcome["sent_at"], "2026-03-03T09:30:00Z");
    assert_eq!(welcome["attempts"], 1);
    let waiting = messages.iter().find(|m| m["customer_id"] == "bo").unwrap();
    assert_eq!(waiting["status"], "planned");
    assert!(
        waiting["reason"].as_str().unwrap().contains("send window"),
        "{waiting}"
    );
    assert_eq!(welcome["occurrence"], "signup_at");
    assert_eq!(welcome["to"], "ana@example.com");
    assert!(
        welcome["message_id"]
            .as_str()
            .unwrap()
            .ends_with("@acme.example")
    );

    // Thursday: the dashboards tip for Ana and Cy (Bo uses dashboards).
    let thursday = tick(p, "2026-03-05T09:30:00Z");
    assert_eq!(thursday["planned"], 2);
    let tips = json(
        &p.tend(&["messages", "--customer", "ana", "--format", "json"])
            .expect_code(0),
    );
    assert!(
        tips.as_array()
            .unwrap()
            .iter()
            .any(|m| m["step"] == "dashboards" && m["kind"] == "tip")
    );
    let bo = json(
        &p.tend(&["messages", "--customer", "bo", "--format", "json"])
            .expect_code(0),
    );
    assert_eq!(bo.as_array().unwrap().len(), 1);

    // The forecast reads the same store: what waits in the outbox, at the
    // time it can go (never before now), and no occurrence twice. It
    // writes nothing.
    let before = json(&p.tend(&["messages", "--format", "json"]).expect_code(0));
    let forecast = json(
        &p.tend(&[
            "forecast",
            "--now",
            "2026-03-05T09:30:00Z",
            "--days",
            "30",
            "--format",
            "json",
        ])
        .expect_code(0),
    );
    let waiting: std::collections::BTreeSet<(String, String)> = before
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["status"] == "planned")
        .map(|m| (m["customer_id"].to_string(), m["step"].to_string()))
        .collect();
    assert!(!waiting.is_empty(), "{before}");
    let shown: Vec<(String, String)> = forecast
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["customer_id"].to_string(), r["step"].to_string()))
        .collect();
    // Every occurrence up to then is planned, so the forecast shows only
    // waiting messages, each once; Cy's tip is not among them: behind her
    // two check-ins under the cap (2 a week), it would expire first.
    let mut expected = waiting.clone();
    expected.remove(&("\"cy\"".into(), "\"dashboards\"".into()));
    assert_eq!(
        shown
            .iter()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        expected,
        "{forecast}"
    );
    assert_eq!(shown.len(), expected.len(), "{forecast}");
    for row in forecast.as_array().unwrap() {
        assert!(
            row["at"].as_str().unwrap() >= "2026-03-05T09:30:00",
            "{row}"
        );
        assert!(row["subject"].is_string(), "{row}");
    }
    assert_eq!(
        json(&p.tend(&["messages", "--format", "json"]).expect_code(0)),
        before
    );
}

#[test]
fn ticks_plan_each_occurrence_once_on_sqlite() {
    ticks_plan_each_occurrence_once(&project(None));
}

#[tokio::test]
async fn ticks_plan_each_occurrence_once_on_postgres() {
    on_postgres(ticks_plan_each_occurrence_once).await;
}

/// Runs `test` on a project whose store is a fresh PostgreSQL database.
async fn on_postgres(test: fn(&Project)) {
    common::on_fresh_postgres(move |url| test(&project(Some(url)))).await;
}

#[test]
fn the_forecast_shows_what_is_coming_and_writes_nothing() {
    let p = project(None);
    let run = p
        .tend(&[
            "forecast",
            "--now",
            "2026-03-02T09:00:00Z",
            "--days",
            "7",
            "--format",
            "json",
        ])
        .expect_code(0);
    let rows = json(&run);
    let rows = rows.as_array().unwrap();
    let at: Vec<&str> = rows.iter().map(|r| r["at"].as_str().unwrap()).collect();
    let mut sorted = at.clone();
    sorted.sort_unstable();
    assert_eq!(at, sorted, "sorted by at");
    for key in [
        "customer_id",
        "playbook",
        "step",
        "at",
        "template",
        "subject",
    ] {
        assert!(
            rows.iter().all(|r| r.get(key).is_some()),
            "every row has {key}"
        );
    }
    // Bo's welcome: Tuesday 08:00Z is 17:00 in Tokyo, after the window: Wednesday 09:00 JST.
    let bo = rows
        .iter()
        .find(|r| r["customer_id"] == "bo" && r["step"] == "welcome")
        .unwrap();
    assert_eq!(bo["at"], "2026-03-04T00:00:00Z");
    assert!(
        !rows
            .iter()
            .any(|r| r["customer_id"] == "bo" && r["step"] == "dashboards")
    );

    let one = json(
        &p.tend(&[
            "forecast",
            "--now",
            "2026-03-02T09:00:00Z",
            "--customer",
            "ana",
            "--format",
            "json",
        ])
        .expect_code(0),
    );
    assert!(
        one.as_array()
            .unwrap()
            .iter()
            .all(|r| r["customer_id"] == "ana")
    );
    let table = p
        .tend(&["forecast", "--now", "2026-03-02T09:00:00Z"])
        .expect_code(0)
        .stdout();
    assert!(
        table.starts_with("at (UTC)") && table.contains("onboarding/welcome"),
        "{table}"
    );

    let messages = json(&p.tend(&["messages", "--format", "json"]).expect_code(0));
    assert_eq!(messages, serde_json::json!([]), "a forecast writes nothing");
}

#[test]
fn bad_input_is_refused_clearly() {
    let p = project(None);
    let run = p.tend(&["messages", "--status", "bogus"]).expect_code(2);
    assert!(
        run.stderr().contains("is not a message status"),
        "{}",
        run.stderr()
    );
    let run = p.tend(&["forecast", "--customer", "nobody"]).expect_code(1);
    assert!(
        run.stderr().contains("no customer has id \"nobody\""),
        "{}",
        run.stderr()
    );
    p.file("config/playbooks/broken.toml", "name = \"broken\"\nkind = \"tip\"\ncategory = \"tips\"\n[[step]]\nid = \"x\"\ntemplate = \"nope\"\ncron = \"every day\"\n");
    let run = p
        .tend(&["tick", "--now", "2026-03-03T09:30:00Z"])
        .expect_code(1);
    let err = run.stderr();
    assert!(
        err.contains("config/playbooks/broken.toml:6: template \"nope\" does not exist"),
        "{err}"
    );
    assert!(
        err.contains("config/playbooks/broken.toml:7: cron \"every day\""),
        "{err}"
    );
    let messages = json(&p.tend(&["messages", "--format", "json"]).expect_code(0));
    assert_eq!(
        messages,
        serde_json::json!([]),
        "nothing planned while the playbooks are broken"
    );
}

#[test]
fn the_forecast_applies_the_frequency_cap_and_priorities() {
    let p = Project::new("[delivery]\ncap = { max = 2, per = \"3d\" }\n");
    std::fs::create_dir_all(p.path().join("config/playbooks")).unwrap();
    std::fs::create_dir_all(p.path().join("templates/t")).unwrap();
    p.file("templates/t/x.md.hbs", "+++\nsubject = \"x\"\n+++\nx\n");
    let step = |id: &str, category: &str| {
        format!(
            "[[step]]\nid = \"{id}\"\ncategory = \"{category}\"\ntemplate = \"t/x\"\nanchor = \"signup_at\"\nafter = \"1d\"\n"
        )
    };
    p.file(
        "config/playbooks/many.toml",
        format!(
            "name = \"many\"\nkind = \"checkin\"\ncategory = \"tips\"\n{}{}{}",
            step("a-tip", "tips"),
            step("b-checkin", "checkins"),
            step("c-maintenance", "maintenance")
        ),
    );
    p.file(
        "c.csv",
        "id,email,signup_at\nana,ana@example.com,2026-03-02T08:00:00Z\n",
    );
    p.tend(&["import", "customers", "c.csv"]).expect_code(0);
    let run = p
        .tend(&[
            "forecast",
            "--now",
            "2026-03-02T09:00:00Z",
            "--days",
            "10",
            "--format",
            "json",
        ])
        .expect_code(0);
    let rows = json(&run);
    let got: Vec<(String, String)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["step"].as_str().unwrap().into(),
                r["at"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("b-checkin".to_owned(), "2026-03-03T09:00:00Z".to_owned()),
            (
                "c-maintenance".to_owned(),
                "2026-03-03T09:00:00Z".to_owned()
            ),
            ("a-tip".to_owned(), "2026-03-06T09:00:00Z".to_owned()),
        ],
        "two go on Tuesday by priority; the tip waits three days for a slot"
    );
}

#[test]
fn a_changed_playbook_is_applied_to_every_customer() {
    let p = project(None);
    tick(&p, "2026-03-03T09:30:00Z");
    // Nothing new an hour later.
    assert_eq!(tick(&p, "2026-03-03T10:30:00Z")["planned"], 0);
    // A new step whose time has come: planned for everyone at the next tick,
    // though nobody's planning time has come.
    p.file(
        "config/playbooks/onboarding.toml",
        format!("{PLAYBOOK}\n[[step]]\nid = \"hello-again\"\ntemplate = \"onboarding/welcome\"\nanchor = \"signup_at\"\nafter = \"1d 2h\"\n"),
    );
    assert_eq!(tick(&p, "2026-03-03T10:30:00Z")["planned"], 3);
}

/// More customers than two planning pages on either store (PostgreSQL
/// plans 2,000 at a time, SQLite 500), so the cursor goes from page to
/// page, and pages are read ahead while others are written.
fn a_pass_over_several_pages_plans_everyone_once(p: &Project) {
    let mut csv = String::from("id,email,signup_at,features[]\n");
    for i in 0..4321 {
        csv.push_str(&format!(
            "p{i:04},p{i}@example.com,2026-03-02T08:00:00Z,dashboards\n"
        ));
    }
    p.file("many.csv", csv);
    p.tend(&["import", "customers", "many.csv"]).expect_code(0);
    // 4,321 welcomes plus the three customers from the project: Ana, Bo and
    // Cy's welcomes and Cy's rescue.
    assert_eq!(tick(p, "2026-03-03T09:30:00Z")["planned"], 4325);
    assert_eq!(tick(p, "2026-03-03T09:30:00Z")["planned"], 0);
    let messages = json(&p.tend(&["messages", "--format", "json"]).expect_code(0));
    assert_eq!(messages.as_array().unwrap().len(), 4325);
}

#[test]
fn a_pass_over_several_pages_plans_everyone_once_on_sqlite() {
    a_pass_over_several_pages_plans_everyone_once(&project(None));
}

#[tokio::test]
async fn a_pass_over_several_pages_plans_everyone_once_on_postgres() {
    on_postgres(a_pass_over_several_pages_plans_everyone_once).await;
}

/// A weekly tip meant to go once, planned and waiting for the customer's
/// window: the forecast shows the waiting one and no later week.
#[test]
fn the_forecast_counts_waiting_mail_as_going() {
    let p = project(None);
    p.file(
        "config/playbooks/tips.toml",
        r#"name = "tips"
kind = "tip"
category = "tips"

[[step]]
id = "weekly-once"
template = "onboarding/welcome"
cron = "0 8 * * 3"
when = '!sent("weekly-once")'
"#,
    );
    // Wednesday 08:00 UTC: due for everyone, before anyone's window opens
    // (Ana's at 09:00), so it waits in the outbox.
    let planned = tick(&p, "2026-03-04T08:00:00Z");
    assert!(planned["planned"].as_u64().unwrap() >= 1, "{planned}");
    let rows = json(
        &p.tend(&[
            "forecast",
            "--now",
            "2026-03-04T08:00:00Z",
            "--days",
            "30",
            "--customer",
            "ana",
            "--format",
            "json",
        ])
        .expect_code(0),
    );
    let weekly: Vec<&serde_json::Value> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["step"] == "weekly-once")
        .collect();
    assert_eq!(weekly.len(), 1, "{rows}");
    assert_eq!(weekly[0]["at"], "2026-03-04T09:00:00Z");
}

/// A playbook's own send window (here every day) holds its messages at
/// delivery too, not only when they are planned: due on a Saturday inside
/// it, a message goes on the Saturday, while the default window (Monday to
/// Friday) would keep it until Monday.
#[test]
fn a_playbooks_own_window_is_kept_at_delivery() {
    let p = project(None);
    p.file(
        "config/playbooks/weekend.toml",
        r#"name = "weekend"
kind = "tip"
category = "tips"
window = { days = "mon-sun", start = "08:00", end = "20:00" }

[[step]]
id = "saturday"
template = "onboarding/welcome"
anchor = "signup_at"
after = "5d"
"#,
    );
    // Signed up Monday 2026-03-02 08:00 UTC: due Saturday 08:00, when Ana
    // (UTC) is inside the playbook's window and outside the default one.
    let saturday = tick(&p, "2026-03-07T10:00:00Z");
    assert!(saturday["sent"].as_u64().unwrap() >= 1, "{saturday}");
    let ana = json(
        &p.tend(&["messages", "--customer", "ana", "--format", "json"])
            .expect_code(0),
    );
    let weekend = ana
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["playbook"] == "weekend")
        .unwrap();
    assert_eq!(weekend["status"], "sent", "{weekend}");
    assert_eq!(weekend["sent_at"], "2026-03-07T10:00:00Z");
}

/// Mail decided in one claimed batch counts toward the cap of the same
/// customer's mail in the next, though it may not be marked `sending` yet:
/// with more due than one batch holds, each customer's check-in goes and
/// their tip, due with it, waits for the cap.
fn the_cap_holds_across_the_batches_of_a_pass(p: &Project) {
    p.file(
        "config/playbooks/day_one.toml",
        r#"name = "day_one"
kind = "checkin"
category = "onboarding"

[[step]]
id = "hello"
template = "onboarding/welcome"
anchor = "signup_at"
after = "1d"

[[step]]
id = "tip"
kind = "tip"
category = "tips"
template = "onboarding/welcome"
anchor = "signup_at"
after = "1d"
"#,
    );
    let mut csv = String::from("id,email,signup_at\n");
    for i in 0..1500 {
        csv.push_str(&format!("d{i:04},d{i}@example.com,2026-03-02T08:00:00Z\n"));
    }
    p.file("day_one.csv", csv);
    p.tend(&["import", "customers", "day_one.csv"])
        .expect_code(0);
    tick(p, "2026-03-03T09:30:00Z");
    let messages = json(&p.tend(&["messages", "--format", "json"]).expect_code(0));
    let mut hello = 0;
    let mut tips = 0;
    for m in messages.as_array().unwrap() {
        let customer = m["customer_id"].as_str().unwrap();
        if m["playbook"] != "day_one" || !customer.starts_with('d') {
            continue;
        }
        if m["step"] == "hello" {
            assert_eq!(m["status"], "sent", "{m}");
            hello += 1;
        } else {
            // The tip waits for the cap (and expires while it does).
            assert_ne!(m["status"], "sent", "{customer} got two: {m}");
            let reason = m["reason"].as_str().unwrap_or_default();
            assert!(reason.contains("frequency cap"), "{m}");
            tips += 1;
        }
    }
    assert_eq!((hello, tips), (1500, 1500));
}

#[test]
fn the_cap_holds_across_the_batches_of_a_pass_on_sqlite() {
    the_cap_holds_across_the_batches_of_a_pass(&project(None).env("TEND__DELIVERY__CAP__MAX", "1"));
}

#[tokio::test]
async fn the_cap_holds_across_the_batches_of_a_pass_on_postgres() {
    common::on_fresh_postgres(|url| {
        the_cap_holds_across_the_batches_of_a_pass(
            &project(Some(url)).env("TEND__DELIVERY__CAP__MAX", "1"),
        )
    })
    .await;
}
