//! Lifecycle stages: ordered rules, the first whose condition holds names the
//! customer's stage.

use super::condition::{Condition, Facts, Reads, Scope};

/// The compiled `[[lifecycle.stage]]` rules, in order.
#[derive(Debug, Clone, Default)]
pub struct StageRules {
    rules: Vec<(String, Condition)>,
}

impl StageRules {
    /// Compiles `(name, condition)` pairs; the config check has already
    /// reported any that do not compile, so those are an error here.
    pub fn compile<'a>(
        rules: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, String> {
        let rules = rules
            .into_iter()
            .map(|(name, when)| Condition::compile(when).map(|c| (name.to_owned(), c)))
            .collect::<Result<_, _>>()?;
        Ok(Self { rules })
    }

    /// The first stage whose rule holds; `None` when none does. A rule that
    /// cannot be evaluated for this customer (a missing date) does not hold.
    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether a rule reads the customer's `account`.
    pub fn reads_account(&self) -> bool {
        self.rules.iter().any(|(_, c)| c.reads().account())
    }

    pub fn stage_of(&self, facts: &Facts<'_>) -> Option<&str> {
        if self.rules.is_empty() {
            return None;
        }
        let scope = Scope::reading(facts, Reads::of_all(self.rules.iter().map(|(_, c)| c))).ok()?;
        self.rules
            .iter()
            .find(|(_, condition)| condition.holds_for(&scope, facts.customer.record.id.as_str()))
            .map(|(name, _)| name.as_str())
    }
}
