//! Markdown, after Handlebars has filled it in, into the two parts of every
//! message: HTML for the layout and plain text. Both see the same links,
//! rewritten by the caller (tracked links).

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd};

fn options() -> Options {
    Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH
}

/// The events of `source` with every link's destination passed through
/// `link`.
fn events<'a>(
    source: &'a str,
    link: &'a dyn Fn(&str) -> String,
) -> impl Iterator<Item = Event<'a>> + 'a {
    Parser::new_ext(source, options()).map(move |event| match event {
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: CowStr::from(link(&dest_url)),
            title,
            id,
        }),
        other => other,
    })
}

/// The HTML of `source`.
pub fn to_html(source: &str, link: &dyn Fn(&str) -> String) -> String {
    let mut html = String::with_capacity(source.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events(source, link));
    html
}

/// A plain-text rendering of `source` for the text part: markup removed,
/// links written out after their text, lists kept as lists.
pub fn to_text(source: &str, link: &dyn Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(source.len());
    // Ordered lists' next numbers, innermost last (None: bullets).
    let mut lists: Vec<Option<u64>> = Vec::new();
    let mut links: Vec<(String, usize)> = Vec::new();
    let mut quote = 0usize;
    for event in events(source, link) {
        match event {
            Event::Start(Tag::List(first)) => lists.push(first),
            Event::End(TagEnd::List(_)) => {
                lists.pop();
                if lists.is_empty() {
                    out.push('\n');
                }
            }
            Event::Start(Tag::Item) => {
                let depth = lists.len().saturating_sub(1);
                out.push_str(&"  ".repeat(depth));
                match lists.last_mut() {
                    Some(Some(n)) => {
                        out.push_str(&format!("{n}. "));
                        *n += 1;
                    }
                    _ => out.push_str("- "),
                }
            }
            Event::End(TagEnd::Item) => ensure_newline(&mut out),
            Event::End(TagEnd::Paragraph) => {
                if lists.is_empty() {
                    out.push_str("\n\n");
                } else {
                    ensure_newline(&mut out);
                }
            }
            Event::End(TagEnd::Heading(_)) => out.push_str("\n\n"),
            Event::Start(Tag::BlockQuote(_)) => quote += 1,
            Event::End(TagEnd::BlockQuote(_)) => quote = quote.saturating_sub(1),
            Event::Start(Tag::CodeBlock(_)) => {}
            Event::End(TagEnd::CodeBlock) => out.push('\n'),
            Event::Start(Tag::Link { dest_url, .. }) => {
                links.push((dest_url.to_string(), out.len()));
            }
            Event::End(TagEnd::Link) => {
                if let Some((url, start)) = links.pop() {
                    let text = out[start..].trim().to_owned();
                    if text.is_empty() || text == url {
                        out.truncate(start);
                        out.push_str(&url);
                    } else {
                        out.push_str(&format!(" <{url}>"));
                    }
                }
            }
            Event::Text(text) | Event::Code(text) => {
                if quote > 0 && (out.is_empty() || out.ends_with('\n')) {
                    out.push_str(&"> ".repeat(quote));
                }
                out.push_str(&text);
            }
            Event::SoftBreak | Event::HardBreak => out.push('\n'),
            Event::Rule => out.push_str("----\n\n"),
            Event::End(TagEnd::TableCell) => out.push_str("  "),
            Event::End(TagEnd::TableRow | TagEnd::TableHead) => ensure_newline(&mut out),
            Event::End(TagEnd::Table) => out.push('\n'),
            // Raw HTML an author wrote has no plain-text form.
            _ => {}
        }
    }
    let trimmed = out.trim_end();
    let mut text = String::with_capacity(trimmed.len() + 1);
    text.push_str(trimmed);
    text.push('\n');
    text
}

fn ensure_newline(out: &mut String) {
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
}

/// Escapes a value for a Markdown body so that it stays literal text: every
/// ASCII punctuation character is backslash-escaped (CommonMark turns `\*`
/// back into `*`, inside link destinations too), and line breaks become
/// spaces so a value cannot start a block of its own. The HTML renderer then
/// escapes `<`, `>` and `&` in the text it writes.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '\r' | '\n' => out.push(' '),
            c if c.is_ascii_punctuation() => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(url: &str) -> String {
        url.to_owned()
    }

    #[test]
    fn text_keeps_structure_and_writes_links_out() {
        let md = "# Welcome\n\nHi **Ada**, read [the guide](https://a.example/g).\n\n- one\n- two\n\n1. first\n2. second\n\n<https://a.example>\n";
        let text = to_text(md, &same);
        assert_eq!(
            text,
            "Welcome\n\nHi Ada, read the guide <https://a.example/g>.\n\n- one\n- two\n\n1. first\n2. second\n\nhttps://a.example\n"
        );
    }

    #[test]
    fn links_are_rewritten_in_both_parts() {
        let md = "[docs](https://a.example/docs)";
        let track = |u: &str| format!("https://t.example/c?u={}", u.len());
        assert!(to_html(md, &track).contains("href=\"https://t.example/c?u=22\""));
        assert!(to_text(md, &track).contains("<https://t.example/c?u=22>"));
    }

    #[test]
    fn escaped_values_stay_literal() {
        let name = "<b>*Ada*</b> [x](javascript:alert(1))\n\n# hi & bye";
        let html = to_html(&format!("Hello {}", escape(name)), &same);
        assert_eq!(
            html,
            "<p>Hello &lt;b&gt;*Ada*&lt;/b&gt; [x](javascript:alert(1))  # hi &amp; bye</p>\n"
        );
        let url = escape("https://a.example/a_b?c=1&d=2");
        assert!(
            to_html(&format!("[x]({url})"), &same)
                .contains("href=\"https://a.example/a_b?c=1&amp;d=2\"")
        );
    }
}
