//! The typed shape of `config/tend.toml`. Every section rejects unknown keys
//! so a typo is an error that names the key; every field has a built-in
//! default, which is also what the shipped `config/tend.toml` spells out
//! (but for `demo.load`, which the shipped file turns on for the quick start).

use std::num::NonZeroU32;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

use super::secret::Secret;

use crate::domain::span::{Span, span};
use crate::domain::window::WindowSpec;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub company: Company,
    pub database: Database,
    pub paths: Paths,
    pub mail: Mail,
    pub http: Http,
    pub security: Security,
    pub customers: Customers,
    pub delivery: Delivery,
    pub schedule: Schedule,
    pub instance: Instance,
    #[serde(rename = "category")]
    pub categories: Vec<Category>,
    pub lifecycle: Lifecycle,
    pub inbound: Inbound,
    pub maintenance: Maintenance,
    pub log: Log,
    pub demo: Demo,
    pub accounts: Accounts,
    /// The success team: `[[team]]` entries, owners of accounts.
    #[serde(rename = "team")]
    pub team: Vec<TeamMember>,
    pub incidents: IncidentSettings,
    /// `[[webhook]]` endpoints that hear of signals as they happen.
    #[serde(rename = "webhook")]
    pub webhooks: Vec<Webhook>,
    /// `[[alert]]` rules: who hears of which responses and stage changes.
    #[serde(rename = "alert")]
    pub alert_rules: Vec<AlertRule>,
    pub alerts: Alerts,
    /// `[[holidays]]` calendars: days on which customers get no mail that
    /// can wait.
    pub holidays: Vec<HolidayCalendar>,
}

/// One holiday calendar: its name, and the iCalendar file it is read from
/// (relative to where tend runs).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HolidayCalendar {
    pub name: String,
    pub file: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            company: Company::default(),
            database: Database::default(),
            paths: Paths::default(),
            mail: Mail::default(),
            http: Http::default(),
            security: Security::default(),
            customers: Customers::default(),
            delivery: Delivery::default(),
            schedule: Schedule::default(),
            instance: Instance::default(),
            categories: default_categories(),
            lifecycle: Lifecycle::default(),
            inbound: Inbound::default(),
            maintenance: Maintenance::default(),
            log: Log::default(),
            demo: Demo::default(),
            accounts: Accounts::default(),
            team: Vec::new(),
            incidents: IncidentSettings::default(),
            webhooks: Vec::new(),
            alert_rules: Vec::new(),
            alerts: Alerts::default(),
            holidays: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Company {
    pub name: String,
    pub product: String,
    pub postal_address: String,
    pub website: String,
}

impl Default for Company {
    fn default() -> Self {
        Self {
            name: "Acme".into(),
            product: "Acme Cloud".into(),
            postal_address: "1 Main St, Springfield".into(),
            website: "https://acme.example".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Database {
    pub url: String,
    pub max_connections: u32,
    pub connect_timeout: Span,
    pub busy_timeout: Span,
}

impl Default for Database {
    fn default() -> Self {
        Self {
            url: "sqlite://data/tend.db".into(),
            max_connections: 8,
            connect_timeout: span("5s"),
            busy_timeout: span("5s"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Paths {
    pub playbooks: String,
    pub templates: String,
    pub state: String,
}

impl Default for Paths {
    fn default() -> Self {
        Self {
            playbooks: "config/playbooks".into(),
            templates: "templates".into(),
            state: "data".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    File,
    Smtp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    None,
    Starttls,
    Tls,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mail {
    pub from: String,
    pub reply_to: String,
    pub transport: Transport,
    pub file: MailFile,
    pub smtp: Smtp,
    /// Optional DKIM signing of every message.
    pub dkim: Option<Dkim>,
}

/// DKIM signing: tend signs the headers receivers check, the
/// List-Unsubscribe pair included (one-click unsubscribe must be signed).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dkim {
    pub selector: String,
    pub domain: String,
    pub private_key_file: String,
    pub algorithm: DkimAlgorithm,
}

impl Default for Dkim {
    fn default() -> Self {
        Self {
            selector: "tend".into(),
            domain: "acme.example".into(),
            private_key_file: String::new(),
            algorithm: DkimAlgorithm::Rsa,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DkimAlgorithm {
    Rsa,
    Ed25519,
}

impl Default for Mail {
    fn default() -> Self {
        Self {
            from: "Acme Success <success@acme.example>".into(),
            reply_to: "success@acme.example".into(),
            transport: Transport::File,
            file: MailFile::default(),
            smtp: Smtp::default(),
            dkim: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailFile {
    pub dir: String,
}

impl Default for MailFile {
    fn default() -> Self {
        Self {
            dir: "data/outbox".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    pub username: String,
    pub password: Option<Secret>,
    pub password_file: String,
    pub pool_size: u32,
    pub timeout: Span,
}

impl Default for Smtp {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 2525,
            tls: Tls::None,
            username: String::new(),
            password: None,
            password_file: String::new(),
            pool_size: 8,
            timeout: span("30s"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Http {
    pub listen: String,
    pub public_url: String,
    pub api_token: Option<Secret>,
    pub api_token_file: String,
    /// How long survey and tracked links work after the message was sent.
    /// Unsubscribe links always work.
    pub link_lifetime: Span,
    /// Requests per minute one client address may make to the links in
    /// mail (`/r/`, `/c/`, `/u/`); 0 = unlimited.
    pub rate_per_minute: u32,
    /// The header that carries the client's address when tend runs behind
    /// a reverse proxy (e.g. `X-Forwarded-For`); empty = the peer address.
    pub client_ip_header: String,
    /// How many reverse proxies in front of tend append to
    /// `client_ip_header`: the client is that many entries from the right
    /// (the left-most is whatever the client sent). 0 = the peer address.
    pub trusted_proxies: u32,
    /// The largest request body the API (`/api/v1/*`) takes, e.g. `16MiB`.
    /// The links in mail take at most 64 KiB whatever this says.
    #[serde(deserialize_with = "byte_size")]
    pub max_body: ByteSize,
    /// How long a client may take to send a request's headers, and to wait
    /// between requests on a kept-alive connection.
    pub header_timeout: Span,
    /// How long a request body or a response may stall (no byte moving)
    /// before the connection is closed.
    pub idle_timeout: Span,
    /// The most connections served at once; more wait to be accepted.
    pub max_connections: NonZeroU32,
}

// Checked when compiled: 4,096 is not zero.
const DEFAULT_MAX_CONNECTIONS: NonZeroU32 = NonZeroU32::new(4096).unwrap();

impl Default for Http {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            public_url: "http://127.0.0.1:8080".into(),
            api_token: None,
            api_token_file: String::new(),
            link_lifetime: span("180d"),
            rate_per_minute: 120,
            client_ip_header: String::new(),
            trusted_proxies: 1,
            max_body: ByteSize::mib(16),
            header_timeout: span("10s"),
            idle_timeout: span("60s"),
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Security {
    pub secret: Option<Secret>,
    pub secret_file: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Customers {
    pub default_timezone: String,
    pub default_locale: String,
}

impl Default for Customers {
    fn default() -> Self {
        Self {
            default_timezone: "UTC".into(),
            default_locale: "en".into(),
        }
    }
}

/// The most messages committed `sending` together, then sent and recorded
/// together. A chunk is `delivery.concurrency` messages up to this: as many
/// as the transport takes at once, so what is marked `sending` is what is
/// about to be sent, and a crash leaves at most seven chunks `unknown`
/// (see [`crate::deliver::Deliverer::deliver_once`]);
/// large enough at high concurrency that the store's commits are few.
pub const MOST_AT_ONCE: usize = 128;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Delivery {
    pub concurrency: u32,
    pub rate_per_second: u32,
    pub window: WindowSpec,
    pub cap: Cap,
    #[serde(deserialize_with = "list_or_commas")]
    pub priority: Vec<String>,
    pub max_retry_age: Span,
    pub resend_unknown: bool,
    pub quiet_during_incidents: bool,
    /// How long a claim on a message holds unless renewed. A live
    /// instance renews its claims every third of this while it holds them;
    /// after it, another instance may take the message (or, if it was
    /// mid-send, mark it unknown). A restarted instance does not wait for
    /// it: it releases its dead predecessor's claims when it starts.
    pub lease: Span,
    /// How long the detail of each delivery attempt (the server's reply) is
    /// kept; housekeeping deletes older ones.
    pub keep_attempts: Span,
    /// The `[[holidays]]` calendar whose days no send window opens on (in
    /// each customer's zone) for customers whose record and account name
    /// none; none when unset.
    pub holidays: Option<String>,
}

impl Default for Delivery {
    fn default() -> Self {
        Self {
            concurrency: 8,
            rate_per_second: 0,
            window: WindowSpec::default(),
            cap: Cap::default(),
            priority: ["incidents", "maintenance", "checkins", "onboarding", "tips"]
                .map(String::from)
                .to_vec(),
            max_retry_age: span("3d"),
            resend_unknown: false,
            quiet_during_incidents: true,
            lease: span("1m"),
            keep_attempts: span("365d"),
            holidays: None,
        }
    }
}

impl Delivery {
    /// The send policy these settings make: what delivery and the forecast
    /// both decide by.
    pub fn policy(&self) -> crate::domain::policy::Rules {
        crate::domain::policy::Rules {
            max: self.cap.max,
            per: self.cap.per.as_chrono(),
            priority: self.priority.clone(),
            quiet_during_incidents: self.quiet_during_incidents,
        }
    }
}

/// A size as people write it (`16MiB`, `512KiB`), or a count of bytes.
fn byte_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ByteSize, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Bytes(u64),
        Text(String),
    }
    let size = match Either::deserialize(d)? {
        Either::Bytes(n) => ByteSize(n),
        Either::Text(text) => text.trim().parse::<ByteSize>().map_err(|e| {
            serde::de::Error::custom(format!(
                "{text:?} is not a size ({e}); write one such as 16MiB or 512KiB"
            ))
        })?,
    };
    if size.as_u64() == 0 {
        return Err(serde::de::Error::custom(
            "a size of zero refuses every body; write one such as 16MiB",
        ));
    }
    Ok(size)
}

/// A list, or a comma-separated string as environment variables spell one
/// (`TEND__DELIVERY__PRIORITY=incidents,tips`).
fn list_or_commas<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        List(Vec<String>),
        Commas(String),
    }
    Ok(match Either::deserialize(d)? {
        Either::List(list) => list,
        Either::Commas(text) => text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cap {
    pub max: u32,
    pub per: Span,
}

impl Default for Cap {
    fn default() -> Self {
        Self {
            max: 2,
            per: span("7d"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Schedule {
    pub plan_every: Span,
    pub deliver_every: Span,
    pub inbound_every: Span,
    pub housekeeping_every: Span,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            plan_every: span("1m"),
            deliver_every: span("5s"),
            inbound_every: span("1m"),
            housekeeping_every: span("1h"),
        }
    }
}

/// This process as the store knows it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Instance {
    /// The name this instance claims messages under, stable across
    /// restarts, so that a restarted instance can release what it held
    /// before it died (PostgreSQL). Empty: the host name, plus the systemd
    /// unit's instance (`tend@eu.service` on `web1` is `web1/eu`). Two live
    /// instances on one database never share a name.
    pub name: String,
    /// How long in-flight sends get to finish after SIGTERM before tend
    /// exits anyway (what is still in flight then becomes `unknown`).
    pub stop_timeout: Span,
}

impl Default for Instance {
    fn default() -> Self {
        Self {
            name: String::new(),
            stop_timeout: span("20s"),
        }
    }
}

pub use crate::domain::preference::Category;

fn default_categories() -> Vec<Category> {
    [
        ("onboarding", "Getting started with Acme Cloud"),
        ("tips", "Tips and best practices"),
        ("checkins", "Check-ins and short surveys"),
        ("maintenance", "Maintenance reminders and renewals"),
        ("incidents", "Incident and maintenance notices"),
        (
            "announcements",
            "Product news: releases and changes (tend broadcast)",
        ),
    ]
    .map(|(name, description)| Category {
        name: name.into(),
        description: description.into(),
        unsubscribable: true,
    })
    .to_vec()
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Lifecycle {
    #[serde(rename = "stage")]
    pub stages: Vec<StageRule>,
    /// An account's stage, for account-scope playbooks: conditions on
    /// `account.*`.
    #[serde(rename = "account_stage")]
    pub account_stages: Vec<StageRule>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        let rule = |name: &str, when: &str| StageRule {
            name: name.into(),
            when: when.into(),
        };
        Self {
            stages: vec![
                rule("churned", r#"customer.plan == "cancelled""#),
                rule("renewal", "days_until(customer.renewal_at) <= 30"),
                rule("at_risk", "customer.health < 40"),
                rule("onboarding", "days_since(customer.signup_at) < 30"),
                rule("adopting", "true"),
            ],
            account_stages: vec![
                rule("churned", r#"account.plan == "cancelled""#),
                rule("renewal", "days_until(account.renewal_at) <= 60"),
                rule("at_risk", "account.health < 40"),
                rule("active", "true"),
            ],
        }
    }
}

/// One ordered lifecycle rule: the first whose condition holds names the stage.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StageRule {
    pub name: String,
    pub when: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Inbound {
    /// Soft bounces (full mailbox, server busy) a customer may collect
    /// before all mail to them is suppressed.
    pub soft_bounce_limit: u32,
    pub imap: Option<Imap>,
}

impl Default for Inbound {
    fn default() -> Self {
        Self {
            soft_bounce_limit: 3,
            imap: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Imap {
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    pub username: String,
    pub password: Option<Secret>,
    pub password_file: String,
    pub mailbox: String,
}

impl Default for Imap {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 143,
            tls: Tls::None,
            username: String::new(),
            password: None,
            password_file: String::new(),
            mailbox: "INBOX".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Maintenance {
    /// How long before a maintenance starts it is announced, one notice
    /// per lead time.
    #[serde(deserialize_with = "spans_or_commas")]
    pub announce: Vec<Span>,
    /// Announcements this close to the start go at once, outside the send
    /// window and the cap.
    pub urgent_within: Span,
    /// Whether a maintenance that completes by itself at its end tells
    /// those who were told of it. Off: customers were told when it ends,
    /// and most want no mail saying it did. Completing one by hand always
    /// tells them.
    pub notify_on_completion: bool,
}

impl Default for Maintenance {
    fn default() -> Self {
        Self {
            announce: vec![span("7d"), span("1d"), span("1h")],
            urgent_within: span("1h"),
            notify_on_completion: false,
        }
    }
}

/// A list of durations, in TOML or as `7d,1d,1h` from the environment.
fn spans_or_commas<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Span>, D::Error> {
    let raw = list_or_commas(d)?;
    raw.iter()
        .map(|s| s.parse::<Span>().map_err(serde::de::Error::custom))
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The demo customers of the quick start.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Demo {
    /// Load the demo customers and events when `tend run` starts on an
    /// empty store. Off unless a config file turns it on: a store an
    /// operator set up must never fill with made-up people.
    pub load: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    pub level: String,
    pub format: LogFormat,
}

impl Default for Log {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// Accounts and the roles their contacts may hold.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Accounts {
    /// The role names a contact may hold (`roles` of a customer).
    #[serde(deserialize_with = "list_or_commas")]
    pub roles: Vec<String>,
}

impl Default for Accounts {
    fn default() -> Self {
        Self {
            roles: crate::domain::account::DEFAULT_ROLES
                .iter()
                .map(|r| r.to_string())
                .collect(),
        }
    }
}

pub use crate::domain::account::TeamMember;

/// One `[[webhook]]` endpoint.
#[derive(Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// How alerts (`to = NAME`), `tend webhooks` and the metrics name it.
    pub name: String,
    pub url: String,
    /// Signal types it hears of (`response.*`, `message.sent`, `*`); none
    /// for an endpoint only alerts post to.
    #[serde(default, deserialize_with = "list_or_commas")]
    pub events: Vec<String>,
    /// The `whsec_…` signing secret, inline (or from `secret_file`, or the
    /// credential `webhook_NAME`).
    #[serde(default)]
    pub secret: Option<Secret>,
    #[serde(default)]
    pub secret_file: String,
    /// `standard` (signed JSON envelopes) or `slack` (an incoming webhook:
    /// `{"text": …}`); by default `slack` for `hooks.slack.com` URLs.
    #[serde(default)]
    pub format: Option<WebhookFormat>,
    /// Waiting deliveries kept at most; beyond, new ones are dropped (and
    /// counted) until the endpoint catches up.
    #[serde(default = "default_max_backlog")]
    pub max_backlog: u64,
    /// How long one POST may take.
    #[serde(default = "default_webhook_timeout")]
    pub timeout: Span,
}

/// Logged without the URL's path (a Slack webhook's secret) or login.
impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.name)
            .field("url", &crate::webhook::post::shown(&self.url))
            .field("events", &self.events)
            .field("secret", &self.secret)
            .field("secret_file", &self.secret_file)
            .field("format", &self.format)
            .field("max_backlog", &self.max_backlog)
            .field("timeout", &self.timeout)
            .finish()
    }
}

fn default_max_backlog() -> u64 {
    100_000
}

fn default_webhook_timeout() -> Span {
    span("10s")
}

impl Webhook {
    /// The format in force: as set, else by the URL.
    pub fn format(&self) -> WebhookFormat {
        self.format.unwrap_or_else(|| {
            let slack = url::Url::parse(&self.url)
                .ok()
                .and_then(|u| {
                    u.host_str()
                        .map(|h| h.eq_ignore_ascii_case("hooks.slack.com"))
                })
                .unwrap_or(false);
            if slack {
                WebhookFormat::Slack
            } else {
                WebhookFormat::Standard
            }
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    Standard,
    Slack,
}

/// One `[[alert]]` rule.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    /// How notifications and logs name it; by default its `on`.
    #[serde(default)]
    pub name: String,
    /// `reply`, `survey`, `complaint`, `bounce`, `unsubscribe`, or
    /// `stage:NAME` (a customer entering that stage).
    pub on: String,
    /// A CEL condition over `response.kind`, `response.value` (a number
    /// for scores), `response.survey` and `response.comment`.
    #[serde(default)]
    pub when: String,
    /// `owner` (the account's owner, else `mail.reply_to`), a `[[team]]`
    /// id, an email address, or a `[[webhook]]` name.
    #[serde(default = "default_alert_to")]
    pub to: String,
    /// A template (under `paths.templates`) for the alert's mail, instead
    /// of the built-in one.
    #[serde(default)]
    pub template: String,
}

fn default_alert_to() -> String {
    "owner".into()
}

impl AlertRule {
    /// Its name as given, else its `on`.
    pub fn label(&self) -> &str {
        if self.name.is_empty() {
            &self.on
        } else {
            &self.name
        }
    }
}

/// `[alerts]`: the built-in rules.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Alerts {
    /// Every human reply and every detractor (NPS 0–6, CSAT 1–2) go to the
    /// account's owner by email, besides the `[[alert]]` rules.
    pub defaults: bool,
    /// How often alerts and webhooks are routed and sent.
    pub every: Span,
}

impl Default for Alerts {
    fn default() -> Self {
        Self {
            defaults: true,
            every: span("2s"),
        }
    }
}

/// Who hears of incidents and maintenances in each affected account.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IncidentSettings {
    /// The contacts' roles that are told; an account with none of them
    /// tells its `admin`s, else every contact.
    #[serde(deserialize_with = "list_or_commas")]
    pub roles: Vec<String>,
}

impl Default for IncidentSettings {
    fn default() -> Self {
        Self {
            roles: vec!["technical".into(), "admin".into()],
        }
    }
}
