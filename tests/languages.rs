//! Each customer in their language: a template's translations, tend's own
//! words around them (footer, survey, the pages a mail links to) and dates
//! in the language of the template sent, checked in the bytes a real SMTP
//! server received and the pages the daemon serves, on both stores.

mod common;

use chrono::{Duration, Utc};
use common::daemon::Daemon;
use common::smtp::{Received, SmtpSink};
use common::{Project, free_port, tick};
use mail_parser::MessageParser;
use tend::config::Settings;

const PLAYBOOK: &str = r#"
name = "renewals"
kind = "reminder"
category = "checkins"

[[step]]
id = "heads_up"
template = "reminders/renewal"
anchor = "signup_at"
after = "1d"
survey = "nps"
"#;

const ENGLISH: &str = "+++\nsubject = \"Your renewal, {{customer.first_name}}\"\n+++\nHi {{customer.first_name}}, your plan renews on {{date customer.renewal_at}}.\n\n{{> survey}}\n";
const GERMAN: &str = "+++\nsubject = \"Ihre Verlängerung, {{customer.first_name}}\"\n+++\nHallo {{customer.first_name}}, Ihr Tarif verlängert sich am {{date customer.renewal_at}}.\n\n{{> survey}}\n";
const BRAZILIAN: &str = "+++\nsubject = \"Sua renovação, {{customer.first_name}}\"\n+++\nOlá {{customer.first_name}}, seu plano renova em {{date customer.renewal_at}}.\n\n{{> survey}}\n";
const JAPANESE: &str = "+++\nsubject = \"{{customer.first_name}}様、更新のお知らせ\"\n+++\n{{customer.first_name}}様、ご契約は{{date customer.renewal_at}}に更新されます。\n\n{{> survey}}\n";

/// Five people, one template in four languages, all due at `at`.
fn project(port: u16, database: Option<&str>, base: &str) -> (Project, String) {
    let mut p = Project::new(&format!(
        "[mail]\ntransport = \"smtp\"\n[mail.smtp]\nhost = \"127.0.0.1\"\nport = {port}\n"
    ))
    .env("TEND__HTTP__PUBLIC_URL", base);
    if let Some(url) = database {
        p = p.env("TEND__DATABASE__URL", url);
    }
    std::fs::create_dir_all(p.path().join("config/playbooks")).unwrap();
    std::fs::create_dir_all(p.path().join("templates/reminders")).unwrap();
    p.file("config/playbooks/renewals.toml", PLAYBOOK);
    p.file("templates/reminders/renewal.md.hbs", ENGLISH);
    p.file("templates/reminders/renewal.de.md.hbs", GERMAN);
    p.file("templates/reminders/renewal.pt-BR.md.hbs", BRAZILIAN);
    p.file("templates/reminders/renewal.ja.md.hbs", JAPANESE);
    // The next moment the default send window is open in UTC: the links
    // the mail carries are signed then, and the pages check them against
    // the clock.
    let window = Settings::default().delivery.window.parse().unwrap();
    let at = window.next_opening(Utc::now() + Duration::minutes(1), chrono_tz::UTC);
    let signup = (at - Duration::days(2)).to_rfc3339();
    let people = [
        ("us", "Amy Adams", "en-US"),
        ("de", "Dirk Müller", "de-DE"),
        ("pt", "Inês Costa", "pt-PT"),
        ("ja", "千恵 山田", "ja"),
        ("fr", "Élodie Martin", "fr-CA"),
    ];
    let rows: String = people
        .iter()
        .map(|(id, name, locale)| {
            format!("{id},{id}@example.com,{name},UTC,{locale},pro,{signup},2027-12-05T12:00:00Z\n")
        })
        .collect();
    p.file(
        "customers.csv",
        format!("id,email,name,timezone,locale,plan,signup_at,renewal_at\n{rows}"),
    );
    p.tend(&["import", "customers", "customers.csv"])
        .expect_code(0);
    (p, at.to_rfc3339())
}

/// A received mail's subject, text part and HTML part, decoded.
fn parts(mail: &Received) -> (String, String, String) {
    let parsed = MessageParser::default()
        .parse(mail.data.as_bytes())
        .expect("a MIME message");
    (
        parsed.subject().unwrap_or_default().to_owned(),
        parsed.body_text(0).unwrap_or_default().into_owned(),
        parsed.body_html(0).unwrap_or_default().into_owned(),
    )
}

fn mail_to<'a>(all: &'a [Received], id: &str) -> &'a Received {
    all.iter()
        .find(|m| m.to == [format!("{id}@example.com")])
        .unwrap_or_else(|| panic!("no mail to {id}"))
}

/// The first link in `html` that starts with `prefix`, as a path.
fn link(html: &str, base: &str, prefix: &str) -> String {
    let start = html
        .find(&format!("{base}{prefix}"))
        .unwrap_or_else(|| panic!("no {prefix} link in {html}"));
    let rest = &html[start + base.len()..];
    let end = rest.find(['"', '#']).unwrap();
    rest[..end].to_owned()
}

fn each_reads_their_language(database: Option<&str>) {
    let sink = SmtpSink::start();
    let http = free_port();
    let base = format!("http://127.0.0.1:{http}");
    let (p, at) = project(sink.port(), database, &base);
    let sent = tick(&p, &at);
    assert_eq!(sent["sent"], 5, "{sent}");
    let all = sink.received();

    // German: the translation, German words around it, a German date.
    let (subject, text, html) = parts(mail_to(&all, "de"));
    assert_eq!(subject, "Ihre Verlängerung, Dirk");
    assert!(
        text.contains("verlängert sich am 5. Dezember 2027."),
        "{text}"
    );
    assert!(
        text.contains("Wählen Sie, welche E-Mails Sie erhalten:"),
        "{text}"
    );
    assert!(
        text.contains(
            "Wie wahrscheinlich ist es, dass Sie Acme Cloud einem Freund oder Kollegen empfehlen?"
        ),
        "{text}"
    );
    assert!(html.contains("<html lang=\"de\">"), "{html}");
    assert!(html.contains("Im Browser ansehen"), "{html}");
    assert!(html.contains("Überhaupt nicht wahrscheinlich"), "{html}");
    assert!(!html.contains("unsubscribe</a>"), "no English left: {html}");

    // Portugal: no pt-PT translation, so the Brazilian one, in Portuguese.
    let (subject, text, html) = parts(mail_to(&all, "pt"));
    assert_eq!(subject, "Sua renovação, Inês");
    assert!(text.contains("renova em 5 de dezembro de 2027."), "{text}");
    assert!(
        text.contains("Escolha quais e-mails você recebe:"),
        "{text}"
    );
    assert!(html.contains("<html lang=\"pt-BR\">"), "{html}");

    // Japanese, date and all.
    let (_, text, html) = parts(mail_to(&all, "ja"));
    assert!(
        text.contains("ご契約は2027年12月5日に更新されます。"),
        "{text}"
    );
    assert!(text.contains("受け取るメールを選ぶ:"), "{text}");
    assert!(html.contains("<html lang=\"ja\">"), "{html}");

    // French: no French translation, so English throughout, English dates.
    let (subject, text, html) = parts(mail_to(&all, "fr"));
    assert_eq!(subject, "Your renewal, Élodie");
    assert!(text.contains("renews on December 5, 2027."), "{text}");
    assert!(!text.contains("décembre"), "{text}");
    assert!(text.contains("Choose which emails you get:"), "{text}");
    assert!(html.contains("<html lang=\"en\">"), "{html}");

    // American: English, as before.
    let (_, text, _) = parts(mail_to(&all, "us"));
    assert!(text.contains("renews on December 5, 2027."), "{text}");

    // Python's strict email parser, an implementation other than ours and
    // the test's, reads the same words from the bytes received.
    for (id, line) in [
        ("de", "verlängert sich am 5. Dezember 2027."),
        ("pt", "renova em 5 de dezembro de 2027."),
        ("ja", "ご契約は2027年12月5日に更新されます。"),
    ] {
        let file = p.file(&format!("{id}.eml"), mail_to(&all, id).data.as_bytes());
        let parsed = common::python::strict_mime(&file);
        let text = String::from_utf8_lossy(&parsed.stdout);
        assert!(
            parsed.status.success() && text.contains(line),
            "{id}: {}\n{text}",
            String::from_utf8_lossy(&parsed.stderr)
        );
    }

    // The pages the German mail links to are German too.
    let (_, _, html) = parts(mail_to(&all, "de"));
    let daemon = Daemon::start(&p, http, &[]);
    let survey = daemon.get(&link(&html, &base, "/r/"));
    assert_eq!(survey.status, 200, "{}", survey.body);
    assert!(
        survey.body.contains("<html lang=\"de\">"),
        "{}",
        survey.body
    );
    assert!(
        survey.body.contains("<title>Ihre Antwort"),
        "{}",
        survey.body
    );
    assert!(survey.body.contains("Antwort senden"), "{}", survey.body);
    let answered = daemon.request(
        "POST",
        &link(&html, &base, "/r/"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"answer=9",
    );
    assert_eq!(answered.status, 200, "{}", answered.body);
    assert!(
        answered.body.contains("<html lang=\"de\">"),
        "{}",
        answered.body
    );
    assert!(
        answered
            .body
            .contains("Wir haben Ihre Antwort gespeichert: <strong>9</strong>"),
        "{}",
        answered.body
    );
    let preferences = daemon.get(&link(&html, &base, "/u/"));
    assert_eq!(preferences.status, 200, "{}", preferences.body);
    assert!(
        preferences.body.contains("<html lang=\"de\">"),
        "{}",
        preferences.body
    );
    assert!(
        preferences.body.contains("Ihre E-Mail-Einstellungen"),
        "{}",
        preferences.body
    );
    assert!(
        preferences.body.contains("Einstellungen speichern"),
        "{}",
        preferences.body
    );
}

#[test]
fn each_reads_their_language_on_sqlite() {
    each_reads_their_language(None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_reads_their_language_on_postgres() {
    common::on_fresh_postgres(|url| each_reads_their_language(Some(url))).await;
}

#[test]
fn check_says_where_a_translation_differs_from_its_template() {
    let p = Project::new("");
    std::fs::create_dir_all(p.path().join("config/playbooks")).unwrap();
    std::fs::create_dir_all(p.path().join("templates/reminders")).unwrap();
    p.file("config/playbooks/renewals.toml", PLAYBOOK);
    p.file("templates/reminders/renewal.md.hbs", ENGLISH);
    // Reads the plan, drops the date and the survey, adds a preheader.
    p.file(
        "templates/reminders/renewal.de.md.hbs",
        "+++\nsubject = \"Ihre Verlängerung, {{customer.first_name}}\"\npreheader = \"Kurz\"\n+++\nHallo {{customer.first_name}},\nIhr Tarif {{customer.plan}} verlängert sich bald.\n",
    );
    // Says it is French in a German file.
    p.file(
        "templates/reminders/renewal.pt-BR.md.hbs",
        "+++\nsubject = \"x\"\nlang = \"fr\"\n+++\nx\n",
    );
    let out = p.tend(&["check"]).expect_code(1).stderr();
    let expected = "renewal.pt-BR.md.hbs:3: lang = \"fr\", but the file name says this is the pt-BR translation of reminders/renewal";
    assert!(out.contains(expected), "{expected}\nnot in:\n{out}");
    std::fs::remove_file(p.path().join("templates/reminders/renewal.pt-BR.md.hbs")).unwrap();
    // Warnings: a translation that lags its template still sends.
    let out = p.tend(&["check"]).expect_code(0).stderr();
    let file = "renewal.de.md.hbs";
    for expected in [
        format!(
            "warning: templates/reminders/{file}:6: the de translation of reminders/renewal reads customer.plan"
        ),
        "leaves out customer.renewal_at, which reminders/renewal reads".to_owned(),
        "reminders/renewal places the survey ({{> survey}}) and the translation does not"
            .to_owned(),
        format!("{file}:3: the translation sets preheader in its front matter"),
    ] {
        assert!(out.contains(&expected), "{expected}\nnot in:\n{out}");
    }
}
