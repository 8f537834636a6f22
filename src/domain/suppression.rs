//! Suppressions as people list and lift them (`GET /api/v1/suppressions`,
//! `DELETE /api/v1/suppressions/{id}`, `tend suppressions`). How a
//! suppression comes to be (an unsubscribe, a bounce, a complaint) is the
//! business of responses and inbound mail.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::customer::CustomerId;

/// One suppression: a customer and a category (`*` for all mail), written
/// `CATEGORY:CUSTOMER`. A category is lower-case letters, digits, `_`,
/// `-` or `*`, so the first `:` parts them whatever the customer id holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuppressionId {
    pub customer: CustomerId,
    pub category: String,
}

impl SuppressionId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let hint = "a suppression id is CATEGORY:CUSTOMER_ID, as the list shows it";
        let (category, customer) = raw
            .split_once(':')
            .ok_or_else(|| format!("{raw:?} has no ':'; {hint}"))?;
        let named = category == "*"
            || (!category.is_empty()
                && category
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'));
        if !named {
            return Err(format!("{category:?} is not a category; {hint}"));
        }
        let customer = CustomerId::parse(customer).map_err(|e| format!("customer {e}; {hint}"))?;
        Ok(Self {
            customer,
            category: category.to_owned(),
        })
    }
}

impl std::fmt::Display for SuppressionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.category, self.customer.as_str())
    }
}

/// Which suppressions to list.
#[derive(Debug, Clone, Default)]
pub struct SuppressionFilter {
    pub customer: Option<CustomerId>,
    pub category: Option<String>,
}

/// A suppression as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuppressionView {
    /// `CATEGORY:CUSTOMER`, what lifting it takes.
    pub id: String,
    pub customer_id: String,
    pub email: String,
    pub category: String,
    pub reason: String,
    /// What suppressed: `one-click`, `unsubscribe page`, `bounce`, …
    pub source: String,
    pub created_at: DateTime<Utc>,
}

/// Who lifts a suppression, and why: both are kept with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lift {
    pub by: String,
    pub why: String,
}

impl Lift {
    /// The longest name and note kept.
    pub const MAX_BY: usize = 200;
    pub const MAX_WHY: usize = 2000;

    pub fn new(by: &str, why: &str) -> Result<Self, String> {
        let (by, why) = (by.trim(), why.trim());
        if by.is_empty() {
            return Err("say who lifts the suppression (`by`): it is kept with it".into());
        }
        if why.is_empty() {
            return Err(
                "say why the suppression is lifted (`reason`), e.g. \"the customer asked by phone on 3 May\": it is kept with it"
                    .into(),
            );
        }
        if by.chars().count() > Self::MAX_BY || why.chars().count() > Self::MAX_WHY {
            return Err(format!(
                "`by` is at most {} characters and `reason` at most {}",
                Self::MAX_BY,
                Self::MAX_WHY
            ));
        }
        if by.chars().any(char::is_control) {
            return Err("`by` contains a control character".into());
        }
        Ok(Self {
            by: by.to_owned(),
            why: why.to_owned(),
        })
    }
}

/// A lifted suppression: what it was, and who lifted it when and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lifted {
    pub customer_id: String,
    pub category: String,
    pub reason: String,
    pub source: String,
    pub suppressed_at: DateTime<Utc>,
    pub lifted_at: DateTime<Utc>,
    pub lifted_by: String,
    pub why: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_a_category_then_a_customer() {
        let id = SuppressionId::parse("tips:acme:42").unwrap();
        assert_eq!(id.category, "tips");
        assert_eq!(id.customer.as_str(), "acme:42");
        assert_eq!(id.to_string(), "tips:acme:42");
        assert_eq!(SuppressionId::parse("*:c1").unwrap().category, "*");
        for bad in ["tips", "Tips:c1", ":c1", "tips:"] {
            assert!(SuppressionId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_lift_says_who_and_why() {
        assert!(Lift::new("ana", "asked by phone").is_ok());
        assert!(Lift::new(" ", "asked").unwrap_err().contains("who"));
        assert!(Lift::new("ana", "").unwrap_err().contains("why"));
        assert!(Lift::new("ana", &"x".repeat(2001)).is_err());
    }
}
