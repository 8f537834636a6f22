//! SMTP throughput on one connection, on loopback, into the tests' capture
//! server: lettre's connection as its pool opens it (Nagle on) against
//! tend's pool (TCP_NODELAY), sending the same composed message one at a
//! time, and in batches as delivery hands them over (`send_all`: each
//! message's content goes with the next message's `MAIL`, `RCPT` and
//! `DATA`).
//!
//! `cargo bench --bench send [-- MESSAGES]` (default 300).

#[allow(dead_code)] // The benchmarks use part of the test server.
#[path = "../tests/common/smtp.rs"]
mod smtp;

use std::time::{Duration, Instant};

use lettre::Address;
use lettre::address::Envelope;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::Rset;
use lettre::transport::smtp::extension::ClientId;
use tend::config::settings::Tls;
use tend::deliver::smtp::{SmtpPool, SmtpSettings};

fn message() -> Vec<u8> {
    let body = "Hi Ana,\r\n\r\nA tip about dashboards.\r\n".repeat(40);
    format!(
        "From: success@acme.example\r\nTo: ana@example.com\r\nSubject: Bench\r\nMessage-ID: <b@acme.example>\r\n\r\n{body}"
    )
    .into_bytes()
}

fn report(what: &str, n: usize, took: Duration) {
    println!(
        "{what:<44} {n:>6} messages in {:>8.3} s = {:>8.0} msg/s ({:.2} ms each)",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        took.as_secs_f64() * 1000.0 / n as f64
    );
}

/// Sends at least `n` messages in whole batches; how many, and how long
/// that took.
async fn send_batches(
    pool: &SmtpPool,
    from: &Address,
    batch: &[(&Address, &[u8])],
    n: usize,
) -> (usize, Duration) {
    let started = Instant::now();
    let batches = n.div_ceil(batch.len());
    for _ in 0..batches {
        for (result, _) in pool.send_all(from, batch).await {
            result.unwrap();
        }
    }
    (batches * batch.len(), started.elapsed())
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(300);
    let sink = smtp::SmtpSink::start();
    let from: Address = "success@acme.example".parse().unwrap();
    let to: Address = "ana@example.com".parse().unwrap();
    let bytes = message();
    let envelope = Envelope::new(Some(from.clone()), vec![to.clone()]).unwrap();

    // lettre's own connection, reused with RSET as its pool does.
    let mut conn = AsyncSmtpConnection::connect_tokio1(
        ("127.0.0.1", sink.port()),
        Some(Duration::from_secs(10)),
        &ClientId::Domain("acme.example".into()),
        None,
        None,
    )
    .await
    .unwrap();
    let started = Instant::now();
    for _ in 0..n {
        conn.command(Rset).await.unwrap();
        conn.send(&envelope, &bytes).await.unwrap();
    }
    report(
        "lettre connection (Nagle on), 1 connection",
        n,
        started.elapsed(),
    );
    conn.quit().await.unwrap();

    let pool = SmtpPool::new(SmtpSettings {
        host: "127.0.0.1".into(),
        port: sink.port(),
        tls: Tls::None,
        credentials: None,
        pool_size: 1,
        timeout: Duration::from_secs(10),
        hello: "acme.example".into(),
    });
    let started = Instant::now();
    for _ in 0..n {
        pool.send(&from, &to, &bytes).await.unwrap();
    }
    report(
        "tend pool (TCP_NODELAY), 1 connection",
        n,
        started.elapsed(),
    );

    let batch: Vec<(&Address, &[u8])> = (0..128).map(|_| (&to, bytes.as_slice())).collect();
    let (batched, took) = send_batches(&pool, &from, &batch, n).await;
    report("tend pool, batches of 128, 1 connection", batched, took);

    let pool = std::sync::Arc::new(SmtpPool::new(SmtpSettings {
        host: "127.0.0.1".into(),
        port: sink.port(),
        tls: Tls::None,
        credentials: None,
        pool_size: 8,
        timeout: Duration::from_secs(10),
        hello: "acme.example".into(),
    }));
    let started = Instant::now();
    let many = n * 4;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let pool = std::sync::Arc::clone(&pool);
        let (from, to, bytes) = (from.clone(), to.clone(), bytes.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..many / 8 {
                pool.send(&from, &to, &bytes).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    report(
        "tend pool (TCP_NODELAY), 8 connections",
        many / 8 * 8,
        started.elapsed(),
    );
    let (batched_on_8, took) = send_batches(&pool, &from, &batch, many).await;
    report(
        "tend pool, batches of 128, 8 connections",
        batched_on_8,
        took,
    );
    pool.close().await;
    assert_eq!(
        sink.received().len(),
        n * 2 + batched + many / 8 * 8 + batched_on_8,
        "every message arrived"
    );
}
