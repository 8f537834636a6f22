//! Mail sent as an account's owner (`from = "owner"`), through a real SMTP
//! server, on both stores: the From name is the owner's at the company and
//! the address stays the configured one, so the DKIM signature (checked by
//! dkimpy) is still the domain's; Reply-To reaches the owner and the
//! address that matches replies (read by Python's strict `email` parser);
//! templates see `account.*` and `sender.*`, and the owner's signature
//! closes the letter; an account without an owner, and a person without an
//! account, get the configured sender. A reply to the owner's mail is
//! matched to its message.

mod common;

use common::dkim::{self, KeyForm};
use common::smtp::{Received, SmtpSink};
use common::{Project, json, on_fresh_postgres, tick};

const NAME: &str = "tend._domainkey.acme.example";

const PLAYBOOK: &str = r#"
name = "renewal"
kind = "reminder"
category = "checkins"
from = "owner"
audience = 'account.plan != "free"'

[[step]]
id = "heads-up"
template = "renewal"
anchor = "signup_at"
after = "1d"
"#;

const TEMPLATE: &str = "+++\nsubject = \"{{account.name}} renews soon, {{customer.first_name}}\"\n+++\nHi {{customer.first_name}},\n\nI look after {{account.name}} ({{account.contacts}} people on the {{account.plan}} plan).\n{{#if account.owner}}Write to me at {{account.owner.email}} any time.{{/if}}\n\nThis note comes from {{sender.name}}.\n";

const ACCOUNTS: &str = "\
id,name,plan,owner
globex,Globex,enterprise,maria
initech,Initech,team,
";

const CONTACTS: &str = "\
id,email,name,account_id,roles[],signup_at
hank,hank@globex.example,Hank Scorpio,globex,admin,2026-03-02T08:00:00Z
homer,homer@globex.example,Homer Simpson,globex,technical,2026-03-02T08:00:00Z
peter,peter@initech.example,Peter Gibbons,initech,billing,2026-03-02T08:00:00Z
solo,solo@example.com,Sol Oakes,,,2026-03-02T08:00:00Z
";

fn project(smtp_port: u16, key: &dkim::TestKey, database: Option<&str>) -> Project {
    let config = format!(
        r#"[company]
name = "Acme"
[mail]
from = "Acme Success <success@acme.example>"
reply_to = "success@acme.example"
transport = "smtp"
[mail.smtp]
host = "127.0.0.1"
port = {smtp_port}
timeout = "5s"
[mail.dkim]
selector = "tend"
domain = "acme.example"
private_key_file = "{}"
algorithm = "rsa"
[delivery]
window = {{ days = "mon-sun", start = "00:00", end = "23:59" }}
[[team]]
id = "maria"
name = "Maria Costa"
email = "maria@acme.example"
signature = "Maria Costa · Customer Success, **Acme Cloud**"
"#,
        key.file.display()
    );
    let mut p = Project::new(&config);
    if let Some(url) = database {
        p = p.env("TEND__DATABASE__URL", url);
    }
    std::fs::create_dir_all(p.path().join("config/playbooks")).unwrap();
    std::fs::create_dir_all(p.path().join("templates")).unwrap();
    p.file("config/playbooks/renewal.toml", PLAYBOOK);
    p.file("templates/renewal.md.hbs", TEMPLATE);
    p.file("accounts.csv", ACCOUNTS);
    p.file("contacts.csv", CONTACTS);
    p.tend(&["check"]).expect_code(0);
    p.tend(&["import", "accounts", "accounts.csv"])
        .expect_code(0);
    p.tend(&["import", "customers", "contacts.csv"])
        .expect_code(0);
    p
}

fn to(received: &[Received], address: &str) -> Received {
    received
        .iter()
        .find(|r| r.to.iter().any(|t| t == address))
        .unwrap_or_else(|| panic!("no mail to {address}"))
        .clone()
}

/// The addresses of the Reply-To header, as Python's strict parser reads
/// them (python3 is there: the DKIM check installed it).
fn reply_to_addresses(raw: &[u8], dir: &std::path::Path) -> Vec<String> {
    let file = dir.join("owner.eml");
    std::fs::write(&file, raw).unwrap();
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import email, email.policy, sys\n\
             msg = email.message_from_bytes(open(sys.argv[1], 'rb').read(), policy=email.policy.strict)\n\
             for a in msg['Reply-To'].addresses: print(f'{a.display_name}|{a.addr_spec}')\n\
             print('FROM', msg['From'].addresses[0].display_name, msg['From'].addresses[0].addr_spec)\n",
        )
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn mail_goes_out_as_the_owner(database: Option<&str>) {
    let keys = tempfile::tempdir().unwrap();
    let key = dkim::generate(KeyForm::RsaPkcs8, keys.path());
    let sink = SmtpSink::start();
    let p = project(sink.port(), &key, database);
    let done = tick(&p, "2026-03-03T10:00:00Z");
    assert_eq!(done["sent"], 4, "{done}");
    let received = sink.received();

    let hank = to(&received, "hank@globex.example");
    let raw = hank.data.as_bytes();
    // The owner's name at the company, from the configured address: the
    // domain's signature still covers it.
    let verified = dkim::verify(raw, NAME, &key.record);
    assert!(verified.ok, "{}\n{}", verified.error, hank.data);
    assert_eq!(verified.d, "acme.example");
    let read = reply_to_addresses(raw, keys.path());
    assert_eq!(read[0], "Maria Costa|maria@acme.example", "{read:?}");
    assert!(
        read[1].starts_with("Maria Costa at Acme|success+"),
        "{read:?}"
    );
    assert!(read[1].ends_with("@acme.example"), "{read:?}");
    assert_eq!(
        read[2], "FROM Maria Costa at Acme success@acme.example",
        "{read:?}"
    );
    assert_eq!(hank.from, "success@acme.example", "the envelope sender");
    let subject = hank.header("Subject").unwrap();
    assert_eq!(subject, "Globex renews soon, Hank");
    let body = &hank.data;
    assert!(
        body.contains("I look after Globex (2 people on the enterprise plan)."),
        "{body}"
    );
    assert!(
        body.contains("Write to me at maria@acme.example any time."),
        "{body}"
    );
    assert!(body.contains("This note comes from Maria Costa."), "{body}");
    assert!(body.contains("Customer Success, Acme Cloud"), "{body}");
    // Both parts as an independent parser reads them, the HTML with the
    // owner's signature still balanced.
    let eml = keys.path().join("hank.eml");
    std::fs::write(&eml, raw).unwrap();
    let parsed = common::python::strict_mime(&eml);
    assert!(
        parsed.status.success(),
        "Python's strict parser refused the owner's mail:\n{}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    let text = String::from_utf8_lossy(&parsed.stdout);
    assert!(
        text.contains("Maria Costa · Customer Success, Acme Cloud"),
        "{text}"
    );
    assert!(
        body.contains("class=3D\"signature\"") || body.contains("class=\"signature\""),
        "{body}"
    );

    // No owner: the configured sender, and replies only to tend.
    let peter = to(&received, "peter@initech.example");
    let read = reply_to_addresses(peter.data.as_bytes(), keys.path());
    assert_eq!(read.len(), 2, "{read:?}");
    assert!(read[0].starts_with("Acme Success|success+"), "{read:?}");
    assert_eq!(read[1], "FROM Acme Success success@acme.example");
    assert!(
        peter.data.contains("This note comes from Acme Success."),
        "{}",
        peter.data
    );
    assert!(
        !peter.data.contains("class=3D\"signature\"") && !peter.data.contains("-- \r\nMaria"),
        "{}",
        peter.data
    );
    // A person without an account is their own.
    let solo = to(&received, "solo@example.com");
    assert_eq!(
        solo.header("Subject").unwrap(),
        "Sol Oakes renews soon, Sol"
    );
    assert!(
        solo.data.contains("(1 people on the  plan)"),
        "{}",
        solo.data
    );

    // Hank replies to Maria's mail: tend matches it to the message.
    let token_address = read_token_address(&hank);
    let message_id = hank.header("Message-ID").unwrap();
    p.file(
        "reply.eml",
        format!(
            "From: Hank Scorpio <hank@globex.example>\r\nTo: Maria Costa <maria@acme.example>, {token_address}\r\nSubject: Re: {subject}\r\nMessage-ID: <reply-1@globex.example>\r\nIn-Reply-To: {message_id}\r\nDate: Tue, 03 Mar 2026 12:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThanks Maria, we will renew.\r\n"
        ),
    );
    p.tend(&["inbound", "reply.eml", "--now", "2026-03-03T12:00:00Z"])
        .expect_code(0);
    let responses = json(&p.tend(&["responses", "--format", "json"]).expect_code(0));
    let reply = &responses[0];
    assert_eq!(reply["kind"], "reply", "{responses}");
    assert_eq!(reply["customer_id"], "hank");
    let messages = json(
        &p.tend(&["messages", "--customer", "hank", "--format", "json"])
            .expect_code(0),
    );
    assert_eq!(reply["message_id"], messages[0]["id"], "{messages}");
    // Hank's whole history: his account, the message and his reply.
    let timeline = json(
        &p.tend(&["customer", "show", "hank", "--format", "json"])
            .expect_code(0),
    );
    assert_eq!(timeline["customer"]["roles"], serde_json::json!(["admin"]));
    assert_eq!(timeline["account"]["name"], "Globex");
    assert_eq!(timeline["messages"][0]["status"], "sent");
    assert_eq!(timeline["responses"][0]["kind"], "reply");
    assert_eq!(timeline["suppressions"], serde_json::json!([]));
    let table = p
        .tend(&["customer", "show", "hank"])
        .expect_code(0)
        .stdout();
    assert!(table.contains("account   globex Globex"), "{table}");
    let missing = p.tend(&["customer", "show", "nobody"]).expect_code(1);
    assert!(
        missing.stderr().contains("no customer has id \"nobody\""),
        "{}",
        missing.stderr()
    );
}

/// The plus-address of a message's Reply-To that carries its token.
fn read_token_address(mail: &Received) -> String {
    let header = mail.header("Reply-To").unwrap();
    header
        .split(['<', '>'])
        .find(|part| part.starts_with("success+"))
        .unwrap_or_else(|| panic!("no token address in {header}"))
        .to_owned()
}

#[test]
fn mail_goes_out_as_the_owner_on_sqlite() {
    mail_goes_out_as_the_owner(None);
}

#[tokio::test]
async fn mail_goes_out_as_the_owner_on_postgres() {
    on_fresh_postgres(|url| mail_goes_out_as_the_owner(Some(url))).await;
}
