//! The console at scale: SIZE generated customers (default 1,000,000) in
//! a fresh store, each with a broadcast waiting in the outbox (due in two
//! days, so the daemon sends nothing while pages are timed), an incident
//! told to about a tenth of them, an account of 1,000 contacts, and the
//! release `tend run` serving the console. Each page is fetched over
//! a real socket, signed in, once and then 20 times more; the figures are
//! the first fetch (which reads the overview's figures; later ones serve
//! that reading for a minute), then the median, the 95th percentile and
//! the slowest of the rest.
//!
//! `cargo bench --bench console [-- SIZE] [--backend sqlite|postgres]`

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::Utc;

const TEMPLATE: &str = "+++\nsubject = \"Version 3 is out, {{customer.first_name}}\"\n+++\nHi {{customer.first_name}}, version 3 is out.\n";

/// A team member and the password the bench sets.
const PASSWORD: &str = "a long bench passphrase";

/// Fetches a page 20 times after the first.
const RUNS: usize = 20;

fn main() {
    let (sizes, backends) = common::args();
    let n = if std::env::args().skip(1).any(|a| a.parse::<usize>().is_ok()) {
        sizes[0]
    } else {
        1_000_000
    };
    let tend = env!("CARGO_BIN_EXE_tend");
    for backend in &backends {
        let work = tempfile::tempdir().unwrap();
        let dir = work.path();
        std::fs::create_dir_all(dir.join("templates")).unwrap();
        std::fs::create_dir_all(dir.join("config/playbooks")).unwrap();
        std::fs::write(dir.join("templates/release.md.hbs"), TEMPLATE).unwrap();
        let (url, database) = common::fresh_store(dir, backend);
        let port = common::free_port();
        std::fs::write(
            dir.join("config/tend.toml"),
            format!(
                "[database]\nurl = \"{url}\"\n[mail.file]\ndir = \"outbox\"\n\
                 [http]\nlisten = \"127.0.0.1:{port}\"\nrate_per_minute = 0\n\
                 [[team]]\nid = \"ann\"\nname = \"Ann\"\nemail = \"ann@acme.example\"\nrole = \"manager\"\n",
            ),
        )
        .unwrap();
        common::generate(&dir.join("customers.csv"), n);
        common::run_ok(
            Command::new(tend)
                .args(["import", "customers", "customers.csv"])
                .current_dir(dir),
        );
        let due = (Utc::now() + chrono::Duration::days(2)).to_rfc3339();
        let started = Instant::now();
        common::run_ok(
            Command::new(tend)
                .args(["broadcast", "release", "--audience", "true", "--id", "v3"])
                .args(["--now", &due, "--yes", "--format", "json"])
                .current_dir(dir),
        );
        println!(
            "{backend:<8} {n:>8} customers: broadcast queued in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        // An incident told to about a tenth of everyone (its notices go
        // into the outbox folder), and an account of 1,000 contacts.
        let started = Instant::now();
        common::run_ok(
            Command::new(tend)
                .args(["incident", "open", "INC-1", "--title", "EU API latency"])
                .args(["--affects", "customer.health < 10", "--message", "Slow."])
                .current_dir(dir),
        );
        println!(
            "{backend:<8} {n:>8} customers: incident opened and told in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let mut contacts = String::from("id,email,name,account_id,roles[]\n");
        for i in 0..1000 {
            contacts.push_str(&format!(
                "big-{i:04},contact{i}@big.example,Contact {i} Big,big,{}\n",
                if i % 10 == 0 { "billing" } else { "user" }
            ));
        }
        std::fs::write(dir.join("contacts.csv"), contacts).unwrap();
        common::run_ok(
            Command::new(tend)
                .args(["import", "customers", "contacts.csv"])
                .current_dir(dir),
        );
        let mut set = Command::new(tend)
            .args(["team", "set-password", "ann"])
            .current_dir(dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        set.stdin
            .take()
            .unwrap()
            .write_all(format!("{PASSWORD}\n").as_bytes())
            .unwrap();
        assert!(set.wait().unwrap().success());
        let mut daemon = common::start_daemon(tend, dir, port);
        let cookie = sign_in(port);
        if backend == "postgres" {
            // The imported people wait for their search terms until the
            // daemon's first planning pass is over: a search meanwhile
            // reads them from the queue. The pages below are timed once
            // the daemon has written them.
            let clock = Instant::now();
            let (status, _) = get(port, "/console/customers?q=person+5", &cookie);
            assert_eq!(status, 200);
            println!(
                "{backend:<8} {n:>8} customers: search, a name, while the import's people wait for their terms: {:.1} ms",
                clock.elapsed().as_secs_f64() * 1000.0
            );
            let waiting = || common::psql_value(&url, "SELECT count(*) FROM search_queue");
            while waiting() != "0" {
                std::thread::sleep(Duration::from_millis(250));
            }
            println!(
                "{backend:<8} {n:>8} customers: every person searchable {:.1} s after the daemon started",
                clock.elapsed().as_secs_f64()
            );
        }
        let someone = format!("cust-{:07}", n / 2);
        for (name, path) in [
            ("overview", "/console".to_owned()),
            ("customer", format!("/console/customers/{someone}")),
            (
                "what comes next",
                format!("/console/next?customer={someone}&days=30"),
            ),
            (
                "preview",
                format!("/console/preview?template=release&customer={someone}"),
            ),
            ("suppressions", "/console/suppressions".to_owned()),
            ("incidents", "/console/incidents".to_owned()),
            ("an incident", "/console/incidents/INC-1".to_owned()),
            (
                "account, 1,000 contacts",
                "/console/accounts/big".to_owned(),
            ),
            // Everyone's name begins "Person"; fifty come back.
            ("search, a name", "/console/customers?q=person+5".to_owned()),
            (
                "search, an address",
                format!("/console/customers?q=user{}%40", n / 2),
            ),
            // Everyone's last name is "Example".
            (
                "search, a last name",
                "/console/customers?q=exam".to_owned(),
            ),
            ("search, no find", "/console/customers?q=zzz".to_owned()),
        ] {
            // The first fetch reads what a later one may serve again (the
            // overview's figures).
            let clock = Instant::now();
            let (status, _) = get(port, &path, &cookie);
            assert_eq!(status, 200, "{path}");
            let first = clock.elapsed().as_secs_f64() * 1000.0;
            let mut times: Vec<f64> = (0..RUNS)
                .map(|_| {
                    let clock = Instant::now();
                    let (status, _) = get(port, &path, &cookie);
                    assert_eq!(status, 200, "{path}");
                    clock.elapsed().as_secs_f64() * 1000.0
                })
                .collect();
            times.sort_by(f64::total_cmp);
            println!(
                "{backend:<8} {n:>8} customers: {name:<24} first {first:.1} ms; then median {:.1} ms, p95 {:.1} ms, slowest {:.1} ms",
                times[RUNS / 2],
                times[RUNS * 95 / 100 - 1],
                times[RUNS - 1]
            );
        }
        let _ = daemon.kill();
        let _ = daemon.wait();
        common::drop_store(database);
    }
}

/// One request on a fresh connection; the status and the whole reply.
fn request(port: u16, method: &str, path: &str, headers: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    let status = reply
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, reply)
}

fn get(port: u16, path: &str, cookie: &str) -> (u16, String) {
    request(port, "GET", path, &format!("Cookie: {cookie}\r\n"), "")
}

/// Signs Ann in; the session cookie to send.
fn sign_in(port: u16) -> String {
    let (_, form) = request(port, "GET", "/console/sign-in", "", "");
    let token = common::between(&form, "tend_sign_in=", ";").to_owned();
    let body = format!(
        "form={token}&member=ann&password={}",
        PASSWORD.replace(' ', "+")
    );
    let (status, reply) = request(
        port,
        "POST",
        "/console/sign-in",
        &format!(
            "Cookie: tend_sign_in={token}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        ),
        &body,
    );
    assert_eq!(status, 303, "{reply}");
    format!(
        "tend_session={}",
        common::between(&reply, "tend_session=", ";")
    )
}
