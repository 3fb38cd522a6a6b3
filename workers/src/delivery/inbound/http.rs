//! `POST /inbound/mail`: the operator's MTA pipes each message for the bounce domain here
//! (body: the raw message, `Content-Type: message/rfc822`; `?to=` the envelope recipient).
//! Bearer secret `MAUNTIC_INBOUND_SECRET`; the route is absent without it.
//!
//! - to `bounce+<job>.<tag>@`: a DSN or a plain bounce → hard or soft bounce on the job; an
//!   ARF report → complaint;
//! - to `unsubscribe+<job>.<tag>@`: unsubscribe, as the one-click POST does;
//! - an ARF report to any other address: complaint on the job its original names (a signed
//!   return path, else the `Message-ID` `<job>@…`).
//!
//! Bounces and complaints go through [`crate::delivery::reports::record`], the path of
//! provider webhooks (a repeat records nothing; hard bounces and complaints suppress the
//! job's address). Mail we do not act on, or whose signature does not verify, is answered
//! 202 with the reason (an MTA must not retry it); a body that is no message, 400.

use http_kit::ApiQuery;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use commands::delivery::jobs::Jobs;
use commands::Executor;
use domain::contact::Contact;
use domain::delivery::{Channel, DeliveryError};
use event_store::wakeup::Notifier;
use event_store::{Clock, EventMetadata};
use http_kit::Problem;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::address::{self, Signed};
use super::parse::{self, Kind};
use crate::delivery::http::unsubscribe_job;
use crate::delivery::reports;
use crate::delivery::tracking::{AddressPurpose, Tracker};
use crate::delivery::webhooks::{Report, ReportKind};

/// What the inbound endpoint needs.
#[derive(Clone)]
pub struct InboundState {
    pub pool: PgPool,
    pub jobs: Jobs,
    pub contacts: Arc<Executor<Contact>>,
    pub notifier: Notifier,
    /// Verifies the signed addresses (the tracking keys).
    pub tracker: Tracker,
    pub clock: Clock,
    /// The bearer secret the MTA sends (`MAUNTIC_INBOUND_SECRET`).
    pub secret: Arc<str>,
}

/// The largest message taken (a report may attach the whole original).
pub const MAX_MESSAGE_BYTES: usize = 10 * 1024 * 1024;

pub fn inbound_routes(state: InboundState) -> Router {
    Router::new()
        .route("/inbound/mail", post(receive))
        .layer(DefaultBodyLimit::max(MAX_MESSAGE_BYTES))
        .with_state(state)
}

#[derive(Debug, Deserialize)]
struct InboundQuery {
    /// The envelope recipient (Postfix `pipe`: `${recipient}`).
    to: Option<String>,
}

/// The answer: what was recorded, or why nothing was.
#[derive(Debug, Serialize)]
struct Answer {
    /// `recorded` or `ignored`.
    outcome: &'static str,
    /// `hard_bounce`, `soft_bounce`, `complaint`, `unsubscribe`.
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    job_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

fn ignored(reason: impl Into<String>) -> Response {
    let reason = reason.into();
    tracing::info!(%reason, "inbound mail ignored");
    (
        StatusCode::ACCEPTED,
        Json(Answer {
            outcome: "ignored",
            kind: None,
            job_id: None,
            reason: Some(reason),
        }),
    )
        .into_response()
}

fn recorded(kind: &'static str, job: Uuid) -> Response {
    Json(Answer {
        outcome: "recorded",
        kind: Some(kind),
        job_id: Some(job),
        reason: None,
    })
    .into_response()
}

fn authorized(secret: &str, headers: &HeaderMap) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    !secret.is_empty() && bool::from(given.as_bytes().ct_eq(secret.as_bytes()))
}

fn content_type_ok(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return true;
    };
    let ct = ct.to_str().unwrap_or_default().to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or_default().trim();
    matches!(
        essence,
        "message/rfc822" | "message/global" | "text/plain" | "application/octet-stream"
    )
}

async fn receive(
    State(s): State<InboundState>,
    ApiQuery(q): ApiQuery<InboundQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    if !authorized(&s.secret, &headers) {
        return Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "inbound-not-authorized",
            "Not authorized",
        )
        .detail("send the inbound secret (MAUNTIC_INBOUND_SECRET) as a Bearer token"));
    }
    if !content_type_ok(&headers) {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "inbound-media-type",
            "Unsupported media type",
        )
        .detail("send the raw message as Content-Type: message/rfc822"));
    }
    let mail = parse::parse(&body).map_err(|e| Problem::bad_request(e.to_string()))?;
    // The envelope recipient when the MTA passes it; else the headers that record it.
    // An unencoded `+` in the query reads as a space (`pipe` passes `${recipient}` as is):
    // our addresses have no spaces, so it is put back.
    let candidates: Vec<String> = match q.to.as_deref().map(str::trim) {
        Some(to) if !to.is_empty() => vec![to.replace(' ', "+")],
        _ => mail.recipients.clone(),
    };
    let ours = candidates.iter().find(|a| address::looks_ours(a).is_some());
    let now = s.clock.now();
    match ours {
        Some(to) => {
            let Some(signed) = address::signed(to) else {
                return Ok(ignored(format!("{to}: not a signed address of ours")));
            };
            let Some(tenant) = verified_tenant(&s, &signed).await? else {
                return Ok(ignored(format!(
                    "{to}: the signature does not verify (or names no message we sent)"
                )));
            };
            match (signed.purpose, &mail.kind) {
                (AddressPurpose::Unsubscribe, _) => {
                    let meta = metadata(tenant);
                    match unsubscribe_job(&s.jobs, &s.contacts, tenant, signed.job_id, &meta, now)
                        .await
                    {
                        Ok(()) => Ok(recorded("unsubscribe", signed.job_id)),
                        Err(commands::delivery::jobs::JobsError::Rejected(
                            DeliveryError::NotFound,
                        )) => Ok(ignored("the unsubscribe address names no job")),
                        Err(e) => Err(Problem::from_internal(&e)),
                    }
                }
                (AddressPurpose::Bounce, Kind::Complaint { feedback_type }) => {
                    complaint(&s, tenant, signed.job_id, feedback_type).await
                }
                (AddressPurpose::Bounce, Kind::DsnSuccess) => Ok(ignored(
                    "a delivery status notification that reports no failure",
                )),
                (
                    AddressPurpose::Bounce,
                    Kind::Dsn {
                        hard, diagnostic, ..
                    }
                    | Kind::Plain { hard, diagnostic },
                ) => bounce(&s, tenant, signed.job_id, *hard, diagnostic.clone()).await,
            }
        }
        None => match &mail.kind {
            Kind::Complaint { feedback_type } => {
                // A feedback loop's report, sent to an address of the operator's choosing:
                // the job is the original's (signed return path first, else its Message-ID).
                let by_return_path = mail
                    .original
                    .return_path
                    .as_deref()
                    .and_then(address::signed);
                let found = match by_return_path {
                    Some(signed) => verified_tenant(&s, &signed)
                        .await?
                        .map(|t| (t, signed.job_id)),
                    None => match mail
                        .original
                        .message_id
                        .as_deref()
                        .and_then(address::job_of_message_id)
                    {
                        Some(job) => only_tenant(&s, job).await?.map(|t| (t, job)),
                        None => None,
                    },
                };
                match found {
                    Some((tenant, job)) => complaint(&s, tenant, job, feedback_type).await,
                    None => Ok(ignored(
                        "a feedback report whose original names no message we sent",
                    )),
                }
            }
            _ => Ok(ignored(format!(
                "not addressed to a bounce or unsubscribe address (to: {})",
                candidates.join(", ")
            ))),
        },
    }
}

fn metadata(tenant: Uuid) -> EventMetadata {
    EventMetadata {
        tenant_id: Some(tenant),
        actor: Some("system:inbound-mail".to_owned()),
        correlation_id: Some(Uuid::now_v7()),
        ..Default::default()
    }
}

/// The organizations that sent job `job` (one, unless two happened to pick the same id).
async fn tenants_of(pool: &PgPool, job: Uuid) -> Result<Vec<Uuid>, Problem> {
    sqlx::query_scalar(
        "SELECT DISTINCT tenant_id FROM delivery_provider_messages WHERE job_id = $1 LIMIT 8",
    )
    .bind(job)
    .fetch_all(pool)
    .await
    .map_err(|e| Problem::from_internal(&e))
}

/// The organization whose key signed `signed`, if one did.
async fn verified_tenant(s: &InboundState, signed: &Signed) -> Result<Option<Uuid>, Problem> {
    Ok(tenants_of(&s.pool, signed.job_id)
        .await?
        .into_iter()
        .find(|t| {
            s.tracker
                .verify_address(signed.purpose, *t, signed.job_id, &signed.tag)
        }))
}

/// The organization of an unsigned job id (a Message-ID), when only one sent it.
async fn only_tenant(s: &InboundState, job: Uuid) -> Result<Option<Uuid>, Problem> {
    let tenants = tenants_of(&s.pool, job).await?;
    Ok(match tenants.as_slice() {
        [one] => Some(*one),
        _ => None,
    })
}

/// The address job `job` went to: its own, or its contact's (the suppression list's key;
/// never an address the report claims, which a forger could choose).
async fn address_of(
    s: &InboundState,
    tenant: Uuid,
    job: Uuid,
) -> Result<Option<(Channel, Option<String>)>, Problem> {
    let loaded = s
        .jobs
        .load(tenant, &[job])
        .await
        .map_err(|e| Problem::from_internal(&e))?;
    let Some(request) = loaded.get(&job).and_then(|l| l.job.request.clone()) else {
        return Ok(None);
    };
    if !request.to.is_empty() {
        return Ok(Some((request.channel, Some(request.to))));
    }
    let Some(contact) = request.contact_id else {
        return Ok(Some((request.channel, None)));
    };
    let rows = projections::contacts::get_many(&s.pool, tenant, &[contact], false)
        .await
        .map_err(|e| Problem::from_internal(&e))?;
    let email = rows
        .into_iter()
        .next()
        .map(|c| c.email)
        .filter(|e| !e.is_empty());
    Ok(Some((request.channel, email)))
}

/// Records `kind` on job `job` through the reports' recording path.
async fn report(
    s: &InboundState,
    tenant: Uuid,
    job: Uuid,
    kind: ReportKind,
    name: &'static str,
) -> Result<Response, Problem> {
    let Some((channel, recipient)) = address_of(s, tenant, job).await? else {
        return Ok(ignored("the address names no job"));
    };
    let report = Report {
        provider_message_id: String::new(),
        recipient,
        kind,
        at: s.clock.now(),
    };
    let meta = metadata(tenant);
    let n = reports::record(
        &s.jobs,
        &s.notifier,
        tenant,
        channel,
        &meta,
        vec![(job, report)],
    )
    .await?;
    Ok(if n == 0 {
        ignored("the job takes no report (it was never sent)")
    } else {
        recorded(name, job)
    })
}

async fn bounce(
    s: &InboundState,
    tenant: Uuid,
    job: Uuid,
    hard: bool,
    diagnostic: String,
) -> Result<Response, Problem> {
    let name = if hard { "hard_bounce" } else { "soft_bounce" };
    report(
        s,
        tenant,
        job,
        ReportKind::Bounced { hard, diagnostic },
        name,
    )
    .await
}

async fn complaint(
    s: &InboundState,
    tenant: Uuid,
    job: Uuid,
    feedback_type: &str,
) -> Result<Response, Problem> {
    if feedback_type == "not-spam" {
        return Ok(ignored("a not-spam feedback report"));
    }
    report(s, tenant, job, ReportKind::Complained, "complaint").await
}
