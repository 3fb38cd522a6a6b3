//! `journey_summaries`: one row per journey — name, status, draft and published versions
//! folded from the journey's stream (skipped at or below the row's `version`, the stream's
//! sequence), and counters of its executions added per batch in one `UPDATE … FROM UNNEST`.

use std::collections::BTreeMap;

use chrono::{DateTime, SubsecRound, Utc};
use domain::journey::aggregate::{JourneyEvent as E, Status};
use event_store::RecordedEvent;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::figures::Counters;
use crate::ProjectionError;

/// A published version, as the journey's row lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VersionRef {
    pub number: i32,
    pub published_at: DateTime<Utc>,
}

/// A journey as its detail view shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub name: String,
    /// draft, live, paused or archived.
    pub status: String,
    /// The latest published version (`None`: none yet).
    pub latest_version: Option<i32>,
    /// The draft's definition.
    pub draft: serde_json::Value,
    pub versions: Vec<VersionRef>,
    pub created_at: DateTime<Utc>,
    /// When the latest version was published.
    pub published_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    #[serde(flatten)]
    pub counts: Counters,
    /// The journey stream's sequence this row reflects.
    pub version: i64,
}

/// A journey version number as stored (versions are small; the column is `integer`).
pub fn number(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

impl SummaryRow {
    /// Folds one of the journey's events into the row (`None` before it exists).
    pub fn apply(row: Option<Self>, e: &RecordedEvent, event: E, id: Uuid) -> Option<Self> {
        let mut r = match (row, event) {
            (Some(r), _) if e.sequence <= r.version => return Some(r),
            (None, E::JourneyCreated { name, definition }) => Self {
                tenant_id: e.tenant_id,
                id,
                name,
                status: Status::Draft.as_str().to_owned(),
                latest_version: None,
                draft: serde_json::to_value(definition).unwrap_or_default(),
                versions: Vec::new(),
                created_at: e.recorded_at,
                published_at: None,
                updated_at: e.recorded_at,
                counts: Counters::default(),
                version: e.sequence,
            },
            (None, _) => return None,
            (Some(mut r), event) => {
                r.fold(event);
                r
            }
        };
        r.updated_at = e.recorded_at;
        r.version = e.sequence;
        Some(r)
    }

    fn set_status(&mut self, s: Status) {
        self.status = s.as_str().to_owned();
    }

    fn fold(&mut self, event: E) {
        match event {
            E::JourneyCreated { .. } => {}
            E::JourneyDraftChanged {
                name, definition, ..
            } => {
                self.name = name;
                self.draft = serde_json::to_value(definition).unwrap_or_default();
            }
            E::JourneyPublished { version, at, .. } => {
                if self.status == Status::Draft.as_str() {
                    self.set_status(Status::Live);
                }
                let number = number(version);
                self.latest_version = Some(number);
                // To the microsecond, as the `timestamptz` columns hold the same moment.
                self.versions.push(VersionRef {
                    number,
                    published_at: at.round_subsecs(6),
                });
                self.published_at = Some(at);
            }
            E::JourneyPaused { .. } => self.set_status(Status::Paused),
            E::JourneyResumed { .. } => self.set_status(Status::Live),
            E::JourneyArchived { .. } => self.set_status(Status::Archived),
        }
    }
}

/// The columns the journey's own events rewrite (never the counters).
pub const UPDATED: &[&str] = &[
    "name",
    "status",
    "latest_version",
    "draft",
    "versions",
    "published_at",
    "updated_at",
    "version",
];

/// Adds `by` — (tenant, journey) → what the batch's executions add — to the journeys' rows.
pub async fn add_counts(
    conn: &mut PgConnection,
    table: &str,
    by: &BTreeMap<(Uuid, Uuid), Counters>,
) -> Result<(), ProjectionError> {
    if by.is_empty() {
        return Ok(());
    }
    let col = |f: fn(&Counters) -> i64| -> Vec<i64> { by.values().map(f).collect() };
    sqlx::query(&format!(
        "UPDATE {table} s SET entered = s.entered + d.entered, \
           in_flight = s.in_flight + d.in_flight, completed = s.completed + d.completed, \
           exited = s.exited + d.exited, failed = s.failed + d.failed, \
           converted = s.converted + d.converted \
         FROM UNNEST($1::uuid[], $2::uuid[], $3::bigint[], $4::bigint[], $5::bigint[], \
                     $6::bigint[], $7::bigint[], $8::bigint[]) \
              AS d(tenant_id, id, entered, in_flight, completed, exited, failed, converted) \
         WHERE s.tenant_id = d.tenant_id AND s.id = d.id"
    ))
    .bind(by.keys().map(|k| k.0).collect::<Vec<_>>())
    .bind(by.keys().map(|k| k.1).collect::<Vec<_>>())
    .bind(col(|c| c.entered))
    .bind(col(|c| c.in_flight))
    .bind(col(|c| c.completed))
    .bind(col(|c| c.exited))
    .bind(col(|c| c.failed))
    .bind(col(|c| c.converted))
    .persistent(false)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
