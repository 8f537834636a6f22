//! One template rendered for one stored customer exactly as delivery
//! would render it (their account and its owner, the sender, a sample
//! incident for a notice template), sending nothing and writing nothing:
//! what `tend preview` and the console's preview show.

use chrono::{DateTime, Utc};

use crate::deliver::{Deliverer, Draft};
use crate::domain::customer::{Customer, CustomerId};
use crate::domain::message::{MessageId, Notice, Outgoing};
use crate::domain::reach::exclusion;
use crate::planner::Planner;
use crate::render::Rendered;
use crate::store::{self, Accounts, Customers, Planning};

/// A template as one customer would get it.
pub struct Preview {
    pub customer: Customer,
    /// The address it would go to.
    pub to: String,
    pub rendered: Rendered,
    /// The whole message, headers and all, as the mail server would get it.
    pub eml: Vec<u8>,
    /// Why this customer would never get the template, when no step using
    /// it could reach them (shown anyway, with the reason).
    pub would_not_get: Option<String>,
}

/// Why a template could not be previewed.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error("no customer has id {0:?}; check the id, or import the customer first")]
    UnknownCustomer(String),
    /// No step using the template could reach them, and the preview was
    /// not forced: why (what they lack may be what the template reads).
    #[error("{0}")]
    WouldNotGet(String),
    /// The template cannot be rendered for them: the renderer's words.
    #[error("{0}")]
    Render(String),
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// `template` (its name, with or without `.md.hbs`) for customer `id` as
/// of `now`. When no step using it could reach them, says why instead,
/// unless `force`d; a forced preview that cannot be rendered says both.
pub async fn render(
    store: &(impl Customers + Accounts + Planning),
    planner: &Planner,
    deliverer: &Deliverer,
    id: &CustomerId,
    template: &str,
    now: DateTime<Utc>,
    force: bool,
) -> Result<Preview, PreviewError> {
    let name = template.trim().trim_end_matches(".md.hbs");
    let Some(customer) = store.customer(id).await? else {
        return Err(PreviewError::UnknownCustomer(id.as_str().to_owned()));
    };
    let mut histories = store.planning_history(std::slice::from_ref(id)).await?;
    planner
        .attach_accounts(store, [&customer], &mut histories)
        .await?;
    let history = histories.remove(id).unwrap_or_default();
    // What delivery would give the message: the account, the sender.
    let mut outgoing = [message(&customer, name, planner, now)];
    deliverer.address(store, &mut outgoing).await?;
    let [outgoing] = outgoing;
    // A customer no step using the template can reach would never get it.
    let exclusions: Vec<_> = planner
        .steps_using(name)
        .map(|(playbook, step)| exclusion(playbook, step, &customer, &history, now))
        .collect();
    let would_not_get =
        (!exclusions.is_empty() && exclusions.iter().all(Option::is_some)).then(|| {
            let why: Vec<String> = exclusions
                .iter()
                .flatten()
                .map(ToString::to_string)
                .collect();
            format!(
                "customer {} would not get {name}: {}",
                customer.record.id.as_str(),
                why.join("; and ")
            )
        });
    if let Some(why) = &would_not_get
        && !force
    {
        return Err(PreviewError::WouldNotGet(why.clone()));
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
    let (rendered, _, eml) = deliverer
        .email(&draft, now)
        .map_err(|e| match &would_not_get {
            Some(why) => {
                PreviewError::Render(format!("{why}; and it cannot be rendered for them: {e}"))
            }
            None => PreviewError::Render(e),
        })?;
    Ok(Preview {
        customer,
        to,
        rendered,
        eml,
        would_not_get,
    })
}

/// A message of the first step that sends `template`, for `customer`: what
/// delivery gives an account and a sender to.
fn message(customer: &Customer, template: &str, planner: &Planner, now: DateTime<Utc>) -> Outgoing {
    use crate::domain::message::Status;
    use crate::domain::plan::OccurrenceKey;
    let (playbook, step) = planner
        .steps_using(template)
        .next()
        .map_or((String::new(), String::new()), |(p, s)| {
            (p.name.clone(), s.id.clone())
        });
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
