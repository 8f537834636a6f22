//! The console's page frame: a skip link, the navigation, who is signed
//! in and the sign-out button, and one stylesheet inline (the content
//! security policy allows nothing else). Readable without JavaScript, at
//! 375 px and on a desk, in light and dark mode.

use crate::http::page::escape;

const STYLE: &str = "body{margin:0;background:#f4f5f7;color:#1f2933;font-family:-apple-system,BlinkMacSystemFont,\"Segoe UI\",Roboto,Helvetica,Arial,sans-serif;font-size:16px;line-height:1.5}\
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:#fff;color:#1f2933;padding:.5rem}\
header{background:#1f2933;color:#fff;padding:.75rem 1rem;display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;align-items:center}\
header a{color:#fff}header .who{margin-left:auto}\
nav ul{list-style:none;margin:0;padding:0;display:flex;gap:1rem;flex-wrap:wrap}\
main{max-width:72rem;margin:1.5rem auto;padding:0 1rem}\
h1{font-size:1.5rem;margin:0 0 1rem}h2{font-size:1.15rem;margin:1.5rem 0 .5rem}\
a{color:#1d4ed8}\
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(9rem,1fr));gap:.75rem;margin:0;padding:0}\
.cards div{background:#fff;border-radius:8px;padding:.75rem 1rem}.cards dt{font-size:.9rem;color:#52606d}.cards dd{margin:0;font-size:1.6rem;font-weight:700}\
table{border-collapse:collapse;background:#fff;width:100%}th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #e4e7eb}\
form.inline{display:inline}\
label{display:block;margin:.75rem 0 .25rem;font-weight:600}\
.hint{color:#52606d;font-size:.9rem;margin:.25rem 0;flex-basis:100%}\
input[type=text],input[type=password],input[type=number],input[type=search],input[type=datetime-local]{font-size:1rem;padding:.5rem;width:100%;max-width:22rem;border:1px solid #7b8794;border-radius:6px;box-sizing:border-box}\
button{font-size:1rem;min-height:44px;padding:.5rem 1.1rem;border:0;border-radius:6px;background:#1d4ed8;color:#fff;cursor:pointer}\
header button{min-height:36px;background:#e4e7eb;color:#1f2933}\
button:focus-visible,input:focus-visible,textarea:focus-visible,select:focus-visible,a:focus-visible{outline:3px solid #1f2933;outline-offset:2px;box-shadow:0 0 0 5px #f0b429}\
.error{color:#a61b1b;font-weight:600}.notice{background:#e3f8e8;color:#14532d;padding:.5rem .75rem;border-radius:6px}\
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}\
.scroll{overflow-x:auto;position:relative}caption{text-align:left;font-weight:600;padding:.4rem 0}\
select{font:inherit;padding:.4rem;border:1px solid #7b8794;border-radius:6px}label.inline{display:inline;font-weight:400}\
textarea{font:inherit;width:100%;max-width:36rem;border:1px solid #7b8794;border-radius:6px;padding:.5rem;box-sizing:border-box}\
table.fields th{width:12rem;font-weight:600}\
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(18rem,1fr));gap:1rem}figure{margin:0;background:#fff;border-radius:8px;padding:.5rem}figcaption{font-size:.9rem;color:#52606d;padding:0 .5rem}\
svg.chart{width:100%;height:auto;display:block}figure.bars{max-width:40rem}svg .grid{stroke:#e4e7eb}svg .tick{font-size:19px;fill:#52606d}svg .line{fill:none;stroke:#1d4ed8;stroke-width:2.5}svg .dot{fill:#1d4ed8}svg .bar{fill:#1d4ed8}\
details{margin:.5rem 0}summary{cursor:pointer;color:#1d4ed8}ul.latest{padding-left:1.2rem}\
pre.text-part{white-space:pre-wrap;background:#fff;padding:1rem;border-radius:8px;overflow-wrap:anywhere}dl.message dt{font-weight:600}dl.message dd{margin:0 0 .5rem}section.day ul{padding-left:1.2rem}\
blockquote{margin:.25rem 0 .5rem;padding:.25rem .75rem;border-left:3px solid #7b8794}\
form.filters{display:flex;flex-wrap:wrap;gap:0 1rem;align-items:end}form.filters label{margin-top:0}\
.box{background:#fff;border-radius:8px;padding:1.25rem 1.5rem;max-width:26rem;margin:3rem auto}\
@media (prefers-color-scheme:dark){body{background:#12171c;color:#e4e7eb}.cards div,table,.box,pre.text-part{background:#1f2933}.cards dt,.hint{color:#cbd2d9}a{color:#93b4ff}th,td{border-color:#3e4c59}.error{color:#ff9b9b}.notice{background:#14532d;color:#e3f8e8}figure{background:#1f2933}figcaption,svg .tick{color:#cbd2d9;fill:#cbd2d9}svg .grid{stroke:#3e4c59}svg .line{stroke:#93b4ff}svg .dot,svg .bar{fill:#93b4ff}summary{color:#93b4ff}}";

/// A page of the console for a signed-in member: `title` and `body`
/// (already escaped HTML), with the navigation and a sign-out form
/// carrying the session's CSRF token.
pub fn page(title: &str, member_name: &str, csrf: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\">\
         <title>{title} · tend console</title><style>{STYLE}</style></head><body>\
         <a class=\"skip\" href=\"#main\">Skip to content</a>\
         <header><strong>tend</strong><nav aria-label=\"Console\"><ul>\
         <li><a href=\"/console\">Overview</a></li>\
         <li><a href=\"/console/customers\">Customers</a></li>\
         <li><a href=\"/console/next\">What comes next</a></li>\
         <li><a href=\"/console/preview\">Preview</a></li>\
         <li><a href=\"/console/incidents\">Incidents</a></li>\
         <li><a href=\"/console/suppressions\">Suppressions</a></li></ul></nav>\
         <span class=\"who\">Signed in as {name}</span>\
         <form class=\"inline\" method=\"post\" action=\"/console/sign-out\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button type=\"submit\">Sign out</button></form>\
         </header><main id=\"main\"><h1>{title}</h1>{body}</main></body></html>",
        title = escape(title),
        name = escape(member_name),
        csrf = escape(csrf),
    )
}

/// A paragraph saying what went wrong (`text` escaped), announced to
/// screen readers as it appears.
pub fn error(text: &str) -> String {
    format!("<p class=\"error\" role=\"alert\">{}</p>", escape(text))
}

/// A form's problem, if any: the paragraph [`INVALID`] fields point at;
/// nothing when `text` is empty.
pub fn problem(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(
            "<p class=\"error\" id=\"problem\" role=\"alert\">{}</p>",
            escape(text)
        )
    }
}

/// What marks a field as wrong and ties it to the [`problem`] paragraph.
pub const INVALID: &str = " aria-invalid=\"true\" aria-describedby=\"problem\"";

/// Named moments as a list, each with its time.
pub fn dated<'a>(items: impl Iterator<Item = (&'a str, chrono::DateTime<chrono::Utc>)>) -> String {
    let lines: String = items
        .map(|(name, at)| {
            format!(
                "<li>{} <span>({} UTC)</span></li>",
                escape(name),
                at.format("%Y-%m-%d %H:%M")
            )
        })
        .collect();
    format!("<ul>{lines}</ul>")
}

/// A page without the navigation: sign-in, and refusals before it.
pub fn bare(title: &str, body: &str) -> axum::response::Html<String> {
    axum::response::Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\">\
         <title>{title} · tend console</title><style>{STYLE}</style></head><body>\
         <main id=\"main\"><div class=\"box\"><h1>{title}</h1>{body}</div></main></body></html>",
        title = escape(title),
    ))
}
