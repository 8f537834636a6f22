//! `tend preview TEMPLATE --customer ID [--now T] [--format text|html|eml] [--force]`:
//! one template rendered for one stored customer, exactly as delivery would
//! render it, sending nothing and writing nothing.

use crate::store::Planning;
use crate::store::{Customers, Upkeep};
use std::process::ExitCode;

use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::config::{ConfigPath, Env};
use crate::deliver::Draft;
use crate::domain::customer::CustomerId;
use crate::domain::message::MessageId;
use crate::domain::message::Notice;
use crate::domain::reach::exclusion;

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
    let name = args.template.trim_end_matches(".md.hbs");
    let customer = store.customer(&args.customer).await;
    let histories = store
        .planning_history(std::slice::from_ref(&args.customer))
        .await;
    let read = match (customer, histories) {
        (Ok(Some(customer)), Ok(mut histories)) => {
            let attached = planner
                .attach_accounts(&store, [&customer], &mut histories)
                .await;
            let history = histories.remove(&args.customer).unwrap_or_default();
            // What delivery would give the message: the account, the sender.
            let mut outgoing = [preview_message(&customer, name, &planner)];
            let addressed = deliverer.address(&store, &mut outgoing).await;
            attached
                .and(addressed)
                .map(|()| Some((customer, history, outgoing)))
        }
        (Ok(None), _) => Ok(None),
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    store.close().await;
    let Some((customer, history, [outgoing])) = read? else {
        anyhow::bail!(
            "no customer has id {:?}; check the id, or import the customer first",
            args.customer.as_str()
        );
    };
    let now = Clock::from_flag(args.now).now();
    // A customer no step using the template can reach would never get it:
    // say why, rather than fail on what the template reads.
    let exclusions: Vec<_> = planner
        .steps_using(name)
        .map(|(playbook, step)| exclusion(playbook, step, &customer, &history, now))
        .collect();
    if !exclusions.is_empty() && exclusions.iter().all(Option::is_some) {
        let why: Vec<String> = exclusions
            .iter()
            .flatten()
            .map(ToString::to_string)
            .collect();
        let who = format!(
            "customer {} would not get {name}: {}",
            customer.record.id.as_str(),
            why.join("; and ")
        );
        if !args.force {
            anyhow::bail!("{who}; add --force to preview it for them anyway");
        }
        eprintln!("note: {who}; shown anyway (--force)");
    }
    let (category, survey) = planner.step_using(name).unwrap_or(("preview", None));
    let id = MessageId::new();
    let message_id = format!("{}@preview.invalid", id.0.simple());
    let to = customer.record.email.to_string();
    // A notice template previews with a sample incident.
    let sample = name.starts_with("incidents/").then(|| Notice {
        incident_id: "INC-1".into(),
        incident: crate::render::context::sample_incident(),
        in_reply_to: None,
    });
    let draft = Draft {
        id,
        customer: &customer,
        template: name,
        category,
        survey,
        to: &to,
        message_id: &message_id,
        notice: sample.as_ref(),
        account: outgoing.account.as_deref(),
        sender: outgoing.sender.as_ref(),
    };
    let (rendered, _, bytes) = deliverer.email(&draft, now).map_err(anyhow::Error::msg)?;
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
            println!("{}", style(format!("To: {to}")).dim());
            println!();
            print!("{}", rendered.text);
        }
        PreviewFormat::Html => print!("{}", rendered.html),
        PreviewFormat::Eml => print!("{}", String::from_utf8_lossy(&bytes)),
    }
    Ok(ExitCode::SUCCESS)
}

/// A message of the first step that sends `template`, for `customer`: what
/// delivery gives an account and a sender to.
fn preview_message(
    customer: &crate::domain::customer::Customer,
    template: &str,
    planner: &crate::planner::Planner,
) -> crate::domain::message::Outgoing {
    use crate::domain::message::{Outgoing, Status};
    use crate::domain::plan::OccurrenceKey;
    let (playbook, step) = planner
        .steps_using(template)
        .next()
        .map_or((String::new(), String::new()), |(p, s)| {
            (p.name.clone(), s.id.clone())
        });
    let now = chrono::Utc::now();
    Outgoing {
        id: MessageId::new(),
        customer: customer.clone(),
        key: OccurrenceKey {
            playbook,
            step,
            occurrence: String::new(),
        },
        kind: crate::domain::playbook::Kind::Checkin,
        category: String::new(),
        template: template.to_owned(),
        survey: None,
        notice: None,
        urgent: false,
        status: Status::Planned,
        to: customer.record.email.to_string(),
        message_id: String::new(),
        due_at: now,
        not_before: now,
        expires_at: now,
        attempts: 0,
        first_attempt_at: None,
        suppressed: None,
        account: None,
        sender: None,
        planned_for: None,
    }
}
