//! `GET /r/{token}/{value}` and `POST /r/{token}/{value}`: answering a
//! message's survey with one click.
//!
//! A GET never records: mail scanners (Microsoft Defender among them) open
//! every link in a real browser and run its script. It shows the question
//! the mail asked, the answers as tap targets as large as the mail's buttons
//! with the clicked one pre-selected and the scale's meaning at its ends, a
//! comment box and one button; only the POST that button sends records the
//! answer. The last answer per message wins. The page works without
//! script: pages are served with a policy that allows none.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::AppState;
use super::link::{self, Refusal};
use super::page::{escape, language_of, page_in, refused, try_again};
use crate::deliver::Draft;
use crate::domain::playbook::Survey;
use crate::language::Words;
use crate::store::NewResponse;
use crate::store::{Outbox, ResponseKind, Responses, Source};
use crate::token::{Claims, Purpose};

/// The longest comment kept, in characters.
const MAX_COMMENT: usize = 5000;

/// The survey a usable token is for, or why not.
fn survey_of(shared: &AppState, token: &str) -> Result<(Claims, Survey), Refusal> {
    let claims = link::claims(&shared.engine(), token, Purpose::Survey, shared.clock.now())?;
    let survey = Survey::parse(&claims.value)
        .ok_or_else(|| Refusal::Invalid("the link is for no survey".into()))?;
    Ok((claims, survey))
}

fn on_scale(survey: Survey, value: &str) -> bool {
    survey.answers().iter().any(|(v, _)| v == value)
}

/// Why an answer cannot be taken for a message the store no longer has.
const GONE: &str = "the link is for a message that no longer exists";

/// The answer page: the question, the clicked answer pre-selected, nothing
/// recorded.
pub async fn show(
    State(shared): State<Arc<AppState>>,
    Path((token, value)): Path<(String, String)>,
) -> Response {
    let engine = shared.engine();
    let company = &engine.loaded.settings.company;
    let (claims, survey) = match survey_of(&shared, &token) {
        Ok(found) => found,
        Err(refusal) => return refusal.page(company),
    };
    if !on_scale(survey, &value) {
        return refused(company, "that answer is not on this survey's scale");
    }
    let message = match shared.store.outgoing(claims.message).await {
        Ok(Some(message)) => message,
        Ok(None) => return refused(company, GONE),
        Err(e) => {
            tracing::error!(error = %e, "reading a message for its survey question failed");
            return try_again(company);
        }
    };
    // As the mail asked it: rendered for its customer as of its sending,
    // in the language the mail was in.
    let asked = message.first_attempt_at.unwrap_or(claims.issued);
    let draft = Draft::of(&message);
    let lang = engine.deliverer.language(&draft);
    let words = Words::for_tag(&lang);
    let question = engine
        .deliverer
        .question(&draft, survey, asked)
        .unwrap_or_else(|e| {
            // The template changed since and no longer renders for this
            // customer: the standard question still frames the answer.
            tracing::warn!(error = %e, message = %message.id, "a survey question could not be rendered");
            survey.question_in(&company.product, words)
        });
    page_in(
        company,
        words.lang(),
        StatusCode::OK,
        words.get("page.answer_title"),
        &form(survey, &value, &question, words),
    )
}

/// The answer form: `question` over the answers as large tap targets, with
/// `chosen` checked and the ends of the scale labelled, in the language of
/// `words`.
fn form(survey: Survey, chosen: &str, question: &str, words: &'static Words) -> String {
    let ends = survey.scale_ends_in(words);
    let choices: String = survey
        .choices()
        .iter()
        .map(|(v, _)| {
            let label = Survey::label_in(v, words);
            let checked = if v == &chosen { " checked" } else { "" };
            let meaning = ends
                .iter()
                .flatten()
                .find(|(end, _)| end == v)
                .map(|(_, meaning)| format!(" title=\"{}: {}\"", escape(label), escape(meaning)))
                .unwrap_or_default();
            format!(
                "<label class=\"choice\"{meaning}><input type=\"radio\" name=\"answer\" value=\"{v}\"{checked}><span>{}</span></label>",
                escape(label)
            )
        })
        .collect();
    let scale = ends
        .map(|ends| {
            let [low, high] =
                ends.map(|(v, meaning)| format!("<span>{v} = {}</span>", escape(meaning)));
            format!("<p class=\"scale\">{low}{high}</p>")
        })
        .unwrap_or_default();
    format!(
        "<form method=\"post\"><fieldset class=\"answers\"><legend>{}</legend>\
         <div class=\"choices\">{choices}</div>{scale}</fieldset>\
         <p><label for=\"comment\">{}</label><br>\
         <textarea id=\"comment\" name=\"comment\" rows=\"4\" style=\"width:100%\" maxlength=\"{MAX_COMMENT}\"></textarea></p>\
         <button type=\"submit\">{}</button></form>",
        escape(question),
        escape(words.get("page.comment")),
        escape(words.get("page.send_answer")),
    )
}

/// Records the answer (the form's, else the link's) and the comment.
pub async fn answer(
    State(shared): State<Arc<AppState>>,
    Path((token, value)): Path<(String, String)>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let engine = shared.engine();
    let company = &engine.loaded.settings.company;
    let (claims, survey) = match survey_of(&shared, &token) {
        Ok(found) => found,
        Err(refusal) => return refusal.page(company),
    };
    // No form (or not a form): the answer in the link stands alone.
    let form = form.map(|Form(f)| f).unwrap_or_default();
    let chosen = form.get("answer").cloned().unwrap_or(value);
    if !on_scale(survey, &chosen) {
        return refused(company, "that answer is not on this survey's scale");
    }
    let comment = form
        .get("comment")
        .map(|c| c.trim().chars().take(MAX_COMMENT).collect::<String>())
        .filter(|c| !c.is_empty());
    let response = NewResponse {
        kind: ResponseKind::Survey,
        value: Some(chosen.clone()),
        comment,
        source: Source::SurveyPage,
        replace: true,
    };
    match shared
        .store
        .record_response(claims.message, &response, shared.clock.now())
        .await
    {
        Ok(Some(_)) => {
            crate::telemetry::response_recorded("survey");
            // A detractor's alert leaves now, not at the next interval.
            shared.wake_notify.notify_one();
            // In the language of the mail the answer came from.
            let words = Words::for_tag(&language_of(&shared, claims.message).await);
            let label = survey
                .choices()
                .iter()
                .find(|(v, _)| *v == chosen)
                .map_or(chosen.as_str(), |(v, _)| Survey::label_in(v, words));
            let answer = format!("<strong>{}</strong>", escape(label));
            page_in(
                company,
                words.lang(),
                StatusCode::OK,
                words.get("page.thanks_title"),
                &format!(
                    "<p>{}</p>",
                    escape(words.get("page.thanks")).replace("{answer}", &answer)
                ),
            )
        }
        Ok(None) => refused(company, GONE),
        Err(e) => {
            tracing::error!(error = %e, "recording a survey answer failed");
            try_again(company)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_asks_the_question_and_labels_the_ends_of_the_scale() {
        let html = form(
            Survey::Nps,
            "7",
            "Would you <recommend> us?",
            Words::for_tag("en"),
        );
        assert!(
            html.contains("<legend>Would you &lt;recommend&gt; us?</legend>"),
            "{html}"
        );
        assert_eq!(html.matches("class=\"choice\"").count(), 11);
        assert_eq!(html.matches(" checked").count(), 1);
        assert!(html.contains("value=\"7\" checked"), "{html}");
        assert!(
            html.contains("<span>0 = Not at all likely</span><span>10 = Extremely likely</span>"),
            "{html}"
        );
        let yes = form(
            Survey::Yesno,
            "no",
            "Was this helpful?",
            Words::for_tag("en"),
        );
        assert!(
            yes.contains("value=\"no\" checked><span>No</span>"),
            "{yes}"
        );
        assert!(!yes.contains("class=\"scale\""), "{yes}");
    }
}
