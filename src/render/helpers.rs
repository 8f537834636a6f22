//! The helpers templates may call, and strict versions of `if`/`unless`.
//! Dates are shown in the customer's time zone (`customer.timezone`) and
//! in the language of the template (`lang`): a German template writes
//! German month names whatever the customer's locale, with the customer's
//! regional forms when their locale is in that language (`en-GB` reads
//! "5 December 2027" in an English template).
//!
//! | helper | example | gives |
//! |---|---|---|
//! | `date` | `{{date customer.renewal_at}}`, `{{date now format="%A"}}` | March 3, 2026 |
//! | `t` | `{{t "mail.footer_choose"}}`, `{{t "survey.nps" product=company.product}}` | tend's own words in the template's language |
//! | `days_since` / `days_until` | `{{days_since customer.signup_at}}` | whole days |
//! | `pluralize` | `{{pluralize n "day"}}`, `{{pluralize n "person" "people"}}` | 3 days |
//! | `default` | `{{default customer.attributes.company "your team"}}` | the value, or the fallback when missing or empty |

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use handlebars::{
    Context, Handlebars, Helper, HelperResult, JsonTruthy, Output, RenderContext, RenderError,
    RenderErrorReason, Renderable,
};
use serde_json::Value;

use crate::language::Words;

/// Registers every helper on `registry`, whose escape function is
/// `escape`: helpers write their output themselves, so they must escape it
/// as the registry would escape a value.
pub fn register(registry: &mut Handlebars<'_>, escape: fn(&str) -> String) {
    let text = |f: TextFn| Box::new(Text { escape, f });
    registry.register_helper("date", text(date));
    registry.register_helper("days_since", text(days_since));
    registry.register_helper("days_until", text(days_until));
    registry.register_helper("pluralize", text(pluralize));
    registry.register_helper("default", text(default));
    registry.register_helper("t", text(words));
    registry.register_helper("if", Box::new(StrictIf { positive: true }));
    registry.register_helper("unless", Box::new(StrictIf { positive: false }));
}

type TextFn = fn(&Helper<'_>, &Context) -> Result<String, RenderError>;

/// A helper that computes a piece of text, escaped for its registry.
struct Text {
    escape: fn(&str) -> String,
    f: TextFn,
}

impl handlebars::HelperDef for Text {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let text = (self.f)(h, ctx)?;
        out.write(&(self.escape)(&text))?;
        Ok(())
    }
}

fn fail(message: String) -> RenderError {
    RenderErrorReason::Other(message).into()
}

/// The instant in parameter `i`: an RFC 3339 string from the context.
fn instant(h: &Helper<'_>, name: &str, i: usize) -> Result<DateTime<Utc>, RenderError> {
    let param = h.param(i).ok_or_else(|| {
        fail(format!(
            "{name} needs a date, e.g. {{{{{name} customer.signup_at}}}}"
        ))
    })?;
    let path = param
        .relative_path()
        .cloned()
        .unwrap_or_else(|| "its argument".into());
    if param.is_value_missing() {
        return Err(RenderErrorReason::MissingVariable(Some(path)).into());
    }
    match param.value() {
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| fail(format!("{name}: {path} is {s:?}, not a date"))),
        Value::Null => Err(fail(format!(
            "{name}: {path} is empty for this customer; guard it with {{{{#if {path}}}}} or use {{{{default …}}}}"
        ))),
        other => Err(fail(format!("{name}: {path} is {other}, not a date"))),
    }
}

fn root_str<'a>(ctx: &'a Context, pointer: &str) -> Option<&'a str> {
    ctx.data().pointer(pointer).and_then(Value::as_str)
}

fn now(ctx: &Context) -> Result<DateTime<Utc>, RenderError> {
    root_str(ctx, "/now")
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| fail("the context has no `now`".into()))
}

/// The language of the template being rendered.
fn lang(ctx: &Context) -> &str {
    root_str(ctx, "/lang").unwrap_or(crate::language::DEFAULT)
}

fn date(h: &Helper<'_>, ctx: &Context) -> Result<String, RenderError> {
    let at = instant(h, "date", 0)?;
    let zone: Tz = root_str(ctx, "/customer/timezone")
        .and_then(|z| z.parse().ok())
        .unwrap_or(chrono_tz::UTC);
    let lang = lang(ctx);
    // The customer's regional forms when they read the template's
    // language; else the template's own: never another language's month
    // names inside this one's sentences.
    let tag = match root_str(ctx, "/customer/locale") {
        Some(locale)
            if crate::language::same_language(locale, lang) && locale.len() > lang.len() =>
        {
            locale
        }
        _ => lang,
    };
    let locale = chrono_locale(tag);
    let format = match h.hash_get("format").map(|f| f.value()) {
        Some(Value::String(f)) => f.clone(),
        Some(_) => {
            return Err(fail(
                "date: format must be a string such as \"%B %-d\"".into(),
            ));
        }
        // English outside the United States writes the day first.
        None if crate::language::same_language(tag, "en") && locale != chrono::Locale::en_US => {
            "%-d %B %Y".into()
        }
        None => {
            let words = Words::for_tag(lang);
            if crate::language::same_language(words.lang(), lang) {
                words.get("mail.date_format").to_owned()
            } else {
                // A language tend has no words for: the day first, as
                // most of the world writes it.
                "%-d %B %Y".into()
            }
        }
    };
    let local = at.with_timezone(&zone);
    let mut text = String::new();
    use std::fmt::Write;
    write!(text, "{}", local.format_localized(&format, locale))
        .map_err(|_| fail(format!("date: {format:?} is not a valid date format")))?;
    Ok(text)
}

/// `{{t "KEY" name=value …}}`: tend's own words (`src/render/builtin/strings/`)
/// in the template's language, each `{name}` filled in.
fn words(h: &Helper<'_>, ctx: &Context) -> Result<String, RenderError> {
    let key = match h.param(0).map(|p| p.value()) {
        Some(Value::String(key)) => key,
        _ => {
            return Err(fail(
                "t needs the key of a word in quotes, e.g. {{t \"mail.footer_choose\"}}".into(),
            ));
        }
    };
    let words = Words::for_tag(lang(ctx));
    if words.find(key).is_none() {
        return Err(fail(format!(
            "t: there is no word {key:?}; the keys are those of src/render/builtin/strings/en.toml, e.g. mail.footer_choose"
        )));
    }
    let values: Vec<(&str, String)> = h
        .hash()
        .iter()
        .map(|(name, value)| {
            let text = match value.value() {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (*name, text)
        })
        .collect();
    let values: Vec<(&str, &str)> = values.iter().map(|(n, v)| (*n, v.as_str())).collect();
    Ok(words.fill(key, &values))
}

/// The chrono locale for a customer's locale (`de`, `pt-BR`, `fr_CA`),
/// English when chrono does not know it.
fn chrono_locale(locale: &str) -> chrono::Locale {
    let normal = locale.replace('-', "_");
    let guess = match normal.split_once('_') {
        Some(_) => normal.clone(),
        None => {
            let lang = normal.to_ascii_lowercase();
            let region = match lang.as_str() {
                "en" => "US".to_owned(),
                "ja" => "JP".to_owned(),
                "sv" => "SE".to_owned(),
                "da" => "DK".to_owned(),
                "nb" => "NO".to_owned(),
                "zh" => "CN".to_owned(),
                "ko" => "KR".to_owned(),
                "uk" => "UA".to_owned(),
                "cs" => "CZ".to_owned(),
                other => other.to_ascii_uppercase(),
            };
            format!("{lang}_{region}")
        }
    };
    chrono::Locale::try_from(guess.as_str())
        .or_else(|_| chrono::Locale::try_from(normal.as_str()))
        .unwrap_or(chrono::Locale::en_US)
}

fn whole_days(h: &Helper<'_>, ctx: &Context, name: &str, future: bool) -> Result<i64, RenderError> {
    let at = instant(h, name, 0)?;
    let now = now(ctx)?;
    Ok(if future {
        (at - now).num_days()
    } else {
        (now - at).num_days()
    })
}

fn days_since(h: &Helper<'_>, ctx: &Context) -> Result<String, RenderError> {
    Ok(whole_days(h, ctx, "days_since", false)?.to_string())
}

fn days_until(h: &Helper<'_>, ctx: &Context) -> Result<String, RenderError> {
    Ok(whole_days(h, ctx, "days_until", true)?.to_string())
}

fn pluralize(h: &Helper<'_>, _: &Context) -> Result<String, RenderError> {
    let usage =
        || fail("pluralize needs a number and a word, e.g. {{pluralize seats \"seat\"}}".into());
    let count = h.param(0).ok_or_else(usage)?;
    if count.is_value_missing() {
        return Err(RenderErrorReason::MissingVariable(count.relative_path().cloned()).into());
    }
    let n = match count.value() {
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        Value::String(s) => s.trim().parse::<f64>().map_err(|_| usage())?,
        _ => return Err(usage()),
    };
    let one = h
        .param(1)
        .and_then(|p| p.value().as_str())
        .ok_or_else(usage)?;
    let many = match h.param(2).and_then(|p| p.value().as_str()) {
        Some(many) => many.to_owned(),
        None => format!("{one}s"),
    };
    let word = if n == 1.0 { one } else { &many };
    let shown = if n.fract() == 0.0 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    };
    Ok(format!("{shown} {word}"))
}

fn default(h: &Helper<'_>, _: &Context) -> Result<String, RenderError> {
    let usage = || {
        fail("default needs a value and a fallback, e.g. {{default customer.attributes.company \"your team\"}}".into())
    };
    let value = h.param(0).ok_or_else(usage)?;
    let fallback = h.param(1).ok_or_else(usage)?;
    let chosen = match value.value() {
        _ if value.is_value_missing() => fallback.value(),
        Value::Null => fallback.value(),
        Value::String(s) if s.trim().is_empty() => fallback.value(),
        v => v,
    };
    Ok(match chosen {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

/// `if`/`unless` that refuse a variable that does not exist (the built-in
/// ones treat it as false, so a typo would silently drop a paragraph).
/// Custom attributes are exempt: testing whether a customer has one is what
/// `{{#if customer.attributes.company}}` is for.
struct StrictIf {
    positive: bool,
}

impl handlebars::HelperDef for StrictIf {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        rc: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let name = if self.positive { "if" } else { "unless" };
        let param = h
            .param(0)
            .ok_or(RenderErrorReason::ParamNotFoundForIndex(name, 0))?;
        if param.is_value_missing() {
            let path = param.relative_path().cloned().unwrap_or_default();
            let optional = path.starts_with("customer.attributes.")
                || path.starts_with("this.")
                || path.starts_with("@");
            if !optional {
                return Err(RenderErrorReason::MissingVariable(Some(path)).into());
            }
        }
        let include_zero = h
            .hash_get("includeZero")
            .and_then(|v| v.value().as_bool())
            .unwrap_or(false);
        let truthy = param.value().is_truthy(include_zero) == self.positive;
        match if truthy { h.template() } else { h.inverse() } {
            Some(t) => t.render(r, ctx, rc, out),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locales_map_to_chrono() {
        assert_eq!(chrono_locale("en"), chrono::Locale::en_US);
        assert_eq!(chrono_locale("de"), chrono::Locale::de_DE);
        assert_eq!(chrono_locale("pt-BR"), chrono::Locale::pt_BR);
        assert_eq!(chrono_locale("ja"), chrono::Locale::ja_JP);
        assert_eq!(chrono_locale("xx"), chrono::Locale::en_US);
    }
}
