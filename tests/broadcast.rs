//! One-off broadcasts through the binary, on both stores: the forecast
//! comes first and writes nothing; sent, each customer gets it in their
//! own send window (a customer in Tokyo the next morning), a repeated run
//! sends nobody a second copy, the frequency cap holds a second broadcast,
//! who left the category is not mailed; each bad input is named.

mod common;

use common::{Project, json, on_fresh_postgres, sent_eml, tick};

const CONFIG: &str = "[company]\nname = \"Acme\"\npostal_address = \"1 Main St\"\n\
[mail]\nfrom = \"Acme Success <success@acme.example>\"\nreply_to = \"success@acme.example\"\n[mail.file]\ndir = \"outbox\"\n\
[delivery]\nwindow = { days = \"mon-fri\", start = \"09:00\", end = \"17:00\" }\ncap = { max = 1, per = \"7d\" }\npriority = [\"tips\", \"announcements\"]\n\
[[category]]\nname = \"announcements\"\ndescription = \"Product news\"\n\
[[category]]\nname = \"tips\"\ndescription = \"Tips\"\n";

const TEMPLATE: &str = "+++\nsubject = \"What is new in Acme Cloud, {{customer.first_name}}\"\n+++\nHi {{customer.first_name}}, version 3 is out.\n";

fn project(database: Option<&str>) -> Project {
    let mut p = Project::new(CONFIG);
    if let Some(url) = database {
        p = p.env("TEND__DATABASE__URL", url);
    }
    std::fs::create_dir_all(p.path().join("config/playbooks")).unwrap();
    std::fs::create_dir_all(p.path().join("templates")).unwrap();
    p.file("templates/release.md.hbs", TEMPLATE);
    p.file(
        "customers.csv",
        "id,email,name,plan,timezone\n\
         ana,ana@example.com,Ana Lima,pro,UTC\n\
         kenji,kenji@example.jp,Kenji Sato,pro,Asia/Tokyo\n\
         cleo,cleo@example.com,Cleo Park,pro,UTC\n\
         dora,dora@example.com,Dora Wu,free,UTC\n",
    );
    p.tend(&["import", "customers", "customers.csv"])
        .expect_code(0);
    p
}

/// Monday 2 March 2026, 10:00 UTC: inside the window in London, 19:00 in Tokyo.
const MONDAY: &str = "2026-03-02T10:00:00Z";

fn broadcast(p: &Project, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "broadcast",
        "release",
        "--audience",
        "customer.plan == \"pro\"",
        "--now",
        MONDAY,
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    json(&p.tend(&args).expect_code(0))
}

fn statuses(p: &Project) -> Vec<(String, String)> {
    let messages = json(&p.tend(&["messages", "--format", "json"]).expect_code(0));
    let mut all: Vec<(String, String)> = messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["customer_id"].as_str().unwrap().to_owned(),
                m["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    all.sort();
    all
}

fn a_broadcast_reaches_its_audience_by_the_rules(database: Option<&str>) {
    let p = project(database);
    // First the forecast: nothing is written.
    let forecast = broadcast(&p, &[]);
    assert_eq!(forecast["id"], "release");
    assert_eq!(forecast["matched"], 3, "{forecast}");
    assert_eq!(forecast["reaches"], 3, "{forecast}");
    assert_eq!(
        forecast["at_start"], 2,
        "ana and cleo are in their window: {forecast}"
    );
    assert_eq!(
        forecast["waiting"], 1,
        "Kenji's evening is outside his: {forecast}"
    );
    assert_eq!(
        forecast["last_at"], "2026-03-03T00:00:00Z",
        "09:00 in Tokyo"
    );
    assert_eq!(forecast["queued"], 0);
    assert!(statuses(&p).is_empty(), "a forecast writes nothing");
    let table = p
        .tend(&[
            "broadcast",
            "release",
            "--audience",
            "customer.plan == \"pro\"",
            "--now",
            MONDAY,
        ])
        .expect_code(0);
    assert!(
        table.stdout().contains("it reaches 3"),
        "{}",
        table.stdout()
    );
    assert!(
        table.stdout().contains("run it again with --yes"),
        "{}",
        table.stdout()
    );

    let sent = broadcast(&p, &["--yes"]);
    assert_eq!(sent["queued"], 3, "{sent}");
    let done = tick(&p, MONDAY);
    assert_eq!(done["sent"], 2, "{done}");
    assert_eq!(
        statuses(&p),
        [
            ("ana".to_owned(), "sent".to_owned()),
            ("cleo".to_owned(), "sent".to_owned()),
            ("kenji".to_owned(), "planned".to_owned())
        ]
    );
    let done = tick(&p, "2026-03-03T00:00:00Z");
    assert_eq!(done["sent"], 1, "Kenji's morning: {done}");
    // A repeated run sends nobody a second copy.
    let again = broadcast(&p, &["--yes"]);
    assert_eq!(
        (again["already"].clone(), again["queued"].clone()),
        (3.into(), 0.into()),
        "{again}"
    );

    // Cleo leaves the category by the link in her copy.
    let messages = json(
        &p.tend(&["messages", "--customer", "cleo", "--format", "json"])
            .expect_code(0),
    );
    let header_id = messages[0]["message_id"].as_str().unwrap().to_owned();
    assert_eq!(messages[0]["playbook"], "broadcast");
    assert_eq!(messages[0]["step"], "release");
    let mail = String::from_utf8(sent_eml(&p, &header_id)).unwrap();
    assert!(mail.contains("version 3 is out"), "{mail}");
    let unsubscribe = mail
        .split(['<', '>', ' ', '\r', '\n', ':'])
        .find(|part| part.starts_with("success+u-"))
        .unwrap()
        .to_owned();
    p.file(
        "stop.eml",
        format!("From: cleo@example.com\r\nTo: {unsubscribe}\r\nSubject: unsubscribe\r\nMessage-ID: <s1@example.com>\r\nDate: Tue, 03 Mar 2026 12:00:00 +0000\r\n\r\nunsubscribe\r\n"),
    );
    p.tend(&["inbound", "stop.eml", "--now", "2026-03-03T12:00:00Z"])
        .expect_code(0);

    // A second broadcast a day later: the cap (one a week) holds it for
    // those who had the first; Cleo left, so she is not mailed.
    let price = json(
        &p.tend(&[
            "broadcast",
            "release",
            "--audience",
            "customer.plan == \"pro\"",
            "--id",
            "price-2026",
            "--now",
            "2026-03-03T13:00:00Z",
            "--format",
            "json",
            "--yes",
        ])
        .expect_code(0),
    );
    assert_eq!(price["suppressed"], 1, "{price}");
    assert_eq!(price["reaches"], 2, "{price}");
    assert_eq!(price["at_start"], 0, "the cap holds both: {price}");
    assert_eq!(
        price["first_at"], "2026-03-09T10:00:00Z",
        "a week after Ana's first: {price}"
    );
    assert_eq!(price["queued"], 2);
    let done = tick(&p, "2026-03-04T10:00:00Z");
    assert_eq!(done["sent"], 0, "held by the cap: {done}");
}

#[test]
fn a_broadcast_reaches_its_audience_by_the_rules_on_sqlite() {
    a_broadcast_reaches_its_audience_by_the_rules(None);
}

#[tokio::test]
async fn a_broadcast_reaches_its_audience_by_the_rules_on_postgres() {
    on_fresh_postgres(|url| a_broadcast_reaches_its_audience_by_the_rules(Some(url))).await;
}

#[test]
fn a_bad_broadcast_is_named_and_sends_nothing() {
    let p = project(None);
    let refused = |args: &[&str], code: i32, words: &str| {
        let mut all = vec!["broadcast"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--now", MONDAY, "--yes"]);
        let run = p.tend(&all).expect_code(code);
        assert!(
            run.stderr().contains(words),
            "{words:?} not in:\n{}",
            run.stderr()
        );
    };
    refused(&["relase", "--audience", "true"], 1, "relase");
    refused(
        &["release", "--audience", "true", "--category", "news"],
        1,
        "category \"news\" is not configured; add a [[category]] named \"news\"",
    );
    refused(
        &[
            "release",
            "--audience",
            "customer.plan ==",
            "--category",
            "tips",
        ],
        1,
        "--audience",
    );
    refused(
        &[
            "release",
            "--audience",
            "true",
            "--category",
            "tips",
            "--at",
            "2026-03-01T00:00:00Z",
        ],
        1,
        "has passed",
    );
    refused(
        &[
            "release",
            "--audience",
            "true",
            "--category",
            "tips",
            "--id",
            "a b",
        ],
        1,
        "cannot name a broadcast",
    );
    refused(
        &["release", "--audience", "true", "--kind", "incident"],
        2,
        "tend incident open",
    );
    assert!(statuses(&p).is_empty(), "nothing was written");
}
