//! Planning at scale: N generated customers and a playbook of 10 steps; the
//! release `tend tick` for a full first pass, then ticks a minute apart
//! when nothing is due (the first, and the median). Prints seconds and
//! peak RSS for each.
//!
//! `cargo bench --bench plan [-- SIZE… ] [--backend sqlite|postgres]`
//! (sizes default to 100000 and 1000000).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

/// Ten steps of every kind of trigger, half with conditions.
const PLAYBOOK: &str = r#"name = "bench"
kind = "checkin"
category = "onboarding"

[[step]]
id = "welcome"
template = "bench/t"
anchor = "signup_at"
after = "1d"

[[step]]
id = "day-3-tip"
kind = "tip"
category = "tips"
template = "bench/t"
anchor = "signup_at"
after = "3d"
when = '!("dashboards" in customer.attributes.features)'

[[step]]
id = "day-7"
template = "bench/t"
anchor = "signup_at"
after = "7d"

[[step]]
id = "day-14"
template = "bench/t"
anchor = "signup_at"
after = "14d"
when = 'customer.plan != "free"'

[[step]]
id = "day-30-nps"
template = "bench/t"
anchor = "signup_at"
after = "30d"
survey = "nps"

[[step]]
id = "renewal-30"
kind = "reminder"
category = "maintenance"
template = "bench/t"
anchor = "renewal_at"
before = "30d"

[[step]]
id = "renewal-7"
kind = "reminder"
category = "maintenance"
template = "bench/t"
anchor = "renewal_at"
before = "7d"
when = 'customer.health < 60'

[[step]]
id = "monthly-backup"
kind = "reminder"
category = "maintenance"
template = "bench/t"
cron = "0 10 1 * *"
when = 'customer.plan == "self-hosted"'
expires = "3d"

[[step]]
id = "weekly-digest"
kind = "tip"
category = "tips"
template = "bench/t"
cron = "0 9 * * mon"
expires = "1d"

[[step]]
id = "come-back"
template = "bench/t"
anchor = "last_seen_at"
after = "21d"
when = 'days_since(customer.last_seen_at) >= 21'
"#;

/// Nothing-due ticks after the full one, a minute apart.
const IDLE_TICKS: u32 = 7;

fn main() {
    let (sizes, backends) = common::args();
    let dir = tempfile::tempdir().expect("temp dir");
    println!(
        "| customers | backend | planning s | planned | whole tick s | sent | tick peak RSS MB | first nothing-due tick ms | median nothing-due tick ms | nothing-due peak RSS MB |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &n in &sizes {
        let file = dir.path().join(format!("customers-{n}.csv"));
        common::generate(&file, n);
        for backend in &backends {
            run(dir.path(), &file, backend, n);
        }
    }
}

fn run(dir: &Path, file: &Path, backend: &str, n: usize) {
    let work = dir.join(format!("plan-{backend}-{n}"));
    std::fs::create_dir_all(work.join("config/playbooks")).unwrap();
    std::fs::create_dir_all(work.join("templates/bench")).unwrap();
    std::fs::write(work.join("config/playbooks/bench.toml"), PLAYBOOK).unwrap();
    std::fs::write(
        work.join("templates/bench/t.md.hbs"),
        "+++\nsubject = \"x\"\n+++\nx\n",
    )
    .unwrap();
    let (url, database) = common::fresh_store(&work, backend);
    let tend = env!("CARGO_BIN_EXE_tend");
    let command = |args: &[&str]| {
        let mut c = Command::new(tend);
        c.args(args)
            .current_dir(&work)
            .env("TEND__DATABASE__URL", &url)
            .stderr(Stdio::inherit());
        c
    };
    let status = command(&["import", "customers", file.to_str().unwrap()])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "import failed");

    // The generated signups fall in 2026; mid-November has work for many.
    // The table form reports planning and delivery time apart: a tick now
    // delivers what it planned too (into .eml files here).
    let (full_secs, full_rss, out) =
        common::measure(command(&["tick", "--now", "2026-11-16T09:30:00Z"]));
    let planned: u64 = common::between(&out, "planned ", ",").parse().unwrap();
    let sent: u64 = common::between(&out, "sent ", ",").parse().unwrap();
    let planning: f64 = common::between(&out, "planning ", " s").parse().unwrap();
    // Then a tick a minute, with nothing due, timed alone; one more is
    // sampled for its memory. The first also meets what the full tick
    // left the machine doing, so it is shown apart from the median.
    let idle = |minute: u32| {
        let now = format!("2026-11-16T09:{minute}:00Z");
        let c = command(&["tick", "--now", &now, "--format", "json"]);
        (now, c)
    };
    let mut idle_ms = Vec::new();
    for minute in 31..31 + IDLE_TICKS {
        let (now, c) = idle(minute);
        let (secs, out) = common::time_run(c);
        let out: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(out["planned"], 0, "nothing is due at {now}");
        idle_ms.push(secs * 1000.0);
    }
    let (_, idle_rss, _) = common::measure(idle(31 + IDLE_TICKS).1);
    let first = idle_ms[0];
    idle_ms.sort_by(f64::total_cmp);
    println!(
        "| {n} | {backend} | {planning:.1} | {planned} | {full_secs:.1} | {sent} | {:.1} | {first:.0} | {:.0} | {:.1} |",
        full_rss as f64 / 1024.0,
        idle_ms[idle_ms.len() / 2],
        idle_rss as f64 / 1024.0
    );
    common::drop_store(database);
}
