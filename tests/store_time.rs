//! `store::column::At`, a time column that encodes itself per backend, against
//! the real databases: what goes in comes out, SQL compares and orders it
//! as time, and the column types are the ones the migrations use
//! (INTEGER milliseconds on SQLite, TIMESTAMPTZ on PostgreSQL).

mod common;

use chrono::{DateTime, Duration, Utc};
use sqlx::{Connection, Row};
use tend::store::column::At;

fn instants() -> Vec<DateTime<Utc>> {
    let t = DateTime::parse_from_rfc3339("2026-03-29T00:59:59.123Z")
        .unwrap()
        .with_timezone(&Utc);
    vec![
        t,
        t + Duration::milliseconds(1),
        DateTime::UNIX_EPOCH,
        DateTime::UNIX_EPOCH - Duration::days(1),
        t + Duration::days(365 * 50),
    ]
}

#[tokio::test]
async fn at_goes_in_and_out_of_sqlite_as_integer_milliseconds() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("CREATE TABLE t (at INTEGER NOT NULL)")
        .execute(&mut conn)
        .await
        .unwrap();
    for t in instants() {
        sqlx::query("INSERT INTO t (at) VALUES ($1)")
            .bind(At(t))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    // Stored as the milliseconds the other queries compare with.
    let raw: i64 = sqlx::query_scalar("SELECT at FROM t ORDER BY at DESC LIMIT 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(raw, instants()[4].timestamp_millis());
    let after = instants()[0];
    let rows = sqlx::query("SELECT at FROM t WHERE at > $1 ORDER BY at")
        .bind(At(after))
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let read: Vec<DateTime<Utc>> = rows.iter().map(|r| r.get::<At, _>(0).0).collect();
    assert_eq!(read, [instants()[1], instants()[4]]);
}

#[tokio::test]
async fn at_goes_in_and_out_of_postgres_as_timestamptz() {
    let pg = common::PgDatabase::create().await;
    let mut conn = sqlx::PgConnection::connect(&pg.url).await.unwrap();
    sqlx::query("CREATE TABLE t (at TIMESTAMPTZ NOT NULL)")
        .execute(&mut conn)
        .await
        .unwrap();
    for t in instants() {
        sqlx::query("INSERT INTO t (at) VALUES ($1)")
            .bind(At(t))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let raw: String = sqlx::query_scalar(
        "SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS') FROM t ORDER BY at LIMIT 1",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(raw, "1969-12-31 00:00:00.000");
    let after = instants()[0];
    let rows = sqlx::query("SELECT at FROM t WHERE at > $1 ORDER BY at")
        .bind(At(after))
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let read: Vec<DateTime<Utc>> = rows.iter().map(|r| r.get::<At, _>(0).0).collect();
    assert_eq!(read, [instants()[1], instants()[4]]);
    conn.close().await.unwrap();
}
