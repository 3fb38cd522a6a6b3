//! The `deliveries` read model: one row per delivery job — where it stands, why (a
//! suppression, a deferral, an error), its provider and tracking counts — for the deliveries
//! list (filters by status, channel, contact, template, source) and detail.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::delivery::{DeliveryEvent as E, DeliveryJob, Source};
use event_store::RecordedEvent;
use serde::{Deserialize, Serialize};
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::{json_rows, Projection, ProjectionError, Target};

pub struct DeliveriesProjection;

/// A delivery job as the list and detail show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeliveryRow {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub channel: String,
    pub contact_id: Option<Uuid>,
    /// The address of a message to a bare address (a contact's is not kept here).
    pub recipient: Option<String>,
    pub template_id: Uuid,
    pub template_version: i32,
    /// `campaign`, `journey`, `transactional` or `test`.
    pub source: String,
    /// The campaign or journey.
    pub source_id: Option<Uuid>,
    /// A campaign's A/B test variant (null: none, or requested before it was kept here).
    #[serde(default)]
    pub variant: Option<String>,
    /// requested, deferred, failed, dispatching, sent, in_doubt, delivered, bounced,
    /// complained, suppressed, given_up, cancelled.
    pub status: String,
    /// Why it is suppressed, deferred, failed or given up (the event's own words).
    #[schema(value_type = Object)]
    pub reason: Option<serde_json::Value>,
    pub attempts: i32,
    pub provider: Option<String>,
    pub provider_message_id: Option<String>,
    pub retry_at: Option<DateTime<Utc>>,
    pub opens: i32,
    pub clicks: i32,
    pub unsubscribed: bool,
    pub requested_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

fn status(s: domain::delivery::Status) -> String {
    s.as_str().to_owned()
}

impl DeliveryRow {
    pub fn apply(row: Option<Self>, e: &RecordedEvent, event: E, id: Uuid) -> Option<Self> {
        use domain::delivery::Status as S;
        let mut r = match (row, event) {
            (Some(r), _) if e.sequence <= r.version => return Some(r),
            (None, E::DeliveryRequested(req)) => {
                let (source, source_id) = match &req.source {
                    Source::Campaign { campaign_id, .. } => ("campaign", Some(*campaign_id)),
                    Source::Journey { journey_id, .. } => ("journey", Some(*journey_id)),
                    Source::Transactional { .. } => ("transactional", None),
                    Source::Test => ("test", None),
                };
                Self {
                    tenant_id: e.tenant_id,
                    id,
                    channel: req.channel.as_str().to_owned(),
                    contact_id: req.contact_id,
                    recipient: Some(req.to.clone()).filter(|t| !t.is_empty()),
                    template_id: req.template_id,
                    template_version: i32::try_from(req.template_version).unwrap_or(i32::MAX),
                    source: source.to_owned(),
                    source_id,
                    variant: match &req.source {
                        Source::Campaign { variant, .. } => variant.clone(),
                        _ => None,
                    },
                    status: status(S::Requested),
                    reason: None,
                    attempts: 0,
                    provider: None,
                    provider_message_id: None,
                    retry_at: None,
                    opens: 0,
                    clicks: 0,
                    unsubscribed: false,
                    requested_at: e.recorded_at,
                    sent_at: None,
                    updated_at: e.recorded_at,
                    version: e.sequence,
                }
            }
            (None, _) => return None,
            (Some(mut r), event) => {
                let reason = |v: serde_json::Value| Some(v);
                match event {
                    E::DeliveryRequested(_) => {}
                    E::DeliverySuppressed { reason: why, .. } => {
                        r.status = status(S::Suppressed);
                        r.reason = reason(serde_json::to_value(why).unwrap_or_default());
                    }
                    E::DeliveryDeferred { reason: why, until } => {
                        r.status = status(S::Deferred);
                        r.reason = reason(serde_json::json!({"deferral": why, "until": until}));
                        r.retry_at = Some(until);
                    }
                    E::DeliveryDispatching { attempt, provider } => {
                        r.status = status(S::Dispatching);
                        r.attempts = i32::try_from(attempt).unwrap_or(i32::MAX);
                        r.provider = Some(provider);
                        r.retry_at = None;
                    }
                    E::DeliverySent {
                        provider_message_id,
                        provider,
                        ..
                    } => {
                        r.status = status(S::Sent);
                        r.provider = Some(provider);
                        r.provider_message_id = Some(provider_message_id);
                        r.sent_at = Some(e.recorded_at);
                        r.reason = None;
                    }
                    E::DeliveryAttemptFailed {
                        error, retry_at, ..
                    } => {
                        r.status = status(S::Failed);
                        r.reason = reason(serde_json::json!({"error": error}));
                        r.retry_at = Some(retry_at);
                    }
                    E::DeliveryGivenUp { error, .. } => {
                        r.status = status(S::GivenUp);
                        r.reason = reason(serde_json::json!({"error": error}));
                        r.retry_at = None;
                    }
                    E::DeliveryInDoubt { .. } => r.status = status(S::InDoubt),
                    E::DeliveryDelivered { .. } => {
                        if matches!(r.status.as_str(), "sent" | "in_doubt") {
                            r.status = status(S::Delivered);
                        }
                    }
                    E::DeliveryBounced {
                        kind, diagnostic, ..
                    } => {
                        r.status = status(S::Bounced);
                        r.reason =
                            reason(serde_json::json!({"bounce": kind, "diagnostic": diagnostic}));
                    }
                    E::DeliveryComplained { .. } => r.status = status(S::Complained),
                    E::DeliveryOpened { .. } => {
                        r.opens += 1;
                        if matches!(r.status.as_str(), "sent" | "in_doubt") {
                            r.status = status(S::Delivered);
                        }
                    }
                    E::DeliveryClicked { .. } => {
                        r.clicks += 1;
                        if matches!(r.status.as_str(), "sent" | "in_doubt") {
                            r.status = status(S::Delivered);
                        }
                    }
                    E::DeliveryUnsubscribed { .. } => r.unsubscribed = true,
                    E::DeliveryCancelled { reason: why, .. } => {
                        r.status = status(S::Cancelled);
                        r.reason = reason(serde_json::json!({"cancelled": why}));
                    }
                }
                r
            }
        };
        r.updated_at = e.recorded_at;
        r.version = e.sequence;
        Some(r)
    }
}

const UPDATED: &[&str] = &[
    "status",
    "reason",
    "attempts",
    "provider",
    "provider_message_id",
    "retry_at",
    "opens",
    "clicks",
    "unsubscribed",
    "sent_at",
    "updated_at",
    "version",
];

#[async_trait]
impl Projection for DeliveriesProjection {
    fn name(&self) -> &'static str {
        "deliveries"
    }

    fn table(&self) -> &'static str {
        "deliveries"
    }

    /// Job events hold no sealed values (a contact's address is never in them).
    fn needs_personal_data(&self) -> bool {
        false
    }

    fn concerns(&self, e: &RecordedEvent) -> bool {
        e.aggregate_type == DeliveryJob::TYPE
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&[DeliveryJob::TYPE])
    }

    async fn apply(
        &self,
        conn: &mut sqlx::PgConnection,
        target: &Target,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        json_rows::fold_rows::<DeliveryRow, E>(
            conn,
            target,
            events,
            DeliveryJob::TYPE,
            DeliveryRow::apply,
            UPDATED,
        )
        .await
    }
}

/// Filters of the deliveries list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub status: Option<String>,
    pub channel: Option<String>,
    pub contact_id: Option<Uuid>,
    pub template_id: Option<Uuid>,
    pub source: Option<String>,
    pub source_id: Option<Uuid>,
}

fn decode(v: serde_json::Value) -> Result<DeliveryRow, sqlx::Error> {
    serde_json::from_value(v).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// Delivery `id` of `tenant`.
pub async fn get<'e>(
    db: impl PgExecutor<'e>,
    tenant: Uuid,
    id: Uuid,
) -> Result<Option<DeliveryRow>, sqlx::Error> {
    let row: Option<(serde_json::Value,)> =
        sqlx::query_as("SELECT to_jsonb(d) FROM deliveries d WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .persistent(false)
            .fetch_optional(db)
            .await?;
    row.map(|(v,)| decode(v)).transpose()
}

/// A page of `tenant`'s deliveries, newest first, after the `(requested_at, id)` key `after`.
pub async fn list<'e>(
    db: impl PgExecutor<'e>,
    tenant: Uuid,
    f: &Filter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    let rows: Vec<(serde_json::Value,)> = sqlx::query_as(
        "SELECT to_jsonb(d) FROM deliveries d WHERE tenant_id = $1 \
           AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR channel = $3) \
           AND ($4::uuid IS NULL OR contact_id = $4) AND ($5::uuid IS NULL OR template_id = $5) \
           AND ($6::text IS NULL OR source = $6) AND ($7::uuid IS NULL OR source_id = $7) \
           AND ($8::timestamptz IS NULL OR (requested_at, id) < ($8, $9)) \
         ORDER BY requested_at DESC, id DESC LIMIT $10",
    )
    .bind(tenant)
    .bind(&f.status)
    .bind(&f.channel)
    .bind(f.contact_id)
    .bind(f.template_id)
    .bind(&f.source)
    .bind(f.source_id)
    .bind(after.map(|a| a.0))
    .bind(after.map_or(Uuid::nil(), |a| a.1))
    .bind(limit)
    .persistent(false)
    .fetch_all(db)
    .await?;
    rows.into_iter().map(|(v,)| decode(v)).collect()
}

/// One day of a tenant's messages (by the day they were requested, UTC).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Day {
    pub day: chrono::NaiveDate,
    pub requested: i64,
    /// Sent or delivered (the provider took them).
    pub sent: i64,
    pub opened: i64,
    pub clicked: i64,
    pub bounced: i64,
}

/// The tenant's messages per day since `since`, oldest first (days without any are absent).
pub async fn per_day<'e>(
    db: impl PgExecutor<'e>,
    tenant: Uuid,
    since: DateTime<Utc>,
) -> Result<Vec<Day>, sqlx::Error> {
    sqlx::query_as(
        "SELECT (requested_at AT TIME ZONE 'UTC')::date AS day, count(*) AS requested, \
                count(*) FILTER (WHERE status IN ('sent', 'delivered') OR opens > 0) AS sent, \
                count(*) FILTER (WHERE opens > 0) AS opened, \
                count(*) FILTER (WHERE clicks > 0) AS clicked, \
                count(*) FILTER (WHERE status = 'bounced') AS bounced \
         FROM deliveries WHERE tenant_id = $1 AND requested_at >= $2 \
         GROUP BY 1 ORDER BY 1",
    )
    .bind(tenant)
    .bind(since)
    .persistent(false)
    .fetch_all(db)
    .await
}
