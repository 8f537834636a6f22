//! `GET /r/{token}/{value}` and `POST /r/{token}/{value}`: answering a
//! message's survey with one click.
//!
//! A GET never records: mail scanners (Microsoft Defender among them) open
//! every link in a real browser and run its script. It shows the answer
//! pre-selected, a comment box and one button; only the POST that button
//! sends records the answer. The last answer per message wins.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;

use super::link::{self, Refusal};
use super::page::{escape, page, refused, try_again};
use crate::daemon::Shared;
use crate::domain::playbook::Survey;
use crate::render::context::answers;
use crate::store::{NewResponse, Store};
use crate::token::{Claims, Purpose};

/// The longest comment kept, in characters.
const MAX_COMMENT: usize = 5000;

/// The survey a usable token is for, or why not.
fn survey_of(shared: &Shared, token: &str) -> Result<(Claims, Survey), Refusal> {
    let claims = link::claims(&shared.engine(), token, Purpose::Survey, Utc::now())?;
    let survey = Survey::parse(&claims.value)
        .ok_or_else(|| Refusal::Invalid("the link is for no survey".into()))?;
    Ok((claims, survey))
}

fn on_scale(survey: Survey, value: &str) -> bool {
    answers(survey).iter().any(|(v, _)| v == value)
}

/// The answer page: the clicked answer pre-selected, nothing recorded.
pub async fn show(
    State(shared): State<Arc<Shared>>,
    Path((token, value)): Path<(String, String)>,
) -> Response {
    let engine = shared.engine();
    let company = &engine.loaded.settings.company;
    let (_, survey) = match survey_of(&shared, &token) {
        Ok(found) => found,
        Err(refusal) => return refusal.page(company),
    };
    if !on_scale(survey, &value) {
        return refused(company, "that answer is not on this survey's scale");
    }
    let choices: String = answers(survey)
        .iter()
        .map(|(v, label)| {
            let checked = if *v == value { " checked" } else { "" };
            format!(
                "<label style=\"display:inline-block;margin:.2rem .4rem\"><input type=\"radio\" name=\"answer\" value=\"{v}\"{checked}> {}</label>",
                escape(label)
            )
        })
        .collect();
    page(
        company,
        StatusCode::OK,
        "Your answer",
        &format!(
            "<form method=\"post\"><fieldset><legend>Your answer</legend>{choices}</fieldset>\
             <p><label for=\"comment\">Anything you would like to add? (optional)</label><br>\
             <textarea id=\"comment\" name=\"comment\" rows=\"4\" style=\"width:100%\" maxlength=\"{MAX_COMMENT}\"></textarea></p>\
             <button type=\"submit\">Send my answer</button></form>"
        ),
    )
}

/// Records the answer (the form's, else the link's) and the comment.
pub async fn answer(
    State(shared): State<Arc<Shared>>,
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
        kind: "survey",
        value: Some(chosen.clone()),
        comment,
        source: "survey page",
        replace: true,
    };
    match shared
        .store
        .record_response(claims.message, &response, Utc::now())
        .await
    {
        Ok(Some(_)) => {
            crate::telemetry::response_recorded("survey");
            page(
                company,
                StatusCode::OK,
                "Thank you",
                &format!(
                    "<p>We recorded your answer: <strong>{}</strong>. You can change it from the same email at any time.</p>",
                    escape(&chosen)
                ),
            )
        }
        Ok(None) => refused(company, "the link is for a message that no longer exists"),
        Err(e) => {
            tracing::error!(error = %e, "recording a survey answer failed");
            try_again(company)
        }
    }
}
