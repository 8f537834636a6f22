//! The new words of a reply, without the history mail clients quote below
//! (or, for `>` quoting, between) them, and without the signature.

use std::sync::LazyLock;

use regex::Regex;

/// An attribution line: "On Tue, 1 Dec 2026, Acme wrote:" (Gmail, Apple
/// Mail, Thunderbird), in English, French, German, Spanish, Italian, Dutch
/// and Portuguese; `lead` tells whether it opened with "On".
static ATTRIBUTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^\s*(?P<lead>(on|le|am|el|il|op|em)\s)?.{0,300}\b(wrote|a\s+écrit|schrieb|escribió|ha\s+scritto|schreef|escreveu)(\s.{0,200})?:\s*$",
    )
    .unwrap_or_else(|_| unreachable!())
});

/// A separator after which everything is the original: Outlook's
/// "-----Original Message-----" (and its translations), Android's
/// "-------- Original message --------", Outlook on the web's underscores.
static SEPARATOR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^\s*(-{2,}\s*(original(\s+message)?|ursprüngliche\s+nachricht|message\s+d'origine|mensaje\s+original|forwarded\s+message)\s*-{2,}|_{10,})\s*$",
    )
    .unwrap_or_else(|_| unreachable!())
});

/// The first two lines of an Outlook header block ("From: …" then
/// "Sent: …" or "Date: …"), which starts the original without a separator.
static HEADER_FROM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*\*?(from|von|de)\*?:\s").unwrap_or_else(|_| unreachable!())
});
static HEADER_NEXT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*\*?(sent|date|gesendet|envoyé|enviado|datum)\*?:\s")
        .unwrap_or_else(|_| unreachable!())
});

/// The reply's own text: everything but the quoted history, `>` lines, an
/// attribution line and a signature after `-- `.
pub fn strip_quoted(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let quoted = |from: usize| {
        lines[from..]
            .iter()
            .any(|l| l.trim_start().starts_with('>'))
    };
    let mut kept: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line == "-- " || line == "--" || SEPARATOR.is_match(line) || outlook_block(&lines, i) {
            break;
        }
        if let Some((len, lead)) = attribution(&lines, i) {
            // "On … wrote:" over history that is not `>`-quoted (a client
            // that quotes by indenting in HTML): the rest is the original.
            if lead && !quoted(i + len) {
                break;
            }
            i += len;
            continue;
        }
        // Dropped quotes leave blank lines behind: keep one between words.
        let blank = line.trim().is_empty();
        let after_blank = kept.last().is_none_or(|l| l.is_empty());
        let quote = line.trim_start().starts_with('>');
        let repeated_blank = blank && after_blank;
        if !(quote || repeated_blank) {
            kept.push(if blank { "" } else { line.trim_end() });
        }
        i += 1;
    }
    kept.join("\n").trim().to_owned()
}

/// The attribution starting at line `i`: its length in lines (Gmail wraps
/// a long one over two) and whether it opens with "On". One without "On"
/// counts only right above `>` lines, so a sentence of the reply ending in
/// "wrote:" stays.
fn attribution(lines: &[&str], i: usize) -> Option<(usize, bool)> {
    let line = lines[i];
    if line.trim().is_empty() || line.trim_start().starts_with('>') {
        return None;
    }
    let next_quoted = |from: usize| {
        lines[from..]
            .iter()
            .find(|l| !l.trim().is_empty())
            .is_some_and(|l| l.trim_start().starts_with('>'))
    };
    let found = |text: &str, len: usize| {
        let caps = ATTRIBUTION.captures(text)?;
        let lead = caps.name("lead").is_some();
        (lead || next_quoted(i + len)).then_some((len, lead))
    };
    found(line, 1).or_else(|| {
        let next = lines.get(i + 1)?;
        if next.trim().is_empty() || next.trim_start().starts_with('>') {
            return None;
        }
        found(&format!("{} {}", line.trim_end(), next.trim()), 2)
    })
}

fn outlook_block(lines: &[&str], i: usize) -> bool {
    HEADER_FROM.is_match(lines[i])
        && lines[i + 1..]
            .iter()
            .take(3)
            .any(|next| HEADER_NEXT.is_match(next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gmail_style_history_goes() {
        let text = "Thanks, that fixed it!\n\nOn Tue, Dec 1, 2026 at 10:00 AM Acme Success <\nsuccess@acme.example> wrote:\n> Hi Ana,\n> how is it going?\n";
        assert_eq!(strip_quoted(text), "Thanks, that fixed it!");
        let unquoted = "Great.\n\nOn Tue, Dec 1, 2026, Acme wrote:\nHi Ana, how is it going?\n";
        assert_eq!(strip_quoted(unquoted), "Great.");
    }

    #[test]
    fn outlook_style_history_goes() {
        let text = "Works for us.\r\n\r\nBest,\r\nBo\r\n\r\n________________________________\r\nFrom: Acme Success <success@acme.example>\r\nSent: Tuesday, December 1, 2026 10:00\r\nSubject: Hi\r\n";
        assert_eq!(strip_quoted(text), "Works for us.\n\nBest,\nBo");
        let block = "Yes please.\n\nFrom: Acme Success <success@acme.example>\nSent: Tuesday\nTo: Bo\n\nHi Bo";
        assert_eq!(strip_quoted(block), "Yes please.");
        let original = "Sure.\n\n-----Original Message-----\nFrom: Acme\n";
        assert_eq!(strip_quoted(original), "Sure.");
    }

    #[test]
    fn words_of_the_reply_that_look_like_markers_stay() {
        assert_eq!(
            strip_quoted("From: my side it works.\nThanks"),
            "From: my side it works.\nThanks"
        );
        assert_eq!(
            strip_quoted("Here is what my colleague wrote:\nit works."),
            "Here is what my colleague wrote:\nit works."
        );
    }

    #[test]
    fn inline_answers_stay_and_quotes_and_signatures_go() {
        let text = "Acme Success wrote:\n> Did the import work?\nYes, all of it.\n> And the API?\nNot yet.\n-- \nCleo, Ops\n";
        assert_eq!(strip_quoted(text), "Yes, all of it.\nNot yet.");
        let german = "Passt.\n\nAm 01.12.2026 um 10:00 schrieb Acme Success <success@acme.example>:\n> Hallo";
        assert_eq!(strip_quoted(german), "Passt.");
    }
}
