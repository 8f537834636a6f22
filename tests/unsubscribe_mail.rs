//! The `mailto:` of `List-Unsubscribe` works: mail to a message's
//! unsubscribe address (any subject, any body) leaves that message's
//! category as the one-click POST does, through `tend inbound` on both
//! stores and the inbound webhook over a real socket; it is never a reply,
//! an altered address records nothing, and a reply to Reply-To is still a
//! reply. (IMAP polling is in `tests/imap.rs`.)

mod common;

use std::path::Path;

use common::daemon::Daemon;
use common::{Project, free_port, json, tick};
use serde_json::Value;
use tend::domain::message::MessageId;
use tend::store::{Responses, Upkeep};

const PLAYBOOK: &str = r#"
name = "onboarding"
kind = "checkin"
category = "onboarding"

[[step]]
id = "welcome"
template = "welcome"
anchor = "signup_at"
after = "1d"

[[step]]
id = "follow-up"
template = "welcome"
anchor = "signup_at"
after = "3d"
"#;

const CUSTOMERS: &str = "\
id,email,name,timezone,signup_at
ana,ana@example.com,Ana Lima,UTC,2026-03-02T08:00:00Z
bo,bo@example.org,Bo Berg,UTC,2026-03-02T08:00:00Z
";

const TOKEN: &str = "s3cret-token";

fn project(database: Option<&str>) -> Project {
    let mut p = Project::new(&format!(
        "[mail]\ntransport = \"file\"\n[mail.file]\ndir = \"outbox\"\n[http]\napi_token = \"{TOKEN}\"\n"
    ));
    if let Some(url) = database {
        p = p.env("TEND__DATABASE__URL", url);
    }
    std::fs::create_dir_all(p.path().join("config/playbooks")).unwrap();
    std::fs::create_dir_all(p.path().join("templates")).unwrap();
    p.file(
        "templates/welcome.md.hbs",
        "+++\nsubject = \"Welcome, {{customer.first_name}}\"\n+++\nHi {{customer.first_name}}.\n",
    );
    p.file("config/playbooks/onboarding.toml", PLAYBOOK);
    p.file("customers.csv", CUSTOMERS);
    p.tend(&["import", "customers", "customers.csv"])
        .expect_code(0);
    p
}

/// What the sent welcome to `customer` says about itself.
struct Sent {
    /// tend's id of the message.
    id: String,
    message_id: String,
    reply_to: String,
    /// The address of the `mailto:` in `List-Unsubscribe`.
    unsubscribe_to: String,
}

fn sent_to(p: &Project, customer: &str) -> Sent {
    let all = json(&p.tend(&["messages", "--format", "json"]).expect_code(0));
    let m = all
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["customer_id"] == customer && m["status"] == "sent")
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
    let header = parsed.header_raw("List-Unsubscribe").unwrap();
    let unsubscribe_to = header
        .split(',')
        .filter_map(|part| part.trim().strip_prefix("<mailto:")?.strip_suffix('>'))
        .map(|uri| uri.split('?').next().unwrap().to_owned())
        .next()
        .unwrap_or_else(|| panic!("no mailto in {header:?}"));
    Sent {
        id: m["id"].as_str().unwrap().to_owned(),
        message_id,
        reply_to,
        unsubscribe_to,
    }
}

/// A corpus fixture with its placeholders filled.
fn filled(fixture: &str, sent: &Sent, unsubscribe_to: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/inbound")
            .join(fixture),
    )
    .unwrap()
    .replace("{{MESSAGE_ID}}", &sent.message_id)
    .replace("{{REPLY_TO}}", &sent.reply_to)
    .replace("{{UNSUBSCRIBE_TO}}", unsubscribe_to)
}

/// `address` with one hex digit of its token changed.
fn altered(address: &str) -> String {
    let at = address.find('@').unwrap() - 1;
    let mut forged = address.to_owned();
    let was = &address[at..=at];
    forged.replace_range(at..=at, if was == "0" { "1" } else { "0" });
    forged
}

fn responses(p: &Project) -> Value {
    json(&p.tend(&["responses", "--format", "json"]).expect_code(0))
}

fn of_kind<'a>(all: &'a Value, kind: &str) -> Vec<&'a Value> {
    all.as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == kind)
        .collect()
}

fn inbound(p: &Project, name: &str, text: &str, now: &str) -> String {
    p.file(name, text);
    p.tend(&["inbound", name, "--now", now])
        .expect_code(0)
        .stdout()
}

fn mail_to_the_unsubscribe_address_unsubscribes(p: &Project) {
    let sent = tick(p, "2026-03-03T10:00:00Z");
    assert_eq!(sent["sent"], 2, "{sent}");
    let ana = sent_to(p, "ana");
    assert_ne!(ana.unsubscribe_to, ana.reply_to);
    assert!(
        ana.unsubscribe_to.starts_with("success+u-"),
        "{}",
        ana.unsubscribe_to
    );

    // An altered address records nothing for anyone.
    let forged = filled("unsubscribe_gmail.eml", &ana, &altered(&ana.unsubscribe_to))
        .replace("<CAF=", "<forged-CAF=");
    let out = inbound(p, "forged.eml", &forged, "2026-03-03T11:00:00Z");
    assert!(out.contains("altered or forged"), "{out}");
    assert_eq!(responses(p), Value::Array(Vec::new()));

    // A reply to Reply-To is still a reply, and unsubscribes no one.
    let reply = filled("reply_gmail.eml", &ana, "");
    let out = inbound(p, "reply.eml", &reply, "2026-03-03T11:05:00Z");
    assert!(
        out.contains(&format!("a reply to message {} (customer ana)", ana.id)),
        "{out}"
    );

    // What Gmail sends for its unsubscribe button.
    let request = filled("unsubscribe_gmail.eml", &ana, &ana.unsubscribe_to);
    let out = inbound(p, "unsubscribe.eml", &request, "2026-03-03T11:10:00Z");
    assert_eq!(
        out.trim(),
        format!(
            "unsubscribe.eml: an unsubscribe request to message {} (customer ana); unsubscribed from onboarding",
            ana.id
        )
    );
    let all = responses(p);
    assert_eq!(all.as_array().unwrap().len(), 2, "{all:#}");
    let left = of_kind(&all, "unsubscribe");
    assert_eq!(left.len(), 1, "{all:#}");
    assert_eq!(left[0]["source"], "mailto");
    assert_eq!(left[0]["value"], "onboarding");
    assert_eq!(left[0]["customer_id"], "ana");
    assert_eq!(left[0]["message_id"], ana.id.as_str());
    assert_eq!(left[0]["received_at"], "2026-03-03T11:10:00Z");
    let replies = of_kind(&all, "reply");
    assert_eq!(replies.len(), 1, "only the reply to Reply-To: {all:#}");
    assert_eq!(replies[0]["received_at"], "2026-03-03T11:05:00Z");

    // A person's own words, any subject: taken, nothing more to record.
    let again = filled("unsubscribe_by_hand.eml", &ana, &ana.unsubscribe_to);
    let out = inbound(p, "again.eml", &again, "2026-03-04T09:41:00Z");
    assert!(out.contains("unsubscribed from onboarding"), "{out}");
    assert_eq!(responses(p).as_array().unwrap().len(), 2);

    let report = json(&p.tend(&["report", "--format", "json"]).expect_code(0));
    assert_eq!(
        (report["unsubscribes"].as_i64(), report["replies"].as_i64()),
        (Some(1), Some(1)),
        "{report:#}"
    );

    // The follow-up: Ana's is held, with the reason the one-click POST
    // would have given but for where it came from; Bo's goes.
    let later = tick(p, "2026-03-05T10:00:00Z");
    assert_eq!(
        (later["sent"].as_i64(), later["suppressed"].as_i64()),
        (Some(1), Some(1)),
        "{later}"
    );
    let all = json(&p.tend(&["messages", "--format", "json"]).expect_code(0));
    let held: Vec<&Value> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["status"] == "suppressed")
        .collect();
    assert_eq!(held.len(), 1, "{all:#}");
    assert_eq!(held[0]["customer_id"], "ana");
    assert_eq!(held[0]["step"], "follow-up");
    assert_eq!(
        held[0]["reason"],
        "suppressed: the customer unsubscribed from onboarding (mailto)"
    );
}

#[test]
fn mail_to_the_unsubscribe_address_unsubscribes_on_sqlite() {
    mail_to_the_unsubscribe_address_unsubscribes(&project(None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_to_the_unsubscribe_address_unsubscribes_on_postgres() {
    common::on_fresh_postgres(move |url| {
        mail_to_the_unsubscribe_address_unsubscribes(&project(Some(url)))
    })
    .await;
}

#[test]
fn the_inbound_webhook_takes_an_unsubscribe_request() {
    let p = project(None);
    tick(&p, "2026-03-03T10:00:00Z");
    let ana = sent_to(&p, "ana");
    let d = Daemon::start(&p, free_port(), &[]);
    let auth = format!("Bearer {TOKEN}");
    let post = |body: String| {
        d.request(
            "POST",
            "/api/v1/inbound",
            &[
                ("Authorization", auth.as_str()),
                ("Content-Type", "message/rfc822"),
            ],
            body.as_bytes(),
        )
    };

    let forged = filled("unsubscribe_gmail.eml", &ana, &altered(&ana.unsubscribe_to))
        .replace("<CAF=", "<forged-CAF=");
    let refused = post(forged);
    assert_eq!(refused.status, 200, "{}", refused.body);
    assert_eq!(
        refused.json()["customer_id"],
        Value::Null,
        "{}",
        refused.body
    );

    let reply = post(filled("reply_gmail.eml", &ana, ""));
    assert_eq!(reply.json()["classification"], "reply", "{}", reply.body);

    let taken = post(filled("unsubscribe_by_hand.eml", &ana, &ana.unsubscribe_to));
    assert_eq!(taken.status, 200, "{}", taken.body);
    let body = taken.json();
    assert_eq!(body["classification"], "unsubscribe", "{body}");
    assert_eq!(body["customer_id"], "ana");
    assert_eq!(body["message_id"], ana.id.as_str());
    assert_eq!(body["suppressed"], false, "one category, not all mail");
    let metrics = d.get("/metrics").body;
    assert!(
        metrics.contains("tend_responses_total{kind=\"unsubscribe\"} 1"),
        "{metrics}"
    );

    let message = ana.id.parse::<MessageId>().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = p.store().await;
        let suppressed = store.subscriptions(message).await.unwrap().unwrap();
        assert_eq!(suppressed.len(), 1, "{suppressed:?}");
        assert_eq!(
            (
                suppressed[0].category.as_str(),
                suppressed[0].source.as_str(),
                suppressed[0].reason.as_str()
            ),
            (
                "onboarding",
                "mailto",
                "the customer unsubscribed from onboarding (mailto)"
            )
        );
        let kinds: Vec<(String, Option<String>)> = store
            .responses_of(message)
            .await
            .unwrap()
            .into_iter()
            .map(|(kind, value, _)| (kind, value))
            .collect();
        assert_eq!(
            kinds,
            [
                ("reply".to_owned(), None),
                ("unsubscribe".to_owned(), Some("onboarding".to_owned()))
            ]
        );
        let all = store.responses(chrono::DateTime::UNIX_EPOCH).await.unwrap();
        assert_eq!(all.len(), 2, "the forged request recorded nothing: {all:?}");
        assert_eq!(all[1].source, "mailto");
        store.close().await;
    });
}

#[test]
fn a_category_that_cannot_be_left_is_not_left_by_mail_either() {
    let p = project(None);
    let config = std::fs::read_to_string(p.path().join("config/tend.toml")).unwrap();
    p.file(
        "config/tend.toml",
        format!(
            "{config}[delivery]\npriority = [\"onboarding\"]\n[[category]]\nname = \"onboarding\"\ndescription = \"Service notices\"\nunsubscribable = false\n"
        ),
    );
    tick(&p, "2026-03-03T10:00:00Z");
    let ana = sent_to(&p, "ana");
    let request = filled("unsubscribe_gmail.eml", &ana, &ana.unsubscribe_to);
    let out = inbound(&p, "unsubscribe.eml", &request, "2026-03-03T11:00:00Z");
    assert!(
        out.contains("onboarding cannot be unsubscribed from, nothing changed"),
        "{out}"
    );
    assert_eq!(responses(&p), Value::Array(Vec::new()));
    let later = tick(&p, "2026-03-05T10:00:00Z");
    assert_eq!(
        (later["sent"].as_i64(), later["suppressed"].as_i64()),
        (Some(2), Some(0)),
        "{later}"
    );
}
