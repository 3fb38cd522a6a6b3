//! `POST /webhooks/{tenant}/{provider}`: a provider's delivery, bounce and complaint reports.
//! The provider's configuration (its secrets) verifies the request ([`super::webhooks`]);
//! each report is matched to its job by the provider's message id and recorded on it; hard
//! bounces and complaints put the address on the suppression list for good, provider-side
//! unsubscribes too. Nothing is recorded from a request that does not verify.

use http_kit::ApiPath;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use commands::delivery::jobs::{Jobs, JobsError, Queue};
use domain::delivery::suppression::SuppressionReason;
use domain::delivery::{BounceKind, Channel, DeliveryCommand};
use event_store::shred::keyring::Keyring;
use event_store::wakeup::Notifier;
use event_store::EventMetadata;
use http_kit::Problem;
use sqlx::PgPool;
use uuid::Uuid;

use super::webhooks::{self, CertSource, Incoming, Report, ReportKind, WebhookError};

/// What the report endpoint needs.
#[derive(Clone)]
pub struct ReportState {
    pub pool: PgPool,
    pub jobs: Jobs,
    pub notifier: Notifier,
    pub keys: Arc<Keyring>,
    pub certs: Arc<dyn CertSource>,
    /// The public base URL (Twilio signs the URL it called).
    pub public_url: String,
}

pub fn report_routes(state: ReportState) -> Router {
    Router::new()
        .route("/webhooks/{tenant}/{provider}", post(receive))
        .with_state(state)
}

/// How many reports were recorded, and how many named no job of ours.
#[derive(Debug, serde::Serialize)]
struct Received {
    recorded: usize,
    unmatched: usize,
}

fn refused(e: &WebhookError) -> Problem {
    match e {
        WebhookError::Malformed(_) => Problem::bad_request(e.to_string()),
        WebhookError::Unsupported(_) => Problem::not_found("webhook"),
        _ => Problem::new(
            StatusCode::UNAUTHORIZED,
            "webhook-not-verified",
            "Not verified",
        )
        .detail(e.to_string()),
    }
}

async fn receive(
    State(s): State<ReportState>,
    ApiPath((tenant, provider)): ApiPath<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let (Ok(tenant), Ok(provider)) = (Uuid::parse_str(&tenant), Uuid::parse_str(&provider)) else {
        return Err(Problem::not_found("webhook"));
    };
    let mut found = None;
    for channel in [
        Channel::Email,
        Channel::Sms,
        Channel::Push,
        Channel::Webhook,
    ] {
        if let Some(p) =
            commands::providers::resolve(&s.pool, &s.keys, tenant, channel, Some(provider))
                .await
                .map_err(|e| Problem::from_internal(&e))?
        {
            found = Some((channel, p));
            break;
        }
    }
    let (channel, p) = found.ok_or_else(|| Problem::not_found("webhook"))?;
    let url = format!(
        "{}{}",
        s.public_url.trim_end_matches('/'),
        uri.path_and_query().map_or("", |x| x.as_str())
    );
    let incoming = Incoming {
        url: &url,
        headers: &headers,
        body: &body,
    };
    let reports =
        match webhooks::verify_and_parse(&p.kind, &p.config, &incoming, s.certs.as_ref()).await {
            Ok(r) => r,
            Err(WebhookError::SubscriptionConfirmation { subscribe_url, .. }) => {
                // Verified: confirm the SNS subscription by visiting its URL (an SNS host).
                reqwest::get(&subscribe_url)
                    .await
                    .and_then(|r| r.error_for_status())
                    .map_err(|e| Problem::from_internal(&e))?;
                return Ok(StatusCode::OK.into_response());
            }
            Err(e) => {
                tracing::info!(%tenant, %provider, error = %e, "provider webhook refused");
                return Err(refused(&e));
            }
        };
    let name = format!("{}:{}", p.kind, p.id);
    let meta = EventMetadata {
        tenant_id: Some(tenant),
        actor: Some(format!("system:webhook:{}", p.kind)),
        correlation_id: Some(Uuid::now_v7()),
        ..Default::default()
    };
    let mut out = Received {
        recorded: 0,
        unmatched: 0,
    };
    let mut matched = Vec::new();
    for r in reports {
        let job: Option<(Uuid,)> = sqlx::query_as(
            "SELECT job_id FROM delivery_provider_messages \
             WHERE provider = $1 AND provider_message_id = $2 AND tenant_id = $3",
        )
        .bind(&name)
        .bind(&r.provider_message_id)
        .bind(tenant)
        .fetch_optional(&s.pool)
        .await
        .map_err(|e| Problem::from_internal(&e))?;
        match job {
            Some((job,)) => matched.push((job, r)),
            None => out.unmatched += 1,
        }
    }
    out.recorded = record(&s.jobs, &s.notifier, tenant, channel, &meta, matched).await?;
    Ok(
        Json(serde_json::json!({"recorded": out.recorded, "unmatched": out.unmatched}))
            .into_response(),
    )
}

/// What a report does: the command it records on its job, and the suppression it calls for.
fn effect(kind: ReportKind, at: DateTime<Utc>) -> (DeliveryCommand, Option<SuppressionReason>) {
    match kind {
        ReportKind::Delivered => (DeliveryCommand::RecordDelivered { at }, None),
        ReportKind::Bounced { hard, diagnostic } => (
            DeliveryCommand::RecordBounce {
                kind: if hard {
                    BounceKind::Hard
                } else {
                    BounceKind::Soft
                },
                diagnostic,
                at,
            },
            hard.then_some(SuppressionReason::HardBounce),
        ),
        ReportKind::Failed { diagnostic } => (
            DeliveryCommand::RecordBounce {
                kind: BounceKind::Soft,
                diagnostic,
                at,
            },
            None,
        ),
        ReportKind::Complained => (
            DeliveryCommand::RecordComplaint { at },
            Some(SuppressionReason::Complaint),
        ),
        ReportKind::Opened => (
            DeliveryCommand::RecordOpen {
                at,
                user_agent: None,
            },
            None,
        ),
        ReportKind::Clicked { url } => (DeliveryCommand::RecordClick { url, at }, None),
        ReportKind::Unsubscribed => (
            DeliveryCommand::RecordUnsubscribe { at },
            Some(SuppressionReason::Unsubscribe),
        ),
    }
}

/// Records `reports` of `tenant`, each matched to its job: the report's command on the job
/// (a report that comes again records nothing: the job ignores repeats), then hard bounces,
/// complaints and unsubscribes put the report's recipient on the suppression list for good.
/// The one recording path of provider webhooks and inbound mail. Answers how many reports
/// the jobs took.
pub async fn record(
    jobs: &Jobs,
    notifier: &Notifier,
    tenant: Uuid,
    channel: Channel,
    meta: &EventMetadata,
    reports: Vec<(Uuid, Report)>,
) -> Result<usize, Problem> {
    let mut recorded = 0;
    let mut suppress = Vec::new();
    for (job, r) in reports {
        let (command, suppression) = effect(r.kind, r.at);
        // Reports come again (providers retry): recording one twice changes nothing.
        match jobs.execute(tenant, job, command, meta, Queue::Keep).await {
            Ok(_) => recorded += 1,
            Err(JobsError::Rejected(e)) => {
                tracing::debug!(%job, error = %e, "report not recorded")
            }
            Err(e) => return Err(Problem::from_internal(&e)),
        }
        if let (Some(reason), Some(address)) = (suppression, r.recipient.as_deref()) {
            if let Ok(address) = commands::suppressions::normalize(channel, address) {
                suppress.push((channel, address, reason, Some(format!("job:{job}"))));
            }
        }
    }
    if !suppress.is_empty() {
        commands::suppressions::suppress_many(jobs.pool(), notifier, tenant, meta, &suppress)
            .await
            .map_err(|e| Problem::from_internal(&e))?;
    }
    Ok(recorded)
}
