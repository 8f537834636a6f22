//! Markdown, after Handlebars has filled it in, into the two parts of every
//! message: HTML for the layout and plain text. Both see the same links,
//! rewritten by the caller (tracked links), and the same blocks Markdown
//! cannot express (the survey's answer buttons), each filled in with its own
//! form for each part.

use std::borrow::Cow;

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

/// A block the body holds as a marker line (an HTML comment a partial left
/// on a line of its own) and each part fills in: HTML that Markdown would
/// not produce (tables, inline styles), and its plain-text form.
#[derive(Debug, Clone, Copy)]
pub struct Block<'a> {
    /// The whole marker, e.g. `<!--tend:survey-->`.
    pub marker: &'a str,
    pub html: &'a str,
    pub text: &'a str,
}

/// The block whose marker `html` (a raw HTML event) is, if any.
fn block<'b>(blocks: &[Block<'b>], html: &str) -> Option<Block<'b>> {
    let html = html.trim();
    blocks.iter().find(|b| b.marker == html).copied()
}

/// `source` with every marker line starting at its first column: a partial
/// used after other text on a line has its lines indented by Handlebars,
/// and Markdown would keep that indentation as text beside the block.
fn unindent_markers<'s>(source: &'s str, blocks: &[Block<'_>]) -> Cow<'s, str> {
    let indented = |line: &str| {
        let trimmed = line.trim();
        trimmed.len() != line.trim_end_matches(['\r', '\n']).len()
            && blocks.iter().any(|b| b.marker == trimmed)
    };
    if !source.split_inclusive('\n').any(indented) {
        return Cow::Borrowed(source);
    }
    let mut out = String::with_capacity(source.len());
    for line in source.split_inclusive('\n') {
        if indented(line) {
            out.push_str(line.trim_start());
        } else {
            out.push_str(line);
        }
    }
    Cow::Owned(out)
}

/// The HTML and the text of `source` from one reading of it: each link
/// passed through `link` once, for both.
pub fn to_both(
    source: &str,
    link: &dyn Fn(&str) -> String,
    blocks: &[Block<'_>],
) -> (String, String) {
    let source = unindent_markers(source, blocks);
    let events: Vec<Event<'_>> = events(&source, link).collect();
    (
        html_of(events.iter().cloned(), source.len(), blocks),
        text_of(events.into_iter(), source.len(), blocks),
    )
}

/// The HTML of `source`, with each block's marker replaced by its HTML.
pub fn to_html(source: &str, link: &dyn Fn(&str) -> String, blocks: &[Block<'_>]) -> String {
    let source = unindent_markers(source, blocks);
    html_of(events(&source, link), source.len(), blocks)
}

fn html_of<'a>(
    events: impl Iterator<Item = Event<'a>>,
    source_len: usize,
    blocks: &'a [Block<'a>],
) -> String {
    let filled: usize = blocks.iter().map(|b| b.html.len()).sum();
    let mut html = String::with_capacity(source_len * 3 / 2 + filled);
    let events = events.map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) if block(blocks, &raw).is_some() => {
            let found = block(blocks, &raw).map_or("", |b| b.html);
            Event::Html(CowStr::Borrowed(found))
        }
        other => other,
    });
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

/// A plain-text rendering of `source` for the text part: markup removed,
/// links written out after their text, lists kept as lists, each block's
/// marker replaced by its text.
pub fn to_text(source: &str, link: &dyn Fn(&str) -> String, blocks: &[Block<'_>]) -> String {
    let source = unindent_markers(source, blocks);
    text_of(events(&source, link), source.len(), blocks)
}

fn text_of<'a>(
    events: impl Iterator<Item = Event<'a>>,
    source_len: usize,
    blocks: &[Block<'_>],
) -> String {
    let filled: usize = blocks.iter().map(|b| b.text.len()).sum();
    let mut out = String::with_capacity(source_len + filled);
    // Ordered lists' next numbers, innermost last (None: bullets).
    let mut lists: Vec<Option<u64>> = Vec::new();
    let mut links: Vec<(String, usize)> = Vec::new();
    let mut quote = 0usize;
    for event in events {
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
            Event::Html(raw) | Event::InlineHtml(raw) => {
                if let Some(found) = block(blocks, &raw) {
                    ensure_newline(&mut out);
                    out.push_str(found.text.trim_end());
                    out.push_str("\n\n");
                }
            }
            // Other raw HTML an author wrote has no plain-text form.
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
        let text = to_text(md, &same, &[]);
        assert_eq!(
            text,
            "Welcome\n\nHi Ada, read the guide <https://a.example/g>.\n\n- one\n- two\n\n1. first\n2. second\n\nhttps://a.example\n"
        );
    }

    #[test]
    fn links_are_rewritten_in_both_parts() {
        let md = "[docs](https://a.example/docs)";
        let track = |u: &str| format!("https://t.example/c?u={}", u.len());
        assert!(to_html(md, &track, &[]).contains("href=\"https://t.example/c?u=22\""));
        assert!(to_text(md, &track, &[]).contains("<https://t.example/c?u=22>"));
    }

    #[test]
    fn escaped_values_stay_literal() {
        let name = "<b>*Ada*</b> [x](javascript:alert(1))\n\n# hi & bye";
        let html = to_html(&format!("Hello {}", escape(name)), &same, &[]);
        assert_eq!(
            html,
            "<p>Hello &lt;b&gt;*Ada*&lt;/b&gt; [x](javascript:alert(1))  # hi &amp; bye</p>\n"
        );
        let url = escape("https://a.example/a_b?c=1&d=2");
        assert!(
            to_html(&format!("[x]({url})"), &same, &[])
                .contains("href=\"https://a.example/a_b?c=1&amp;d=2\"")
        );
    }

    #[test]
    fn a_block_fills_its_marker_with_each_parts_own_form() {
        let block = Block {
            marker: "<!--tend:x-->",
            html: "<table><tr><td>x</td></tr></table>\n",
            text: "one\ntwo\n",
        };
        let md = "Before\n\n<!--tend:x-->\n\nAfter\n";
        assert_eq!(
            to_html(md, &same, &[block]),
            "<p>Before</p>\n<table><tr><td>x</td></tr></table>\n<p>After</p>\n"
        );
        assert_eq!(
            to_text(md, &same, &[block]),
            "Before\n\none\ntwo\n\nAfter\n"
        );
        // Indented by Handlebars (a partial after text on a line): the same.
        let indented = "Before \n <!--tend:x-->\n \n After\n";
        assert_eq!(
            to_html(indented, &same, &[block]),
            to_html(md, &same, &[block])
        );
        assert_eq!(
            to_text(indented, &same, &[block]),
            to_text(md, &same, &[block])
        );
        // Other raw HTML stays out of the text part, as before.
        assert_eq!(to_text("<!--note-->\n\nHi\n", &same, &[block]), "Hi\n");
    }
}
