//! A store of the release before the read API's order (migrations up to
//! 0015), with rows in it, upgraded by the current binary's migrations on
//! both databases: no row is lost, no reference cut (the SQLite migration
//! rebuilds two tables), the rows already there are listed in the order
//! they were written, and a row written after comes after them.

mod common;

use std::path::{Path, PathBuf};

use chrono::DateTime;
use tend::domain::feed::Position;
use tend::domain::message::MessageFilter;
use tend::store::{ConnectOptions, DatabaseUrl, Db, Outbox, Responses, Upkeep};

/// The migrations of the release before, copied apart.
fn previous_release(backend: &str, into: &Path) -> PathBuf {
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let dir = into.join(format!("migrations-{backend}"));
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.as_str() < "0016" {
            std::fs::copy(&path, dir.join(name)).unwrap();
        }
    }
    dir
}

/// Rows written in an order unlike their times: m3 first, then m1, m2.
const SQLITE_ROWS: &str = "
INSERT INTO customers (id, email, timezone, locale, created_at, updated_at)
  VALUES ('c1', 'c1@example.com', 'UTC', 'en', 0, 0);
INSERT INTO messages (id, customer_id, playbook, step, occurrence, kind, category, template,
  status, due_at, not_before, created_at, updated_at)
  VALUES ('m3', 'c1', 'p', 's3', 'o', 'tip', 'tips', 't', 'sent', 3000, 3000, 3000, 3000),
         ('m1', 'c1', 'p', 's1', 'o', 'tip', 'tips', 't', 'sent', 1000, 1000, 1000, 1000),
         ('m2', 'c1', 'p', 's2', 'o', 'tip', 'tips', 't', 'planned', 2000, 2000, 2000, 2000);
INSERT INTO attempts (message_id, started_at, outcome) VALUES ('m1', 1000, 'sent');
INSERT INTO claims (message_id, owner, until) VALUES ('m2', 'elsewhere', 9000);
INSERT INTO responses (id, message_id, customer_id, kind, value, received_at, source)
  VALUES ('r2', 'm3', 'c1', 'click', 'https://a.example', 3500, 'link'),
         ('r1', 'm1', 'c1', 'survey', '9', 1500, 'survey page');
";

const POSTGRES_ROWS: &str = "
INSERT INTO customers (id, email, timezone, locale, created_at, updated_at)
  VALUES ('c1', 'c1@example.com', 'UTC', 'en', to_timestamp(0), to_timestamp(0));
INSERT INTO messages (id, customer_id, playbook, step, occurrence, kind, category, template,
  status, due_at, not_before, created_at, updated_at)
  VALUES ('m3', 'c1', 'p', 's3', 'o', 'tip', 'tips', 't', 'sent', to_timestamp(3), to_timestamp(3), to_timestamp(3), to_timestamp(3)),
         ('m1', 'c1', 'p', 's1', 'o', 'tip', 'tips', 't', 'sent', to_timestamp(1), to_timestamp(1), to_timestamp(1), to_timestamp(1)),
         ('m2', 'c1', 'p', 's2', 'o', 'tip', 'tips', 't', 'planned', to_timestamp(2), to_timestamp(2), to_timestamp(2), to_timestamp(2));
UPDATE messages SET attempts = 1 WHERE id = 'm3';
INSERT INTO attempts (message_id, started_at, outcome) VALUES ('m1', to_timestamp(1), 'sent');
INSERT INTO claims (message_id, owner, until) VALUES ('m2', 'elsewhere', to_timestamp(9));
INSERT INTO responses (id, message_id, customer_id, kind, value, received_at, source)
  VALUES ('r2', 'm3', 'c1', 'click', 'https://a.example', to_timestamp(3.5), 'link'),
         ('r1', 'm1', 'c1', 'survey', '9', to_timestamp(1.5), 'survey page');
";

/// A row written after the upgrade (SQLite keeps milliseconds).
const LATER_SQLITE: &str = "INSERT INTO responses (id, kind, received_at, source) \
     VALUES ('r3', 'reply', 4000, 'imap')";
const LATER_POSTGRES: &str = "INSERT INTO responses (id, kind, received_at, source) \
     VALUES ('r3', 'reply', to_timestamp(4), 'imap')";

async fn upgraded(store: &Db) {
    let all = store
        .messages_page(&MessageFilter::default(), Position::default(), 10)
        .await
        .unwrap();
    let ids: Vec<&str> = all.data.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["m1", "m2", "m3"], "in the order they were written");
    let responses = store
        .responses_page(DateTime::UNIX_EPOCH, Position::default(), 10)
        .await
        .unwrap();
    let seen: Vec<(&str, Option<&str>)> = responses
        .data
        .iter()
        .map(|r| (r.id.as_str(), r.message_id.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [("r1", Some("m1")), ("r2", Some("m3"))],
        "no reference to a message was cut"
    );
}

async fn check(url: &str, backend: &str, rows: &str) {
    // sqlx's own pools (for what the store has no method for) create the
    // SQLite file; tend opens it by its plain URL.
    let raw = if backend == "sqlite" {
        format!("{url}?mode=rwc")
    } else {
        url.to_owned()
    };
    let raw = raw.as_str();
    let scratch = tempfile::tempdir().unwrap();
    let old = sqlx::migrate::Migrator::new(previous_release(backend, scratch.path()))
        .await
        .unwrap();
    let options = ConnectOptions {
        max_connections: 2,
        connect_timeout: std::time::Duration::from_secs(10),
        busy_timeout: std::time::Duration::from_secs(5),
    };
    let count = |table: &str| format!("SELECT count(*) FROM {table}");
    match backend {
        "sqlite" => {
            let pool = sqlx::SqlitePool::connect(raw).await.unwrap();
            old.run(&pool).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(rows))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
        _ => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            old.run(&pool).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(rows))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }
    let store = Db::connect(&DatabaseUrl::parse(url).unwrap(), &options)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    upgraded(&store).await;
    let end = store
        .responses_page(DateTime::UNIX_EPOCH, Position::default(), 10)
        .await
        .unwrap()
        .next_cursor;
    store.close().await;
    // Every row is there, and a row written now comes after the old ones.
    let counted = |table: &'static str| {
        let sql = count(table);
        let url = url.to_owned();
        async move {
            if url.starts_with("sqlite") {
                let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
                let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                pool.close().await;
                n
            } else {
                let pool = sqlx::PgPool::connect(&url).await.unwrap();
                let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                pool.close().await;
                n
            }
        }
    };
    assert_eq!(counted("attempts").await, 1, "attempts kept");
    assert_eq!(counted("claims").await, 1, "claims kept");
    if url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(raw).await.unwrap();
        sqlx::query(LATER_SQLITE).execute(&pool).await.unwrap();
        let broken: Vec<(String,)> =
            sqlx::query_as("SELECT \"table\" FROM pragma_foreign_key_check")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert!(broken.is_empty(), "every reference holds: {broken:?}");
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        sqlx::query(LATER_POSTGRES).execute(&pool).await.unwrap();
        pool.close().await;
    }
    let store = Db::connect(&DatabaseUrl::parse(url).unwrap(), &options)
        .await
        .unwrap();
    let next = store
        .responses_page(DateTime::UNIX_EPOCH, Position::decode(&end).unwrap(), 10)
        .await
        .unwrap();
    let ids: Vec<&str> = next.data.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["r3"], "only the row written after");
    store.close().await;
}

#[tokio::test]
async fn a_sqlite_store_of_the_release_before_is_upgraded_whole() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("tend.db").display());
    check(&url, "sqlite", SQLITE_ROWS).await;
}

#[tokio::test]
async fn a_postgres_store_of_the_release_before_is_upgraded_whole() {
    let pg = common::PgDatabase::create().await;
    check(&pg.url, "postgres", POSTGRES_ROWS).await;
}
