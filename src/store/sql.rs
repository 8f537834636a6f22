//! SQL that reads the same on both backends (both accept `$1` placeholders),
//! kept once so the two implementations cannot drift. What differs — bound
//! types, the claim of due rows — stays in `sqlite.rs` and `postgres.rs`.

/// The start of a multi-row customer insert; `VALUES` follow.
pub const INSERT_CUSTOMERS: &str = "INSERT INTO customers (id, email, name, timezone, locale, plan, \
     signup_at, renewal_at, last_seen_at, health, attributes, created_at, updated_at) ";

/// Replaces a re-imported customer's record; keeps what tend derived (stage,
/// stage history) and when the customer was first seen (`created_at`).
pub const REPLACE_CUSTOMER: &str = " ON CONFLICT (id) DO UPDATE SET email = excluded.email, \
     name = excluded.name, timezone = excluded.timezone, locale = excluded.locale, \
     plan = excluded.plan, signup_at = excluded.signup_at, renewal_at = excluded.renewal_at, \
     last_seen_at = excluded.last_seen_at, health = excluded.health, \
     attributes = excluded.attributes, updated_at = excluded.updated_at";

/// The start of a multi-row event insert; `VALUES` follow.
pub const INSERT_EVENTS: &str =
    "INSERT INTO events (id, customer_id, name, occurred_at, properties, received_at) ";

/// A known idempotency key is skipped, not an error.
pub const SKIP_KNOWN_EVENT: &str = " ON CONFLICT (id) DO NOTHING";

/// One customer by id.
pub const SELECT_CUSTOMER: &str = "SELECT id, email, name, timezone, locale, plan, signup_at, \
     renewal_at, last_seen_at, health, attributes, stage, stage_entered_at, created_at, updated_at \
     FROM customers WHERE id = $1";

/// A customer's events, oldest first (insertion order among equal times).
pub const SELECT_EVENTS_OF: &str = "SELECT id, name, occurred_at, properties, received_at \
     FROM events WHERE customer_id = $1 ORDER BY occurred_at, seq";

pub const COUNT_CUSTOMERS: &str = "SELECT count(*) FROM customers";
