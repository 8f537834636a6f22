//! What a success manager sees when a file is wrong: each message through
//! the real binary on real files, as docs/authoring.md shows it.

mod common;

use common::Project;

/// A project with one template and the playbook `playbook`.
fn project(playbook: &str) -> Project {
    let p = Project::new("");
    std::fs::create_dir_all(p.path().join("config/playbooks")).unwrap();
    std::fs::create_dir_all(p.path().join("templates/tips")).unwrap();
    p.file(
        "templates/tips/dashboards.md.hbs",
        "+++\nsubject = \"Dashboards\"\n+++\nHi {{customer.first_name}}\n",
    );
    p.file("config/playbooks/tips.toml", playbook);
    p
}

fn playbook(extra: &str, when: &str) -> String {
    format!(
        "name = \"tips\"\nkind = \"tip\"\ncategory = \"tips\"\n{extra}\n[[step]]\nid = \"dashboards\"\ntemplate = \"tips/dashboards\"\nanchor = \"signup_at\"\nafter = \"3d\"\nwhen = {when}\n"
    )
}

/// What `check` says is wrong (it fails).
fn problems(p: &Project) -> String {
    p.tend(&["check"]).expect_code(1).stderr()
}

#[test]
fn a_condition_mistake_is_pictured_with_a_caret_and_a_hint_for_each_slip() {
    let p = project(&playbook(
        "",
        r#"'customer.plan = "pro" and customer.stage == "trial"'"#,
    ));
    let out = problems(&p);
    let expected = "config/playbooks/tips.toml:10: step.0.when: the condition does not parse:\n    \
        customer.plan = \"pro\" and customer.stage == \"trial\"\n    \
        \x20             ^\n    \
        a single = does not compare; write == to compare two values\n    \
        customer.plan = \"pro\" and customer.stage == \"trial\"\n    \
        \x20                     ^^^\n    \
        and is not an operator in conditions; write && for \"and\"\n";
    assert!(out.contains(expected), "{out}");
}

#[test]
fn brackets_left_open_and_curly_quotes_are_pointed_at() {
    let p = project(&playbook("", "'days_since(customer.signup_at < 3'"));
    let out = problems(&p);
    assert!(
        out.contains(
            "    days_since(customer.signup_at < 3\n              ^\n    this ( is never closed; add ) where it should end\n"
        ),
        "{out}"
    );
    let p = project(&playbook("", "'customer.plan == “pro”'"));
    let out = problems(&p);
    assert!(
        out.contains("                     ^\n    a curly quote (pasted from a document?); type straight double quotes: \"pro\"\n"),
        "{out}"
    );
}

#[test]
fn single_quotes_inside_a_single_quoted_condition_get_a_hint() {
    let p = project(&playbook("", "'customer.plan == 'pro''"));
    let out = problems(&p);
    assert!(
        out.contains("config/playbooks/tips.toml:10:")
            && out.contains(
                "a value in single quotes ends at its next single quote, so text inside it must use double quotes: when = 'customer.plan == \"pro\"'"
            ),
        "{out}"
    );
}

#[test]
fn misspelt_fields_functions_and_bare_words_are_all_reported_with_what_was_meant() {
    let p = project(&playbook(
        "",
        r#"'customer.plna == "pro" && days_untill(customer.renewl_at) < 30 && customer.stage == trial'"#,
    ));
    let out = problems(&p);
    for hint in [
        "customer.plna is not a customer field; did you mean customer.plan?",
        "customer.renewl_at is not a customer field; did you mean customer.renewal_at?",
    ] {
        assert!(out.contains(hint), "{hint}: {out}");
    }
    let p = project(&playbook(
        "",
        r#"'days_untill(customer.renewal_at) < 30 && customer.stage == trial'"#,
    ));
    let out = problems(&p);
    for hint in [
        "    days_untill(customer.renewal_at) < 30 && customer.stage == trial\n    ^^^^^^^^^^^\n    days_untill is not a function; did you mean days_until?\n",
        "                                                               ^^^^^\n    trial is not known here; to compare with the text trial, put it in double quotes: \"trial\"\n",
    ] {
        assert!(out.contains(hint), "{hint}: {out}");
    }
}

#[test]
fn misspelt_names_in_files_get_did_you_mean() {
    // A playbook key, a category and a template name.
    let p = project(&playbook("audiance = 'customer.plan == \"pro\"'", "'true'"));
    p.file("config/tend.toml", "[delivery]\nconcurency = 4\n");
    let out = problems(&p);
    assert!(
        out.contains("config/tend.toml:2: unknown field `concurency`; did you mean `concurrency`?"),
        "{out}"
    );
    std::fs::remove_file(p.path().join("config/tend.toml")).unwrap();
    let out = problems(&p);
    assert!(
        out.contains(
            "config/playbooks/tips.toml:4: unknown field `audiance`; did you mean `audience`?"
        ),
        "{out}"
    );
    p.file(
        "config/playbooks/tips.toml",
        playbook("", "'true'")
            .replace("category = \"tips\"", "category = \"tipz\"")
            .replace(
                "template = \"tips/dashboards\"",
                "template = \"tips/dashboard\"",
            ),
    );
    let out = problems(&p);
    for hint in [
        "config/playbooks/tips.toml:3: category \"tipz\" is not declared in tend.toml (did you mean `tips`?); declared: announcements, checkins",
        "config/playbooks/tips.toml:7: template \"tips/dashboard\" does not exist (did you mean `tips/dashboards`?): create templates/tips/dashboard.md.hbs or fix the name",
    ] {
        assert!(out.contains(hint), "{hint}: {out}");
    }
}

#[test]
fn misspelt_template_variables_partials_and_helpers_get_did_you_mean() {
    let p = project(&playbook("", "'true'"));
    p.file(
        "templates/tips/dashboards.md.hbs",
        "+++\nsubject = \"Dashboards\"\n+++\nRenews {{date customer.renewl_at}}\n",
    );
    let out = problems(&p);
    assert!(
        out.contains("templates/tips/dashboards.md.hbs:4: {{customer.renewl_at}} is not a variable templates can use; did you mean {{customer.renewal_at}}?"),
        "{out}"
    );
    p.file(
        "templates/tips/dashboards.md.hbs",
        "+++\nsubject = \"Dashboards\"\n+++\nRenews {{dat customer.renewal_at}}\n\n{{> footr}}\n",
    );
    let out = problems(&p);
    assert!(
        out.contains("\"dat\" is not a helper (did you mean `date`?)"),
        "{out}"
    );
}

#[test]
fn preview_says_which_condition_keeps_a_customer_out_and_force_shows_it_anyway() {
    let p = project(&playbook("audience = 'customer.plan == \"pro\"'", "'true'"));
    p.file(
        "customers.csv",
        "id,email,name,plan,signup_at\nbo,bo@example.com,Bo Free,free,2026-03-01T10:00:00Z\n",
    );
    p.tend(&["import", "customers", "customers.csv"])
        .expect_code(0);
    let now = "2026-03-05T10:00:00Z";
    let run = p
        .tend(&[
            "preview",
            "tips/dashboards",
            "--customer",
            "bo",
            "--now",
            now,
        ])
        .expect_code(1);
    assert_eq!(
        run.stderr().trim_end(),
        "error: customer bo would not get tips/dashboards: the audience of playbook tips `customer.plan == \"pro\"` is false (this customer has customer.plan = \"free\"); add --force to preview it for them anyway",
    );
    let run = p
        .tend(&[
            "preview",
            "tips/dashboards",
            "--customer",
            "bo",
            "--now",
            now,
            "--force",
        ])
        .expect_code(0);
    assert!(run.stdout().contains("Hi Bo"), "{}", run.stdout());
    assert!(
        run.stderr().contains("shown anyway (--force)"),
        "{}",
        run.stderr()
    );
}

#[test]
fn an_empty_forecast_says_when_the_next_message_goes_and_long_horizons_are_accepted() {
    let p = project(
        "name = \"renewals\"\nkind = \"checkin\"\ncategory = \"checkins\"\n\n[[step]]\nid = \"notice\"\ntemplate = \"tips/dashboards\"\nanchor = \"renewal_at\"\nbefore = \"30d\"\n",
    );
    p.file(
        "customers.csv",
        "id,email,name,timezone,renewal_at\nacme,ops@acme.example,Ada Acme,UTC,2027-03-01T10:00:00Z\n",
    );
    p.tend(&["import", "customers", "customers.csv"])
        .expect_code(0);
    let now = "2026-12-01T10:00:00Z";
    let out = p.tend(&["forecast", "--now", now]).expect_code(0).stdout();
    assert!(
        out.contains("nothing would go out in the next 7 day(s); the next is renewals/notice to acme on Mon 2027-02-01 09:00 UTC; tend forecast --days 62 shows it"),
        "{out}"
    );
    let out = p
        .tend(&[
            "forecast",
            "--now",
            now,
            "--days",
            "400",
            "--playbook",
            "renewals",
        ])
        .expect_code(0)
        .stdout();
    assert!(out.contains("renewals/notice"), "{out}");
    let err = p
        .tend(&["forecast", "--now", now, "--playbook", "renewal"])
        .expect_code(1)
        .stderr();
    assert!(
        err.contains("no playbook is named \"renewal\" (did you mean `renewals`?); the playbooks are: renewals"),
        "{err}"
    );
    let err = p
        .tend(&["forecast", "--days", "2000"])
        .expect_code(2)
        .stderr();
    assert!(err.contains("2000 is not in 1..=1098"), "{err}");
}

#[test]
fn steps_of_two_playbooks_that_reach_the_same_customers_together_are_named() {
    let p = Project::shipped();
    p.file(
        "config/playbooks/renewals.toml",
        "name = \"renewals\"\nkind = \"reminder\"\ncategory = \"maintenance\"\n\n[[step]]\nid = \"notice\"\ntemplate = \"reminders/renewal\"\nanchor = \"renewal_at\"\nbefore = \"28d\"\n",
    );
    // Plain check warns, from the demo customers, and passes.
    let run = p.tend(&["check"]).expect_code(0);
    assert!(
        run.stderr().contains(
            "warning: maintenance/renewal-30d and renewals/notice (both category maintenance) would both reach 1 customer within the frequency cap's period (e.g. demo-cy: "
        ),
        "{}",
        run.stderr()
    );
    // --overlaps looks at the store's customers.
    let renews = (chrono::Utc::now() + chrono::Duration::days(40)).to_rfc3339();
    p.file(
        "customers.csv",
        format!("id,email,name,plan,renewal_at\nacme,ops@acme.example,Ada Acme,pro,{renews}\nfree,f@acme.example,Fe Free,free,{renews}\n"),
    );
    p.tend(&["import", "customers", "customers.csv"])
        .expect_code(0);
    let out = p.tend(&["check", "--overlaps"]).expect_code(0).stdout();
    assert!(
        out.contains("overlap: maintenance/renewal-30d and renewals/notice (both category maintenance) would both reach 1 customer within the frequency cap's period (e.g. acme: "),
        "{out}"
    );
    assert!(
        out.ends_with("1 overlap among 2 sampled customers over the next 90 days\n"),
        "{out}"
    );
    // Without the second playbook there is nothing to say.
    std::fs::remove_file(p.path().join("config/playbooks/renewals.toml")).unwrap();
    let run = p.tend(&["check", "--overlaps"]).expect_code(0);
    assert!(!run.stderr().contains("warning:"), "{}", run.stderr());
    assert!(
        run.stdout()
            .ends_with("no overlaps among 2 sampled customers over the next 90 days\n"),
        "{}",
        run.stdout()
    );
}
