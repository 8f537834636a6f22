//! `tend check` over a whole project: config, lifecycle rules and playbook
//! files, every problem as file:line: message.

mod common;

use common::Project;

fn project_with_templates() -> Project {
    let p = Project::new("");
    std::fs::create_dir_all(p.path().join("config/playbooks")).unwrap();
    std::fs::create_dir_all(p.path().join("templates/tips")).unwrap();
    p.file(
        "templates/tips/dashboards.md.hbs",
        "+++\nsubject = \"Dashboards\"\n+++\nHi\n",
    );
    p
}

const GOOD: &str = r#"name = "tips"
kind = "tip"
category = "tips"

[[step]]
id = "dashboards"
template = "tips/dashboards"
anchor = "signup_at"
after = "3d"
when = '!("dashboards" in customer.attributes.features)'
"#;

#[test]
fn a_good_project_checks_clean() {
    let p = project_with_templates();
    p.file("config/playbooks/tips.toml", GOOD);
    let run = p.tend(&["check"]).expect_code(0);
    assert_eq!(
        run.stdout(),
        "no config file named and none at config/tend.toml: using the built-in defaults\n\
         ok: built-in defaults, 1 playbook, 1 template (and 6 built-in notices)\n"
    );
}

#[test]
fn problems_in_every_file_are_listed_together() {
    let p = project_with_templates();
    p.file(
        "config/tend.toml",
        "[[lifecycle.stage]]\nname = \"new\"\nwhen = 'days_since(customer.signup_at) < \"30\"'\n",
    );
    p.file("config/playbooks/a.toml", GOOD);
    p.file(
        "config/playbooks/b.toml",
        GOOD.replace("after = \"3d\"", "after = \"3 days-ish\""),
    );
    p.file(
        "config/playbooks/c.toml",
        GOOD.replace("tips/dashboards", "tips/nope"),
    );
    p.file("config/playbooks/d.toml", GOOD);
    p.file("config/playbooks/notes.txt", "not a playbook");
    let run = p.tend(&["check"]).expect_code(1);
    let err = run.stderr();
    // The config's own problem stops the playbook check: they depend on it.
    assert!(
        err.contains("config/tend.toml:3: stage \"new\": the condition"),
        "{err}"
    );

    std::fs::remove_file(p.path().join("config/tend.toml")).unwrap();
    p.file(
        "templates/tips/broken.md.hbs",
        "+++\nsubject = \"Hi {{customer.first_name}}\"\n+++\nYou joined {{days_since customer.signup}} days ago.\n",
    );
    let run = p.tend(&["check"]).expect_code(1);
    let err = run.stderr();
    for expected in [
        "config/playbooks/b.toml:9: \"3 days-ish\" is not a length of time",
        "config/playbooks/c.toml:7: template \"tips/nope\" does not exist",
        "config/playbooks/d.toml:1: playbook name \"tips\" is also used by config/playbooks/a.toml",
        "templates/tips/broken.md.hbs:4: {{customer.signup}} is not a variable templates can use",
        "4 problems found",
    ] {
        assert!(err.contains(expected), "no {expected:?} in\n{err}");
    }
}

#[test]
fn a_named_playbooks_folder_must_exist() {
    let p = Project::new("[paths]\nplaybooks = \"playbookz\"\n");
    let run = p.tend(&["check"]).expect_code(1);
    assert!(
        run.stderr()
            .contains("playbookz: cannot read the playbooks folder"),
        "{}",
        run.stderr()
    );
}

#[test]
fn a_playbook_window_is_checked_against_the_configured_delivery_window() {
    let p = project_with_templates();
    // Mornings only, from the configuration; the playbook moves the start
    // past the end it takes from there.
    p.file(
        "config/tend.toml",
        "[delivery]\nwindow = { start = \"08:00\", end = \"12:00\" }\n",
    );
    p.file(
        "config/playbooks/tips.toml",
        GOOD.replace(
            "category = \"tips\"\n",
            "category = \"tips\"\nwindow = { start = \"13:00\" }\n",
        ),
    );
    let run = p.tend(&["check"]).expect_code(1);
    assert!(
        run.stderr().contains(
            "config/playbooks/tips.toml:4: window: the window ends at 12:00 before it starts at 13:00"
        ) && run
            .stderr()
            .contains(r#"(from delivery.window: days = "mon-fri", end = "12:00")"#),
        "{}",
        run.stderr()
    );
    // Starting within those hours, it checks clean.
    p.file(
        "config/playbooks/tips.toml",
        GOOD.replace(
            "category = \"tips\"\n",
            "category = \"tips\"\nwindow = { start = \"10:00\" }\n",
        ),
    );
    p.tend(&["check"]).expect_code(0);
}

#[test]
fn public_url_must_be_https_unless_it_is_this_machine() {
    let p = project_with_templates();
    p.file("config/playbooks/tips.toml", GOOD);
    p.file(
        "config/tend.toml",
        "[http]\npublic_url = \"http://tend.acme.example\"\n",
    );
    let run = p.tend(&["check"]).expect_code(1);
    let err = run.stderr();
    assert!(
        err.contains(
            "config/tend.toml:2: http.public_url \"http://tend.acme.example\" is plain http"
        ) && err
            .contains("put tend behind a TLS proxy and set http.public_url to its https address"),
        "{err}"
    );

    let one_click_notice = "List-Unsubscribe without List-Unsubscribe-Post";
    for loopback in [
        "http://127.0.0.1:8080",
        "http://localhost:8080",
        "http://[::1]:8080",
    ] {
        p.file(
            "config/tend.toml",
            format!("[http]\npublic_url = \"{loopback}\"\n"),
        );
        let run = p.tend(&["check"]).expect_code(0);
        assert!(run.stdout().starts_with("ok: "), "{}", run.stdout());
        let err = run.stderr();
        assert!(
            err.starts_with(&format!(
                "notice: http.public_url {loopback:?} is plain http"
            )) && err.contains(one_click_notice)
                && err.contains("needs an https address"),
            "{err}"
        );
    }

    p.file(
        "config/tend.toml",
        "[http]\npublic_url = \"https://tend.acme.example\"\n",
    );
    let run = p.tend(&["check"]).expect_code(0);
    assert_eq!(run.stderr(), "");
}

/// `[1, 2, … n]`.
fn numbers(n: usize) -> String {
    let items: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
    format!("[{}]", items.join(","))
}

#[test]
fn a_condition_over_its_budget_is_refused_with_its_place() {
    let p = project_with_templates();
    // Four list macros nested over lists of 100: 10^8 bodies, had it run.
    let list = numbers(100);
    let four = format!(
        "{list}.all(a, {list}.all(b, {list}.all(c, {list}.exists(d, a + b + c + d == 0))))"
    );
    p.file(
        "config/playbooks/tips.toml",
        GOOD.replace(
            r#"'!("dashboards" in customer.attributes.features)'"#,
            &format!("'{four}'"),
        ),
    );
    // Two over customer data, each counted at its longest.
    p.file(
        "config/playbooks/pairs.toml",
        GOOD.replace("name = \"tips\"", "name = \"pairs\"").replace(
            r#"'!("dashboards" in customer.attributes.features)'"#,
            "'customer.attributes.features.all(a, customer.attributes.features.exists(b, a == b))'",
        ),
    );
    let run = p.tend(&["check"]).expect_code(1);
    let err = run.stderr();
    for expected in [
        "config/playbooks/tips.toml:10: step.0.when: the condition nests 4 list macros",
        "over the limit of 2: each level multiplies the work by its list's length and the evaluation would exceed its budget",
        "config/playbooks/pairs.toml:10: step.0.when: the condition may take up to",
        "evaluation steps for one customer, over the budget of 100000",
        "2 problems found",
    ] {
        assert!(err.contains(expected), "no {expected:?} in\n{err}");
    }
}

#[test]
fn alert_rules_and_webhooks_are_checked_with_their_line() {
    let p = project_with_templates();
    p.file("config/playbooks/tips.toml", GOOD);
    p.file("weak.secret", "whsec_c2hvcnQ=\n");
    p.file(
        "config/tend.toml",
        r#"[[team]]
id = "maria"
name = "Maria Costa"
email = "maria@acme.example"

[[webhook]]
name = "crm"
url = "crm.example/hooks"
events = ["response.surveys", "message.*"]
secret_file = "weak.secret"

[[webhook]]
name = "warehouse"
url = "https://warehouse.example/in"
events = ["*"]

[[alert]]
on = "replies"

[[alert]]
on = "survey"
when = 'response.score <= 6'

[[alert]]
on = "reply"
to = "mariah"
"#,
    );
    let run = p.tend(&["check"]).expect_code(1);
    let err = run.stderr();
    for expected in [
        "config/tend.toml:8: webhook \"crm\": url \"crm.example/hooks\" is not an http(s) URL",
        "config/tend.toml:9: webhook \"crm\": \"response.surveys\" is no event; did you mean \"response.survey\"?",
        "config/tend.toml:10: webhook \"crm\": the webhook secret holds 5 bytes",
        "config/tend.toml:13: webhook \"warehouse\" has no signing secret; set secret_file",
        "config/tend.toml:18: alert \"replies\": on = \"replies\" is not something an alert hears of",
        "config/tend.toml:22: alert \"survey\":",
        "response.score",
        "config/tend.toml:26: alert \"reply\": to = \"mariah\" names no team member, no webhook and no address; did you mean \"maria\"?",
    ] {
        assert!(err.contains(expected), "no {expected:?} in\n{err}");
    }
}

#[test]
fn an_alert_on_a_stage_that_does_not_exist_or_a_rule_named_twice_is_refused() {
    let p = project_with_templates();
    p.file("config/playbooks/tips.toml", GOOD);
    p.file(
        "config/tend.toml",
        r#"[[lifecycle.stage]]
name = "at-risk"
when = 'customer.health < 40'

[[alert]]
on = "stage:at_risk"
to = "leads@acme.example"

[[alert]]
on = "reply"
to = "leads@acme.example"

[[alert]]
on = "reply"
to = "cs@acme.example"

[[alert]]
name = "complaints"
on = "complaint"
template = "alerts/missing"
"#,
    );
    let err = p.tend(&["check"]).expect_code(1).stderr();
    for expected in [
        "config/tend.toml:6: alert \"stage:at_risk\": no [[lifecycle.stage]] is named \"at_risk\", so it would never fire; did you mean stage:at-risk?",
        "config/tend.toml:14: another alert rule is already named \"reply\"",
        "alert \"complaints\": template = \"alerts/missing\": cannot read templates/alerts/missing.txt.hbs",
    ] {
        assert!(err.contains(expected), "no {expected:?} in\n{err}");
    }
}
