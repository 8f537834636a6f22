//! `tend demo [--now T]`: loads the demo customers and events (what
//! `tend run` does on an empty store when `demo.load` is on), and the words
//! `tend run` prints to say where the demo's mail and links are.

use crate::store::Outbox;
use crate::store::Upkeep;
use std::path::Path;
use std::process::ExitCode;

use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::config::{ConfigPath, Env, Settings};
use crate::demo::DemoOutcome;
use crate::import::Defaults;
use crate::token::Purpose;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Date the demo relative to this time (RFC 3339) [default: now]
    #[arg(long, value_parser = super::parse_now)]
    pub now: Option<DateTime<Utc>>,
}

pub async fn run(path: &ConfigPath, env: &Env, args: DemoArgs) -> anyhow::Result<ExitCode> {
    let loaded = super::load(path, env, "warn")?;
    let store = super::open_store(&loaded).await?;
    let loaded_demo = load(&store, &loaded.settings, Clock::from_flag(args.now).now()).await;
    store.close().await;
    let outcome = loaded_demo?;
    println!(
        "accounts: imported {}, updated {}; customers: imported {}, updated {}; events: imported {}, already there {}",
        outcome.accounts.imported,
        outcome.accounts.updated,
        outcome.customers.imported,
        outcome.customers.updated,
        outcome.events.imported,
        outcome.events.updated
    );
    for (id, shows) in crate::demo::cast() {
        println!("  {id:<14} {shows}");
    }
    if outcome.notices > 0 {
        println!(
            "incident {} opened: {} notices wait in the outbox and go out at the next tick, whatever the hour",
            crate::demo::INCIDENT_ID,
            outcome.notices
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Loads the demo with the configured import defaults.
pub(crate) async fn load(
    store: &crate::store::Db,
    settings: &Settings,
    now: DateTime<Utc>,
) -> anyhow::Result<DemoOutcome> {
    let defaults = Defaults::from_settings(settings).map_err(anyhow::Error::msg)?;
    Ok(crate::demo::load(store, settings, &defaults, now).await?)
}

/// One demo message's links, signed as its email carries them: they work
/// against the running daemon before and after it is sent.
pub(crate) struct Showcase {
    pub customer: String,
    pub step: String,
    pub status: String,
    pub view: String,
    pub answer: Option<String>,
    pub unsubscribe: String,
}

/// The customer whose mail the banner shows: the day-one check-in with a
/// survey.
const SHOWN: &str = "demo-ana";

/// Plans the freshly loaded demo (as the daemon's first pass would), and
/// signs the links of the shown customer's first message.
pub(crate) async fn showcase(
    store: &crate::store::Db,
    loaded: &crate::config::Loaded,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<Showcase>> {
    let planner = crate::engine::planner(loaded)?;
    planner.plan_once(store, now).await?;
    let filter = crate::domain::message::MessageFilter {
        since: None,
        status: None,
        customer: Some(
            crate::domain::customer::CustomerId::parse(SHOWN).map_err(anyhow::Error::msg)?,
        ),
    };
    let Some(first) = store.messages(&filter).await?.into_iter().next() else {
        return Ok(None);
    };
    let Some(message) = store.outgoing(first.id.parse()?).await? else {
        return Ok(None);
    };
    let signer = crate::engine::signer(loaded)?;
    let base = loaded.settings.http.public_url.trim_end_matches('/');
    let link = |purpose: Purpose, value: &str| {
        let token = signer.sign(purpose, message.id, value, now);
        format!("{base}/{}/{token}", purpose.route())
    };
    Ok(Some(Showcase {
        customer: SHOWN.into(),
        step: format!("{}/{}", message.key.playbook, message.key.step),
        status: first.status,
        view: link(Purpose::View, &now.timestamp().to_string()),
        // The scale's last answer: the best on NPS, CSAT and CES.
        answer: message.survey.map(|survey| {
            let top = survey
                .answers()
                .last()
                .map(|(v, _)| v.clone())
                .unwrap_or_default();
            format!("{}/{top}", link(Purpose::Survey, survey.as_str()))
        }),
        unsubscribe: link(Purpose::Unsubscribe, &message.category),
    }))
}

/// What `tend run` prints when it runs the demo: where the mail goes, and
/// what to try next.
pub(crate) fn banner(
    settings: &Settings,
    loaded: Option<DemoOutcome>,
    shown: Option<&Showcase>,
) -> String {
    let outbox = Path::new(&settings.mail.file.dir);
    let outbox = std::path::absolute(outbox).unwrap_or_else(|_| outbox.to_owned());
    let base = settings.http.public_url.trim_end_matches('/');
    // The store may hold anyone when it is not empty: only a fresh load can
    // say who is there.
    let (customers, cast) = match loaded {
        Some(o) => {
            let mut cast = String::new();
            for (id, shows) in crate::demo::cast() {
                cast.push_str(&format!("\n               {id:<14} {shows}"));
            }
            let loaded = format!(
                "loaded {} demo customers of {} companies and {} events into the empty store:",
                o.customers.imported + o.customers.updated,
                o.accounts.imported + o.accounts.updated,
                o.events.imported
            );
            (loaded, cast)
        }
        None => (
            "the store was not empty, so no demo customers were loaded".to_owned(),
            String::new(),
        ),
    };
    let mail = if settings.mail.transport == crate::config::settings::Transport::File {
        format!(
            "{}/*.eml, one file per message as a mail server would receive it",
            outbox.display()
        )
    } else {
        "sent over SMTP (mail.transport = \"smtp\")".into()
    };
    let links = match shown {
        Some(s) => {
            let mut links = format!(
                ", e.g. those of {}'s {} ({} now):\n               view     {}",
                s.customer, s.step, s.status, s.view
            );
            if let Some(answer) = &s.answer {
                links.push_str(&format!("\n               answer   {answer}"));
            }
            links.push_str(&format!("\n               leave    {}", s.unsubscribe));
            links
        }
        None => String::new(),
    };
    let incident = crate::demo::INCIDENT_ID;
    format!(
        "\
tend is running the demo (demo.load = true in the config; set it to false before real customers)
  customers    {customers}{cast}
  mail         {mail}
               The demo opened incident {incident} for the us region: its notices are urgent and are there
               within seconds, whatever the hour. Other mail waits for each customer's working hours
               (Mon-Fri 09:00-17:00 their time); `tend messages` lists what was sent and what waits, and why.
  links        the survey, tracked-link and unsubscribe links in that mail point at {base}
               and work while this daemon runs{links}
  preview      tend preview onboarding/welcome_checkin --customer demo-ana --format html > welcome.html
  forecast     tend forecast --days 14
  incident     tend incident resolve {incident} --message \"Dashboards are fast again.\"
               tend incident open DEMO-1 --title \"EU API latency\" --affects 'customer.attributes.region == \"eu\"'
  health       {base}/readyz   metrics {base}/metrics
  stop         Ctrl-C (or SIGTERM); in-flight mail is finished first
"
    )
}
