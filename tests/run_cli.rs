//! `tend run` as an operator meets it: it refuses a broken config, starts on
//! a good one, and stops cleanly on SIGTERM.

mod common;

use std::time::Duration;

use common::daemon::Daemon;
use common::{Project, free_port};
use tend::store::Customers;

#[tokio::test]
async fn starts_migrates_and_stops_on_sigterm() {
    let p = Project::new("[log]\nlevel = \"info\"\n");
    // Ready means /readyz answered 200 (the log line may follow a moment later).
    let mut daemon = Daemon::start(&p, free_port(), &[]);
    // The store exists and is migrated while the daemon runs.
    assert_eq!(p.store().await.count_customers().await.unwrap(), 0);
    let status = daemon.stop(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "tend run must exit 0 on SIGTERM");
}

#[test]
fn refuses_to_start_and_lists_every_problem() {
    let p = Project::new("[company]\npostal_address = \"\"\n[http]\nlisten = \"everywhere\"\n");
    let run = p.tend(&["run"]).expect_code(1);
    let err = run.stderr();
    assert!(
        err.contains("config/tend.toml:2: company.postal_address is empty"),
        "{err}"
    );
    assert!(
        err.contains("config/tend.toml:4: http.listen \"everywhere\""),
        "{err}"
    );
    assert!(
        err.contains("tend did not start: 2 problem(s) above"),
        "{err}"
    );
    assert!(
        !p.path().join("data").exists(),
        "nothing is created before the config is valid"
    );
}
