//! Survey answers recorded per second over HTTP: N customers each with one
//! sent NPS check-in, `tend run` on loopback, and `wrk` (Debian's package,
//! installed when missing) posting answers to N distinct signed links with
//! 32 connections for 10 seconds. Each POST records one answer (replacing
//! the message's earlier one) in its own transaction.
//!
//! Then events ingested per second over the API: `wrk` posting one event a
//! request (`POST /api/v1/events` with the bearer token) for 10 seconds.
//!
//! `cargo bench --bench answers [-- SIZE] [--backend sqlite|postgres]`
//! (size defaults to 10000).

mod common;

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use tend::domain::message::MessageId;
use tend::token::{Purpose, Signer};

use common::{KEY, PLAYBOOK, TEMPLATE};

/// wrk's script: POST an answer to each link in turn.
const SCRIPT: &str = r#"
local paths = {}
for line in io.lines(os.getenv("TEND_BENCH_PATHS")) do paths[#paths + 1] = line end
local i = 0
wrk.method = "POST"
wrk.body = "answer=9&comment=fine"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
request = function()
  i = i % #paths + 1
  return wrk.format(nil, paths[i])
end
"#;

/// wrk's script: POST one event a request, to the customers in turn.
const EVENTS: &str = r#"
local n = tonumber(os.getenv("TEND_BENCH_CUSTOMERS"))
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench-api-token"
request = function()
  i = i % n
  local body = string.format('{"customer_id":"cust-%07d","name":"login","occurred_at":"2026-06-01T12:00:00Z"}', i)
  i = i + 1
  return wrk.format(nil, "/api/v1/events", nil, body)
end
"#;

fn main() {
    let (sizes, backends) = common::args();
    let n = if std::env::args().skip(1).any(|a| a.parse::<usize>().is_ok()) {
        sizes[0]
    } else {
        10_000
    };
    let wrk = wrk();
    for backend in &backends {
        let work = tempfile::tempdir().unwrap();
        let dir = work.path();
        std::fs::create_dir_all(dir.join("config/playbooks")).unwrap();
        std::fs::create_dir_all(dir.join("templates")).unwrap();
        std::fs::write(dir.join("config/playbooks/checkin.toml"), PLAYBOOK).unwrap();
        std::fs::write(dir.join("templates/nps.md.hbs"), TEMPLATE).unwrap();
        let (url, database) = common::fresh_store(dir, backend);
        let port = common::free_port();
        std::fs::write(
            dir.join("config/tend.toml"),
            format!(
                "[database]\nurl = \"{url}\"\n[mail]\ntransport = \"file\"\n[mail.file]\ndir = \"outbox\"\n\
                 [http]\nlisten = \"127.0.0.1:{port}\"\nrate_per_minute = 0\napi_token = \"bench-api-token\"\n[security]\nsecret = \"{KEY}\"\n\
                 [delivery]\nwindow = {{ days = \"all\", start = \"00:00\", end = \"23:59\" }}\ncap = {{ max = 100, per = \"1d\" }}\n"
            ),
        )
        .unwrap();
        let rows: String = (0..n)
            .map(|i| {
                format!("cust-{i:07},user{i}@example.com,Person {i},UTC,pro,2026-05-01T10:00:00Z\n")
            })
            .collect();
        std::fs::write(
            dir.join("customers.csv"),
            format!("id,email,name,timezone,plan,signup_at\n{rows}"),
        )
        .unwrap();
        let tend = env!("CARGO_BIN_EXE_tend");
        let run = |args: &[&str]| {
            let out = Command::new(tend)
                .args(args)
                .current_dir(dir)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        };
        run(&["import", "customers", "customers.csv"]);
        let ticked = run(&["tick", "--now", "2026-06-01T12:00:00Z"]);
        assert!(ticked.contains(&format!("sent {n},")), "{ticked}");
        let messages: serde_json::Value =
            serde_json::from_str(&run(&["messages", "--format", "json"])).unwrap();
        let signer = Signer::new(KEY.as_bytes());
        let now = chrono::Utc::now();
        let paths: String = messages
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let id: MessageId = m["id"].as_str().unwrap().parse().unwrap();
                format!("/r/{}/9\n", signer.sign(Purpose::Survey, id, "nps", now))
            })
            .collect();
        std::fs::write(dir.join("paths.txt"), paths).unwrap();
        std::fs::write(dir.join("answers.lua"), SCRIPT).unwrap();

        let mut daemon = common::start_daemon(tend, dir, port);
        std::thread::sleep(Duration::from_millis(500));
        let cpu_at_start = cpu_ms(daemon.id());
        let out = Command::new(&wrk)
            .args(["-t2", "-c32", "-d10s", "-s", "answers.lua"])
            .arg(format!("http://127.0.0.1:{port}"))
            .env("TEND_BENCH_PATHS", dir.join("paths.txt"))
            .current_dir(dir)
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&out.stdout).into_owned();
        let cpu_after_answers = cpu_ms(daemon.id());
        std::fs::write(dir.join("events.lua"), EVENTS).unwrap();
        let out = Command::new(&wrk)
            .args(["-t2", "-c32", "-d10s", "-s", "events.lua"])
            .arg(format!("http://127.0.0.1:{port}"))
            .env("TEND_BENCH_CUSTOMERS", n.to_string())
            .current_dir(dir)
            .output()
            .unwrap();
        let events = String::from_utf8_lossy(&out.stdout).into_owned();
        let cpu_after_events = cpu_ms(daemon.id());
        let _ = Command::new("kill").arg(daemon.id().to_string()).status();
        let _ = daemon.wait();
        let rate = report
            .lines()
            .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
            .map(str::trim)
            .unwrap_or("?")
            .to_owned();
        let refused = report
            .lines()
            .find(|l| l.contains("Non-2xx"))
            .map(str::trim);
        let latency = report
            .lines()
            .find(|l| l.trim_start().starts_with("Latency"))
            .map(str::trim);
        let answered: serde_json::Value =
            serde_json::from_str(&run(&["report", "--format", "json"])).unwrap();
        println!(
            "{backend:<8} {n:>6} links: {rate} answers/s over 10 s, 32 connections ({}); {} messages answered; tend used {} of CPU per 1,000 answers{}",
            latency.unwrap_or("latency ?"),
            answered["playbooks"][0]["responses"],
            per_thousand(cpu_after_answers - cpu_at_start, &report),
            refused.map(|r| format!("; {r}")).unwrap_or_default()
        );
        let line = |report: &str, prefix: &str| {
            report
                .lines()
                .find(|l| l.trim_start().starts_with(prefix))
                .map(|l| l.trim().to_owned())
        };
        println!(
            "{backend:<8} events: {} events/s over 10 s, 32 connections ({}); tend used {} of CPU per 1,000 events{}",
            line(&events, "Requests/sec:")
                .as_deref()
                .and_then(|l| l.strip_prefix("Requests/sec:"))
                .map_or("?", str::trim),
            line(&events, "Latency").unwrap_or_else(|| "latency ?".into()),
            per_thousand(cpu_after_events - cpu_after_answers, &events),
            line(&events, "Non-2xx")
                .map(|r| format!("; {r}"))
                .unwrap_or_default()
        );
        std::io::stdout().flush().unwrap();
        common::drop_store(database);
    }
}

/// The CPU time (user and system) process `pid` has used, in ms: a
/// figure other load on the machine moves far less than a rate.
fn cpu_ms(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command (which may hold spaces) and its ')'.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // The kernel counts in USER_HZ, 100 a second on Linux.
    ticks * 10
}

/// CPU ms per 1,000 of the requests wrk reports ("N requests in 10.0s").
fn per_thousand(cpu_ms: u64, report: &str) -> String {
    let requests = report
        .lines()
        .find_map(|l| l.trim().split_once(" requests in"))
        .and_then(|(n, _)| n.trim().parse::<u64>().ok());
    match requests {
        Some(n) if n > 0 => format!("{:.0} ms", cpu_ms as f64 * 1000.0 / n as f64),
        _ => "?".into(),
    }
}

/// wrk, from Debian's packages when it is missing.
fn wrk() -> String {
    let found = |p: &str| std::path::Path::new(p).exists().then(|| p.to_owned());
    if let Some(path) = found("/usr/bin/wrk") {
        return path;
    }
    let status = Command::new("apt-get")
        .args(["install", "-y", "-qq", "wrk"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .expect("apt-get");
    assert!(
        status.success(),
        "the answers benchmark needs wrk (apt-get install wrk)"
    );
    found("/usr/bin/wrk").expect("wrk installed")
}
