//! Checks that a well-formed configuration also makes sense: addresses parse,
//! zones exist, names refer to declared things. Returns every problem with
//! the dotted key it is about, so the caller can name the line.

use std::collections::HashSet;
use std::net::SocketAddr;

use super::settings::Settings;
use crate::domain::account::check_role_name;
use crate::domain::condition::compile_checked;
use crate::domain::customer::{Email, parse_locale, parse_name, parse_timezone};

type Found = Vec<(String, String)>;

/// The shortest `delivery.lease` that renewals keep alive.
const MIN_LEASE: std::time::Duration = std::time::Duration::from_secs(3);

pub fn validate(s: &Settings) -> Found {
    let mut found = Found::new();
    let mut problem = |key: &str, message: String| found.push((key.to_owned(), message));

    if s.company.name.trim().is_empty() {
        problem(
            "company.name",
            "company.name is empty; mail and footers need the company's name".into(),
        );
    }
    if s.company.postal_address.trim().is_empty() {
        problem(
            "company.postal_address",
            "company.postal_address is empty; every footer must carry the company's postal address (CAN-SPAM)".into(),
        );
    }
    if let Err(e) = super::database_url::DatabaseUrl::parse(&s.database.url) {
        problem("database.url", e.to_string());
    }
    if s.database.max_connections == 0 {
        problem(
            "database.max_connections",
            "database.max_connections is 0; use at least 1".into(),
        );
    }
    if let Err(e) = parse_mailbox(&s.mail.from) {
        problem("mail.from", format!("mail.from: {e}"));
    }
    if let Err(e) = Email::parse(&s.mail.reply_to) {
        problem("mail.reply_to", format!("mail.reply_to: {e}"));
    }
    if let Some(dkim) = &s.mail.dkim {
        if dkim.selector.trim().is_empty() || dkim.domain.trim().is_empty() {
            problem(
                "mail.dkim.selector",
                "mail.dkim needs a selector and a domain (s= and d= of the signature)".into(),
            );
        }
        if let Err(e) = super::dkim::Key::load(dkim) {
            problem("mail.dkim.private_key_file", e.to_string());
        }
    }
    // A live instance renews its claims every third of the lease; a lease
    // of a second or two would lapse whenever one renewal waits on a busy
    // store, and another instance could take a message still being sent.
    if s.delivery.lease.as_std() < MIN_LEASE {
        problem(
            "delivery.lease",
            format!(
                "delivery.lease ({}) is too short: a live instance renews its claims every third of the lease, and a lease under {} could lapse while a renewal waits on the store; use {} or more (the default is 1m)",
                humantime::format_duration(s.delivery.lease.as_std()),
                humantime::format_duration(MIN_LEASE),
                humantime::format_duration(MIN_LEASE),
            ),
        );
    }
    if s.instance.name.chars().count() > 200
        || s.instance.name.chars().any(char::is_control)
        || (!s.instance.name.is_empty() && s.instance.name.trim().is_empty())
    {
        problem(
            "instance.name",
            format!(
                "instance.name {:?} is not a usable name; write up to 200 printable characters, such as \"web1\", or leave it empty for the host name",
                s.instance.name
            ),
        );
    }
    if s.mail.smtp.pool_size == 0 {
        problem(
            "mail.smtp.pool_size",
            "mail.smtp.pool_size is 0; use at least 1".into(),
        );
    }
    if s.http.listen.parse::<SocketAddr>().is_err() {
        problem(
            "http.listen",
            format!(
                "http.listen {:?} is not an address and port; write one such as 127.0.0.1:8080",
                s.http.listen
            ),
        );
    }
    if let Some(imap) = &s.inbound.imap {
        for (key, value) in [
            ("inbound.imap.host", &imap.host),
            ("inbound.imap.username", &imap.username),
            ("inbound.imap.mailbox", &imap.mailbox),
        ] {
            if value.trim().is_empty() {
                problem(
                    key,
                    format!(
                        "{key} is empty; polling the reply mailbox needs it (or remove [inbound.imap])"
                    ),
                );
            }
        }
    }
    match url::Url::parse(&s.http.public_url) {
        Ok(u) if u.scheme() == "https" && u.host().is_some() => {}
        Ok(u) if u.scheme() == "http" && u.host().is_some_and(is_loopback) => {}
        Ok(u) if u.scheme() == "http" && u.host().is_some() => problem(
            "http.public_url",
            format!(
                "http.public_url {:?} is plain http: links in mail would travel unencrypted and one-click unsubscribe (RFC 8058) needs https; put tend behind a TLS proxy and set http.public_url to its https address, such as https://tend.acme.example (plain http is accepted only on a loopback address, for trying tend out)",
                s.http.public_url
            ),
        ),
        _ => problem(
            "http.public_url",
            format!(
                "http.public_url {:?} is not an http(s) URL; write the address customers reach tend at, such as https://tend.acme.example",
                s.http.public_url
            ),
        ),
    }
    if let Err(e) = parse_timezone(&s.customers.default_timezone) {
        problem(
            "customers.default_timezone",
            format!("customers.default_timezone: {e}"),
        );
    }
    if let Err(e) = parse_locale(&s.customers.default_locale) {
        problem(
            "customers.default_locale",
            format!("customers.default_locale: {e}"),
        );
    }
    if s.delivery.concurrency == 0 {
        problem(
            "delivery.concurrency",
            "delivery.concurrency is 0; use at least 1".into(),
        );
    }
    let most = super::settings::MOST_AT_ONCE;
    if s.delivery.concurrency as usize > most {
        problem(
            "delivery.concurrency",
            format!(
                "delivery.concurrency is {}, above the most tend sends at once ({most}); use {most} or less",
                s.delivery.concurrency
            ),
        );
    }
    if let Err(e) = s.delivery.window.parse() {
        problem("delivery.window", format!("delivery.window: {e}"));
    }
    if s.delivery.cap.max == 0 {
        problem(
            "delivery.cap.max",
            "delivery.cap.max is 0, which would hold every message forever; use at least 1".into(),
        );
    }

    let mut categories = HashSet::new();
    for (i, c) in s.categories.iter().enumerate() {
        if !is_name(&c.name) {
            problem(
                &format!("category.{i}.name"),
                format!(
                    "category name {:?} must be lower-case letters, digits, '_' or '-'",
                    c.name
                ),
            );
        } else if !categories.insert(c.name.as_str()) {
            problem(
                &format!("category.{i}.name"),
                format!("category {:?} is declared twice; keep one", c.name),
            );
        }
    }
    for (i, name) in s.delivery.priority.iter().enumerate() {
        if !categories.contains(name.as_str()) {
            problem(
                &format!("delivery.priority.{i}"),
                format!(
                    "delivery.priority names {name:?}, which no [[category]] declares; declare it or remove it"
                ),
            );
        }
    }

    let mut stages = HashSet::new();
    for (i, stage) in s.lifecycle.stages.iter().enumerate() {
        if !is_name(&stage.name) {
            problem(
                &format!("lifecycle.stage.{i}.name"),
                format!(
                    "stage name {:?} must be lower-case letters, digits, '_' or '-'",
                    stage.name
                ),
            );
        } else if !stages.insert(stage.name.as_str()) {
            problem(
                &format!("lifecycle.stage.{i}.name"),
                format!(
                    "stage {:?} has two rules; the first would always win, so merge them",
                    stage.name
                ),
            );
        }
        if let Err(e) = compile_checked(&stage.when) {
            problem(
                &format!("lifecycle.stage.{i}.when"),
                format!("stage {:?}: {e}", stage.name),
            );
        }
    }

    let mut account_stages = HashSet::new();
    for (i, stage) in s.lifecycle.account_stages.iter().enumerate() {
        let key = |field: &str| format!("lifecycle.account_stage.{i}.{field}");
        if !is_name(&stage.name) {
            problem(
                &key("name"),
                format!(
                    "account stage name {:?} must be lower-case letters, digits, '_' or '-'",
                    stage.name
                ),
            );
        } else if !account_stages.insert(stage.name.as_str()) {
            problem(
                &key("name"),
                format!(
                    "account stage {:?} has two rules; the first would always win, so merge them",
                    stage.name
                ),
            );
        }
        if let Err(e) = compile_checked(&stage.when) {
            problem(&key("when"), format!("account stage {:?}: {e}", stage.name));
        } else if crate::domain::condition::mentions_customer(&stage.when) {
            problem(
                &key("when"),
                format!(
                    "account stage {:?}: an account's stage is about the account; use account.* instead of customer.*",
                    stage.name
                ),
            );
        }
    }

    let mut roles = HashSet::new();
    for (i, role) in s.accounts.roles.iter().enumerate() {
        if let Err(e) = check_role_name(role) {
            problem(
                &format!("accounts.roles.{i}"),
                format!("accounts.roles: {e}"),
            );
        } else if !roles.insert(role.as_str()) {
            problem(
                &format!("accounts.roles.{i}"),
                format!("accounts.roles names {role:?} twice; keep one"),
            );
        }
    }
    for (i, role) in s.incidents.roles.iter().enumerate() {
        if !roles.contains(role.as_str()) {
            problem(
                &format!("incidents.roles.{i}"),
                format!(
                    "incidents.roles names {role:?}, which [accounts] roles does not declare; declare it or remove it"
                ),
            );
        }
    }
    let mut team = HashSet::new();
    let mut calendars = HashSet::new();
    for (i, calendar) in s.holidays.iter().enumerate() {
        if calendar.name.trim().is_empty() {
            problem(
                &format!("holidays.{i}.name"),
                "a [[holidays]] calendar needs a name; add name = \"office\" (delivery.holidays refers to it by name)"
                    .into(),
            );
        } else if !calendars.insert(calendar.name.as_str()) {
            problem(
                &format!("holidays.{i}.name"),
                format!(
                    "holiday calendar {:?} is declared twice; keep one",
                    calendar.name
                ),
            );
        }
        if let Err(e) = super::holidays::read(&calendar.name, std::path::Path::new(&calendar.file))
        {
            problem(&format!("holidays.{i}.file"), e);
        }
    }
    if let Some(name) = &s.delivery.holidays
        && !calendars.contains(name.as_str())
    {
        problem("delivery.holidays", super::holidays::unknown(name, s));
    }
    for (i, member) in s.team.iter().enumerate() {
        if !is_name(&member.id) {
            problem(
                &format!("team.{i}.id"),
                format!(
                    "team member id {:?} must be lower-case letters, digits, '_' or '-' (accounts name it as their owner)",
                    member.id
                ),
            );
        } else if !team.insert(member.id.as_str()) {
            problem(
                &format!("team.{i}.id"),
                format!("team member {:?} is declared twice; keep one", member.id),
            );
        }
        if let Err(e) = parse_name(&member.name).and_then(|name| {
            if name.is_empty() {
                Err("name is empty; it is the From name of mail sent as this member".into())
            } else {
                Ok(name)
            }
        }) {
            problem(
                &format!("team.{i}.name"),
                format!("team member {:?}: {e}", member.id),
            );
        }
        if let Err(e) = Email::parse(&member.email) {
            problem(
                &format!("team.{i}.email"),
                format!("team member {:?}: {e}", member.id),
            );
        }
    }

    let mut hooks = HashSet::new();
    for (i, hook) in s.webhooks.iter().enumerate() {
        if !is_name(&hook.name) {
            problem(
                &format!("webhook.{i}.name"),
                format!(
                    "webhook name {:?} must be lower-case letters, digits, '_' or '-' (alerts, tend webhooks and the metrics name it)",
                    hook.name
                ),
            );
        } else if !hooks.insert(hook.name.as_str()) {
            problem(
                &format!("webhook.{i}.name"),
                format!("webhook {:?} is declared twice; keep one", hook.name),
            );
        }
        match url::Url::parse(&hook.url) {
            Ok(u) if matches!(u.scheme(), "https" | "http") && u.host_str().is_some() => {}
            _ => problem(
                &format!("webhook.{i}.url"),
                format!(
                    "webhook {:?}: url {:?} is not an http(s) URL; write the endpoint's full address, e.g. https://crm.example/hooks/tend",
                    hook.name, hook.url
                ),
            ),
        }
        for (j, pattern) in hook.events.iter().enumerate() {
            if !crate::domain::signal::is_pattern(pattern) {
                let near =
                    crate::suggest::closest(pattern, crate::domain::signal::TYPES.iter().copied())
                        .map(|n| format!("did you mean {n:?}? "))
                        .unwrap_or_default();
                problem(
                    &format!("webhook.{i}.events.{j}"),
                    format!(
                        "webhook {:?}: {pattern:?} is no event; {near}use one of {}, a family such as response.*, or *",
                        hook.name,
                        crate::domain::signal::TYPES.join(", ")
                    ),
                );
            }
        }
        if hook.max_backlog == 0 {
            problem(
                &format!("webhook.{i}.max_backlog"),
                format!("webhook {:?}: max_backlog must be at least 1", hook.name),
            );
        }
    }
    let endpoints: Vec<&str> = s.webhooks.iter().map(|w| w.name.as_str()).collect();
    let mut labels: HashSet<&str> = if s.alerts.defaults {
        HashSet::from(["replies", "detractors"])
    } else {
        HashSet::new()
    };
    for (i, rule) in s.alert_rules.iter().enumerate() {
        let templates = &s.paths.templates;
        let parsed =
            crate::domain::alert::parse(&rule.on, &rule.when, &rule.to, &s.team, &endpoints)
                .and_then(|_| match rule.template.as_str() {
                    "" => Ok(()),
                    name => super::alert_template(templates, name)
                        .map(drop)
                        .map_err(|e| ("template", e)),
                });
        if let Err((key, e)) = parsed {
            problem(
                &format!("alert.{i}.{key}"),
                format!("alert {:?}: {e}", rule.label()),
            );
        } else if let Some(stage) = rule.on.strip_prefix("stage:")
            && !s.lifecycle.stages.iter().any(|l| l.name == stage)
        {
            let known: Vec<&str> = s.lifecycle.stages.iter().map(|l| l.name.as_str()).collect();
            let near = crate::suggest::closest(stage, known.iter().copied())
                .map(|n| format!("did you mean stage:{n}? "))
                .unwrap_or_default();
            problem(
                &format!("alert.{i}.on"),
                format!(
                    "alert {:?}: no [[lifecycle.stage]] is named {stage:?}, so it would never fire; {near}the stages are {}",
                    rule.label(),
                    known.join(", ")
                ),
            );
        }
        if crate::domain::alert::On::parse(&rule.on).is_ok() && !labels.insert(rule.label()) {
            problem(
                &format!("alert.{i}.on"),
                format!(
                    "another alert rule is already named {:?} (a rule is named by its name, else its on); give this one a name of its own",
                    rule.label()
                ),
            );
        }
    }

    if tracing_subscriber::EnvFilter::try_new(&s.log.level).is_err() {
        problem(
            "log.level",
            format!(
                "log.level {:?} is not a level; use error, warn, info, debug or trace",
                s.log.level
            ),
        );
    }
    found
}

/// What a valid configuration still does differently from production, as
/// `(key, message)`: worth a line from `tend check`, not a refusal.
pub fn notices(s: &Settings) -> Vec<(String, String)> {
    let mut found = Vec::new();
    if let Ok(u) = url::Url::parse(&s.http.public_url)
        && u.scheme() == "http"
        && u.host().is_some_and(is_loopback)
    {
        found.push((
            "http.public_url".to_owned(),
            format!(
                "http.public_url {:?} is plain http on this machine, so mail carries List-Unsubscribe without List-Unsubscribe-Post: one-click unsubscribe (RFC 8058) needs an https address; before mailing customers, put tend behind a TLS proxy and set http.public_url to its https address",
                s.http.public_url
            ),
        ));
    }
    found
}

/// 127.0.0.0/8, ::1 or `localhost`: a URL only this machine reaches.
fn is_loopback(host: url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// `Name <addr@domain>` or a bare address.
pub fn parse_mailbox(raw: &str) -> Result<(String, Email), String> {
    let text = raw.trim();
    if text.contains(['\r', '\n']) {
        return Err("a line break is not allowed in an address".into());
    }
    match (text.rfind('<'), text.ends_with('>')) {
        (Some(open), true) => {
            let name = text[..open].trim().trim_matches('"').to_owned();
            Ok((name, Email::parse(&text[open + 1..text.len() - 1])?))
        }
        (None, false) => Ok((String::new(), Email::parse(text)?)),
        _ => Err(format!(
            "{raw:?} is not an address; write one such as Acme Success <success@acme.example>"
        )),
    }
}

fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(validate(&Settings::default()), Found::new());
    }

    #[test]
    fn public_url_is_https_or_loopback() {
        let keys = |url: &str| {
            let mut s = Settings::default();
            s.http.public_url = url.into();
            let problems: Vec<String> = validate(&s).into_iter().map(|(k, _)| k).collect();
            let notices: Vec<String> = notices(&s).into_iter().map(|(k, _)| k).collect();
            (problems, notices)
        };
        let none: Vec<String> = Vec::new();
        let key = vec!["http.public_url".to_owned()];
        assert_eq!(
            keys("https://tend.acme.example"),
            (none.clone(), none.clone())
        );
        assert_eq!(keys("https://127.0.0.1:8443"), (none.clone(), none.clone()));
        for loopback in [
            "http://127.0.0.1:8080",
            "http://127.3.4.5/",
            "http://[::1]:8080",
            "http://localhost:8080",
            "http://LOCALHOST",
        ] {
            assert_eq!(keys(loopback), (none.clone(), key.clone()), "{loopback}");
        }
        for outside in [
            "http://tend.acme.example",
            "http://10.0.0.5:8080",
            "http://[::2]",
            "http://localhost.acme.example",
            "ftp://tend.acme.example",
        ] {
            assert_eq!(keys(outside), (key.clone(), none.clone()), "{outside}");
        }
    }

    #[test]
    fn mailboxes() {
        let (name, email) = parse_mailbox("Acme Success <success@acme.example>").unwrap();
        assert_eq!(
            (name.as_str(), email.as_str()),
            ("Acme Success", "success@acme.example")
        );
        assert!(parse_mailbox("Acme <success@acme.example").is_err());
        assert!(parse_mailbox("Acme\r\nBcc: x@y.example <a@b.example>").is_err());
    }

    #[test]
    fn every_problem_is_listed() {
        let mut s = Settings::default();
        s.company.postal_address.clear();
        s.customers.default_timezone = "Mars/Base".into();
        s.delivery.priority.push("nope".into());
        s.http.listen = "localhost".into();
        s.inbound.imap = Some(crate::config::settings::Imap::default());
        let keys: Vec<String> = validate(&s).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "company.postal_address",
                "http.listen",
                "inbound.imap.username",
                "customers.default_timezone",
                "delivery.priority.5"
            ]
        );
    }
}
