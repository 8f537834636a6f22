//! Planning companies: N generated accounts with five contacts each (one
//! per role), planned by account-scope steps, beside the same contacts
//! planned by person-scope steps that reach the same people for the same
//! reasons. The release `tend tick` for a full first pass (on a Saturday
//! night, so what is planned waits for its window and the tick measures
//! planning, not delivery), then nothing-due ticks a minute apart. Prints
//! seconds, messages planned, the cost per person, and peak RSS.
//!
//! `cargo bench --bench accounts [-- ACCOUNTS… ] [--backend sqlite|postgres]`
//! (accounts default to 100000, i.e. 500,000 people).

mod common;

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};

/// Each account's contacts hold one role each, in this order.
const ROLES: &[&str] = &["billing", "admin", "technical", "champion", "user"];

/// What the companies are sent, at account scope: the renewal to whoever
/// pays, a note on entering the renewal stage to the champions, and a
/// quarterly review offered to champions of healthy accounts.
const ACCOUNT_SCOPE: &str = r#"name = "accounts"
kind = "reminder"
category = "checkins"
scope = "account"
from = "owner"

[[step]]
id = "renewal-60d"
template = "bench/t"
anchor = "renewal_at"
before = "60d"
to = ["billing"]

[[step]]
id = "entered-renewal"
template = "bench/t"
anchor = "stage:renewal"
to = ["champion"]

[[step]]
id = "business-review"
kind = "checkin"
template = "bench/t"
cron = "0 10 1 2,5,8,11 *"
when = 'account.health >= 40'
to = ["champion"]
expires = "30d"
"#;

/// The same reasons at person scope: each contact carries its company's
/// renewal, stage rule and health, and a condition picks the role.
const PERSON_SCOPE: &str = r#"name = "accounts"
kind = "reminder"
category = "checkins"

[[step]]
id = "renewal-60d"
template = "bench/t"
anchor = "renewal_at"
before = "60d"
when = '"billing" in customer.roles'

[[step]]
id = "entered-renewal"
template = "bench/t"
anchor = "stage:renewal"
when = '"champion" in customer.roles'

[[step]]
id = "business-review"
kind = "checkin"
template = "bench/t"
cron = "0 10 1 2,5,8,11 *"
when = 'customer.health >= 40 && "champion" in customer.roles'
expires = "30d"
"#;

const CONFIG: &str = r#"[[team]]
id = "maria"
name = "Maria Costa"
email = "maria@acme.example"

[[team]]
id = "tom"
name = "Tom Berg"
email = "tom@acme.example"
"#;

/// Nothing-due ticks after the full one, a minute apart.
const IDLE_TICKS: u32 = 5;

fn main() {
    let (mut sizes, backends) = common::args();
    if sizes == [100_000, 1_000_000] {
        sizes = vec![100_000];
    }
    let dir = tempfile::tempdir().expect("temp dir");
    println!(
        "| accounts × contacts | scope | backend | planning s | planned | µs a person | tick peak RSS MB | first nothing-due tick ms | median nothing-due tick ms |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|");
    for &n in &sizes {
        let accounts = dir.path().join(format!("accounts-{n}.csv"));
        let contacts = dir.path().join(format!("contacts-{n}.csv"));
        generate(&accounts, &contacts, n);
        for backend in &backends {
            for scope in ["account", "person"] {
                run(dir.path(), &accounts, &contacts, backend, scope, n);
            }
        }
    }
}

/// `n` accounts, and five contacts of each carrying its renewal and
/// health (for the person-scope twin).
fn generate(accounts: &Path, contacts: &Path, n: usize) {
    let mut a = BufWriter::new(std::fs::File::create(accounts).unwrap());
    let mut c = BufWriter::new(std::fs::File::create(contacts).unwrap());
    writeln!(a, "id,name,plan,renewal_at,health,owner,region").unwrap();
    writeln!(
        c,
        "id,email,name,timezone,plan,signup_at,renewal_at,health,account_id,roles[]"
    )
    .unwrap();
    let zones = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"];
    for i in 0..n {
        let renewal = format!("2027-{:02}-{:02}", 1 + (i / 7) % 12, 1 + (i / 3) % 28);
        let health = i % 101;
        writeln!(
            a,
            "acct-{i:07},Company {i},enterprise,{renewal},{health},{},{}",
            ["maria", "tom"][i % 2],
            ["eu", "us", "apac"][i % 3]
        )
        .unwrap();
        for (r, role) in ROLES.iter().enumerate() {
            writeln!(
                c,
                "c-{i:07}-{r},{role}{i}@company{}.example,Person {i} {role},{},enterprise,2025-06-01,{renewal},{health},acct-{i:07},{role}",
                i % 5000,
                zones[(i + r) % zones.len()],
            )
            .unwrap();
        }
    }
    a.flush().unwrap();
    c.flush().unwrap();
}

fn run(dir: &Path, accounts: &Path, contacts: &Path, backend: &str, scope: &str, n: usize) {
    let work = dir.join(format!("accounts-{backend}-{scope}-{n}"));
    std::fs::create_dir_all(work.join("config/playbooks")).unwrap();
    std::fs::create_dir_all(work.join("templates/bench")).unwrap();
    // The person-scope twin's stage rule mirrors the account one.
    let stages = if scope == "person" {
        "\n[[lifecycle.stage]]\nname = \"renewal\"\nwhen = 'days_until(customer.renewal_at) <= 60'\n\n[[lifecycle.stage]]\nname = \"active\"\nwhen = 'true'\n"
    } else {
        ""
    };
    std::fs::write(work.join("config/tend.toml"), format!("{CONFIG}{stages}")).unwrap();
    let playbook = if scope == "account" {
        ACCOUNT_SCOPE
    } else {
        PERSON_SCOPE
    };
    std::fs::write(work.join("config/playbooks/accounts.toml"), playbook).unwrap();
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
    for (what, file) in [("accounts", accounts), ("customers", contacts)] {
        let status = command(&["import", what, file.to_str().unwrap()])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "import {what} failed");
    }
    // A Saturday night in early November: the renewals of December and
    // January and the November review fall due, and wait for Monday.
    let (_, rss, out) = common::measure(command(&["tick", "--now", "2026-11-07T23:30:00Z"]));
    let planned: u64 = common::between(&out, "planned ", ",").parse().unwrap();
    let planning: f64 = common::between(&out, "planning ", " s").parse().unwrap();
    let mut idle_ms = Vec::new();
    for minute in 31..31 + IDLE_TICKS {
        let now = format!("2026-11-07T23:{minute}:00Z");
        let (secs, out) = common::time_run(command(&["tick", "--now", &now, "--format", "json"]));
        let out: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(out["planned"], 0, "nothing is due at {now}");
        idle_ms.push(secs * 1000.0);
    }
    let first = idle_ms[0];
    idle_ms.sort_by(f64::total_cmp);
    let people = n * ROLES.len();
    println!(
        "| {n} × 5 | {scope} | {backend} | {planning:.1} | {planned} | {:.1} | {:.1} | {first:.0} | {:.0} |",
        planning * 1e6 / people as f64,
        rss as f64 / 1024.0,
        idle_ms[idle_ms.len() / 2],
    );
    common::drop_store(database);
}
