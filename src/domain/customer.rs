//! Customers: the validated record that import and the API write, and the
//! stored customer the rest of tend reads.

use std::fmt;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use email_address::{EmailAddress, Options};
use serde_json::{Map, Value};

use super::account::{AccountId, Roles};
use super::availability::Availability;
use super::control::is_control;

/// The company's own id for a customer (unique, never empty).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CustomerId(String);

impl CustomerId {
    /// Longest id accepted: ids travel in tokens and URLs.
    pub const MAX_LEN: usize = 200;

    pub fn parse(raw: &str) -> Result<Self, String> {
        let id = raw.trim();
        if id.is_empty() {
            return Err("id is empty; every customer needs the company's own id".into());
        }
        if id.len() > Self::MAX_LEN {
            return Err(format!(
                "id is {} characters long; at most {} are allowed",
                id.len(),
                Self::MAX_LEN
            ));
        }
        if id.chars().any(char::is_control) {
            return Err("id contains a control character (a line break or tab?)".into());
        }
        Ok(Self(id.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An id already checked (an account's, which follows the same rules).
    pub(crate) fn stored(id: &str) -> Self {
        Self(id.to_owned())
    }
}

impl fmt::Display for CustomerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A syntactically valid mailbox address (`local@domain`), without a display
/// name, so it can never carry a header or a second recipient.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err("email is empty; every customer needs an address".into());
        }
        let options = Options::default()
            .without_display_text()
            .without_domain_literal();
        match EmailAddress::parse_with_options(trimmed, options) {
            Ok(address) if address.domain().contains('.') => Ok(Self(address.to_string())),
            Ok(_) => Err(format!(
                "email {trimmed:?} has no domain with a dot; write a full address such as ana@example.com"
            )),
            Err(e) => Err(format!("email {trimmed:?} is not a valid address ({e})")),
        }
    }

    /// An address the store holds: it was parsed when it was written.
    pub(crate) fn stored(address: String) -> Self {
        Self(address)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses an IANA time zone name such as `Europe/Berlin`.
pub fn parse_timezone(raw: &str) -> Result<Tz, String> {
    raw.trim().parse::<Tz>().map_err(|_| {
        format!("time zone {raw:?} is not an IANA zone name; write one such as Europe/Berlin or America/New_York")
    })
}

/// Parses a locale tag such as `en`, `de-AT` or `pt_BR`.
pub fn parse_locale(raw: &str) -> Result<String, String> {
    let locale = raw.trim();
    let well_formed = !locale.is_empty()
        && locale.len() <= 35
        && locale.split(['-', '_']).all(|part| {
            !part.is_empty() && part.len() <= 8 && part.chars().all(|c| c.is_ascii_alphanumeric())
        });
    if well_formed {
        Ok(locale.replace('_', "-"))
    } else {
        Err(format!(
            "locale {raw:?} is not a language tag; write one such as en, de-AT or pt-BR"
        ))
    }
}

/// Longest name accepted, in characters. A name goes into the `To:` header
/// and often the subject of every message; real names, even with a company
/// or a title, fit well under a hundred, and a 200 KB name once made a
/// 204,823-octet `To:` line (RFC 5322 allows 998 octets a line).
pub const MAX_NAME_CHARS: usize = 256;

/// Parses a customer's name: one line of printable text, at most
/// [`MAX_NAME_CHARS`] characters; surrounding whitespace is dropped.
pub fn parse_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.contains(['\r', '\n']) {
        return Err("name contains a line break; a name is one line".into());
    }
    // A control character would reach a header, a terminal or (NUL) a
    // PostgreSQL text column, which refuses it; a bidi override would
    // reorder the text around the name in a subject line.
    if let Some((at, c)) = name.chars().enumerate().find(|(_, c)| is_control(*c)) {
        return Err(format!(
            "name contains the control character {} at character {}; a name is printable text, so remove it",
            c.escape_unicode(),
            at + 1
        ));
    }
    let length = name.chars().count();
    if length > MAX_NAME_CHARS {
        return Err(format!(
            "name is {length} characters long; at most {MAX_NAME_CHARS} are allowed"
        ));
    }
    Ok(name.to_owned())
}

/// Parses a health score, a whole number from 0 to 100.
pub fn parse_health(raw: &str) -> Result<u8, String> {
    match raw.trim().parse::<u8>() {
        Ok(h) if h <= 100 => Ok(h),
        _ => Err(format!(
            "health {raw:?} is not a whole number from 0 to 100"
        )),
    }
}

/// The fields of a customer record, as import and the API name them.
pub const RECORD_FIELDS: &[&str] = &[
    "id",
    "email",
    "name",
    "timezone",
    "locale",
    "plan",
    "signup_at",
    "renewal_at",
    "last_seen_at",
    "health",
    "attributes",
    "account_id",
    "roles",
    "holidays",
    "quiet_until",
];

/// What import and the API know about a customer: one complete record.
/// Writing it replaces the stored fields; tend's own state (stage, history)
/// is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerRecord {
    pub id: CustomerId,
    pub email: Email,
    pub name: String,
    pub timezone: Tz,
    pub locale: String,
    pub plan: String,
    pub signup_at: Option<DateTime<Utc>>,
    pub renewal_at: Option<DateTime<Utc>>,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub health: Option<u8>,
    pub attributes: Map<String, Value>,
    /// The account this person is a contact of; none: their own account.
    pub account_id: Option<AccountId>,
    /// The roles they hold in their account.
    pub roles: Roles,
    /// Their holiday calendar and quiet period, where set.
    pub availability: Availability,
}

/// A customer as stored: the record plus what tend derived and when.
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    pub record: CustomerRecord,
    /// The lifecycle stage computed by the `[[lifecycle.stage]]` rules.
    pub stage: Option<String>,
    pub stage_entered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// What their account's record says of their availability (nothing
    /// without an account).
    pub account_availability: Availability,
}

impl CustomerRecord {
    /// The record as an import row ([`RECORD_FIELDS`]): import reads it
    /// back as the same record, and the timeline shows it.
    pub fn as_row(&self) -> Map<String, Value> {
        let row = serde_json::json!({
            "id": self.id.to_string(),
            "email": self.email.to_string(),
            "name": self.name,
            "timezone": self.timezone.name(),
            "locale": self.locale,
            "plan": self.plan,
            "signup_at": self.signup_at,
            "renewal_at": self.renewal_at,
            "last_seen_at": self.last_seen_at,
            "health": self.health,
            "attributes": self.attributes,
            "account_id": self.account_id.as_ref().map(|a| a.to_string()),
            "roles": self.roles.names(),
            "holidays": self.availability.holidays,
            "quiet_until": self.availability.quiet_until,
        });
        match row {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    /// The first word of the name, for greetings; empty when there is no name.
    pub fn first_name(&self) -> &str {
        self.name.split_whitespace().next().unwrap_or("")
    }
}

impl Customer {
    /// When mail may reach them: their own record over their account's.
    pub fn availability(&self) -> Availability {
        self.record.availability.within(&self.account_availability)
    }

    /// The customer `tend check` evaluates conditions and renders templates
    /// against: every field set, no attributes (checks add the ones used).
    pub fn sample(now: DateTime<Utc>) -> Self {
        let day = chrono::Duration::days(1);
        Self {
            record: CustomerRecord {
                id: CustomerId("sample".into()),
                email: Email("sam@example.com".into()),
                name: "Sam Sample".into(),
                timezone: chrono_tz::UTC,
                locale: "en".into(),
                plan: "pro".into(),
                signup_at: Some(now - day * 10),
                renewal_at: Some(now + day * 100),
                last_seen_at: Some(now - day),
                health: Some(70),
                attributes: serde_json::Map::new(),
                account_id: None,
                roles: Roles::default(),
                availability: Availability::default(),
            },
            stage: Some("onboarding".into()),
            stage_entered_at: Some(now - day * 10),
            created_at: now - day * 10,
            updated_at: now,
            account_availability: Availability::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_one_line_of_printable_text_of_reasonable_length() {
        assert_eq!(parse_name("  Zoë 山田 (Acme) ").unwrap(), "Zoë 山田 (Acme)");
        let e = parse_name("Ana\0Lima").unwrap_err();
        assert!(e.contains("control character \\u{0} at character 4"), "{e}");
        assert!(parse_name("\u{1b}[2JAna").is_err());
        assert!(parse_name("Ana\u{202e}amiL").is_err());
        assert!(parse_name("Ana\u{85}Lima").is_err(), "C1 too");
        assert!(parse_name("Ana\tLima").is_err());
        assert!(
            parse_name("Ana\nBcc: x")
                .unwrap_err()
                .contains("line break")
        );
        assert_eq!(
            parse_name(&"é".repeat(MAX_NAME_CHARS))
                .unwrap()
                .chars()
                .count(),
            256
        );
        let e = parse_name(&"a".repeat(MAX_NAME_CHARS + 1)).unwrap_err();
        assert!(e.contains("257 characters long; at most 256"), "{e}");
    }

    #[test]
    fn email_accepts_plain_addresses_and_rejects_headers() {
        assert_eq!(
            Email::parse(" ana@example.com ").unwrap().as_str(),
            "ana@example.com"
        );
        assert!(Email::parse("ana@").is_err());
        assert!(Email::parse("Ana <ana@example.com>").is_err());
        assert!(Email::parse("ana@example.com\r\nBcc: x@evil.example").is_err());
        assert!(Email::parse("ana@localhost").is_err());
        assert!(Email::parse("").is_err());
    }

    #[test]
    fn ids_are_trimmed_and_bounded() {
        assert_eq!(CustomerId::parse(" c-1 ").unwrap().as_str(), "c-1");
        assert!(CustomerId::parse("  ").is_err());
        assert!(CustomerId::parse("a\nb").is_err());
        assert!(CustomerId::parse(&"x".repeat(201)).is_err());
    }

    #[test]
    fn zones_locales_and_health() {
        assert_eq!(
            parse_timezone("Asia/Kathmandu").unwrap(),
            chrono_tz::Asia::Kathmandu
        );
        assert!(parse_timezone("Mars/Olympus").is_err());
        assert_eq!(parse_locale("pt_BR").unwrap(), "pt-BR");
        assert!(parse_locale("en US").is_err());
        assert_eq!(parse_health("100").unwrap(), 100);
        assert!(parse_health("101").is_err());
        assert!(parse_health("-1").is_err());
    }
}
