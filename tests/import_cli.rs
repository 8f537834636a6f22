//! `tend import` through the real binary against real stores: good files,
//! every kind of bad row, re-imports, and malformed files.

mod common;

use common::{PgDatabase, Project};
use tend::domain::customer::CustomerId;
use tend::store::Customers;

const GOOD_CSV: &str = "\
id,email,name,timezone,locale,plan,signup_at,renewal_at,health,region,features[]
c1,ana@example.com,Ana Silva,Europe/Lisbon,pt-PT,pro,2026-03-01T09:00:00Z,2027-03-01,80,eu,api;dashboards
c2,bo@example.com,Bo Chen,Asia/Tokyo,ja,free,2026-03-01,,55,apac,
c3,cy@example.com,,,,,,,,us,api
";

fn id(s: &str) -> CustomerId {
    CustomerId::parse(s).unwrap()
}

#[tokio::test]
async fn a_good_csv_is_imported_whole() {
    let p = Project::new("");
    p.file("customers.csv", GOOD_CSV);
    let run = p
        .tend(&["import", "customers", "customers.csv"])
        .expect_code(0);
    assert_eq!(run.stdout(), "imported 3, updated 0, rejected 0\n");
    assert_eq!(run.stderr(), "");

    let store = p.store().await;
    let ana = store.customer(&id("c1")).await.unwrap().unwrap().record;
    assert_eq!(ana.timezone, chrono_tz::Europe::Lisbon);
    assert_eq!(ana.health, Some(80));
    assert_eq!(
        ana.attributes["features"],
        serde_json::json!(["api", "dashboards"])
    );
    assert_eq!(ana.attributes["region"], "eu");
    // A date alone is midnight in the customer's zone (Lisbon: UTC+0 in March).
    assert_eq!(
        ana.renewal_at.unwrap().to_rfc3339(),
        "2027-03-01T00:00:00+00:00"
    );
    let bo = store.customer(&id("c2")).await.unwrap().unwrap().record;
    assert_eq!(
        bo.signup_at.unwrap().to_rfc3339(),
        "2026-02-28T15:00:00+00:00"
    );
    assert_eq!(bo.attributes["features"], serde_json::json!([]));
    let cy = store.customer(&id("c3")).await.unwrap().unwrap().record;
    assert_eq!(
        (cy.timezone, cy.locale.as_str(), cy.name.as_str()),
        (chrono_tz::UTC, "en", "")
    );
}

#[tokio::test]
async fn reimporting_updates_instead_of_duplicating() {
    let p = Project::new("");
    p.file("customers.csv", GOOD_CSV);
    p.tend(&["import", "customers", "customers.csv"])
        .expect_code(0);
    p.file("customers.csv", GOOD_CSV.replace("Bo Chen", "Bo Chen-Li"));
    let run = p
        .tend(&["import", "customers", "customers.csv"])
        .expect_code(0);
    assert_eq!(run.stdout(), "imported 0, updated 3, rejected 0\n");
    let store = p.store().await;
    assert_eq!(store.count_customers().await.unwrap(), 3);
    assert_eq!(
        store
            .customer(&id("c2"))
            .await
            .unwrap()
            .unwrap()
            .record
            .name,
        "Bo Chen-Li"
    );
}

#[tokio::test]
async fn each_bad_row_is_named_by_line_and_the_good_rows_are_kept() {
    let p = Project::new("");
    let csv = "\
id,email,timezone,signup_at,health
ok1,ok1@example.com,UTC,2026-01-01,10
bad-email,not-an-address,UTC,,
bad-zone,z@example.com,Mars/Olympus,,
bad-time,t@example.com,UTC,last tuesday,
,missing-id@example.com,UTC,,
bad-health,h@example.com,UTC,,101
too,many,fields,here,1,2

ok2,ok2@example.com,,,
";
    p.file("customers.csv", csv);
    let run = p
        .tend(&["import", "customers", "customers.csv"])
        .expect_code(1);
    assert_eq!(run.stdout(), "imported 2, updated 0, rejected 6\n");
    let err = run.stderr();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 6, "{err}");
    for (line, expected) in [
        (
            "customers.csv:3: ",
            "email \"not-an-address\" is not a valid address",
        ),
        (
            "customers.csv:4: ",
            "time zone \"Mars/Olympus\" is not an IANA zone name",
        ),
        (
            "customers.csv:5: ",
            "signup_at: \"last tuesday\" is not a time",
        ),
        ("customers.csv:6: ", "id is missing"),
        (
            "customers.csv:7: ",
            "health \"101\" is not a whole number from 0 to 100",
        ),
        (
            "customers.csv:8: ",
            "the row has 6 fields but the header names 5 columns",
        ),
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(line) && l.contains(expected)),
            "no {line}…{expected} in\n{err}"
        );
    }
    let store = p.store().await;
    assert_eq!(store.count_customers().await.unwrap(), 2);
    assert!(store.customer(&id("ok2")).await.unwrap().is_some());
}

#[tokio::test]
async fn jsonl_rows_and_a_line_that_is_not_json() {
    let p = Project::new("");
    let jsonl = r#"{"id": "j1", "email": "j1@example.com", "attributes": {"features": ["api"], "seats": 5}}
{"id": "j2", "email": "j2@example.com", "health": 70
{"id": "j3", "emial": "j3@example.com"}

{"id": 4, "email": "j4@example.com", "timezone": "America/New_York", "signup_at": "2026-03-08"}
"#;
    p.file("customers.jsonl", jsonl);
    let run = p
        .tend(&["import", "customers", "customers.jsonl"])
        .expect_code(1);
    assert_eq!(run.stdout(), "imported 2, updated 0, rejected 2\n");
    let err = run.stderr();
    assert!(
        err.contains("customers.jsonl:2: the line is not JSON"),
        "{err}"
    );
    assert!(
        err.contains("customers.jsonl:3: unknown field \"emial\""),
        "{err}"
    );
    let store = p.store().await;
    let j1 = store.customer(&id("j1")).await.unwrap().unwrap().record;
    assert_eq!(j1.attributes["seats"], 5);
    let j4 = store.customer(&id("4")).await.unwrap().unwrap().record;
    assert_eq!(
        j4.signup_at.unwrap().to_rfc3339(),
        "2026-03-08T05:00:00+00:00"
    );
}

#[tokio::test]
async fn empty_files() {
    let p = Project::new("");
    p.file("empty.csv", "");
    let run = p.tend(&["import", "customers", "empty.csv"]).expect_code(1);
    assert!(
        run.stderr().contains("empty.csv:1: the file is empty"),
        "{}",
        run.stderr()
    );
    p.file("empty.jsonl", "");
    let run = p
        .tend(&["import", "customers", "empty.jsonl"])
        .expect_code(0);
    assert_eq!(run.stdout(), "imported 0, updated 0, rejected 0\n");
}

#[tokio::test]
async fn a_csv_missing_a_required_column_imports_nothing() {
    let p = Project::new("");
    p.file("customers.csv", "id,name\nc1,Ana\n");
    let run = p
        .tend(&["import", "customers", "customers.csv"])
        .expect_code(1);
    assert!(
        run.stderr().contains(
            "customers.csv:1: the header has no email column; the header must name id and email"
        ),
        "{}",
        run.stderr()
    );
    assert_eq!(p.store().await.count_customers().await.unwrap(), 0);
}

#[tokio::test]
async fn a_one_megabyte_line_is_rejected_and_the_rest_imported() {
    let p = Project::new("");
    let huge = "x".repeat(1 << 20);
    p.file(
        "customers.jsonl",
        format!(
            "{{\"id\": \"big\", \"email\": \"big@example.com\", \"attributes\": {{\"blob\": \"{huge}\"}}}}\n{{\"id\": \"small\", \"email\": \"s@example.com\"}}\n"
        ),
    );
    let run = p
        .tend(&["import", "customers", "customers.jsonl"])
        .expect_code(1);
    assert_eq!(run.stdout(), "imported 1, updated 0, rejected 1\n");
    assert!(
        run.stderr().contains("customers.jsonl:1: the row is 10"),
        "{}",
        run.stderr()
    );
    p.file(
        "one-line.csv",
        format!("id,email,blob\nbig,big@example.com,{huge}"),
    );
    let run = p
        .tend(&["import", "customers", "one-line.csv"])
        .expect_code(1);
    assert!(
        run.stderr().contains("one-line.csv:2: the row is"),
        "{}",
        run.stderr()
    );
}

#[tokio::test]
async fn unknown_file_types_and_missing_files() {
    let p = Project::new("");
    p.file("customers.xlsx", "x");
    let run = p
        .tend(&["import", "customers", "customers.xlsx"])
        .expect_code(1);
    assert!(
        run.stderr().contains("name it .csv or .jsonl"),
        "{}",
        run.stderr()
    );
    let run = p.tend(&["import", "customers", "nope.csv"]).expect_code(1);
    assert!(
        run.stderr().contains("cannot open nope.csv"),
        "{}",
        run.stderr()
    );
}

#[tokio::test]
async fn events_are_idempotent_and_need_their_customer() {
    let p = Project::new("");
    p.file("customers.csv", GOOD_CSV);
    p.tend(&["import", "customers", "customers.csv"])
        .expect_code(0);
    let csv = "\
id,customer_id,name,occurred_at,feature
e1,c1,feature_used,2026-03-02T10:00:00Z,api
,c2,login,2026-03-02,
e3,ghost,login,2026-03-02T10:00:00Z,
e4,c1,log in,2026-03-02T10:00:00Z,
e5,c1,login,soon,
";
    p.file("events.csv", csv);
    let run = p.tend(&["import", "events", "events.csv"]).expect_code(1);
    assert_eq!(run.stdout(), "imported 2, updated 0, rejected 3\n");
    let err = run.stderr();
    assert!(
        err.contains("events.csv:4: no customer has id \"ghost\""),
        "{err}"
    );
    assert!(err.contains("events.csv:5: event name \"log in\""), "{err}");
    assert!(
        err.contains("events.csv:6: occurred_at: \"soon\" is not a time"),
        "{err}"
    );

    // Again: e1 is known by its id; the unkeyed login is a new event.
    let run = p.tend(&["import", "events", "events.csv"]).expect_code(1);
    assert_eq!(run.stdout(), "imported 1, updated 1, rejected 3\n");

    let store = p.store().await;
    let c1 = store.events_of(&id("c1")).await.unwrap();
    assert_eq!(c1.len(), 1);
    assert_eq!(c1[0].record.properties["feature"], "api");
    let c2 = store.events_of(&id("c2")).await.unwrap();
    // A date alone is midnight in Tokyo.
    assert_eq!(
        c2[0].record.occurred_at.to_rfc3339(),
        "2026-03-01T15:00:00+00:00"
    );
}

#[tokio::test]
async fn import_into_postgres_through_the_environment() {
    let pg = PgDatabase::create().await;
    let p = Project::new("").env("TEND__DATABASE__URL", &pg.url);
    p.file("customers.csv", GOOD_CSV);
    let run = p
        .tend(&["import", "customers", "customers.csv"])
        .expect_code(0);
    assert_eq!(run.stdout(), "imported 3, updated 0, rejected 0\n");
    let run = p
        .tend(&["import", "customers", "customers.csv"])
        .expect_code(0);
    assert_eq!(run.stdout(), "imported 0, updated 3, rejected 0\n");
    assert!(
        !p.path().join("data/tend.db").exists(),
        "the SQLite default must not be used"
    );
}

/// A large import analyzes what it wrote: without statistics PostgreSQL
/// plans each planning page as a scan of the whole customers table.
#[tokio::test]
async fn a_large_import_leaves_statistics_for_planning() {
    use sqlx::Connection;
    let pg = PgDatabase::create().await;
    let p = Project::new("").env("TEND__DATABASE__URL", &pg.url);
    let mut csv = String::from("id,email\n");
    for i in 0..12_000 {
        csv.push_str(&format!("c{i},c{i}@example.com\n"));
    }
    p.file("many.csv", csv);
    p.tend(&["import", "customers", "many.csv"]).expect_code(0);
    let mut conn = sqlx::PgConnection::connect(&pg.url).await.unwrap();
    // -1 until the table is first vacuumed or analyzed.
    let tuples: f32 =
        sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE relname = 'customers'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(
        tuples >= 12_000.0,
        "customers has {tuples} tuples in its statistics"
    );
}

#[tokio::test]
async fn now_is_injected_for_the_recorded_times() {
    let p = Project::new("");
    p.file("customers.csv", GOOD_CSV);
    p.tend(&[
        "import",
        "customers",
        "customers.csv",
        "--now",
        "2026-01-02T03:04:05+01:00",
    ])
    .expect_code(0);
    let stored = p.store().await.customer(&id("c1")).await.unwrap().unwrap();
    assert_eq!(stored.created_at.to_rfc3339(), "2026-01-02T02:04:05+00:00");
    assert_eq!(stored.updated_at, stored.created_at);

    let run = p
        .tend(&["import", "customers", "customers.csv", "--now", "tomorrow"])
        .expect_code(2);
    assert!(
        run.stderr().contains("is not an RFC 3339 time"),
        "{}",
        run.stderr()
    );
}

#[test]
fn a_terminal_shows_progress_and_a_pipe_does_not() {
    let p = Project::new("");
    let mut csv = String::from("id,email\n");
    for i in 0..30_000 {
        csv.push_str(&format!("c{i},c{i}@example.com\n"));
    }
    p.file("many.csv", csv);
    // `script` (util-linux) gives the command a real pseudo-terminal.
    let out = std::process::Command::new("script")
        .args([
            "-qec",
            &format!("{} import customers many.csv", env!("CARGO_BIN_EXE_tend")),
            "/dev/null",
        ])
        .current_dir(p.path())
        .output()
        .expect("script(1) from util-linux");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("imported 30000, updated 0, rejected 0"),
        "{shown}"
    );
    assert!(
        shown.contains("█") && shown.contains("KiB/"),
        "no progress bar on a terminal:\n{shown}"
    );

    let piped = p.tend(&["import", "customers", "many.csv"]).expect_code(0);
    assert_eq!(piped.stderr(), "", "nothing but rejections on a pipe");
}

#[test]
fn the_readme_examples_import_cleanly() {
    let p = Project::new("");
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let customers = examples.join("customers.csv");
    let events = examples.join("events.jsonl");
    let run = p
        .tend(&["import", "customers", customers.to_str().unwrap()])
        .expect_code(0);
    assert_eq!(run.stdout(), "imported 5, updated 0, rejected 0\n");
    let run = p
        .tend(&["import", "events", events.to_str().unwrap()])
        .expect_code(0);
    assert_eq!(run.stdout(), "imported 3, updated 0, rejected 0\n");
}

/// Batches of a large file, some written at once on PostgreSQL: a row
/// repeated later in the file wins, rejected rows are named in the file's
/// order, and the counts add up, on both stores.
#[tokio::test]
async fn a_large_file_keeps_its_order_however_its_batches_are_written() {
    use std::collections::BTreeMap;
    let pg = PgDatabase::create().await;
    // 6,000 rows naming 3,000 people twice over (each batch of 2,000
    // shares people with the one before), then 5,000 people once (batches
    // apart, which PostgreSQL writes two at a time); one row in a
    // thousand has a bad address.
    let mut csv = String::from("id,email,name\n");
    let mut expected = BTreeMap::new();
    let mut rejected_lines = Vec::new();
    let mut line = 1;
    for i in 0..11_000 {
        line += 1;
        let id = if i < 6_000 {
            format!("c{}", i % 3_000)
        } else {
            format!("u{i}")
        };
        if i % 1_000 == 999 {
            csv.push_str(&format!("{id},nope,Bad {i}\n"));
            rejected_lines.push(line);
        } else {
            csv.push_str(&format!("{id},{id}@example.com,Name {i}\n"));
            expected.insert(id, format!("Name {i}"));
        }
    }
    let updated = 11_000 - rejected_lines.len() - expected.len();
    for url in [None, Some(pg.url.as_str())] {
        let mut p = Project::new("");
        if let Some(url) = url {
            p = p.env("TEND__DATABASE__URL", url);
        }
        p.file("many.csv", &csv);
        let run = p.tend(&["import", "customers", "many.csv"]).expect_code(1);
        assert_eq!(
            run.stdout(),
            format!(
                "imported {}, updated {updated}, rejected {}\n",
                expected.len(),
                rejected_lines.len()
            ),
            "{url:?}"
        );
        let named: Vec<usize> = run
            .stderr()
            .lines()
            .filter_map(|l| l.strip_prefix("many.csv:")?.split(':').next()?.parse().ok())
            .collect();
        assert_eq!(named, rejected_lines, "{url:?}");
        let stored: BTreeMap<String, String> = match url {
            None => {
                let store = p.store().await;
                let mut stored = BTreeMap::new();
                for id in expected.keys() {
                    let c = store.customer(&self::id(id)).await.unwrap().unwrap();
                    stored.insert(id.clone(), c.record.name);
                }
                stored
            }
            Some(url) => {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::query_as("SELECT id, name FROM customers")
                    .fetch_all(&mut conn)
                    .await
                    .unwrap()
                    .into_iter()
                    .collect()
            }
        };
        assert_eq!(
            stored, expected,
            "{url:?}: the last good row of each person"
        );
    }
}
