//! `tend inbound FILE.eml [--now T]`: takes one raw message (a reply, a
//! bounce, a complaint) as if it had arrived by mail, and says what it was.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::config::{ConfigPath, Env};
use crate::inbound::{self, Rules};
use crate::store::Source;
use crate::store::Upkeep;

#[derive(Debug, clap::Args)]
pub struct InboundArgs {
    /// The raw RFC 5322 message (.eml), or - for standard input
    pub file: PathBuf,
    /// When it arrived (RFC 3339) [default: now]
    #[arg(long, value_parser = super::parse_now)]
    pub now: Option<DateTime<Utc>>,
}

pub async fn run(path: &ConfigPath, env: &Env, args: InboundArgs) -> anyhow::Result<ExitCode> {
    let loaded = super::load(path, env, "warn")?;
    let raw = if args.file.as_os_str() == "-" {
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut raw)
            .context("cannot read the message from standard input")?;
        raw
    } else {
        std::fs::read(&args.file).with_context(|| {
            format!(
                "cannot read {}; give the path of a saved message (.eml)",
                args.file.display()
            )
        })?
    };
    if raw.iter().all(u8::is_ascii_whitespace) {
        anyhow::bail!(
            "{} is empty; give the path of a saved message (.eml)",
            args.file.display()
        );
    }
    let signer = crate::engine::signer(&loaded)?;
    let store = super::open_store(&loaded).await?;
    let now = Clock::from_flag(args.now).now();
    let taken = inbound::take(
        &store,
        &Rules::new(&loaded.settings, &signer),
        &raw,
        Source::File,
        now,
    )
    .await;
    store.close().await;
    println!("{}: {}", args.file.display(), taken?.describe());
    Ok(ExitCode::SUCCESS)
}
