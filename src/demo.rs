//! The demo: a handful of made-up customers and events that give every
//! shipped playbook someone to write to, so the quick start shows real mail
//! at once. Dates are relative to the moment they are loaded (a customer who
//! "signed up yesterday" did so yesterday whenever the demo runs), and the
//! customers are spread over time zones, so someone is inside their send
//! window at any hour of a working day.
//!
//! The rows go through the same validation as an import.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::config::Settings;
use crate::domain::incident::IncidentKind;
use crate::import::{self, Defaults, ImportError, ImportOutcome, Kind, NumberedRow};
use crate::incident::IncidentError;
use crate::incident::Opening;
use crate::store::Db;

/// One demo customer: who they are, and how long ago (in hours, so a step
/// is already a little overdue rather than due to the second) things
/// happened to them.
struct Person {
    id: &'static str,
    name: &'static str,
    timezone: &'static str,
    locale: &'static str,
    plan: &'static str,
    /// Hours since signing up.
    signed_up: i64,
    /// Hours until the plan renews, if it does.
    renews_in: Option<i64>,
    health: u8,
    region: &'static str,
    company: &'static str,
    features: &'static [&'static str],
    /// What the customer mostly shows off in the demo.
    shows: &'static str,
}

const DAY: i64 = 24;

/// Who the demo has, and which playbook step each is there for.
const PEOPLE: &[Person] = &[
    Person {
        id: "demo-ana",
        name: "Ana Silva",
        timezone: "Europe/Lisbon",
        locale: "pt-PT",
        plan: "pro",
        signed_up: DAY + 2,
        renews_in: Some(365 * DAY),
        health: 82,
        region: "eu",
        company: "Silva Lda",
        features: &["api"],
        shows: "onboarding/welcome-checkin (a CES question)",
    },
    Person {
        id: "demo-bo",
        name: "Bo Chen",
        timezone: "Asia/Tokyo",
        locale: "ja",
        plan: "free",
        signed_up: 3 * DAY + 2,
        renews_in: None,
        health: 64,
        region: "apac",
        company: "Chen KK",
        features: &[],
        shows: "onboarding/tip-dashboards",
    },
    Person {
        id: "demo-cy",
        name: "Cy Okafor",
        timezone: "America/New_York",
        locale: "en-US",
        plan: "self-hosted",
        signed_up: 335 * DAY,
        renews_in: Some(30 * DAY - 2),
        health: 72,
        region: "us",
        company: "Okafor LLC",
        features: &["api", "dashboards"],
        shows: "maintenance/renewal-30d and the monthly backup reminder",
    },
    Person {
        id: "demo-di",
        name: "Di Shrestha",
        timezone: "Asia/Kathmandu",
        locale: "ne",
        plan: "team",
        signed_up: 30 * DAY + 2,
        renews_in: Some(335 * DAY),
        health: 91,
        region: "apac",
        company: "Himal Tech",
        features: &["api", "dashboards"],
        shows: "onboarding/nps-day30 and tips/tip-alerts",
    },
    Person {
        id: "demo-eve",
        name: "Eve Müller",
        timezone: "Europe/Berlin",
        locale: "de-DE",
        plan: "enterprise",
        signed_up: 60 * DAY,
        renews_in: Some(305 * DAY),
        health: 88,
        region: "eu",
        company: "Müller GmbH",
        features: &["api", "dashboards", "alerts"],
        shows: "tips/tip-sso (Tuesdays)",
    },
    Person {
        id: "demo-fay",
        name: "Fay Walker",
        timezone: "Australia/Sydney",
        locale: "en-AU",
        plan: "pro",
        signed_up: 120 * DAY,
        renews_in: Some(245 * DAY),
        health: 31,
        region: "apac",
        company: "Walker & Co",
        features: &["dashboards", "sso"],
        shows: "checkins/at-risk (a yes/no question) and tips/tip-scheduled-exports",
    },
    Person {
        id: "demo-gus",
        name: "Gus Romero",
        timezone: "America/Los_Angeles",
        locale: "en-US",
        plan: "self-hosted",
        signed_up: 200 * DAY,
        renews_in: Some(165 * DAY),
        health: 77,
        region: "us",
        company: "Romero Labs",
        features: &["api"],
        shows: "maintenance/api-key-rotation and the monthly backup reminder",
    },
    Person {
        id: "demo-hana",
        name: "Hana Costa",
        timezone: "America/Sao_Paulo",
        locale: "pt-BR",
        plan: "team",
        signed_up: 5 * DAY + 2,
        renews_in: Some(360 * DAY),
        health: 70,
        region: "latam",
        company: "Costa & Filhos",
        features: &["dashboards"],
        shows: "onboarding/tip-api",
    },
];

/// A demo company: its success manager (a `[[team]]` id of the shipped
/// config) and how many hours until it renews.
struct Company {
    id: &'static str,
    name: &'static str,
    plan: &'static str,
    owner: &'static str,
    renews_in: i64,
    health: u8,
    region: &'static str,
}

/// The demo's companies, each with several contacts.
const COMPANIES: &[Company] = &[
    Company {
        id: "demo-northwind",
        name: "Northwind Traders",
        plan: "enterprise",
        owner: "maria",
        // The renewal notice (60 days ahead) fell due two hours ago.
        renews_in: 60 * DAY - 2,
        health: 76,
        region: "eu",
    },
    Company {
        id: "demo-initrode",
        name: "Initrode",
        plan: "team",
        owner: "tom",
        renews_in: 200 * DAY,
        health: 58,
        region: "us",
    },
];

/// A contact of a demo company.
struct Contact {
    id: &'static str,
    name: &'static str,
    company: &'static str,
    roles: &'static [&'static str],
    timezone: &'static str,
    locale: &'static str,
}

const fn contact(
    id: &'static str,
    name: &'static str,
    company: &'static str,
    roles: &'static [&'static str],
    timezone: &'static str,
    locale: &'static str,
) -> Contact {
    Contact {
        id,
        name,
        company,
        roles,
        timezone,
        locale,
    }
}

/// The demo companies' people, each with their roles.
const CONTACTS: &[Contact] = &[
    contact(
        "demo-nora",
        "Nora Lindqvist",
        "demo-northwind",
        &["billing"],
        "Europe/Stockholm",
        "sv",
    ),
    contact(
        "demo-omar",
        "Omar Haddad",
        "demo-northwind",
        &["admin", "champion"],
        "Europe/London",
        "en-GB",
    ),
    contact(
        "demo-pia",
        "Pia Rossi",
        "demo-northwind",
        &["technical"],
        "Europe/Rome",
        "it",
    ),
    contact(
        "demo-quinn",
        "Quinn Baker",
        "demo-initrode",
        &["admin", "billing"],
        "America/Chicago",
        "en-US",
    ),
    contact(
        "demo-raj",
        "Raj Iyer",
        "demo-initrode",
        &["technical", "champion"],
        "America/New_York",
        "en-US",
    ),
];

/// A demo event: whose, what, and how many hours ago.
const EVENTS: &[(&str, &str, i64)] = &[
    ("demo-ana", "login", 3),
    ("demo-di", "dashboard_created", 2 * DAY + 2),
    ("demo-gus", "api_key_created", 90 * DAY + 2),
    ("demo-fay", "report_exported", 2 * DAY),
    ("demo-fay", "report_exported", 5 * DAY),
    ("demo-fay", "report_exported", 9 * DAY),
    ("demo-fay", "report_exported", 12 * DAY),
    ("demo-fay", "report_exported", 16 * DAY),
    ("demo-fay", "report_exported", 19 * DAY),
    ("demo-eve", "teammate_invited", 55 * DAY),
];

/// The ids of the demo customers with what each is there to show.
pub fn cast() -> impl Iterator<Item = (&'static str, &'static str)> {
    PEOPLE.iter().map(|p| (p.id, p.shows)).chain([
        (
            "demo-nora",
            "accounts/renewal-60d: Northwind's renewal, to its billing contact, from Maria",
        ),
        (
            "demo-pia",
            "the demo incident does not reach her (Northwind is in the eu region)",
        ),
        (
            "demo-raj",
            "the demo incident, to Initrode's technical contacts and admins",
        ),
    ])
}

/// The demo companies as import rows, dated relative to `now`.
pub fn accounts(now: DateTime<Utc>) -> Vec<NumberedRow> {
    numbered(COMPANIES.iter().map(|c| {
        json!({
            "id": c.id,
            "name": c.name,
            "plan": c.plan,
            "owner": c.owner,
            "renewal_at": at(now, c.renews_in),
            "health": c.health,
            "attributes": { "region": c.region },
        })
    }))
}

fn at(now: DateTime<Utc>, hours: i64) -> String {
    (now + Duration::hours(hours)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn numbered(rows: impl Iterator<Item = Value>) -> Vec<NumberedRow> {
    rows.enumerate()
        .filter_map(|(i, row)| match row {
            Value::Object(map) => Some((i + 1, map)),
            _ => None,
        })
        .collect()
}

/// The demo customers as import rows, dated relative to `now`: people of
/// their own, then the companies' contacts.
pub fn customers(now: DateTime<Utc>) -> Vec<NumberedRow> {
    let contacts = CONTACTS.iter().map(|c| {
        let region = COMPANIES
            .iter()
            .find(|company| company.id == c.company)
            .map_or("eu", |company| company.region);
        json!({
            "id": c.id,
            "email": format!("{}@example.com", c.id.trim_start_matches("demo-")),
            "name": c.name,
            "timezone": c.timezone,
            "locale": c.locale,
            "plan": "",
            "signup_at": at(now, -400 * DAY),
            "last_seen_at": at(now, -5),
            "account_id": c.company,
            "roles": c.roles,
            "attributes": { "region": region },
        })
    });
    numbered(
        PEOPLE
            .iter()
            .map(|p| {
                let email = format!("{}@example.com", p.id.trim_start_matches("demo-"));
                json!({
                    "id": p.id,
                    "email": email,
                    "name": p.name,
                    "timezone": p.timezone,
                    "locale": p.locale,
                    "plan": p.plan,
                    "signup_at": at(now, -p.signed_up),
                    "renewal_at": p.renews_in.map(|h| at(now, h)),
                    "last_seen_at": at(now, -3),
                    "health": p.health,
                    "attributes": {
                        "region": p.region,
                        "company": p.company,
                        "features": p.features,
                    },
                })
            })
            .chain(contacts),
    )
}

/// The demo customers as the store would hold them, with their events, for
/// checks that plan ahead without a store (`tend check`'s overlaps). A row
/// the configuration's defaults make invalid is left out.
pub fn sample(
    settings: &Settings,
    now: DateTime<Utc>,
) -> Vec<(
    crate::domain::customer::Customer,
    crate::domain::plan::History,
)> {
    let Ok(defaults) = Defaults::from_settings(settings) else {
        return Vec::new();
    };
    customers(now)
        .into_iter()
        .filter_map(|(_, row)| import::record::customer(row, &defaults).ok())
        .map(|record| {
            let history = crate::domain::plan::History {
                events: EVENTS
                    .iter()
                    .enumerate()
                    .filter(|(_, (who, _, _))| *who == record.id.as_str())
                    .map(|(i, (_, name, ago))| crate::domain::plan::EventFact {
                        key: format!("demo-event-{}", i + 1),
                        name: (*name).to_owned(),
                        occurred_at: now - Duration::hours(*ago),
                    })
                    .collect(),
                ..Default::default()
            };
            let customer = crate::domain::customer::Customer {
                record,
                stage: None,
                stage_entered_at: None,
                created_at: now,
                updated_at: now,
                account_availability: Default::default(),
            };
            (customer, history)
        })
        .collect()
}

/// The demo events as import rows, dated relative to `now`.
pub fn events(now: DateTime<Utc>) -> Vec<NumberedRow> {
    numbered(EVENTS.iter().enumerate().map(|(i, (customer, name, ago))| {
        json!({
            "id": format!("demo-event-{}", i + 1),
            "customer_id": customer,
            "name": name,
            "occurred_at": at(now, -ago),
        })
    }))
}

/// Demo rows fitted to a configuration other than the shipped one: an
/// owner its `[[team]]` lacks is left out, and so are roles it does not
/// declare.
fn fitted(rows: Vec<NumberedRow>, defaults: &Defaults) -> Vec<NumberedRow> {
    rows.into_iter()
        .map(|(line, mut row)| {
            let unknown_owner = row
                .get("owner")
                .and_then(Value::as_str)
                .is_some_and(|o| !defaults.team.iter().any(|t| t == o));
            if unknown_owner {
                row.remove("owner");
            }
            if let Some(Value::Array(roles)) = row.get_mut("roles") {
                roles.retain(|r| {
                    r.as_str()
                        .is_some_and(|r| defaults.roles.iter().any(|d| d == r))
                });
            }
            (line, row)
        })
        .collect()
}

/// What loading the demo wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DemoOutcome {
    pub accounts: ImportOutcome,
    pub customers: ImportOutcome,
    pub events: ImportOutcome,
    /// Notices the demo incident put into the outbox (0 when it was open
    /// already).
    pub notices: u64,
}

/// The incident the demo opens as it loads. Its notices are urgent (no send
/// window, no cap), so the quick start shows mail in the outbox at any hour,
/// a Saturday night too. It affects only the two customers whose demo mail is
/// maintenance reminders, which an open incident does not hold back.
pub fn incident() -> Opening {
    Opening {
        id: INCIDENT_ID.into(),
        kind: IncidentKind::Incident,
        title: "Dashboards load slowly in the US region".into(),
        affects: r#"customer.attributes.region == "us""#.into(),
        template: None,
        message: "Dashboards in the US region take up to a minute to load. Your data is safe; we are on it. (The tend demo opened this incident so that its mail shows at once; resolve it with tend incident resolve DEMO-0.)".into(),
        starts_at: None,
        ends_at: None,
    }
}

/// The demo incident's id.
pub const INCIDENT_ID: &str = "DEMO-0";

/// Loads the demo customers and their events, and opens the demo incident.
/// A demo row that does not validate is a bug in this file, so it fails
/// the load.
pub async fn load(
    store: &Db,
    settings: &Settings,
    defaults: &Defaults,
    now: DateTime<Utc>,
) -> Result<DemoOutcome, DemoError> {
    let mut rejected = Vec::new();
    let accounts = import::import_rows(
        store,
        Kind::Accounts,
        fitted(accounts(now), defaults),
        defaults,
        now,
        |r| rejected.push(r.reason),
    )
    .await?;
    let customers = import::import_rows(
        store,
        Kind::Customers,
        fitted(customers(now), defaults),
        defaults,
        now,
        |r| rejected.push(r.reason),
    )
    .await?;
    let events = import::import_rows(store, Kind::Events, events(now), defaults, now, |r| {
        rejected.push(r.reason);
    })
    .await?;
    if let Some(reason) = rejected.into_iter().next() {
        return Err(DemoError::Rejected(reason));
    }
    let cx = crate::incident::Context::new(settings);
    let notices = match crate::incident::open(store, &cx, &incident(), now).await {
        Ok(opened) => opened.notices,
        // Loaded before: the incident is there (or was resolved) already.
        Err(IncidentError::Exists(_)) => 0,
        Err(e) => return Err(DemoError::Incident(e)),
    };
    Ok(DemoOutcome {
        accounts,
        customers,
        events,
        notices,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("loading the demo customers failed: {0}")]
    Import(#[from] ImportError),
    #[error("a demo row was refused ({0}); this is a bug in tend, please report it")]
    Rejected(String),
    #[error("opening the demo incident failed: {0}")]
    Incident(#[source] IncidentError),
}
