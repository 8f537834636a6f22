//! Every statement the store sends, by name: those both backends run once
//! (both accept `$1` placeholders), and the few whose SQL differs side by
//! side, `_SQLITE` and `_POSTGRES`. The contract test prepares each on the
//! databases that run it, so a misspelt table or column fails in CI.

use crate::domain::prefilter::{Literal, Op, Prefilter};
use crate::domain::report::Grouping;

/// The columns a customer's record is written to, in the order both
/// inserts give them.
macro_rules! insert_customers {
    () => {
        "INSERT INTO customers (id, email, name, timezone, locale, plan, signup_at, renewal_at, \
         last_seen_at, health, attributes, account_id, roles, holidays, quiet_until, created_at, \
         updated_at, plan_at) "
    };
}

/// A customer's columns (table `c`) for `rows::customer`, with what their
/// account's record says of their availability (one key lookup each, for
/// the rows returned only).
macro_rules! customer_columns {
    () => {
        "c.id, c.email, c.name, c.timezone, c.locale, c.plan, c.signup_at, c.renewal_at, \
         c.last_seen_at, c.health, c.attributes, c.account_id, c.roles, c.holidays, \
         c.quiet_until, c.stage, c.stage_entered_at, c.created_at, c.updated_at, \
         (SELECT a.holidays FROM accounts a WHERE a.id = c.account_id) AS account_holidays, \
         (SELECT a.quiet_until FROM accounts a WHERE a.id = c.account_id) AS account_quiet_until"
    };
}

/// The start of a multi-row customer insert; `VALUES` follow.
pub const INSERT_CUSTOMERS: &str = insert_customers!();

/// Customers new to the store, a column an array ($1 ids … $13 roles, $14
/// calendars, $15 quiet periods; the attributes as JSON text), imported
/// at $16 and due for planning at once:
/// a plain insert, which the server does without the speculative insertion
/// `ON CONFLICT` costs every row.
pub const INSERT_NEW_CUSTOMERS_POSTGRES: &str = concat!(
    insert_customers!(),
    "SELECT id, email, name, timezone, locale, plan, signup_at, renewal_at, last_seen_at, health, \
     attributes::jsonb, account_id, roles, holidays, quiet_until, $16, $16, 'epoch' \
     FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
     $7::timestamptz[], $8::timestamptz[], $9::timestamptz[], $10::smallint[], $11::text[], \
     $12::text[], $13::text[], $14::text[], $15::timestamptz[]) AS r(id, email, name, timezone, \
     locale, plan, signup_at, renewal_at, last_seen_at, health, attributes, account_id, roles, \
     holidays, quiet_until)"
);
/// Which of the ids in $1 are stored: one index probe each (see
/// `per_customer!`), whatever the table's statistics.
pub const STORED_CUSTOMERS_POSTGRES: &str = "SELECT h.id FROM UNNEST($1::text[]) AS c(id) \
     CROSS JOIN LATERAL (SELECT id FROM customers WHERE id = c.id OFFSET 0) AS h";

/// Replaces a re-imported customer's record; keeps what tend derived (stage,
/// stage history) and when the customer was first seen (`created_at`). A
/// changed customer is planned again at the next tick (`plan_at`).
/// Each backend appends its mark of `plan_at` (see `MARK_SQLITE`).
pub const REPLACE_CUSTOMER: &str = " ON CONFLICT (id) DO UPDATE SET email = excluded.email, \
     name = excluded.name, timezone = excluded.timezone, locale = excluded.locale, \
     plan = excluded.plan, signup_at = excluded.signup_at, renewal_at = excluded.renewal_at, \
     last_seen_at = excluded.last_seen_at, health = excluded.health, \
     attributes = excluded.attributes, account_id = excluded.account_id, roles = excluded.roles, \
     holidays = excluded.holidays, quiet_until = excluded.quiet_until, \
     updated_at = excluded.updated_at, plan_at = ";

/// Marks a customer due at once, with a value of `plan_at` no pass has read
/// yet: one millisecond below both the current value and the epoch. A pass
/// that read the customer before the mark then cannot overwrite it (its
/// write is guarded by the value it read), so the mark is never lost.
pub const MARK_SQLITE: &str = "MIN(customers.plan_at, 0) - 1";
/// The same on PostgreSQL.
pub const MARK_POSTGRES: &str = "LEAST(customers.plan_at, 'epoch') - interval '1 millisecond'";

/// Rows of each customer of `$1` on PostgreSQL, one index probe per
/// customer (see `PgStore::history_rows` for why not `= ANY($1)`):
/// `$from` is the table and the start of its `WHERE`, ending in `AND` or
/// `WHERE`.
macro_rules! per_customer {
    ($columns:expr, $from:expr) => {
        concat!(
            "SELECT h.* FROM UNNEST($1::text[]) AS c(id) CROSS JOIN LATERAL (SELECT ",
            $columns,
            " FROM ",
            $from,
            " customer_id = c.id OFFSET 0) AS h"
        )
    };
}
/// Each customer's events.
pub const HISTORY_EVENTS_POSTGRES: &str = per_customer!(
    "customer_id, coalesce(id, 'seq:' || seq), name, occurred_at",
    "events WHERE"
);
/// Each customer's stage entries.
pub const HISTORY_STAGES_POSTGRES: &str = per_customer!(
    "customer_id, to_stage, changed_at",
    "stage_changes WHERE to_stage IS NOT NULL AND"
);
/// Each customer's outbox occurrences, whether each was sent, and whether
/// each still waits to go.
pub const HISTORY_MESSAGES_POSTGRES: &str = per_customer!(
    "customer_id, playbook, step, occurrence, status = 'sent', status IN ('planned', 'deferred')",
    "messages WHERE"
);

/// Each customer's events, stage entries and outbox occurrences on
/// SQLite: each backend appends its list of customers.
pub const HISTORY_EVENTS_SQLITE: &str =
    "SELECT customer_id, coalesce(id, 'seq:' || seq), name, occurred_at FROM events WHERE ";
/// See `HISTORY_EVENTS_SQLITE`.
pub const HISTORY_STAGES_SQLITE: &str =
    "SELECT customer_id, to_stage, changed_at FROM stage_changes WHERE to_stage IS NOT NULL AND ";
/// See `HISTORY_EVENTS_SQLITE`.
pub const HISTORY_MESSAGES_SQLITE: &str = "SELECT customer_id, playbook, step, occurrence, \
     status = 'sent', status IN ('planned', 'deferred') FROM messages WHERE ";

/// The start of a multi-row event insert; `VALUES` follow.
pub const INSERT_EVENTS: &str =
    "INSERT INTO events (id, customer_id, name, occurred_at, properties, received_at) ";

/// A known idempotency key is skipped, not an error.
pub const SKIP_KNOWN_EVENT: &str = " ON CONFLICT (id) DO NOTHING";

/// The start of a multi-row account insert; `VALUES` follow.
pub const INSERT_ACCOUNTS: &str = "INSERT INTO accounts (id, name, plan, renewal_at, health, owner, \
     attributes, holidays, quiet_until, created_at, updated_at, plan_at) ";

/// Replaces a re-imported account's record; keeps its stage and when it
/// was first seen.
pub const REPLACE_ACCOUNT: &str = " ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
     plan = excluded.plan, renewal_at = excluded.renewal_at, health = excluded.health, \
     owner = excluded.owner, attributes = excluded.attributes, holidays = excluded.holidays, \
     quiet_until = excluded.quiet_until, updated_at = excluded.updated_at, plan_at = ";

/// The start of an insert of accounts known only by the id a contact
/// named (`VALUES` follow, then `KEEP_ACCOUNT`).
pub const INSERT_NAMED_ACCOUNTS: &str = "INSERT INTO accounts (id, created_at, updated_at) ";
/// Leaves an account already stored alone.
pub const KEEP_ACCOUNT: &str = " ON CONFLICT (id) DO NOTHING";

/// Which of a list of accounts exist: the list follows.
pub const KNOWN_ACCOUNTS: &str = "SELECT id FROM accounts WHERE ";

/// An account's columns with its number of contacts, for `ONE_ACCOUNT`
/// and `ACCOUNTS_PAGE`.
macro_rules! account_columns {
    ($rest:expr) => {
        concat!(
            "SELECT a.id, a.name, a.plan, a.renewal_at, a.health, a.owner, a.attributes, \
             a.holidays, a.quiet_until, a.stage, a.stage_entered_at, a.created_at, a.updated_at, \
             (SELECT count(*) FROM customers c WHERE c.account_id = a.id \
             AND c.erased_at IS NULL) AS contacts",
            $rest
        )
    };
}

/// One account by id.
pub const ONE_ACCOUNT: &str = account_columns!(" FROM accounts a WHERE a.id = $1");

/// Some accounts by id: the list follows.
pub const ACCOUNTS_OF: &str = account_columns!(" FROM accounts a WHERE ");

/// Up to `$2` accounts in id order after `$1` (the empty string first).
pub const ACCOUNTS_PAGE: &str =
    account_columns!(" FROM accounts a WHERE a.id > $1 ORDER BY a.id LIMIT $2");

/// An account's contacts in id order.
pub const CONTACTS_OF: &str = concat!(
    "SELECT ",
    customer_columns!(),
    " FROM customers c WHERE account_id = $1 AND erased_at IS NULL ORDER BY id"
);

/// Marks customers due for planning: the backend's mark and the
/// customers follow.
pub const SET_PLAN_AT: &str = "UPDATE customers SET plan_at = ";

/// The time zones of customers: the list of ids follows.
pub const CUSTOMER_ZONES: &str = "SELECT id, timezone FROM customers WHERE ";

/// How many of a batch of customers exist (the list follows): SQLite's
/// upsert cannot tell an insert from an update.
pub const COUNT_CUSTOMERS_OF_SQLITE: &str = "SELECT count(*) FROM customers WHERE ";

/// One customer by id.
pub const SELECT_CUSTOMER: &str = concat!(
    "SELECT ",
    customer_columns!(),
    " FROM customers c WHERE id = $1"
);

/// A customer's events, oldest first (insertion order among equal times).
pub const SELECT_EVENTS_OF: &str = "SELECT id, name, occurred_at, properties, received_at \
     FROM events WHERE customer_id = $1 ORDER BY occurred_at, seq";

pub const COUNT_CUSTOMERS: &str = "SELECT count(*) FROM customers";

/// Takes the planning lead for this session if no other session holds it
/// (PostgreSQL); released when the session ends.
pub const TRY_LEAD_PLANNING: &str = "SELECT pg_try_advisory_lock($1)";

/// Gives the planning lead up, keeping the session for the pool.
pub const END_LEAD_PLANNING: &str = "SELECT pg_advisory_unlock($1)";

/// The customer a message went to.
pub const CUSTOMER_OF_MESSAGE: &str = "SELECT customer_id FROM messages WHERE id = $1";
/// The customer of a message an answer that replaces the earlier ones is
/// recorded for, on PostgreSQL locking the message until it commits: of
/// two answers at once (a double click), the second waits, and its delete
/// then sees the first and replaces it, where both would otherwise be
/// kept. SQLite's one writer already runs them one after the other.
pub const CUSTOMER_OF_ANSWERED_POSTGRES: &str = "SELECT m.customer_id FROM messages m \
     JOIN customers c ON c.id = m.customer_id WHERE m.id = $1 AND c.erased_at IS NULL \
     FOR NO KEY UPDATE OF m";
/// The same on SQLite, without the lock. Both find nothing once the
/// person is erased: an answer (and its comment, the person's own words)
/// is not kept under their stand-in.
pub const CUSTOMER_OF_ANSWERED_SQLITE: &str = "SELECT m.customer_id FROM messages m \
     JOIN customers c ON c.id = m.customer_id WHERE m.id = $1 AND c.erased_at IS NULL";

/// A message's responses, oldest first (ids are time-ordered UUIDv7).
pub const RESPONSES_OF: &str =
    "SELECT kind, value, comment FROM responses WHERE message_id = $1 ORDER BY id";

/// Forgets a message's earlier responses of one kind ($2): for survey
/// answers, where the last answer per message wins.
pub const DELETE_RESPONSES_OF: &str = "DELETE FROM responses WHERE message_id = $1 AND kind = $2";

/// The message a Message-ID we sent names: its id ($1, read from the
/// Message-ID's local part) and the whole Message-ID ($2) must agree.
pub const MESSAGE_BY_HEADER_ID: &str =
    "SELECT customer_id FROM messages WHERE id = $1 AND message_id = $2";

/// One inbound message as it came; a second copy (same Message-ID or
/// digest) is not kept again.
pub const INSERT_INBOUND: &str = "INSERT INTO inbound_mail (id, source, received_at, \
     header_message_id, classification, message_id, raw) VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (header_message_id) DO NOTHING";

/// A response, linked to the inbound mail ($9) it was read from or that
/// asked for it; NULL for one made on a link.
pub const INSERT_RESPONSE: &str = "INSERT INTO responses (id, message_id, customer_id, \
     kind, value, comment, received_at, source, inbound_id) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// A customer's soft bounces since $2 (4.x.x, and 5.2.2: mailbox full).
pub const COUNT_SOFT_BOUNCES: &str = "SELECT COUNT(*) FROM responses WHERE customer_id = $1 \
     AND kind = 'bounce' AND received_at >= $2 AND (value LIKE '4.%' OR value = '5.2.2')";

/// Responses received since $1, oldest first.
pub const RESPONSES_SINCE: &str = "SELECT id, message_id, customer_id, kind, value, comment, \
     received_at, source FROM responses WHERE received_at >= $1 ORDER BY received_at, id";

/// One customer's survey answers with their survey, oldest first.
pub const SURVEY_ANSWERS_FROM: &str = "SELECT r.customer_id, m.survey, r.value, r.received_at \
     FROM responses r JOIN messages m ON m.id = r.message_id \
     WHERE r.kind = 'survey' AND m.survey IS NOT NULL AND r.value IS NOT NULL AND r.";
/// Ends [`SURVEY_ANSWERS_FROM`] after its list of customers.
pub const SURVEY_ANSWERS_ORDER: &str = " ORDER BY r.received_at, r.id";

/// Some customers' responses: the builder appends the list of customers
/// and [`RESPONSES_ORDER`].
pub const RESPONSES_FROM: &str = "SELECT id, message_id, customer_id, kind, value, comment, \
     received_at, source FROM responses WHERE ";
/// Oldest first.
pub const RESPONSES_ORDER: &str = " ORDER BY received_at, id";

/// The roll-up of `tend report --by`: per group, (sent, answered)
/// messages, survey answers and responses by kind, since `$1`. The group is
/// the customer's account (their own when none), its owner, its plan or its
/// stage (the account's, else the person's own).
pub fn report_by(grouping: Grouping) -> [String; 3] {
    let key = match grouping {
        Grouping::Account => "COALESCE(a.id, c.id)",
        Grouping::Owner => "COALESCE(a.owner, '')",
        Grouping::Plan => "COALESCE(CASE WHEN a.id IS NULL THEN c.plan ELSE a.plan END, '')",
        Grouping::Stage => "COALESCE(CASE WHEN a.id IS NULL THEN c.stage ELSE a.stage END, '')",
    };
    // An account-scope message counts for the account it was planned for,
    // wherever its contact is now.
    let people = "JOIN customers c ON c.id = m.customer_id \
         LEFT JOIN accounts a ON a.id = COALESCE(m.account_id, c.account_id)";
    [
        format!(
            "SELECT {key}, SUM(CASE WHEN m.status = 'sent' THEN 1 ELSE 0 END), \
             SUM(CASE WHEN EXISTS (SELECT 1 FROM responses r WHERE r.message_id = m.id \
             AND r.kind IN ('survey', 'click', 'reply')) THEN 1 ELSE 0 END) \
             FROM messages m {people} WHERE m.due_at >= $1 GROUP BY {key}"
        ),
        format!(
            "SELECT {key}, m.survey, r.value, COUNT(*) FROM responses r \
             JOIN messages m ON m.id = r.message_id {people} \
             WHERE r.kind = 'survey' AND r.received_at >= $1 AND m.survey IS NOT NULL \
             AND r.value IS NOT NULL GROUP BY {key}, m.survey, r.value"
        ),
        format!(
            "SELECT {key}, r.kind, COUNT(*) FROM responses r \
             JOIN customers c ON c.id = r.customer_id LEFT JOIN accounts a ON a.id = c.account_id \
             WHERE r.received_at >= $1 GROUP BY {key}, r.kind"
        ),
    ]
}

/// For the report: messages due since $1, by status.
pub const REPORT_STATUSES: &str =
    "SELECT status, COUNT(*) FROM messages WHERE due_at >= $1 GROUP BY status ORDER BY status";

/// For the report: per step, messages sent and messages a person answered
/// (a survey answer, a click, a reply). The answered are counted from the
/// responses, so the cost grows with them, not with every message.
pub const REPORT_STEPS: &str = "SELECT s.playbook, s.step, s.sent, COALESCE(a.answered, 0) FROM \
     (SELECT playbook, step, SUM(CASE WHEN status = 'sent' THEN 1 ELSE 0 END) AS sent \
     FROM messages WHERE due_at >= $1 GROUP BY playbook, step) s \
     LEFT JOIN (SELECT m.playbook, m.step, COUNT(DISTINCT r.message_id) AS answered \
     FROM responses r JOIN messages m ON m.id = r.message_id \
     WHERE m.due_at >= $1 AND r.kind IN ('survey', 'click', 'reply') GROUP BY m.playbook, m.step) a \
     ON a.playbook = s.playbook AND a.step = s.step ORDER BY s.playbook, s.step";

/// For the report: survey answers received since $1, by survey and answer.
pub const REPORT_ANSWERS: &str = "SELECT m.survey, r.value, COUNT(*) FROM responses r \
     JOIN messages m ON m.id = r.message_id \
     WHERE r.kind = 'survey' AND r.received_at >= $1 AND m.survey IS NOT NULL AND r.value IS NOT NULL \
     GROUP BY m.survey, r.value";

/// Every survey answer received since $1, oldest first: when, which
/// survey, the answer (the console's weekly scores).
pub const SURVEY_ANSWERS_SINCE: &str = "SELECT r.received_at, m.survey, r.value FROM responses r \
     JOIN messages m ON m.id = r.message_id \
     WHERE r.kind = 'survey' AND r.received_at >= $1 AND m.survey IS NOT NULL AND r.value IS NOT NULL \
     ORDER BY r.received_at";

/// The latest $1 replies, newest first.
pub const LATEST_REPLIES: &str = "SELECT id, message_id, customer_id, kind, value, comment, \
     received_at, source FROM responses WHERE kind = 'reply' ORDER BY received_at DESC, id DESC LIMIT $1";

/// The latest $1 NPS answers from 0 to 6 (detractors), newest first.
pub const LATEST_DETRACTORS: &str = "SELECT r.id, r.message_id, r.customer_id, r.kind, r.value, \
     r.comment, r.received_at, r.source FROM responses r JOIN messages m ON m.id = r.message_id \
     WHERE r.kind = 'survey' AND m.survey = 'nps' AND r.value IN ('0', '1', '2', '3', '4', '5', '6') \
     ORDER BY r.received_at DESC, r.id DESC LIMIT $1";

/// For the report: responses received since $1, by kind.
pub const REPORT_KINDS: &str =
    "SELECT kind, COUNT(*) FROM responses WHERE received_at >= $1 GROUP BY kind";

/// A customer's suppressions, by category.
pub const SUPPRESSIONS_OF: &str = "SELECT customer_id, category, reason, source FROM suppressions \
     WHERE customer_id = $1 ORDER BY category";

/// Which of some customers may not be mailed in a category (they left it,
/// or all mail): the builder binds the category, closes the bracket and
/// appends the list of ids.
pub const SUPPRESSED_AMONG: &str = "SELECT DISTINCT customer_id FROM suppressions \
     WHERE (category = '*' OR category = ";

/// Lifts a suppression ($2) the customer ($1) chose; the sources are
/// `store::CHOSEN_BY_CUSTOMER`.
pub const LIFT_CHOSEN: &str = "DELETE FROM suppressions WHERE customer_id = $1 AND category = $2 \
     AND source IN ('one-click', 'unsubscribe page', 'preferences page', 'mailto')";

/// The transactions `pg_stat_activity` shows writing where no row of a
/// feed can be: in another database, or autovacuum's (an ANALYZE writes
/// only the catalog), as array text (`{xid,…}`). `committed_horizon`
/// leaves them out, so a busy neighbour on the same server, or statistics
/// gathered over a large table, does not hold a feed back.
///
/// A feed read asks this by a statement of its own, before its page's:
/// every transaction the list misses then took its id after the list was
/// read, so its id is above every row committed before the read began,
/// and it holds back only rows written after it. Asked inside the page's
/// statement, the list would be read after that statement's snapshot, and
/// a neighbour that ended in between would hold back rows already final.
pub const WRITING_ELSEWHERE_POSTGRES: &str = "SELECT COALESCE(array_agg(backend_xid::text::bigint), '{}')::text \
     FROM pg_stat_activity WHERE backend_xid IS NOT NULL \
     AND (datname IS DISTINCT FROM current_database() \
     OR backend_type = 'autovacuum worker')";

/// The first transaction id of this database whose rows may not all be
/// visible yet (see `SIGNALS_AFTER_POSTGRES`): every row whose `tx` is
/// below it is final, and every later commit has a higher `tx`.
///
/// The placeholder given binds `WRITING_ELSEWHERE_POSTGRES`'s answer. A
/// running transaction that list does not name is taken as one that may
/// write a feed's rows: one of this database (another instance, an
/// operator's open session), one that began since, or a prepared
/// transaction (`pg_prepared_xacts`, never in `pg_stat_activity`), which
/// holds feeds back until it is committed or rolled back. `backend_xid`
/// is 32 bits, the snapshot's are 64. (PostgreSQL reads a backend's
/// database, then its xid, by slot: a backend of this database that took
/// a neighbour's slot and an xid between those two reads, nanoseconds
/// apart, would be listed as the neighbour's.)
macro_rules! committed_horizon {
    ($elsewhere:literal) => {
        concat!(
            "COALESCE((SELECT min(x::text::bigint) \
             FROM pg_snapshot_xip(pg_current_snapshot()) AS x \
             WHERE x::text::bigint % 4294967296 <> ALL(CAST(",
            $elsewhere,
            " AS BIGINT[]))), pg_snapshot_xmax(pg_current_snapshot())::text::bigint)"
        )
    };
}

/// The columns a message is listed with (`rows::message_view`).
macro_rules! message_view_columns {
    () => {
        "id, customer_id, to_address, playbook, step, occurrence, kind, status, reason, \
         subject, due_at, sent_at, attempts, message_id"
    };
}

/// The columns a response is listed with (`rows::response_view`).
macro_rules! response_view_columns {
    () => {
        "id, message_id, customer_id, kind, value, comment, received_at, source"
    };
}

/// A page of messages in commit order after seq $1 (SQLite's single
/// writer commits in `seq` order, which AUTOINCREMENT never reuses), in
/// status $2 and of customer $3 when given, planned or changed at or after
/// $4; $5 rows.
pub const MESSAGES_PAGE_SQLITE: &str = concat!(
    "SELECT ",
    message_view_columns!(),
    ", 0 AS tx, seq FROM messages WHERE seq > $1 \
     AND (CAST($2 AS TEXT) IS NULL OR status = $2) \
     AND (CAST($3 AS TEXT) IS NULL OR customer_id = $3) \
     AND updated_at >= $4 ORDER BY seq LIMIT $5"
);
/// The same on PostgreSQL after ($1, $2) in (tx, seq) order, reading only
/// rows of transactions that are over (see `committed_horizon`, whose $7
/// is `WRITING_ELSEWHERE_POSTGRES`'s answer), so a transaction begun
/// earlier that commits later is not stepped past.
pub const MESSAGES_PAGE_POSTGRES: &str = concat!(
    "SELECT ",
    message_view_columns!(),
    ", tx, seq FROM messages WHERE (tx, seq) > ($1, $2) AND tx < ",
    committed_horizon!("$7"),
    " AND (CAST($3 AS TEXT) IS NULL OR status = $3) \
     AND (CAST($4 AS TEXT) IS NULL OR customer_id = $4) \
     AND updated_at >= $5 ORDER BY tx, seq LIMIT $6"
);

/// A page of responses received at or after $2 in commit order after seq
/// $1; $3 rows (see `MESSAGES_PAGE_SQLITE`).
pub const RESPONSES_PAGE_SQLITE: &str = concat!(
    "SELECT ",
    response_view_columns!(),
    ", 0 AS tx, seq FROM responses WHERE seq > $1 AND received_at >= $2 ORDER BY seq LIMIT $3"
);
/// The same on PostgreSQL after ($1, $2) in (tx, seq) order, reading only
/// rows of finished transactions ($5 as in `MESSAGES_PAGE_POSTGRES`).
pub const RESPONSES_PAGE_POSTGRES: &str = concat!(
    "SELECT ",
    response_view_columns!(),
    ", tx, seq FROM responses WHERE (tx, seq) > ($1, $2) AND tx < ",
    committed_horizon!("$5"),
    " AND received_at >= $3 ORDER BY tx, seq LIMIT $4"
);

/// A page of suppressions after (customer $1, category $2), of customer
/// $3 and category $4 when given, with the address they keep from; $5
/// rows. An erased person's stand-in is never listed: nothing can lift
/// what keeps them unmailed.
pub const SUPPRESSIONS_PAGE: &str = "SELECT s.customer_id, c.email, s.category, s.reason, \
     s.source, s.created_at FROM suppressions s JOIN customers c ON c.id = s.customer_id \
     WHERE (s.customer_id, s.category) > ($1, $2) AND c.erased_at IS NULL \
     AND (CAST($3 AS TEXT) IS NULL OR s.customer_id = $3) \
     AND (CAST($4 AS TEXT) IS NULL OR s.category = $4) \
     ORDER BY s.customer_id, s.category LIMIT $5";
/// The same for one customer ($1), after category $2, of category $3
/// when given, $4 rows: a look-up by the key, where the page above would
/// read the table from its start to find one customer's.
pub const SUPPRESSIONS_PAGE_OF: &str = "SELECT s.customer_id, c.email, s.category, s.reason, \
     s.source, s.created_at FROM suppressions s JOIN customers c ON c.id = s.customer_id \
     WHERE s.customer_id = $1 AND s.category > $2 AND c.erased_at IS NULL \
     AND (CAST($3 AS TEXT) IS NULL OR s.category = $3) \
     ORDER BY s.category LIMIT $4";

/// Lifts one suppression (customer $1, category $2), never an erased
/// person's stand-in's, returning what it was: one statement, so of two
/// lifts at once one finds it and the other nothing.
pub const LIFT_SUPPRESSION: &str = "DELETE FROM suppressions \
     WHERE customer_id = $1 AND category = $2 \
     AND customer_id IN (SELECT id FROM customers WHERE id = $1 AND erased_at IS NULL) \
     RETURNING reason, source, created_at";
/// Keeps who lifted a suppression ($1, $2: reason $3, source $4, since
/// $5), when ($6), who ($7) and why ($8).
pub const INSERT_LIFT: &str = "INSERT INTO suppression_lifts (customer_id, category, reason, \
     source, suppressed_at, lifted_at, lifted_by, why) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
/// The suppressions lifted from a customer, oldest first.
pub const LIFTS_OF: &str = "SELECT category, reason, source, suppressed_at, lifted_at, \
     lifted_by, why FROM suppression_lifts WHERE customer_id = $1 ORDER BY seq";

/// Deletes attempts that started before $1. The message keeps its status,
/// reason and attempt count; only the per-attempt detail goes.
pub const PRUNE_ATTEMPTS: &str = "DELETE FROM attempts WHERE started_at < $1";

/// Whether the store answers at all (readiness).
pub const PING: &str = "SELECT 1";

/// Messages due by $1 and not yet sent: what delivery has in front of it.
/// Reads the claim index only.
pub const COUNT_DUE: &str = "SELECT count(*) FROM messages \
     WHERE status IN ('planned', 'deferred') AND not_before <= $1";

/// Up to $4 customers whose planning time ($1) has come, most overdue first,
/// after the cursor ($2 plan_at, $3 id). The cursor matters on PostgreSQL:
/// rows planned earlier in the pass leave dead index entries behind, and a
/// scan from the start of the index would walk all of them for every page.
pub const CUSTOMERS_DUE: &str = concat!(
    "SELECT ",
    customer_columns!(),
    ", c.plan_at FROM customers c WHERE plan_at <= $1 AND (plan_at, id) > ($2, $3) \
     AND erased_at IS NULL ORDER BY plan_at, id LIMIT $4"
);

/// Marks accounts due for planning, as `MARK_SQLITE` marks customers.
pub const ACCOUNT_MARK_SQLITE: &str = "MIN(accounts.plan_at, 0) - 1";
/// The same on PostgreSQL.
pub const ACCOUNT_MARK_POSTGRES: &str =
    "LEAST(accounts.plan_at, 'epoch') - interval '1 millisecond'";

/// Marks accounts due: the backend's mark and the list of ids follow.
pub const SET_ACCOUNT_PLAN_AT: &str = "UPDATE accounts SET plan_at = ";

/// Whether any account is stored (1) or none (0): a store without
/// accounts has no account to mark when customers or events arrive.
pub const ANY_ACCOUNT: &str = "SELECT count(*) FROM (SELECT 1 FROM accounts LIMIT 1) AS a";

/// Marks due the accounts of some customers (whose events arrived): the
/// backend's mark, then ` WHERE id IN (SELECT account_id FROM customers
/// WHERE …)` with the list.
pub const ACCOUNTS_OF_CUSTOMERS: &str =
    " WHERE id IN (SELECT account_id FROM customers WHERE account_id IS NOT NULL AND ";

/// Up to `$4` accounts whose planning time has come by `$1`, in
/// (plan_at, id) order after the cursor ($2 plan_at, $3 id).
pub const ACCOUNTS_DUE: &str = account_columns!(
    ", a.plan_at FROM accounts a WHERE a.plan_at <= $1 AND (a.plan_at, a.id) > ($2, $3) \
     ORDER BY a.plan_at, a.id LIMIT $4"
);

/// The roles contacts hold, as stored (joined by commas), each once.
pub const ROLES_HELD: &str =
    "SELECT DISTINCT roles FROM customers WHERE roles <> '' AND account_id IS NOT NULL";

/// The holiday calendars customers and accounts name, each once.
pub const CALENDARS_NAMED: &str = "SELECT holidays FROM customers WHERE holidays IS NOT NULL \
     UNION SELECT holidays FROM accounts WHERE holidays IS NOT NULL";

/// The contacts of some accounts: the list follows.
pub const CONTACTS_OF_ACCOUNTS: &str = concat!(
    "SELECT ",
    customer_columns!(),
    " FROM customers c WHERE erased_at IS NULL AND "
);

/// The stage entries of some accounts: the list follows.
pub const ACCOUNT_STAGES: &str = "SELECT account_id, to_stage, changed_at \
     FROM account_stage_changes WHERE to_stage IS NOT NULL AND ";

/// The account-scope occurrences of some accounts, whether each was sent
/// and whether each still waits: the list follows.
pub const ACCOUNT_MESSAGES: &str = "SELECT account_id, playbook, step, occurrence, \
     status = 'sent', status IN ('planned', 'deferred') FROM messages WHERE ";

/// The events of some accounts' contacts: the list follows.
pub const ACCOUNT_EVENTS: &str = "SELECT c.account_id, coalesce(e.id, 'seq:' || e.seq), \
     e.name, e.occurred_at FROM events e JOIN customers c ON c.id = e.customer_id WHERE ";

/// Expires an account's messages of one step ($2, $3) still waiting from
/// before $4, whoever they went to, with reason $5 at $6; their ids come
/// back, to drop their claims (`UNCLAIM` and the list).
pub const SUPERSEDE_ACCOUNT_WAITING: &str = "UPDATE messages SET status = 'expired', \
     reason = $5, updated_at = $6 WHERE account_id = $1 AND playbook = $2 AND step = $3 \
     AND due_at < $4 AND status IN ('planned', 'deferred') RETURNING id";

/// Drops the claims on some messages: the list of ids follows.
pub const UNCLAIM: &str = "DELETE FROM claims WHERE ";

/// The start of a multi-row insert of account stage changes.
pub const INSERT_ACCOUNT_STAGE_CHANGES: &str =
    "INSERT INTO account_stage_changes (account_id, from_stage, to_stage, changed_at) ";

/// One planned account: when it is next looked at ($1) and, when it moved
/// ($2), its new stage ($3) and when it entered it ($4). The time is
/// guarded by the `plan_at` it was read with ($6), so a mark made meanwhile
/// is kept; a stage move is written whatever, as the stage change and its
/// messages are recorded beside it.
pub const PLANNED_ACCOUNT: &str = "UPDATE accounts \
     SET plan_at = CASE WHEN plan_at = $6 THEN $1 ELSE plan_at END, \
     stage = CASE WHEN $2 THEN $3 ELSE stage END, \
     stage_entered_at = CASE WHEN $2 THEN $4 ELSE stage_entered_at END \
     WHERE id = $5 AND ($2 OR plan_at = $6)";

/// Every account is looked at again (the playbooks changed).
pub const REPLAN_ACCOUNTS_SQLITE: &str =
    "UPDATE accounts SET plan_at = MIN(accounts.plan_at, 0) - 1 WHERE plan_at > 0";
/// The same on PostgreSQL.
pub const REPLAN_ACCOUNTS_POSTGRES: &str = "UPDATE accounts \
     SET plan_at = LEAST(accounts.plan_at, 'epoch') - interval '1 millisecond' \
     WHERE plan_at > 'epoch'";

/// Every customer is looked at again (the playbooks changed). Those already
/// due are left alone: after an import that is everyone, and nothing is written.
pub const REPLAN_ALL_SQLITE: &str =
    "UPDATE customers SET plan_at = MIN(customers.plan_at, 0) - 1 WHERE plan_at > 0";
/// The same on PostgreSQL.
pub const REPLAN_ALL_POSTGRES: &str = "UPDATE customers \
     SET plan_at = LEAST(customers.plan_at, 'epoch') - interval '1 millisecond' \
     WHERE plan_at > 'epoch'";

pub const SELECT_PLANNER_STATE: &str = "SELECT value FROM planner_state WHERE key = $1";

pub const UPSERT_PLANNER_STATE: &str = "INSERT INTO planner_state (key, value) VALUES ($1, $2) \
     ON CONFLICT (key) DO UPDATE SET value = excluded.value";

/// Which SQL a backend speaks where the two differ in a query built here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A page of customers in id order, after `$1` (ids are never empty), at
/// most `$2`, and only those passing `filter` when there is one: the
/// statement, and the values to bind from `$3` on, in order.
///
/// The cursor is always a bound value (the empty string before the first
/// page): `($1 IS NULL OR id > $1)` would keep both stores from seeking in
/// the primary key, and every page would walk the table from its start.
pub fn customers_page(filter: Option<&Prefilter>, dialect: Dialect) -> (String, Vec<Literal>) {
    let mut sql = String::from(concat!(
        "SELECT ",
        customer_columns!(),
        " FROM customers c WHERE id > $1 AND erased_at IS NULL"
    ));
    let mut values = Vec::new();
    if let Some(filter) = filter {
        sql.push_str(" AND ");
        push_prefilter(&mut sql, &mut values, filter, dialect);
    }
    sql.push_str(" ORDER BY id LIMIT $2");
    (sql, values)
}

/// A prefilter's comparison in SQL.
fn operator(op: Op) -> &'static str {
    match op {
        Op::Eq => "=",
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Gt => ">",
        Op::Ge => ">=",
    }
}

/// Appends `filter` as SQL, its values as placeholders from `$3` on.
/// Attributes: SQLite keeps JSON text, where `json_extract` gives a JSON
/// string as text and `json_each` walks a list's elements or an object's
/// entries; PostgreSQL keeps JSONB, where `->>` gives a JSON string as text
/// and `?` tests a list's string elements or an object's keys. Either way a
/// map's keys count, as they do for CEL's `in`.
fn push_prefilter(
    sql: &mut String,
    values: &mut Vec<Literal>,
    filter: &Prefilter,
    dialect: Dialect,
) {
    let mut value = |literal: Literal| {
        values.push(literal);
        format!("${}", values.len() + 2)
    };
    let fragment = match filter {
        Prefilter::Compare(column, op, literal) => {
            format!(
                "{} {} {}",
                column.name(),
                operator(*op),
                value(literal.clone())
            )
        }
        Prefilter::OneOf(column, literals) => {
            let list: Vec<String> = literals.iter().map(|l| value(l.clone())).collect();
            format!("{} IN ({})", column.name(), list.join(", "))
        }
        Prefilter::AttributeIs(key, text) => match dialect {
            Dialect::Sqlite => {
                let path = value(Literal::Text(format!("$.\"{key}\"")));
                format!(
                    "json_extract(attributes, {path}) = {}",
                    value(Literal::Text(text.clone()))
                )
            }
            Dialect::Postgres => {
                let key = value(Literal::Text(key.clone()));
                format!(
                    "attributes ->> {key} = {}",
                    value(Literal::Text(text.clone()))
                )
            }
        },
        Prefilter::AttributeHolds(key, text) => match dialect {
            Dialect::Sqlite => {
                let path = value(Literal::Text(format!("$.\"{key}\"")));
                let text = value(Literal::Text(text.clone()));
                format!(
                    "EXISTS (SELECT 1 FROM json_each(c.attributes, {path}) AS e \
                     WHERE (e.type = 'text' AND e.value = {text}) OR e.key = {text})"
                )
            }
            Dialect::Postgres => {
                let key = value(Literal::Text(key.clone()));
                format!(
                    "(attributes -> {key}) ? {}",
                    value(Literal::Text(text.clone()))
                )
            }
        },
        Prefilter::All(parts) | Prefilter::Any(parts) => {
            let joint = if matches!(filter, Prefilter::All(_)) {
                " AND "
            } else {
                " OR "
            };
            sql.push('(');
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    sql.push_str(joint);
                }
                push_prefilter(sql, values, part, dialect);
            }
            sql.push(')');
            return;
        }
    };
    sql.push_str(&fragment);
}

/// Writes a planned page's customers, one update each (`CustomerUpdate`):
/// the next planning time where `plan_at` is still what the page read, and
/// the new stage where the customer moved. Each backend names its rows
/// `v(id, at, seen, moved, stage, entered)`.
macro_rules! update_planned_customers {
    ($rows:literal) => {
        concat!(
            "UPDATE customers SET \
             plan_at = CASE WHEN customers.plan_at = v.seen THEN v.at ELSE customers.plan_at END, \
             stage = CASE WHEN v.moved THEN v.stage ELSE customers.stage END, \
             stage_entered_at = CASE WHEN v.moved THEN v.entered ELSE customers.stage_entered_at END \
             FROM ",
            $rows,
            " WHERE customers.id = v.id AND (v.moved OR customers.plan_at = v.seen)"
        )
    };
}
/// On PostgreSQL the rows come as one array per column.
pub const UPDATE_PLANNED_CUSTOMERS_POSTGRES: &str = update_planned_customers!(
    "UNNEST($1::text[], $2::timestamptz[], $3::timestamptz[], $4::bool[], $5::text[], \
     $6::timestamptz[]) AS v(id, at, seen, moved, stage, entered)"
);
/// On SQLite the statement follows `WITH v(id, at, seen, moved, stage,
/// entered) AS (VALUES …)`.
pub const UPDATE_PLANNED_CUSTOMERS_SQLITE: &str = update_planned_customers!("v");
/// The start of that `WITH`.
pub const PLANNED_CUSTOMERS_SQLITE: &str = "WITH v(id, at, seen, moved, stage, entered) AS (";

/// The start of a multi-row insert of stage changes (kept so `stage:NAME`
/// anchors fire once per entry); `VALUES` follow.
pub const INSERT_STAGE_CHANGES: &str =
    "INSERT INTO stage_changes (customer_id, from_stage, to_stage, changed_at) ";
/// The same on PostgreSQL, one array per column.
pub const INSERT_STAGE_CHANGES_POSTGRES: &str = "INSERT INTO stage_changes (customer_id, \
     from_stage, to_stage, changed_at) \
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[])";

/// The start of a multi-row outbox insert; `VALUES` follow.
pub const INSERT_MESSAGES: &str = "INSERT INTO messages (id, customer_id, playbook, step, occurrence, \
     kind, category, template, survey, priority, status, reason, to_address, message_id, due_at, \
     not_before, expires_at, created_at, updated_at, incident_id, urgent, notice, account_id) ";

/// The same on PostgreSQL, a row per element of the column arrays;
/// `$21` is the time of writing.
pub const INSERT_MESSAGES_POSTGRES: &str = "INSERT INTO messages (id, customer_id, playbook, step, \
     occurrence, kind, category, template, survey, priority, status, reason, to_address, \
     message_id, due_at, not_before, expires_at, created_at, updated_at, incident_id, urgent, \
     notice, account_id) \
     SELECT id, customer_id, playbook, step, occurrence, kind, category, template, survey, \
     priority, status, reason, to_address, message_id, due_at, not_before, expires_at, $21, $21, \
     incident_id, urgent, notice, account_id \
     FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
     $7::text[], $8::text[], $9::text[], $10::int4[], $11::text[], $12::text[], $13::text[], \
     $14::text[], $15::timestamptz[], $16::timestamptz[], $17::timestamptz[], $18::text[], \
     $19::bool[], $20::text[], $22::text[]) \
     AS m(id, customer_id, playbook, step, occurrence, kind, category, template, survey, \
     priority, status, reason, to_address, message_id, due_at, not_before, expires_at, \
     incident_id, urgent, notice, account_id) \
     ON CONFLICT (customer_id, playbook, step, occurrence) DO NOTHING";

/// The outbox's unique key makes planning idempotent: a re-plan, a restart
/// or a second instance never creates a second message for an occurrence.
pub const SKIP_PLANNED: &str = " ON CONFLICT (customer_id, playbook, step, occurrence) DO NOTHING";

/// Catch-up: expires, as superseded, the messages of each (customer,
/// playbook, step) still waiting (planned or deferred) whose time is before
/// the newly planned occurrence's; one a worker has sent or is sending is
/// left alone. The key's leading columns find them.
///
/// On PostgreSQL, one statement: the keys as arrays ($1 customers, $2
/// playbooks, $3 steps, $4 times), the reason $5, the time $6; it drops
/// their claims, so the instance holding one can neither send it nor put
/// it back to wait, and returns how many it expired.
pub const SUPERSEDE_WAITING_POSTGRES: &str = "WITH older AS (UPDATE messages \
     SET status = 'expired', reason = $5, updated_at = $6 \
     FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[]) \
     AS s(customer_id, playbook, step, later_at) \
     WHERE messages.customer_id = s.customer_id AND messages.playbook = s.playbook \
     AND messages.step = s.step AND messages.due_at < s.later_at \
     AND messages.status IN ('planned', 'deferred') RETURNING messages.id), \
     dropped AS (DELETE FROM claims WHERE message_id IN (SELECT id FROM older)) \
     SELECT count(*) FROM older";
/// The same on SQLite: this (the reason bound), `, updated_at =` (bound),
/// ` FROM (VALUES …` (customer, playbook, step, time), then
/// `SUPERSEDE_WAITING_SQLITE`; the ids it returns lose their claims
/// (`DROP_CLAIMS_SQLITE`).
pub const EXPIRE_SUPERSEDED_SQLITE: &str = "UPDATE messages SET status = 'expired', reason = ";
/// See `EXPIRE_SUPERSEDED_SQLITE`.
pub const SUPERSEDE_WAITING_SQLITE: &str = ") AS v WHERE messages.customer_id = v.column1 \
     AND messages.playbook = v.column2 AND messages.step = v.column3 \
     AND messages.due_at < v.column4 AND messages.status IN ('planned', 'deferred') \
     RETURNING id";

/// Messages for `tend messages`, optionally by status ($1) and customer ($2),
/// planned or changed at or after $3.
pub const SELECT_MESSAGES: &str = concat!(
    "SELECT ",
    message_view_columns!(),
    " FROM messages WHERE (CAST($1 AS TEXT) IS NULL OR status = $1) \
     AND (CAST($2 AS TEXT) IS NULL OR customer_id = $2) AND updated_at >= $3 \
     ORDER BY due_at, customer_id, playbook, step, occurrence"
);
/// Some customers' messages: the builder appends the list of customers
/// and [`MESSAGES_ORDER`].
pub const MESSAGES_OF_CUSTOMERS: &str =
    concat!("SELECT ", message_view_columns!(), " FROM messages WHERE ");
/// Oldest due first.
pub const MESSAGES_ORDER: &str = " ORDER BY due_at, customer_id, playbook, step, occurrence";
/// The same as `SELECT_MESSAGES` for one customer ($2), read through the
/// outbox key's index (which starts with the customer): `SELECT_MESSAGES`
/// cannot use it, its customer being optional, and read every message of
/// the outbox.
pub const SELECT_MESSAGES_OF: &str = concat!(
    "SELECT ",
    message_view_columns!(),
    " FROM messages WHERE customer_id = $2 AND (CAST($1 AS TEXT) IS NULL OR status = $1) \
     AND updated_at >= $3 ORDER BY due_at, customer_id, playbook, step, occurrence"
);

/// The most important priority from $1 on with a message due by $2 that no
/// live instance has claimed. Claims walk the priorities in order, so each
/// claim reads only the rows it takes (an index range per priority),
/// however many wait for later.
///
/// The priorities with waiting messages are found one index probe each
/// (`waiting`, a skip over the claim index), and each is asked whether
/// anything in it is free to claim: a pass with nothing due costs this
/// and the first try (`CLAIM_FIRST_*`), not a claim per priority.
macro_rules! next_priority {
    ($free:literal) => {
        concat!(
            "WITH RECURSIVE waiting(priority) AS (\
             SELECT MIN(priority) FROM messages WHERE status IN ('planned', 'deferred') AND priority >= $1 \
             UNION ALL \
             SELECT (SELECT MIN(m.priority) FROM messages m \
             WHERE m.status IN ('planned', 'deferred') AND m.priority > waiting.priority) \
             FROM waiting WHERE waiting.priority IS NOT NULL) ",
            $free
        )
    };
}
/// SQLite asks each priority in turn, stopping at the first free row.
pub const NEXT_PRIORITY_SQLITE: &str = next_priority!(
    "SELECT MIN(priority) FROM waiting WHERE EXISTS (SELECT 1 FROM messages m \
     WHERE m.status IN ('planned', 'deferred') AND m.priority = waiting.priority AND m.not_before <= $2 \
     AND NOT EXISTS (SELECT 1 FROM claims c WHERE c.message_id = m.id AND c.until >= $2))"
);
/// PostgreSQL would turn the same `EXISTS` into a join that reads every
/// waiting message of the outbox on each claim (55 ms a claim at 100,000
/// waiting, measured). A lateral probe in the claim index's order with
/// `LIMIT 1` walks each priority's range only to its first free row; the
/// order keeps the planner from a table scan its statistics, taken before
/// a pass claimed anything, say would find a free row at once.
pub const NEXT_PRIORITY_POSTGRES: &str = next_priority!(
    "SELECT MIN(waiting.priority) FROM waiting CROSS JOIN LATERAL (SELECT 1 FROM messages m \
     WHERE m.status IN ('planned', 'deferred') AND m.priority = waiting.priority AND m.not_before <= $2 \
     AND NOT EXISTS (SELECT 1 FROM claims c WHERE c.message_id = m.id AND c.until >= $2) \
     ORDER BY m.not_before LIMIT 1) free WHERE waiting.priority IS NOT NULL"
);

/// Leases up to $4 sendable messages of priority $5 (planned or deferred,
/// due by $3, not claimed by a live instance) to owner $1 until $2, oldest
/// first: a row each in `claims`, the outbox row untouched. A claim that ran
/// out is taken over; a live one is never shared (the claim's key).
macro_rules! claim {
    ($candidates:literal, $priority:expr, $lock:literal) => {
        concat!(
            "INSERT INTO claims (message_id, owner, until) SELECT id, $1, $2 FROM ",
            $candidates,
            " WHERE status IN ('planned', 'deferred') AND priority = ",
            $priority,
            " AND not_before <= $3 \
             AND NOT EXISTS (SELECT 1 FROM claims c WHERE c.message_id = messages.id AND c.until >= $3) \
             ORDER BY not_before LIMIT $4",
            $lock,
            " ON CONFLICT (message_id) DO UPDATE SET owner = excluded.owner, until = excluded.until \
             WHERE claims.until < $3 RETURNING message_id"
        )
    };
}
/// The most important priority anything waits in: one probe of the claim
/// index, whether or not what waits there is due or free.
macro_rules! most_important {
    () => {
        "(SELECT MIN(w.priority) FROM messages w WHERE w.status IN ('planned', 'deferred'))"
    };
}
/// SQLite runs it under its single write lock; the index is named because
/// SQLite would otherwise pick another and sort every waiting row.
pub const CLAIM_SQLITE: &str = claim!("messages INDEXED BY messages_claim", "$5", "");
/// On PostgreSQL instances claim side by side: rows another instance is
/// claiming are skipped, never waited for.
pub const CLAIM_POSTGRES: &str = claim!("messages", "$5", " FOR UPDATE SKIP LOCKED");
/// A lease's first try: `CLAIM_*` at the most important priority anything
/// waits in, without `$5`. When that fills the lease, as it does batch
/// after batch while a large send goes out, no look for a priority with a
/// free row runs: such a look steps over every row claimed and not yet
/// settled, as the claim itself does, so the claim did it twice. When it
/// does not fill (nothing there is due or free yet), the walk of
/// `NEXT_PRIORITY_*` goes on from the start, as it would have.
pub const CLAIM_FIRST_SQLITE: &str =
    claim!("messages INDEXED BY messages_claim", most_important!(), "");
/// See `CLAIM_FIRST_SQLITE`.
pub const CLAIM_FIRST_POSTGRES: &str =
    claim!("messages", most_important!(), " FOR UPDATE SKIP LOCKED");

/// Marks $3 `sending` at $2 where owner $1 still holds their claims, and
/// renews to $4 those of the marked messages' claims that end before $5;
/// returns the ids marked. A message whose claim ran out and went to
/// another instance is not marked, so it is not sent twice: the claims are
/// read under a row lock, so a takeover that committed first is seen (the
/// owner no longer matches) and one that comes later waits for this mark,
/// after which the message is no longer waiting and its claim is not taken
/// (`CLAIM_*` takes only waiting messages). The outbox row changes only its
/// status (same length) and time.
pub const BEGIN_SENDING_POSTGRES: &str = "WITH held AS (SELECT message_id, until FROM claims \
     WHERE owner = $1 AND message_id = ANY($3) FOR UPDATE), \
     marked AS (UPDATE messages SET status = 'sending', updated_at = $2 \
     FROM held WHERE messages.id = held.message_id AND status IN ('planned', 'deferred') RETURNING id), \
     renewed AS (UPDATE claims SET until = $4 FROM held \
     WHERE claims.message_id = held.message_id AND held.until < $5 \
     AND claims.message_id IN (SELECT id FROM marked)) \
     SELECT id FROM marked";
/// The same on SQLite, in two statements of one transaction: this one
/// marks (the time, then the claims of the owner on the ids, appended)…
pub const BEGIN_SENDING_SQLITE: &str = "UPDATE messages SET status = 'sending', updated_at = ";
/// …of those waiting that the owner still claims (the claims follow)…
pub const CLAIMED_WAITING_SQLITE: &str =
    " WHERE status IN ('planned', 'deferred') AND id IN (SELECT message_id FROM claims WHERE ";
/// …and this one renews those claims (the new expiry, then the claims)…
pub const RENEW_CLAIMS_SQLITE: &str = "UPDATE claims SET until = ";
/// …that end before the time that follows.
pub const RENEW_CLAIMS_ENDING_SQLITE: &str = " AND until < ";
/// Settling drops the claims of the messages it records (the claims
/// appended).
pub const DROP_CLAIMS_SQLITE: &str = "DELETE FROM claims WHERE ";
/// Which settled rows may change: those the settling owner still claims
/// while they wait or are being sent, and a send recovery gave up on as
/// `unknown` when the record is of an attempt: only the instance that
/// began that send can have one, and what it says happened (the truth)
/// wins over `unknown`.
///
/// A claimed row that has ended meanwhile is left as it is. Catch-up
/// (`SUPERSEDE_WAITING_POSTGRES`) and a maintenance's start
/// (`WITHDRAW_ANNOUNCEMENTS`) expire waiting rows; a claim taken while
/// that statement ran is not among those it drops, since it commits after
/// the statement's snapshot, and the claimant that then holds the message
/// (a window, a cap) would put it back to wait, to go out after all.
///
/// On PostgreSQL, one statement a run: each message's new state as arrays
/// ($1 ids … $8, at $9, by owner $10); `mine` holds the claims it drops.
pub const SETTLE_POSTGRES: &str = "WITH mine AS (DELETE FROM claims \
     WHERE owner = $10 AND message_id = ANY($1) RETURNING message_id) \
     UPDATE messages SET status = v.status, reason = v.reason, \
     not_before = COALESCE(v.not_before, messages.not_before), \
     subject = COALESCE(v.subject, messages.subject), \
     sent_at = COALESCE(v.sent_at, messages.sent_at), attempts = messages.attempts + v.tried, \
     first_attempt_at = COALESCE(messages.first_attempt_at, v.started), updated_at = $9 \
     FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], \
     $6::timestamptz[], $7::int[], $8::timestamptz[]) \
     AS v(id, status, reason, not_before, subject, sent_at, tried, started) \
     WHERE messages.id = v.id AND ((messages.status = 'unknown' AND v.tried = 1) \
     OR messages.status IN ('planned', 'deferred', 'sending') \
     AND messages.id IN (SELECT message_id FROM mine))";
/// The same on SQLite: this, the time, ` FROM (`, the run's `VALUES` (id,
/// status, reason, not_before, subject, sent_at, tried, started),
/// `) AS v WHERE messages.id = v.column1`, `SETTLE_GUARD_SQLITE`, the
/// owner, then `))`.
pub const SETTLE_SQLITE: &str = "UPDATE messages SET status = v.column2, reason = v.column3, \
     not_before = COALESCE(v.column4, not_before), subject = COALESCE(v.column5, subject), \
     sent_at = COALESCE(v.column6, sent_at), attempts = attempts + v.column7, \
     first_attempt_at = COALESCE(first_attempt_at, v.column8), updated_at = ";
/// See `SETTLE_SQLITE`; `v.column7` says an attempt was made.
pub const SETTLE_GUARD_SQLITE: &str = " AND ((messages.status = 'unknown' AND v.column7 = 1) \
     OR messages.status IN ('planned', 'deferred', 'sending') \
     AND EXISTS (SELECT 1 FROM claims c WHERE c.message_id = messages.id AND c.owner = ";

/// What the worker needs to send one claimed message: the message, its
/// customer, and any suppression of its category or of all mail. Each
/// backend adds its id list.
macro_rules! claimed_details {
    ($customer:literal, $suppressions:literal) => {
        concat!(
            "SELECT m.id AS message_uuid, m.account_id AS planned_for, \
             m.playbook, m.step, m.occurrence, \
             m.kind, m.category, m.template, m.survey, m.notice, m.urgent, m.priority, m.status, \
             m.to_address, m.message_id, m.due_at, m.not_before, m.expires_at, m.attempts, \
             m.first_attempt_at, s.reason AS suppressed, ",
            customer_columns!(),
            " FROM messages m ",
            $customer,
            " ",
            $suppressions,
            " WHERE "
        )
    };
}
/// SQLite looks each one up by key anyway.
pub const CLAIMED_DETAILS_SQLITE: &str = claimed_details!(
    "JOIN customers c ON c.id = m.customer_id",
    "LEFT JOIN suppressions s ON s.customer_id = m.customer_id AND s.category IN (m.category, '*')"
);
/// On PostgreSQL each message's customer and suppressions are looked up by
/// key, row by row (`OFFSET 0` keeps the planner from flattening the
/// lookups into joins): for a batch of a thousand, the planner otherwise
/// hashes the whole customers table, five times the work at 100,000
/// customers and more as the table grows.
pub const CLAIMED_DETAILS_POSTGRES: &str = claimed_details!(
    "CROSS JOIN LATERAL (SELECT * FROM customers WHERE id = m.customer_id OFFSET 0) c",
    "LEFT JOIN LATERAL (SELECT reason FROM suppressions \
     WHERE customer_id = m.customer_id AND category IN (m.category, '*') OFFSET 0) s ON true"
);

/// `CLAIMED_DETAILS_*` for `dialect`.
pub fn claimed_details(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => CLAIMED_DETAILS_SQLITE,
        Dialect::Postgres => CLAIMED_DETAILS_POSTGRES,
    }
}

/// Narrows `CLAIMED_DETAILS_*` to messages still waiting to go; each backend
/// adds its customer list and `QUEUED_ORDER`.
pub const QUEUED: &str = "m.status IN ('planned', 'deferred') AND ";
/// Each customer's waiting messages in due order, the rows of one message
/// together.
pub const QUEUED_ORDER: &str = " ORDER BY m.customer_id, m.not_before, m.id";

/// The start of a multi-row insert of delivery attempts; `VALUES` follow.
pub const INSERT_ATTEMPTS: &str = "INSERT INTO attempts (message_id, started_at, finished_at, \
     outcome, smtp_code, detail) ";

/// A suppression is kept as first recorded.
pub const INSERT_SUPPRESSION: &str = "INSERT INTO suppressions (customer_id, category, reason, \
     source, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (customer_id, category) DO NOTHING";

/// Mail that counts against the cap: what went, or may have gone. Incident
/// and maintenance notices count too: they are never held by the cap, but a
/// customer who just had two of them has had enough mail this week.
macro_rules! counted_sent {
    () => {
        "status IN ('sent', 'sending', 'unknown') AND "
    };
}
/// When mail went to these customers, for the cap; SQLite adds
/// its customer list (`customer_id IN (…)`) and the time bound.
pub const SENT_TO: &str = concat!(
    "SELECT customer_id, COALESCE(sent_at, updated_at) AS at FROM messages WHERE ",
    counted_sent!()
);
/// The same on PostgreSQL for the customers of `$1` since `$2`, one probe
/// a customer (see `PgStore::history_rows`).
pub const SENT_TO_POSTGRES: &str = per_customer!(
    "customer_id, COALESCE(sent_at, updated_at) AS at",
    concat!(
        "messages WHERE ",
        counted_sent!(),
        "COALESCE(sent_at, updated_at) > $2 AND"
    )
);

/// Messages left `sending` by an instance whose lease ran out: their fate
/// is unknown ($2 = 'unknown'), or they go again ($2 = 'deferred') when the
/// operator chose `delivery.resend_unknown`. `DROP_EXPIRED_CLAIMS` follows
/// in the same transaction.
pub const RECOVER_SENDING: &str = "UPDATE messages SET status = $2, reason = $3, updated_at = $1 \
     WHERE status = 'sending' AND id IN (SELECT message_id FROM claims WHERE until < $1)";
/// Claims that ran out: of the sends just recovered, and of instances that
/// stopped before sending what they had claimed (those messages wait, and
/// any instance may claim them).
pub const DROP_EXPIRED_CLAIMS: &str = "DELETE FROM claims WHERE until < $1";

/// Messages a dead predecessor was sending when it died, claimed by owner
/// $4 (NULL: by anyone, for a caller that knows no other process runs):
/// like `RECOVER_SENDING`, without waiting for the lease.
/// `RELEASE_CLAIMS` follows in the same transaction.
pub const RELEASE_SENDING: &str = "UPDATE messages SET status = $2, reason = $3, updated_at = $1 \
     WHERE status = 'sending' AND id IN (SELECT message_id FROM claims \
     WHERE CAST($4 AS TEXT) IS NULL OR owner = $4)";
/// Drops the claims of owner $1 (NULL: every claim): the sends among them
/// were just settled, and the messages claimed but never started wait, due
/// as they were, for the next claim.
pub const RELEASE_CLAIMS: &str = "DELETE FROM claims WHERE CAST($1 AS TEXT) IS NULL OR owner = $1";

/// Renews every claim owner $1 holds to $2: a live instance keeps what it
/// claimed, however long its batch takes to send.
pub const RENEW_CLAIMS: &str = "UPDATE claims SET until = $2 WHERE owner = $1 AND until < $2";

/// Opens a planned page's write on PostgreSQL: its commit does not wait
/// for the disk (the PostgreSQL `Dialect` says why that is safe).
pub const NO_WAIT_FOR_DISK_POSTGRES: &str = "SET LOCAL synchronous_commit = off";

/// On the connection that holds an instance's name: the server probes it
/// after 10 s of silence and drops it after three lost probes, so the name
/// of an instance whose machine died (no FIN, no RST) is free again within
/// about half a minute instead of the kernel's two hours.
pub const KEEP_NAME_ALIVE_POSTGRES: &str = "SET tcp_keepalives_idle = 10; \
     SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3";

/// Holds an instance's name ($2) for as long as this connection lasts, if
/// no other connection holds it (PostgreSQL): the lock's key is the pair
/// (`INSTANCE_NAMES`, the name's hash), a key space apart from the planning
/// lead's single key. Two names with one hash would refuse each other.
pub const TRY_HOLD_NAME_POSTGRES: &str = "SELECT pg_try_advisory_lock($1, hashtext($2))";

/// Whether any claim has run out: a read of the claims in flight (the
/// table has no expiry index; see migration 0024 on PostgreSQL).
pub const ANY_CLAIM_EXPIRED: &str = "SELECT 1 FROM claims WHERE until < $1 LIMIT 1";

/// What a large planning or delivery pass rewrites, vacuumed and analyzed
/// after it on PostgreSQL (`Store::tidy`), and the search queue the pass's
/// fill emptied (until it is vacuumed, every search reads past the rows it
/// took: 170 ms a search at 600,000, by hand).
pub const TIDY_POSTGRES: &str =
    "VACUUM (ANALYZE) customers, accounts, messages, claims, stage_changes, search_queue";
/// What an import adds to, analyzed after it adds many rows on PostgreSQL:
/// a vacuum would read every new page and clear nothing.
pub const ANALYZE_POSTGRES: &str = "ANALYZE customers, accounts, events, search_queue";

/// Every attempt at one message, oldest first.
pub const SELECT_ATTEMPTS: &str = "SELECT started_at, finished_at, outcome, smtp_code, detail \
     FROM attempts WHERE message_id = $1 ORDER BY seq";

/// A new incident; an id taken already inserts nothing.
pub const INSERT_INCIDENT: &str = "INSERT INTO incidents (id, kind, title, status, affects, \
     template, message, starts_at, ends_at, opened_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) ON CONFLICT (id) DO NOTHING";

/// One incident.
pub const SELECT_INCIDENT: &str = "SELECT id, kind, title, status, affects, template, message, \
     starts_at, ends_at, opened_at, resolved_at FROM incidents WHERE id = $1";

/// The notices that open an incident or announce a maintenance, and that
/// went or will go: follow-ups go to exactly these customers.
macro_rules! first_notices {
    () => {
        "(m.step = 'open' OR m.step LIKE 'announce-%') \
         AND m.status IN ('planned', 'deferred', 'sending', 'sent', 'unknown')"
    };
}

/// Every incident with how many customers got its first notice.
pub const LIST_INCIDENTS: &str = concat!(
    "SELECT i.id, i.kind, i.title, i.status, i.opened_at, i.resolved_at, \
     (SELECT COUNT(DISTINCT m.customer_id) FROM messages m WHERE m.incident_id = i.id AND ",
    first_notices!(),
    ") AS notified FROM incidents i ORDER BY i.opened_at, i.id"
);

/// Who got an incident's first notice, with its Message-ID, oldest first.
pub const RECIPIENTS: &str = concat!(
    "SELECT m.customer_id, m.to_address, m.message_id FROM messages m WHERE m.incident_id = $1 \
     AND m.customer_id NOT IN (SELECT id FROM customers WHERE erased_at IS NOT NULL) AND ",
    first_notices!(),
    " ORDER BY m.customer_id, m.due_at, m.created_at"
);
/// The first $2 rows of `RECIPIENTS`: the console shows a sample of who
/// was told, not a million lines.
/// Read through `messages_by_incident` in customer order, so the first
/// rows are found without sorting every notice; an erased person's
/// stand-in is looked up by key for each, not gathered by a scan.
pub const RECIPIENTS_SAMPLE: &str = concat!(
    "SELECT m.customer_id, m.to_address, m.message_id FROM messages m WHERE m.incident_id = $1 \
     AND NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = m.customer_id AND c.erased_at IS NOT NULL) \
     AND ",
    first_notices!(),
    " ORDER BY m.customer_id, m.due_at, m.created_at LIMIT $2"
);
/// How many customers got incident $1's first notice (`LIST_INCIDENTS`'
/// count, for one).
pub const TOLD: &str = concat!(
    "SELECT COUNT(DISTINCT m.customer_id) FROM messages m WHERE m.incident_id = $1 AND ",
    first_notices!()
);

/// The start of recording who an incident affects; `VALUES` follow.
pub const INSERT_AFFECTED: &str = "INSERT INTO incident_customers (incident_id, customer_id) ";
pub const SKIP_AFFECTED: &str = " ON CONFLICT (incident_id, customer_id) DO NOTHING";

/// An update's words (and status, when it sets one).
pub const UPDATE_INCIDENT: &str = "UPDATE incidents SET status = COALESCE($2, status), \
     message = $3, updated_at = $4 WHERE id = $1 AND resolved_at IS NULL";

/// The history of updates; its sequence names the update's notice.
pub const INSERT_INCIDENT_UPDATE: &str = "INSERT INTO incident_updates (incident_id, status, \
     message, notify, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING seq";

/// Resolves (or completes) an incident once; cancels ($2 = 'cancelled') a
/// maintenance only while it is still scheduled, so one that another
/// instance started a moment ago is not called off.
pub const CLOSE_INCIDENT: &str = "UPDATE incidents SET status = $2, message = $3, \
     resolved_at = $4, updated_at = $4 WHERE id = $1 AND resolved_at IS NULL \
     AND ($2 <> 'cancelled' OR status = 'scheduled')";

/// Open maintenances whose start ($1 = now) has come while still
/// scheduled, or whose end has come: what their own clock moves.
pub const MAINTENANCES_DUE: &str = "SELECT id, kind, title, status, affects, template, message, \
     starts_at, ends_at, opened_at, resolved_at FROM incidents \
     WHERE kind = 'maintenance' AND resolved_at IS NULL \
     AND ((status = 'scheduled' AND starts_at <= $1) OR ends_at <= $1) ORDER BY starts_at, id";

/// A scheduled maintenance starts ($2 = its start): once, and never after
/// it was closed or started by hand.
pub const START_MAINTENANCE: &str = "UPDATE incidents SET status = 'in_progress', updated_at = $2 \
     WHERE id = $1 AND status = 'scheduled' AND resolved_at IS NULL";

/// The announcements of incident $1 still waiting to go: claimed or not.
macro_rules! waiting_announcements {
    () => {
        "incident_id = $1 AND step LIKE 'announce-%' AND status IN ('planned', 'deferred')"
    };
}

/// Drops the claims on incident $1's waiting announcements before they are
/// withdrawn, so a worker that claimed one can neither send it nor settle
/// it back to waiting.
pub const RELEASE_ANNOUNCEMENTS: &str = concat!(
    "DELETE FROM claims WHERE message_id IN (SELECT id FROM messages WHERE ",
    waiting_announcements!(),
    ")"
);

/// Settles incident $1's waiting announcements `expired` with reason $2 at
/// $3: kept in the ledger with why they never went, not deleted.
pub const WITHDRAW_ANNOUNCEMENTS: &str = concat!(
    "UPDATE messages SET status = 'expired', reason = $2, updated_at = $3 WHERE ",
    waiting_announcements!()
);

/// Customers an open incident affects; each backend adds its id list.
pub const QUIET: &str = "SELECT ic.customer_id, i.id FROM incident_customers ic \
     JOIN incidents i ON i.id = ic.incident_id \
     WHERE i.kind = 'incident' AND i.resolved_at IS NULL AND ";

/// The number of rows the connection's statements have changed since it
/// opened, counted by SQLite (rolled-back ones included): `sqlite_watch`.
pub const TOTAL_CHANGES_SQLITE: &str = "SELECT total_changes()";

/// The migrations a store has, in the order the migrator applies them.
pub const APPLIED_MIGRATIONS: &str =
    "SELECT version, checksum, success FROM _sqlx_migrations ORDER BY version";

// Signals and their notifications (`signals.rs`).

/// Records signals: id, type, customer, payload, when; the builder appends
/// the rows. `tx` takes its default (the committing transaction on
/// PostgreSQL).
pub const INSERT_SIGNALS: &str =
    "INSERT INTO signals (id, type, customer_id, payload, occurred_at) ";

/// Signals after the cursor ($1 tx, $2 seq), at most $3, in commit order.
/// SQLite commits in `seq` order (one writer), so every signal after the
/// cursor is final.
pub const SIGNALS_AFTER_SQLITE: &str = "SELECT seq, tx, id, type, customer_id, payload, occurred_at FROM signals \
     WHERE (tx, seq) > ($1, $2) ORDER BY tx, seq LIMIT $3";
/// The same on PostgreSQL, where `seq` is drawn when a row is written and
/// a transaction begun earlier may commit later: only signals of
/// transactions older than every one still running in this database are
/// read (they are all final, and every later commit has a higher `tx`),
/// so a routing pass never steps past a signal it cannot see yet. $4 is
/// `WRITING_ELSEWHERE_POSTGRES`'s answer.
pub const SIGNALS_AFTER_POSTGRES: &str = concat!(
    "SELECT seq, tx, id, type, customer_id, payload, occurred_at FROM signals \
     WHERE (tx, seq) > ($1, $2) AND tx < ",
    committed_horizon!("$4"),
    " ORDER BY tx, seq LIMIT $3"
);

/// Moves the routing cursor ($2) from where this pass read it ($3): no row
/// changes when another instance moved it first.
pub const MOVE_ROUTED: &str = "UPDATE planner_state SET value = $2 WHERE key = $1 AND value = $3";
/// Starts the routing cursor.
pub const START_ROUTED: &str =
    "INSERT INTO planner_state (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING";

/// Stores routed notifications; each builder appends its rows.
pub const INSERT_NOTIFICATIONS: &str = "INSERT INTO notifications (id, signal_id, target, \
     channel, recipient, subject, reply_to, body, customer_id, status, reason, next_at, \
     created_at, settled_at) ";
/// A signal is routed to a target once.
pub const SKIP_ROUTED: &str = " ON CONFLICT (signal_id, target) DO NOTHING";

/// The first unsettled row of each target, where it is waiting (not being
/// sent) and due at $1: the queues a pass may take from.
pub const DUE_HEADS: &str = "SELECT n.seq, n.target, n.channel FROM notifications n \
     JOIN (SELECT target, MIN(seq) AS head FROM notifications \
     WHERE status IN ('pending', 'sending') GROUP BY target) h ON n.seq = h.head \
     WHERE n.status = 'pending' AND n.next_at <= $1";

/// A target's head ($1 seq) if still waiting and due at $2 (another
/// instance may have tried it, failed, and put it off since it was read):
/// locked on PostgreSQL, where another instance claiming the same target
/// skips it.
pub const LOCK_HEAD_SQLITE: &str =
    "SELECT seq FROM notifications WHERE seq = $1 AND status = 'pending' AND next_at <= $2";
pub const LOCK_HEAD_POSTGRES: &str = "SELECT seq FROM notifications \
     WHERE seq = $1 AND status = 'pending' AND next_at <= $2 FOR UPDATE SKIP LOCKED";

/// Claims up to $4 rows of target $1 in order for owner $2 until $3.
pub const CLAIM_NOTIFICATIONS: &str = "UPDATE notifications \
     SET status = 'sending', lease_owner = $2, lease_until = $3 \
     WHERE seq IN (SELECT seq FROM notifications WHERE target = $1 AND status = 'pending' \
     ORDER BY seq LIMIT $4) \
     RETURNING seq, id, signal_id, target, channel, recipient, subject, reply_to, body, attempts";

/// Settles a claimed notification $1 held by $2: status $3, reason $4, next
/// try at $5 (pending) or settled at $5 (else), one attempt more.
pub const SETTLE_NOTIFICATION: &str = "UPDATE notifications \
     SET status = $3, reason = $4, attempts = attempts + 1, lease_owner = NULL, \
     lease_until = NULL, \
     next_at = CASE WHEN $3 = 'pending' THEN $5 ELSE next_at END, \
     settled_at = CASE WHEN $3 = 'pending' THEN NULL ELSE $5 END \
     WHERE id = $1 AND lease_owner = $2 AND status = 'sending'";

/// Settles an owner's claimed rows as sent, in one statement: the builder
/// appends the time, [`SETTLE_SENT_OF`], the owner and the ids.
pub const SETTLE_SENT: &str = "UPDATE notifications \
     SET status = 'sent', reason = NULL, attempts = attempts + 1, lease_owner = NULL, \
     lease_until = NULL, settled_at = ";
pub const SETTLE_SENT_OF: &str = " WHERE status = 'sending' AND lease_owner = ";

/// Gives back an owner's claimed rows it did not try, unchanged: the
/// builder appends the owner and their ids.
pub const RELEASE_NOTIFICATIONS: &str = "UPDATE notifications \
     SET status = 'pending', lease_owner = NULL, lease_until = NULL \
     WHERE status = 'sending' AND lease_owner = ";

/// What owner $1 held when it stopped, released at its start ($2): as
/// [`RECOVER_NOTIFICATIONS`] does once a claim expires.
pub const RELEASE_OWNED_NOTIFICATIONS: &str = "UPDATE notifications \
     SET status = CASE WHEN channel = 'email' THEN 'unknown' ELSE 'pending' END, \
     reason = CASE WHEN channel = 'email' \
     THEN 'the instance sending it stopped; it may or may not have gone' ELSE reason END, \
     settled_at = $2, lease_owner = NULL, lease_until = NULL \
     WHERE status = 'sending' AND lease_owner = $1";

/// Rows whose claim expired at $1 (the instance died): mail may have gone,
/// so it is `unknown` and not sent twice; a webhook POST goes again (its
/// receiver deduplicates by `webhook-id`).
pub const RECOVER_NOTIFICATIONS: &str = "UPDATE notifications \
     SET status = CASE WHEN channel = 'email' THEN 'unknown' ELSE 'pending' END, \
     reason = CASE WHEN channel = 'email' \
     THEN 'the instance sending it stopped; it may or may not have gone' ELSE reason END, \
     settled_at = CASE WHEN channel = 'email' THEN $1 ELSE NULL END, \
     lease_owner = NULL, lease_until = NULL \
     WHERE status = 'sending' AND lease_until < $1";

/// Each target's waiting rows (off the partial index of open rows).
pub const BACKLOGS: &str = "SELECT target, COUNT(*) FROM notifications \
     WHERE status IN ('pending', 'sending') GROUP BY target";

/// Each target's counts by status.
pub const NOTIFICATION_COUNTS: &str =
    "SELECT target, status, COUNT(*) FROM notifications GROUP BY target, status";

/// Each target's oldest waiting row, latest sending and latest error.
pub const NOTIFICATION_TIMES: &str = "SELECT target, \
     MIN(CASE WHEN status IN ('pending', 'sending') THEN created_at END), \
     MAX(CASE WHEN status = 'sent' THEN settled_at END) \
     FROM notifications GROUP BY target";

/// The reason of target $1's latest row with one (an error: sent rows
/// carry none).
pub const LAST_NOTIFICATION_ERROR: &str = "SELECT reason FROM notifications \
     WHERE target = $1 AND reason IS NOT NULL ORDER BY seq DESC LIMIT 1";

/// Deletes settled notifications settled before $1.
pub const PRUNE_NOTIFICATIONS: &str = "DELETE FROM notifications \
     WHERE status IN ('sent', 'failed', 'dropped', 'unknown') AND settled_at < $1";

/// Deletes signals from before $1 that routing has passed ($2 tx, $3 seq)
/// and that no waiting notification still needs.
pub const PRUNE_SIGNALS: &str = "DELETE FROM signals WHERE occurred_at < $1 \
     AND (tx, seq) <= ($2, $3) \
     AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.signal_id = signals.id \
     AND n.status IN ('pending', 'sending'))";

/// A message as `tend messages` lists it, for the signal of its sending
/// (the builder appends the id list).
pub const MESSAGE_VIEWS: &str = "SELECT id, customer_id, to_address, playbook, step, occurrence, \
     kind, status, reason, subject, due_at, sent_at, attempts, message_id FROM messages WHERE ";

// Erasure (`customers.rs`): $1 the person, $2 their stand-in, in one
// transaction, in this order.

/// Whether customer $1 exists (its id).
pub const CUSTOMER_EXISTS: &str = "SELECT id FROM customers WHERE id = $1 AND erased_at IS NULL";

/// The stand-in ($1) for person $3 at $2: no name, no address, never
/// planned; their account, plan and stage stay, so the figures rolled up
/// by account, owner, plan and stage stay true (it is never counted as a
/// contact).
pub const INSERT_STAND_IN: &str = "INSERT INTO customers (id, email, name, timezone, locale, \
     plan, attributes, account_id, stage, stage_entered_at, created_at, updated_at, erased_at) \
     SELECT $1, 'erased@erased.invalid', '', 'UTC', 'en', plan, '{}', account_id, stage, \
     stage_entered_at, $2, $2, $2 FROM customers WHERE id = $3";

/// Raw inbound mail from or about the person: emptied.
pub const ERASE_INBOUND: &str = "UPDATE inbound_mail SET raw = $2 \
     WHERE message_id IN (SELECT id FROM messages WHERE customer_id = $1) \
     OR id IN (SELECT inbound_id FROM responses WHERE customer_id = $1)";

/// Their messages move to the stand-in without address, subject or
/// reason; their delivery attempts lose the server's words.
pub const ERASE_ATTEMPTS: &str = "UPDATE attempts SET detail = '' \
     WHERE message_id IN (SELECT id FROM messages WHERE customer_id = $1)";
/// The change is stamped ($3), so a reader of what changed since (the
/// read API's `since`) sees them go.
pub const ERASE_MESSAGES: &str = "UPDATE messages \
     SET customer_id = $2, to_address = NULL, subject = NULL, reason = NULL, updated_at = $3 \
     WHERE customer_id = $1";

/// Their responses move to the stand-in, keeping what the figures count
/// (a score, a category left, a bounce's status) and nothing they wrote.
pub const ERASE_RESPONSES: &str = "UPDATE responses SET customer_id = $2, comment = NULL, \
     value = CASE WHEN kind IN ('survey', 'unsubscribe', 'bounce') THEN value ELSE NULL END \
     WHERE customer_id = $1";

/// Their suppressions move without the words that explained them (a
/// bounce's reason quotes the server, which quotes the address).
pub const ERASE_SUPPRESSIONS: &str = "UPDATE suppressions SET customer_id = $2, \
     reason = 'erased at the person''s request' WHERE customer_id = $1";

/// Holds the person's messages ($1) on PostgreSQL until the erasure
/// commits: claims pass over locked rows, so none of these is taken
/// between `SENDING_TO`'s look and the messages' move to the stand-in, to
/// go out to the erased address after the erasure said it was done. A
/// claim that committed first is seen by `SENDING_TO`, which runs after
/// this; one on a message planned after this lock is seen by `SENDING_TO`
/// again, for the stand-in, after the move. (On SQLite the erasure and
/// every claim are writes, one at a time.)
pub const LOCK_MESSAGES_OF_POSTGRES: &str =
    "SELECT id FROM messages WHERE customer_id = $1 FOR NO KEY UPDATE";

/// Whether a send to the person is under way (claimed): an erasure waits
/// for it to settle, so nothing of theirs is written back after.
pub const SENDING_TO: &str = "SELECT count(*) FROM claims \
     WHERE message_id IN (SELECT id FROM messages WHERE customer_id = $1)";

/// Whether customer $1 is an erased person's stand-in.
pub const IS_STAND_IN: &str = "SELECT id FROM customers WHERE id = $1 AND erased_at IS NOT NULL";
/// The suppressions lifted from them move too, without the words that
/// explained them (a note may name the person).
pub const ERASE_LIFTS: &str = "UPDATE suppression_lifts SET customer_id = $2, \
     reason = 'erased at the person''s request', why = '' WHERE customer_id = $1";
pub const ERASE_INCIDENT_CUSTOMERS: &str =
    "UPDATE incident_customers SET customer_id = $2 WHERE customer_id = $1";
pub const ERASE_SIGNALS: &str = "DELETE FROM signals WHERE customer_id = $1";
pub const ERASE_NOTIFICATIONS: &str = "DELETE FROM notifications WHERE customer_id = $1";
/// Last: their events and stage changes go with them.
pub const DELETE_CUSTOMER: &str = "DELETE FROM customers WHERE id = $1";

/// The hash ($1) of an erased address, at $2.
pub const INSERT_ERASED: &str = "INSERT INTO erased_addresses (hash, erased_at) VALUES ($1, $2) \
     ON CONFLICT (hash) DO NOTHING";
/// Which of some hashes are erased addresses: the builder appends the list.
pub const ERASED_AMONG: &str = "SELECT hash FROM erased_addresses WHERE ";

/// The raw mail that came from or about a person, oldest first.
pub const INBOUND_OF: &str = "SELECT id, received_at, classification, raw FROM inbound_mail \
     WHERE message_id IN (SELECT id FROM messages WHERE customer_id = $1) \
     OR id IN (SELECT inbound_id FROM responses WHERE customer_id = $1) \
     ORDER BY received_at, id";

// The console's search: `search_terms` holds the words a name or address
// begins with (kept by the triggers of migration 0020; on PostgreSQL, an
// import's new people are queued and filled in later, migration 0022).

/// The ids of kind $1 with a term that begins with $2 (lower-cased as
/// the terms were), $3 at most, in the terms' order.
pub const SEARCH_TERMS_SQLITE: &str = "SELECT id FROM search_terms \
     WHERE kind = $1 AND term >= lower($2) AND term < lower($2) || char(1114111) \
     ORDER BY term, id LIMIT $3";
/// The same on PostgreSQL, whose terms compare byte by byte ("C"), with
/// the people still in `search_queue` (migration 0022), whose terms are
/// worked out here from their rows. (`UNION`: a person renamed while
/// waiting, or queued twice, would come twice.)
pub const SEARCH_TERMS_POSTGRES: &str = "SELECT id FROM (\
     (SELECT term, id FROM search_terms \
     WHERE kind = $1 AND term >= lower($2) COLLATE \"C\" \
     AND term < (lower($2) || chr(1114111)) COLLATE \"C\" \
     ORDER BY term, id LIMIT $3) \
     UNION \
     (SELECT t COLLATE \"C\", c.id FROM search_queue q \
     JOIN customers c ON c.id = q.id, unnest(customer_terms(c.name, c.email)) AS t \
     WHERE $1 = 'customer' AND c.erased_at IS NULL \
     AND t >= lower($2) COLLATE \"C\" AND t < (lower($2) || chr(1114111)) COLLATE \"C\" \
     ORDER BY 1, 2 LIMIT $3)\
     ) AS found ORDER BY term, id LIMIT $3";
/// Writes the terms of up to $1 people waiting in `search_queue` and takes
/// them off it; says how many were taken. Instances fill apart (`SKIP
/// LOCKED`). Each person's row is locked while it is read (`FOR SHARE`),
/// so a rename, erasure or removal that comes after waits for the fill and
/// its trigger then removes the fill's terms; one under way is not waited
/// for (`SKIP LOCKED`: a fill waiting on a writer that waits on the fill
/// would be a lock cycle), and its person stays queued for the next fill.
/// A person renamed while queued already has their new terms (`ON
/// CONFLICT`); one erased or removed gets none.
pub const FILL_SEARCH_POSTGRES: &str = "WITH picked AS (SELECT ctid, id FROM search_queue \
     LIMIT $1 FOR UPDATE SKIP LOCKED), \
     people AS (SELECT id, name, email, erased_at FROM customers \
     WHERE id IN (SELECT id FROM picked) FOR SHARE SKIP LOCKED), \
     taken AS (DELETE FROM search_queue WHERE ctid = ANY (ARRAY(SELECT ctid FROM picked)) \
     AND (id IN (SELECT id FROM people) \
     OR NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = search_queue.id)) RETURNING id), \
     filled AS (INSERT INTO search_terms (kind, term, id) \
     SELECT DISTINCT 'customer', t, p.id FROM people p, \
     unnest(customer_terms(p.name, p.email)) AS t WHERE p.erased_at IS NULL AND t <> '' \
     ON CONFLICT DO NOTHING) \
     SELECT count(*) FROM taken";
/// People found, by id: the builder appends the list.
pub const FOUND_CUSTOMERS: &str =
    "SELECT id, name, email, account_id, stage FROM customers WHERE erased_at IS NULL AND ";
/// Accounts found, by id: the builder appends the list.
pub const FOUND_ACCOUNTS: &str = "SELECT id, name, owner, stage FROM accounts WHERE ";

// The console: passwords, sessions and the audit.

/// Sets member $1's password hash to $2 at $3 (a new one replaces the old).
pub const SET_PASSWORD: &str = "INSERT INTO team_passwords (member_id, hash, set_at) \
     VALUES ($1, $2, $3) ON CONFLICT (member_id) DO UPDATE SET hash = excluded.hash, \
     set_at = excluded.set_at";
/// Member $1's password hash and when it was set.
pub const PASSWORD_OF: &str = "SELECT hash, set_at FROM team_passwords WHERE member_id = $1";
/// A new session: token hash, member, CSRF token, from $4 until $5.
pub const OPEN_SESSION: &str = "INSERT INTO console_sessions \
     (token_hash, member_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)";
/// The session of token hash $1 that is still open at $2.
pub const SESSION_BY_TOKEN: &str = "SELECT member_id, csrf, created_at, expires_at \
     FROM console_sessions WHERE token_hash = $1 AND expires_at > $2";
pub const CLOSE_SESSION: &str = "DELETE FROM console_sessions WHERE token_hash = $1";
/// Every session of member $1: a new password signs them out everywhere.
pub const CLOSE_SESSIONS_OF: &str = "DELETE FROM console_sessions WHERE member_id = $1";
/// Sessions that ended by $1, removed as new ones open.
pub const PRUNE_SESSIONS: &str = "DELETE FROM console_sessions WHERE expires_at <= $1";
pub const INSERT_AUDIT: &str = "INSERT INTO console_audit (member_id, action, detail, address, at) \
     VALUES ($1, $2, $3, $4, $5)";
/// How often action $4 was audited since $1 for member $2, and from
/// address $3 (failed sign-ins, sign-in links asked for).
pub const AUDITED_SINCE: &str = "SELECT \
     COALESCE(SUM(CASE WHEN member_id = $2 THEN 1 ELSE 0 END), 0), \
     COALESCE(SUM(CASE WHEN address = $3 THEN 1 ELSE 0 END), 0) \
     FROM console_audit WHERE action = $4 AND at >= $1";
/// A sign-in link: token hash, member, from $3 until $4.
pub const OPEN_LINK: &str = "INSERT INTO console_links \
     (token_hash, member_id, created_at, expires_at) VALUES ($1, $2, $3, $4)";
/// Links that ended by $1, removed as new ones are made.
pub const PRUNE_LINKS: &str = "DELETE FROM console_links WHERE expires_at <= $1";
/// The member of link $1 if it is unused and open at $2.
pub const LINK_OF: &str = "SELECT member_id FROM console_links \
     WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2";
/// Uses link $1 at $2, once: two requests with it cannot both get a row.
pub const USE_LINK: &str = "UPDATE console_links SET used_at = $2 \
     WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING member_id";
/// Every unused link of member $1: a new password voids them too.
pub const CLOSE_LINKS_OF: &str =
    "DELETE FROM console_links WHERE member_id = $1 AND used_at IS NULL";
/// The latest $1 lines of the audit, newest first.
pub const LATEST_AUDIT: &str = "SELECT member_id, action, detail, address, at \
     FROM console_audit ORDER BY seq DESC LIMIT $1";
