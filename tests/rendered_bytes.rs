//! The bytes delivery composes for the shipped templates, held to a record
//! of them: every shipped and built-in template, for a set of customers
//! (names that need escaping or encoding, other time zones and locales,
//! with and without an account and its owner, each kind of survey), then
//! composed into the email delivery sends. A faster renderer or encoder
//! must write the same bytes. The record keeps a SHA-256 of each message
//! (its MIME boundary, which lettre draws at random, made fixed);
//! `TEND_BLESS=1 cargo test --test rendered_bytes` writes it anew, for a
//! change of the templates made on purpose.

use std::fmt::Write as _;
use std::path::Path;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tend::config::Settings;
use tend::deliver::mime::{Addressing, compose};
use tend::domain::account::AccountFacts;
use tend::domain::customer::{Customer, CustomerId, Email};
use tend::domain::message::MessageId;
use tend::domain::playbook::Survey;
use tend::render::Rendered;
use tend::render::{Letter, Renderer, context};
use tend::token::Signer;

mod common;

const RECORD: &str = "tests/golden/rendered.sha256";

fn customers(now: DateTime<Utc>) -> Vec<Customer> {
    let people = [
        ("ana", "Ana Souza", "America/Sao_Paulo", "pt-BR"),
        (
            "bob",
            "<b>*Bob*</b> [x](javascript:alert(1)) & \"Co\"",
            "UTC",
            "en",
        ),
        ("chie", "山田 千恵", "Asia/Tokyo", "ja"),
        ("dirk", "Dirk Müller-Lüdenscheidt", "Europe/Berlin", "de"),
        ("eve", "", "Asia/Kathmandu", "fr"),
        (
            "fay",
            "Fay\r\nBcc: x@evil.example   ",
            "Australia/Sydney",
            "en-AU",
        ),
    ];
    people
        .iter()
        .enumerate()
        .map(|(i, (id, name, zone, locale))| {
            let mut c = Customer::sample(now);
            c.record.id = CustomerId::parse(id).unwrap();
            c.record.email = Email::parse(&format!("{id}@example.com")).unwrap();
            c.record.name = (*name).into();
            c.record.timezone = zone.parse().unwrap();
            c.record.locale = (*locale).into();
            c.record.plan = ["pro", "free", "enterprise"][i % 3].into();
            if i % 2 == 0 {
                c.record
                    .attributes
                    .insert("company".into(), format!("Firm {i} & Sons").into());
            }
            c
        })
        .collect()
}

#[test]
fn the_shipped_templates_compose_to_the_recorded_bytes() {
    let now: DateTime<Utc> = "2026-03-10T10:00:00Z".parse().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut settings = Settings::default();
    settings.paths.templates = root.join("templates").to_string_lossy().into_owned();
    settings.http.public_url = "https://tend.acme.example".into();
    let renderer = Renderer::load(&settings, Signer::new(b"rendered bytes")).unwrap();
    let mut templates: Vec<&str> = renderer.templates().collect();
    templates.sort_unstable();
    let from = "Acme Success <success@acme.example>".parse().unwrap();
    let reply_to = "success+0123456789abcdef@acme.example".parse().unwrap();
    let unsubscribe_to = "success+u-0123456789abcdef@acme.example".parse().unwrap();
    let account = AccountFacts::sample(now);
    let incident = context::sample_incident();
    let surveys = [
        Some(Survey::Nps),
        None,
        Some(Survey::Csat),
        Some(Survey::Ces),
        Some(Survey::Yesno),
        Some(Survey::Nps),
    ];
    let mut record = String::new();
    // Twice over: a block kept from the first round serves the second.
    for round in 0..2 {
        for template in &templates {
            for (i, customer) in customers(now).iter().enumerate() {
                let id = MessageId(uuid::Uuid::from_u128((round * 1000 + i) as u128 + 1));
                let letter = Letter {
                    message: id,
                    customer,
                    category: "checkins",
                    survey: surveys[i],
                    incident: template.starts_with("incidents/").then_some(&incident),
                    account: (i % 3 == 0).then_some(&account),
                    sender: account.owner.as_ref().filter(|_| i == 3),
                    now,
                };
                let digest = match renderer.render(template, &letter) {
                    Err(e) => format!("error {}", e.problem),
                    Ok(rendered) => {
                        let to = customer.record.email.to_string().parse().unwrap();
                        let email = compose(
                            &rendered,
                            &Addressing {
                                from: &from,
                                reply_to: &reply_to,
                                reply_person: None,
                                unsubscribe_to: &unsubscribe_to,
                                to_name: &customer.record.name,
                                to: &to,
                                message_id: &format!("{}@acme.example", id.0.simple()),
                                in_reply_to: None,
                                date: SystemTime::UNIX_EPOCH,
                            },
                        )
                        .unwrap();
                        let bytes = String::from_utf8(email.formatted()).unwrap();
                        hex(&Sha256::digest(fixed_boundary(&bytes)))
                    }
                };
                let customer = customer.record.id.as_str();
                writeln!(record, "{round} {template} {customer} {digest}").unwrap();
            }
        }
    }
    let path = root.join(RECORD);
    if std::env::var_os("TEND_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &record).unwrap();
        return;
    }
    let recorded = std::fs::read_to_string(&path).unwrap();
    let differ: Vec<String> = record
        .lines()
        .zip(recorded.lines())
        .filter(|(now, then)| now != then)
        .map(|(now, then)| format!("  now:    {now}\n  before: {then}"))
        .collect();
    assert!(
        differ.is_empty() && record.lines().count() == recorded.lines().count(),
        "{} of {} messages compose to other bytes than recorded in {RECORD}:\n{}",
        differ.len(),
        recorded.lines().count(),
        differ.join("\n")
    );
}

/// The message with lettre's random MIME boundary replaced by a fixed one.
fn fixed_boundary(message: &str) -> String {
    let start = message.find("boundary=\"").expect("a multipart message") + 10;
    let end = start + message[start..].find('"').unwrap();
    message.replace(&message[start..end], "BOUNDARY")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A survey partial that reads the customer is rendered for each message:
/// its block is never kept for the question, whichever customer comes
/// first.
#[test]
fn a_survey_block_that_reads_the_customer_is_rendered_for_each() {
    let now: DateTime<Utc> = "2026-03-10T10:00:00Z".parse().unwrap();
    let overrides = [
        "{{#if customer.attributes.vip}}<b>VIP</b>{{/if}}{{#each survey.answers}}<a href=\"{{url}}\">{{label}}</a>{{/each}}",
        // The inclusion of another partial, after a line break.
        "{{\n> vip}}{{#each survey.answers}}<a href=\"{{url}}\">{{label}}</a>{{/each}}",
    ];
    for survey_partial in overrides {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("partials")).unwrap();
        std::fs::write(
            dir.path().join("checkin.md.hbs"),
            "+++\nsubject = \"Hi\"\n+++\nHello.\n\n{{> survey}}\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("partials/survey.hbs"), survey_partial).unwrap();
        std::fs::write(
            dir.path().join("partials/vip.hbs"),
            "{{#if customer.attributes.vip}}<b>VIP</b>{{/if}}",
        )
        .unwrap();
        let mut settings = Settings::default();
        settings.paths.templates = dir.path().to_string_lossy().into_owned();
        let renderer = Renderer::load(&settings, Signer::new(b"vip")).unwrap();
        let plain = Customer::sample(now);
        let mut vip = Customer::sample(now);
        vip.record
            .attributes
            .insert("vip".into(), serde_json::Value::Bool(true));
        for order in [[&plain, &vip], [&vip, &plain]] {
            for customer in order {
                let letter = Letter {
                    message: MessageId::new(),
                    customer,
                    category: "checkins",
                    survey: Some(Survey::Nps),
                    incident: None,
                    account: None,
                    sender: None,
                    now,
                };
                let html = renderer.render("checkin", &letter).unwrap().html;
                let is_vip = customer.record.attributes.contains_key("vip");
                assert_eq!(html.contains("<b>VIP</b>"), is_vip, "{survey_partial}");
                assert!(
                    html.contains(">0</a>") && html.contains(">10</a>"),
                    "{html}"
                );
            }
        }
    }
}

/// Each part's transfer encoding, read back by an independent decoder:
/// Python's `email` with its strict policy gives back exactly the text and
/// HTML that were rendered, for texts that meet each rule of the encoder
/// (long lines, `=`, spaces and tabs before line breaks, lines starting
/// with a dot, text mostly not ASCII).
#[test]
fn pythons_strict_parser_decodes_each_part_to_what_was_rendered() {
    let long = "x".repeat(75);
    let texts = [
        format!("{long}=\n{long} \nend\t\n.dot\n\nkey=value, =3D not an escape\n"),
        format!("Ünïcödé {long}{long} é\n  two spaces  \nlast line without a break"),
        "日本語のテキストです。日本語のテキストです。日本語のテキストです。\n".repeat(3),
        "short ASCII\nlines only\n".to_owned(),
    ];
    let from = "Acme Success <success@acme.example>".parse().unwrap();
    let reply_to = "success+0123456789abcdef@acme.example".parse().unwrap();
    let to = "ana@example.com".parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (i, text) in texts.iter().enumerate() {
        let html = format!(
            "<p style=\"margin:0\">{}</p>\n",
            text.replace('\n', "<br>\n")
        );
        let rendered = Rendered {
            subject: "Encodings".into(),
            preheader: String::new(),
            text: text.clone(),
            html: html.clone(),
            unsubscribe_url: "https://t.example/u/x".into(),
        };
        let email = compose(
            &rendered,
            &Addressing {
                from: &from,
                reply_to: &reply_to,
                reply_person: None,
                unsubscribe_to: &reply_to,
                to_name: "Ana",
                to: &to,
                message_id: "m1@acme.example",
                in_reply_to: None,
                date: SystemTime::UNIX_EPOCH,
            },
        )
        .unwrap();
        let eml = dir.path().join(format!("{i}.eml"));
        std::fs::write(&eml, email.formatted()).unwrap();
        let read = std::process::Command::new(common::python::python3())
            .arg("-c")
            .arg(
                "import email, email.policy, json, sys\n\
                 msg = email.message_from_bytes(open(sys.argv[1], 'rb').read(), policy=email.policy.strict)\n\
                 assert not msg.defects, msg.defects\n\
                 parts = list(msg.iter_parts())\n\
                 assert all(not p.defects for p in parts), [p.defects for p in parts]\n\
                 print(json.dumps([[p['Content-Transfer-Encoding'], p.get_content()] for p in parts]))\n",
            )
            .arg(&eml)
            .output()
            .unwrap();
        assert!(
            read.status.success(),
            "{}",
            String::from_utf8_lossy(&read.stderr)
        );
        let parts: Vec<(String, String)> = serde_json::from_slice(&read.stdout).unwrap();
        let decoded: Vec<String> = parts
            .iter()
            .map(|(_, content)| content.replace("\r\n", "\n"))
            .collect();
        assert_eq!(
            decoded,
            [text.clone(), html],
            "as {:?}",
            parts.iter().map(|p| &p.0).collect::<Vec<_>>()
        );
    }
}
