//! Import throughput and peak memory: generates customer files, runs the
//! release `tend import customers` on them into SQLite and PostgreSQL, and
//! prints customers/s and peak RSS.
//!
//! `cargo bench --bench import [-- SIZE… ] [--backend sqlite|postgres]`
//! (sizes default to 100000 and 1000000). PostgreSQL comes from
//! `TEND_TEST_POSTGRES_URL` (default postgres://postgres@127.0.0.1:5432/postgres);
//! a fresh database is created and dropped for each run.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ZONES: &[&str] = &[
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Tokyo",
    "Asia/Kathmandu",
    "Australia/Sydney",
];
const PLANS: &[&str] = &["free", "pro", "enterprise", "self-hosted"];
const FEATURES: &[&str] = &["api", "dashboards", "sso", "alerts", "exports"];

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mut sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    if sizes.is_empty() {
        sizes = vec![100_000, 1_000_000];
    }
    let backends: Vec<&str> = match args.iter().position(|a| a == "--backend") {
        Some(i) => vec![args[i + 1].as_str()],
        None => vec!["sqlite", "postgres"],
    };
    let dir = tempfile::tempdir().expect("temp dir");
    println!("| customers | backend | file MB | seconds | customers/s | peak RSS MB |");
    println!("|---:|---|---:|---:|---:|---:|");
    for &n in &sizes {
        let file = dir.path().join(format!("customers-{n}.csv"));
        generate(&file, n);
        let mb = std::fs::metadata(&file).unwrap().len() as f64 / 1e6;
        for &backend in &backends {
            let (secs, rss) = run(dir.path(), &file, backend, n);
            println!(
                "| {n} | {backend} | {mb:.0} | {secs:.2} | {:.0} | {:.1} |",
                n as f64 / secs,
                rss as f64 / 1024.0
            );
        }
    }
}

/// A realistic customer file: every known column, a few attributes, a list.
fn generate(path: &Path, n: usize) {
    let mut out = BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, "id,email,name,timezone,locale,plan,signup_at,renewal_at,last_seen_at,health,region,company,features[]").unwrap();
    for i in 0..n {
        let features: Vec<&str> = FEATURES
            .iter()
            .enumerate()
            .filter(|(f, _)| (i >> f) & 1 == 1)
            .map(|(_, f)| *f)
            .collect();
        writeln!(
            out,
            "cust-{i:07},user{i}@customer{}.example,Person {i} Example,{},en,{},2026-{:02}-{:02}T10:00:00Z,2027-{:02}-{:02},2026-11-{:02}T08:30:00Z,{},{},Company {},{}",
            i % 5000,
            ZONES[i % ZONES.len()],
            PLANS[i % PLANS.len()],
            1 + i % 12,
            1 + i % 28,
            1 + (i / 7) % 12,
            1 + (i / 3) % 28,
            1 + i % 21,
            i % 101,
            ["eu", "us", "apac"][i % 3],
            i % 977,
            features.join(";"),
        )
        .unwrap();
    }
    out.flush().unwrap();
}

/// Imports `file` into a fresh store; returns (seconds, peak RSS in KiB).
fn run(dir: &Path, file: &Path, backend: &str, n: usize) -> (f64, u64) {
    let work = dir.join(format!("run-{backend}-{n}"));
    std::fs::create_dir_all(&work).unwrap();
    let (url, database) = match backend {
        "sqlite" => (format!("sqlite://{}", work.join("tend.db").display()), None),
        "postgres" => {
            let admin = std::env::var("TEND_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
            let name = format!("tend_bench_{}", std::process::id());
            psql(&admin, &format!("DROP DATABASE IF EXISTS {name}"));
            psql(&admin, &format!("CREATE DATABASE {name}"));
            let base = admin
                .rsplit_once('/')
                .map_or(admin.as_str(), |(b, _)| b)
                .to_owned();
            (format!("{base}/{name}"), Some((admin, name)))
        }
        other => panic!("unknown backend {other}"),
    };
    let tend = env!("CARGO_BIN_EXE_tend");
    let status = Command::new(tend)
        .arg("migrate")
        .current_dir(&work)
        .env("TEND__DATABASE__URL", &url)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "migrate failed");

    let start = Instant::now();
    let mut child = Command::new(tend)
        .args(["import", "customers"])
        .arg(file)
        .current_dir(&work)
        .env("TEND__DATABASE__URL", &url)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut peak = 0;
    // VmHWM is the high-water mark: the last reading before exit is the peak.
    let status = loop {
        if let Some(kib) = vm_hwm(child.id()) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let secs = start.elapsed().as_secs_f64();
    let mut summary = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut summary).unwrap();
    assert!(status.success(), "import failed: {summary}");
    assert_eq!(
        summary.trim(),
        format!("imported {n}, updated 0, rejected 0")
    );
    if let Some((admin, name)) = database {
        psql(
            &admin,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        );
    }
    (secs, peak)
}

fn vm_hwm(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn psql(url: &str, sql: &str) {
    let status = Command::new("psql")
        .args([url, "-qAtc", sql])
        .env("PGOPTIONS", "--client-min-messages=warning")
        .stdout(Stdio::null())
        .status()
        .expect("psql");
    assert!(status.success(), "psql: {sql}");
}
