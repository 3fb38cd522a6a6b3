//! The suppression list: addresses never sent to (bounces, complaints, unsubscribes, added by
//! hand), searched and filtered; adding one, removing one.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use commands::suppressions::body::AddSuppression;
use commands::suppressions::SuppressionsError;
use domain::delivery::suppression::SuppressionReason;
use domain::delivery::Channel;
use domain::identity::Action;
use domain::SuppressionId;
use http_kit::PathIds;
use projections::suppressions::{self as read, ListFilter, SuppressionRow};
use serde::Deserialize;

use crate::page::{
    command_errors, parse_time_key, render, render_with, time_key, FieldErrors, Frame, PageError,
};
use crate::visit::{url_encode, CsrfForm, Member, NoFields};
use crate::WebState;

const PAGE: i64 = 50;
const CHANNELS: [(&str, Channel); 4] = [
    ("email", Channel::Email),
    ("sms", Channel::Sms),
    ("push", Channel::Push),
    ("webhook", Channel::Webhook),
];
const REASONS: [(&str, SuppressionReason); 4] = [
    ("hard_bounce", SuppressionReason::HardBounce),
    ("complaint", SuppressionReason::Complaint),
    ("unsubscribe", SuppressionReason::Unsubscribe),
    ("manual", SuppressionReason::Manual),
];

#[derive(Deserialize, Default, Clone)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    after: String,
    /// The cursor of the write that led here (read-your-writes).
    #[serde(default)]
    written: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct AddForm {
    #[serde(default)]
    channel: String,
    #[serde(default)]
    address: String,
}

#[derive(Template)]
#[template(path = "suppressions/list.html")]
struct ListPage {
    frame: Frame,
    q: ListQuery,
    rows: Vec<SuppressionRow>,
    next: Option<String>,
    channels: Vec<&'static str>,
    reasons: Vec<&'static str>,
    form: AddForm,
    errors: FieldErrors,
}

fn key_of(r: &SuppressionRow) -> String {
    time_key(r.created_at, r.id)
}

async fn page(
    s: &WebState,
    me: &Member,
    q: ListQuery,
    form: AddForm,
    errors: FieldErrors,
) -> Result<ListPage, PageError> {
    let filter = ListFilter {
        channel: CHANNELS
            .iter()
            .find(|(k, _)| *k == q.channel)
            .map(|(_, c)| *c),
        reason: REASONS
            .iter()
            .find(|(k, _)| *k == q.reason)
            .map(|(_, r)| *r),
        prefix: Some(q.q.trim().to_owned()).filter(|p| !p.is_empty()),
        include_removed: false,
    };
    let after = parse_time_key(&q.after);
    let mut rows = read::list(&s.pool, me.tenant.0, &filter, after, PAGE + 1).await?;
    let next = (rows.len() as i64 > PAGE).then(|| {
        rows.truncate(PAGE as usize);
        format!(
            "q={}&channel={}&reason={}&after={}",
            url_encode(&q.q),
            url_encode(&q.channel),
            url_encode(&q.reason),
            rows.last().map(key_of).unwrap_or_default()
        )
    });
    Ok(ListPage {
        frame: me.frame("Suppressions", "suppressions"),
        q,
        rows,
        next,
        channels: CHANNELS.iter().map(|(k, _)| *k).collect(),
        reasons: REASONS.iter().map(|(k, _)| *k).collect(),
        form,
        errors,
    })
}

/// `GET /suppressions`
pub async fn list(
    State(s): State<WebState>,
    me: Member,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let stale = !super::contacts::caught_up(&s, "suppressions", q.written.as_deref()).await?;
    let mut p = page(&s, &me, q, AddForm::default(), FieldErrors::none()).await?;
    if stale {
        p.errors = FieldErrors::general("Your change is still being saved; reload in a moment.");
    }
    Ok(render(&p))
}

fn form_errors(e: SuppressionsError) -> Result<(StatusCode, FieldErrors), PageError> {
    command_errors(e, "list")
}

/// `POST /suppressions`: the API's body, validated the same way.
pub async fn add(
    State(s): State<WebState>,
    me: Member,
    CsrfForm(f): CsrfForm<AddForm>,
) -> Result<Response, PageError> {
    me.require(Action::Write)?;
    let body = AddSuppression {
        channel: f.channel.clone(),
        address: f.address.clone(),
        reason: None,
        source: None,
    };
    let source = me.meta.actor.clone().unwrap_or_default();
    let outcome = match body.validate(source) {
        Ok(entry) => s
            .commands
            .delivery
            .suppressions
            .add(me.tenant, entry, &me.meta)
            .await
            .map(|(a, _)| a.cursor),
        Err(i) => Err(i.into()),
    };
    match outcome {
        Ok(cursor) => Ok(Redirect::to(&format!("/suppressions?written={cursor}")).into_response()),
        Err(e) => {
            let (status, errors) = form_errors(e)?;
            let p = page(&s, &me, ListQuery::default(), f, errors).await?;
            Ok(render_with(status, &p))
        }
    }
}

/// `POST /suppressions/{id}/remove`: sending to the address is allowed again.
pub async fn remove(
    State(s): State<WebState>,
    me: Member,
    PathIds(id): PathIds<SuppressionId>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, PageError> {
    me.require(Action::Write)?;
    let source = me.meta.actor.clone();
    match s
        .commands
        .delivery
        .suppressions
        .remove(me.tenant, id, source, &me.meta)
        .await
    {
        Ok(a) => Ok(Redirect::to(&format!("/suppressions?written={}", a.cursor)).into_response()),
        Err(e) => {
            let (status, errors) = form_errors(e)?;
            let p = page(&s, &me, ListQuery::default(), AddForm::default(), errors).await?;
            Ok(render_with(status, &p))
        }
    }
}
