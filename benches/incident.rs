//! Incident notices at scale: SIZE generated customers (default
//! 1,000,000), an incident whose selector matches about 1 % of them
//! (`customer.health == 7`: 9,901 of 1,000,000), opened with the release
//! `tend incident open`, which evaluates the selector over every customer,
//! records the affected set and their notices, and delivers them over SMTP
//! to Postfix's `smtp-sink` (8 connections) before it returns. The sink
//! writes each message it accepts to a file, so the first and last
//! acceptance are read from the files' times.
//!
//! `cargo bench --bench incident [-- SIZE] [--backend sqlite|postgres]`

mod common;

use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime};

const TEMPLATE: &str = "+++\nsubject = \"[Acme Cloud] {{incident.title}}\"\n+++\nHi {{customer.first_name}},\n\n{{incident.message}}\n";

fn main() {
    let (sizes, backends) = common::args();
    let n = if std::env::args().skip(1).any(|a| a.parse::<usize>().is_ok()) {
        sizes[0]
    } else {
        1_000_000
    };
    let (sbin, lib) = common::postfix_tools();
    for backend in &backends {
        let work = tempfile::tempdir().unwrap();
        let dir = work.path();
        let dumps = dir.join("accepted");
        std::fs::create_dir_all(&dumps).unwrap();
        // The sink runs as nobody: it must reach and write the folder.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&dumps, std::fs::Permissions::from_mode(0o777)).unwrap();
        let port = common::free_port();
        // smtp-sink -d: one file per accepted message (names by strftime,
        // made unique by the sink), so acceptance times can be read back.
        let mut sink = Command::new(sbin.join("smtp-sink"))
            .env("LD_LIBRARY_PATH", &lib)
            .args(["-u", "nobody", "-d"])
            .arg(format!("{}/%H%M%S", dumps.display()))
            .arg(format!("127.0.0.1:{port}"))
            .arg("256")
            .stdout(Stdio::null())
            .spawn()
            .expect("start smtp-sink");
        std::fs::create_dir_all(dir.join("templates/incidents")).unwrap();
        std::fs::write(dir.join("templates/incidents/notice.md.hbs"), TEMPLATE).unwrap();
        let (url, database) = common::fresh_store(dir, backend);
        std::fs::create_dir_all(dir.join("config")).unwrap();
        std::fs::write(
            dir.join("config/tend.toml"),
            format!(
                "[database]\nurl = \"{url}\"\n[mail]\ntransport = \"smtp\"\n[mail.smtp]\nhost = \"127.0.0.1\"\nport = {port}\npool_size = 8\n[delivery]\nconcurrency = 128\n"
            ),
        )
        .unwrap();
        common::generate(&dir.join("customers.csv"), n);
        let tend = env!("CARGO_BIN_EXE_tend");
        let imported = Command::new(tend)
            .args(["import", "customers", "customers.csv"])
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            imported.status.success(),
            "{}",
            String::from_utf8_lossy(&imported.stderr)
        );

        let started = SystemTime::now();
        let clock = Instant::now();
        let mut open = Command::new(tend);
        open.args([
            "incident",
            "open",
            "INC-1",
            "--title",
            "EU API latency",
            "--affects",
            "customer.health == 7",
            "--message",
            "Requests are slow; we are on it.",
        ])
        .current_dir(dir);
        let (secs, rss, stdout) = common::measure(open);
        let total = clock.elapsed().as_secs_f64();
        let _ = sink.kill();
        let _ = sink.wait();
        let mut accepted: Vec<SystemTime> = std::fs::read_dir(&dumps)
            .unwrap()
            .filter_map(|e| e.ok()?.metadata().ok()?.modified().ok())
            .collect();
        accepted.sort();
        let since = |t: &SystemTime| t.duration_since(started).unwrap_or_default().as_secs_f64();
        println!(
            "{backend:<8} {n:>8} customers: {} ; command {secs:.2} s, peak RSS {} MB; first notice accepted after {:.2} s, last after {:.2} s ({} accepted; wall {total:.2} s)",
            stdout.trim(),
            rss / 1024,
            accepted.first().map(since).unwrap_or(f64::NAN),
            accepted.last().map(since).unwrap_or(f64::NAN),
            accepted.len()
        );
        common::drop_store(database);
    }
}
