//! The inbound classifier against a corpus shaped like what real systems
//! send: Postfix, Exim, Gmail and Exchange bounces, an ARF complaint,
//! automatic replies from Gmail, Outlook and an RFC 3834 responder, human
//! replies quoting in several styles, and garbage. Each fixture names the
//! message it answers with placeholders filled here.

use std::path::Path;

use chrono::{TimeZone, Utc};
use tend::inbound::classify::{self, Verdict};
use tend::inbound::{Rules, prepare};
use tend::store::Effect;
use tend::token::Signer;

/// A message of ours, as the planner names it.
fn ours() -> (uuid::Uuid, String) {
    let id = uuid::Uuid::parse_str("0193a1b2-c3d4-7e5f-8071-8293a4b5c6d7").unwrap();
    (id, format!("{}@acme.example", id.simple()))
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
        let (mail, _) = prepare(&rules, &fixture(name), "file", now);
        assert_eq!(mail.by_token, token.then_some(id), "{name}: token");
        let refers = mail
            .by_reference
            .iter()
            .any(|(i, m)| *i == id && *m == message_id);
        assert_eq!(refers, reference, "{name}: {:?}", mail.by_reference);
        assert!(!mail.dedupe.is_empty(), "{name}");
    }
    // What each kind does to suppression.
    let effect = |name| prepare(&rules, &fixture(name), "file", now).0.effect;
    assert!(matches!(
        effect("postfix_hard_bounce.eml"),
        Effect::Suppress {
            source: "bounce",
            ..
        }
    ));
    assert!(matches!(
        effect("arf_complaint.eml"),
        Effect::Suppress {
            source: "complaint",
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
    let key = |name| prepare(&rules, &fixture(name), "file", now).0.dedupe;
    assert_eq!(key("garbage.eml"), key("garbage.eml"));
    assert!(key("garbage.eml").starts_with("sha256:"));
    assert_eq!(
        key("reply_gmail.eml"),
        "CAF=r3ply+abcdef0123456789@mail.gmail.com"
    );
}
