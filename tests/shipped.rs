//! What tend ships for a team to adopt on day one: the config, playbooks
//! and templates in the repository pass `tend check`, each playbook has a
//! demo customer to write to, and every template renders for every demo
//! customer (on both stores, as the demo loads through the import path).

mod common;

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use common::{Project, TestStore, json};
use tend::config::{self, ConfigPath, Env, Loaded};
use tend::domain::account::{Account, AccountFacts};
use tend::domain::customer::CustomerId;
use tend::domain::message::MessageId;
use tend::import::Defaults;
use tend::render::{Letter, Renderer};
use tend::store::Db;
use tend::store::{Accounts, Customers};
use tend::token::Signer;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped config with its folders named from the repository, so the
/// test runs from any directory.
fn shipped() -> Loaded {
    let mut loaded = config::load(
        &ConfigPath::Explicit(root().join("config/tend.toml")),
        &Env::default(),
    )
    .expect("the shipped config loads");
    let absolute = |p: &str| root().join(p).to_string_lossy().into_owned();
    loaded.settings.paths.playbooks = absolute(&loaded.settings.paths.playbooks);
    loaded.settings.paths.templates = absolute(&loaded.settings.paths.templates);
    loaded
}

fn now() -> DateTime<Utc> {
    "2026-12-08T11:00:00Z".parse().unwrap()
}

#[test]
fn tend_check_passes_on_everything_shipped() {
    let p = Project::shipped();
    let run = p.tend(&["check"]).expect_code(0);
    assert!(
        run.stdout()
            .contains("5 playbooks, 15 templates with 30 translations (and 6 built-in notices)"),
        "{}",
        run.stdout()
    );
}

async fn every_template_renders_for_every_demo_customer(store: Db) {
    let loaded = shipped();
    let defaults = Defaults::from_settings(&loaded.settings).unwrap();
    let outcome = tend::demo::load(&store, &loaded.settings, &defaults, now())
        .await
        .unwrap();
    assert_eq!(outcome.customers.imported, 13);
    assert_eq!(outcome.accounts.imported, 2);
    // The demo incident's notices: the two people of their own in the us
    // region, and the technical contact and the admin of Initrode.
    assert_eq!(outcome.notices, 4);
    assert_eq!(outcome.events.rejected, 0);

    let planner = tend::engine::planner(&loaded).unwrap();
    let renderer = Renderer::load(&loaded.settings, Signer::new(b"k")).unwrap();
    let incident = tend::render::context::sample_incident();
    let templates: Vec<&str> = renderer.templates().collect();
    assert_eq!(templates.len(), 21, "{templates:?}");
    let mut rendered = 0;
    for (id, _) in tend::demo::cast() {
        let customer = store
            .customer(&CustomerId::parse(id).unwrap())
            .await
            .unwrap()
            .unwrap();
        // The account as delivery gives it: the company, or their own.
        let account = match &customer.record.account_id {
            Some(id) => store.accounts_of(std::slice::from_ref(id)).await.unwrap()[id].clone(),
            None => Account::of_contact(&customer),
        };
        let account = AccountFacts::with_team(account, &loaded.settings.team);
        for name in &templates {
            let (category, survey) = planner.step_using(name).unwrap_or(("incidents", None));
            let letter = Letter {
                message: MessageId::new(),
                customer: &customer,
                category,
                survey,
                incident: name.starts_with("incidents/").then_some(&incident),
                account: Some(&account),
                sender: account.owner.as_ref(),
                now: now(),
            };
            let out = renderer
                .render(name, &letter)
                .unwrap_or_else(|e| panic!("{name} for {id}: {e}"));
            let first = customer.record.name.split(' ').next().unwrap();
            assert!(!out.subject.is_empty(), "{name} for {id}");
            // Greeted by name in their language (Hi, Hallo, Olá).
            let greeting = out.text.lines().next().unwrap_or_default();
            assert!(
                greeting.ends_with(&format!(" {first},")),
                "{name} for {id}: {}",
                out.text
            );
            assert!(
                out.html.contains("1 Main St, Springfield") && out.html.contains("/u/"),
                "{name} for {id}: the footer"
            );
            for part in [&out.subject, &out.text, &out.html] {
                assert!(!part.contains("{{"), "{name} for {id}: {part}");
            }
            if survey.is_some() {
                assert!(out.text.contains("/r/"), "{name} for {id}: no answers");
            }
            rendered += 1;
        }
    }
    assert_eq!(rendered, tend::demo::cast().count() * 21);
}

#[tokio::test]
async fn every_template_renders_for_every_demo_customer_on_sqlite() {
    let store = TestStore::sqlite().await;
    every_template_renders_for_every_demo_customer(store.store.clone()).await;
}

#[tokio::test]
async fn every_template_renders_for_every_demo_customer_on_postgres() {
    let store = TestStore::postgres().await;
    every_template_renders_for_every_demo_customer(store.store.clone()).await;
}

/// `tend forecast` for the 60 days from the demo's instant, as JSON.
fn forecast_60_days(p: &Project) -> serde_json::Value {
    json(
        &p.tend(&[
            "forecast",
            "--now",
            "2026-12-08T11:00:00Z",
            "--days",
            "60",
            "--format",
            "json",
        ])
        .expect_code(0),
    )
}

/// Every shipped playbook (and step) has a demo customer it would write to
/// in the coming weeks.
#[test]
fn the_demo_gives_every_shipped_step_someone_to_write_to() {
    let p = Project::shipped();
    p.tend(&["demo", "--now", "2026-12-08T11:00:00Z"])
        .expect_code(0);
    let rows = forecast_60_days(&p);
    let steps: std::collections::BTreeSet<String> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["playbook"].as_str().unwrap(),
                r["step"].as_str().unwrap()
            )
        })
        .collect();
    for step in [
        "onboarding/welcome-checkin",
        "onboarding/tip-dashboards",
        "onboarding/tip-api",
        "onboarding/tip-invite-team",
        "onboarding/nps-day30",
        "tips/tip-alerts",
        "tips/tip-sso",
        "tips/tip-scheduled-exports",
        "maintenance/backup-monthly",
        "maintenance/renewal-30d",
        "maintenance/api-key-rotation",
        "checkins/at-risk",
        "checkins/quarterly-csat",
        "accounts/renewal-60d",
        "accounts/business-review",
    ] {
        assert!(
            steps.contains(step),
            "no demo customer gets {step}: {steps:?}"
        );
    }
    // Every row has its subject rendered for its customer.
    for row in rows.as_array().unwrap() {
        assert!(
            row["subject"].as_str().is_some_and(|s| !s.is_empty()),
            "{row}"
        );
    }

    // After a tick has put the due mail in the outbox, the forecast shows
    // what waits there, and a tip meant to go once (`!sent(…)`) still shows
    // once per customer, not every week.
    common::tick(&p, "2026-12-08T11:00:00Z");
    let rows = forecast_60_days(&p);
    let mut seen = std::collections::BTreeMap::new();
    for row in rows.as_array().unwrap() {
        assert!(
            row["at"].as_str().unwrap() >= "2026-12-08T11:00:00",
            "{row}"
        );
        *seen
            .entry(format!("{} {}", row["customer_id"], row["step"]))
            .or_insert(0) += 1;
    }
    for (who, count) in &seen {
        if ["tip-sso", "tip-scheduled-exports", "tip-alerts"]
            .iter()
            .any(|once| who.contains(once))
        {
            assert_eq!(*count, 1, "{who}: {rows}");
        }
    }
    assert!(
        seen.keys().any(|k| k.contains("tip-scheduled-exports")),
        "{seen:?}"
    );
}

/// The demo's companies get the shipped account-scope renewal: Northwind's
/// billing contact, from its success manager.
#[test]
fn the_demo_companies_hear_from_their_success_manager() {
    let p = Project::shipped();
    p.tend(&["demo", "--now", "2026-12-08T11:00:00Z"])
        .expect_code(0);
    p.tend(&["tick", "--now", "2026-12-08T11:00:00Z"])
        .expect_code(0);
    let messages = json(
        &p.tend(&["messages", "--customer", "demo-nora", "--format", "json"])
            .expect_code(0),
    );
    let renewal = messages
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["playbook"] == "accounts" && m["step"] == "renewal-60d")
        .unwrap_or_else(|| panic!("no renewal for Northwind's billing contact: {messages}"));
    assert_eq!(renewal["occurrence"], "demo-northwind/renewal_at");
    // Only the billing contact: the admin and the technical contact do not
    // get it.
    for other in ["demo-omar", "demo-pia"] {
        let theirs = json(
            &p.tend(&["messages", "--customer", other, "--format", "json"])
                .expect_code(0),
        );
        assert!(
            !theirs
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["step"] == "renewal-60d"),
            "{other}: {theirs}"
        );
    }
}
