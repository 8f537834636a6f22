//! Secrets through the real binary: `tend check` and `tend run` refuse an
//! empty or short link-signing key and an empty API token, naming the file;
//! a reload that brings one keeps the running key; and a link signed with
//! any key but the configured one (an empty key above all) is refused.

mod common;

use std::time::{Duration, Instant};

use chrono::Utc;
use common::daemon::Daemon;
use common::smtp::SmtpSink;
use common::{Project, free_port};
use tend::token::{Purpose, Signer};

/// A good link-signing key: what `head -c 48 /dev/urandom | base64` makes.
const KEY: &str = "q3Vx8mZ1c2VjcmV0LWtleS1mb3ItdGVuZC10ZXN0cy1vbmx5LTQ4LWJ5dGVzIQ==";
const TOKEN: &str = "api-token-for-the-secrets-tests";

/// A project whose key and token come from files, as the guide advises.
fn project(extra: &str) -> Project {
    let p = Project::new(&format!(
        "[security]\nsecret_file = \"secret\"\n[http]\napi_token_file = \"token\"\n{extra}"
    ));
    p.file("secret", format!("{KEY}\n"));
    p.file("token", format!("{TOKEN}\n"));
    p
}

/// `tend check` fails with one problem that starts with `starts` and
/// says `says`.
fn check_refuses(p: &Project, starts: &str, says: &str) {
    let err = p.tend(&["check"]).expect_code(1).stderr();
    let first = err.lines().next().unwrap_or_default();
    assert!(first.starts_with(starts), "{err}");
    assert!(first.contains(says), "{err}");
    assert!(err.contains("1 problem found"), "{err}");
}

#[test]
fn check_refuses_an_empty_or_short_key_and_an_empty_token_naming_the_file() {
    let p = project("");
    p.tend(&["check"]).expect_code(0);
    let secret = p.path().join("secret");

    // What `printf %s "$UNSET" > file` leaves.
    p.file("secret", "");
    check_refuses(
        &p,
        "config/tend.toml:2: security.secret_file secret is empty; ",
        "write at least 32 random bytes into it, for example with `head -c 48 /dev/urandom | base64 > secret`",
    );
    p.file("secret", "0123456789");
    check_refuses(
        &p,
        "config/tend.toml:2: security.secret_file secret holds only 10 bytes; ",
        "a link-signing key needs at least 32",
    );
    p.file("secret", " \t\n\n");
    check_refuses(
        &p,
        "config/tend.toml:2: security.secret_file secret is empty; ",
        "",
    );
    p.file("secret", &KEY[..32]);
    p.tend(&["check"]).expect_code(0);

    p.file("token", "");
    check_refuses(
        &p,
        "config/tend.toml:4: http.api_token_file token is empty; ",
        "write a long random token into it",
    );
    p.file("token", "   \n");
    check_refuses(
        &p,
        "config/tend.toml:4: http.api_token_file token is empty; ",
        "",
    );
    assert!(secret.is_file(), "nothing was deleted");
}

#[test]
fn an_inline_key_or_a_credential_is_named_too() {
    let p = Project::new("[security]\nsecret = \"short\"\n");
    check_refuses(
        &p,
        "config/tend.toml:2: security.secret holds only 5 bytes; ",
        "name it in security.secret_file instead",
    );
    let p = Project::new("").env("TEND__SECURITY__SECRET", "   ");
    check_refuses(
        &p,
        "environment TEND__SECURITY__SECRET: security.secret is empty; ",
        "",
    );

    let credentials = tempfile::tempdir().unwrap();
    std::fs::write(credentials.path().join("secret"), "\n").unwrap();
    std::fs::write(credentials.path().join("api_token"), "").unwrap();
    let p = Project::new("").env(
        "CREDENTIALS_DIRECTORY",
        credentials.path().to_str().unwrap(),
    );
    let err = p.tend(&["check"]).expect_code(1).stderr();
    for (file, says) in [
        (
            "api_token",
            "the systemd credential api_token (for http.api_token) is empty",
        ),
        (
            "secret",
            "the systemd credential secret (for security.secret) is empty",
        ),
    ] {
        let at = format!("{}: {says}", credentials.path().join(file).display());
        assert!(err.lines().any(|l| l.starts_with(&at)), "no {at} in\n{err}");
    }
}

#[test]
fn run_refuses_to_start_with_an_empty_key() {
    let p = project("");
    p.file("secret", "");
    let run = p.tend(&["run"]).expect_code(1);
    let err = run.stderr();
    assert!(
        err.contains("config/tend.toml:2: security.secret_file secret is empty"),
        "{err}"
    );
    assert!(err.contains("tend did not start"), "{err}");
    assert!(
        !p.path().join("data/tend.db").exists(),
        "refused before the store was touched"
    );

    p.file("secret", KEY);
    p.file("token", "");
    let err = p.tend(&["run"]).expect_code(1).stderr();
    assert!(
        err.contains("config/tend.toml:4: http.api_token_file token is empty"),
        "{err}"
    );
}

/// An urgent notice with a tracked link, sent a second after an event.
const NOTICE: &str = r#"
name = "upgrade"
kind = "incident"
category = "incidents"

[[step]]
id = "failed"
template = "failed"
anchor = "event:upgrade_failed"
after = "1s"
"#;

fn mailing_project(sink: &SmtpSink) -> Project {
    let p = project(&format!(
        "[mail]\ntransport = \"smtp\"\n[mail.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntimeout = \"5s\"\n\
         [schedule]\nplan_every = \"1h\"\ndeliver_every = \"1h\"\n",
        sink.port()
    ));
    std::fs::create_dir_all(p.path().join("config/playbooks")).unwrap();
    std::fs::create_dir_all(p.path().join("templates")).unwrap();
    p.file("config/playbooks/upgrade.toml", NOTICE);
    p.file(
        "templates/failed.md.hbs",
        "+++\nsubject = \"Your upgrade\"\n+++\nSee [the notes](https://status.acme.example/notes).\n",
    );
    p
}

/// Mails `id` the notice through the API and returns the path of its
/// tracked link (`/c/TOKEN`).
fn mail_a_link(d: &Daemon, sink: &SmtpSink, base: &str, id: &str) -> String {
    let auth = [
        ("Authorization", &*format!("Bearer {TOKEN}")),
        ("Content-Type", "application/json"),
    ];
    let customer = format!(r#"[{{"id":"{id}","email":"{id}@example.com","name":"Ana Lima"}}]"#);
    let r = d.request("POST", "/api/v1/customers", &auth, customer.as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    let at = (Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let event = format!(r#"{{"customer_id":"{id}","name":"upgrade_failed","occurred_at":"{at}"}}"#);
    let r = d.request("POST", "/api/v1/events", &auth, event.as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    let started = Instant::now();
    let mail = loop {
        if let Some(mail) = sink
            .received()
            .into_iter()
            .find(|m| m.to == [format!("{id}@example.com")])
        {
            break mail;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no mail for {id}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let parsed = mail_parser::MessageParser::default()
        .parse(mail.data.as_bytes())
        .unwrap();
    let html = parsed.body_html(0).unwrap().into_owned();
    let start = html.find(&format!("{base}/c/")).expect("a tracked link") + base.len();
    let link = &html[start..];
    link[..link.find('"').unwrap()].to_owned()
}

/// The token of a `/c/TOKEN` path.
fn token_of(path: &str) -> &str {
    path.strip_prefix("/c/").unwrap()
}

/// `GET path`: refused with a 4xx and no redirect.
fn refused(d: &Daemon, path: &str) {
    let reply = d.get(path);
    assert!((400..500).contains(&reply.status), "{reply:?}");
    assert!(
        !reply.head.to_ascii_lowercase().contains("location:"),
        "{}",
        reply.head
    );
}

/// `GET path`: a redirect to `to`.
fn redirected(d: &Daemon, path: &str, to: &str) {
    let reply = d.get(path);
    assert_eq!(reply.status, 303, "{reply:?}");
    let location = format!("location: {to}");
    assert!(
        reply
            .head
            .lines()
            .any(|l| l.eq_ignore_ascii_case(&location)),
        "{}",
        reply.head
    );
}

#[test]
fn a_link_signed_with_an_empty_or_other_key_is_refused() {
    let sink = SmtpSink::start();
    let p = mailing_project(&sink);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let d = Daemon::start(&p, port, &[("TEND__HTTP__PUBLIC_URL", &base)]);
    let path = mail_a_link(&d, &sink, &base, "ana");
    let claims = Signer::new(KEY.as_bytes())
        .verify(token_of(&path), Purpose::Click)
        .expect("signed with the configured key");
    assert_eq!(claims.value, "https://status.acme.example/notes");

    // Forgeries for the same message, to elsewhere: with the empty key (what
    // an empty secret file once gave), and with another good-length key.
    let evil = "https://evil.example/";
    for key in [&b""[..], &[7u8; 48][..]] {
        let forged = Signer::new(key).sign(Purpose::Click, claims.message, evil, Utc::now());
        refused(&d, &format!("/c/{forged}"));
    }
    // The same link signed with the configured key would go there: the
    // refusals above are the key's doing.
    let genuine =
        Signer::new(KEY.as_bytes()).sign(Purpose::Click, claims.message, evil, Utc::now());
    redirected(&d, &format!("/c/{genuine}"), evil);
    redirected(&d, &path, "https://status.acme.example/notes");
}

#[test]
fn a_reload_with_an_empty_or_short_key_keeps_the_running_one() {
    let sink = SmtpSink::start();
    let p = mailing_project(&sink);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let d = Daemon::start(&p, port, &[("TEND__HTTP__PUBLIC_URL", &base)]);
    let before = mail_a_link(&d, &sink, &base, "ana");

    p.file("secret", "");
    d.signal("HUP");
    d.wait_for_log("reload rejected");
    let log = d.log();
    assert!(
        log.contains("security.secret_file secret is empty"),
        "the log says why:\n{log}"
    );
    assert_eq!(d.get("/readyz").status, 200, "still serving");

    // Links mailed before still work, new mail is signed with the same key,
    // and the empty key signs nothing the daemon accepts.
    redirected(&d, &before, "https://status.acme.example/notes");
    let after = mail_a_link(&d, &sink, &base, "bea");
    let claims = Signer::new(KEY.as_bytes())
        .verify(token_of(&after), Purpose::Click)
        .expect("still the running key");
    let forged = Signer::new(b"").sign(
        Purpose::Click,
        claims.message,
        "https://evil.example/",
        Utc::now(),
    );
    refused(&d, &format!("/c/{forged}"));

    p.file("secret", "0123456789");
    d.signal("HUP");
    let started = Instant::now();
    while !d.log().contains("holds only 10 bytes") {
        assert!(started.elapsed() < Duration::from_secs(20), "{}", d.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    redirected(&d, &after, "https://status.acme.example/notes");
    let metrics = d.get("/metrics").body;
    assert!(
        metrics.contains("tend_config_reloads_total{result=\"rejected\"} 2"),
        "{metrics}"
    );
}
