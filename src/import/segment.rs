//! Segment's (and RudderStack's) event pipeline spec, read as import rows:
//! `identify` upserts a person, `group` an account and the person's
//! membership, `track` adds an event. Pure: the caller reads the records
//! the calls name, and writes the rows through the import, with its
//! validation and its per-row reasons.
//!
//! An `identify` carries only the traits that changed, so it is laid over
//! the stored person (and earlier calls of the same batch), never put in
//! their place. A `track`'s `messageId` is its event's idempotency key: a
//! replayed batch adds nothing. Replaying an `identify` or a `group`
//! writes the same values again.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::NumberedRow;

/// What a batch's calls become, in the order they are written: accounts,
/// then people (so a membership finds its account), then events (so an
/// event finds its person). Each row keeps the number of its call.
#[derive(Debug, Default)]
pub struct Rows {
    pub accounts: Vec<NumberedRow>,
    pub customers: Vec<NumberedRow>,
    pub events: Vec<NumberedRow>,
    /// Calls not taken, and why (a `page` call, a call without `userId`).
    pub skipped: Vec<(usize, String)>,
}

/// A call with its place in the batch, from 1.
pub type Call = (usize, Map<String, Value>);

/// Calls in one batch at most: Segment's own batches stay under 500 KB.
pub const MAX_CALLS: usize = 10_000;

/// The calls of a body: one call, an array of calls, or `{"batch": […]}`
/// (the HTTP tracking API's batch, which RudderStack also sends).
pub fn calls(body: &[u8]) -> Result<Vec<Call>, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        format!("the body is not JSON ({e}); send one Segment call, an array of them, or {{\"batch\": [...]}}")
    })?;
    let items =
        match value {
            Value::Array(items) => items,
            Value::Object(mut map) => match map.remove("batch") {
                Some(Value::Array(items)) => items,
                Some(_) => return Err("\"batch\" must be an array of calls".into()),
                None => vec![Value::Object(map)],
            },
            _ => return Err(
                "send one Segment call (a JSON object), an array of them, or {\"batch\": [...]}"
                    .into(),
            ),
        };
    if items.len() > MAX_CALLS {
        return Err(format!(
            "the batch holds {} calls; send at most {MAX_CALLS} at a time",
            items.len()
        ));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::Object(map) => Ok((i + 1, map)),
            _ => Err(format!("call {} is not a JSON object", i + 1)),
        })
        .collect()
}

/// The people (`userId`) and accounts (`groupId`) the calls name: the
/// records to read before [`rows`].
pub fn named(calls: &[Call]) -> (Vec<String>, Vec<String>) {
    let mut people = std::collections::BTreeSet::new();
    let mut accounts = std::collections::BTreeSet::new();
    for (_, call) in calls {
        people.extend(id_of(call, "userId"));
        accounts.extend(id_of(call, "groupId"));
    }
    (people.into_iter().collect(), accounts.into_iter().collect())
}

/// An id field: a string, or a number written as one.
fn id_of(call: &Map<String, Value>, key: &str) -> Option<String> {
    match call.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The traits that are fields of a person, and the field each fills.
const PERSON_TRAITS: &[(&str, &str)] = &[
    ("email", "email"),
    ("name", "name"),
    ("plan", "plan"),
    ("createdAt", "signup_at"),
    ("created_at", "signup_at"),
    ("timezone", "timezone"),
    ("health", "health"),
    ("renewalAt", "renewal_at"),
    ("renewal_at", "renewal_at"),
    ("roles", "roles"),
    ("holidays", "holidays"),
    ("quietUntil", "quiet_until"),
    ("quiet_until", "quiet_until"),
];

/// The traits that are fields of an account.
const ACCOUNT_TRAITS: &[(&str, &str)] = &[
    ("name", "name"),
    ("plan", "plan"),
    ("health", "health"),
    ("renewalAt", "renewal_at"),
    ("renewal_at", "renewal_at"),
    ("owner", "owner"),
    ("holidays", "holidays"),
    ("quietUntil", "quiet_until"),
    ("quiet_until", "quiet_until"),
];

/// Lays `traits` over `row`: known traits fill fields, the others go into
/// `attributes` beside what is there.
fn lay_over(row: &mut Map<String, Value>, traits: &Map<String, Value>, known: &[(&str, &str)]) {
    let mut attributes = match row.remove("attributes") {
        Some(Value::Object(a)) => a,
        _ => Map::new(),
    };
    for (key, value) in traits {
        // A trait sent empty changes nothing: it must not wipe an email.
        if value.is_null() {
            continue;
        }
        match known.iter().find(|(t, _)| t == key) {
            Some((_, field)) => {
                row.insert((*field).to_owned(), value.clone());
            }
            None => {
                attributes.insert(key.clone(), value.clone());
            }
        }
    }
    row.insert("attributes".into(), Value::Object(attributes));
}

/// The object under `key`, or an empty one.
fn object(call: &Map<String, Value>, key: &str) -> Map<String, Value> {
    match call.get(key) {
        Some(Value::Object(o)) => o.clone(),
        _ => Map::new(),
    }
}

/// The rows of `calls`, laid over the stored `people` and `accounts`.
pub fn rows(
    calls: Vec<Call>,
    people: &HashMap<String, Map<String, Value>>,
    accounts: &HashMap<String, Map<String, Value>>,
) -> Rows {
    let mut out = Rows::default();
    // Each person and account once, as every call of the batch left them,
    // numbered by the call that named them first.
    let mut person_rows: Vec<(usize, String, Map<String, Value>)> = Vec::new();
    let mut account_rows: Vec<(usize, String, Map<String, Value>)> = Vec::new();
    for (n, call) in calls {
        let kind = call.get("type").and_then(Value::as_str).unwrap_or("");
        let user = id_of(&call, "userId");
        match kind {
            "identify" | "group" | "track" if user.is_none() && kind != "group" => {
                out.skipped.push((
                    n,
                    format!("a {kind} call without userId (anonymous) is not taken: tend writes to people it knows by id"),
                ));
            }
            "identify" => {
                let user = user.unwrap_or_default();
                let row = entry(&mut person_rows, n, &user, || {
                    people.get(&user).cloned().unwrap_or_else(|| {
                        Map::from_iter([("id".to_owned(), Value::String(user.clone()))])
                    })
                });
                let mut traits = object(&call, "traits");
                // A name in parts, as many sources send it.
                if !traits.contains_key("name") {
                    let part = |k: &str| traits.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                    let whole = format!("{} {}", part("firstName"), part("lastName"));
                    if !whole.trim().is_empty() {
                        traits.remove("firstName");
                        traits.remove("lastName");
                        traits.insert("name".into(), Value::String(whole.trim().to_owned()));
                    }
                }
                // The company trait names the person's account.
                if let Some(Value::Object(company)) = traits.remove("company")
                    && let Some(id) = id_of(&company, "id")
                {
                    row.insert("account_id".into(), Value::String(id));
                }
                lay_over(row, &traits, PERSON_TRAITS);
                let context = object(&call, "context");
                if let Some(Value::String(zone)) = context.get("timezone")
                    && !traits.contains_key("timezone")
                {
                    row.insert("timezone".into(), Value::String(zone.clone()));
                }
                if let Some(Value::String(locale)) = context.get("locale") {
                    row.insert("locale".into(), Value::String(locale.clone()));
                }
            }
            "group" => {
                let Some(group) = id_of(&call, "groupId") else {
                    out.skipped.push((n, "a group call without groupId is not taken".into()));
                    continue;
                };
                let row = entry(&mut account_rows, n, &group, || {
                    accounts.get(&group).cloned().unwrap_or_else(|| {
                        Map::from_iter([("id".to_owned(), Value::String(group.clone()))])
                    })
                });
                lay_over(row, &object(&call, "traits"), ACCOUNT_TRAITS);
                // The person joins the account, if tend knows them.
                if let Some(user) = user {
                    let known = people.contains_key(&user)
                        || person_rows.iter().any(|(_, id, _)| id == &user);
                    if known {
                        let row = entry(&mut person_rows, n, &user, || {
                            people.get(&user).cloned().unwrap_or_default()
                        });
                        row.insert("account_id".into(), Value::String(group));
                    } else {
                        out.skipped.push((
                            n,
                            format!("the account is kept, but {user:?} is not known yet: identify them (with an email) and they join it at their next group call"),
                        ));
                    }
                }
            }
            "track" => {
                let Some(event) = call.get("event").and_then(Value::as_str) else {
                    out.skipped.push((n, "a track call without event is not taken".into()));
                    continue;
                };
                let mut row = Map::new();
                if let Some(id) = id_of(&call, "messageId") {
                    row.insert("id".into(), Value::String(id));
                }
                row.insert("customer_id".into(), Value::String(user.unwrap_or_default()));
                row.insert("name".into(), Value::String(event_name(event)));
                let at = ["timestamp", "originalTimestamp", "sentAt", "receivedAt"]
                    .iter()
                    .find_map(|k| call.get(*k).filter(|v| v.is_string()).cloned());
                if let Some(at) = at {
                    row.insert("occurred_at".into(), at);
                }
                row.insert("properties".into(), Value::Object(object(&call, "properties")));
                out.events.push((n, row));
            }
            "page" | "screen" | "alias" => out.skipped.push((
                n,
                format!("{kind} calls are not used by tend; send identify, group and track"),
            )),
            other => out.skipped.push((
                n,
                format!("{other:?} is not a Segment call type tend takes; send identify, group and track"),
            )),
        }
    }
    out.accounts = account_rows
        .into_iter()
        .map(|(n, _, row)| (n, row))
        .collect();
    out.customers = person_rows
        .into_iter()
        .map(|(n, _, row)| (n, row))
        .collect();
    out
}

/// A Segment event name ("Course Clicked", Segment's Object Action
/// convention) as tend names events: `course_clicked`.
pub fn event_name(event: &str) -> String {
    let mut name = String::with_capacity(event.len());
    for c in event.trim().chars() {
        if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
            name.push(c.to_ascii_lowercase());
        } else if !name.ends_with('_') {
            name.push('_');
        }
    }
    name.trim_matches('_').to_owned()
}

/// The row of `id` in `rows`, added from `start` when it is not there.
fn entry<'r>(
    rows: &'r mut Vec<(usize, String, Map<String, Value>)>,
    n: usize,
    id: &str,
    start: impl FnOnce() -> Map<String, Value>,
) -> &'r mut Map<String, Value> {
    let at = match rows.iter().position(|(_, known, _)| known == id) {
        Some(at) => at,
        None => {
            rows.push((n, id.to_owned(), start()));
            rows.len() - 1
        }
    };
    &mut rows[at].2
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(v: Value) -> Vec<Call> {
        calls(v.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn an_identify_is_laid_over_the_stored_person() {
        let stored = HashMap::from([(
            "u1".to_owned(),
            json!({"id": "u1", "email": "old@x.io", "plan": "free", "attributes": {"region": "eu"}})
                .as_object()
                .unwrap()
                .clone(),
        )]);
        let out = rows(
            one(
                json!({"type": "identify", "userId": "u1", "traits": {"plan": "pro", "logins": 5, "firstName": "Ana", "lastName": "Lima", "company": {"id": "acme"}}}),
            ),
            &stored,
            &HashMap::new(),
        );
        let row = &out.customers[0].1;
        assert_eq!(row["email"], "old@x.io");
        assert_eq!(row["plan"], "pro");
        assert_eq!(row["name"], "Ana Lima");
        assert_eq!(row["account_id"], "acme");
        assert_eq!(row["attributes"], json!({"region": "eu", "logins": 5}));
    }

    #[test]
    fn a_stored_record_becomes_a_row_that_reads_back_the_same() {
        use crate::domain::availability::Availability;
        use crate::import::record::{Defaults, account, customer};
        let now = chrono::DateTime::parse_from_rfc3339("2027-01-05T00:00:00Z")
            .unwrap()
            .to_utc();
        let defaults = Defaults {
            timezone: chrono_tz::UTC,
            locale: "en".into(),
            roles: Vec::new(),
            team: vec!["sample".into()],
            calendars: vec!["de".into()],
            strict: false,
        };
        let availability = Availability {
            holidays: Some("de".into()),
            quiet_until: Some(now),
        };
        let mut person = crate::domain::customer::Customer::sample(now).record;
        person.availability = availability.clone();
        assert_eq!(customer(person.as_row(), &defaults).unwrap(), person);
        let mut company = crate::domain::account::Account::sample(now).record;
        company.availability = availability;
        assert_eq!(account(company.as_row(), &defaults).unwrap(), company);
    }

    #[test]
    fn a_batch_groups_tracks_and_skips_what_tend_does_not_take() {
        let out = rows(
            one(json!({"batch": [
                {"type": "identify", "userId": "u1", "traits": {"email": "a@x.io"}},
                {"type": "group", "userId": "u1", "groupId": "g1", "traits": {"name": "Initech", "employees": 329}},
                {"type": "track", "userId": "u1", "event": "Report Exported", "messageId": "m1", "timestamp": "2026-12-01T10:00:00Z", "properties": {"rows": 3}},
                {"type": "page", "userId": "u1", "name": "Home"},
                {"type": "track", "anonymousId": "a1", "event": "Visited"},
                {"type": "group", "userId": "stranger", "groupId": "g2"}
            ]})),
            &HashMap::new(),
            &HashMap::new(),
        );
        assert_eq!(out.accounts.len(), 2);
        assert_eq!(out.accounts[0].1["name"], "Initech");
        assert_eq!(out.accounts[0].1["attributes"], json!({"employees": 329}));
        assert_eq!(out.customers.len(), 1);
        assert_eq!(out.customers[0].1["account_id"], "g1");
        assert_eq!(out.events.len(), 1);
        assert_eq!(out.events[0].1["id"], "m1");
        assert_eq!(out.events[0].1["name"], "report_exported");
        assert_eq!(out.events[0].1["occurred_at"], "2026-12-01T10:00:00Z");
        let skipped: Vec<usize> = out.skipped.iter().map(|(n, _)| *n).collect();
        assert_eq!(skipped, [4, 5, 6], "{:?}", out.skipped);
    }

    #[test]
    fn event_names_become_snake_case() {
        assert_eq!(event_name("Course Clicked"), "course_clicked");
        assert_eq!(event_name("  Order  Completed! "), "order_completed");
        assert_eq!(event_name("api.key-created"), "api.key-created");
    }

    #[test]
    fn what_is_not_a_call_is_named() {
        assert!(calls(b"nope").unwrap_err().contains("not JSON"));
        assert!(
            calls(b"[1]")
                .unwrap_err()
                .contains("call 1 is not a JSON object")
        );
        assert!(calls(br#"{"batch": 3}"#).is_err());
    }
}
