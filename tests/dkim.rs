//! DKIM signatures as an independent verifier (dkimpy) sees them: every
//! key form tend reads (PKCS#8 RSA keys from OpenSSL and opendkim-genkey,
//! PKCS#1, Ed25519 as PKCS#8 or a bare seed) signs mail that verifies,
//! sent through a real SMTP server (planned mail and incident notices, on
//! both stores), written by the file transport, and shown by `tend preview
//! --format eml`; the List-Unsubscribe pair is always among the signed
//! headers; the record `tend check` prints is the one OpenSSL derives; bad
//! keys are refused by `tend check` with the setting named.

mod common;

use common::dkim::{self, KeyForm, TestKey};
use common::smtp::SmtpSink;
use common::{Project, tick};

const NAME: &str = "tend._domainkey.acme.example";

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
"#;

// A name and a subject outside ASCII, and a subject long enough to fold:
// the signer must hash the headers exactly as they are written.
const TEMPLATE: &str = "+++\nsubject = \"Welcome, {{customer.first_name}}: everything you need for a good first week with Acme Cloud\"\n+++\nHi {{customer.first_name}}, see [the guide](https://docs.acme.example/start).\n\nA line with trailing spaces   \n\n{{> survey}}\n";

const CUSTOMERS: &str = "\
id,email,name,timezone,plan,signup_at,region,features[]
zoe,zoe@example.com,Zoë Müller,UTC,pro,2026-03-02T08:00:00Z,eu,api
";

struct Setup<'a> {
    transport: &'a str,
    smtp_port: u16,
    public_url: &'a str,
    database: Option<&'a str>,
}

fn project(setup: &Setup<'_>, form: KeyForm, key: &TestKey) -> Project {
    let config = format!(
        "[mail]\ntransport = \"{}\"\n[mail.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntimeout = \"5s\"\n[mail.file]\ndir = \"outbox\"\n[mail.dkim]\nselector = \"tend\"\ndomain = \"acme.example\"\nprivate_key_file = \"{}\"\nalgorithm = \"{}\"\n[http]\npublic_url = \"{}\"\n",
        setup.transport,
        setup.smtp_port,
        key.file.display(),
        form.algorithm(),
        setup.public_url,
    );
    let mut p = Project::new(&config);
    if let Some(url) = setup.database {
        p = p.env("TEND__DATABASE__URL", url);
    }
    std::fs::create_dir_all(p.path().join("config/playbooks")).unwrap();
    std::fs::create_dir_all(p.path().join("templates")).unwrap();
    p.file("templates/welcome.md.hbs", TEMPLATE);
    p.file("config/playbooks/onboarding.toml", PLAYBOOK);
    p.file("customers.csv", CUSTOMERS);

    // The record check tells the operator to publish is OpenSSL's.
    let checked = p.tend(&["check"]).expect_code(0);
    assert_eq!(
        dkim::published(&checked.stdout()),
        (NAME.to_owned(), key.record.clone()),
        "{form:?}"
    );
    p.tend(&["import", "customers", "customers.csv"])
        .expect_code(0);
    p
}

/// Verifies `message` at dkimpy and checks what the signature covers.
fn assert_verifies(message: &[u8], form: KeyForm, key: &TestKey, what: &str) {
    let v = dkim::verify(message, NAME, &key.record);
    let text = String::from_utf8_lossy(message);
    assert!(
        v.ok,
        "{what} ({form:?}) does not verify: {}\n{text}",
        v.error
    );
    assert_eq!(v.a, format!("{}-sha256", form.algorithm()), "{what}");
    assert_eq!((v.d.as_str(), v.s.as_str()), ("acme.example", "tend"));
    for header in [
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
    ] {
        assert!(
            v.h.iter().any(|h| h == header),
            "{what}: {header} is not signed: {:?}",
            v.h
        );
    }
    // And a change to a signed header breaks it: the verifier is not
    // just saying yes.
    let forged = text.replacen("Subject: ", "Subject: Re: ", 1);
    assert!(
        !dkim::verify(forged.as_bytes(), NAME, &key.record).ok,
        "{what}: a changed subject still verifies"
    );
}

fn has_header(message: &[u8], name: &str) -> bool {
    let text = String::from_utf8_lossy(message);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    head.split("\r\n").any(|l| {
        l.to_ascii_lowercase()
            .starts_with(&format!("{}:", name.to_ascii_lowercase()))
    })
}

fn preview(p: &Project) -> Vec<u8> {
    p.tend(&[
        "preview",
        "welcome",
        "--customer",
        "zoe",
        "--now",
        "2026-03-03T10:00:00Z",
        "--format",
        "eml",
    ])
    .expect_code(0)
    .0
    .stdout
}

#[test]
fn every_key_form_signs_mail_that_verifies_after_smtp() {
    let keys = tempfile::tempdir().unwrap();
    for form in KeyForm::ALL {
        let key = dkim::generate(form, keys.path());
        let sink = SmtpSink::start();
        let p = project(
            &Setup {
                transport: "smtp",
                smtp_port: sink.port(),
                public_url: "https://tend.acme.example",
                database: None,
            },
            form,
            &key,
        );
        assert_eq!(tick(&p, "2026-03-03T10:00:00Z")["sent"], 1, "{form:?}");
        let received = sink.received();
        assert_eq!(received.len(), 1);
        let mail = received[0].data.as_bytes();
        assert!(has_header(mail, "List-Unsubscribe-Post"), "{form:?}");
        assert_verifies(mail, form, &key, "mail received over SMTP");
        assert_verifies(&preview(&p), form, &key, "tend preview --format eml");
    }
}

/// Incident notices (built-in templates) and the resolution, which
/// follows up the opening in its thread (In-Reply-To, References).
fn incident_notices_verify(database: Option<&str>) {
    let keys = tempfile::tempdir().unwrap();
    let form = KeyForm::RsaPkcs8;
    let key = dkim::generate(form, keys.path());
    let sink = SmtpSink::start();
    let p = project(
        &Setup {
            transport: "smtp",
            smtp_port: sink.port(),
            public_url: "https://tend.acme.example",
            database,
        },
        form,
        &key,
    );
    let incident = |args: &[&str], now: &str| {
        let mut all = vec!["incident"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--now", now]);
        p.tend(&all).expect_code(0);
    };
    incident(
        &[
            "open",
            "INC-7",
            "--title",
            "EU API latency",
            "--affects",
            "customer.attributes.region == \"eu\"",
            "--message",
            "Requests to the EU API are slow.",
        ],
        "2026-03-07T03:00:00Z",
    );
    incident(
        &["resolve", "INC-7", "--message", "Latency is normal again."],
        "2026-03-07T05:00:00Z",
    );
    let received = sink.received();
    assert_eq!(received.len(), 2);
    for mail in &received {
        assert_verifies(mail.data.as_bytes(), form, &key, "an incident notice");
    }
    let resolution = received[1].data.as_bytes();
    assert!(has_header(resolution, "In-Reply-To"));
    let v = dkim::verify(resolution, NAME, &key.record);
    assert!(
        v.h.iter().any(|h| h == "in-reply-to") && v.h.iter().any(|h| h == "references"),
        "{:?}",
        v.h
    );
}

#[test]
fn incident_notices_verify_on_sqlite() {
    incident_notices_verify(None);
}

#[tokio::test]
async fn incident_notices_verify_on_postgres() {
    common::on_fresh_postgres(|url| incident_notices_verify(Some(url))).await;
}

#[test]
fn files_and_previews_verify_and_plain_http_gets_no_one_click() {
    let keys = tempfile::tempdir().unwrap();
    for form in [KeyForm::RsaPkcs8, KeyForm::Ed25519Pkcs8] {
        let key = dkim::generate(form, keys.path());
        let p = project(
            &Setup {
                transport: "file",
                smtp_port: 2525,
                public_url: "http://127.0.0.1:8080",
                database: None,
            },
            form,
            &key,
        );
        assert_eq!(tick(&p, "2026-03-03T10:00:00Z")["sent"], 1, "{form:?}");
        let files: Vec<_> = std::fs::read_dir(p.path().join("outbox"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|f| f.extension().is_some_and(|e| e == "eml"))
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        let mail = std::fs::read(&files[0]).unwrap();
        let text = String::from_utf8_lossy(&mail);
        assert!(
            text.contains("List-Unsubscribe: <http://127.0.0.1:8080/u/"),
            "{text}"
        );
        assert!(text.contains("<mailto:success+"), "{text}");
        assert!(!has_header(&mail, "List-Unsubscribe-Post"), "{text}");
        // Still signed, as absent: nobody can add one-click later.
        assert_verifies(&mail, form, &key, "the file transport's .eml");

        let shown = preview(&p);
        assert!(!has_header(&shown, "List-Unsubscribe-Post"));
        assert_verifies(&shown, form, &key, "tend preview --format eml");
    }
}

#[test]
fn check_refuses_keys_it_cannot_sign_with() {
    let keys = tempfile::tempdir().unwrap();
    let ed25519 = dkim::generate(KeyForm::Ed25519Pkcs8, keys.path());
    let short = keys.path().join("short.pem");
    let out = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "rsa",
            "-pkeyopt",
            "rsa_keygen_bits:512",
            "-out",
        ])
        .arg(&short)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let garbage = keys.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let missing = keys.path().join("missing.pem");
    for (file, algorithm, says) in [
        (
            &ed25519.file,
            "rsa",
            "is an ed25519 key but mail.dkim.algorithm is \"rsa\"; set mail.dkim.algorithm = \"ed25519\"",
        ),
        (
            &short,
            "rsa",
            "is a 512-bit RSA key; receivers ignore signatures by keys under 1024 bits",
        ),
        (
            &garbage,
            "rsa",
            "is not a usable rsa key (a PKCS#8 PEM holding neither an RSA nor an Ed25519 key); an rsa key is a PEM file: PKCS#8 (BEGIN PRIVATE KEY",
        ),
        (
            &garbage,
            "ed25519",
            "is not a usable ed25519 key (a PKCS#8 PEM holding neither an RSA nor an Ed25519 key); an ed25519 key is a PKCS#8 PEM file (BEGIN PRIVATE KEY, as openssl genpkey -algorithm ed25519 writes) or the base64 of its 32-byte seed",
        ),
        (&missing, "rsa", "cannot read the DKIM key"),
    ] {
        let p = Project::new(&format!(
            "[mail.dkim]\nselector = \"tend\"\ndomain = \"acme.example\"\nprivate_key_file = \"{}\"\nalgorithm = \"{algorithm}\"\n",
            file.display()
        ));
        let run = p.tend(&["check"]).expect_code(1);
        let err = run.stderr();
        assert!(
            err.contains("config/tend.toml:4: ") && err.contains(says),
            "{says}\n{err}"
        );
        assert!(err.contains("mail.dkim.private_key_file"), "{err}");
        assert!(err.contains("1 problem found"), "{err}");
    }
}
