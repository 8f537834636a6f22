//! `tend run` as an operator meets it: it refuses a broken config, starts on
//! a good one, and stops cleanly on SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::Project;
use tend::store::Store;

#[tokio::test]
async fn starts_migrates_and_stops_on_sigterm() {
    let p = Project::new("[log]\nlevel = \"info\"\n");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tend"))
        .arg("run")
        .current_dir(p.path())
        .env_clear()
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Wait for the readiness line (bounded: a hung start fails the test).
    let (lines, received) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let mut seen = Vec::new();
    loop {
        match received.recv_timeout(Duration::from_secs(20)) {
            Ok(line) if line.contains("tend is running") => break,
            Ok(line) => seen.push(line),
            Err(_) => panic!(
                "tend run did not report that it is running; it logged:\n{}",
                seen.join("\n")
            ),
        }
    }
    // The store exists and is migrated while the daemon runs.
    assert_eq!(p.store().await.count_customers().await.unwrap(), 0);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
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
