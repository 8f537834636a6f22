//! The words of an alert: a headline (the mail's subject, a Slack line)
//! and a summary a person can act on without opening anything else: who,
//! of which account, answering which message, said what, and where to look.

use crate::domain::signal::Signal;

use super::rules::Facts;

/// The person, as a headline names them: "Ana Silva (Globex)".
fn who(signal: &Signal, facts: &Facts) -> String {
    let name = facts
        .customer
        .as_ref()
        .map(|c| {
            if c.record.name.trim().is_empty() {
                c.record.email.to_string()
            } else {
                c.record.name.clone()
            }
        })
        .or_else(|| signal.customer_id.clone())
        .unwrap_or_else(|| "someone".to_owned());
    match facts.account.as_ref().filter(|a| !a.record.name.is_empty()) {
        Some(account) => format!("{name} ({})", account.record.name),
        None => name,
    }
}

/// One line: what happened, and to whom.
pub fn headline(signal: &Signal, facts: &Facts) -> String {
    let who = who(signal, facts);
    let subject = facts
        .message
        .as_ref()
        .and_then(|m| m.subject.as_deref())
        .unwrap_or("a message");
    let value = signal.field("value").unwrap_or_default();
    let line = match signal.kind.as_str() {
        "response.reply" => format!("Reply from {who}: {subject}"),
        "response.survey" => {
            let survey = facts
                .survey
                .map_or_else(|| "Survey".to_owned(), |s| s.as_str().to_uppercase());
            format!("{survey} {value} from {who}")
        }
        "response.complaint" => format!("{who} marked \"{subject}\" as spam"),
        "response.bounce" => format!("Mail to {who} bounced ({value})"),
        "response.unsubscribe" => format!("{who} unsubscribed from {value}"),
        "response.click" => format!("{who} followed a link in \"{subject}\""),
        "response.auto_reply" => format!("Automatic reply from {who}"),
        "stage.changed" => format!("{who} entered {}", signal.field("to").unwrap_or("no stage")),
        "customer.erased" => format!(
            "Customer {} was erased at their request: erase what you copied of them",
            signal.field("customer_id").unwrap_or("(unknown)")
        ),
        other => format!("{other}: {who}"),
    };
    // A header line: nothing of it may break it.
    line.replace(['\r', '\n'], " ")
}

/// The whole alert as plain text.
pub fn summary(signal: &Signal, facts: &Facts, public_url: &str) -> String {
    let mut out = headline(signal, facts);
    out.push_str("\n\n");
    if let Some(c) = &facts.customer {
        out.push_str(&format!("Who: {} <{}>", c.record.name, c.record.email));
        out.push_str(&format!(" (customer {})\n", c.record.id));
    }
    if let Some(a) = &facts.account {
        let name = if a.record.name.is_empty() {
            a.record.id.as_str()
        } else {
            &a.record.name
        };
        out.push_str(&format!("Account: {name} ({})", a.record.id));
        if let Some(owner) = &facts.owner {
            out.push_str(&format!(", owned by {}", owner.name));
        }
        out.push('\n');
    }
    if let Some(m) = &facts.message {
        out.push_str(&format!(
            "In answer to: \"{}\" ({} / {}{})\n",
            m.subject.as_deref().unwrap_or(""),
            m.playbook,
            m.step,
            m.sent_at
                .map(|t| format!(", sent {}", t.format("%Y-%m-%d %H:%M UTC")))
                .unwrap_or_default()
        ));
    }
    let value = signal.field("value");
    let comment = signal.field("comment").filter(|c| !c.trim().is_empty());
    match signal.kind.as_str() {
        "response.reply" => {
            out.push_str("\nTheir reply:\n");
            for line in comment.unwrap_or("(no text)").lines() {
                out.push_str(&format!("> {line}\n"));
            }
        }
        "response.survey" => {
            let survey = facts.survey.map_or("survey", |s| s.as_str());
            out.push_str(&format!(
                "\nTheir answer ({survey}): {}\n",
                value.unwrap_or("")
            ));
            if let Some(comment) = comment {
                out.push_str("Their comment:\n");
                for line in comment.lines() {
                    out.push_str(&format!("> {line}\n"));
                }
            }
        }
        _ => {
            if let Some(value) = value {
                out.push_str(&format!("\nValue: {value}\n"));
            }
        }
    }
    out.push('\n');
    if let Some(c) = &facts.customer {
        out.push_str(&format!(
            "Everything about them: tend customer show {} (or GET {public_url}/api/v1/customers/{})\n",
            c.record.id, c.record.id
        ));
    }
    if let Some(a) = &facts.account {
        out.push_str(&format!(
            "Their account: tend account show {} (or GET {public_url}/api/v1/accounts/{})\n",
            a.record.id, a.record.id
        ));
    }
    if facts.customer.is_some() {
        out.push_str("Reply to this mail to write to them directly.\n");
    }
    out
}
