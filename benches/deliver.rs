//! Delivery at scale: N generated customers each with one urgent notice
//! due, one release `tend tick` that plans and sends them all over SMTP to
//! Postfix's `smtp-sink` on loopback; beside it, `smtp-source` sends the same
//! number of messages of the same size to the same sink with as many
//! sessions, for a reference rate, once before the tick and once after
//! (the ratio is to their mean). Prints the tick's own split of planning
//! and delivery time, peak RSS, what the store wrote (PostgreSQL's WAL, or
//! tend's own writes to a SQLite store and its WAL), and the ratio.
//!
//! Two shapes of outbox: `burst`, every notice due at one instant (an
//! announcement to everyone), and `spread`, each due at its own instant
//! (a backlog after the daemon was down), which the store claims in due
//! order and so updates at scattered places.
//!
//! `cargo bench --bench deliver [-- SIZE…] [--backend sqlite|postgres]`
//! (size defaults to 100000). The postfix package is fetched with
//! `apt-get download` and unpacked under target/ on first use.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// SMTP sessions on both sides.
const SESSIONS: u32 = 8;

const PLAYBOOK: &str = r#"name = "notice"
kind = "incident"
category = "incidents"

[[step]]
id = "notice"
template = "notice"
anchor = "signup_at"
after = "1d"
expires = "3650d"
"#;

const TEMPLATE: &str = "+++\nsubject = \"Scheduled maintenance for {{customer.first_name}}\"\n+++\nHi {{customer.first_name}},\n\nWe will upgrade the database on **Saturday**. Read [the notes](https://status.acme.example/m/1).\n";

fn main() {
    let (mut sizes, backends) = common::args();
    if std::env::args()
        .skip(1)
        .all(|a| a.parse::<usize>().is_err())
    {
        sizes = vec![100_000];
    }
    let (sbin, lib) = common::postfix_tools();
    let port = common::free_port();
    let mut sink = Command::new(sbin.join("smtp-sink"))
        .env("LD_LIBRARY_PATH", &lib)
        .args(["-u", "nobody", &format!("127.0.0.1:{port}"), "256"])
        .stdout(Stdio::null())
        .spawn()
        .expect("start smtp-sink");
    std::thread::sleep(std::time::Duration::from_millis(300));
    for backend in &backends {
        for &n in &sizes {
            for shape in ["burst", "spread"] {
                let work = tempfile::tempdir().unwrap();
                let dir = work.path();
                std::fs::create_dir_all(dir.join("config/playbooks")).unwrap();
                std::fs::create_dir_all(dir.join("templates")).unwrap();
                std::fs::write(dir.join("config/playbooks/notice.toml"), PLAYBOOK).unwrap();
                std::fs::write(dir.join("templates/notice.md.hbs"), TEMPLATE).unwrap();
                let (url, database) = common::fresh_store(dir, backend);
                std::fs::write(
                dir.join("config/tend.toml"),
                format!(
                    "[database]\nurl = \"{url}\"\n[mail]\ntransport = \"smtp\"\n[mail.smtp]\nhost = \"127.0.0.1\"\nport = {port}\npool_size = {SESSIONS}\n[delivery]\nconcurrency = 128\n",
                ),
            )
            .unwrap();
                if shape == "spread" {
                    common::generate(&dir.join("customers.csv"), n);
                } else {
                    let rows: String = (0..n)
                    .map(|i| format!("cust-{i:07},user{i}@customer{}.example,Person {i} Example,UTC,pro,2026-05-01T10:00:00Z\n", i % 5000))
                    .collect();
                    std::fs::write(
                        dir.join("customers.csv"),
                        format!("id,email,name,timezone,plan,signup_at\n{rows}"),
                    )
                    .unwrap();
                }
                let tend = env!("CARGO_BIN_EXE_tend");
                let status = Command::new(tend)
                    .args(["import", "customers", "customers.csv"])
                    .current_dir(dir)
                    .output()
                    .unwrap();
                assert!(
                    status.status.success(),
                    "{}",
                    String::from_utf8_lossy(&status.stderr)
                );
                // The reference runs before and after the tick, and the
                // ratio is to their mean: this machine's speed drifts.
                let before = reference(&sbin, &lib, port, n);
                let wal = (backend == "postgres").then(|| common::wal_position(&url));
                let mut tick = Command::new(tend);
                tick.args(["tick", "--now", "2027-06-01T12:00:00Z"])
                    .current_dir(dir);
                let run = common::measure_run(tick);
                // What the store wrote for planning and delivering: the WAL
                // on PostgreSQL (its server writes it), tend's own writes
                // (the database and its WAL) on SQLite.
                let written = match wal {
                    Some(start) => common::wal_position(&url) - start,
                    None => run.written,
                };
                let stdout = run.stdout;
                println!(
                    "{backend:<8} {shape:<6} {n:>8} notices: tick {:.2} s, peak RSS {} MB, store wrote {:.0} MB ({:.1} KB a message); {}",
                    run.secs,
                    run.peak_kib / 1024,
                    written as f64 / 1e6,
                    written as f64 / 1e3 / n as f64,
                    stdout.trim()
                );
                assert!(
                    stdout.contains(&format!("sent {n},")),
                    "every notice was sent: {stdout}"
                );
                let delivery: f64 = stdout
                    .rsplit("delivery ")
                    .next()
                    .and_then(|d| d.split(' ').next())
                    .and_then(|d| d.parse().ok())
                    .unwrap_or(f64::NAN);
                let after = reference(&sbin, &lib, port, n);
                let mean = (before + after) / 2.0;
                println!(
                    "{backend:<8} {shape:<6} {n:>8} messages: tend delivers {:.0} msg/s, smtp-source {:.0} msg/s (before {:.0}, after {:.0}): {:.0} %",
                    n as f64 / delivery,
                    n as f64 / mean,
                    n as f64 / before,
                    n as f64 / after,
                    100.0 * mean / delivery
                );
                common::drop_store(database);
            }
        }
    }
    let _ = sink.kill();
    let _ = sink.wait();
}

/// Seconds `smtp-source` takes to send `n` messages of about a notice's size
/// to the sink over as many sessions as tend uses.
fn reference(sbin: &Path, lib: &Path, port: u16, n: usize) -> f64 {
    let started = Instant::now();
    let source = Command::new(sbin.join("smtp-source"))
        .env("LD_LIBRARY_PATH", lib)
        .args([
            "-s",
            &SESSIONS.to_string(),
            "-m",
            &n.to_string(),
            "-l",
            "2400",
        ])
        .args(["-f", "success@acme.example", "-t", "ana@example.com"])
        .arg(format!("127.0.0.1:{port}"))
        .status()
        .expect("run smtp-source");
    assert!(source.success());
    started.elapsed().as_secs_f64()
}
