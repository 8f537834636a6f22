//! Webhooks and alerts, measured through the release binary.
//!
//! Throughput: N customers each get one check-in while a webhook endpoint
//! listening for `message.sent` is down (it answers 503): that tick sends
//! the mail, records N signals and routes them. The endpoint comes back and
//! the next tick drains its backlog: N events POSTed one after another in
//! order (signed, each settled), to a receiver on loopback in this process
//! that answers 200. Printed: events/s of the drain, and the first tick's
//! time beside the same tick on a fresh store with no endpoint (what
//! recording and routing the signals costs delivery).
//!
//! Alert delay: `tend run` with the file transport; a detractor's survey
//! answer is POSTed 20 times (each a new answer, so a new alert), and the
//! time from the POST's reply to the alert's file appearing is timed.
//!
//! `cargo bench --bench webhooks [-- N] [--backend sqlite|postgres]`
//! (N defaults to 20000).

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tend::domain::message::MessageId;
use tend::token::{Purpose, Signer};

use common::{KEY, PLAYBOOK, TEMPLATE};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A receiver on loopback: counts requests, answers with `status`.
struct Receiver {
    port: u16,
    status: Arc<AtomicU16>,
    hits: Arc<AtomicU64>,
}

impl Receiver {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let status = Arc::new(AtomicU16::new(200));
        let hits = Arc::new(AtomicU64::new(0));
        let (s, h) = (Arc::clone(&status), Arc::clone(&hits));
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = axum::Router::new().fallback(move || {
                    let (s, h) = (Arc::clone(&s), Arc::clone(&h));
                    async move {
                        h.fetch_add(1, Ordering::Relaxed);
                        axum::http::StatusCode::from_u16(s.load(Ordering::Relaxed)).unwrap()
                    }
                });
                axum::serve(listener, app).await.unwrap();
            });
        });
        Self { port, status, hits }
    }
}

fn project(dir: &Path, url: &str, n: usize, hook: Option<u16>, port: u16) {
    std::fs::create_dir_all(dir.join("config/playbooks")).unwrap();
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    std::fs::write(dir.join("config/playbooks/checkin.toml"), PLAYBOOK).unwrap();
    std::fs::write(dir.join("templates/nps.md.hbs"), TEMPLATE).unwrap();
    std::fs::write(dir.join("hook.secret"), SECRET).unwrap();
    let webhook = hook
        .map(|port| {
            format!(
                "[[webhook]]\nname = \"sink\"\nurl = \"http://127.0.0.1:{port}/hook\"\nevents = [\"message.sent\"]\nsecret_file = \"hook.secret\"\nmax_backlog = {}\n",
                n + 1
            )
        })
        .unwrap_or_default();
    std::fs::write(
        dir.join("config/tend.toml"),
        format!(
            "[database]\nurl = \"{url}\"\n[mail]\ntransport = \"file\"\n[mail.file]\ndir = \"outbox\"\n\
             [http]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\nrate_per_minute = 0\n[security]\nsecret = \"{KEY}\"\n\
             [delivery]\nwindow = {{ days = \"all\", start = \"00:00\", end = \"23:59\" }}\ncap = {{ max = 100, per = \"1d\" }}\n\
             [[team]]\nid = \"maria\"\nname = \"Maria Costa\"\nemail = \"maria@acme.example\"\n{webhook}"
        ),
    )
    .unwrap();
    let rows: String = (0..n)
        .map(|i| format!("cust-{i:07},user{i}@example.com,Person {i},UTC,pro,2026-05-01T10:00:00Z,acct-{:05}\n", i % 1000))
        .collect();
    std::fs::write(
        dir.join("customers.csv"),
        format!("id,email,name,timezone,plan,signup_at,account_id\n{rows}"),
    )
    .unwrap();
    std::fs::write(dir.join("accounts.csv"), {
        let rows: String = (0..1000)
            .map(|i| format!("acct-{i:05},Company {i},maria\n"))
            .collect();
        format!("id,name,owner\n{rows}")
    })
    .unwrap();
}

fn run(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tend"))
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
}

/// Seconds one `tend tick --now NOW` takes, and its own account of them.
fn tick(dir: &Path, now: &str) -> (f64, String) {
    let started = Instant::now();
    let out = run(dir, &["tick", "--now", now]);
    let said = common::between(&out, "; ", ")").to_owned();
    (started.elapsed().as_secs_f64(), said)
}

fn main() {
    let (sizes, backends) = common::args();
    let n = if std::env::args().skip(1).any(|a| a.parse::<usize>().is_ok()) {
        sizes[0]
    } else {
        20_000
    };
    let receiver = Receiver::start();
    for backend in &backends {
        // The same first tick with nobody listening.
        let plain = tempfile::tempdir().unwrap();
        let (url, database) = common::fresh_store(plain.path(), backend);
        project(plain.path(), &url, n, None, common::free_port());
        run(plain.path(), &["import", "accounts", "accounts.csv"]);
        run(plain.path(), &["import", "customers", "customers.csv"]);
        let (unheard, unheard_said) = tick(plain.path(), "2026-06-01T12:00:00Z");
        common::drop_store(database);

        let work = tempfile::tempdir().unwrap();
        let dir = work.path();
        let (url, database) = common::fresh_store(dir, backend);
        project(dir, &url, n, Some(receiver.port), common::free_port());
        run(dir, &["import", "accounts", "accounts.csv"]);
        run(dir, &["import", "customers", "customers.csv"]);
        receiver.status.store(503, Ordering::Relaxed);
        let before = receiver.hits.load(Ordering::Relaxed);
        let (heard, heard_said) = tick(dir, "2026-06-01T12:00:00Z");
        assert_eq!(receiver.hits.load(Ordering::Relaxed) - before, 1);
        receiver.status.store(200, Ordering::Relaxed);
        let before = receiver.hits.load(Ordering::Relaxed);
        let (drain, _) = tick(dir, "2026-06-01T15:00:00Z");
        let posted = receiver.hits.load(Ordering::Relaxed) - before;
        assert_eq!(posted, n as u64, "every event once");
        println!(
            "{backend:<8} {n:>6} events: drained in {drain:.2} s = {:.0} events/s to one endpoint, in order; the tick that sent the {n} messages took {heard:.2} s with the endpoint listening ({heard_said}), {unheard:.2} s with none ({unheard_said})",
            n as f64 / drain
        );
        alert_delay(dir, backend);
        common::drop_store(database);
    }
}

/// The delay from a detractor's survey POST to its alert's file.
fn alert_delay(dir: &Path, backend: &str) {
    let messages: serde_json::Value = serde_json::from_str(&run(
        dir,
        &["messages", "--customer", "cust-0000000", "--format", "json"],
    ))
    .unwrap();
    let id: MessageId = messages[0]["id"].as_str().unwrap().parse().unwrap();
    let path = format!(
        "/r/{}/3",
        Signer::new(KEY.as_bytes()).sign(Purpose::Survey, id, "nps", chrono::Utc::now())
    );
    let text = std::fs::read_to_string(dir.join("config/tend.toml")).unwrap();
    let port: u16 = common::between(&text, "listen = \"127.0.0.1:", "\"")
        .parse()
        .unwrap();
    let mut daemon = common::start_daemon(env!("CARGO_BIN_EXE_tend"), dir, port);
    // Let the first passes (the backlog above is settled) go by.
    std::thread::sleep(Duration::from_secs(3));
    let notes = || {
        std::fs::read_dir(dir.join("outbox"))
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("note-"))
            .count()
    };
    let mut delays = Vec::new();
    for _ in 0..20 {
        let before = notes();
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let body = "answer=3&comment=too+slow";
        std::io::Write::write_all(
            &mut stream,
            format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .unwrap();
        let mut reply = String::new();
        std::io::Read::read_to_string(&mut stream, &mut reply).unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        let answered = Instant::now();
        while notes() == before {
            assert!(
                answered.elapsed() < Duration::from_secs(60),
                "no alert within a minute"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        delays.push(answered.elapsed().as_secs_f64() * 1000.0);
    }
    let _ = Command::new("kill").arg(daemon.id().to_string()).status();
    let _ = daemon.wait();
    delays.sort_by(f64::total_cmp);
    println!(
        "{backend:<8} survey POST answered -> its alert written: median {:.1} ms, max {:.1} ms over {} answers",
        delays[delays.len() / 2],
        delays[delays.len() - 1],
        delays.len()
    );
}
