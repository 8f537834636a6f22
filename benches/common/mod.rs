//! Shared by the benchmarks: generated customers, fresh stores, and the
//! peak memory of a child process.
#![allow(dead_code)] // Each benchmark uses part of this.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
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

/// A realistic customer file: every known column, a few attributes, a list.
pub fn generate(path: &Path, n: usize) {
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

/// The command line of a benchmark: sizes (default 100,000 and 1,000,000)
/// and `--backend sqlite|postgres` (default both).
pub fn args() -> (Vec<usize>, Vec<String>) {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mut sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    if sizes.is_empty() {
        sizes = vec![100_000, 1_000_000];
    }
    let backends = match value_of("--backend") {
        Some(backend) => vec![backend.unwrap_or_default()],
        None => vec!["sqlite".to_owned(), "postgres".to_owned()],
    };
    (sizes, backends)
}

/// What follows `flag` on the command line: `None` without the flag,
/// `Some(None)` when nothing follows it.
pub fn value_of(flag: &str) -> Option<Option<String>> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == flag)?;
    Some(args.get(at + 1).cloned())
}

/// A fresh store for one run: a SQLite file in `work`, or a new PostgreSQL
/// database (dropped by `drop_store`), in the server's default collation or
/// in `TEND_BENCH_LOCALE` (say `en_US.UTF-8`, as `initdb` picks up from a
/// machine set to a language; the locale must be installed: `locale -a`).
pub fn fresh_store(work: &Path, backend: &str) -> (String, Option<(String, String)>) {
    match backend {
        "sqlite" => (format!("sqlite://{}", work.join("tend.db").display()), None),
        "postgres" => {
            let admin = std::env::var("TEND_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
            let name = format!("tend_bench_{}", std::process::id());
            psql(&admin, &format!("DROP DATABASE IF EXISTS {name}"));
            let locale = std::env::var("TEND_BENCH_LOCALE")
                .map(|l| format!(" TEMPLATE template0 LOCALE '{l}'"))
                .unwrap_or_default();
            psql(&admin, &format!("CREATE DATABASE {name}{locale}"));
            let base = admin
                .rsplit_once('/')
                .map_or(admin.as_str(), |(b, _)| b)
                .to_owned();
            (format!("{base}/{name}"), Some((admin, name)))
        }
        other => panic!("unknown backend {other}"),
    }
}

pub fn drop_store(database: Option<(String, String)>) {
    if let Some((admin, name)) = database {
        psql(
            &admin,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        );
    }
}

/// Runs a child to its end; returns (seconds, peak RSS in KiB, stdout).
pub fn measure(command: Command) -> (f64, u64, String) {
    let run = measure_run(command);
    (run.secs, run.peak_kib, run.stdout)
}

/// Runs a child to its end without looking at it on the way (sampling
/// `/proc` slows a 20 ms run by a few ms); returns (seconds, stdout).
pub fn time_run(mut command: Command) -> (f64, String) {
    let start = Instant::now();
    let out = command.stdout(Stdio::piped()).output().expect("spawn tend");
    let secs = start.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "tend failed: {stdout}");
    (secs, stdout)
}

/// Runs a command to its end; its stdout, or a panic with its stderr.
pub fn run_ok(command: &mut Command) -> Vec<u8> {
    let out = command.output().expect("spawn");
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        command.get_program(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// What [`measure_run`] saw of a child.
pub struct Run {
    pub secs: f64,
    /// Peak resident memory.
    pub peak_kib: u64,
    /// Bytes the child wrote to storage (its own files: a SQLite store,
    /// `.eml` files), as of the last reading before it exited.
    pub written: u64,
    /// CPU seconds the child used, all its threads, user and system, as of
    /// the last reading before it exited.
    pub cpu_secs: f64,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a child to its end, sampling its memory and its writes.
pub fn measure_run(mut command: Command) -> Run {
    let start = Instant::now();
    let mut child: Child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tend");
    // Read as it comes, so a chatty child never blocks on a full pipe.
    let mut err = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut err, &mut text).unwrap();
        text
    });
    let (mut peak, mut written, mut cpu) = (0, 0, 0.0);
    // VmHWM is the high-water mark: the last reading before exit is the
    // peak; write_bytes only grows, so its last reading is the nearest.
    let status = loop {
        if let Some(kib) = vm_hwm(child.id()) {
            peak = peak.max(kib);
        }
        if let Some(bytes) = write_bytes(child.id()) {
            written = written.max(bytes);
        }
        if let Some(secs) = cpu_secs(child.id(), false) {
            cpu = secs;
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let secs = start.elapsed().as_secs_f64();
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    let stderr = stderr.join().unwrap();
    assert!(status.success(), "tend failed: {stdout}{stderr}");
    Run {
        secs,
        peak_kib: peak,
        written,
        cpu_secs: cpu,
        stdout,
        stderr,
    }
}

/// The fields of `/proc/PID/stat` after the command name.
fn stat_fields(pid: &str) -> Option<(String, Vec<String>)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, tail) = stat.rsplit_once(')')?;
    let name = head.split_once('(')?.1.to_owned();
    Some((name, tail.split_whitespace().map(str::to_owned).collect()))
}

/// CPU seconds of a process (user and system, every thread), and with
/// `reaped` those of its children that have exited too. The kernel counts
/// in USER_HZ, which is 100 on Linux whatever the kernel's own tick.
fn cpu_secs(pid: u32, reaped: bool) -> Option<f64> {
    let (_, f) = stat_fields(&pid.to_string())?;
    // After the name: state, ppid, … utime is the 12th, stime the 13th,
    // cutime and cstime the 14th and 15th.
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    let mut total = ticks(11)? + ticks(12)?;
    if reaped {
        total += ticks(13)? + ticks(14)?;
    }
    Some(total as f64 / 100.0)
}

/// CPU seconds every PostgreSQL process on this machine has used so far,
/// the backends that have exited included (counted in the postmaster's
/// children's time): two readings apart are the server's CPU between them,
/// when the server runs here.
pub fn postgres_cpu() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let processes: Vec<(u32, String, u32)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let (name, f) = stat_fields(&pid.to_string())?;
            Some((pid, name, f.get(1)?.parse().ok()?))
        })
        .collect();
    let is_postgres = |pid: u32| {
        processes
            .iter()
            .any(|(p, n, _)| *p == pid && n == "postgres")
    };
    processes
        .iter()
        .filter(|(_, name, _)| name == "postgres")
        .filter_map(|(pid, _, parent)| cpu_secs(*pid, !is_postgres(*parent)))
        .sum()
}

fn write_bytes(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let line = io.lines().find(|l| l.starts_with("write_bytes:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// How far PostgreSQL's write-ahead log stands, in bytes: two readings
/// apart are what the server wrote between them, whichever process asked.
pub fn wal_position(url: &str) -> u64 {
    let out = Command::new("psql")
        .args([
            url,
            "-qAtc",
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint",
        ])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a WAL position")
}

pub fn vm_hwm(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub fn psql(url: &str, sql: &str) {
    psql_value(url, sql);
}

/// What `sql` answers, as psql prints it unaligned.
pub fn psql_value(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-qAtc", sql])
        .env("PGOPTIONS", "--client-min-messages=warning")
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "psql: {sql}: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Postfix's `smtp-sink` and `smtp-source` test tools, taken from Debian's
/// postfix package without installing it (nothing runs as a mail server):
/// the package is downloaded and unpacked into `target/postfix` once.
pub fn postfix_tools() -> (std::path::PathBuf, std::path::PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/postfix");
    let sbin = root.join("usr/sbin");
    if !sbin.join("smtp-sink").exists() {
        std::fs::create_dir_all(&root).unwrap();
        let download = Command::new("apt-get")
            .args(["download", "postfix"])
            .current_dir(&root)
            .status()
            .expect("apt-get (Debian) fetches the postfix package for smtp-sink");
        assert!(download.success(), "apt-get download postfix failed");
        let deb = std::fs::read_dir(&root)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "deb"))
            .expect("the postfix .deb");
        let unpack = Command::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(&root)
            .status()
            .unwrap();
        assert!(unpack.success(), "dpkg-deb -x failed");
    }
    (sbin, root.join("usr/lib/postfix"))
}

/// A free local port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The text of `out` between `start` and the next `end`.
pub fn between<'a>(out: &'a str, start: &str, end: &str) -> &'a str {
    let from = out.find(start).map_or(out.len(), |i| i + start.len());
    let rest = &out[from..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}

/// The release `tend run` in `dir`, once it listens on `port`.
pub fn start_daemon(tend: &str, dir: &Path, port: u16) -> Child {
    let daemon = Command::new(tend)
        .arg("run")
        .current_dir(dir)
        .env("TEND__LOG__LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "tend run did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    daemon
}

/// The signing key of the benchmarks that sign links.
pub const KEY: &str = "bench-signing-key-of-at-least-32-bytes";

/// One NPS check-in a day after signup: the answers and webhooks
/// benchmarks' playbook, with its template.
pub const PLAYBOOK: &str = r#"name = "checkin"
kind = "checkin"
category = "checkins"

[[step]]
id = "nps"
template = "nps"
anchor = "signup_at"
after = "1d"
expires = "3650d"
survey = "nps"
"#;

pub const TEMPLATE: &str = "+++\nsubject = \"How are we doing, {{customer.first_name}}?\"\n+++\nOne question:\n\n{{> survey}}\n";
