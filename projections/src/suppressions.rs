//! The `suppressions` read model: one row per suppression entry, with its address in clear,
//! for the list, search, detail — and [`suppressed`], one query for a batch of addresses.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::delivery::suppression::{SuppressionEntry, SuppressionEvent as E, SuppressionReason};
use domain::delivery::Channel;
use event_store::RecordedEvent;
use serde::{Deserialize, Serialize};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use crate::{json_rows, Projection, ProjectionError, Target};

pub struct SuppressionsProjection;

/// An entry as lists and detail views show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuppressionRow {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub channel: Channel,
    pub address: String,
    /// The reason of the last suppression (kept after a removal).
    pub reason: SuppressionReason,
    /// Where the last change came from.
    pub source: Option<String>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl SuppressionRow {
    /// Folds one event into the row (`None` before the entry exists).
    pub fn apply(row: Option<Self>, e: &RecordedEvent, event: E, id: Uuid) -> Option<Self> {
        let mut r = match (row, event) {
            (Some(r), _) if e.sequence <= r.version => return Some(r),
            (
                row,
                E::AddressSuppressed {
                    channel,
                    address,
                    reason,
                    source,
                },
            ) => {
                let created_at = row.as_ref().map_or(e.recorded_at, |r| r.created_at);
                Self {
                    tenant_id: e.tenant_id,
                    id,
                    channel,
                    address,
                    reason,
                    source,
                    active: true,
                    created_at,
                    updated_at: e.recorded_at,
                    version: e.sequence,
                }
            }
            (None, E::AddressUnsuppressed { .. }) => return None,
            (Some(mut r), E::AddressUnsuppressed { source }) => {
                r.active = false;
                r.source = source;
                r
            }
        };
        r.updated_at = e.recorded_at;
        r.version = e.sequence;
        Some(r)
    }
}

const UPDATED: &[&str] = &[
    "channel",
    "address",
    "reason",
    "source",
    "active",
    "updated_at",
    "version",
];

#[async_trait]
impl Projection for SuppressionsProjection {
    fn name(&self) -> &'static str {
        "suppressions"
    }

    fn table(&self) -> &'static str {
        "suppressions"
    }

    /// The list shows the address, which the log keeps sealed.
    fn needs_personal_data(&self) -> bool {
        true
    }

    fn concerns(&self, e: &RecordedEvent) -> bool {
        e.aggregate_type == SuppressionEntry::TYPE
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&[SuppressionEntry::TYPE])
    }

    async fn apply(
        &self,
        conn: &mut sqlx::PgConnection,
        target: &Target,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        json_rows::fold_rows::<SuppressionRow, E>(
            conn,
            target,
            events,
            SuppressionEntry::TYPE,
            SuppressionRow::apply,
            UPDATED,
        )
        .await
    }
}

fn decode(v: serde_json::Value) -> Result<SuppressionRow, sqlx::Error> {
    serde_json::from_value(v).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// Entry `id` of `tenant` (active or removed).
pub async fn get<'e>(
    db: impl PgExecutor<'e>,
    tenant: Uuid,
    id: Uuid,
) -> Result<Option<SuppressionRow>, sqlx::Error> {
    let row: Option<(serde_json::Value,)> =
        sqlx::query_as("SELECT to_jsonb(s) FROM suppressions s WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .persistent(false)
            .fetch_optional(db)
            .await?;
    row.map(|(v,)| decode(v)).transpose()
}

/// What a list shows.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub channel: Option<Channel>,
    pub reason: Option<SuppressionReason>,
    /// Addresses starting with this (as given, or lower-cased).
    pub prefix: Option<String>,
    /// Removed entries too.
    pub include_removed: bool,
}

/// A page of `tenant`'s entries, newest first, after the `(created_at, id)` key `after`.
pub async fn list<'e>(
    db: impl PgExecutor<'e>,
    tenant: Uuid,
    filter: &ListFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<SuppressionRow>, sqlx::Error> {
    let prefix = filter.prefix.as_deref().map(crate::like::escaped);
    let rows: Vec<(serde_json::Value,)> = sqlx::query_as(
        "SELECT to_jsonb(s) FROM suppressions s \
         WHERE tenant_id = $1 AND (active OR $2) \
           AND ($3::text IS NULL OR channel = $3) \
           AND ($4::text IS NULL OR reason = $4) \
           AND ($5::text IS NULL OR address LIKE $5 || '%' OR address LIKE lower($5) || '%') \
           AND ($6::timestamptz IS NULL OR (created_at, id) < ($6, $7)) \
         ORDER BY created_at DESC, id DESC LIMIT $8",
    )
    .bind(tenant)
    .bind(filter.include_removed)
    .bind(filter.channel.map(Channel::as_str))
    .bind(filter.reason.map(SuppressionReason::as_str))
    .bind(prefix)
    .bind(after.map(|a| a.0))
    .bind(after.map_or(Uuid::nil(), |a| a.1))
    .bind(limit)
    .persistent(false)
    .fetch_all(db)
    .await?;
    rows.into_iter().map(|(v,)| decode(v)).collect()
}

/// Which of `addresses` (normalized, as `commands::suppressions::normalize` makes them) are
/// actively suppressed on `channel` in `tenant`'s list, and why: one query for the batch.
/// The read model lags the log a little; right after suppressing, ask the write side
/// (`commands::suppressions::suppressed_now`).
pub async fn suppressed(
    pool: &PgPool,
    tenant: Uuid,
    channel: Channel,
    addresses: &[String],
) -> Result<HashMap<String, SuppressionReason>, sqlx::Error> {
    let rows: Vec<(String, serde_json::Value)> = sqlx::query_as(
        "SELECT address, to_jsonb(reason) FROM suppressions \
         WHERE tenant_id = $1 AND channel = $2 AND active AND address = ANY($3)",
    )
    .bind(tenant)
    .bind(channel.as_str())
    .bind(addresses)
    .persistent(false)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(a, r)| {
            serde_json::from_value(r)
                .map(|r| (a, r))
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))
        })
        .collect()
}
