//! Turns a message into the bytes the transport sends: renders its
//! template for its customer, composes the headers, signs with DKIM. Shared
//! (behind an `Arc`) by the worker's composing threads and by `preview`.

use chrono::{DateTime, Utc};
use lettre::Address;
use lettre::message::Mailbox;
use lettre::message::dkim::DkimConfig;

use super::mime;
use crate::domain::account::{AccountFacts, TeamMember};
use crate::domain::customer::Customer;
use crate::domain::message::MessageId;
use crate::domain::message::{Notice, Outgoing};
use crate::domain::playbook::Survey;
use crate::render::{Letter, Rendered, Renderer};
use crate::token::Signer;

/// One message to render and compose.
pub struct Draft<'a> {
    pub id: MessageId,
    pub customer: &'a Customer,
    pub template: &'a str,
    pub category: &'a str,
    pub survey: Option<Survey>,
    pub to: &'a str,
    /// The Message-ID, without angle brackets.
    pub message_id: &'a str,
    /// For incident and maintenance notices.
    pub notice: Option<&'a Notice>,
    /// The customer's account and its owner; `None`: their own.
    pub account: Option<&'a AccountFacts>,
    /// Who it goes out as, when not `mail.from`.
    pub sender: Option<&'a TeamMember>,
}

impl<'a> Draft<'a> {
    /// The draft of a message from the outbox.
    pub fn of(m: &'a Outgoing) -> Self {
        Self {
            id: m.id,
            customer: &m.customer,
            template: &m.template,
            category: &m.category,
            survey: m.survey,
            to: &m.to,
            message_id: &m.message_id,
            notice: m.notice.as_ref(),
            account: m.account.as_deref(),
            sender: m.sender.as_ref(),
        }
    }
}

/// A claimed message ready for the transport.
pub struct Composed {
    pub message: Outgoing,
    pub subject: String,
    pub to: Address,
    pub bytes: Vec<u8>,
}

pub struct Composer {
    pub renderer: std::sync::Arc<Renderer>,
    pub signer: Signer,
    pub from: Mailbox,
    pub reply_to: Address,
    pub dkim: Option<DkimConfig>,
    /// `company.name`, for the From name of mail sent as a team member.
    pub company: String,
}

impl Composer {
    fn letter<'a>(draft: &Draft<'a>, now: DateTime<Utc>) -> Letter<'a> {
        Letter {
            message: draft.id,
            customer: draft.customer,
            category: draft.category,
            survey: draft.survey,
            incident: draft.notice.map(|n| &n.incident),
            account: draft.account,
            sender: draft.sender,
            now,
        }
    }

    /// Renders one message's parts, composing nothing.
    pub fn render(&self, draft: &Draft<'_>, now: DateTime<Utc>) -> Result<Rendered, String> {
        self.renderer
            .render(draft.template, &Self::letter(draft, now))
            .map_err(|e| format!("template could not be rendered: {e}"))
    }

    /// The question one message's `survey` asks, as its mail put it.
    pub fn question(
        &self,
        draft: &Draft<'_>,
        survey: Survey,
        now: DateTime<Utc>,
    ) -> Result<String, String> {
        self.renderer
            .question(draft.template, survey, &Self::letter(draft, now))
            .map_err(|e| format!("the survey question could not be rendered: {e}"))
    }

    /// The language one message speaks to its customer in: that of the
    /// translation of its template they get.
    pub fn language(&self, draft: &Draft<'_>) -> String {
        self.renderer.language(draft.template, draft.customer)
    }

    /// Renders and composes one message.
    pub fn email(
        &self,
        draft: &Draft<'_>,
        now: DateTime<Utc>,
    ) -> Result<(Rendered, Address, Vec<u8>), String> {
        let rendered = self.render(draft, now)?;
        let to: Address = draft
            .to
            .parse()
            .map_err(|e| format!("the address {:?} cannot be used: {e}", draft.to))?;
        let reply_to: Address = self
            .signer
            .reply_address(self.reply_to.as_ref(), draft.id)
            .parse()
            .map_err(|e| format!("the reply address cannot be built: {e}"))?;
        let unsubscribe_to: Address = self
            .signer
            .unsubscribe_address(self.reply_to.as_ref(), draft.id)
            .parse()
            .map_err(|e| format!("the unsubscribe address cannot be built: {e}"))?;
        // Sent as a team member: their name at the company, from the
        // configured address (so SPF and DKIM still align), and replies to
        // them as well as to the address that matches replies.
        let member = match draft.sender {
            Some(m) => Some((
                Mailbox::new(
                    Some(format!("{} at {}", m.name, self.company)),
                    self.from.email.clone(),
                ),
                Mailbox::new(
                    Some(m.name.clone()),
                    m.email.parse().map_err(|e| {
                        format!("the address {:?} of {} cannot be used: {e}", m.email, m.id)
                    })?,
                ),
            )),
            None => None,
        };
        let (from, reply_person) = match &member {
            Some((from, person)) => (from, Some(person)),
            None => (&self.from, None),
        };
        let mut email = mime::compose(
            &rendered,
            &mime::Addressing {
                from,
                reply_to: &reply_to,
                reply_person,
                unsubscribe_to: &unsubscribe_to,
                to_name: &draft.customer.record.name,
                to: &to,
                message_id: draft.message_id,
                in_reply_to: draft.notice.and_then(|n| n.in_reply_to.as_deref()),
                date: now.into(),
            },
        )
        .map_err(|e| e.to_string())?;
        if let Some(dkim) = &self.dkim {
            email.sign(dkim);
        }
        Ok((rendered, to, email.formatted()))
    }

    /// One claimed message, or why it cannot be built (a template that
    /// fails for this customer).
    fn compose(
        &self,
        m: Outgoing,
        now: DateTime<Utc>,
    ) -> Result<Composed, Box<(Outgoing, String)>> {
        match self.email(&Draft::of(&m), now) {
            Ok((rendered, to, bytes)) => Ok(Composed {
                subject: rendered.subject,
                to,
                bytes,
                message: m,
            }),
            Err(reason) => Err(Box::new((m, reason))),
        }
    }

    /// Composes a chunk on every core: rendering is the CPU-heavy part of
    /// sending (Handlebars, Markdown, signing), and a chunk's messages are
    /// independent. Results keep the chunk's order.
    pub fn compose_all(
        &self,
        chunk: Vec<Outgoing>,
        now: DateTime<Utc>,
    ) -> Vec<Result<Composed, Box<(Outgoing, String)>>> {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(chunk.len() / 8)
            .max(1);
        if threads == 1 {
            return chunk.into_iter().map(|m| self.compose(m, now)).collect();
        }
        let size = chunk.len().div_ceil(threads);
        let mut parts: Vec<Vec<Outgoing>> = Vec::new();
        let mut rest = chunk.into_iter();
        loop {
            let part: Vec<Outgoing> = rest.by_ref().take(size).collect();
            if part.is_empty() {
                break;
            }
            parts.push(part);
        }
        std::thread::scope(|scope| {
            let handles: Vec<_> = parts
                .into_iter()
                .map(|part| {
                    scope.spawn(move || {
                        part.into_iter()
                            .map(|m| self.compose(m, now))
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
        })
    }
}
