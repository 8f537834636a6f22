//! `tend preview TEMPLATE --customer ID [--now T] [--format text|html|eml] [--force]`:
//! one template rendered for one stored customer, exactly as delivery would
//! render it, sending nothing and writing nothing.

use crate::store::Upkeep;
use std::process::ExitCode;

use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::config::{ConfigPath, Env};
use crate::domain::customer::CustomerId;

#[derive(Debug, Clone, Copy, Default, clap::ValueEnum)]
pub enum PreviewFormat {
    /// The subject and the plain-text part
    #[default]
    Text,
    /// The HTML part, to open in a browser
    Html,
    /// The whole message with its headers, as the mail server would get it
    Eml,
}

#[derive(Debug, clap::Args)]
pub struct PreviewArgs {
    /// The template's name: templates/NAME.md.hbs
    pub template: String,
    /// The customer to render it for
    #[arg(long, value_parser = CustomerId::parse)]
    pub customer: CustomerId,
    /// Render as of this time (RFC 3339) [default: now]
    #[arg(long, value_parser = super::parse_now)]
    pub now: Option<DateTime<Utc>>,
    #[arg(long, value_enum, default_value_t)]
    pub format: PreviewFormat,
    /// Render it even for a customer no step using the template would reach
    #[arg(long)]
    pub force: bool,
}

pub async fn run(path: &ConfigPath, env: &Env, args: PreviewArgs) -> anyhow::Result<ExitCode> {
    let (_, (planner, deliverer), store) =
        super::load_while_connecting(path, env, crate::engine::planner_and_deliverer).await?;
    let now = Clock::from_flag(args.now).now();
    let preview = crate::preview::render(
        &store,
        &planner,
        &deliverer,
        &args.customer,
        &args.template,
        now,
        args.force,
    )
    .await;
    store.close().await;
    let preview = match preview {
        Err(crate::preview::PreviewError::WouldNotGet(who)) => {
            anyhow::bail!("{who}; add --force to preview it for them anyway")
        }
        other => other?,
    };
    if let Some(who) = &preview.would_not_get {
        eprintln!("note: {who}; shown anyway (--force)");
    }
    let rendered = &preview.rendered;
    match args.format {
        PreviewFormat::Text => {
            // On a terminal the subject stands out and the preheader is
            // quiet, as an inbox shows them; piped, plain text.
            use console::style;
            println!(
                "{} {}",
                style("Subject:").bold(),
                style(&rendered.subject).bold()
            );
            if !rendered.preheader.is_empty() {
                println!(
                    "{} {}",
                    style("Preheader:").dim(),
                    style(&rendered.preheader).dim()
                );
            }
            println!("{}", style(format!("To: {}", preview.to)).dim());
            println!();
            print!("{}", rendered.text);
        }
        PreviewFormat::Html => print!("{}", rendered.html),
        PreviewFormat::Eml => print!("{}", String::from_utf8_lossy(&preview.eml)),
    }
    Ok(ExitCode::SUCCESS)
}
