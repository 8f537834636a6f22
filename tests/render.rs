//! Rendering templates: both parts, strictness, escaping, helpers, survey
//! and tracked links, overrides, and problems as file:line.

use std::path::Path;

use chrono::{DateTime, Utc};
use tend::config::Settings;
use tend::domain::customer::Customer;
use tend::domain::message::MessageId;
use tend::domain::playbook::Survey;
use tend::render::{Letter, Renderer};
use tend::token::{Purpose, Signer};

fn now() -> DateTime<Utc> {
    "2026-03-10T15:00:00Z".parse().unwrap()
}

fn settings(dir: &Path) -> Settings {
    let mut s = Settings::default();
    s.paths.templates = dir.to_string_lossy().into_owned();
    s.http.public_url = "https://tend.acme.example".into();
    s
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn load(dir: &Path) -> Renderer {
    Renderer::load(&settings(dir), Signer::new(b"test-key")).unwrap()
}

fn letter<'a>(customer: &'a Customer, survey: Option<Survey>) -> Letter<'a> {
    Letter {
        message: MessageId::new(),
        customer,
        category: "tips",
        survey,
        incident: None,
        account: None,
        sender: None,
        now: now(),
    }
}

#[test]
fn a_message_has_a_text_part_and_an_html_part_in_the_layout() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "onboarding/welcome.md.hbs",
        "+++\nsubject = \"Welcome, {{customer.first_name}}\"\npreheader = \"Day {{days_since customer.signup_at}}\"\n+++\n# Hello {{customer.first_name}}\n\nYou joined {{pluralize (days_since customer.signup_at) \"day\"}} ago. Read [the guide](https://docs.acme.example/start).\n",
    );
    let renderer = load(dir.path());
    let customer = Customer::sample(now());
    let out = renderer
        .render("onboarding/welcome", &letter(&customer, None))
        .unwrap();
    assert_eq!(out.subject, "Welcome, Sam");
    assert_eq!(out.preheader, "Day 10");
    assert!(
        out.text.starts_with(
            "Hello Sam\n\nYou joined 10 days ago. Read the guide <https://tend.acme.example/c/"
        ),
        "{}",
        out.text
    );
    assert!(out.text.contains("1 Main St, Springfield"), "{}", out.text);
    assert!(out.text.contains(&out.unsubscribe_url));
    assert!(out.html.contains("<h1>Hello Sam</h1>"), "{}", out.html);
    assert!(out.html.contains("1 Main St, Springfield"));
    assert!(
        out.html
            .contains(&format!("href=\"{}\"", out.unsubscribe_url))
    );
    assert!(
        out.unsubscribe_url
            .starts_with("https://tend.acme.example/u/")
    );
    assert!(
        !out.html.contains("https://docs.acme.example/start"),
        "links are tracked"
    );
}

#[test]
fn tracked_links_and_survey_answers_carry_signed_tokens() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "c.md.hbs",
        "+++\nsubject = \"s\"\n+++\n[docs](https://docs.acme.example/x?a=1&b=2)\n\n{{> survey}}\n",
    );
    let renderer = load(dir.path());
    let customer = Customer::sample(now());
    let l = letter(&customer, Some(Survey::Nps));
    let out = renderer.render("c", &l).unwrap();
    let signer = Signer::new(b"test-key");
    let click = out
        .text
        .split("/c/")
        .nth(1)
        .unwrap()
        .split('>')
        .next()
        .unwrap();
    let claims = signer.verify(click, Purpose::Click).unwrap();
    assert_eq!(claims.value, "https://docs.acme.example/x?a=1&b=2");
    assert_eq!(claims.message, l.message);
    // NPS: eleven answers, 0 to 10, each to /r/TOKEN/VALUE.
    let answers: Vec<&str> = out
        .text
        .match_indices("/r/")
        .map(|(i, _)| &out.text[i..])
        .collect();
    assert_eq!(answers.len(), 11, "{}", out.text);
    let first = answers[0].trim_start_matches("/r/");
    let (token, rest) = first.split_once('/').unwrap();
    assert!(rest.starts_with("0>"), "{rest}");
    assert_eq!(signer.verify(token, Purpose::Survey).unwrap().value, "nps");
    assert!(
        out.html
            .contains("How likely are you to recommend Acme Cloud"),
        "{}",
        out.html
    );
    // Without a survey the partial renders nothing.
    let none = renderer.render("c", &letter(&customer, None)).unwrap();
    assert!(!none.text.contains("/r/"));
}

#[test]
fn customer_values_are_escaped_and_cannot_break_headers() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "e.md.hbs",
        "+++\nsubject = \"For {{customer.name}}\"\n+++\nHi {{customer.name}}, welcome.\n",
    );
    let renderer = load(dir.path());
    let mut customer = Customer::sample(now());
    customer.record.name =
        "<script>x</script> [click](https://evil.example)\r\nBcc: victim@example.com".into();
    let out = renderer.render("e", &letter(&customer, None)).unwrap();
    assert!(
        !out.subject.contains('\n') && !out.subject.contains('\r'),
        "{:?}",
        out.subject
    );
    assert!(
        out.html.contains("&lt;script&gt;x&lt;/script&gt;"),
        "{}",
        out.html
    );
    assert!(!out.html.contains("<script>"));
    assert!(
        !out.html.contains("href=\"https://evil.example"),
        "a value cannot become a link"
    );
    assert!(
        out.text
            .contains("<script>x</script> [click](https://evil.example)"),
        "{}",
        out.text
    );
}

#[test]
fn a_missing_variable_is_an_error_with_file_and_line_even_inside_if() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "typo.md.hbs",
        "+++\nsubject = \"s\"\n+++\nline one\n\nHi {{customer.fist_name}}\n",
    );
    write(
        dir.path(),
        "iftypo.md.hbs",
        "+++\nsubject = \"s\"\n+++\n{{#if customer.plann}}x{{/if}}\n",
    );
    write(
        dir.path(),
        "subject.md.hbs",
        "+++\nsubject = \"Hi {{customer.nam}}\"\n+++\nbody\n",
    );
    let renderer = load(dir.path());
    let problems = renderer.check(now());
    let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 3, "{shown:#?}");
    assert!(
        shown[0].contains("iftypo.md.hbs:4:") && shown[0].contains("customer.plann"),
        "{}",
        shown[0]
    );
    assert!(
        shown[1].contains("subject.md.hbs:2:") && shown[1].contains("customer.nam"),
        "{}",
        shown[1]
    );
    assert!(
        shown[2].contains("typo.md.hbs:6:")
            && shown[2].contains("{{customer.fist_name}} is not a variable"),
        "{}",
        shown[2]
    );
}

#[test]
fn attributes_may_be_tested_but_printing_a_missing_one_fails_that_message() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "a.md.hbs",
        "+++\nsubject = \"s\"\n+++\n{{#if customer.attributes.company}}At {{customer.attributes.company}}.{{/if}} Team: {{default customer.attributes.team \"your team\"}}.\n",
    );
    write(
        dir.path(),
        "b.md.hbs",
        "+++\nsubject = \"s\"\n+++\nRegion {{customer.attributes.region}}\n",
    );
    let renderer = load(dir.path());
    assert!(
        renderer.check(now()).is_empty(),
        "{:?}",
        renderer.check(now())
    );
    let customer = Customer::sample(now());
    let out = renderer.render("a", &letter(&customer, None)).unwrap();
    assert!(out.text.starts_with("Team: your team."), "{}", out.text);
    let e = renderer.render("b", &letter(&customer, None)).unwrap_err();
    assert!(e.to_string().contains("b.md.hbs:4:"), "{e}");
    assert!(e.to_string().contains("missing for this customer"), "{e}");
}

#[test]
fn dates_are_shown_in_the_customers_zone_and_the_templates_language() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "d.md.hbs",
        "+++\nsubject = \"s\"\n+++\nRenewal {{date customer.renewal_at}}; {{date now format=\"%A %H:%M\"}}\n",
    );
    write(
        dir.path(),
        "d.pt-BR.md.hbs",
        "+++\nsubject = \"s\"\n+++\nRenovação {{date customer.renewal_at}}; {{date now format=\"%A %H:%M\"}}\n",
    );
    let renderer = load(dir.path());
    let mut customer = Customer::sample(now());
    customer.record.renewal_at = Some("2026-04-01T02:00:00Z".parse().unwrap());
    customer.record.timezone = chrono_tz::America::New_York;
    let out = renderer.render("d", &letter(&customer, None)).unwrap();
    assert!(
        out.text
            .starts_with("Renewal March 31, 2026; Tuesday 11:00"),
        "{}",
        out.text
    );
    // A German reader of the English template gets English dates: the
    // words around them are English.
    customer.record.locale = "de".into();
    customer.record.timezone = chrono_tz::Europe::Berlin;
    let out = renderer.render("d", &letter(&customer, None)).unwrap();
    assert!(
        out.text.starts_with("Renewal April 1, 2026; Tuesday 16:00"),
        "{}",
        out.text
    );
    // An English reader outside the United States: the day first.
    customer.record.locale = "en-GB".into();
    let out = renderer.render("d", &letter(&customer, None)).unwrap();
    assert!(
        out.text.starts_with("Renewal 1 April 2026; Tuesday 16:00"),
        "{}",
        out.text
    );
    // A reader in Portugal gets the Brazilian translation, in Portuguese.
    customer.record.locale = "pt-PT".into();
    let out = renderer.render("d", &letter(&customer, None)).unwrap();
    assert!(
        out.text
            .starts_with("Renovação 1 de abril de 2026; terça 16:00"),
        "{}",
        out.text
    );
}

#[test]
fn files_override_built_in_layouts_and_partials() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "m.md.hbs",
        "+++\nsubject = \"s\"\nlayout = \"plain\"\n+++\nbody {{> signature}}\n",
    );
    write(
        dir.path(),
        "layouts/plain.hbs",
        "<main>{{{body}}}</main>{{> footer}}",
    );
    write(
        dir.path(),
        "partials/footer.hbs",
        "<footer>{{company.postal_address}}</footer>",
    );
    write(
        dir.path(),
        "partials/signature.hbs",
        "— The {{company.name}} team",
    );
    let renderer = load(dir.path());
    let customer = Customer::sample(now());
    let out = renderer.render("m", &letter(&customer, None)).unwrap();
    assert_eq!(
        out.html,
        "<main><p>body — The Acme team</p>\n</main><footer>1 Main St, Springfield</footer>"
    );
}

#[test]
fn incident_notices_are_built_in_and_a_file_overrides_one() {
    let dir = tempfile::tempdir().unwrap();
    let incident = tend::render::context::sample_incident();
    let customer = Customer::sample(now());
    let notice = |renderer: &Renderer, name: &str| {
        let mut letter = letter(&customer, None);
        letter.incident = Some(&incident);
        renderer.render(name, &letter).unwrap()
    };
    // An empty templates folder: every notice still renders.
    let renderer = load(dir.path());
    for name in [
        "incidents/notice",
        "incidents/update",
        "incidents/resolved",
        "incidents/maintenance",
        "incidents/completed",
        "incidents/cancelled",
    ] {
        let out = notice(&renderer, name);
        assert!(
            out.subject.contains("Slow API responses"),
            "{name}: {}",
            out.subject
        );
        assert!(out.html.contains("1 Main St, Springfield"), "{name}");
    }
    write(
        dir.path(),
        "incidents/notice.md.hbs",
        "+++\nsubject = \"Ours: {{incident.title}}\"\n+++\nOur words.\n",
    );
    let out = notice(&load(dir.path()), "incidents/notice");
    assert_eq!(out.subject, "Ours: Slow API responses in the EU region");
    assert!(out.text.starts_with("Our words."), "{}", out.text);
}

#[test]
fn broken_templates_are_listed_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "syntax.md.hbs",
        "+++\nsubject = \"s\"\n+++\nok\n{{#if customer.plan}}\nnever closed\n",
    );
    write(
        dir.path(),
        "layout.md.hbs",
        "+++\nsubject = \"s\"\nlayout = \"fancy\"\n+++\nbody\n",
    );
    write(
        dir.path(),
        "front.md.hbs",
        "+++\nsubject = \"s\"\ncolour = \"red\"\n+++\nbody\n",
    );
    let problems = match Renderer::load(&settings(dir.path()), Signer::new(b"k")) {
        Err(problems) => problems,
        Ok(_) => panic!("the templates are broken"),
    };
    let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 3, "{shown:#?}");
    assert!(
        shown
            .iter()
            .any(|p| p.contains("front.md.hbs:3:") && p.contains("colour")),
        "{shown:#?}"
    );
    assert!(
        shown
            .iter()
            .any(|p| p.contains("layout.md.hbs:3:") && p.contains("fancy")),
        "{shown:#?}"
    );
    assert!(
        shown
            .iter()
            .any(|p| p.contains("syntax.md.hbs:") && p.contains("template syntax")),
        "{shown:#?}"
    );
}

#[test]
fn survey_answers_are_buttons_in_html_and_one_line_each_in_text() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "s.md.hbs",
        "+++\nsubject = \"s\"\n+++\nHi.\n\n{{> survey}}\n\nThanks.\n",
    );
    let renderer = load(dir.path());
    let customer = Customer::sample(now());
    let cases = [
        (
            Survey::Nps,
            11,
            Some(("0", "Not at all likely", "10", "Extremely likely")),
        ),
        (
            Survey::Csat,
            5,
            Some(("1", "Very dissatisfied", "5", "Very satisfied")),
        ),
        (
            Survey::Ces,
            7,
            Some(("1", "Very difficult", "7", "Very easy")),
        ),
        (Survey::Yesno, 2, None),
    ];
    for (survey, count, ends) in cases {
        let out = renderer
            .render("s", &letter(&customer, Some(survey)))
            .unwrap();
        let base = out
            .text
            .split("/r/")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .map(|token| format!("https://tend.acme.example/r/{token}"))
            .unwrap_or_else(|| panic!("{survey:?}: no answer link in\n{}", out.text));
        // Text: the question, then one answer a line (label, meaning at
        // the ends, link), then the rest of the body.
        let lines: Vec<String> = survey
            .answers()
            .into_iter()
            .map(|(value, label)| {
                let meaning = match ends {
                    Some((low, m, _, _)) if low == value => format!(" ({m})"),
                    Some((_, _, high, m)) if high == value => format!(" ({m})"),
                    _ => String::new(),
                };
                format!("{label}{meaning} <{base}/{value}>")
            })
            .collect();
        assert_eq!(lines.len(), count);
        let expected = format!(
            "Hi.\n\n{}\n\n{}\n\nThanks.\n",
            question(survey),
            lines.join("\n")
        );
        assert!(out.text.starts_with(&expected), "{survey:?}:\n{}", out.text);
        // HTML: one button per answer, sized and coloured by inline styles
        // and attributes (clients drop <style>), in a table, not a list.
        let buttons: Vec<&str> = out.html.split("class=\"answer\"").skip(1).collect();
        assert_eq!(buttons.len(), count, "{survey:?}: {}", out.html);
        for button in &buttons {
            let style = button
                .split("style=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            for rule in ["display:inline-block", "min-width:44px", "line-height:44px"] {
                assert!(style.contains(rule), "{survey:?}: {rule} in {style}");
            }
        }
        assert_eq!(out.html.matches("bgcolor=\"#2251cc\"").count(), count);
        assert!(!out.html.contains("<!--tend:survey-->"), "{}", out.html);
        assert!(!out.html.contains("display:flex") && !out.html.contains("display:grid"));
        assert!(out.html.contains(&format!("{}</td>", question(survey))));
        if let Some((low, low_meaning, high, high_meaning)) = ends {
            assert!(
                out.html.contains(&format!(">{low} = {low_meaning}</td>")),
                "{}",
                out.html
            );
            assert!(
                out.html.contains(&format!(">{high} = {high_meaning}</td>")),
                "{}",
                out.html
            );
        }
        assert!(
            out.html
                .contains("<p>Hi.</p>\n<table role=\"presentation\""),
            "{}",
            out.html
        );
    }
}

fn question(survey: Survey) -> String {
    survey.default_question("Acme Cloud")
}

#[test]
fn a_survey_inside_a_paragraph_still_stands_as_its_own_block() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "p.md.hbs",
        "+++\nsubject = \"s\"\n+++\nTell us: {{> survey}} Thanks.\n",
    );
    let renderer = load(dir.path());
    let customer = Customer::sample(now());
    let out = renderer
        .render("p", &letter(&customer, Some(Survey::Yesno)))
        .unwrap();
    assert!(out.html.contains("<p>Tell us:</p>\n<table"), "{}", out.html);
    assert!(
        out.html.contains("</table>\n<p>Thanks.</p>"),
        "{}",
        out.html
    );
    assert!(
        out.text
            .starts_with("Tell us:\n\nWas this helpful?\n\nYes <https://tend.acme.example/r/"),
        "{}",
        out.text
    );
}

#[test]
fn the_preheader_is_hidden_inline_and_the_page_is_in_the_templates_language() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "en.md.hbs",
        "+++\nsubject = \"s\"\npreheader = \"Quick question\"\n+++\nHi.\n",
    );
    write(
        dir.path(),
        "pt.md.hbs",
        "+++\nsubject = \"s\"\nlang = \"pt-BR\"\n+++\nOlá.\n",
    );
    let renderer = load(dir.path());
    let mut customer = Customer::sample(now());
    // The customer's locale says how dates read; the words are the
    // template's.
    customer.record.locale = "de".into();
    let en = renderer.render("en", &letter(&customer, None)).unwrap();
    assert!(en.html.contains("<html lang=\"en\">"), "{}", en.html);
    let hidden = en
        .html
        .split("class=\"preheader\" style=\"")
        .nth(1)
        .and_then(|rest| rest.split_once("\">Quick question</div>"))
        .map(|(style, _)| style)
        .unwrap_or_else(|| panic!("no inline-styled preheader in {}", en.html));
    for rule in [
        "display:none",
        "max-height:0",
        "overflow:hidden",
        "mso-hide:all",
        "font-size:1px",
        "opacity:0",
    ] {
        assert!(hidden.contains(rule), "{rule} in {hidden}");
    }
    let pt = renderer.render("pt", &letter(&customer, None)).unwrap();
    assert!(pt.html.contains("<html lang=\"pt-BR\">"), "{}", pt.html);
    assert!(
        !pt.html.contains("class=\"preheader\""),
        "no empty preheader: {}",
        pt.html
    );
}

#[test]
fn files_override_both_forms_of_the_survey_and_check_names_them() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "s.md.hbs",
        "+++\nsubject = \"s\"\n+++\n{{> survey}}\n",
    );
    write(
        dir.path(),
        "partials/survey.hbs",
        "<div class=\"ours\">{{#each survey.answers}}<a href=\"{{url}}\">{{label}}</a>{{/each}}</div>\n",
    );
    write(
        dir.path(),
        "partials/survey.txt.hbs",
        "Answer: {{#each survey.answers}}{{label}} {{/each}}\n",
    );
    let renderer = load(dir.path());
    let customer = Customer::sample(now());
    let out = renderer
        .render("s", &letter(&customer, Some(Survey::Yesno)))
        .unwrap();
    assert!(
        out.html
            .contains("<div class=\"ours\"><a href=\"https://tend.acme.example/r/"),
        "{}",
        out.html
    );
    assert!(out.text.starts_with("Answer: Yes No\n"), "{}", out.text);

    write(
        dir.path(),
        "partials/survey.txt.hbs",
        "{{survey.question}}\n{{survey.qestion}}\n",
    );
    let problems: Vec<String> = load(dir.path())
        .check(now())
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].contains("partials/survey.txt.hbs:2:")
            && problems[0].contains("survey.qestion"),
        "{}",
        problems[0]
    );
}
