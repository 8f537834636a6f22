//! When a person may be written to, beyond their send window: the holiday
//! calendar of where they work, and a quiet period they asked for (their
//! own launch, a migration). Both are part of a customer's or an
//! account's record; a contact keeps their account's unless their own
//! record says otherwise.

use chrono::{DateTime, Utc};

/// One record's say on when mail may reach them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Availability {
    /// The `[[holidays]]` calendar they keep, by name; none: their
    /// account's, else `delivery.holidays`.
    pub holidays: Option<String>,
    /// Until then only operational notices (incidents, maintenance)
    /// reach them; the rest waits.
    pub quiet_until: Option<DateTime<Utc>>,
}

impl Availability {
    /// What applies to a contact whose own record says `self` and whose
    /// account says `account`: their own calendar before the account's
    /// (a contact abroad keeps their country's), and quiet while either
    /// asks for it (an account's migration quiets every contact).
    pub fn within(&self, account: &Availability) -> Availability {
        Availability {
            holidays: self.holidays.clone().or_else(|| account.holidays.clone()),
            quiet_until: self.quiet_until.max(account.quiet_until),
        }
    }
}

/// Checks a calendar name against those declared (`[[holidays]]`).
pub fn parse_calendar(raw: &str, declared: &[String]) -> Result<String, String> {
    let name = raw.trim();
    if declared.iter().any(|d| d == name) {
        return Ok(name.to_owned());
    }
    if declared.is_empty() {
        Err(format!(
            "holidays names the calendar {name:?}, but the config declares no [[holidays]] calendar; add one (name, file) or leave the field empty"
        ))
    } else {
        Err(format!(
            "holidays names the calendar {name:?}, which the config does not declare; use one of {}, or add it to [[holidays]]",
            declared.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_contact_keeps_their_own_calendar_and_the_longer_quiet() {
        let early = Utc.with_ymd_and_hms(2027, 1, 10, 0, 0, 0).unwrap();
        let late = Utc.with_ymd_and_hms(2027, 2, 1, 0, 0, 0).unwrap();
        let account = Availability {
            holidays: Some("de".into()),
            quiet_until: Some(late),
        };
        let own = Availability {
            holidays: Some("us".into()),
            quiet_until: Some(early),
        };
        let both = own.within(&account);
        assert_eq!(both.holidays.as_deref(), Some("us"));
        assert_eq!(both.quiet_until, Some(late));
        let inherited = Availability::default().within(&account);
        assert_eq!(inherited, account);
        assert_eq!(own.within(&Availability::default()), own);
    }

    #[test]
    fn a_calendar_must_be_declared() {
        let declared = vec!["de".to_owned(), "us".to_owned()];
        assert_eq!(parse_calendar(" de ", &declared).unwrap(), "de");
        let e = parse_calendar("fr", &declared).unwrap_err();
        assert!(e.contains("\"fr\"") && e.contains("de, us"), "{e}");
        let e = parse_calendar("fr", &[]).unwrap_err();
        assert!(e.contains("declares no [[holidays]]"), "{e}");
    }
}
