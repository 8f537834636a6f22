//! Alert rules as people write them: what a rule hears of (`on`), whom it
//! tells (`to`), and its condition over a response. Pure: the notify pass
//! and `tend check` both read rules through here.

use super::account::TeamMember;
use super::condition::{Condition, compile_for_response};
use super::signal::{self, Signal};

/// What a rule listens for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum On {
    Reply,
    Survey,
    Complaint,
    Bounce,
    Unsubscribe,
    /// A customer entering the stage.
    Stage(String),
}

impl On {
    pub fn parse(text: &str) -> Result<Self, String> {
        Ok(match text {
            "reply" => Self::Reply,
            "survey" => Self::Survey,
            "complaint" => Self::Complaint,
            "bounce" => Self::Bounce,
            "unsubscribe" => Self::Unsubscribe,
            other => match other.strip_prefix("stage:") {
                Some(stage) if !stage.is_empty() => Self::Stage(stage.to_owned()),
                _ => {
                    return Err(format!(
                        "on = {other:?} is not something an alert hears of; use reply, survey, complaint, bounce, unsubscribe or stage:NAME"
                    ));
                }
            },
        })
    }

    /// The signal type it takes.
    pub fn signal_type(&self) -> &'static str {
        match self {
            Self::Reply => "response.reply",
            Self::Survey => "response.survey",
            Self::Complaint => "response.complaint",
            Self::Bounce => "response.bounce",
            Self::Unsubscribe => "response.unsubscribe",
            Self::Stage(_) => signal::STAGE_CHANGED,
        }
    }

    /// Whether `signal` is what it hears of.
    pub fn takes(&self, signal: &Signal) -> bool {
        signal.kind == self.signal_type()
            && match self {
                // A customer's stage: account stages have no customer.
                Self::Stage(stage) => {
                    signal.customer_id.is_some() && signal.field("to") == Some(stage.as_str())
                }
                _ => true,
            }
    }
}

/// Where a rule's alerts go.
#[derive(Debug, Clone, PartialEq)]
pub enum To {
    /// The account's owner, else the team's address (`mail.reply_to`).
    Owner,
    Member(TeamMember),
    Address(String),
    /// A `[[webhook]]` endpoint by name.
    Webhook(String),
}

impl To {
    /// Reads `to` against the team and the endpoints.
    pub fn parse(text: &str, team: &[TeamMember], endpoints: &[&str]) -> Result<Self, String> {
        if text == "owner" {
            return Ok(Self::Owner);
        }
        if let Some(member) = team.iter().find(|m| m.id == text) {
            return Ok(Self::Member(member.clone()));
        }
        if endpoints.contains(&text) {
            return Ok(Self::Webhook(text.to_owned()));
        }
        if text.contains('@') {
            return super::customer::Email::parse(text)
                .map(|_| Self::Address(text.to_owned()))
                .map_err(|e| format!("to = {text:?}: {e}"));
        }
        let mut known: Vec<&str> = team.iter().map(|m| m.id.as_str()).collect();
        known.extend(endpoints);
        let near = crate::suggest::closest(text, known.iter().copied())
            .map(|n| format!("did you mean {n:?}? "))
            .unwrap_or_default();
        Err(format!(
            "to = {text:?} names no team member, no webhook and no address; {near}use owner, a [[team]] id, a [[webhook]] name or an email address"
        ))
    }
}

/// The detractor condition of the built-in rule.
pub const DETRACTOR: &str = "(response.survey == \"nps\" && response.value <= 6) || (response.survey == \"csat\" && response.value <= 2)";

/// Reads one rule's `on`, `when` and `to`; the error names the key that
/// is wrong and what to do.
pub fn parse(
    on: &str,
    when: &str,
    to: &str,
    team: &[TeamMember],
    endpoints: &[&str],
) -> Result<(On, Option<Condition>, To), (&'static str, String)> {
    let on = On::parse(on).map_err(|e| ("on", e))?;
    let when = if when.trim().is_empty() {
        None
    } else {
        Some(compile_for_response(when).map_err(|e| ("when", e))?)
    };
    let to = To::parse(to, team, endpoints).map_err(|e| ("to", e))?;
    Ok((on, when, to))
}
