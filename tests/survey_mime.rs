//! A survey message as an independent parser reads it: Python's `email`
//! package with its strict policy (every defect is an error) parses
//! `tend preview --format eml` for each survey kind, decodes both parts,
//! and checks that the HTML part closes every element it opens. Python 3
//! comes from Debian's packages, installed when missing.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Once;

use common::Project;

static INSTALL: Once = Once::new();

fn python3() -> &'static str {
    INSTALL.call_once(|| {
        let present = |p: &str| {
            Command::new(p)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if present("python3") {
            return;
        }
        let apt = |args: &[&str]| {
            Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .is_ok_and(|s| s.success())
        };
        let packages = ["install", "-y", "-qq", "python3"];
        let installed = apt(&packages) || (apt(&["update", "-qq"]) && apt(&packages));
        assert!(
            installed && present("python3"),
            "the MIME test needs Debian's python3 and could not install it"
        );
    });
    "python3"
}

/// Parses the message in `argv[1]` strictly; prints its text part, or
/// fails with the defect.
const STRICT: &str = r#"
import email, email.policy, sys
from html.parser import HTMLParser

raw = open(sys.argv[1], "rb").read()
for n, line in enumerate(raw.split(b"\r\n"), 1):
    assert len(line) <= 998, f"line {n} is longer than RFC 5322 allows"
    assert b"\n" not in line, f"line {n} ends in a bare LF"
msg = email.message_from_bytes(raw, policy=email.policy.strict)

def headers(part):
    # Header values are parsed (and their defects raised) when read.
    for name, value in part.items():
        str(value)
        assert not getattr(value, "defects", ()), f"{name}: {value.defects}"

headers(msg)
assert msg.get_content_type() == "multipart/alternative", msg.get_content_type()
parts = list(msg.iter_parts())
assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"], parts
for part in parts:
    headers(part)
    assert part.get_content_charset() == "utf-8", part.get_content_charset()
    assert not part.defects, part.defects
assert not msg.defects, msg.defects
text, html = (p.get_content() for p in parts)

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
class Balance(HTMLParser):
    def __init__(self):
        super().__init__()
        self.open = []
    def handle_starttag(self, tag, attrs):
        if tag not in VOID:
            self.open.append((tag, self.getpos()))
    def handle_startendtag(self, tag, attrs):
        pass
    def handle_endtag(self, tag):
        assert self.open, f"</{tag}> at {self.getpos()} closes nothing"
        top, at = self.open.pop()
        assert top == tag, f"</{tag}> at {self.getpos()} closes <{top}> opened at {at}"
b = Balance()
b.feed(html)
b.close()
assert not b.open, f"never closed: {b.open}"
assert html.startswith("<!DOCTYPE html>"), html[:40]
sys.stdout.write(text)
"#;

const PLAYBOOK: &str = r#"
name = "checkins"
kind = "checkin"
category = "checkins"
"#;

#[test]
fn survey_messages_are_well_formed_mime_with_balanced_html() {
    let p = Project::new("[http]\npublic_url = \"https://tend.acme.example\"\n");
    std::fs::create_dir_all(p.path().join("config/playbooks")).unwrap();
    std::fs::create_dir_all(p.path().join("templates")).unwrap();
    let mut playbook = PLAYBOOK.to_owned();
    for kind in ["nps", "csat", "ces", "yesno"] {
        playbook.push_str(&format!(
            "\n[[step]]\nid = \"{kind}\"\ntemplate = \"{kind}\"\nanchor = \"signup_at\"\nafter = \"1d\"\nsurvey = \"{kind}\"\n"
        ));
        p.file(
            &format!("templates/{kind}.md.hbs"),
            "+++\nsubject = \"Ça va, {{customer.first_name}}?\"\npreheader = \"One click\"\n+++\nHi {{customer.first_name}} — one question.\n\n{{> survey}}\n\nThank you!\n",
        );
    }
    p.file("config/playbooks/checkins.toml", playbook);
    p.file(
        "customers.csv",
        "id,email,name,signup_at\nana,ana@example.com,Ana Lima,2026-03-01T10:00:00Z\n",
    );
    p.tend(&["import", "customers", "customers.csv"])
        .expect_code(0);
    let python = python3();
    for (kind, count) in [("nps", 11), ("csat", 5), ("ces", 7), ("yesno", 2)] {
        let eml = p
            .tend(&[
                "preview",
                kind,
                "--customer",
                "ana",
                "--now",
                "2026-03-03T10:00:00Z",
                "--format",
                "eml",
            ])
            .expect_code(0);
        let file = p.file(&format!("{kind}.eml"), &eml.0.stdout);
        let script = p.file("strict.py", STRICT);
        let parsed = Command::new(python)
            .arg(Path::new(&script))
            .arg(&file)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&parsed.stdout);
        assert!(
            parsed.status.success(),
            "{kind}: Python's strict parser refused the message:\n{}\n{}",
            String::from_utf8_lossy(&parsed.stderr),
            eml.stdout()
        );
        // The text part as Python decoded it: one answer a line.
        let answers: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("https://tend.acme.example/r/"))
            .collect();
        assert_eq!(answers.len(), count, "{kind}:\n{text}");
        for line in answers {
            assert!(
                line.ends_with('>') && line.matches("/r/").count() == 1,
                "{kind}: {line:?}"
            );
        }
        assert!(
            text.starts_with("Hi Ana — one question."),
            "{kind}:\n{text}"
        );
    }
}
