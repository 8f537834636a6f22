//! Survey mail and its answer page in a real browser (headless Chromium
//! over WebDriver), at a phone's 375 px and a desktop's 1000 px: every
//! answer is a tap target of at least 44×44 px, nothing scrolls sideways,
//! the preheader stays hidden even when the mail client drops `<style>`,
//! and the answer page shows the question the mail asked with the clicked
//! answer chosen, on SQLite and on PostgreSQL. Screenshots go to
//! `target/tmp/survey-screens/`.

mod common;

use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};
use common::browser::Browser;
use common::daemon::Daemon;
use common::{Project, free_port, json, tick};
use serde_json::Value;
use tend::config::Settings;

/// One check-in step per survey kind, a day after signing up.
const PLAYBOOK: &str = r#"
name = "checkins"
kind = "checkin"
category = "checkins"

[[step]]
id = "nps"
template = "nps"
anchor = "signup_at"
after = "1d"
survey = "nps"

[[step]]
id = "csat"
template = "csat"
anchor = "signup_at"
after = "1d"
survey = "csat"

[[step]]
id = "ces"
template = "ces"
anchor = "signup_at"
after = "1d"
survey = "ces"

[[step]]
id = "yesno"
template = "yesno"
anchor = "signup_at"
after = "1d"
survey = "yesno"
"#;

/// The question the NPS mail asks, rendered for Ana.
const NPS_QUESTION: &str = "How likely are you to recommend Acme Cloud to a colleague, Ana?";

const SURVEYS: [(&str, usize); 4] = [("nps", 11), ("csat", 5), ("ces", 7), ("yesno", 2)];

fn screens() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("survey-screens")
}

/// A project that has mailed Ana one message per survey kind (through the
/// file transport), with links to `base`, on the SQLite default or the
/// store at `database`.
fn mailed(base: &str, database: Option<&str>) -> (Project, DateTime<Utc>) {
    let mut p = Project::new("[delivery]\ncap = { max = 10, per = \"7d\" }\n")
        .env("TEND__HTTP__PUBLIC_URL", base);
    if let Some(url) = database {
        p = p.env("TEND__DATABASE__URL", url);
    }
    std::fs::create_dir_all(p.path().join("config/playbooks")).unwrap();
    std::fs::create_dir_all(p.path().join("templates")).unwrap();
    p.file("config/playbooks/checkins.toml", PLAYBOOK);
    p.file(
        "templates/nps.md.hbs",
        "+++\nsubject = \"One question\"\npreheader = \"A secret preview line\"\nquestion = \"How likely are you to recommend {{company.product}} to a colleague, {{customer.first_name}}?\"\n+++\nHi {{customer.first_name}},\n\nit has been a day.\n\n{{> survey}}\n\nThank you!\n",
    );
    for kind in ["csat", "ces", "yesno"] {
        p.file(
            &format!("templates/{kind}.md.hbs"),
            "+++\nsubject = \"One question\"\npreheader = \"A secret preview line\"\n+++\nHi {{customer.first_name}},\n\n{{> survey}}\n",
        );
    }
    // The next moment Ana (UTC) is in the default send window.
    let window = Settings::default().delivery.window.parse().unwrap();
    let at = window.next_opening(Utc::now() + Duration::minutes(1), chrono_tz::UTC);
    let signup = (at - Duration::days(2)).to_rfc3339();
    p.file(
        "customers.csv",
        format!("id,email,name,signup_at\nana,ana@example.com,Ana Lima,{signup}\n"),
    );
    p.tend(&["import", "customers", "customers.csv"])
        .expect_code(0);
    let sent = tick(&p, &at.to_rfc3339());
    assert_eq!(sent["sent"], 4, "{sent}");
    (p, at)
}

/// The HTML part of the mail that asks `survey`, from the outbox.
fn html_of(p: &Project, survey: &str) -> String {
    let messages = json(&p.tend(&["messages", "--format", "json"]).expect_code(0));
    let message_id = messages
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["step"] == survey)
        .and_then(|m| m["message_id"].as_str())
        .unwrap_or_else(|| panic!("no {survey} message: {messages}"))
        .to_owned();
    for entry in std::fs::read_dir(p.path().join("data/outbox")).unwrap() {
        let raw = std::fs::read(entry.unwrap().path()).unwrap();
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        if parsed.message_id() == Some(message_id.as_str()) {
            return parsed.body_html(0).unwrap().into_owned();
        }
    }
    panic!("no mail with Message-ID {message_id}");
}

/// The path of the first `base/route/…` link in `html`.
fn link(html: &str, base: &str, route: &str) -> String {
    let start = html
        .find(&format!("\"{base}/{route}/"))
        .unwrap_or_else(|| panic!("no /{route}/ link in:\n{html}"))
        + 1
        + base.len();
    let rest = &html[start..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// What the reader of the mail sees, measured by the page itself.
const MEASURE_MAIL: &str = r#"
const box = e => { const r = e.getBoundingClientRect();
  return { text: e.textContent.trim(), left: r.left, right: r.right, top: r.top, width: r.width, height: r.height }; };
const pre = document.querySelector('.preheader');
return {
  inner: window.innerWidth,
  scroll: document.documentElement.scrollWidth,
  buttons: [...document.querySelectorAll('a[href*="/r/"]')].map(box),
  preheader: pre && { width: pre.getBoundingClientRect().width, height: pre.getBoundingClientRect().height, shown: pre.checkVisibility() },
  text: document.body.innerText,
};
"#;

/// Mail clients that strip `<style>` (and the class rules in it).
const DROP_STYLE: &str =
    "document.querySelectorAll('style').forEach(s => s.remove()); return true;";

/// Asserts what every reader needs of one mail at the current width.
fn assert_mail_fits(survey: &str, count: usize, seen: &Value, stripped: bool) {
    let case = format!(
        "{survey} at {}px{}",
        seen["inner"],
        if stripped { " without <style>" } else { "" }
    );
    let inner = seen["inner"].as_f64().unwrap();
    assert!(
        seen["scroll"].as_f64().unwrap() <= inner,
        "{case}: the body scrolls sideways: {seen}"
    );
    let buttons = seen["buttons"].as_array().unwrap();
    assert_eq!(buttons.len(), count, "{case}: {seen}");
    for b in buttons {
        let (w, h) = (b["width"].as_f64().unwrap(), b["height"].as_f64().unwrap());
        assert!(
            w >= 44.0 && h >= 44.0,
            "{case}: button {b} is smaller than 44×44"
        );
        assert!(
            b["left"].as_f64().unwrap() >= 0.0 && b["right"].as_f64().unwrap() <= inner,
            "{case}: button {b} is outside the viewport"
        );
    }
    let pre = &seen["preheader"];
    assert_eq!(pre["shown"], false, "{case}: the preheader shows: {pre}");
    assert!(
        pre["width"].as_f64().unwrap() * pre["height"].as_f64().unwrap() == 0.0,
        "{case}: the preheader takes room: {pre}"
    );
    let text = seen["text"].as_str().unwrap();
    assert!(!text.contains("A secret preview line"), "{case}: {text}");
    let ends: &[&str] = match survey {
        "nps" => &[
            "0 = Not at all likely",
            "10 = Extremely likely",
            NPS_QUESTION,
        ],
        "csat" => &[
            "1 = Very dissatisfied",
            "5 = Very satisfied",
            "How satisfied are you",
        ],
        "ces" => &["1 = Very difficult", "7 = Very easy", "How easy was it"],
        _ => &["Was this helpful?", "Yes", "No"],
    };
    for end in ends {
        assert!(
            text.contains(end),
            "{case}: {end:?} is not shown in\n{text}"
        );
    }
}

/// The distinct rows the buttons sit on.
fn rows(seen: &Value) -> usize {
    let mut tops: Vec<i64> = seen["buttons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["top"].as_f64().unwrap().round() as i64)
        .collect();
    tops.sort_unstable();
    tops.dedup();
    tops.len()
}

const MEASURE_ANSWER_PAGE: &str = r#"
const box = e => { const r = e.getBoundingClientRect();
  return { text: e.textContent.trim(), left: r.left, right: r.right, width: r.width, height: r.height }; };
const checked = document.querySelector('input[name=answer]:checked');
return {
  inner: window.innerWidth,
  scroll: document.documentElement.scrollWidth,
  viewport: document.querySelector('meta[name=viewport]')?.content,
  question: document.querySelector('legend')?.innerText,
  scale: document.querySelector('.scale')?.innerText,
  checked: checked && checked.value,
  checked_colour: checked && getComputedStyle(checked.nextElementSibling).backgroundColor,
  choices: [...document.querySelectorAll('label.choice')].map(box),
  button: box(document.querySelector('button[type=submit]')),
};
"#;

#[test]
fn survey_mail_and_answer_page_fit_a_phone_in_a_real_browser() {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let (p, _) = mailed(&base, None);
    let daemon = Daemon::start(&p, port, &[]);
    let browser = Browser::start();

    // The mail, as "View in your browser" shows it (the HTML part itself).
    for (survey, count) in SURVEYS {
        let html = html_of(&p, survey);
        let view = link(&html, &base, "v");
        for width in [375, 1000] {
            browser.resize(width, 1400);
            browser.open(&format!("{base}{view}"));
            let seen = browser.execute(MEASURE_MAIL);
            browser.screenshot(&screens().join(format!("mail-{survey}-{width}.png")));
            assert_mail_fits(survey, count, &seen, false);
            if survey == "nps" {
                // Eleven buttons cannot share a phone's row: they wrap; a
                // desktop has room for them all.
                let expected = if width == 375 { 2 } else { 1 };
                assert_eq!(rows(&seen), expected, "nps at {width}px: {seen}");
            }
            assert_eq!(browser.execute(DROP_STYLE), true);
            let seen = browser.execute(MEASURE_MAIL);
            if width == 375 {
                browser.screenshot(&screens().join(format!("mail-{survey}-{width}-no-style.png")));
            }
            assert_mail_fits(survey, count, &seen, true);
        }
    }

    // The answer page of the NPS mail's 7, on a phone.
    let html = html_of(&p, "nps");
    let seven = link(&html, &base, "r")
        .rsplit_once('/')
        .unwrap()
        .0
        .to_owned()
        + "/7";
    browser.resize(375, 900);
    browser.open(&format!("{base}{seven}"));
    let page = browser.execute(MEASURE_ANSWER_PAGE);
    browser.screenshot(&screens().join("answer-page-375.png"));
    assert_eq!(page["question"], NPS_QUESTION, "{page}");
    let scale = page["scale"].as_str().unwrap_or_default();
    assert!(
        scale.contains("0 = Not at all likely") && scale.contains("10 = Extremely likely"),
        "{page}"
    );
    assert_eq!(page["checked"], "7", "{page}");
    assert_eq!(
        page["checked_colour"], "rgb(34, 81, 204)",
        "the chosen answer stands out: {page}"
    );
    assert!(
        page["viewport"]
            .as_str()
            .is_some_and(|v| v.contains("width=device-width")),
        "{page}"
    );
    assert!(
        page["scroll"].as_f64().unwrap() <= page["inner"].as_f64().unwrap(),
        "the page scrolls sideways: {page}"
    );
    let choices = page["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 11, "{page}");
    for target in choices.iter().chain([&page["button"]]) {
        assert!(
            target["width"].as_f64().unwrap() >= 44.0 && target["height"].as_f64().unwrap() >= 44.0,
            "{target} is smaller than 44×44"
        );
        assert!(
            target["left"].as_f64().unwrap() >= 0.0
                && target["right"].as_f64().unwrap() <= page["inner"].as_f64().unwrap(),
            "{target} is outside the viewport"
        );
    }

    // A thumb on another answer chooses it, and the button records it.
    browser.click("label.choice:nth-child(10)");
    let now = browser.execute("return document.querySelector('input[name=answer]:checked').value;");
    assert_eq!(now, "9");
    browser.click("button[type=submit]");
    let thanks = browser.source_with("We recorded your answer");
    assert!(thanks.contains("<strong>9</strong>"), "{thanks}");
    let responses = json(&p.tend(&["responses", "--format", "json"]).expect_code(0));
    assert_eq!(responses[0]["value"], "9", "{responses}");
    drop(daemon);
}

/// The answer page finds the mail's question through either store: the
/// browser test above runs on SQLite; this reads the page over HTTP from a
/// daemon on PostgreSQL.
#[tokio::test]
async fn the_answer_page_asks_the_mails_question_on_postgres() {
    common::on_fresh_postgres(|url| {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let (p, _) = mailed(&base, Some(url));
        let daemon = Daemon::start(&p, port, &[]);
        for (survey, question, value) in [
            ("nps", NPS_QUESTION.to_owned(), "7"),
            (
                "yesno",
                tend::domain::survey::Survey::Yesno.default_question("Acme Cloud"),
                "no",
            ),
        ] {
            let html = html_of(&p, survey);
            let answer = link(&html, &base, "r")
                .rsplit_once('/')
                .unwrap()
                .0
                .to_owned();
            let page = daemon.get(&format!("{answer}/{value}"));
            assert_eq!(page.status, 200, "{}", page.body);
            assert!(
                page.body.contains(&format!("<legend>{question}</legend>")),
                "{survey}: {}",
                page.body
            );
            assert!(
                page.body.contains(&format!("value=\"{value}\" checked")),
                "{survey}: {}",
                page.body
            );
        }
    })
    .await;
}
