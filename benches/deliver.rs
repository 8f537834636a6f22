//! Delivery at scale: N generated customers each with one urgent notice
//! due, one release `tend tick` that plans and sends them all over SMTP to
//! Postfix's `smtp-sink` on loopback; beside it, `smtp-source` sends the same
//! number of messages of the same size (what `tend preview` composes) to
//! the same sink over as many sessions, for a reference rate, once before
//! the tick and once after (the ratio is to their mean). The reference
//! keeps its sessions connected (`-d`), as tend's pool does; the old
//! reference, a new connection for every message, is printed beside it.
//! Prints the tick's own split of planning and delivery time and of the
//! delivery stages, peak RSS, the CPU time tend used and, on PostgreSQL,
//! the server's (read off this machine's processes: steadier than times
//! on a machine whose speed moves, and meaningful only with the server
//! here), what the store wrote (PostgreSQL's WAL, or tend's own writes to
//! a SQLite store and its WAL), and the ratios.
//!
//! Two shapes of outbox: `burst`, every notice due at one instant (an
//! announcement to everyone), and `spread`, each due at its own instant
//! (a backlog after the daemon was down), which the store claims in due
//! order and so updates at scattered places.
//!
//! `cargo bench --bench deliver [-- SIZE…] [--backend sqlite|postgres]
//! [--shape burst|spread]` (size defaults to 100000, both shapes). With
//! `TEND_BASELINE=/path/to/tend`, that build runs too, on an outbox of its
//! own between the same references. With `TEND_BENCH_ROUNDS=N`, each build
//! runs N times, the builds taking turns in alternating order (this build
//! first, then the baseline first, …), and each build's means are printed
//! (delivery and its share of the references, which run before the first
//! tick and after the last; CPU over whole ticks, planning included):
//! ticks minutes apart differ by up to a fifth on a shared machine, so a
//! change of a few per cent shows only over several pairs.
//! With `TEND_BENCH_LOCALE=en_US.UTF-8` (installed: `locale -a`), the
//! PostgreSQL stores are created in that collation instead of the server's.
//! The postfix package is fetched with `apt-get download` and unpacked
//! under target/ on first use.

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
    // Another build of tend to run beside this one, on the same outbox and
    // between the same references (`TEND_BASELINE=/path/to/old/tend`).
    let tend = env!("CARGO_BIN_EXE_tend").to_owned();
    let mut builds = vec![("this build", tend.clone())];
    if let Some(old) = std::env::var_os("TEND_BASELINE") {
        builds.push(("baseline", old.to_string_lossy().into_owned()));
    }
    let rounds: usize = match std::env::var("TEND_BENCH_ROUNDS") {
        Ok(r) => r
            .parse()
            .ok()
            .filter(|&r| r > 0)
            .unwrap_or_else(|| panic!("TEND_BENCH_ROUNDS={r:?}: give a whole number from 1")),
        Err(_) => 1,
    };
    let shapes: Vec<&str> = match common::value_of("--shape") {
        Some(shape) => match shape.as_deref() {
            Some("burst") => vec!["burst"],
            Some("spread") => vec!["spread"],
            other => panic!(
                "--shape {}: give burst or spread",
                other.unwrap_or("without a value")
            ),
        },
        None => vec!["burst", "spread"],
    };
    let (sbin, lib) = common::postfix_tools();
    let port = common::free_port();
    let mut sink = Command::new(sbin.join("smtp-sink"))
        .env("LD_LIBRARY_PATH", &lib)
        .args(["-u", "nobody", &format!("127.0.0.1:{port}"), "256"])
        .stdout(Stdio::null())
        .spawn()
        .expect("start smtp-sink");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let sink_at = Sink {
        sbin: &sbin,
        lib: &lib,
        port,
    };
    for backend in &backends {
        for &n in &sizes {
            for &shape in &shapes {
                // The references run before and after the ticks, and the
                // ratio is to their mean: this machine's speed drifts.
                let mut size = 0;
                let mut before = None;
                let mut ticks = Vec::new();
                let turns = (0..rounds).flat_map(|round| {
                    let mut order: Vec<_> = builds.iter().map(|build| (round, build)).collect();
                    if round % 2 == 1 {
                        order.reverse();
                    }
                    order
                });
                for (round, (label, binary)) in turns {
                    // Which tick a line is of, when each build runs more than once.
                    let name = if rounds > 1 {
                        format!("{label}, round {}", round + 1)
                    } else {
                        label.to_string()
                    };
                    let work = tempfile::tempdir().unwrap();
                    let dir = work.path();
                    let (url, database) = prepare(dir, backend, shape, n, port, binary);
                    if size == 0 {
                        size = message_size(dir, binary);
                        before = Some(References::measure(&sink_at, n, size));
                    }
                    let wal = (backend == "postgres").then(|| common::wal_position(&url));
                    // The server's CPU is read off this machine's processes:
                    // it means something only with the server here, as in CI.
                    let server = (backend == "postgres").then(common::postgres_cpu);
                    let mut tick = Command::new(binary);
                    tick.args(["tick", "--now", "2027-06-01T12:00:00Z"])
                        .env("RUST_LOG", "info,tend::deliver=debug")
                        .current_dir(dir);
                    let run = common::measure_run(tick);
                    let server = server.map(|before| common::postgres_cpu() - before);
                    // What the store wrote for planning and delivering: the WAL
                    // on PostgreSQL (its server writes it), tend's own writes
                    // (the database and its WAL) on SQLite.
                    let written = match wal {
                        Some(start) => common::wal_position(&url) - start,
                        None => run.written,
                    };
                    let stdout = run.stdout.trim();
                    let cpu = match server {
                        Some(server) => format!(
                            "tend's CPU {:.1} s, PostgreSQL's CPU {server:.1} s ({:.0} µs a message)",
                            run.cpu_secs,
                            server * 1e6 / n as f64
                        ),
                        None => format!("tend's CPU {:.1} s", run.cpu_secs),
                    };
                    println!(
                        "{backend:<8} {shape:<6} {n:>8} notices, {name}: tick {:.2} s, peak RSS {} MB, {cpu}, store wrote {:.0} MB ({:.1} KB a message); {stdout}",
                        run.secs,
                        run.peak_kib / 1024,
                        written as f64 / 1e6,
                        written as f64 / 1e3 / n as f64,
                    );
                    if let Some(stages) = run.stderr.lines().find(|l| l.contains("delivery stages"))
                    {
                        println!(
                            "{backend:<8} {shape:<6} {n:>8} notices, {name}: {}",
                            stages.trim()
                        );
                    }
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
                    ticks.push(Tick {
                        label,
                        name,
                        delivery,
                        tend_cpu: run.cpu_secs,
                        server_cpu: server,
                    });
                    common::drop_store(database);
                }
                let before = before.expect("one build ran");
                let after = References::measure(&sink_at, n, size);
                let rate = |secs: f64| n as f64 / secs;
                let persistent = (before.persistent + after.persistent) / 2.0;
                let reconnecting = (before.reconnecting + after.reconnecting) / 2.0;
                println!(
                    "{backend:<8} {shape:<6} {n:>8} messages of {size} bytes: smtp-source, {SESSIONS} persistent sessions (-d) {:.0} msg/s (before {:.0}, after {:.0}); the old reference, a new connection a message, {:.0} msg/s (before {:.0}, after {:.0})",
                    rate(persistent),
                    rate(before.persistent),
                    rate(after.persistent),
                    rate(reconnecting),
                    rate(before.reconnecting),
                    rate(after.reconnecting),
                );
                for tick in &ticks {
                    println!(
                        "{backend:<8} {shape:<6} {n:>8} messages, {}: tend delivers {:.0} msg/s: {:.0} % of persistent smtp-source, {:.0} % of the old reference",
                        tick.name,
                        rate(tick.delivery),
                        100.0 * persistent / tick.delivery,
                        100.0 * reconnecting / tick.delivery,
                    );
                }
                if rounds > 1 {
                    for (label, _) in &builds {
                        let mine: Vec<_> = ticks.iter().filter(|t| t.label == *label).collect();
                        let mean = |f: &dyn Fn(&Tick) -> f64| {
                            mine.iter().map(|t| f(t)).sum::<f64>() / mine.len() as f64
                        };
                        let delivery = mean(&|t| t.delivery);
                        let server = match mine[0].server_cpu {
                            Some(_) => format!(
                                ", PostgreSQL's CPU {:.2} s",
                                mean(&|t| t.server_cpu.unwrap_or(f64::NAN))
                            ),
                            None => String::new(),
                        };
                        println!(
                            "{backend:<8} {shape:<6} {n:>8} messages, {label}, mean of {} ticks: delivery {delivery:.2} s ({:.0} msg/s, {:.0} % of persistent smtp-source); over the whole tick, tend's CPU {:.2} s{server}",
                            mine.len(),
                            rate(delivery),
                            100.0 * persistent / delivery,
                            mean(&|t| t.tend_cpu),
                        );
                    }
                }
            }
        }
    }
    let _ = sink.kill();
    let _ = sink.wait();
}

/// One tick of one build.
struct Tick<'a> {
    label: &'a str,
    /// The label, with the round when there are several.
    name: String,
    /// Seconds of delivery, as the tick reports them.
    delivery: f64,
    /// CPU seconds tend used over the whole tick.
    tend_cpu: f64,
    /// CPU seconds the PostgreSQL server used over the tick.
    server_cpu: Option<f64>,
}

/// Where the sink listens, and the tools that talk to it.
struct Sink<'a> {
    sbin: &'a Path,
    lib: &'a Path,
    port: u16,
}

/// Seconds `smtp-source` takes for the same messages, both ways.
struct References {
    /// `-d`: each session stays connected, as tend's pool does.
    persistent: f64,
    /// Without `-d`: a new connection for every message (the reference
    /// this benchmark used before 2026-12-06).
    reconnecting: f64,
}

impl References {
    fn measure(sink: &Sink<'_>, n: usize, size: usize) -> Self {
        Self {
            persistent: reference(sink, n, size, true),
            reconnecting: reference(sink, n, size, false),
        }
    }
}

/// A fresh store in `dir` with `n` customers, each with one notice due at
/// the tick (`burst`: all at one instant; `spread`: each at its own), set
/// up by `tend`; returns the store's URL and what to drop after.
fn prepare(
    dir: &Path,
    backend: &str,
    shape: &str,
    n: usize,
    port: u16,
    tend: &str,
) -> (String, Option<(String, String)>) {
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
    common::run_ok(
        Command::new(tend)
            .args(["import", "customers", "customers.csv"])
            .current_dir(dir),
    );
    (url, database)
}

/// The size of the message tend sends the first customer: the bytes
/// `tend preview --format eml` composes, as delivery would.
fn message_size(dir: &Path, tend: &str) -> usize {
    common::run_ok(
        Command::new(tend)
            .args(["preview", "notice", "--customer", "cust-0000000"])
            .args(["--format", "eml", "--now", "2027-06-01T12:00:00Z"])
            .current_dir(dir),
    )
    .len()
}

/// Seconds `smtp-source` takes to send `n` messages of `size` bytes to the
/// sink over as many sessions as tend uses; `persistent`: each session
/// sends message after message on one connection (`-d`), as tend does.
fn reference(sink: &Sink<'_>, n: usize, size: usize, persistent: bool) -> f64 {
    let started = Instant::now();
    let mut source = Command::new(sink.sbin.join("smtp-source"));
    source.env("LD_LIBRARY_PATH", sink.lib);
    if persistent {
        source.arg("-d");
    }
    let status = source
        .args([
            "-s",
            &SESSIONS.to_string(),
            "-m",
            &n.to_string(),
            "-l",
            &size.to_string(),
        ])
        .args(["-f", "success@acme.example", "-t", "ana@example.com"])
        .arg(format!("127.0.0.1:{}", sink.port))
        .status()
        .expect("run smtp-source");
    assert!(status.success());
    started.elapsed().as_secs_f64()
}
