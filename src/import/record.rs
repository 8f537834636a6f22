//! Turns one row into a validated record. CSV rows are first shaped like
//! JSONL objects, so both formats (and the HTTP API) share one validation.

use std::collections::HashSet;

use chrono_tz::Tz;
use serde_json::{Map, Value};

use crate::domain::account::{AccountId, AccountRecord, Roles};
use crate::domain::availability::{Availability, parse_calendar};
use crate::domain::customer::{
    CustomerId, CustomerRecord, Email, RECORD_FIELDS, parse_health, parse_locale, parse_name,
    parse_timezone,
};
use crate::domain::event::{parse_event_id, parse_event_name};
use crate::domain::timestamp::parse_instant;

/// What applies when a row leaves a field out.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub timezone: Tz,
    pub locale: String,
    /// The roles a contact may hold (`[accounts] roles`).
    pub roles: Vec<String>,
    /// The ids of the `[[team]]`, who may own accounts.
    pub team: Vec<String>,
    /// The names of the `[[holidays]]` calendars a record may keep.
    pub calendars: Vec<String>,
    /// Reject a contact whose account is not stored, instead of creating
    /// the account with only its id.
    pub strict: bool,
}

impl Defaults {
    /// The `[customers]` defaults of the configuration.
    pub fn from_settings(settings: &crate::config::settings::Settings) -> Result<Self, String> {
        Ok(Self {
            timezone: parse_timezone(&settings.customers.default_timezone)?,
            locale: settings.customers.default_locale.clone(),
            roles: settings.accounts.roles.clone(),
            team: settings.team.iter().map(|m| m.id.clone()).collect(),
            calendars: settings.holidays.iter().map(|h| h.name.clone()).collect(),
            strict: false,
        })
    }
}

/// The fields a customer row may have; anything else in a CSV is an attribute.
pub const CUSTOMER_FIELDS: &[&str] = RECORD_FIELDS;
const CUSTOMER_REQUIRED: &[&str] = &["id", "email"];

/// The fields an account row may have; anything else in a CSV is an attribute.
pub const ACCOUNT_FIELDS: &[&str] = crate::domain::account::ACCOUNT_FIELDS;
const ACCOUNT_REQUIRED: &[&str] = &["id"];

/// The fields an event row may have; anything else in a CSV is a property.
pub const EVENT_FIELDS: &[&str] = &["id", "customer_id", "name", "occurred_at", "properties"];
const EVENT_REQUIRED: &[&str] = &["customer_id", "name", "occurred_at"];

/// Which kind of record a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Customers,
    Accounts,
    Events,
}

impl Kind {
    fn fields(self) -> &'static [&'static str] {
        match self {
            Self::Customers => CUSTOMER_FIELDS,
            Self::Accounts => ACCOUNT_FIELDS,
            Self::Events => EVENT_FIELDS,
        }
    }

    fn required(self) -> &'static [&'static str] {
        match self {
            Self::Customers => CUSTOMER_REQUIRED,
            Self::Accounts => ACCOUNT_REQUIRED,
            Self::Events => EVENT_REQUIRED,
        }
    }

    /// Where a CSV's extra columns go.
    fn extra(self) -> &'static str {
        match self {
            Self::Customers | Self::Accounts => "attributes",
            Self::Events => "properties",
        }
    }
}

/// How a CSV header maps onto record fields.
pub struct CsvLayout {
    columns: Vec<Column>,
    extra: &'static str,
}

enum Column {
    Field(String),
    Extra(String),
    /// `NAME[]`: a `;`-separated list.
    List(String),
    /// `roles[]`: a `;`-separated list that is a record field.
    FieldList(String),
}

impl CsvLayout {
    pub fn new(header: &[String], kind: Kind) -> Result<Self, String> {
        let mut seen = HashSet::new();
        let mut columns = Vec::with_capacity(header.len());
        for name in header {
            if name.is_empty() {
                return Err("a column has no name; name every column in the header row".into());
            }
            if !seen.insert(name.as_str()) {
                return Err(format!("the column {name:?} appears twice; keep one"));
            }
            columns.push(
                if kind.fields().contains(&name.as_str()) && name != kind.extra() {
                    Column::Field(name.clone())
                } else if let Some(list) = name
                    .strip_suffix("[]")
                    .filter(|list| kind.fields().contains(list))
                {
                    Column::FieldList(list.to_owned())
                } else if let Some(list) = name.strip_suffix("[]") {
                    Column::List(list.to_owned())
                } else {
                    Column::Extra(name.clone())
                },
            );
        }
        let missing: Vec<&str> = kind
            .required()
            .iter()
            .copied()
            .filter(|r| !seen.contains(r))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "the header has no {} column{}; the header must name {}",
                missing.join(", "),
                if missing.len() > 1 { "s" } else { "" },
                kind.required().join(" and ")
            ));
        }
        Ok(Self {
            columns,
            extra: kind.extra(),
        })
    }

    /// A CSV row as the equivalent JSONL object. Empty cells of record fields
    /// are left out; extra columns become string (or list) attributes.
    pub fn to_json(&self, values: Vec<String>) -> Map<String, Value> {
        let mut map = Map::new();
        let mut extra = Map::new();
        for (column, value) in self.columns.iter().zip(values) {
            match column {
                Column::Field(name) => {
                    if !value.trim().is_empty() {
                        map.insert(name.clone(), Value::String(value));
                    }
                }
                Column::Extra(name) => {
                    extra.insert(name.clone(), Value::String(value));
                }
                Column::List(name) => {
                    extra.insert(name.clone(), Value::Array(list_items(&value)));
                }
                Column::FieldList(name) => {
                    map.insert(name.clone(), Value::Array(list_items(&value)));
                }
            }
        }
        map.insert(self.extra.to_owned(), Value::Object(extra));
        map
    }
}

/// The items of a `;`-separated CSV list cell.
fn list_items(value: &str) -> Vec<Value> {
    value
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| Value::String(s.to_owned()))
        .collect()
}

/// A contact's roles: a list of names, or one string of names separated
/// by `;` or `,`.
fn roles(map: &Map<String, Value>, declared: &[String]) -> Result<Roles, String> {
    match map.get("roles") {
        None | Some(Value::Null) => Ok(Roles::default()),
        Some(Value::String(s)) => Roles::parse(s.split([';', ',']), declared),
        Some(Value::Array(items)) => {
            let names: Vec<&str> = items
                .iter()
                .map(|v| {
                    v.as_str()
                        .ok_or_else(|| format!("roles must be a list of names, not {v}"))
                })
                .collect::<Result<_, _>>()?;
            Roles::parse(names, declared)
        }
        Some(other) => Err(format!("roles must be a list of names, not {other}")),
    }
}

/// Collects every problem of one row, so a person fixes a row once.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn check<T>(&mut self, r: Result<T, String>) -> Option<T> {
        r.map_err(|e| self.0.push(e)).ok()
    }

    fn message(self) -> String {
        self.0.join("; ")
    }
}

fn unknown_fields(map: &Map<String, Value>, kind: Kind) -> Result<(), String> {
    let unknown: Vec<&str> = map
        .keys()
        .map(String::as_str)
        .filter(|k| !kind.fields().contains(k))
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "unknown field{} {}; the fields are {}, and custom data goes under \"{}\"",
            if unknown.len() > 1 { "s" } else { "" },
            unknown
                .iter()
                .map(|u| format!("{u:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            kind.fields().join(", "),
            kind.extra()
        ))
    }
}

/// A text field: a string (numbers are accepted for ids), absent or null.
fn text(map: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) if key.ends_with("id") || key == "health" => Ok(Some(n.to_string())),
        Some(other) => Err(format!("{key} must be a string, not {other}")),
    }
}

fn required(map: &Map<String, Value>, key: &str) -> Result<String, String> {
    text(map, key)?.ok_or_else(|| format!("{key} is missing; every row needs one"))
}

fn object(map: &mut Map<String, Value>, key: &str) -> Result<Map<String, Value>, String> {
    match map.remove(key) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(o)) => Ok(o),
        Some(other) => Err(format!("{key} must be a JSON object, not {other}")),
    }
}

/// Validates a customer row.
pub fn customer(
    mut map: Map<String, Value>,
    defaults: &Defaults,
) -> Result<CustomerRecord, String> {
    let mut p = Problems::default();
    p.check(unknown_fields(&map, Kind::Customers));
    let id = p.check(required(&map, "id").and_then(|s| CustomerId::parse(&s)));
    let email = p.check(required(&map, "email").and_then(|s| Email::parse(&s)));
    let timezone = p
        .check(text(&map, "timezone"))
        .flatten()
        .map_or(Ok(defaults.timezone), |s| parse_timezone(&s));
    let timezone = p.check(timezone).unwrap_or(defaults.timezone);
    let locale = p
        .check(text(&map, "locale"))
        .flatten()
        .map_or_else(|| Ok(defaults.locale.clone()), |s| parse_locale(&s));
    let locale = p.check(locale);
    let mut instant = |key: &str| {
        p.check(text(&map, key).and_then(|raw| {
            raw.map(|s| parse_instant(&s, timezone).map_err(|e| format!("{key}: {e}")))
                .transpose()
        }))
        .flatten()
    };
    let signup_at = instant("signup_at");
    let renewal_at = instant("renewal_at");
    let last_seen_at = instant("last_seen_at");
    let health = p
        .check(text(&map, "health").and_then(|raw| raw.map(|s| parse_health(&s)).transpose()))
        .flatten();
    let name = p
        .check(text(&map, "name").and_then(|raw| raw.map(|s| parse_name(&s)).transpose()))
        .flatten()
        .unwrap_or_default();
    let plan = p.check(text(&map, "plan")).flatten().unwrap_or_default();
    let account_id = p
        .check(text(&map, "account_id").and_then(|raw| {
            raw.map(|s| AccountId::parse(&s).map_err(|e| format!("account_id: {e}")))
                .transpose()
        }))
        .flatten();
    let roles = p.check(roles(&map, &defaults.roles));
    let availability = availability(&mut p, &map, timezone, defaults);
    let attributes = p.check(object(&mut map, "attributes"));
    match (id, email, locale, attributes, roles) {
        (Some(id), Some(email), Some(locale), Some(attributes), Some(roles)) if p.0.is_empty() => {
            Ok(CustomerRecord {
                id,
                email,
                name,
                timezone,
                locale,
                plan: plan.trim().to_owned(),
                signup_at,
                renewal_at,
                last_seen_at,
                health,
                attributes,
                account_id,
                roles,
                availability,
            })
        }
        _ => Err(p.message()),
    }
}

/// A record's holiday calendar (one the config declares) and quiet
/// period; a date alone is midnight at its start in `zone`.
fn availability(
    p: &mut Problems,
    map: &Map<String, Value>,
    zone: Tz,
    defaults: &Defaults,
) -> Availability {
    let holidays = p
        .check(text(map, "holidays").and_then(|raw| {
            raw.map(|s| parse_calendar(&s, &defaults.calendars))
                .transpose()
        }))
        .flatten();
    let quiet_until = p
        .check(text(map, "quiet_until").and_then(|raw| {
            raw.map(|s| parse_instant(&s, zone).map_err(|e| format!("quiet_until: {e}")))
                .transpose()
        }))
        .flatten();
    Availability {
        holidays,
        quiet_until,
    }
}

/// Validates an account row. A date alone (`renewal_at`) is midnight in
/// the default time zone: an account has no zone of its own.
pub fn account(mut map: Map<String, Value>, defaults: &Defaults) -> Result<AccountRecord, String> {
    let mut p = Problems::default();
    p.check(unknown_fields(&map, Kind::Accounts));
    let id = p.check(required(&map, "id").and_then(|s| AccountId::parse(&s)));
    let name = p
        .check(text(&map, "name").and_then(|raw| raw.map(|s| parse_name(&s)).transpose()))
        .flatten()
        .unwrap_or_default();
    let plan = p.check(text(&map, "plan")).flatten().unwrap_or_default();
    let renewal_at = p
        .check(text(&map, "renewal_at").and_then(|raw| {
            raw.map(|s| {
                parse_instant(&s, defaults.timezone).map_err(|e| format!("renewal_at: {e}"))
            })
            .transpose()
        }))
        .flatten();
    let health = p
        .check(text(&map, "health").and_then(|raw| raw.map(|s| parse_health(&s)).transpose()))
        .flatten();
    let owner = p
        .check(text(&map, "owner").and_then(|raw| {
            raw.map(|owner| {
                let owner = owner.trim().to_owned();
                if defaults.team.contains(&owner) {
                    Ok(owner)
                } else if defaults.team.is_empty() {
                    Err(format!(
                        "owner {owner:?} is not a team member: the config has no [[team]]; add the success team there (id, name, email)"
                    ))
                } else {
                    Err(format!(
                        "owner {owner:?} is not a team member; use one of {}, or add them to [[team]] in the config",
                        defaults.team.join(", ")
                    ))
                }
            })
            .transpose()
        }))
        .flatten();
    let availability = availability(&mut p, &map, defaults.timezone, defaults);
    let attributes = p.check(object(&mut map, "attributes"));
    match (id, attributes) {
        (Some(id), Some(attributes)) if p.0.is_empty() => Ok(AccountRecord {
            id,
            name,
            plan: plan.trim().to_owned(),
            renewal_at,
            health,
            owner,
            attributes,
            availability,
        }),
        _ => Err(p.message()),
    }
}

/// An event row whose time may still need its customer's zone.
#[derive(Debug, Clone)]
pub struct PendingEvent {
    pub id: Option<String>,
    pub customer_id: CustomerId,
    pub name: String,
    pub occurred_at: String,
    pub properties: Map<String, Value>,
}

/// Validates an event row, all but the time (which may be a date in the
/// customer's zone) and the customer's existence.
pub fn event(mut map: Map<String, Value>) -> Result<PendingEvent, String> {
    let mut p = Problems::default();
    p.check(unknown_fields(&map, Kind::Events));
    let id = p.check(text(&map, "id").and_then(|s| parse_event_id(&s.unwrap_or_default())));
    let customer_id = p.check(required(&map, "customer_id").and_then(|s| CustomerId::parse(&s)));
    let name = p.check(required(&map, "name").and_then(|s| parse_event_name(&s)));
    let occurred_at = p.check(required(&map, "occurred_at"));
    let properties = p.check(object(&mut map, "properties"));
    match (id, customer_id, name, occurred_at, properties) {
        (Some(id), Some(customer_id), Some(name), Some(occurred_at), Some(properties))
            if p.0.is_empty() =>
        {
            Ok(PendingEvent {
                id,
                customer_id,
                name,
                occurred_at,
                properties,
            })
        }
        _ => Err(p.message()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defaults() -> Defaults {
        Defaults {
            timezone: Tz::UTC,
            locale: "en".into(),
            roles: crate::domain::account::DEFAULT_ROLES
                .iter()
                .map(|r| r.to_string())
                .collect(),
            team: vec!["maria".into()],
            calendars: vec!["de".into()],
            strict: false,
        }
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn csv_columns_become_fields_attributes_and_lists() {
        let header: Vec<String> = ["id", "email", "region", "features[]", "health"]
            .map(String::from)
            .to_vec();
        let layout = CsvLayout::new(&header, Kind::Customers).unwrap();
        let map = layout.to_json(
            ["c1", "a@x.io", "eu", "api; dashboards;", ""]
                .map(String::from)
                .to_vec(),
        );
        assert_eq!(
            Value::Object(map),
            json!({"id": "c1", "email": "a@x.io", "attributes": {"region": "eu", "features": ["api", "dashboards"]}})
        );
    }

    #[test]
    fn missing_required_columns_are_named() {
        let header: Vec<String> = ["id", "name"].map(String::from).to_vec();
        let e = CsvLayout::new(&header, Kind::Customers).err().unwrap();
        assert!(e.contains("no email column"), "{e}");
    }

    #[test]
    fn a_customer_row_is_validated_whole() {
        let ok = customer(
            obj(json!({"id": 7, "email": "a@x.io", "timezone": "Asia/Tokyo", "signup_at": "2026-03-01", "health": 80})),
            &defaults(),
        )
        .unwrap();
        assert_eq!(ok.id.as_str(), "7");
        assert_eq!(
            ok.signup_at.unwrap().to_rfc3339(),
            "2026-02-28T15:00:00+00:00"
        );
        assert_eq!(ok.health, Some(80));
        let e = customer(
            obj(json!({"id": "c", "email": "nope", "timezone": "Nowhere/City", "health": "x", "emial": 1})),
            &defaults(),
        )
        .unwrap_err();
        for part in [
            "unknown field \"emial\"",
            "email \"nope\"",
            "Nowhere/City",
            "health \"x\"",
        ] {
            assert!(e.contains(part), "{part} not in {e}");
        }
    }

    #[test]
    fn an_event_row() {
        let e = event(obj(
            json!({"customer_id": "c", "name": "login", "occurred_at": "2026-01-01"}),
        ))
        .unwrap();
        assert_eq!(e.id, None);
        assert!(event(obj(json!({"customer_id": "c", "name": "log in"}))).is_err());
    }

    #[test]
    fn a_contact_row_names_its_account_and_declared_roles() {
        let header: Vec<String> = ["id", "email", "account_id", "roles[]"]
            .map(String::from)
            .to_vec();
        let layout = CsvLayout::new(&header, Kind::Customers).unwrap();
        let map = layout.to_json(
            ["c1", "a@x.io", "acme", "billing; admin"]
                .map(String::from)
                .to_vec(),
        );
        let c = customer(map, &defaults()).unwrap();
        assert_eq!(c.account_id.unwrap().as_str(), "acme");
        assert_eq!(c.roles.names(), ["billing", "admin"]);
        let e = customer(
            obj(json!({"id": "c", "email": "a@x.io", "roles": ["biling"]})),
            &defaults(),
        )
        .unwrap_err();
        assert!(e.contains("role \"biling\" is not declared"), "{e}");
        let e = customer(
            obj(json!({"id": "c", "email": "a@x.io", "roles": "billing", "account_id": ""})),
            &defaults(),
        )
        .unwrap();
        assert_eq!(e.account_id, None, "an empty cell is no account");
    }

    #[test]
    fn an_account_row_is_validated_whole() {
        let a = account(
            obj(json!({"id": "acme", "name": "Acme", "renewal_at": "2027-01-31", "health": "70", "owner": "maria", "attributes": {"seats": 40}})),
            &defaults(),
        )
        .unwrap();
        assert_eq!(a.owner.as_deref(), Some("maria"));
        assert_eq!(
            a.renewal_at.unwrap().to_rfc3339(),
            "2027-01-31T00:00:00+00:00"
        );
        let e = account(
            obj(json!({"id": "", "owner": "mario", "health": 101, "seats": 3})),
            &defaults(),
        )
        .unwrap_err();
        for part in [
            "unknown field \"seats\"",
            "id is missing",
            "owner \"mario\" is not a team member; use one of maria",
            "health \"101\"",
        ] {
            assert!(e.contains(part), "{part} not in {e}");
        }
    }

    #[test]
    fn a_record_keeps_a_declared_calendar_and_a_quiet_period_in_its_zone() {
        let c = customer(
            obj(
                json!({"id": "c1", "email": "ana@example.com", "timezone": "Europe/Berlin",
                "holidays": "de", "quiet_until": "2027-03-01"}),
            ),
            &defaults(),
        )
        .unwrap();
        assert_eq!(c.availability.holidays.as_deref(), Some("de"));
        assert_eq!(
            c.availability.quiet_until.unwrap().to_rfc3339(),
            "2027-02-28T23:00:00+00:00",
            "midnight in Berlin"
        );
        let none = customer(
            obj(json!({"id": "c1", "email": "ana@example.com", "holidays": "", "quiet_until": null})),
            &defaults(),
        )
        .unwrap();
        assert_eq!(none.availability, Availability::default());
        let e = customer(
            obj(json!({"id": "c1", "email": "ana@example.com", "holidays": "fr", "quiet_until": "soon"})),
            &defaults(),
        )
        .unwrap_err();
        for part in [
            "holidays names the calendar \"fr\", which the config does not declare; use one of de",
            "quiet_until:",
        ] {
            assert!(e.contains(part), "{part} not in {e}");
        }
        let a = account(
            obj(json!({"id": "acme", "holidays": "de", "quiet_until": "2027-03-01T12:00:00Z"})),
            &defaults(),
        )
        .unwrap();
        assert_eq!(a.availability.holidays.as_deref(), Some("de"));
        assert!(account(obj(json!({"id": "acme", "holidays": "xx"})), &defaults()).is_err());
    }
}
