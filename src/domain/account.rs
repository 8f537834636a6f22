//! Accounts (the companies that buy) and the roles their contacts hold.
//!
//! A customer with an `account_id` is a contact of that account; one
//! without is a contact who is their own account, so everything written
//! before accounts existed keeps its meaning ([`Account::of_contact`]).

use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::availability::Availability;
use super::customer::{Customer, CustomerId, CustomerRecord, Email};

/// An account's id: the company's own, with the same rules as a customer's
/// (one line, never empty, at most 200 characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(String);

impl AccountId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        CustomerId::parse(raw)
            .map(|id| Self(id.as_str().to_owned()))
            .map_err(|e| e.replace("every customer", "every account"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The roles a contact holds in their account (`billing`, `admin`, …),
/// each a declared name, in the order given, without repeats.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Roles(Vec<String>);

/// The roles a configuration declares when it names none.
pub const DEFAULT_ROLES: &[&str] = &["admin", "billing", "technical", "champion", "user"];

impl Roles {
    /// Parses roles given as separate names, each one of `declared`.
    pub fn parse<'a>(
        names: impl IntoIterator<Item = &'a str>,
        declared: &[String],
    ) -> Result<Self, String> {
        let mut roles: Vec<String> = Vec::new();
        for name in names.into_iter().map(str::trim).filter(|n| !n.is_empty()) {
            if !declared.iter().any(|d| d == name) {
                return Err(format!(
                    "role {name:?} is not declared; use one of {}, or add it to [accounts] roles in the config",
                    declared.join(", ")
                ));
            }
            if !roles.iter().any(|r| r == name) {
                roles.push(name.to_owned());
            }
        }
        Ok(Self(roles))
    }

    /// Roles as the store keeps them: names joined by commas.
    pub fn stored(joined: &str) -> Self {
        Self(
            joined
                .split(',')
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }

    /// The form [`Roles::stored`] reads.
    pub fn joined(&self) -> String {
        self.0.join(",")
    }

    pub fn names(&self) -> &[String] {
        &self.0
    }

    pub fn has(&self, role: &str) -> bool {
        self.0.iter().any(|r| r == role)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The contacts an account-scope step goes to: those holding one of `to`
/// (everyone when `to` is empty); when none does, the account's `admin`s;
/// when it has none either, every contact.
pub fn recipients<'a>(contacts: &'a [Customer], to: &[String]) -> Vec<&'a Customer> {
    let holding = |roles: &[String]| -> Vec<&'a Customer> {
        contacts
            .iter()
            .filter(|c| roles.iter().any(|r| c.record.roles.has(r)))
            .collect()
    };
    if to.is_empty() {
        return contacts.iter().collect();
    }
    let chosen = holding(to);
    if !chosen.is_empty() {
        return chosen;
    }
    let admins = holding(&["admin".to_owned()]);
    if !admins.is_empty() {
        return admins;
    }
    contacts.iter().collect()
}

/// Checks a role name a configuration declares: a short lowercase word.
pub fn check_role_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "role {name:?} is not a role name; use lowercase letters, digits, - and _ (such as billing or it-admin)"
        ))
    }
}

/// The fields of an account record, as import and the API name them.
pub const ACCOUNT_FIELDS: &[&str] = &[
    "id",
    "name",
    "plan",
    "renewal_at",
    "health",
    "owner",
    "attributes",
    "holidays",
    "quiet_until",
];

/// What import and the API know about an account: one complete record.
/// Writing it replaces the stored fields; its stage and history are kept.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountRecord {
    pub id: AccountId,
    pub name: String,
    pub plan: String,
    pub renewal_at: Option<DateTime<Utc>>,
    pub health: Option<u8>,
    /// A `[[team]]` member's id.
    pub owner: Option<String>,
    pub attributes: Map<String, Value>,
    /// The holiday calendar and quiet period of every contact who sets
    /// none of their own.
    pub availability: Availability,
}

impl AccountRecord {
    /// The record as an import row ([`ACCOUNT_FIELDS`]): import reads it
    /// back as the same record.
    pub fn as_row(&self) -> Map<String, Value> {
        let row = serde_json::json!({
            "id": self.id.to_string(),
            "name": self.name,
            "plan": self.plan,
            "renewal_at": self.renewal_at,
            "health": self.health,
            "owner": self.owner,
            "attributes": self.attributes,
            "holidays": self.availability.holidays,
            "quiet_until": self.availability.quiet_until,
        });
        match row {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    /// An account known only by the id a contact named.
    pub fn only_id(id: AccountId) -> Self {
        Self {
            id,
            name: String::new(),
            plan: String::new(),
            renewal_at: None,
            health: None,
            owner: None,
            attributes: Map::new(),
            availability: Availability::default(),
        }
    }
}

/// A member of the success team (`[[team]]` in the config): an account's
/// `owner`, in whose name mail may go.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TeamMember {
    pub id: String,
    pub name: String,
    pub email: String,
    /// Markdown, under mail sent as this member in the default layout.
    #[serde(default)]
    pub signature: String,
    /// What they may do in the console (`viewer`, the default, or
    /// `manager`).
    #[serde(default)]
    pub role: crate::domain::console::Role,
}

impl TeamMember {
    /// The owner `tend check` evaluates conditions and renders templates with.
    pub fn sample() -> Self {
        Self {
            id: "sample".into(),
            name: "Sam Owner".into(),
            email: "owner@example.com".into(),
            signature: "Sam Owner, Customer Success".into(),
            role: crate::domain::console::Role::Viewer,
        }
    }
}

/// What conditions and templates see as `account.*`, in this order.
pub const ACCOUNT_SEEN: &[&str] = &[
    "id",
    "name",
    "plan",
    "renewal_at",
    "health",
    "owner",
    "stage",
    "stage_entered_at",
    "contacts",
    "attributes",
];

/// An account with its owner as the team has them: what conditions and
/// templates read as `account`.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountFacts {
    pub account: Account,
    /// `None` when the account has no owner or names one the team lacks.
    pub owner: Option<TeamMember>,
}

impl AccountFacts {
    /// The account with its owner found in `team`.
    pub fn with_team(account: Account, team: &[TeamMember]) -> Self {
        let owner = account.owner_in(team).cloned();
        Self { account, owner }
    }

    /// The account and owner `tend check` uses.
    pub fn sample(now: DateTime<Utc>) -> Self {
        Self {
            account: Account::sample(now),
            owner: Some(TeamMember::sample()),
        }
    }
}

/// An account as stored: the record plus what tend derived.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub record: AccountRecord,
    /// Computed by the `[[lifecycle.account_stage]]` rules.
    pub stage: Option<String>,
    pub stage_entered_at: Option<DateTime<Utc>>,
    /// How many contacts it has.
    pub contacts: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Account {
    /// The account `tend check` evaluates conditions and renders templates
    /// against: every field set, no attributes (checks add the ones used).
    pub fn sample(now: DateTime<Utc>) -> Self {
        let day = chrono::Duration::days(1);
        Self {
            record: AccountRecord {
                id: AccountId("sample-account".into()),
                name: "Sample Corp".into(),
                plan: "enterprise".into(),
                renewal_at: Some(now + day * 100),
                health: Some(70),
                owner: Some("sample".into()),
                attributes: Map::new(),
                availability: Availability::default(),
            },
            stage: Some("adopting".into()),
            stage_entered_at: Some(now - day * 40),
            contacts: 3,
            created_at: now - day * 40,
            updated_at: now,
        }
    }

    /// The account as what account-scope steps are planned for: its
    /// fields where a person's would be (`renewal_at`, `attributes.NAME`,
    /// its stage), in `zone` (an account has no zone of its own; its
    /// contacts' windows apply when each message is sent).
    pub fn subject(&self, zone: chrono_tz::Tz) -> Customer {
        let r = &self.record;
        Customer {
            record: CustomerRecord {
                id: CustomerId::stored(r.id.as_str()),
                email: Email::stored(String::new()),
                name: r.name.clone(),
                timezone: zone,
                locale: String::new(),
                plan: r.plan.clone(),
                signup_at: None,
                renewal_at: r.renewal_at,
                last_seen_at: None,
                health: r.health,
                attributes: r.attributes.clone(),
                account_id: Some(r.id.clone()),
                roles: Roles::default(),
                availability: Availability::default(),
            },
            stage: self.stage.clone(),
            stage_entered_at: self.stage_entered_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
            account_availability: r.availability.clone(),
        }
    }

    /// Its owner as `team` has them: `None` when it has none, or names one
    /// the team lacks.
    pub fn owner_in<'t>(&self, team: &'t [TeamMember]) -> Option<&'t TeamMember> {
        let owner = self.record.owner.as_ref()?;
        team.iter().find(|m| &m.id == owner)
    }

    /// The account of a contact who has none: the contact's own fields.
    pub fn of_contact(contact: &Customer) -> Self {
        let r = &contact.record;
        Self {
            record: AccountRecord {
                id: AccountId(r.id.as_str().to_owned()),
                name: r.name.clone(),
                plan: r.plan.clone(),
                renewal_at: r.renewal_at,
                health: r.health,
                owner: None,
                attributes: r.attributes.clone(),
                availability: contact.availability(),
            },
            stage: contact.stage.clone(),
            stage_entered_at: contact.stage_entered_at,
            contacts: 1,
            created_at: contact.created_at,
            updated_at: contact.updated_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declared() -> Vec<String> {
        DEFAULT_ROLES.iter().map(|r| r.to_string()).collect()
    }

    #[test]
    fn roles_are_declared_names_without_repeats() {
        let roles = Roles::parse(["billing", " admin", "billing", ""], &declared()).unwrap();
        assert_eq!(roles.names(), ["billing", "admin"]);
        assert_eq!(Roles::stored(&roles.joined()), roles);
        assert_eq!(Roles::stored(""), Roles::default());
        let e = Roles::parse(["biling"], &declared()).unwrap_err();
        assert!(e.contains("\"biling\" is not declared"), "{e}");
        assert!(e.contains("[accounts] roles"), "{e}");
    }

    #[test]
    fn role_names_are_short_lowercase_words() {
        assert!(check_role_name("it-admin").is_ok());
        assert!(check_role_name("Billing").is_err());
        assert!(
            check_role_name("a,b").is_err(),
            "commas separate stored roles"
        );
        assert!(check_role_name("").is_err());
    }

    #[test]
    fn account_ids_follow_customer_id_rules() {
        assert_eq!(AccountId::parse(" acme ").unwrap().as_str(), "acme");
        let e = AccountId::parse("").unwrap_err();
        assert!(e.contains("every account"), "{e}");
        assert!(AccountId::parse("a\nb").is_err());
    }

    fn contact(id: &str, roles: &[&str]) -> Customer {
        let mut c = Customer::sample(chrono::Utc::now());
        c.record.id = CustomerId::parse(id).unwrap();
        c.record.roles = Roles::parse(roles.iter().copied(), &declared()).unwrap();
        c
    }

    fn ids(chosen: Vec<&Customer>) -> Vec<&str> {
        chosen.iter().map(|c| c.record.id.as_str()).collect()
    }

    #[test]
    fn a_step_goes_to_its_roles_else_the_admins_else_everyone() {
        let all = [
            contact("ana", &["billing", "admin"]),
            contact("bo", &["technical"]),
            contact("cy", &["admin"]),
            contact("di", &[]),
        ];
        let to = |roles: &[&str]| -> Vec<String> { roles.iter().map(|r| r.to_string()).collect() };
        assert_eq!(ids(recipients(&all, &to(&["billing"]))), ["ana"]);
        assert_eq!(
            ids(recipients(&all, &to(&["technical", "billing"]))),
            ["ana", "bo"]
        );
        assert_eq!(
            ids(recipients(&all, &to(&["champion"]))),
            ["ana", "cy"],
            "the admins"
        );
        assert_eq!(
            ids(recipients(&all[1..2], &to(&["champion"]))),
            ["bo"],
            "everyone"
        );
        assert_eq!(ids(recipients(&all, &[])), ["ana", "bo", "cy", "di"]);
        assert!(recipients(&[], &to(&["billing"])).is_empty());
    }
}
