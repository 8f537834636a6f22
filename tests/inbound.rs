//! The inbound classifier against a corpus shaped like what real systems
//! send: Postfix, Exim, Gmail and Exchange bounces, an ARF complaint,
//! automatic replies from Gmail, Outlook and an RFC 3834 responder,
//! out-of-office answers in thirteen languages that carry no RFC 3834
//! header, human replies quoting in several styles, and garbage. Each
//! fixture names the message it answers with placeholders filled here.
//! The fixtures tend's parser reads are also read by Python's `email` under
//! its strict policy, and the out-of-office ones go through the real
//! binary on both stores.

mod common;

use std::path::Path;

use chrono::{TimeZone, Utc};
use tend::domain::message::MessageId;
use tend::inbound::classify::{self, Verdict};
use tend::inbound::{Rules, prepare};
use tend::store::{Effect, Source};
use tend::token::Signer;

/// A message of ours, as the planner names it.
fn ours() -> (MessageId, String) {
    let id = "0193a1b2-c3d4-7e5f-8071-8293a4b5c6d7"
        .parse::<MessageId>()
        .unwrap();
    (id, format!("{}@acme.example", id.0.simple()))
}

fn signer() -> Signer {
    Signer::new(b"corpus-key")
}

/// A fixture with its placeholders filled: our Message-ID, our reply
/// address for that message.
fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/inbound")
        .join(name);
    let raw = std::fs::read(&path).unwrap();
    let (id, message_id) = ours();
    let reply_to = signer().reply_address("success@acme.example", id);
    match String::from_utf8(raw) {
        Ok(text) => text
            .replace("{{MESSAGE_ID}}", &message_id)
            .replace("{{REPLY_TO}}", &reply_to)
            .into_bytes(),
        Err(e) => e.into_bytes(),
    }
}

fn verdict(name: &str) -> Verdict {
    classify::read(&fixture(name)).verdict
}

fn bounce(name: &str) -> (bool, String) {
    match verdict(name) {
        Verdict::Bounce { hard, status, .. } => (hard, status),
        other => panic!("{name}: {other:?}"),
    }
}

fn reply(name: &str) -> String {
    match verdict(name) {
        Verdict::Reply { text } => text,
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn bounces_are_hard_or_soft_by_their_status() {
    assert_eq!(bounce("postfix_hard_bounce.eml"), (true, "5.1.1".into()));
    assert_eq!(
        bounce("exim_legacy_bounce.eml"),
        (true, "5.1.1".into()),
        "the code before the copy, not 4.2.2 inside it"
    );
    assert_eq!(
        bounce("gmail_mailbox_full.eml"),
        (false, "5.2.2".into()),
        "a full mailbox is soft"
    );
    assert_eq!(bounce("exchange_ndr.eml"), (true, "5.1.10".into()));
    assert_eq!(
        verdict("postfix_delayed.eml"),
        Verdict::Notice {
            action: "delayed".into()
        },
        "a delay warning changes nothing"
    );
    match verdict("postfix_hard_bounce.eml") {
        Verdict::Bounce { diagnostic, .. } => assert_eq!(
            diagnostic.as_deref(),
            Some(
                "550 5.1.1 <ana@example.com>: Recipient address rejected: User unknown in virtual mailbox table"
            )
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_feedback_report_is_a_complaint() {
    assert_eq!(
        verdict("arf_complaint.eml"),
        Verdict::Complaint {
            feedback_type: "abuse".into()
        }
    );
}

#[test]
fn automatic_replies_are_not_replies() {
    for name in [
        "gmail_vacation.eml",
        "outlook_out_of_office.eml",
        "rfc3834_responder.eml",
    ] {
        assert_eq!(verdict(name), Verdict::AutoReply, "{name}");
    }
}

#[test]
fn human_replies_keep_only_their_new_words() {
    assert_eq!(
        reply("reply_gmail.eml"),
        "Thanks! The import worked. Could someone show us the API keys page?\n\nAna"
    );
    assert_eq!(
        reply("reply_outlook.eml"),
        "We already use webhooks, but the second tip is new to us - thanks.\n\nBest regards,\nBo Berg\nHead of Operations, Fabrikam",
        "an Outlook reply (X-Auto-Response-Suppress and all) is a person's"
    );
    assert_eq!(
        reply("reply_inline.eml"),
        "Yes, all 4,000 rows.\n\nThe progress bar could show an ETA."
    );
    assert_eq!(
        reply("reply_unmatched.eml"),
        "Hello, do you offer a discount for nonprofits?"
    );
}

#[test]
fn garbage_is_kept_as_unreadable() {
    assert_eq!(verdict("garbage.eml"), Verdict::Unreadable);
}

#[test]
fn each_is_matched_by_its_token_or_our_message_id() {
    let (id, message_id) = ours();
    let signer = signer();
    let rules = Rules {
        signer: &signer,
        soft_bounce_limit: 3,
        categories: &[],
    };
    let now = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
    // (fixture, carries the reply token, refers to our Message-ID)
    for (name, token, reference) in [
        ("postfix_hard_bounce.eml", true, true),
        ("exim_legacy_bounce.eml", false, true),
        ("gmail_mailbox_full.eml", true, true),
        ("exchange_ndr.eml", true, true),
        ("postfix_delayed.eml", true, true),
        ("arf_complaint.eml", true, true),
        ("gmail_vacation.eml", true, true),
        ("outlook_out_of_office.eml", true, true),
        ("rfc3834_responder.eml", true, true),
        ("reply_gmail.eml", true, true),
        ("reply_outlook.eml", false, true),
        ("reply_inline.eml", true, true),
        ("reply_unmatched.eml", false, false),
        ("garbage.eml", false, false),
    ] {
        let (mail, _) = prepare(&rules, &fixture(name), Source::File, now);
        assert_eq!(mail.by_token, token.then_some(id), "{name}: token");
        let refers = mail
            .by_reference
            .iter()
            .any(|(i, m)| *i == id && *m == message_id);
        assert_eq!(refers, reference, "{name}: {:?}", mail.by_reference);
        assert!(!mail.dedupe.is_empty(), "{name}");
    }
    // What each kind does to suppression.
    let effect = |name| prepare(&rules, &fixture(name), Source::File, now).0.effect;
    assert!(matches!(
        effect("postfix_hard_bounce.eml"),
        Effect::Suppress {
            source: Source::Bounce,
            ..
        }
    ));
    assert!(matches!(
        effect("arf_complaint.eml"),
        Effect::Suppress {
            source: Source::Complaint,
            ..
        }
    ));
    assert!(matches!(
        effect("gmail_mailbox_full.eml"),
        Effect::SoftBounce { limit: 3, .. }
    ));
    assert_eq!(effect("reply_gmail.eml"), Effect::Nothing);
    assert_eq!(effect("gmail_vacation.eml"), Effect::Nothing);
    // The same bytes twice get the same key, with or without a Message-ID.
    let key = |name| prepare(&rules, &fixture(name), Source::File, now).0.dedupe;
    assert_eq!(key("garbage.eml"), key("garbage.eml"));
    assert!(key("garbage.eml").starts_with("sha256:"));
    assert_eq!(
        key("reply_gmail.eml"),
        "CAF=r3ply+abcdef0123456789@mail.gmail.com"
    );
}

#[test]
fn only_mail_to_the_unsubscribe_address_is_an_unsubscribe() {
    let (id, _) = ours();
    let signer = signer();
    let rules = Rules {
        signer: &signer,
        soft_bounce_limit: 3,
        categories: &[],
    };
    let now = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
    let to = |address: &str| {
        String::from_utf8(fixture("unsubscribe_gmail.eml"))
            .unwrap()
            .replace("{{UNSUBSCRIBE_TO}}", address)
            .into_bytes()
    };
    let unsubscribe_to = signer.unsubscribe_address("success@acme.example", id);
    let (mail, verdict) = prepare(&rules, &to(&unsubscribe_to), Source::File, now);
    assert_eq!(verdict, Verdict::Unsubscribe);
    assert_eq!(
        (mail.classification.as_str(), mail.by_token),
        ("unsubscribe", Some(id))
    );
    assert_eq!(
        mail.response, None,
        "the unsubscribe itself is the response"
    );
    // Even marked as sent by a program: the request still counts.
    let marked = String::from_utf8(to(&unsubscribe_to)).unwrap().replacen(
        "MIME-Version",
        "Auto-Submitted: auto-generated\nMIME-Version",
        1,
    );
    assert_eq!(
        prepare(&rules, marked.as_bytes(), Source::File, now).1,
        Verdict::Unsubscribe
    );
    // "unsubscribe" written to Reply-To is a reply, never an unsubscribe.
    let reply_to = signer.reply_address("success@acme.example", id);
    let (mail, verdict) = prepare(&rules, &to(&reply_to), Source::File, now);
    assert!(matches!(verdict, Verdict::Reply { .. }), "{verdict:?}");
    assert_eq!(mail.by_token, Some(id));
    // An address of another key, or with the reply token under `u-`,
    // names nothing.
    let reply_token = reply_to.split_once('+').unwrap().1;
    for forged in [
        Signer::new(b"another-key").unsubscribe_address("success@acme.example", id),
        format!("success+u-{reply_token}"),
    ] {
        let (mail, verdict) = prepare(&rules, &to(&forged), Source::File, now);
        assert_eq!(verdict, Verdict::Unsubscribe, "{forged}");
        assert_eq!(
            (mail.by_token, mail.by_reference.len()),
            (None, 0),
            "{forged}"
        );
    }
}

/// Out-of-office answers that say so only in their subject, by language:
/// (fixture, how the subject begins).
const OUT_OF_OFFICE: &[(&str, &str)] = &[
    ("auto_reply_de.eml", "Automatische Antwort:"),
    ("auto_reply_fr.eml", "Réponse automatique :"),
    ("auto_reply_es.eml", "Respuesta automática:"),
    ("auto_reply_pt.eml", "Resposta automática:"),
    ("auto_reply_it.eml", "Risposta automatica:"),
    ("auto_reply_nl.eml", "Automatisch antwoord:"),
    ("auto_reply_sv.eml", "Autosvar:"),
    ("auto_reply_fi.eml", "Automaattinen vastaus:"),
    ("auto_reply_pl.eml", "Automatyczna odpowiedź:"),
    ("auto_reply_ru.eml", "Автоматический ответ:"),
    ("auto_reply_ja.eml", "自動応答:"),
    ("auto_reply_zh.eml", "自动回复:"),
    ("auto_reply_ko.eml", "자동 응답:"),
    ("auto_reply_en_no_colon.eml", "Out of Office AutoReply"),
    ("auto_reply_de_notes.eml", "Abwesenheitsnotiz:"),
];

/// `raw` with its Subject (folded lines and all) replaced by `subject`.
fn with_subject(raw: &[u8], subject: &str) -> Vec<u8> {
    let text = String::from_utf8(raw.to_vec()).unwrap();
    let mut out = Vec::new();
    let mut in_subject = false;
    let mut in_head = true;
    for line in text.split_inclusive('\n') {
        if in_head && line.trim().is_empty() {
            in_head = false;
        }
        if in_head && line.to_ascii_lowercase().starts_with("subject:") {
            in_subject = true;
            out.push(format!("Subject: {subject}\n"));
            continue;
        }
        if in_subject && line.starts_with([' ', '\t']) {
            continue;
        }
        in_subject = false;
        out.push(line.to_owned());
    }
    out.concat().into_bytes()
}

/// `raw` without the header `name`.
fn without_header(raw: &[u8], name: &str) -> Vec<u8> {
    let text = String::from_utf8(raw.to_vec()).unwrap();
    let prefix = format!("{}:", name.to_ascii_lowercase());
    text.split_inclusive('\n')
        .filter(|l| !l.to_ascii_lowercase().starts_with(&prefix))
        .collect::<String>()
        .into_bytes()
}

#[test]
fn out_of_office_subjects_in_thirteen_languages_are_automatic() {
    for (name, _) in OUT_OF_OFFICE {
        let raw = fixture(name);
        assert_eq!(classify::read(&raw).verdict, Verdict::AutoReply, "{name}");
        // The subject alone tells: the same mail under a person's subject
        // is a reply.
        let retitled = with_subject(&raw, "Re: Welcome, Ana");
        assert!(
            matches!(classify::read(&retitled).verdict, Verdict::Reply { .. }),
            "{name}: {:?}",
            classify::read(&retitled).verdict
        );
    }
    // Behind reply prefixes, in capitals, without a colon.
    let raw = fixture("auto_reply_de.eml");
    for subject in [
        "AW: Automatische Antwort: Welcome, Ana",
        "RE: OUT OF OFFICE",
        "Abwesenheitsnotiz",
        "Re: =?UTF-8?Q?R=C3=A9ponse_automatique_=3A_Welcome?=",
    ] {
        let verdict = classify::read(&with_subject(&raw, subject)).verdict;
        assert_eq!(verdict, Verdict::AutoReply, "{subject}");
    }
}

#[test]
fn exchange_suppression_counts_only_beside_its_responder_mark() {
    // An Exchange rule's answer, under a subject of its own.
    let rule = fixture("exchange_rule_reply.eml");
    assert_eq!(classify::read(&rule).verdict, Verdict::AutoReply);
    let unmarked = without_header(&rule, "X-MS-Exchange-Inbox-Rules-Loop");
    assert!(
        matches!(classify::read(&unmarked).verdict, Verdict::Reply { .. }),
        "X-Auto-Response-Suppress alone says nothing"
    );
    // People's replies carry it, even with the value tend's own mail sets.
    let person = String::from_utf8(fixture("reply_outlook.eml"))
        .unwrap()
        .replace(
            "X-Auto-Response-Suppress: DR, RN, NRN, OOF, AutoReply",
            "X-Auto-Response-Suppress: All",
        );
    assert!(person.contains("X-Auto-Response-Suppress: All"));
    assert!(matches!(
        classify::read(person.as_bytes()).verdict,
        Verdict::Reply { .. }
    ));
    // The X- headers responders add count on their own.
    for header in ["X-Autoreply: yes", "X-Autorespond: vacation"] {
        let marked = person.replacen("MIME-Version", &format!("{header}\nMIME-Version"), 1);
        assert_eq!(
            classify::read(marked.as_bytes()).verdict,
            Verdict::AutoReply,
            "{header}"
        );
    }
}

/// Runs Python's `email` package, strict policy, over `files`: one JSON
/// object per file. Installs Debian's python3 when there is none.
fn python_reads(files: &[std::path::PathBuf]) -> (bool, Vec<serde_json::Value>) {
    let python = || {
        std::process::Command::new("python3")
            .arg("--version")
            .output()
    };
    if !python().is_ok_and(|o| o.status.success()) {
        let apt = |args: &[&str]| {
            std::process::Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .is_ok_and(|s| s.success())
        };
        let installed = apt(&["install", "-y", "-qq", "python3"])
            || (apt(&["update", "-qq"]) && apt(&["install", "-y", "-qq", "python3"]));
        assert!(
            installed && python().is_ok_and(|o| o.status.success()),
            "the MIME check needs python3 and could not install it (apt-get install python3)"
        );
    }
    let out = std::process::Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/inbound_strict_mime.py"))
        .args(files)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let read = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), read)
}

#[test]
fn the_fixtures_are_well_formed_mime_to_an_independent_parser() {
    let dir = tempfile::tempdir().unwrap();
    let mut names: Vec<&str> = OUT_OF_OFFICE.iter().map(|(name, _)| *name).collect();
    names.extend([
        "exchange_rule_reply.eml",
        "unsubscribe_gmail.eml",
        "unsubscribe_by_hand.eml",
    ]);
    let files: Vec<_> = names
        .iter()
        .map(|name| {
            let filled = String::from_utf8(fixture(name))
                .unwrap()
                .replace("{{UNSUBSCRIBE_TO}}", "success+u-0abc@acme.example");
            let path = dir.path().join(name);
            std::fs::write(&path, filled).unwrap();
            path
        })
        .collect();
    let (ok, read) = python_reads(&files);
    assert!(ok, "{read:#?}");
    assert_eq!(read.len(), files.len());
    for (name, python) in names.iter().zip(&read) {
        assert_eq!(python["error"], serde_json::Value::Null, "{name}: {python}");
        // Both parsers decode the same subject (RFC 2047) and body
        // (quoted-printable, base64, charsets).
        let raw = fixture(name);
        let ours = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert_eq!(python["subject"], ours.subject().unwrap(), "{name}");
        assert_eq!(
            python["text"].as_str().unwrap().trim_end(),
            ours.body_text(0).unwrap().trim_end(),
            "{name}"
        );
        if let Some((_, begins)) = OUT_OF_OFFICE.iter().find(|(n, _)| n == name) {
            assert!(
                python["subject"].as_str().unwrap().starts_with(begins),
                "{name}: {python}"
            );
        }
    }
    // The check can fail: raw 8-bit bytes in a header and a broken
    // base64 body are refused.
    let bad = dir.path().join("bad.eml");
    std::fs::write(
        &bad,
        "From: J\u{fc}rgen <j@beispiel.de>\nSubject: hi\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n5bGx55SwI=Wkq\n",
    )
    .unwrap();
    let (ok, read) = python_reads(&[bad]);
    assert!(!ok, "{read:#?}");
    assert!(
        read[0]["error"].as_str().unwrap().contains("8-bit"),
        "{read:#?}"
    );
}

/// Every out-of-office fixture through `tend inbound`, answering a real
/// sent message: each an automatic reply, none a reply.
fn out_of_office_through_the_binary(p: &common::Project) {
    p.file(
        "config/playbooks/onboarding.toml",
        "name = \"onboarding\"\nkind = \"checkin\"\ncategory = \"onboarding\"\n\n[[step]]\nid = \"welcome\"\ntemplate = \"welcome\"\nanchor = \"signup_at\"\nafter = \"1d\"\n",
    );
    p.file(
        "templates/welcome.md.hbs",
        "+++\nsubject = \"Welcome, {{customer.first_name}}\"\n+++\nHi {{customer.first_name}}.\n",
    );
    p.file(
        "customers.csv",
        "id,email,name,signup_at\nana,ana@example.com,Ana Lima,2026-03-02T08:00:00Z\n",
    );
    p.tend(&["import", "customers", "customers.csv"])
        .expect_code(0);
    common::tick(p, "2026-03-03T10:00:00Z");
    let all = common::json(&p.tend(&["messages", "--format", "json"]).expect_code(0));
    let (id, message_id) = (
        all[0]["id"].as_str().unwrap(),
        all[0]["message_id"].as_str().unwrap(),
    );
    for (name, _) in OUT_OF_OFFICE {
        let raw = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/inbound")
                .join(name),
        )
        .unwrap()
        .replace("{{MESSAGE_ID}}", message_id)
        .replace("{{REPLY_TO}}", "success@acme.example");
        p.file(name, raw);
        let out = p
            .tend(&["inbound", name, "--now", "2026-03-03T11:00:00Z"])
            .expect_code(0)
            .stdout();
        assert_eq!(
            out.trim(),
            format!("{name}: an automatic reply to message {id} (customer ana)")
        );
    }
    let responses = common::json(&p.tend(&["responses", "--format", "json"]).expect_code(0));
    let kinds: Vec<&str> = responses
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["auto_reply"; OUT_OF_OFFICE.len()]);
    let report = common::json(&p.tend(&["report", "--format", "json"]).expect_code(0));
    assert_eq!(report["replies"], 0, "{report:#}");
}

fn project(database: Option<&str>) -> common::Project {
    let mut p =
        common::Project::new("[mail]\ntransport = \"file\"\n[mail.file]\ndir = \"outbox\"\n");
    if let Some(url) = database {
        p = p.env("TEND__DATABASE__URL", url);
    }
    std::fs::create_dir_all(p.path().join("config/playbooks")).unwrap();
    std::fs::create_dir_all(p.path().join("templates")).unwrap();
    p
}

#[test]
fn out_of_office_in_every_language_is_no_reply_on_sqlite() {
    out_of_office_through_the_binary(&project(None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_office_in_every_language_is_no_reply_on_postgres() {
    common::on_fresh_postgres(|url| out_of_office_through_the_binary(&project(Some(url)))).await;
}
