//! `GET /u/{token}` and `POST /u/{token}`: unsubscribing, and choosing which
//! categories of mail to get.
//!
//! A GET only shows the page: mail scanners open every link and must not
//! unsubscribe anyone. A POST changes things: the RFC 8058 one-click request
//! mail clients send (`List-Unsubscribe=One-Click`), the page's unsubscribe
//! button, or its preference form. No login, no cookies, no redirect: the
//! answer is a 200 page saying what happened. Unsubscribe links never
//! expire; a forged or altered one gets a clear page and records nothing.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::AppState;
use super::link;
use super::page::{escape, language_of, page_in, refused, try_again};
use crate::config::settings::{Category, Settings};
use crate::domain::message::Suppression;
use crate::language::Words;
use crate::store::Responses;
use crate::store::{Preferences, Source};
use crate::token::{Claims, Purpose};

/// The suppression of all mail.
const ALL: &str = "*";

/// The preferences page: unsubscribe from this message's category in one
/// press, or choose among every category.
pub async fn show(State(shared): State<Arc<AppState>>, Path(token): Path<String>) -> Response {
    let engine = shared.engine();
    let company = &engine.loaded.settings.company;
    let claims = match link::claims(&engine, &token, Purpose::Unsubscribe, shared.clock.now()) {
        Ok(claims) => claims,
        Err(refusal) => return refusal.page(company),
    };
    let words = Words::for_tag(&language_of(&shared, claims.message).await);
    match shared.store.subscriptions(claims.message).await {
        Ok(Some(suppressed)) => page_in(
            company,
            words.lang(),
            StatusCode::OK,
            words.get("page.preferences_title"),
            &preferences_page(&engine.loaded.settings, &claims.value, &suppressed, words),
        ),
        Ok(None) => refused(company, "the link is for a message that no longer exists"),
        Err(e) => {
            tracing::error!(error = %e, "reading a customer's subscriptions failed");
            try_again(company)
        }
    }
}

/// Applies a one-click request, the unsubscribe button or the form.
pub async fn choose(
    State(shared): State<Arc<AppState>>,
    Path(token): Path<String>,
    body: String,
) -> Response {
    let engine = shared.engine();
    let company = &engine.loaded.settings.company;
    let claims = match link::claims(&engine, &token, Purpose::Unsubscribe, shared.clock.now()) {
        Ok(claims) => claims,
        Err(refusal) => return refusal.page(company),
    };
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let choice = choice_of(&engine.loaded.settings, &claims, &form);
    let words = Words::for_tag(&language_of(&shared, claims.message).await);
    match shared
        .store
        .set_preferences(claims.message, &choice, shared.clock.now())
        .await
    {
        Ok(Some(_)) => {
            for _ in &choice.unsubscribe {
                crate::telemetry::response_recorded("unsubscribe");
            }
            page_in(
                company,
                words.lang(),
                StatusCode::OK,
                words.get("page.saved_title"),
                &outcome(&engine.loaded.settings, &choice, words),
            )
        }
        Ok(None) => refused(company, "the link is for a message that no longer exists"),
        Err(e) => {
            tracing::error!(error = %e, "recording an unsubscribe failed");
            try_again(company)
        }
    }
}

/// What a POST asks for. The form's `action=save` sets every category from
/// its checkboxes; anything else (the one-click body, the button, an empty
/// body) unsubscribes from the link's category.
fn choice_of(settings: &Settings, claims: &Claims, form: &[(String, String)]) -> Preferences {
    let field = |name: &'static str| {
        form.iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if field("action").any(|a| a == "save") {
        let wanted: HashSet<&str> = field("category").collect();
        let (mut resubscribe, mut unsubscribe): (Vec<String>, Vec<String>) = choosable(settings)
            .map(|c| c.name.clone())
            .partition(|name| wanted.contains(name.as_str()));
        if field("all").any(|v| v == "stop") {
            unsubscribe.push(ALL.into());
        } else {
            resubscribe.push(ALL.into());
        }
        return Preferences {
            unsubscribe,
            resubscribe,
            source: Source::PreferencesPage,
        };
    }
    let one_click = form
        .iter()
        .any(|(k, v)| k == "List-Unsubscribe" && v == "One-Click");
    let source = if one_click {
        Source::OneClick
    } else {
        Source::UnsubscribePage
    };
    Preferences::leave(&settings.categories, &claims.value, source)
}

/// The categories a customer may leave, in the configured order.
fn choosable(settings: &Settings) -> impl Iterator<Item = &Category> {
    settings.categories.iter().filter(|c| c.unsubscribable)
}

/// Whether a customer may leave `category`.
fn can_leave(settings: &Settings, category: &str) -> bool {
    crate::domain::preference::can_leave(&settings.categories, category)
}

/// "Getting started with Acme Cloud", escaped for HTML.
fn describe(settings: &Settings, category: &str) -> String {
    escape(&raw_description(settings, category))
}

/// A category as the team describes it (its name when they do not).
fn raw_description(settings: &Settings, category: &str) -> String {
    settings
        .categories
        .iter()
        .find(|c| c.name == category)
        .map(|c| c.description.as_str())
        .filter(|d| !d.is_empty())
        .unwrap_or(category)
        .to_owned()
}

fn preferences_page(
    settings: &Settings,
    category: &str,
    suppressed: &[Suppression],
    words: &Words,
) -> String {
    let say = |key: &str, topic: &str| say(settings, words, key, topic);
    let left = |name: &str| suppressed.iter().any(|s| s.category == name);
    let mut html = String::new();
    // What only tend stopped (a bounce, a complaint) is said plainly: the
    // customer cannot lift it here, and should know why mail stopped.
    for s in suppressed
        .iter()
        .filter(|s| !Source::parse(&s.source).is_some_and(Source::chosen_by_customer))
    {
        html.push_str(&format!(
            "<p role=\"status\"><strong>{}</strong> {}.</p>",
            escape(words.get("page.note")),
            escape(&s.reason)
        ));
    }
    if left(ALL) {
        html.push_str(&format!("<p>{}</p>", say("page.no_mail_now", ALL)));
    } else if !can_leave(settings, category) {
        html.push_str(&format!("<p>{}</p>", say("page.cannot_leave", category)));
    } else if left(category) {
        html.push_str(&format!("<p>{}</p>", say("page.left_topic", category)));
    } else {
        html.push_str(&format!(
            "<form method=\"post\"><input type=\"hidden\" name=\"action\" value=\"unsubscribe\">\
             <p>{}</p>\
             <button type=\"submit\">{}</button></form>",
            say("page.stop_asking", category),
            escape(words.get("page.unsubscribe")),
        ));
    }
    let boxes: String = choosable(settings)
        .map(|c| {
            let checked = if left(&c.name) { "" } else { " checked" };
            let id = format!("c-{}", escape(&c.name));
            format!(
                "<p><input type=\"checkbox\" id=\"{id}\" name=\"category\" value=\"{}\"{checked}> <label for=\"{id}\">{}</label></p>",
                escape(&c.name),
                describe(settings, &c.name)
            )
        })
        .collect();
    let all = if left(ALL) { " checked" } else { "" };
    html.push_str(&format!(
        "<form method=\"post\"><input type=\"hidden\" name=\"action\" value=\"save\">\
         <fieldset><legend>{}</legend>{boxes}</fieldset>\
         <p><input type=\"checkbox\" id=\"all\" name=\"all\" value=\"stop\"{all}> <label for=\"all\">{}</label></p>\
         <button type=\"submit\">{}</button></form>",
        say("page.wanted_legend", ALL),
        say("page.no_mail_at_all", ALL),
        escape(words.get("page.save")),
    ));
    html
}

/// The page's sentence `key` about category `topic`, with the company's
/// name, escaped for HTML.
fn say(settings: &Settings, words: &Words, key: &str, topic: &str) -> String {
    let topic = raw_description(settings, topic);
    escape(&words.fill(
        key,
        &[("company", &settings.company.name), ("topic", &topic)],
    ))
}

/// What the customer is told after a POST.
fn outcome(settings: &Settings, choice: &Preferences, words: &Words) -> String {
    let say = |key: &str, topic: &str| say(settings, words, key, topic);
    if choice.source != Source::PreferencesPage {
        return match choice.unsubscribe.first() {
            Some(category) => format!("<p>{}</p>", say("page.unsubscribed", category)),
            None => format!("<p>{}</p>", escape(words.get("page.service_mail"))),
        };
    }
    if choice.unsubscribe.iter().any(|c| c == ALL) {
        return format!("<p>{}</p>", say("page.saved_no_mail", ALL));
    }
    let list = |names: &[String]| {
        names
            .iter()
            .filter(|n| *n != ALL)
            .map(|n| format!("<li>{}</li>", describe(settings, n)))
            .collect::<String>()
    };
    let mut html = format!("<p>{}</p>", escape(words.get("page.saved")));
    let wanted = list(&choice.resubscribe);
    if !wanted.is_empty() {
        html.push_str(&format!(
            "<p>{}</p><ul>{wanted}</ul>",
            escape(words.get("page.will_receive"))
        ));
    }
    let unwanted = list(&choice.unsubscribe);
    if !unwanted.is_empty() {
        html.push_str(&format!(
            "<p>{}</p><ul>{unwanted}</ul>",
            escape(words.get("page.will_not_receive"))
        ));
    }
    html
}
