//! Playbook files: what parses, and every mistake a success manager can make
//! named by file and line with the fix.

use std::collections::HashSet;
use std::path::Path;

use tend::domain::playbook::{Anchor, Kind, Known, Survey, Trigger, parse};
use tend::domain::window::WindowSpec;

const GOOD: &str = r#"
name = "onboarding"
kind = "checkin"
category = "onboarding"
audience = 'customer.plan != "free"'

[[step]]
id = "welcome-checkin"
template = "onboarding/welcome_checkin"
anchor = "signup_at"
after = "1d"
survey = "ces"

[[step]]
id = "tip-dashboards"
kind = "tip"
category = "tips"
template = "tips/dashboards"
anchor = "signup_at"
after = "3d"
when = '!("dashboards" in customer.attributes.features)'

[[step]]
id = "renewal"
template = "reminders/renewal"
anchor = "renewal_at"
before = "30d"

[[step]]
id = "backup-reminder"
template = "reminders/backup"
cron = "0 10 1 * *"
when = 'customer.plan == "self-hosted"'
expires = "3d"

[[step]]
id = "after-ticket"
template = "tips/dashboards"
anchor = "event:ticket_closed"
after = "2h"

[[step]]
id = "at-risk"
template = "tips/dashboards"
anchor = "stage:at_risk"
"#;

fn known_parse(text: &str) -> Result<tend::domain::playbook::Playbook, Vec<String>> {
    let categories: HashSet<String> = ["onboarding", "tips", "maintenance"]
        .map(String::from)
        .into();
    let stages: HashSet<String> = ["onboarding", "at_risk"].map(String::from).into();
    let templates = [
        "onboarding/welcome_checkin",
        "tips/dashboards",
        "reminders/renewal",
        "reminders/backup",
    ];
    let exists = |t: &str| templates.contains(&t);
    let roles: Vec<String> = tend::domain::account::DEFAULT_ROLES
        .iter()
        .map(|r| r.to_string())
        .collect();
    let known = Known {
        categories: &categories,
        stages: &stages,
        account_stages: &["renewal".to_owned(), "active".to_owned()]
            .into_iter()
            .collect(),
        template_exists: &exists,
        templates: &[],
        window: &WindowSpec::default(),
        roles: &roles,
        team: &["maria".to_owned()],
    };
    parse(Path::new("config/playbooks/onboarding.toml"), text, &known)
        .map_err(|problems| problems.iter().map(ToString::to_string).collect())
}

#[test]
fn a_good_playbook_parses_into_typed_steps() {
    let p = known_parse(GOOD).unwrap();
    assert_eq!(
        (p.name.as_str(), p.kind, p.category.as_str()),
        ("onboarding", Kind::Checkin, "onboarding")
    );
    assert!(p.audience.is_some());
    assert_eq!(p.steps.len(), 6);
    let welcome = &p.steps[0];
    assert_eq!(welcome.survey, Some(Survey::Ces));
    assert_eq!(welcome.expires.to_string(), "7d");
    assert!(
        matches!(&welcome.trigger, Trigger::Anchor { anchor: Anchor::SignupAt, offset } if offset.num_hours() == 24)
    );
    let tip = &p.steps[1];
    assert_eq!((tip.kind, tip.category.as_str()), (Kind::Tip, "tips"));
    assert!(
        matches!(&p.steps[2].trigger, Trigger::Anchor { anchor: Anchor::RenewalAt, offset } if offset.num_days() == -30)
    );
    assert!(
        matches!(&p.steps[3].trigger, Trigger::Cron { pattern, .. } if pattern == "0 10 1 * *")
    );
    assert_eq!(p.steps[3].expires.to_string(), "3d");
    assert!(
        matches!(&p.steps[4].trigger, Trigger::Anchor { anchor: Anchor::Event(e), .. } if e == "ticket_closed")
    );
    assert!(
        matches!(&p.steps[5].trigger, Trigger::Anchor { anchor: Anchor::Stage(s), offset } if s == "at_risk" && offset.is_zero())
    );
}

fn problems_of(text: &str) -> Vec<String> {
    known_parse(text).expect_err("problems expected")
}

#[test]
fn unknown_keys_and_values_name_their_lines() {
    let text = GOOD
        .replace("survey = \"ces\"", "survey = \"stars\"")
        .replace("after = \"3d\"", "aftr = \"3d\"");
    let found = problems_of(&text);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        found[0].starts_with("config/playbooks/onboarding.toml:12: unknown variant `stars`"),
        "{found:?}"
    );
    assert!(
        found[1].starts_with("config/playbooks/onboarding.toml:20: unknown field `aftr`"),
        "{found:?}"
    );
}

#[test]
fn every_semantic_mistake_is_listed() {
    let text = r#"name = "Bad Name"
kind = "tip"
category = "newsletter"

[[step]]
id = "one"
template = "tips/missing"
anchor = "signup"
after = "1d"

[[step]]
id = "one"
template = "tips/dashboards"
cron = "0 25 * * *"

[[step]]
id = "three"
template = "tips/dashboards"
anchor = "signup_at"
after = "1d"
before = "2d"
when = 'customer.plann == "pro"'

[[step]]
id = "four"
template = "tips/dashboards"
anchor = "stage:nowhere"
when = 'customer.plan =='

[[step]]
id = "five"
template = "tips/dashboards"
expires = "2 fortnights"
"#;
    let found = problems_of(text);
    let expect = ["onboarding.toml:33: \"2 fortnights\" is not a length of time"];
    assert!(found.iter().any(|f| f.contains(expect[0])), "{found:#?}");

    let text = text.replace("expires = \"2 fortnights\"\n", "");
    let found = problems_of(&text);
    for (line, needle) in [
        (1, "playbook name \"Bad Name\" must be lower-case"),
        (3, "category \"newsletter\" is not declared in tend.toml"),
        (
            7,
            "template \"tips/missing\" does not exist: create templates/tips/missing.md.hbs",
        ),
        (8, "anchor \"signup\" is unknown; use signup_at"),
        (12, "step id \"one\" is used twice"),
        (14, "cron \"0 25 * * *\" is not a 5-field pattern"),
        (21, "a step has after or before, not both"),
        (22, "customer.plann is not a customer field"),
        (27, "names a stage no [[lifecycle.stage]] declares"),
        (28, "does not parse"),
        (31, "step \"five\" has no time"),
    ] {
        let prefix = format!("config/playbooks/onboarding.toml:{line}: ");
        assert!(
            found
                .iter()
                .any(|f| f.starts_with(&prefix) && f.contains(needle)),
            "no {prefix}…{needle} in\n{}",
            found.join("\n")
        );
    }
    assert_eq!(found.len(), 11, "{}", found.join("\n"));
}

#[test]
fn a_missing_kind_and_no_steps() {
    let found = problems_of("name = \"x\"\ncategory = \"tips\"\n");
    assert!(
        found.iter().any(|f| f.contains("kind is missing")),
        "{found:?}"
    );
    assert!(
        found.iter().any(|f| f.contains("has no [[step]]")),
        "{found:?}"
    );
}

#[test]
fn a_playbook_window_takes_what_it_leaves_out_from_delivery_window() {
    let text = GOOD.replace(
        "audience = ",
        "window = { days = \"sat-sun\" }\naudience = ",
    );
    let p = known_parse(&text).unwrap();
    let window = p.window.expect("the playbook's own window");
    assert_eq!(window.days, [5, 6].into());
    // The hours of delivery.window (here its defaults, 09:00–17:00).
    let at = |s| chrono::NaiveTime::parse_from_str(s, "%H:%M").unwrap();
    assert_eq!((window.start, window.end), (at("09:00"), at("17:00")));
}

#[test]
fn a_playbook_window_that_ends_before_it_starts_says_where_each_end_comes_from() {
    // Starts at 18:00 here, ends at 17:00 from delivery.window.
    let text = GOOD.replace("audience = ", "window = { start = \"18:00\" }\naudience = ");
    let found = problems_of(&text);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("config/playbooks/onboarding.toml:5: window: the window ends at 17:00 before it starts at 18:00"),
        "{found:?}"
    );
    assert!(
        found[0].ends_with(r#"(from delivery.window: days = "mon-fri", end = "17:00")"#),
        "{found:?}"
    );
    // A key it does not know is still refused, at its line.
    let text = GOOD.replace(
        "audience = ",
        "window = { days = \"sat\", tz = \"UTC\" }\naudience = ",
    );
    let found = problems_of(&text);
    assert!(
        found[0].starts_with("config/playbooks/onboarding.toml:5: unknown field `tz`"),
        "{found:?}"
    );
}

#[test]
fn the_names_of_tends_own_messages_are_not_playbook_names() {
    for name in ["broadcast", "incident"] {
        let text = format!(
            "name = \"{name}\"\nkind = \"tip\"\ncategory = \"tips\"\n\n[[step]]\nid = \"one\"\ntemplate = \"tips/dashboards\"\nanchor = \"signup_at\"\nafter = \"1d\"\n"
        );
        let found = problems_of(&text);
        assert!(
            found
                .iter()
                .any(|f| f.contains(&format!("playbook name \"{name}\" is tend's own"))),
            "{found:#?}"
        );
    }
}
