//! Polling a reply mailbox on a real IMAP server (dovecot): each message is
//! fetched once, marked, and never taken twice, across restarts and even
//! when its mark is lost; mail to a message's unsubscribe address in the
//! same mailbox unsubscribes.

mod common;

use std::path::Path;
use tend::domain::message::MessageId;
use tend::store::Responses;
use tend::store::Upkeep;

use common::imap::{Dovecot, PASSWORD, USER};
use common::{Project, json, tick};

const PLAYBOOK: &str = r#"
name = "onboarding"
kind = "checkin"
category = "onboarding"

[[step]]
id = "welcome"
template = "welcome"
anchor = "signup_at"
after = "1d"
"#;

fn project(imap_port: u16, password: &str) -> Project {
    let p = Project::new(&format!(
        "[mail]\ntransport = \"file\"\n[mail.file]\ndir = \"outbox\"\n\
         [inbound.imap]\nhost = \"127.0.0.1\"\nport = {imap_port}\nusername = \"{USER}\"\npassword = \"{password}\"\n"
    ));
    std::fs::create_dir_all(p.path().join("config/playbooks")).unwrap();
    std::fs::create_dir_all(p.path().join("templates")).unwrap();
    p.file(
        "templates/welcome.md.hbs",
        "+++\nsubject = \"Welcome\"\n+++\nHi {{customer.first_name}}.\n",
    );
    p.file("config/playbooks/onboarding.toml", PLAYBOOK);
    p.file(
        "customers.csv",
        "id,email,name,signup_at\nana,ana@example.com,Ana Lima,2026-03-02T08:00:00Z\n",
    );
    p.tend(&["import", "customers", "customers.csv"])
        .expect_code(0);
    p
}

/// A corpus fixture answering Ana's message.
fn answering(p: &Project, fixture: &str) -> Vec<u8> {
    let all = json(&p.tend(&["messages", "--format", "json"]).expect_code(0));
    let message_id = all[0]["message_id"].as_str().unwrap();
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/inbound")
            .join(fixture),
    )
    .unwrap();
    text.replace("{{MESSAGE_ID}}", message_id)
        .replace("{{REPLY_TO}}", "success@acme.example")
        .into_bytes()
}

fn responses(p: &Project) -> Vec<String> {
    let all = json(&p.tend(&["responses", "--format", "json"]).expect_code(0));
    all.as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn each_message_is_taken_once_and_marked() {
    let imap = Dovecot::start();
    let p = project(imap.port(), PASSWORD);
    // The first tick sends Ana's welcome; the mailbox is empty.
    let first = p
        .tend(&["tick", "--now", "2026-03-03T10:00:00Z"])
        .expect_code(0);
    assert!(
        first.stderr().contains("took 0 message(s)"),
        "{}",
        first.stderr()
    );

    imap.deliver(&answering(&p, "reply_outlook.eml"));
    imap.deliver(&answering(&p, "exim_legacy_bounce.eml"));
    let second = p
        .tend(&["tick", "--now", "2026-03-03T11:00:00Z"])
        .expect_code(0);
    assert!(
        second.stderr().contains("took 2 message(s)"),
        "{}\n{}",
        second.stderr(),
        imap.log()
    );
    assert_eq!(responses(&p), ["reply", "bounce"]);
    for flags in imap.flags() {
        assert!(
            flags.contains("$TendTaken") && flags.contains("\\Seen"),
            "{flags}"
        );
    }

    // A restart (a new process) and another poll: nothing again.
    tick(&p, "2026-03-03T12:00:00Z");
    assert_eq!(responses(&p).len(), 2);

    // Marks lost (a crash between recording and marking): fetched again,
    // recorded no second time, marked again.
    imap.unflag("$TendTaken \\Seen");
    let again = p
        .tend(&["tick", "--now", "2026-03-03T13:00:00Z"])
        .expect_code(0);
    assert!(
        again.stderr().contains("took 0 message(s)"),
        "{}",
        again.stderr()
    );
    assert_eq!(responses(&p).len(), 2);
    assert!(imap.flags().iter().all(|f| f.contains("$TendTaken")));

    // New mail is taken on its own.
    imap.deliver(&answering(&p, "gmail_vacation.eml"));
    tick(&p, "2026-03-03T14:00:00Z");
    assert_eq!(responses(&p), ["reply", "bounce", "auto_reply"]);
}

#[test]
fn a_refused_login_is_a_clear_error() {
    let imap = Dovecot::start();
    let p = project(imap.port(), "wrong");
    let run = p
        .tend(&["tick", "--now", "2026-03-03T10:00:00Z"])
        .expect_code(1);
    assert!(
        run.stderr().contains("refused the login of replies"),
        "{}",
        run.stderr()
    );
    assert!(
        run.stderr()
            .contains("check inbound.imap.username and the password")
    );
}

#[test]
fn the_daemon_polls_the_mailbox_on_its_own() {
    let imap = Dovecot::start();
    let p = project(imap.port(), PASSWORD);
    tick(&p, "2026-03-03T10:00:00Z");
    imap.deliver(&answering(&p, "reply_outlook.eml"));
    let port = common::free_port();
    let _d = common::daemon::Daemon::start(&p, port, &[("TEND__SCHEDULE__INBOUND_EVERY", "1s")]);
    let started = std::time::Instant::now();
    while responses(&p).is_empty() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{}",
            imap.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(responses(&p), ["reply"]);
    // The mail is marked taken after its reply is recorded.
    while !imap.flags()[0].contains("$TendTaken") {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{:?}\n{}",
            imap.flags(),
            imap.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The welcome's id and the address of its `List-Unsubscribe` mailto.
fn unsubscribe_address(p: &Project) -> (String, String) {
    let all = json(&p.tend(&["messages", "--format", "json"]).expect_code(0));
    let message_id = all[0]["message_id"].as_str().unwrap();
    let eml = common::sent_eml(p, message_id);
    let parsed = mail_parser::MessageParser::default().parse(&eml).unwrap();
    let header = parsed.header_raw("List-Unsubscribe").unwrap();
    let address = header
        .split(',')
        .find_map(|part| part.trim().strip_prefix("<mailto:")?.split('?').next())
        .unwrap()
        .to_owned();
    (all[0]["id"].as_str().unwrap().to_owned(), address)
}

#[test]
fn mail_to_the_unsubscribe_address_unsubscribes_through_the_mailbox() {
    let imap = Dovecot::start();
    let p = project(imap.port(), PASSWORD);
    tick(&p, "2026-03-03T10:00:00Z");
    let (message, unsubscribe_to) = unsubscribe_address(&p);
    let request = String::from_utf8(answering(&p, "unsubscribe_gmail.eml"))
        .unwrap()
        .replace("{{UNSUBSCRIBE_TO}}", &unsubscribe_to);
    imap.deliver(request.as_bytes());
    imap.deliver(&answering(&p, "reply_outlook.eml"));
    let polled = p
        .tend(&["tick", "--now", "2026-03-03T11:00:00Z"])
        .expect_code(0);
    assert!(
        polled.stderr().contains("took 2 message(s)"),
        "{}\n{}",
        polled.stderr(),
        imap.log()
    );
    let all = json(&p.tend(&["responses", "--format", "json"]).expect_code(0));
    let kinds: Vec<(&str, &str)> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["kind"].as_str().unwrap(), r["source"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [("unsubscribe", "mailto"), ("reply", "imap")],
        "{all:#}"
    );
    assert_eq!(all[0]["value"], "onboarding");
    assert_eq!(all[0]["message_id"], message.as_str());

    let id = message.parse::<MessageId>().unwrap();
    let suppressed = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = p.store().await;
        let suppressed = store.subscriptions(id).await.unwrap().unwrap();
        store.close().await;
        suppressed
    });
    assert_eq!(suppressed.len(), 1, "{suppressed:?}");
    assert_eq!(
        (
            suppressed[0].category.as_str(),
            suppressed[0].source.as_str()
        ),
        ("onboarding", "mailto")
    );
}
