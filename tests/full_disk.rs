//! A full disk under the SQLite store, on a real tmpfs, with the real
//! `tend run` and `tend` commands: writes fail with an error that says the
//! disk is full, `/readyz` says not ready, and once there is room again the
//! same daemon carries on by itself. What was committed before is all
//! there: the import, the messages sent, the messages planned (sent later,
//! once each), and SQLite's `integrity_check` finds nothing wrong.
//!
//! Mounting a tmpfs needs root, and CI runs as root: without it this test
//! fails, saying so, rather than skip. (A private mount namespace, `unshare
//! -rm`, would let a non-root user mount, but the tmpfs would then be seen
//! only by the processes started inside it, and this test must fill and
//! empty the disk under a daemon it talks to from outside.)

mod common;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, Days, Utc, Weekday};
use common::daemon::Daemon;
use common::{Project, free_port, json};
use tend::domain::customer::CustomerId;
use tend::store::{ConnectOptions, DatabaseUrl, Db};
use tend::store::{Customers, Upkeep};

const KEY: &str = "full-disk-signing-key-of-at-least-32-bytes";
const TOKEN: &str = "full-disk-api-token-of-at-least-32-bytes";

/// An urgent notice (no send window, no cap) a second after an event: what
/// the daemon sends at once, on real time.
const NOTICE: &str = r#"name = "upgrade"
kind = "incident"
category = "incidents"

[[step]]
id = "failed"
template = "failed"
anchor = "event:upgrade_failed"
after = "1s"
"#;

/// A check-in a day after signing up, sent only in the default window
/// (Monday to Friday, 09:00 to 17:00): what `tend tick --now` plans on a
/// Saturday and sends on the Monday.
const WELCOME: &str = r#"name = "welcome"
kind = "checkin"
category = "onboarding"

[[step]]
id = "welcome"
template = "welcome"
anchor = "signup_at"
after = "1d"
"#;

/// A tmpfs mounted on a temporary folder, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let uid = Command::new("id").arg("-u").output().expect("run id -u");
        assert_eq!(
            String::from_utf8_lossy(&uid.stdout).trim(),
            "0",
            "this test mounts a small tmpfs to fill the disk under a SQLite store, which needs root \
             (CI runs it as root): run it as root, e.g. `sudo -E cargo test --locked --test full_disk`"
        );
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            mounted.status.success(),
            "mount -t tmpfs failed: {}",
            String::from_utf8_lossy(&mounted.stderr)
        );
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(self.dir.path()).status();
        if !matches!(unmounted, Ok(s) if s.success()) {
            // Something still holds a file there: detach it now, freed
            // when the last holder lets go.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// Writes a file into `dir` until the disk has no room left; returns it.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = File::create(&path).unwrap();
    // Large writes first, then small ones for the last partial room.
    for chunk in [vec![0xa5_u8; 1 << 16], vec![0xa5_u8; 512]] {
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
    }
    path
}

/// The coming Saturday at 10:00 UTC, at least two days ahead: the check-ins
/// fall due on it, so the daemon (on real time) never finds them due.
fn next_saturday() -> DateTime<Utc> {
    let mut day = Utc::now().date_naive() + Days::new(2);
    while day.weekday() != Weekday::Sat {
        day = day.succ_opt().unwrap();
    }
    day.and_hms_opt(10, 0, 0).unwrap().and_utc()
}

fn auth() -> [(&'static str, String); 2] {
    [
        ("Authorization", format!("Bearer {TOKEN}")),
        ("Content-Type", "application/json".to_owned()),
    ]
}

fn post(d: &Daemon, path: &str, body: &str) -> common::daemon::Reply {
    let headers = auth();
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    d.request("POST", path, &headers, body.as_bytes())
}

fn customer_body(id: &str) -> String {
    format!(r#"[{{"id":"{id}","email":"{id}@example.com","name":"Ana {id}"}}]"#)
}

fn event_body(id: &str) -> String {
    let at = (Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    format!(r#"{{"customer_id":"{id}","name":"upgrade_failed","occurred_at":"{at}"}}"#)
}

/// The `.eml` files the file transport wrote (not one it is still
/// writing, under another name until it is whole).
fn outbox(p: &Project) -> Vec<String> {
    match std::fs::read_dir(p.path().join("outbox")) {
        Ok(entries) => entries
            .map(|e| e.unwrap().path())
            .filter(|path| path.extension().is_some_and(|x| x == "eml"))
            .map(|path| std::fs::read_to_string(path).unwrap())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Waits (up to 20 s) until the store says the messages to `customers`
/// are sent: a mail is written before its send is recorded.
fn wait_for_sent(p: &Project, d: &Daemon, customers: &[&str]) {
    let started = Instant::now();
    loop {
        let messages = json(&p.tend(&["messages", "--format", "json"]).expect_code(0));
        let sent = messages
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| customers.contains(&m["customer_id"].as_str().unwrap()))
            .filter(|m| m["status"] == "sent")
            .count();
        if sent == customers.len() {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{sent} of {customers:?} recorded as sent:\n{messages}\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (up to 20 s) until the daemon has written `n` mails.
fn wait_for_mail(p: &Project, d: &Daemon, n: usize) {
    let started = Instant::now();
    while outbox(p).len() < n {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "only {} of {n} mails were written:\n{}",
            outbox(p).len(),
            d.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_full_disk_is_survived_without_a_restart_and_loses_nothing() {
    let disk = Tmpfs::mount("8m");
    let database = disk.path().join("tend.db");
    let p = Project::new(&format!(
        "[database]\nurl = \"sqlite://{}\"\n\
         [mail]\ntransport = \"file\"\n[mail.file]\ndir = \"outbox\"\n\
         [security]\nsecret = \"{KEY}\"\n\
         [http]\napi_token = \"{TOKEN}\"\n\
         [schedule]\nplan_every = \"1h\"\ndeliver_every = \"1h\"\n",
        database.display()
    ));
    std::fs::create_dir_all(p.path().join("config/playbooks")).unwrap();
    std::fs::create_dir_all(p.path().join("templates")).unwrap();
    p.file("config/playbooks/upgrade.toml", NOTICE);
    p.file("config/playbooks/welcome.toml", WELCOME);
    p.file(
        "templates/failed.md.hbs",
        "+++\nsubject = \"Your upgrade needs a hand\"\n+++\nWe saw the upgrade fail.\n",
    );
    p.file(
        "templates/welcome.md.hbs",
        "+++\nsubject = \"Welcome, {{customer.first_name}}\"\n+++\nHow is it going?\n",
    );

    // Before the fault: an import, and three check-ins planned on a
    // Saturday, held for Monday by the send window.
    let saturday = next_saturday();
    let monday = saturday + chrono::Duration::days(2);
    let signup = (saturday - chrono::Duration::hours(25)).to_rfc3339();
    p.file(
        "customers.csv",
        format!(
            "id,email,name,timezone,signup_at,plan\n\
             b1,b1@example.com,Bea One,UTC,{signup},pro\n\
             b2,b2@example.com,Bea Two,UTC,{signup},team\n\
             b3,b3@example.com,Bea Three,UTC,{signup},free\n"
        ),
    );
    let imported = p
        .tend(&["import", "customers", "customers.csv"])
        .expect_code(0);
    assert!(
        imported.stdout().contains("imported 3"),
        "{}",
        imported.stdout()
    );
    let planned = json(
        &p.tend(&["tick", "--now", &saturday.to_rfc3339(), "--format", "json"])
            .expect_code(0),
    );
    assert_eq!(
        (planned["planned"].as_u64(), planned["sent"].as_u64()),
        (Some(3), Some(0))
    );

    // The daemon sends two notices at once, on real time.
    let mut d = Daemon::start(&p, free_port(), &[]);
    for id in ["a1", "a2"] {
        let r = post(&d, "/api/v1/customers", &customer_body(id));
        assert_eq!(r.status, 200, "{}", r.body);
        let r = post(&d, "/api/v1/events", &event_body(id));
        assert_eq!(r.status, 200, "{}", r.body);
    }
    wait_for_mail(&p, &d, 2);
    // Both sends recorded, so the full disk meets new writes, not these.
    wait_for_sent(&p, &d, &["a1", "a2"]);

    // The disk fills up.
    let filler = fill(disk.path());
    let refused = post(&d, "/api/v1/customers", &customer_body("a3"));
    assert_eq!(refused.status, 503, "{}", refused.body);
    let error = refused.json()["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains("tend.db") && error.contains("disk") && error.contains("is full"),
        "the error names the file and the full disk: {error}"
    );
    let ready = d.get("/readyz");
    assert_eq!(ready.status, 503, "{}", ready.body);
    let store = ready.json()["store"].as_str().unwrap().to_owned();
    assert!(
        store.starts_with("writes have failed since") && store.contains("is full"),
        "{store}"
    );
    // Once failed, the next write meets the disk again, not a connection
    // left believing a transaction is still open.
    let again = post(&d, "/api/v1/customers", &customer_body("a3"));
    assert_eq!(again.status, 503, "{}", again.body);
    assert!(again.body.contains("is full"), "{}", again.body);
    assert!(!again.body.contains("transaction depth"), "{}", again.body);
    // A command on the same file says the same.
    p.file("more.csv", "id,email\nc1,c1@example.com\n");
    let import = p.tend(&["import", "customers", "more.csv"]);
    assert_ne!(import.code(), 0, "{}", import.stdout());
    assert!(
        import.stderr().contains("is full") && import.stderr().contains("free space"),
        "{}",
        import.stderr()
    );
    assert_eq!(d.get("/readyz").status, 503);

    // Room again: the same daemon is ready and takes and sends new work.
    std::fs::remove_file(filler).unwrap();
    let ready = d.get("/readyz");
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(ready.json()["store"], "ok");
    let r = post(&d, "/api/v1/customers", &customer_body("a3"));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post(&d, "/api/v1/events", &event_body("a3"));
    assert_eq!(r.status, 200, "{}", r.body);
    wait_for_mail(&p, &d, 3);
    let log = d.log();
    assert!(log.contains("writes to the store fail"), "{log}");
    assert!(log.contains("writes to the store succeed again"), "{log}");
    assert!(
        !log.contains("transaction depth"),
        "no write met a connection left in a transaction:\n{log}"
    );
    let stopped = d.stop(Duration::from_secs(20));
    assert!(stopped.success(), "{stopped}\n{}", d.log());

    // The check-ins planned before the fault go on Monday, once each.
    let sent = json(
        &p.tend(&["tick", "--now", &monday.to_rfc3339(), "--format", "json"])
            .expect_code(0),
    );
    assert_eq!(sent["sent"].as_u64(), Some(3), "{sent}");
    let messages = json(&p.tend(&["messages", "--format", "json"]).expect_code(0));
    let mut sent_to: Vec<&str> = messages
        .as_array()
        .unwrap()
        .iter()
        .inspect(|m| assert_eq!(m["status"], "sent", "{m}"))
        .map(|m| m["customer_id"].as_str().unwrap())
        .collect();
    sent_to.sort_unstable();
    assert_eq!(sent_to, ["a1", "a2", "a3", "b1", "b2", "b3"]);
    assert_eq!(outbox(&p).len(), 6, "one mail each, none twice");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let url = DatabaseUrl::parse(&format!("sqlite://{}", database.display())).unwrap();
        let options = ConnectOptions {
            max_connections: 1,
            connect_timeout: Duration::from_secs(10),
            busy_timeout: Duration::from_secs(5),
        };
        let store = Db::connect(&url, &options).await.unwrap();
        // The import acknowledged before the fault, whole; the customer
        // refused during it, written once room came back; the command's
        // refused import, nowhere.
        assert_eq!(store.count_customers().await.unwrap(), 6);
        let b2 = store
            .customer(&CustomerId::parse("b2").unwrap())
            .await
            .unwrap()
            .expect("b2 is kept");
        assert_eq!(b2.record.email.as_str(), "b2@example.com");
        assert_eq!(b2.record.plan, "team");
        store.close().await;

        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", database.display()))
            .await
            .unwrap();
        let check: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(check, "ok");
        conn.close().await.unwrap();
    });
}
