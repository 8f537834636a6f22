//! The read API's lists over a real socket, on both stores: messages and
//! responses a page at a time, with a cursor that neither skips nor
//! repeats a row while new ones arrive; suppressions listed and lifted
//! with who and why, by the API and by `tend suppressions`; every bad
//! parameter answered with what is wrong.

mod common;

use common::daemon::{Daemon, Reply};
use common::{Project, free_port, json, on_fresh_postgres, sent_eml, tick};

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

const AUTH: [(&str, &str); 2] = [
    ("Authorization", "Bearer s3cret-token"),
    ("Content-Type", "application/json"),
];

fn project(database: Option<&str>) -> Project {
    let config = "[company]\nname = \"Acme\"\n[mail]\nfrom = \"Acme Success <success@acme.example>\"\nreply_to = \"success@acme.example\"\n[mail.file]\ndir = \"outbox\"\n\
                  [http]\napi_token = \"s3cret-token\"\n\
                  [delivery]\nwindow = { days = \"mon-sun\", start = \"00:00\", end = \"23:59\" }\n";
    let mut p = Project::new(config);
    if let Some(url) = database {
        p = p.env("TEND__DATABASE__URL", url);
    }
    std::fs::create_dir_all(p.path().join("config/playbooks")).unwrap();
    std::fs::create_dir_all(p.path().join("templates")).unwrap();
    p.file("config/playbooks/checkin.toml", PLAYBOOK);
    p.file("templates/first.md.hbs", TEMPLATE);
    p.file(
        "contacts.csv",
        "id,email,name,signup_at\n\
         hank,hank@globex.example,Hank Scorpio,2026-03-01T08:00:00Z\n\
         solo,solo@example.com,Sol Oakes,2026-03-01T08:00:00Z\n",
    );
    p.tend(&["import", "customers", "contacts.csv"])
        .expect_code(0);
    p
}

/// The reply and unsubscribe addresses of the message sent to `customer`.
fn addresses(p: &Project, customer: &str) -> (String, String, String) {
    let messages = json(
        &p.tend(&["messages", "--customer", customer, "--format", "json"])
            .expect_code(0),
    );
    let header_id = messages[0]["message_id"].as_str().unwrap().to_owned();
    let sent = String::from_utf8(sent_eml(p, &header_id)).unwrap();
    let find = |unsubscribe: bool| {
        sent.split(['<', '>', ' ', '\r', '\n', ':'])
            .find(|part| {
                part.starts_with("success+") && part.starts_with("success+u-") == unsubscribe
            })
            .unwrap()
            .to_owned()
    };
    (header_id, find(false), find(true))
}

fn mail(from: &str, to: &str, id: &str, in_reply_to: &str, text: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: Re: How is it going?\r\nMessage-ID: <{id}>\r\nIn-Reply-To: <{in_reply_to}>\r\nDate: Tue, 03 Mar 2026 12:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
    )
    .into_bytes()
}

/// Every row of a list, following `next_cursor` from `path` (which has a
/// query) `limit` at a time: the rows and the last cursor.
fn read_all(d: &Daemon, path: &str, limit: u32) -> (Vec<serde_json::Value>, String) {
    let mut rows = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = ok(d.request(
            "GET",
            &format!("{path}&limit={limit}&cursor={cursor}"),
            &AUTH,
            b"",
        ));
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= limit as usize, "{page}");
        rows.extend(data.iter().cloned());
        cursor = page["next_cursor"].as_str().unwrap().to_owned();
        if page["has_more"] == false {
            return (rows, cursor);
        }
    }
}

fn ok(reply: Reply) -> serde_json::Value {
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

/// A 400 (or `status`) whose error names `words`.
fn refused(reply: Reply, status: u16, words: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    let error = reply.json()["error"].as_str().unwrap().to_owned();
    assert!(error.contains(words), "{error:?} should say {words:?}");
}

fn lists_read_page_by_page_and_suppressions_lift(database: Option<&str>) {
    let p = project(database);
    let done = tick(&p, "2026-03-03T10:00:00Z");
    assert_eq!(done["sent"], 2, "{done}");
    let (hank_sent, hank_reply, _) = addresses(&p, "hank");
    let (solo_sent, _, solo_unsubscribe) = addresses(&p, "solo");
    p.file(
        "reply.eml",
        mail(
            "Hank Scorpio <hank@globex.example>",
            &hank_reply,
            "r1@globex.example",
            &hank_sent,
            "All good, thanks",
        ),
    );
    p.tend(&["inbound", "reply.eml", "--now", "2026-03-03T12:00:00Z"])
        .expect_code(0);
    p.file(
        "stop.eml",
        mail(
            "solo@example.com",
            &solo_unsubscribe,
            "u1@example.com",
            &solo_sent,
            "unsubscribe",
        ),
    );
    p.tend(&["inbound", "stop.eml", "--now", "2026-03-03T12:01:00Z"])
        .expect_code(0);

    let d = Daemon::start(&p, free_port(), &[]);
    // Messages, one a page, are what `tend messages` lists, each once.
    let (messages, _) = read_all(&d, "/api/v1/messages?", 1);
    let listed = json(&p.tend(&["messages", "--format", "json"]).expect_code(0));
    let mut api_ids: Vec<&str> = messages.iter().map(|m| m["id"].as_str().unwrap()).collect();
    let mut cli_ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    api_ids.sort_unstable();
    cli_ids.sort_unstable();
    assert_eq!(api_ids, cli_ids);
    assert_eq!(messages[0]["status"], "sent");
    let (hanks, _) = read_all(&d, "/api/v1/messages?status=sent&customer=hank", 5);
    assert_eq!(hanks.len(), 1);
    assert_eq!(hanks[0]["to"], "hank@globex.example");
    let (none, _) = read_all(&d, "/api/v1/messages?since=2026-03-04T00:00:00Z", 5);
    assert!(none.is_empty(), "nothing changed since: {none:?}");

    // Responses; one more arrives after the reader reached the end.
    let (responses, end) = read_all(&d, "/api/v1/responses?", 1);
    let kinds: Vec<&str> = responses
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["reply", "unsubscribe"]);
    assert_eq!(responses[0]["comment"], "All good, thanks");
    let again = mail(
        "Hank Scorpio <hank@globex.example>",
        &hank_reply,
        "r2@globex.example",
        &hank_sent,
        "One more thing",
    );
    let taken = d.request("POST", "/api/v1/inbound", &AUTH, &again);
    assert_eq!(taken.status, 200, "{}", taken.body);
    let next = ok(d.request(
        "GET",
        &format!("/api/v1/responses?cursor={end}"),
        &AUTH,
        b"",
    ));
    assert_eq!(next["data"].as_array().unwrap().len(), 1, "{next}");
    assert_eq!(next["data"][0]["comment"], "One more thing");
    let later = ok(d.request(
        "GET",
        "/api/v1/responses?since=2026-03-03T12:00:30Z",
        &AUTH,
        b"",
    ));
    assert_eq!(
        later["data"].as_array().unwrap().len(),
        2,
        "the unsubscribe and the new reply: {later}"
    );

    // What is wrong with a request is said.
    refused(
        d.request("GET", "/api/v1/messages?status=lost", &AUTH, b""),
        400,
        "status",
    );
    refused(
        d.request("GET", "/api/v1/messages?cursor=abc", &AUTH, b""),
        400,
        "next_cursor",
    );
    refused(
        d.request("GET", "/api/v1/messages?limit=5000", &AUTH, b""),
        400,
        "1 to 1000",
    );
    refused(
        d.request("GET", "/api/v1/messages?statsu=sent", &AUTH, b""),
        400,
        "statsu",
    );
    refused(
        d.request("GET", "/api/v1/responses?since=yesterday", &AUTH, b""),
        400,
        "RFC 3339",
    );
    refused(
        d.request("GET", "/api/v1/suppressions?cursor=nocolon", &AUTH, b""),
        400,
        "CATEGORY:CUSTOMER_ID",
    );
    refused(
        d.request(
            "GET",
            "/api/v1/messages?since=2026-03-04T00:00:00+01:00",
            &AUTH,
            b"",
        ),
        400,
        "%2B",
    );
    let (all_again, _) = read_all(&d, "/api/v1/messages?status=&customer=&since=", 10);
    assert_eq!(all_again.len(), 2, "an empty parameter is no filter");
    for path in [
        "/api/v1/messages",
        "/api/v1/responses",
        "/api/v1/suppressions",
    ] {
        assert_eq!(d.request("GET", path, &[], b"").status, 401, "{path}");
    }

    // Suppressions: listed, then lifted with who and why.
    let listed = ok(d.request("GET", "/api/v1/suppressions", &AUTH, b""));
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");
    let suppression = &listed["data"][0];
    assert_eq!(suppression["email"], "solo@example.com");
    assert_eq!(suppression["source"], "mailto");
    let id = suppression["id"].as_str().unwrap().to_owned();
    assert!(id.ends_with(":solo"), "{id}");
    let path = format!("/api/v1/suppressions/{}", id.replace('*', "%2A"));
    refused(d.request("DELETE", &path, &AUTH, b""), 422, "\"by\"");
    refused(
        d.request("DELETE", &path, &AUTH, br#"{"by": "maria", "reason": " "}"#),
        422,
        "why",
    );
    assert_eq!(
        d.request("DELETE", &path, &[], br#"{"by": "maria", "reason": "x"}"#)
            .status,
        401
    );
    let lifted = ok(d.request(
        "DELETE",
        &path,
        &AUTH,
        br#"{"by": "maria", "reason": "asked by phone to hear from us again"}"#,
    ));
    assert_eq!(lifted["lifted_by"], "maria");
    assert_eq!(lifted["source"], "mailto");
    refused(
        d.request(
            "DELETE",
            &path,
            &AUTH,
            br#"{"by": "maria", "reason": "again"}"#,
        ),
        404,
        "no suppression has id",
    );
    let left = ok(d.request("GET", "/api/v1/suppressions", &AUTH, b""));
    assert!(left["data"].as_array().unwrap().is_empty(), "{left}");
    drop(d);

    let export = json(&p.tend(&["customer", "export", "solo"]).expect_code(0));
    assert_eq!(
        export["lifted_suppressions"][0]["why"],
        "asked by phone to hear from us again"
    );

    // The same by hand: `tend suppressions`.
    p.file(
        "stop2.eml",
        mail(
            "solo@example.com",
            &solo_unsubscribe,
            "u2@example.com",
            &solo_sent,
            "unsubscribe",
        ),
    );
    p.tend(&["inbound", "stop2.eml", "--now", "2026-03-05T12:00:00Z"])
        .expect_code(0);
    let shown = p.tend(&["suppressions"]).expect_code(0);
    assert!(
        shown.stdout().contains("solo@example.com"),
        "{}",
        shown.stdout()
    );
    let shown = p
        .tend(&["suppressions", "--customer", "solo"])
        .expect_code(0);
    assert!(
        shown.stdout().contains("solo@example.com"),
        "{}",
        shown.stdout()
    );
    let listed = json(
        &p.tend(&[
            "suppressions",
            "list",
            "--customer",
            "solo",
            "--format",
            "json",
        ])
        .expect_code(0),
    );
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let unknown = p
        .tend(&[
            "suppressions",
            "lift",
            "tips:solo",
            "--reason",
            "x",
            "--by",
            "ana",
        ])
        .expect_code(1);
    assert!(
        unknown.stderr().contains("no suppression has id tips:solo"),
        "{}",
        unknown.stderr()
    );
    let malformed = p
        .tend(&[
            "suppressions",
            "lift",
            "solo",
            "--reason",
            "x",
            "--by",
            "ana",
        ])
        .expect_code(2);
    assert!(
        malformed.stderr().contains("CATEGORY:CUSTOMER_ID"),
        "{}",
        malformed.stderr()
    );
    let lifted = p
        .tend(&[
            "suppressions",
            "lift",
            &id,
            "--reason",
            "asked at the conference",
            "--by",
            "ana",
        ])
        .expect_code(0);
    assert!(lifted.stdout().contains("by ana"), "{}", lifted.stdout());
    let listed = json(
        &p.tend(&["suppressions", "list", "--format", "json"])
            .expect_code(0),
    );
    assert!(listed.as_array().unwrap().is_empty(), "{listed}");
    let export = json(&p.tend(&["customer", "export", "solo"]).expect_code(0));
    assert_eq!(
        export["lifted_suppressions"][1]["lifted_by"], "ana",
        "{export}"
    );
}

#[test]
fn lists_read_page_by_page_and_suppressions_lift_on_sqlite() {
    lists_read_page_by_page_and_suppressions_lift(None);
}

#[tokio::test]
async fn lists_read_page_by_page_and_suppressions_lift_on_postgres() {
    on_fresh_postgres(|url| lists_read_page_by_page_and_suppressions_lift(Some(url))).await;
}
