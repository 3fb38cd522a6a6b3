//! The public tracking endpoints and the development mailbox's listing.
//!
//! - `GET /t/o/{token}`: the open pixel (a 1×1 GIF); records an open.
//! - `GET /t/c/{token}`: records a click and redirects to the link the token signs (a
//!   tampered token is refused, so the endpoint never redirects where we did not link).
//! - `GET /t/u/{token}`: a small confirmation page (link scanners follow GETs: a GET never
//!   unsubscribes); `POST /t/u/{token}`: unsubscribes at once (RFC 8058 one-click, or the
//!   page's button). The job records it, and the contact opts out of the channel.
//! - `GET /api/v1/dev-mailbox`: what the development mailbox received.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use commands::delivery::jobs::{Jobs, JobsError, Queue};
use commands::Executor;
use domain::contact::{Channel as ContactChannel, ConsentStatus, Contact, ContactCommand};
use domain::delivery::{Channel, DeliveryCommand, DeliveryError, Status};
use event_store::{Clock, EventMetadata};
use http_kit::{ApiPath, ApiQuery};
use http_kit::{Authenticated, Problem};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

use super::tracking::{Action, Token, Tracker};

/// What the tracking endpoints share.
#[derive(Clone)]
pub struct TrackingState {
    pub jobs: Jobs,
    pub contacts: Arc<Executor<Contact>>,
    pub tracker: Tracker,
    pub clock: Clock,
}

/// The public tracking routes (no authentication: the token is the credential).
pub fn tracking_routes(state: TrackingState) -> Router {
    Router::new()
        .route("/t/o/{token}", get(open))
        .route("/t/c/{token}", get(click))
        .route("/t/u/{token}", get(unsubscribe_page).post(unsubscribe))
        .with_state(state)
}

/// The development mailbox's routes (under `/api/v1`, authenticated by the caller).
pub fn dev_mailbox_routes(pool: PgPool) -> Router {
    Router::new()
        .route("/api/v1/dev-mailbox", get(dev_mailbox))
        .with_state(pool)
}

/// A transparent 1×1 GIF.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

fn verified(s: &TrackingState, raw: &str, kind: &str) -> Result<Token, Problem> {
    let token = s
        .tracker
        .verify(raw)
        .map_err(|_| Problem::not_found("link"))?;
    let matches = matches!(
        (&token.action, kind),
        (Action::Open, "o") | (Action::Click { .. }, "c") | (Action::Unsubscribe, "u")
    );
    if matches {
        Ok(token)
    } else {
        Err(Problem::not_found("link"))
    }
}

fn metadata(tenant: Uuid, headers: &HeaderMap) -> EventMetadata {
    EventMetadata {
        tenant_id: Some(tenant),
        actor: Some("system:tracking".to_owned()),
        correlation_id: Some(Uuid::now_v7()),
        causation_id: None,
        request_id: None,
        ip: None,
        user_agent: user_agent(headers),
    }
}

fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(300).collect())
}

/// Records `command` on the token's job. A job that never left (a forged id is refused by
/// the signature; this is a job cancelled or erased since) is not an error for the person
/// who clicked: tracking is best effort, the redirect and the pixel always answer.
///
/// A job still dispatching has left (the token is only in a message handed over), but its
/// `DeliverySent` is not recorded yet: a link scanner or a quick reader got there while the
/// provider call was under way. The hit is recorded once the worker records the outcome,
/// in the background, so the redirect does not wait for a provider's answer.
async fn record(s: &TrackingState, t: &Token, command: DeliveryCommand, headers: &HeaderMap) {
    let meta = metadata(t.tenant_id, headers);
    let (jobs, tenant, job) = (s.jobs.clone(), t.tenant_id, t.job_id);
    let first = jobs
        .execute(tenant, job, command.clone(), &meta, Queue::Keep)
        .await;
    if dispatching(&first) {
        tokio::spawn(async move {
            let deadline = std::time::Instant::now() + DISPATCH_WAIT;
            let mut pause = Duration::from_millis(20);
            loop {
                tokio::time::sleep(pause).await;
                let r = jobs
                    .execute(tenant, job, command.clone(), &meta, Queue::Keep)
                    .await;
                if !dispatching(&r) || std::time::Instant::now() >= deadline {
                    return untracked(job, r);
                }
                pause = (pause * 2).min(Duration::from_secs(1));
            }
        });
    } else {
        untracked(job, first);
    }
}

/// How long a hit waits for its job's dispatch to be recorded: a provider call ends well
/// within it (the worker's lease is longer, but a call that long is put in doubt, and the
/// hit would wait for nothing).
const DISPATCH_WAIT: Duration = Duration::from_secs(120);

fn dispatching<T>(r: &Result<T, JobsError>) -> bool {
    matches!(
        r,
        Err(JobsError::Rejected(DeliveryError::NotSent(s))) if *s == Status::Dispatching.as_str()
    )
}

/// Logs a hit that could not be recorded.
fn untracked<T>(job: Uuid, r: Result<T, JobsError>) {
    match r {
        Ok(_) => {}
        Err(JobsError::Rejected(e)) => tracing::debug!(%job, error = %e, "tracking not recorded"),
        Err(e) => tracing::warn!(%job, error = %e, "tracking not recorded"),
    }
}

async fn open(
    State(s): State<TrackingState>,
    ApiPath(token): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let t = verified(&s, &token, "o")?;
    let command = DeliveryCommand::RecordOpen {
        at: s.clock.now(),
        user_agent: user_agent(&headers),
    };
    record(&s, &t, command, &headers).await;
    Ok((
        [
            (header::CONTENT_TYPE, "image/gif"),
            (header::CACHE_CONTROL, "no-store, max-age=0"),
        ],
        PIXEL,
    )
        .into_response())
}

async fn click(
    State(s): State<TrackingState>,
    ApiPath(token): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let t = verified(&s, &token, "c")?;
    let Action::Click { url } = &t.action else {
        return Err(Problem::not_found("link"));
    };
    let url = url.clone();
    let command = DeliveryCommand::RecordClick {
        url: url.clone(),
        at: s.clock.now(),
    };
    record(&s, &t, command, &headers).await;
    Ok(Redirect::to(&url).into_response())
}

const PAGE_STYLE: &str = "font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;line-height:1.5";

async fn unsubscribe_page(
    State(s): State<TrackingState>,
    ApiPath(token): ApiPath<String>,
) -> Result<Html<String>, Problem> {
    verified(&s, &token, "u")?;
    Ok(Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>Unsubscribe</title></head><body style=\"{PAGE_STYLE}\">\
         <h1>Unsubscribe?</h1><p>You will no longer receive these messages.</p>\
         <form method=\"post\"><button type=\"submit\" style=\"font-size:1rem;padding:.5rem 1rem\">Unsubscribe</button></form>\
         </body></html>"
    )))
}

async fn unsubscribe(
    State(s): State<TrackingState>,
    ApiPath(token): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let t = verified(&s, &token, "u")?;
    let meta = metadata(t.tenant_id, &headers);
    match unsubscribe_job(
        &s.jobs,
        &s.contacts,
        t.tenant_id,
        t.job_id,
        &meta,
        s.clock.now(),
    )
    .await
    {
        Ok(()) => {}
        Err(JobsError::Rejected(DeliveryError::NotFound)) => {
            return Err(Problem::not_found("link"))
        }
        Err(e) => return Err(Problem::from_internal(&e)),
    }
    Ok((
        StatusCode::OK,
        Html(format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Unsubscribed</title></head>\
             <body style=\"{PAGE_STYLE}\"><h1>You are unsubscribed</h1>\
             <p>You will not receive these messages any more.</p></body></html>"
        )),
    )
        .into_response())
}

/// What an unsubscribe does, however it came (the one-click POST, the page's button, mail
/// to the `mailto:` of `List-Unsubscribe`): job `job` records it, and its contact opts out
/// of the job's channel. `NotFound` when there is no such job; a job that never left records
/// nothing.
pub async fn unsubscribe_job(
    jobs: &Jobs,
    contacts: &Executor<Contact>,
    tenant: Uuid,
    job: Uuid,
    meta: &EventMetadata,
    now: DateTime<Utc>,
) -> Result<(), JobsError> {
    let command = DeliveryCommand::RecordUnsubscribe { at: now };
    let job_state = match jobs.execute(tenant, job, command, meta, Queue::Keep).await {
        Ok((j, _)) => Some(j),
        Err(JobsError::Rejected(DeliveryError::NotFound)) => {
            return Err(JobsError::Rejected(DeliveryError::NotFound))
        }
        Err(JobsError::Rejected(e)) => {
            tracing::debug!(%job, error = %e, "unsubscribe on a job that never left");
            None
        }
        Err(e) => return Err(e),
    };
    let request = job_state.and_then(|j| j.request);
    let Some((contact, channel)) = request
        .as_ref()
        .and_then(|r| Some((r.contact_id?, r.channel)))
    else {
        return Ok(());
    };
    let channel = match channel {
        Channel::Email => ContactChannel::Email,
        Channel::Sms => ContactChannel::Sms,
        Channel::Push => ContactChannel::Push,
        Channel::Webhook => return Ok(()),
    };
    let command = ContactCommand::SetConsent {
        channel,
        status: ConsentStatus::OptedOut,
        source: format!("unsubscribe:{job}"),
        at: now,
    };
    // An erased contact has nothing left to unsubscribe.
    if let Err(e) = contacts.execute(tenant, contact, command, meta).await {
        tracing::info!(%contact, error = %e, "unsubscribe: consent not recorded");
    }
    Ok(())
}

/// Filters of the development mailbox's list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct MailboxQuery {
    /// Only messages to this address (as written in `To`, case-insensitive substring).
    pub to: Option<String>,
    /// Only the message of this delivery job.
    pub job_id: Option<Uuid>,
    /// At most this many (default 50, at most 500), newest first.
    pub limit: Option<i64>,
    /// Messages older than this id (the previous page's last).
    pub before: Option<i64>,
}

/// One message the development mailbox received.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct MailboxMessage {
    pub id: i64,
    pub job_id: Uuid,
    pub message_id: String,
    pub received_at: DateTime<Utc>,
    pub from: String,
    pub to: String,
    pub subject: String,
    pub html: String,
    pub text: String,
    /// The whole message as it would have gone out (RFC 5322).
    pub raw: String,
}

/// The messages the development mailbox received (the email provider of an organization
/// that configured none), newest first.
#[utoipa::path(get, path = "/api/v1/dev-mailbox", tag = "messages",
    params(MailboxQuery),
    responses((status = 200, description = "Messages, newest first", body = [MailboxMessage])),
    security(("api_key" = []), ("session" = [])))]
pub async fn dev_mailbox(
    State(pool): State<PgPool>,
    Authenticated(caller): Authenticated,
    ApiQuery(q): ApiQuery<MailboxQuery>,
) -> Result<Json<Vec<MailboxMessage>>, Problem> {
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let rows: Vec<MailboxMessage> = sqlx::query_as(
        "SELECT id, job_id, message_id, received_at, sender AS \"from\", recipient AS \"to\", \
                subject, html, text, raw \
         FROM dev_mailbox WHERE tenant_id = $1 \
           AND ($2::text IS NULL OR strpos(lower(recipient), lower($2)) > 0) \
           AND ($3::uuid IS NULL OR job_id = $3) \
           AND ($4::bigint IS NULL OR id < $4) \
         ORDER BY id DESC LIMIT $5",
    )
    .bind(caller.tenant_id)
    .bind(q.to)
    .bind(q.job_id)
    .bind(q.before)
    .bind(limit)
    .fetch_all(&pool)
    .await
    .map_err(|e| Problem::from_internal(&e))?;
    Ok(Json(rows))
}

/// The OpenAPI description of the development mailbox.
#[derive(utoipa::OpenApi)]
#[openapi(paths(dev_mailbox), components(schemas(MailboxMessage)))]
pub struct ApiDoc;
