//! Import throughput and peak memory: generates customer files, runs the
//! release `tend import customers` on them into SQLite and PostgreSQL, and
//! prints customers/s and peak RSS.
//!
//! `cargo bench --bench import [-- SIZE… ] [--backend sqlite|postgres]`
//! (sizes default to 100000 and 1000000). PostgreSQL comes from
//! `TEND_TEST_POSTGRES_URL` (default postgres://postgres@127.0.0.1:5432/postgres);
//! a fresh database is created and dropped for each run.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

fn main() {
    let (sizes, backends) = common::args();
    let dir = tempfile::tempdir().expect("temp dir");
    println!("| customers | backend | file MB | seconds | customers/s | peak RSS MB |");
    println!("|---:|---|---:|---:|---:|---:|");
    for &n in &sizes {
        let file = dir.path().join(format!("customers-{n}.csv"));
        common::generate(&file, n);
        let mb = std::fs::metadata(&file).unwrap().len() as f64 / 1e6;
        for backend in &backends {
            let (secs, rss) = run(dir.path(), &file, backend, n);
            println!(
                "| {n} | {backend} | {mb:.0} | {secs:.2} | {:.0} | {:.1} |",
                n as f64 / secs,
                rss as f64 / 1024.0
            );
        }
    }
}

/// Imports `file` into a fresh store; returns (seconds, peak RSS in KiB).
fn run(dir: &Path, file: &Path, backend: &str, n: usize) -> (f64, u64) {
    let work = dir.join(format!("run-{backend}-{n}"));
    std::fs::create_dir_all(&work).unwrap();
    let (url, database) = common::fresh_store(&work, backend);
    let tend = env!("CARGO_BIN_EXE_tend");
    let status = Command::new(tend)
        .arg("migrate")
        .current_dir(&work)
        .env("TEND__DATABASE__URL", &url)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "migrate failed");
    let mut import = Command::new(tend);
    import
        .args(["import", "customers"])
        .arg(file)
        .current_dir(&work)
        .env("TEND__DATABASE__URL", &url);
    let (secs, peak, summary) = common::measure(import);
    assert_eq!(
        summary.trim(),
        format!("imported {n}, updated 0, rejected 0")
    );
    common::drop_store(database);
    (secs, peak)
}
