//! Webhook signatures as an independent verifier sees them: the Standard
//! Webhooks reference package from PyPI (`standardwebhooks`, installed once
//! into a virtualenv) accepts what tend signs, and refuses it when the body,
//! the id or the secret differ.

mod common;

use tend::webhook::signature::WebhookSecret;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Verifies `body` with `headers` and `secret` in the reference package:
/// whether it accepts them.
fn verified(secret: &str, body: &[u8], headers: &[(&str, String)]) -> bool {
    let python = common::python::venv(
        "standardwebhooks",
        &["standardwebhooks"],
        "from standardwebhooks import Webhook",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body.json");
    std::fs::write(&file, body).unwrap();
    let headers = serde_json::to_string(
        &headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect::<std::collections::HashMap<_, _>>(),
    )
    .unwrap();
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(
            "import json, sys\n\
             from standardwebhooks import Webhook\n\
             from standardwebhooks.webhooks import WebhookVerificationError\n\
             body = open(sys.argv[2], 'rb').read()\n\
             try:\n\
             \x20   Webhook(sys.argv[1]).verify(body, json.loads(sys.argv[3]))\n\
             \x20   print('valid')\n\
             except WebhookVerificationError as e:\n\
             \x20   print('invalid', e)\n",
        )
        .arg(secret)
        .arg(&file)
        .arg(headers)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    said.starts_with("valid")
}

#[test]
fn the_reference_verifier_accepts_what_tend_signs_and_nothing_else() {
    let secret = WebhookSecret::parse(SECRET).unwrap();
    let body = br#"{"id":"evt_1","type":"response.survey","at":"2026-12-06T09:00:00Z","object":{"value":"9"}}"#;
    // The receiver checks the timestamp against its own clock (5 minutes
    // either way): this one is of now, as a delivery's is.
    let now = chrono::Utc::now().timestamp();
    let headers = secret.headers("evt_1", now, body);
    assert!(verified(SECRET, body, &headers), "{headers:?}");

    let changed = br#"{"id":"evt_1","type":"response.survey","at":"2026-12-06T09:00:00Z","object":{"value":"0"}}"#;
    assert!(!verified(SECRET, changed, &headers), "a changed body");
    let mut other_id = headers.clone();
    other_id[0].1 = "evt_2".into();
    assert!(!verified(SECRET, body, &other_id), "another id");
    assert!(
        !verified("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", body, &headers),
        "another secret"
    );
    let stale = secret.headers("evt_1", now - 3600, body);
    assert!(!verified(SECRET, body, &stale), "an hour-old timestamp");
}
