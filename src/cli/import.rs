//! `tend import customers|accounts|events FILE`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::clock::Clock;
use crate::config::{ConfigPath, Env};
use crate::import::{self, Defaults, ImportOutcome, Kind, Progress, RowNote};
use crate::store::Upkeep;

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// A .csv or .jsonl file.
    pub file: PathBuf,
    /// The time to record as "now" (RFC 3339).
    #[arg(long, value_parser = super::parse_now)]
    pub now: Option<DateTime<Utc>>,
    /// Reject a contact whose account_id names no stored account, instead
    /// of creating the account with only its id.
    #[arg(long)]
    pub strict: bool,
}

pub async fn run(
    path: &ConfigPath,
    env: &Env,
    kind: Kind,
    args: ImportArgs,
) -> anyhow::Result<ExitCode> {
    let loaded = super::load(path, env, "warn")?;
    let mut defaults = Defaults::from_settings(&loaded.settings).map_err(anyhow::Error::msg)?;
    defaults.strict = args.strict;
    let store = super::open_store(&loaded).await?;
    let bar = Bar::new();
    let shown = args.file.display().to_string();
    let result = import::import_file(
        &store,
        kind,
        &args.file,
        &defaults,
        Clock::from_flag(args.now).now(),
        &bar,
        |RowNote { line, reason, .. }| bar.println(&format!("{shown}:{line}: {reason}")),
    )
    .await;
    bar.finish();
    // A large import leaves the customers without statistics (or with
    // stale ones) until autovacuum comes round; meanwhile PostgreSQL may
    // plan each planning page as a scan of the whole table (2.3 s a page
    // at 10,000,000, measured). Analyze now, as a large pass does.
    if let Ok(o) = &result {
        crate::store::tidy_after_import(&store, o.imported, o.updated).await;
    }
    store.close().await;
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(e) => {
            // What was written stays written: say how much.
            if let Some(so_far) = e.so_far() {
                summarize(so_far);
            }
            return Err(e.into());
        }
    };
    summarize(outcome);
    Ok(if outcome.rejected > 0 {
        ExitCode::from(super::EXIT_INVALID)
    } else {
        ExitCode::SUCCESS
    })
}

fn summarize(o: ImportOutcome) {
    println!(
        "imported {}, updated {}, rejected {}",
        o.imported, o.updated, o.rejected
    );
}

/// A progress bar on a terminal; nothing when stderr is a pipe or file.
struct Bar(ProgressBar);

impl Bar {
    fn new() -> Self {
        if !std::io::stderr().is_terminal() {
            return Self(ProgressBar::hidden());
        }
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        Self(bar)
    }

    /// Prints a line to stderr above the bar.
    fn println(&self, line: &str) {
        if self.0.is_hidden() {
            eprintln!("{line}");
        } else {
            self.0.println(line);
        }
    }
}

impl Progress for Bar {
    fn start(&self, total_bytes: u64) {
        self.0.set_length(total_bytes);
    }
    fn advance(&self, bytes_read: u64) {
        self.0.set_position(bytes_read);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}
