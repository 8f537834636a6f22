//! The command line: one module per command. Each returns an
//! [`std::process::ExitCode`] or an error whose message tells a person what to do.

mod accounts;
mod broadcast;
mod check;
mod customer;
mod demo;
mod effective;
mod forecast;
mod import;
mod inbound;
mod incident;
mod messages;
mod migrate;
mod preview;
mod report;
mod responses;
mod run;
mod suppressions;
mod table;
mod team;
mod tick;
mod webhooks;

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};

use crate::config::{self, ConfigPath, Env, Loaded};
use crate::store::Upkeep;
use crate::store::{ConnectOptions, DatabaseUrl, Db};

/// Exit code for bad input or failed validation (usage errors exit 2).
pub const EXIT_INVALID: u8 = 1;

#[derive(Debug, Parser)]
#[command(
    name = "tend",
    version,
    about = "Proactive customer success by email: check-ins, tips, reminders and incident notices."
)]
pub struct Cli {
    /// The config file [default: $TEND_CONFIG, else config/tend.toml]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon.
    Run,
    /// Validate config, playbooks and templates; list every problem as file:line: message.
    Check {
        /// Also list every pair of steps of different playbooks that would reach
        /// the same customers (a sample of the store's) close together
        #[arg(long)]
        overlaps: bool,
    },
    /// Print the configuration in force (file and environment layered) as TOML, secrets masked.
    Config,
    /// Apply database migrations.
    Migrate,
    /// Import customers, accounts or events from a .csv or .jsonl file.
    Import {
        #[command(subcommand)]
        what: ImportWhat,
    },
    /// One customer's whole history.
    Customer {
        #[command(subcommand)]
        what: customer::CustomerCommand,
    },
    /// List accounts: the companies customers belong to.
    Accounts(accounts::AccountsArgs),
    /// Suppressions (who is not mailed, for what, why): list, or lift one.
    #[command(args_conflicts_with_subcommands = true)]
    Suppressions {
        #[command(subcommand)]
        what: Option<suppressions::SuppressionsCommand>,
        /// `tend suppressions --customer ID` is `tend suppressions list --customer ID`.
        #[command(flatten)]
        list: suppressions::ListArgs,
    },
    /// Webhook endpoints and alert recipients: waiting, sent, failed, last error.
    Webhooks(webhooks::WebhooksArgs),
    /// The success team: list members and their console roles, or set a console password.
    Team {
        #[command(subcommand)]
        what: team::TeamCommand,
    },
    /// One account: its contacts, owner, messages and responses.
    Account {
        #[command(subcommand)]
        what: accounts::AccountCommand,
    },
    /// Run one full cycle at a given time (plan and deliver what is due), then exit.
    Tick(tick::TickArgs),
    /// Show what would be sent in the coming days, writing nothing.
    Forecast(forecast::ForecastArgs),
    /// List messages in the outbox and their history.
    Messages(messages::MessagesArgs),
    /// Render a template for one customer, sending nothing.
    Preview(preview::PreviewArgs),
    /// List responses: survey answers, clicks, replies, unsubscribes, bounces.
    Responses(responses::ResponsesArgs),
    /// Summarise what came of the mail: statuses, response rates, survey scores.
    Report(report::ReportArgs),
    /// Send one announcement to everyone an audience matches, by the usual windows, cap and suppressions.
    Broadcast(broadcast::BroadcastArgs),
    /// Incidents and scheduled maintenance: open, maintenance, update, resolve, cancel, list.
    Incident {
        #[command(subcommand)]
        what: incident::IncidentCommand,
    },
    /// Take one raw inbound message (a reply, a bounce, a complaint) from a file.
    Inbound(inbound::InboundArgs),
    /// Load the demo customers and events (as `tend run` does on an empty store with demo.load).
    Demo(demo::DemoArgs),
}

#[derive(Debug, Subcommand)]
pub enum ImportWhat {
    /// Upsert customers by id.
    Customers(import::ImportArgs),
    /// Upsert accounts (companies) by id.
    Accounts(import::ImportArgs),
    /// Add events (an event with a known id is skipped).
    Events(import::ImportArgs),
}

/// Parses `--now` (RFC 3339).
pub fn parse_now(raw: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            format!("{raw:?} is not an RFC 3339 time; write one such as 2026-03-01T09:00:00Z")
        })
}

/// Runs the parsed command line.
pub async fn run(cli: Cli, env: Env) -> anyhow::Result<ExitCode> {
    let path = match cli.config {
        Some(p) => ConfigPath::Explicit(p),
        None => match env.config_file() {
            Some(p) => ConfigPath::Explicit(p.into()),
            None => ConfigPath::Default("config/tend.toml".into()),
        },
    };
    match cli.command {
        Command::Check { overlaps: false } => check::run_with_store(&path, &env).await,
        Command::Check { overlaps: true } => check::run_with_overlaps(&path, &env).await,
        Command::Config => effective::run(&path, &env),
        Command::Migrate => migrate::run(&path, &env).await,
        Command::Run => run::run(&path, &env).await,
        Command::Tick(args) => tick::run(&path, &env, args).await,
        Command::Forecast(args) => forecast::run(&path, &env, args).await,
        Command::Messages(args) => messages::run(&path, &env, args).await,
        Command::Preview(args) => preview::run(&path, &env, args).await,
        Command::Inbound(args) => inbound::run(&path, &env, args).await,
        Command::Incident { what } => incident::run(&path, &env, what).await,
        Command::Responses(args) => responses::run(&path, &env, args).await,
        Command::Report(args) => report::run(&path, &env, args).await,
        Command::Demo(args) => demo::run(&path, &env, args).await,
        Command::Accounts(args) => accounts::list(&path, &env, args).await,
        Command::Webhooks(args) => webhooks::run(&path, &env, args).await,
        Command::Team { what } => team::run(&path, &env, what).await,
        Command::Broadcast(args) => broadcast::run(&path, &env, args).await,
        Command::Suppressions { what, list } => {
            let what = what.unwrap_or(suppressions::SuppressionsCommand::List(list));
            suppressions::run(&path, &env, what).await
        }
        Command::Customer { what } => customer::run(&path, &env, what).await,
        Command::Account { what } => accounts::run(&path, &env, what).await,
        Command::Import { what } => match what {
            ImportWhat::Customers(args) => {
                import::run(&path, &env, crate::import::Kind::Customers, args).await
            }
            ImportWhat::Accounts(args) => {
                import::run(&path, &env, crate::import::Kind::Accounts, args).await
            }
            ImportWhat::Events(args) => {
                import::run(&path, &env, crate::import::Kind::Events, args).await
            }
        },
    }
}

/// Loads the configuration and sets up logging; a command's first step.
pub(crate) fn load(path: &ConfigPath, env: &Env, default_level: &str) -> anyhow::Result<Loaded> {
    let loaded = config::load(path, env)?;
    init_logging(&loaded, env, default_level);
    tracing::debug!(settings = ?loaded.settings, secrets = ?loaded.secrets, "configuration loaded");
    Ok(loaded)
}

/// Loads the configuration, then builds from it (`build`: the planner and
/// what goes with it) while the store connects: connecting waits on the
/// server, building is work for a core, and the command needs both. A
/// problem in the files is reported before one with the store, as when the
/// two ran one after the other.
pub(crate) async fn load_while_connecting<T>(
    path: &ConfigPath,
    env: &Env,
    build: impl FnOnce(&Loaded) -> anyhow::Result<T>,
) -> anyhow::Result<(Loaded, T, Db)> {
    let loaded = load(path, env, "warn")?;
    let database = loaded.settings.database.clone();
    let connecting = tokio::spawn(async move { connect_store(&database).await });
    let built = match build(&loaded) {
        Ok(built) => built,
        Err(e) => {
            connecting.abort();
            return Err(e);
        }
    };
    let store = match connecting.await {
        Ok(store) => store?,
        // A panic while connecting is a bug: surface it as one.
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    listen(&store, &loaded);
    Ok((loaded, built, store))
}

/// Connects to the store, applies pending migrations, and has it record
/// the signals someone listens for.
pub(crate) async fn open_store(loaded: &Loaded) -> anyhow::Result<Db> {
    let store = connect_store(&loaded.settings.database).await?;
    listen(&store, loaded);
    Ok(store)
}

/// Has `store` record the signals the alerts and webhooks of `loaded`
/// listen for.
pub(crate) fn listen(store: &impl crate::store::Signals, loaded: &Loaded) {
    let routes = crate::notify::rules::Routes::new(&loaded.settings, &loaded.secrets.webhooks);
    store.listen(routes.interest());
}

/// [`open_store`] from the database settings alone.
async fn connect_store(db: &crate::config::settings::Database) -> anyhow::Result<Db> {
    let url = DatabaseUrl::parse(&db.url)?;
    let options = ConnectOptions {
        max_connections: db.max_connections,
        connect_timeout: db.connect_timeout.as_std(),
        busy_timeout: db.busy_timeout.as_std(),
    };
    let store = Db::connect(&url, &options).await?;
    store.migrate().await?;
    tracing::debug!(database = url.shown(), "store ready");
    Ok(store)
}

fn init_logging(loaded: &Loaded, env: &Env, default_level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = env
        .log_filter()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| {
            // The daemon logs at `log.level`; one-shot commands stay quiet.
            let level = if default_level.is_empty() {
                &loaded.settings.log.level
            } else {
                default_level
            };
            // The scheduler logs every job it creates at info.
            EnvFilter::new(format!("{level},tokio_cron_scheduler=warn"))
        });
    // Colours only on a terminal: a log file or the journal would keep
    // the escape codes as text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let result = match loaded.settings.log.format {
        config::settings::LogFormat::Json => builder.json().try_init(),
        config::settings::LogFormat::Text => builder.try_init(),
    };
    // Already set (a second command in one process, as in tests): keep it.
    drop(result);
}
