//! `POST /api/v1/segment` over a real socket, on both stores, replaying
//! the calls Segment's spec documents (identify, group, track, a batch of
//! the HTTP tracking API) and a RudderStack batch: people and accounts are
//! upserted with the traits laid over what is stored, memberships follow
//! group calls, a replayed track adds nothing (its `messageId`), and calls
//! tend does not take are listed, never fatal.

mod common;

use common::daemon::Daemon;
use common::{Project, free_port, json, on_fresh_postgres};

const AUTH: [(&str, &str); 2] = [
    ("Authorization", "Bearer s3cret-token"),
    ("Content-Type", "application/json"),
];

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("tests/fixtures/segment/{name}")),
    )
    .unwrap()
}

fn project(database: Option<&str>) -> Project {
    let mut p = Project::new(
        "[http]\napi_token = \"s3cret-token\"\n[security]\nsecret = \"a-signing-key-of-more-than-thirty-two-bytes\"\n",
    );
    if let Some(url) = database {
        p = p.env("TEND__DATABASE__URL", url);
    }
    std::fs::create_dir_all(p.path().join("config/playbooks")).unwrap();
    std::fs::create_dir_all(p.path().join("templates")).unwrap();
    p
}

fn post(d: &Daemon, body: &[u8]) -> (u16, serde_json::Value) {
    let reply = d.request("POST", "/api/v1/segment", &AUTH, body);
    (reply.status, reply.json())
}

fn show(p: &Project, what: &str, id: &str) -> serde_json::Value {
    json(
        &p.tend(&[what, "show", id, "--format", "json"])
            .expect_code(0),
    )
}

fn segment_calls_feed_people_accounts_and_events(database: Option<&str>) {
    let p = project(database);
    let d = Daemon::start(&p, free_port(), &[]);

    let refused = d.request("POST", "/api/v1/segment", &[], &fixture("identify.json"));
    assert_eq!(refused.status, 401);

    let (status, answer) = post(&d, &fixture("identify.json"));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["written"], 1);
    let peter = show(&p, "customer", "97980cfea0067");
    let record = &peter["customer"];
    assert_eq!(record["email"], "peter@example.com");
    assert_eq!(record["name"], "Peter Gibbons");
    assert_eq!(record["plan"], "premium");
    assert_eq!(record["attributes"]["logins"], 5);
    assert_eq!(record["attributes"]["address"]["city"], "San Francisco");

    let (status, answer) = post(&d, &fixture("group.json"));
    assert_eq!(status, 200, "{answer}");
    let initech = show(&p, "account", "0e8c78ea9d97a7b8185e8632");
    assert_eq!(initech["account"]["name"], "Initech", "{initech}");
    assert_eq!(initech["account"]["plan"], "enterprise");
    let peter = show(&p, "customer", "97980cfea0067");
    assert_eq!(peter["customer"]["account_id"], "0e8c78ea9d97a7b8185e8632");
    assert_eq!(peter["customer"]["email"], "peter@example.com", "kept");

    // A track, twice: one event.
    for _ in 0..2 {
        let (status, answer) = post(&d, &fixture("track.json"));
        assert_eq!(status, 200, "{answer}");
    }
    let peter = show(&p, "customer", "97980cfea0067");
    let events = peter["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{peter}");
    assert_eq!(
        events[0]["name"], "course_clicked",
        "Segment's names in snake case"
    );
    assert_eq!(events[0]["properties"]["title"], "Intro to Analytics");
    assert_eq!(events[0]["occurred_at"], "2015-12-12T19:11:01.249Z");

    // Only the traits that changed: the rest stays.
    let (status, _) = post(
        &d,
        br#"{"type": "identify", "userId": "97980cfea0067", "traits": {"plan": "enterprise"}}"#,
    );
    assert_eq!(status, 200);
    let peter = show(&p, "customer", "97980cfea0067");
    assert_eq!(peter["customer"]["plan"], "enterprise");
    assert_eq!(peter["customer"]["email"], "peter@example.com");
    assert_eq!(peter["customer"]["attributes"]["logins"], 5);

    // A batch of the HTTP tracking API: what tend does not use is listed.
    let (status, answer) = post(&d, &fixture("batch.json"));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["written"], 3, "{answer}");
    let skipped: Vec<u64> = answer["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["call"].as_u64().unwrap())
        .collect();
    assert_eq!(skipped, [4, 5], "{answer}");
    let jake = show(&p, "customer", "019mr8mf4r");
    assert_eq!(jake["customer"]["account_id"], "8e9df332ac");
    assert_eq!(jake["events"][0]["name"], "song_played");
    let (_, again) = post(&d, &fixture("batch.json"));
    assert_eq!(
        show(&p, "customer", "019mr8mf4r")["events"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "{again}"
    );

    // RudderStack's batch: a name in parts, the company trait, the locale.
    let (status, answer) = post(&d, &fixture("rudderstack.json"));
    assert_eq!(status, 200, "{answer}");
    let mia = show(&p, "customer", "mia-1");
    assert_eq!(mia["customer"]["name"], "Mia Wong");
    assert_eq!(mia["customer"]["account_id"], "globex");
    assert_eq!(mia["customer"]["locale"], "en-US");
    assert_eq!(mia["events"][0]["properties"]["viewers"], 4);

    // A new person without an email is refused by number; the rest is kept.
    let (status, answer) = post(
        &d,
        br#"[{"type": "identify", "userId": "nobody", "traits": {"plan": "pro"}},
             {"type": "track", "userId": "mia-1", "event": "Logged In", "messageId": "m-9", "timestamp": "2020-02-03T09:00:00Z"}]"#,
    );
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["refused"][0]["call"], 1);
    assert!(
        answer["refused"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("email is missing"),
        "{answer}"
    );
    assert_eq!(answer["written"], 1);
    let (status, answer) = post(&d, b"{not json");
    assert_eq!(status, 400, "{answer}");
}

#[test]
fn segment_calls_feed_people_accounts_and_events_on_sqlite() {
    segment_calls_feed_people_accounts_and_events(None);
}

#[tokio::test]
async fn segment_calls_feed_people_accounts_and_events_on_postgres() {
    on_fresh_postgres(|url| segment_calls_feed_people_accounts_and_events(Some(url))).await;
}
