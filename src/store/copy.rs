//! Rows in PostgreSQL's `COPY` text format: one line a row, columns
//! separated by tabs, `\N` for none, and a backslash, tab, line feed or
//! carriage return inside a value written as its escape.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::domain::customer::CustomerRecord;

/// A customer new to the store, in `sql::COPY_CUSTOMERS_POSTGRES`'s
/// columns: imported at `now`, due for planning at once (as the upsert
/// writes it, `plan_at` at the epoch).
pub fn customer_row(out: &mut Vec<u8>, c: &CustomerRecord, now: DateTime<Utc>) {
    text(out, c.id.as_str());
    tab(out);
    text(out, c.email.as_str());
    tab(out);
    text(out, &c.name);
    tab(out);
    text(out, c.timezone.name());
    tab(out);
    text(out, &c.locale);
    tab(out);
    text(out, &c.plan);
    for at in [c.signup_at, c.renewal_at, c.last_seen_at] {
        tab(out);
        instant(out, at);
    }
    tab(out);
    match c.health {
        Some(health) => out.extend_from_slice(health.to_string().as_bytes()),
        None => none(out),
    }
    tab(out);
    let attributes = serde_json::to_string(&c.attributes).expect("a JSON object always serializes");
    text(out, &attributes);
    tab(out);
    match &c.account_id {
        Some(account) => text(out, account.as_str()),
        None => none(out),
    }
    tab(out);
    text(out, &c.roles.joined());
    for at in [now, now, DateTime::<Utc>::UNIX_EPOCH] {
        tab(out);
        instant(out, Some(at));
    }
    out.push(b'\n');
}

fn tab(out: &mut Vec<u8>) {
    out.push(b'\t');
}

fn none(out: &mut Vec<u8>) {
    out.extend_from_slice(b"\\N");
}

/// An instant to the microsecond, as the driver binds one.
fn instant(out: &mut Vec<u8>, at: Option<DateTime<Utc>>) {
    match at {
        Some(at) => {
            out.extend_from_slice(at.to_rfc3339_opts(SecondsFormat::Micros, true).as_bytes());
        }
        None => none(out),
    }
}

fn text(out: &mut Vec<u8>, value: &str) {
    for &b in value.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}
