//! Broadcasts and the read API at scale: SIZE generated customers
//! (default 100,000) in a fresh store, then, with the release binary:
//!
//! - `tend broadcast` to 1 % of them (`customer.health == 7`) and to all
//!   (`true`), each first as the forecast (nothing written), then with
//!   `--yes` (their messages written to the outbox);
//! - every message read back through the store's read-API pages
//!   (`messages_page`, 1,000 rows a page, following the cursor), as a
//!   warehouse sync would.
//!
//! `cargo bench --bench broadcast [-- SIZE] [--backend sqlite|postgres]`

mod common;

use std::process::Command;
use std::time::Instant;

use tend::domain::feed::{MAX_PAGE, Position};
use tend::domain::message::MessageFilter;
use tend::store::{ConnectOptions, DatabaseUrl, Db, Outbox, Upkeep};

const TEMPLATE: &str = "+++\nsubject = \"Version 3 is out, {{customer.first_name}}\"\n+++\nHi {{customer.first_name}}, version 3 is out.\n";

fn main() {
    let (sizes, backends) = common::args();
    let n = if std::env::args().skip(1).any(|a| a.parse::<usize>().is_ok()) {
        sizes[0]
    } else {
        100_000
    };
    let tend = env!("CARGO_BIN_EXE_tend");
    for backend in &backends {
        let work = tempfile::tempdir().unwrap();
        let dir = work.path();
        std::fs::create_dir_all(dir.join("templates")).unwrap();
        std::fs::create_dir_all(dir.join("config/playbooks")).unwrap();
        std::fs::write(dir.join("templates/release.md.hbs"), TEMPLATE).unwrap();
        let (url, database) = common::fresh_store(dir, backend);
        std::fs::write(
            dir.join("config/tend.toml"),
            format!("[database]\nurl = \"{url}\"\n[mail.file]\ndir = \"outbox\"\n"),
        )
        .unwrap();
        common::generate(&dir.join("customers.csv"), n);
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
        let now = "2026-12-07T10:00:00Z";
        for (id, audience) in [("some", "customer.health == 7"), ("all", "true")] {
            for send in [false, true] {
                let mut run = Command::new(tend);
                run.args([
                    "broadcast",
                    "release",
                    "--audience",
                    audience,
                    "--id",
                    id,
                    "--now",
                    now,
                    "--format",
                    "json",
                ])
                .current_dir(dir);
                if send {
                    run.arg("--yes");
                }
                let (secs, rss, stdout) = common::measure(run);
                let reach: serde_json::Value = serde_json::from_str(&stdout).unwrap();
                println!(
                    "{backend:<8} {n:>8} customers, audience {audience:<22} {:<8}: {secs:.2} s, peak RSS {} MB; matched {}, reaches {} ({} at start), queued {}",
                    if send { "--yes" } else { "forecast" },
                    rss / 1024,
                    reach["matched"],
                    reach["reaches"],
                    reach["at_start"],
                    reach["queued"],
                );
            }
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let options = ConnectOptions {
                max_connections: 2,
                connect_timeout: std::time::Duration::from_secs(10),
                busy_timeout: std::time::Duration::from_secs(5),
            };
            let store = Db::connect(&DatabaseUrl::parse(&url).unwrap(), &options)
                .await
                .unwrap();
            let clock = Instant::now();
            let (mut rows, mut pages, mut at) = (0usize, 0usize, Position::default());
            loop {
                let page = store
                    .messages_page(&MessageFilter::default(), at, MAX_PAGE)
                    .await
                    .unwrap();
                rows += page.data.len();
                pages += 1;
                at = Position::decode(&page.next_cursor).unwrap();
                if !page.has_more {
                    break;
                }
            }
            let secs = clock.elapsed().as_secs_f64();
            println!(
                "{backend:<8} {n:>8} customers: read {rows} messages in {pages} pages of {MAX_PAGE} in {secs:.2} s ({:.0} rows/s, {:.1} ms a page)",
                rows as f64 / secs,
                secs * 1000.0 / pages as f64
            );
            store.close().await;
        });
        common::drop_store(database);
    }
}
