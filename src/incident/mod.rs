//! Running incidents and scheduled maintenance: opening one finds the
//! customers its selector affects (evaluated once, when it opens, with
//! each customer's account, and recorded) and puts a notice for each into
//! the outbox. A contact who matches makes their account affected: the
//! account's contacts in `incidents.roles` are told (else its admins, else
//! everyone), once each; a person without an account is told themselves.
//! Updates with
//! `notify` and the resolution go to exactly those who got the first
//! notice, in its thread. Delivery sends them like any message (incident
//! notices at once: no window, no cap; suppression still applies).
//! A maintenance also moves by its own clock ([`advance`], each planning
//! pass): it starts at `starts_at`, when announcements still waiting
//! expire, and completes at `ends_at`; one called off ([`cancel`]) tells
//! only those already told. The decisions are in `domain::incident`; this
//! module does the I/O.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use chrono::{DateTime, Duration, Utc};

use crate::config::settings::Settings;
use crate::domain::account::{Account, AccountFacts, AccountId, TeamMember};
use crate::domain::condition::{Condition, Facts, Scope, compile_checked};
use crate::domain::customer::{Customer, CustomerId};
use crate::domain::incident::{
    CATEGORY, Incident, IncidentKind, IncidentStatus, MAINTENANCE_CATEGORY, NoticeSpec, Transition,
    announcements, started_reason, transitions, withdrawn_reason,
};
use crate::domain::message::NewMessage;
use crate::render::name::TemplateNameError;
use crate::store::{self, Accounts, Customers, Incidents};

/// Customers read and evaluated per transaction when an incident opens.
const PAGE: u32 = 2000;

/// Notices are kept this long past their time before they expire unsent.
const NOTICE_LIFETIME: Duration = Duration::days(3);

/// Why an incident command did nothing. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum IncidentError {
    #[error(
        "an incident {0:?} exists already; send news with `tend incident update {0}`, or pick another id"
    )]
    Exists(String),
    #[error("no incident has id {0:?}; `tend incident list` shows them")]
    Unknown(String),
    #[error("incident {0:?} was closed at {1}; nothing was sent")]
    Closed(String, String),
    #[error(
        "{0:?} cannot be an incident id; use letters, digits, '.', '_' and '-' (such as INC-42)"
    )]
    BadId(String),
    #[error("--affects: {0}; nothing was sent")]
    BadSelector(String),
    #[error("--template: {0}; nothing was sent")]
    Template(TemplateNameError),
    #[error("{0}")]
    Bad(String),
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// What opens: an incident now, or a maintenance at `starts_at`.
#[derive(Debug, Clone)]
pub struct Opening {
    pub id: String,
    pub kind: IncidentKind,
    pub title: String,
    pub affects: String,
    pub template: Option<String>,
    pub message: String,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
}

/// What a command put into the outbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Customers the selector matched (on opening).
    pub affected: u64,
    pub notices: u64,
}

/// The default templates, under the templates folder.
pub mod template {
    pub const OPEN: &str = "incidents/notice";
    pub const UPDATE: &str = "incidents/update";
    pub const RESOLVED: &str = "incidents/resolved";
    pub const MAINTENANCE: &str = "incidents/maintenance";
    pub const COMPLETED: &str = "incidents/completed";
    pub const CANCELLED: &str = "incidents/cancelled";
}

/// What a maintenance's history says when its own clock moved it.
const STARTED_BY_CLOCK: &str = "Started at its scheduled time.";
/// The words of a maintenance that completed by itself, in its history and
/// in the completion notice when `maintenance.notify_on_completion` is on.
const COMPLETED_BY_CLOCK: &str = "It ended at its scheduled time.";

/// What the commands need of the configuration.
pub struct Context<'a> {
    pub settings: &'a Settings,
    /// The domain of `mail.from`, for Message-IDs.
    pub domain: String,
}

impl<'a> Context<'a> {
    pub fn new(settings: &'a Settings) -> Self {
        let domain = crate::config::parse_mailbox(&settings.mail.from)
            .ok()
            .and_then(|(_, from)| from.as_str().rsplit_once('@').map(|(_, d)| d.to_owned()))
            .unwrap_or_else(|| "localhost".into());
        Self { settings, domain }
    }

    /// A category's place in `delivery.priority` (one not listed comes last).
    pub fn priority(&self, category: &str) -> i32 {
        let list = &self.settings.delivery.priority;
        let at = list
            .iter()
            .position(|c| c == category)
            .unwrap_or(list.len());
        i32::try_from(at).unwrap_or(i32::MAX)
    }

    /// Checks that `name` names a template inside the templates folder.
    fn template(&self, name: &str) -> Result<(), IncidentError> {
        let dir = Path::new(&self.settings.paths.templates);
        crate::render::name::find(dir, name).map_err(IncidentError::Template)
    }
}

/// Opens an incident (or schedules a maintenance): records it, finds who
/// it affects, and puts their notices into the outbox.
pub async fn open(
    store: &(impl Incidents + Customers + Accounts),
    cx: &Context<'_>,
    opening: &Opening,
    now: DateTime<Utc>,
) -> Result<Outcome, IncidentError> {
    if !crate::domain::incident::valid_id(&opening.id) {
        return Err(IncidentError::BadId(opening.id.clone()));
    }
    if opening.title.trim().is_empty() {
        return Err(IncidentError::Bad(
            "--title is empty; give the incident a title customers will read".into(),
        ));
    }
    let selector = compile_checked(&opening.affects).map_err(IncidentError::BadSelector)?;
    let default = match opening.kind {
        IncidentKind::Incident => template::OPEN,
        IncidentKind::Maintenance => template::MAINTENANCE,
    };
    // As in playbooks, a name given with its file ending means the same.
    let template = opening
        .template
        .as_deref()
        .map_or(default, |given| given.trim().trim_end_matches(".md.hbs"));
    let template = template.to_owned();
    cx.template(&template)?;
    let (status, leads) = match opening.kind {
        IncidentKind::Incident => (IncidentStatus::Investigating, None),
        IncidentKind::Maintenance => {
            let (Some(starts), Some(ends)) = (opening.starts_at, opening.ends_at) else {
                return Err(IncidentError::Bad(
                    "a maintenance needs --starts and --ends".into(),
                ));
            };
            if ends <= starts {
                return Err(IncidentError::Bad(
                    "--ends must be after --starts (ends_at after starts_at)".into(),
                ));
            }
            if starts <= now {
                return Err(IncidentError::Bad(format!(
                    "--starts {} has passed; announce a maintenance before it starts, or open an incident",
                    starts.to_rfc3339()
                )));
            }
            let m = &cx.settings.maintenance;
            let leads: Vec<Duration> = m.announce.iter().map(|s| s.as_chrono()).collect();
            (
                IncidentStatus::Scheduled,
                Some(announcements(
                    starts,
                    &leads,
                    m.urgent_within.as_chrono(),
                    now,
                )),
            )
        }
    };
    let incident = Incident {
        id: opening.id.clone(),
        kind: opening.kind,
        title: opening.title.clone(),
        status,
        affects: opening.affects.clone(),
        template: template.clone(),
        message: opening.message.clone(),
        starts_at: opening.starts_at,
        ends_at: opening.ends_at,
        opened_at: now,
        resolved_at: None,
    };
    if !store.create_incident(&incident).await? {
        return Err(IncidentError::Exists(opening.id.clone()));
    }
    let specs: Vec<NoticeSpec<'_>> = match &leads {
        None => vec![NoticeSpec {
            incident: &incident,
            step: "open".into(),
            template: &template,
            message: &incident.message,
            due_at: now,
            urgent: true,
            expires_at: now + NOTICE_LIFETIME,
            priority: cx.priority(CATEGORY),
            domain: &cx.domain,
        }],
        Some(leads) => leads
            .iter()
            .map(|(step, at, urgent)| NoticeSpec {
                incident: &incident,
                step: step.clone(),
                template: &template,
                message: &incident.message,
                due_at: *at,
                urgent: *urgent,
                // An announcement after the start would be news of the past.
                expires_at: opening.starts_at.unwrap_or(*at),
                priority: cx.priority(MAINTENANCE_CATEGORY),
                domain: &cx.domain,
            })
            .collect(),
    };
    let mut outcome = Outcome::default();
    let mut affected = Affected::new(&selector, now);
    while let Some(page) = affected.next_page(store, cx).await? {
        // A page with nobody affected writes nothing (on SQLite a write
        // transaction would take the write lock for nothing).
        if page.is_empty() {
            continue;
        }
        let ids: Vec<CustomerId> = page.iter().map(|c| c.record.id.clone()).collect();
        let notices: Vec<NewMessage> = page
            .iter()
            .flat_map(|c| {
                let to = c.record.email.to_string();
                specs
                    .iter()
                    .map(move |spec| spec.message(&c.record.id, &to, None))
            })
            .collect();
        outcome.affected += ids.len() as u64;
        outcome.notices += store
            .record_notices(&incident.id, &ids, &notices, now)
            .await?;
    }
    Ok(outcome)
}

/// The customers an incident's selector affects, read a page at a time:
/// those it matches, and for a matched account its contacts in the
/// roles incidents go to, each account once.
struct Affected<'a> {
    selector: &'a Condition,
    /// What of the selector the store can check itself: customers it
    /// rules out are never read (a selector on a region reads that
    /// region's).
    prefilter: Option<crate::domain::prefilter::Prefilter>,
    after: Option<CustomerId>,
    /// Accounts already told: a second matching contact adds no one.
    told: HashSet<AccountId>,
    now: DateTime<Utc>,
    done: bool,
}

impl<'a> Affected<'a> {
    fn new(selector: &'a Condition, now: DateTime<Utc>) -> Self {
        Self {
            selector,
            prefilter: selector.prefilter(),
            after: None,
            told: HashSet::new(),
            now,
            done: false,
        }
    }

    /// The affected customers of the next page of customers (often none),
    /// or `None` when every customer was read.
    async fn next_page(
        &mut self,
        store: &(impl Customers + Accounts),
        cx: &Context<'_>,
    ) -> Result<Option<Vec<Customer>>, IncidentError> {
        if self.done {
            return Ok(None);
        }
        let page = store
            .customers_page(self.after.as_ref(), PAGE, self.prefilter.as_ref())
            .await?;
        let Some(last) = page.last() else {
            self.done = true;
            return Ok(None);
        };
        self.after = Some(last.record.id.clone());
        let page = with_accounts(store, page, &cx.settings.team).await?;
        let matched = matching(self.selector, page, self.now).await;
        let chosen =
            recipients(store, matched, &cx.settings.incidents.roles, &mut self.told).await?;
        Ok(Some(chosen))
    }
}

/// Who an incident with selector `affects` would reach now, without
/// recording anything: how many, and the first `sample` of them.
pub async fn preview(
    store: &(impl Customers + Accounts),
    cx: &Context<'_>,
    affects: &str,
    now: DateTime<Utc>,
    sample: usize,
) -> Result<(u64, Vec<Customer>), IncidentError> {
    let selector = compile_checked(affects).map_err(IncidentError::BadSelector)?;
    let mut affected = Affected::new(&selector, now);
    let (mut count, mut shown) = (0u64, Vec::new());
    while let Some(page) = affected.next_page(store, cx).await? {
        count += page.len() as u64;
        let room = sample.saturating_sub(shown.len());
        shown.extend(page.into_iter().take(room));
    }
    Ok((count, shown))
}

/// Each customer of a page with their account (their own when they have
/// none) and its owner, as conditions read `account`.
pub(crate) async fn with_accounts(
    store: &impl Accounts,
    page: Vec<Customer>,
    team: &[TeamMember],
) -> Result<Vec<(Customer, AccountFacts)>, IncidentError> {
    let ids: Vec<AccountId> = page
        .iter()
        .filter_map(|c| c.record.account_id.clone())
        .collect();
    let accounts = if ids.is_empty() {
        HashMap::new()
    } else {
        store.accounts_of(&ids).await?
    };
    Ok(page
        .into_iter()
        .map(|c| {
            let account = c
                .record
                .account_id
                .as_ref()
                .and_then(|id| accounts.get(id).cloned())
                .unwrap_or_else(|| Account::of_contact(&c));
            (c, AccountFacts::with_team(account, team))
        })
        .collect())
}

/// Who hears of an incident, given the customers the selector matched: a
/// person without an account themselves; for a contact, their account's
/// contacts in `roles` (with the fallback of `domain::account::recipients`),
/// once per account (`told` keeps the accounts already reached).
async fn recipients(
    store: &impl Accounts,
    matched: Vec<Customer>,
    roles: &[String],
    told: &mut HashSet<AccountId>,
) -> Result<Vec<Customer>, IncidentError> {
    let mut chosen = Vec::new();
    let mut accounts = Vec::new();
    for customer in matched {
        match customer.record.account_id.clone() {
            None => chosen.push(customer),
            Some(account) => {
                if told.insert(account.clone()) {
                    accounts.push(account);
                }
            }
        }
    }
    if accounts.is_empty() {
        return Ok(chosen);
    }
    let contacts = store.contacts_of_accounts(&accounts).await?;
    for account in &accounts {
        let Some(contacts) = contacts.get(account) else {
            continue;
        };
        chosen.extend(
            crate::domain::account::recipients(contacts, roles)
                .into_iter()
                .cloned(),
        );
    }
    Ok(chosen)
}

/// The customers of a page the selector matches, evaluated on every core
/// (off the async threads: evaluating is the CPU-heavy part of opening).
pub(crate) async fn matching(
    selector: &Condition,
    page: Vec<(Customer, AccountFacts)>,
    now: DateTime<Utc>,
) -> Vec<Customer> {
    let selector = selector.clone();
    let evaluated = tokio::task::spawn_blocking(move || {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let size = page.len().div_ceil(threads).max(1);
        let verdicts: Vec<bool> = std::thread::scope(|scope| {
            let handles: Vec<_> = page
                .chunks(size)
                .map(|chunk| {
                    let selector = &selector;
                    scope.spawn(move || {
                        chunk
                            .iter()
                            .map(|(c, account)| affects(selector, c, account, now))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| {
                    h.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        });
        page.into_iter()
            .zip(verdicts)
            .filter_map(|((c, _), hit)| hit.then_some(c))
            .collect::<Vec<_>>()
    })
    .await;
    evaluated.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// Whether the selector matches a customer. An attribute the customer
/// lacks means it does not (the selector is about customers who have it).
fn affects(
    selector: &Condition,
    customer: &Customer,
    account: &AccountFacts,
    now: DateTime<Utc>,
) -> bool {
    let facts = Facts {
        customer,
        account: Some(account),
        now,
        events: &[],
        sent: &Default::default(),
    };
    Scope::reading(&facts, selector.reads())
        .is_ok_and(|scope| selector.holds_for(&scope, customer.record.id.as_str()))
}

/// An open incident, or why a command cannot go on with it.
async fn open_incident(store: &impl Incidents, id: &str) -> Result<Incident, IncidentError> {
    let incident = store
        .incident(id)
        .await?
        .ok_or_else(|| IncidentError::Unknown(id.into()))?;
    if let Some(at) = incident.resolved_at {
        return Err(IncidentError::Closed(id.into(), at.to_rfc3339()));
    }
    Ok(incident)
}

/// Follow-ups to everyone who got the first notice, in its thread.
async fn follow_up(
    store: &impl Incidents,
    cx: &Context<'_>,
    incident: &Incident,
    step: String,
    template: &str,
    message: &str,
    now: DateTime<Utc>,
) -> Result<u64, IncidentError> {
    cx.template(template)?;
    let category = match incident.kind {
        IncidentKind::Incident => CATEGORY,
        IncidentKind::Maintenance => MAINTENANCE_CATEGORY,
    };
    let spec = NoticeSpec {
        incident,
        step,
        template,
        message,
        due_at: now,
        urgent: true,
        expires_at: now + NOTICE_LIFETIME,
        priority: cx.priority(category),
        domain: &cx.domain,
    };
    let notices: Vec<NewMessage> = store
        .recipients(&incident.id)
        .await?
        .iter()
        .map(|r| spec.message(&r.customer_id, &r.to, Some(&r.first_message_id)))
        .collect();
    Ok(store
        .record_notices(&incident.id, &[], &notices, now)
        .await?)
}

/// Records an update; with `notify`, sends it to those who got the first
/// notice.
pub async fn update(
    store: &impl Incidents,
    cx: &Context<'_>,
    id: &str,
    message: &str,
    status: Option<IncidentStatus>,
    notify: bool,
    now: DateTime<Utc>,
) -> Result<Outcome, IncidentError> {
    if message.trim().is_empty() {
        return Err(IncidentError::Bad(
            "--message is empty; say what changed".into(),
        ));
    }
    let incident = open_incident(store, id).await?;
    if let Some(status) = status.filter(|s| !s.fits(incident.kind)) {
        return Err(IncidentError::Bad(format!(
            "{} is not a status for this {}; {}",
            status.as_str(),
            incident.kind.as_str(),
            if status == IncidentStatus::Cancelled {
                format!("call a maintenance off with `tend incident cancel {id}`")
            } else if status.is_closed() {
                format!("close it with `tend incident resolve {id}`")
            } else {
                "use investigating, identified or monitoring for incidents; scheduled or in_progress for maintenance".into()
            }
        )));
    }
    if notify {
        cx.template(template::UPDATE)?;
    }
    let seq = store
        .update_incident(id, status, message, notify, now)
        .await?
        .ok_or_else(|| IncidentError::Closed(id.into(), "a moment ago".into()))?;
    let mut outcome = Outcome::default();
    if notify {
        let mut incident = incident;
        incident.status = status.unwrap_or(incident.status);
        outcome.notices = follow_up(
            store,
            cx,
            &incident,
            format!("update-{seq}"),
            template::UPDATE,
            message,
            now,
        )
        .await?;
    }
    Ok(outcome)
}

/// Resolves an incident (completes a maintenance) and tells exactly those
/// who got its first notice.
pub async fn resolve(
    store: &impl Incidents,
    cx: &Context<'_>,
    id: &str,
    message: &str,
    now: DateTime<Utc>,
) -> Result<Outcome, IncidentError> {
    if message.trim().is_empty() {
        return Err(IncidentError::Bad(
            "--message is empty; tell customers what was fixed".into(),
        ));
    }
    let mut incident = open_incident(store, id).await?;
    let (status, template, step) = match incident.kind {
        IncidentKind::Incident => (IncidentStatus::Resolved, template::RESOLVED, "resolved"),
        IncidentKind::Maintenance => (IncidentStatus::Completed, template::COMPLETED, "completed"),
    };
    cx.template(template)?;
    // Completed early: those not told yet never are.
    let withdrawn = withdrawn_reason(status, now);
    if store
        .close_incident(id, status, message, &withdrawn, now)
        .await?
        .is_none()
    {
        return Err(IncidentError::Closed(id.into(), "a moment ago".into()));
    }
    incident.status = status;
    incident.resolved_at = Some(now);
    let notices = follow_up(store, cx, &incident, step.into(), template, message, now).await?;
    Ok(Outcome {
        affected: 0,
        notices,
    })
}

/// Calls off a maintenance that has not started: its announcements still
/// waiting are withdrawn, and those already told get the cancellation
/// notice in the announcement's thread; nobody else hears of it.
pub async fn cancel(
    store: &impl Incidents,
    cx: &Context<'_>,
    id: &str,
    message: &str,
    now: DateTime<Utc>,
) -> Result<Outcome, IncidentError> {
    let mut incident = open_incident(store, id).await?;
    if incident.kind != IncidentKind::Maintenance {
        return Err(IncidentError::Bad(format!(
            "{id} is an incident, not a maintenance; close it with `tend incident resolve {id}`"
        )));
    }
    let started = incident.starts_at.filter(|s| *s <= now);
    if incident.status == IncidentStatus::InProgress || started.is_some() {
        let at = started.map_or_else(|| "already".into(), |s| format!("at {}", s.to_rfc3339()));
        return Err(IncidentError::Bad(format!(
            "maintenance {id} started {at}; nothing was sent. Close it with `tend incident resolve {id} --message \"…\"`"
        )));
    }
    cx.template(template::CANCELLED)?;
    let status = IncidentStatus::Cancelled;
    let withdrawn = withdrawn_reason(status, now);
    if store
        .close_incident(id, status, message, &withdrawn, now)
        .await?
        .is_none()
    {
        // Closed meanwhile, or started by another instance's pass.
        let now_open = store
            .incident(id)
            .await?
            .is_some_and(|i| i.resolved_at.is_none());
        return Err(if now_open {
            IncidentError::Bad(format!(
                "maintenance {id} started a moment ago; nothing was sent. Close it with `tend incident resolve {id} --message \"…\"`"
            ))
        } else {
            IncidentError::Closed(id.into(), "a moment ago".into())
        });
    }
    incident.status = status;
    incident.resolved_at = Some(now);
    // The waiting announcements are withdrawn by now, so the recipients
    // are exactly those an announcement went (or is going) out to.
    let notices = follow_up(
        store,
        cx,
        &incident,
        "cancelled".into(),
        template::CANCELLED,
        message,
        now,
    )
    .await?;
    Ok(Outcome {
        affected: 0,
        notices,
    })
}

/// What the maintenances' own clock did in one pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdvanceOutcome {
    pub started: u64,
    pub completed: u64,
    /// Announcements that expired at a start (or were withdrawn at an end).
    pub expired: u64,
    /// Completion notices put into the outbox.
    pub notices: u64,
}

/// Moves each open maintenance whose start or end has come by `now`:
/// scheduled → in_progress at its start (its waiting announcements expire,
/// with the start as the reason), → completed at its end (telling those
/// who were told only with `maintenance.notify_on_completion`). One closed
/// by hand first is left alone. Safe to run from several instances: each
/// move happens once.
pub async fn advance(
    store: &impl Incidents,
    cx: &Context<'_>,
    now: DateTime<Utc>,
) -> Result<AdvanceOutcome, IncidentError> {
    let mut outcome = AdvanceOutcome::default();
    for mut incident in store.maintenances_due(now).await? {
        for transition in transitions(&incident, now) {
            match transition {
                Transition::Start(at) => {
                    let reason = started_reason(at);
                    let started = store
                        .start_maintenance(&incident.id, STARTED_BY_CLOCK, &reason, at)
                        .await?;
                    if let Some(expired) = started {
                        outcome.started += 1;
                        outcome.expired += expired;
                        incident.status = IncidentStatus::InProgress;
                        tracing::info!(incident = %incident.id, expired, "maintenance started");
                    }
                }
                Transition::Complete(at) => {
                    let status = IncidentStatus::Completed;
                    let reason = withdrawn_reason(status, at);
                    let closed = store
                        .close_incident(&incident.id, status, COMPLETED_BY_CLOCK, &reason, at)
                        .await?;
                    let Some(withdrawn) = closed else { continue };
                    outcome.completed += 1;
                    outcome.expired += withdrawn;
                    tracing::info!(incident = %incident.id, "maintenance completed");
                    if cx.settings.maintenance.notify_on_completion {
                        incident.status = status;
                        incident.resolved_at = Some(at);
                        outcome.notices += follow_up(
                            store,
                            cx,
                            &incident,
                            "completed".into(),
                            template::COMPLETED,
                            COMPLETED_BY_CLOCK,
                            now,
                        )
                        .await?;
                    }
                }
            }
        }
    }
    Ok(outcome)
}
