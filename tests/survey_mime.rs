//! A survey message as an independent parser reads it: Python's `email`
//! package with its strict policy (every defect is an error) parses
//! `tend preview --format eml` for each survey kind, decodes both parts,
//! and checks that the HTML part closes every element it opens. Python 3
//! comes from Debian's packages, installed when missing.

mod common;

use common::Project;

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
        let parsed = common::python::strict_mime(&file);
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
