//! "Did you mean …?": the name a person most likely meant when they wrote
//! one that does not exist (a template variable, a key, a function, a
//! category). Pure: a word and what exists in, a suggestion or nothing out.

/// The existing name closest to `typed`, when it is close enough to be what
/// the person meant: a slip of a letter or two (`renewl_at`, `days_untill`),
/// a swapped pair (`plna`) or a different case. Nothing when no name is
/// close, so a suggestion is never a guess.
pub fn closest<'a>(typed: &str, names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let typed_lower = typed.to_lowercase();
    let allowed = allowed_edits(typed.chars().count());
    names
        .into_iter()
        .filter(|name| *name != typed)
        .map(|name| {
            let distance = strsim::damerau_levenshtein(&typed_lower, &name.to_lowercase());
            (distance, name)
        })
        .filter(|(distance, name)| *distance <= allowed.min(allowed_edits(name.chars().count())))
        // Nearest first; among equals, the first name given wins, so the
        // caller's order (most used first) breaks ties.
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name)
}

/// `" (did you mean `NAME`?)"` for the closest name, or nothing: to put
/// right after what was not found.
pub fn did_you_mean<'a>(typed: &str, names: impl IntoIterator<Item = &'a str>) -> String {
    closest(typed, names)
        .map(|name| format!(" (did you mean `{name}`?)"))
        .unwrap_or_default()
}

/// How many edits still read as a slip: one for short names (where two
/// edits reach unrelated words: `plan` → `name`), two from six letters,
/// three from twelve.
fn allowed_edits(len: usize) -> usize {
    match len {
        0..=2 => 0,
        3..=5 => 1,
        6..=11 => 2,
        _ => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[&str] = &[
        "id",
        "email",
        "name",
        "plan",
        "signup_at",
        "renewal_at",
        "timezone",
        "locale",
        "first_name",
        "stage",
    ];

    #[test]
    fn a_slip_of_a_letter_or_two_is_recognised() {
        assert_eq!(
            closest("renewl_at", FIELDS.iter().copied()),
            Some("renewal_at")
        );
        assert_eq!(closest("plna", FIELDS.iter().copied()), Some("plan"));
        assert_eq!(closest("Email", FIELDS.iter().copied()), Some("email"));
        assert_eq!(
            closest("days_untill", ["days_since", "days_until", "event_count"]),
            Some("days_until")
        );
        assert_eq!(
            closest("signupat", FIELDS.iter().copied()),
            Some("signup_at")
        );
    }

    #[test]
    fn an_unrelated_word_gets_no_suggestion() {
        assert_eq!(closest("revenue", FIELDS.iter().copied()), None);
        assert_eq!(closest("xy", FIELDS.iter().copied()), None);
        assert_eq!(closest("colour", FIELDS.iter().copied()), None);
        assert_eq!(did_you_mean("colour", FIELDS.iter().copied()), "");
    }

    #[test]
    fn the_word_itself_is_not_suggested() {
        assert_eq!(closest("plan", ["plan"]), None);
        assert_eq!(
            did_you_mean("tipz", ["tips", "checkins"]),
            " (did you mean `tips`?)"
        );
    }
}
