//! Who hears of what: the `[[alert]]` rules (and the two built in) and the
//! `[[webhook]]` endpoints, compiled from the settings, and the decision,
//! for one signal, of which notifications it becomes. Routing is pure: the
//! facts an alert needs (the customer, their account and owner, the
//! message answered) are read by the caller; only compiling a rule reads
//! its template's file.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::config::settings::{Settings, WebhookFormat};
use crate::domain::account::{Account, TeamMember};
use crate::domain::alert::{DETRACTOR, On, To};
use crate::domain::condition::{Condition, ResponseFacts};
use crate::domain::customer::Customer;
use crate::domain::message::MessageView;
use crate::domain::notification::{Channel, NewNotification};
use crate::domain::playbook::Survey;
use crate::domain::signal::{self, Interest, Signal};
use crate::webhook::signature::WebhookSecret;

use super::alert;

/// One alert rule, compiled.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub on: On,
    pub when: Option<Condition>,
    pub to: To,
    /// The body of its mail, instead of the built-in summary.
    pub template: Option<AlertTemplate>,
}

/// An alert rule's own words: `{paths.templates}/NAME.txt.hbs`, plain text
/// rendered with `headline`, `summary`, `customer`, `account`, `owner`,
/// `message` and `signal` (the event's `type` and `data`).
#[derive(Clone)]
pub struct AlertTemplate {
    registry: Arc<handlebars::Handlebars<'static>>,
}

impl std::fmt::Debug for AlertTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AlertTemplate")
    }
}

impl AlertTemplate {
    fn render(&self, signal: &Signal, facts: &Facts, public_url: &str) -> String {
        let customer = facts.customer.as_ref().map(|c| {
            serde_json::json!({
                "id": c.record.id.as_str(),
                "name": c.record.name,
                "first_name": c.record.first_name(),
                "email": c.record.email.as_str(),
            })
        });
        let account = facts
            .account
            .as_ref()
            .map(|a| serde_json::json!({ "id": a.record.id.as_str(), "name": a.record.name }));
        let context = serde_json::json!({
            "headline": alert::headline(signal, facts),
            "summary": alert::summary(signal, facts, public_url),
            "customer": customer,
            "account": account,
            "owner": facts.owner.as_ref().map(|o| serde_json::json!({"id": o.id, "name": o.name, "email": o.email})),
            "message": facts.message,
            "signal": { "type": signal.kind, "data": signal.payload },
        });
        self.registry.render("alert", &context).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "an alert template failed; the built-in text went instead");
            alert::summary(signal, facts, public_url)
        })
    }
}

impl Rule {
    /// The built-in rules: every human reply and every detractor, to the
    /// owner.
    pub fn defaults() -> Vec<Self> {
        let detractor = Condition::compile(DETRACTOR)
            .unwrap_or_else(|e| unreachable!("the built-in detractor rule compiles: {e}"));
        vec![
            Self {
                name: "replies".into(),
                on: On::Reply,
                when: None,
                to: To::Owner,
                template: None,
            },
            Self {
                name: "detractors".into(),
                on: On::Survey,
                when: Some(detractor),
                to: To::Owner,
                template: None,
            },
        ]
    }

    fn takes(&self, signal: &Signal, facts: &Facts) -> bool {
        if !self.on.takes(signal) {
            return false;
        }
        let Some(when) = &self.when else {
            return true;
        };
        let response = ResponseFacts {
            kind: signal.field("kind").unwrap_or_default(),
            value: signal.field("value"),
            survey: facts.survey.map(Survey::as_str),
            comment: signal.field("comment"),
        };
        when.holds_for_response(&response).unwrap_or_else(|e| {
            tracing::warn!(rule = %self.name, error = %e, "an alert condition could not be evaluated");
            false
        })
    }
}

/// One webhook endpoint, ready to post to.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    pub format: WebhookFormat,
    pub secret: Option<WebhookSecret>,
    pub max_backlog: u64,
    pub timeout: Duration,
}

impl Endpoint {
    /// The queue its notifications join.
    pub fn target(&self) -> String {
        format!("webhook:{}", self.name)
    }

    fn channel(&self) -> Channel {
        match self.format {
            WebhookFormat::Standard => Channel::Webhook,
            WebhookFormat::Slack => Channel::Slack,
        }
    }
}

/// What an alert about a signal tells beside the signal itself.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub customer: Option<Customer>,
    pub account: Option<Account>,
    /// The account's owner, as the team lists them.
    pub owner: Option<TeamMember>,
    /// The message a response answers.
    pub message: Option<MessageView>,
    pub survey: Option<Survey>,
}

/// Every rule and endpoint in force.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    pub rules: Vec<Rule>,
    pub endpoints: Vec<Endpoint>,
    /// Where `owner` alerts go when an account has no owner.
    pub team_address: String,
    /// `http.public_url`, for links in alerts.
    pub public_url: String,
    /// The success team, owners of accounts.
    pub team: Vec<TeamMember>,
}

impl Routes {
    /// From validated settings (`tend check` reported every problem) and
    /// the endpoints' secrets; a rule that no longer reads is left out,
    /// with a log line.
    pub fn new(settings: &Settings, secrets: &HashMap<String, WebhookSecret>) -> Self {
        let endpoints: Vec<Endpoint> = settings
            .webhooks
            .iter()
            .map(|w| Endpoint {
                name: w.name.clone(),
                url: w.url.clone(),
                events: w.events.clone(),
                format: w.format(),
                secret: secrets.get(&w.name).cloned(),
                max_backlog: w.max_backlog,
                timeout: w.timeout.as_std(),
            })
            .collect();
        let names: Vec<&str> = endpoints.iter().map(|e| e.name.as_str()).collect();
        let mut rules = if settings.alerts.defaults {
            Rule::defaults()
        } else {
            Vec::new()
        };
        for rule in &settings.alert_rules {
            match compile(rule, &settings.team, &names, &settings.paths.templates) {
                Ok(r) => rules.push(r),
                Err((key, e)) => {
                    tracing::error!(rule = rule.label(), key, error = %e, "alert rule left out");
                }
            }
        }
        Self {
            rules,
            endpoints,
            team_address: settings.mail.reply_to.clone(),
            public_url: settings.http.public_url.trim_end_matches('/').to_owned(),
            team: settings.team.clone(),
        }
    }

    /// The signal types the store should record.
    pub fn interest(&self) -> Interest {
        let rules = self.rules.iter().map(|r| r.on.signal_type().to_owned());
        let hooks = self.endpoints.iter().flat_map(|e| e.events.iter().cloned());
        Interest::of(rules.chain(hooks))
    }

    /// Whether any rule might take `signal`, so its facts are worth
    /// reading.
    pub fn alerts_on(&self, signal: &Signal) -> bool {
        self.rules.iter().any(|r| r.on.takes(signal))
    }

    pub fn endpoint(&self, name: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.name == name)
    }

    /// The notifications `signal` becomes. `backlog` holds each target's
    /// waiting count and is kept up to date: a full endpoint's new
    /// notifications are stored dropped, with the reason.
    pub fn route(
        &self,
        signal: &Signal,
        facts: &Facts,
        backlog: &mut HashMap<String, u64>,
    ) -> Vec<NewNotification> {
        let mut out = Vec::new();
        for endpoint in &self.endpoints {
            if endpoint
                .events
                .iter()
                .any(|p| signal::matches(p, &signal.kind))
            {
                let body = match endpoint.format {
                    WebhookFormat::Standard => signal.envelope().to_string(),
                    WebhookFormat::Slack => slack(&alert::headline(signal, facts)),
                };
                out.push(self.queue(endpoint, signal, None, body, backlog));
            }
        }
        for rule in self.rules.iter().filter(|r| r.takes(signal, facts)) {
            let headline = alert::headline(signal, facts);
            let note = match &rule.to {
                To::Webhook(name) => {
                    let Some(endpoint) = self.endpoint(name) else {
                        continue;
                    };
                    let body = match endpoint.format {
                        WebhookFormat::Slack => {
                            slack(&alert::summary(signal, facts, &self.public_url))
                        }
                        WebhookFormat::Standard => serde_json::json!({
                            // As its `webhook-id`: one per signal and rule.
                            "id": alert_id(&signal.id, &rule.name),
                            "type": "alert",
                            "timestamp": signal.occurred_at,
                            "data": {
                                "rule": rule.name,
                                "text": alert::summary(signal, facts, &self.public_url),
                                "signal": signal.envelope(),
                            },
                        })
                        .to_string(),
                    };
                    self.queue(endpoint, signal, Some(&rule.name), body, backlog)
                }
                to => {
                    let address = match to {
                        To::Owner => facts
                            .owner
                            .as_ref()
                            .map_or(self.team_address.clone(), |o| o.email.clone()),
                        To::Member(m) => m.email.clone(),
                        To::Address(a) => a.clone(),
                        To::Webhook(_) => unreachable!("handled above"),
                    };
                    NewNotification {
                        signal_id: signal.id.clone(),
                        target: format!("alert:{}:{address}", rule.name),
                        channel: Channel::Email,
                        recipient: address,
                        subject: Some(headline),
                        reply_to: facts.customer.as_ref().and_then(reply_to),
                        body: match &rule.template {
                            Some(t) => t.render(signal, facts, &self.public_url),
                            None => alert::summary(signal, facts, &self.public_url),
                        },
                        customer_id: signal.customer_id.clone(),
                        dropped: None,
                    }
                }
            };
            out.push(note);
        }
        out
    }

    /// A notification for `endpoint`'s queue (an alert's, when `rule`
    /// names it, so it does not meet the endpoint's own copy of the signal).
    fn queue(
        &self,
        endpoint: &Endpoint,
        signal: &Signal,
        rule: Option<&str>,
        body: String,
        backlog: &mut HashMap<String, u64>,
    ) -> NewNotification {
        let target = endpoint.target();
        let waiting = backlog.entry(target.clone()).or_default();
        let dropped = (*waiting >= endpoint.max_backlog).then(|| {
            format!(
                "webhook {} already has {} deliveries waiting (max_backlog); this one was not kept",
                endpoint.name, endpoint.max_backlog
            )
        });
        if dropped.is_none() {
            *waiting += 1;
        }
        NewNotification {
            // One signal reaches an endpoint once as itself and once per
            // rule that alerts there.
            signal_id: match rule {
                None => signal.id.clone(),
                Some(rule) => alert_id(&signal.id, rule),
            },
            target,
            channel: endpoint.channel(),
            recipient: endpoint.name.clone(),
            subject: None,
            reply_to: None,
            body,
            customer_id: signal.customer_id.clone(),
            dropped,
        }
    }
}

/// Compiles one `[[alert]]` rule; the error is what `tend check` says.
pub fn compile(
    rule: &crate::config::settings::AlertRule,
    team: &[TeamMember],
    endpoints: &[&str],
    templates: &str,
) -> Result<Rule, (&'static str, String)> {
    let (on, when, to) =
        crate::domain::alert::parse(&rule.on, &rule.when, &rule.to, team, endpoints)?;
    Ok(Rule {
        name: rule.label().to_owned(),
        on,
        when,
        to,
        template: if rule.template.is_empty() {
            None
        } else {
            let registry = crate::config::alert_template(templates, &rule.template)
                .map_err(|e| ("template", e))?;
            Some(AlertTemplate {
                registry: Arc::new(registry),
            })
        },
    })
}

/// The customer as a Reply-To mailbox: a reply to the alert reaches them.
fn reply_to(customer: &Customer) -> Option<String> {
    let address: lettre::Address = customer.record.email.as_str().parse().ok()?;
    let name = Some(customer.record.name.trim().to_owned()).filter(|n| !n.is_empty());
    Some(lettre::message::Mailbox::new(name, address).to_string())
}

/// The id of a rule's alert about a signal, at an endpoint that may also
/// hear of the signal itself.
fn alert_id(signal: &str, rule: &str) -> String {
    format!("{signal}/{rule}")
}

/// A Slack incoming webhook's body.
fn slack(text: &str) -> String {
    serde_json::json!({ "text": text }).to_string()
}

/// The routes, shared with the pass that sends.
pub type SharedRoutes = Arc<Routes>;
