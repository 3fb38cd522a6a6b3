//! Reading the journey read models: the list (status filter, name search, two sorts either
//! way, keyset pages), one journey, its versions, its figures, and executions — a journey's
//! (status filter) or a contact's, newest first, in keyset pages.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgExecutor;
use uuid::Uuid;

use super::executions::ExecutionRow;
use super::figures::Counters;
use super::summaries::SummaryRow;
use super::versions::VersionDefRow;
use crate::campaigns::list::contains;

/// What the list sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    CreatedAt,
    Name,
}

impl Sort {
    /// The key expression (as indexed) and its type, for the page token's cast.
    fn key(self) -> (&'static str, &'static str) {
        match self {
            Self::CreatedAt => ("created_at", "timestamptz"),
            Self::Name => ("lower(name)", "text"),
        }
    }
}

/// A query of the list.
#[derive(Debug, Clone)]
pub struct ListQuery {
    /// Any of these statuses (empty: all).
    pub statuses: Vec<String>,
    /// The name contains this, case-insensitive.
    pub name: Option<String>,
    pub sort: Sort,
    pub descending: bool,
    /// The key of the last row of the previous page: the sort key as text, and the id.
    pub after: Option<(String, Uuid)>,
    pub limit: i64,
}

/// A journey in the list: everything but its definitions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JourneyRow {
    pub id: Uuid,
    pub name: String,
    /// draft, live, paused or archived.
    pub status: String,
    /// The latest published version (null: none yet).
    pub latest_version: Option<i32>,
    pub created_at: DateTime<Utc>,
    /// When the latest version was published.
    pub published_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    #[serde(flatten)]
    pub counts: Counters,
}

/// A version's counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VersionStatsRow {
    pub version: i32,
    #[serde(flatten)]
    pub counts: Counters,
}

/// A step's figures in one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StepStatsRow {
    pub version: i32,
    pub step: String,
    /// Times the step completed or started a wait.
    pub runs: i64,
    /// Executions waiting at the step now.
    pub waiting: i64,
    /// Times each branch was taken.
    pub branches: BTreeMap<String, i64>,
    /// Executions that took each branch and then converted.
    pub conversions: BTreeMap<String, i64>,
}

/// One of a contact's executions, with its journey's name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ContactExecution {
    pub journey_name: Option<String>,
    #[serde(flatten)]
    pub execution: ExecutionRow,
}

fn decode<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, sqlx::Error> {
    serde_json::from_value(v).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn decode_all<T: serde::de::DeserializeOwned>(
    rows: Vec<(serde_json::Value,)>,
) -> Result<Vec<T>, sqlx::Error> {
    rows.into_iter().map(|(v,)| decode(v)).collect()
}

/// Journey `id` of `tenant`.
pub async fn get<'e>(
    db: impl PgExecutor<'e>,
    tenant: Uuid,
    id: Uuid,
) -> Result<Option<SummaryRow>, sqlx::Error> {
    let row: Option<(serde_json::Value,)> = sqlx::query_as(
        "SELECT to_jsonb(j) FROM journey_summaries j WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(id)
    .persistent(false)
    .fetch_optional(db)
    .await?;
    row.map(|(v,)| decode(v)).transpose()
}

/// The statement of a list query (`$1` tenant, `$2` statuses, `$3` name pattern, `$4` and
/// `$5` the page token, `$6` the limit): each shape walks one of the list's indexes in its
/// order and stops after a page — with statuses, one walk of the status-led index per
/// status, the pages merged (as the campaign list does, for the same reason).
fn statement(q: &ListQuery) -> String {
    let (key, ty) = q.sort.key();
    let (dir, cmp) = if q.descending {
        ("DESC", "<")
    } else {
        ("ASC", ">")
    };
    let filters = format!(
        "j.tenant_id = $1 AND ($3::text IS NULL OR j.name ILIKE $3) \
         AND ($4::text IS NULL OR ({key}, j.id) {cmp} ($4::{ty}, $5))"
    );
    let order = format!("ORDER BY {key} {dir}, j.id {dir} LIMIT $6");
    let rows = if q.statuses.is_empty() {
        format!(
            "SELECT * FROM journey_summaries j \
             WHERE {filters} AND cardinality($2::text[]) = 0 {order}"
        )
    } else {
        format!(
            "SELECT j.* FROM unnest($2::text[]) AS s(status) CROSS JOIN LATERAL ( \
               SELECT * FROM journey_summaries j WHERE {filters} AND j.status = s.status {order}) j"
        )
    };
    format!(
        "SELECT to_jsonb(j) - 'draft' - 'versions', ({key})::text AS sort_key \
         FROM ({rows}) j {order}"
    )
}

/// A page of `tenant`'s journeys, each with its sort key as text (the last one's is the next
/// page's token).
pub async fn list<'e>(
    db: impl PgExecutor<'e>,
    tenant: Uuid,
    q: &ListQuery,
) -> Result<Vec<(JourneyRow, String)>, sqlx::Error> {
    let rows: Vec<(serde_json::Value, String)> = sqlx::query_as(&statement(q))
        .bind(tenant)
        .bind(&q.statuses)
        .bind(q.name.as_deref().map(contains))
        .bind(q.after.as_ref().map(|a| a.0.as_str()))
        .bind(q.after.as_ref().map_or(Uuid::nil(), |a| a.1))
        .bind(q.limit)
        .persistent(false)
        .fetch_all(db)
        .await?;
    rows.into_iter()
        .map(|(v, k)| decode(v).map(|r| (r, k)))
        .collect()
}

/// Version `version` of journey `journey`.
pub async fn version<'e>(
    db: impl PgExecutor<'e>,
    tenant: Uuid,
    journey: Uuid,
    version: i32,
) -> Result<Option<VersionDefRow>, sqlx::Error> {
    let row: Option<(serde_json::Value,)> = sqlx::query_as(
        "SELECT to_jsonb(v) FROM journey_version_defs v \
         WHERE tenant_id = $1 AND journey_id = $2 AND version = $3",
    )
    .bind(tenant)
    .bind(journey)
    .bind(version)
    .persistent(false)
    .fetch_optional(db)
    .await?;
    row.map(|(v,)| decode(v)).transpose()
}

/// The rows of `table` (one of this module's per-version tables) for `journey` (`only` in
/// one version), in `order`: the one query of the three readers below.
async fn per_version<'e, T: serde::de::DeserializeOwned>(
    db: impl PgExecutor<'e>,
    table: &'static str,
    order: &'static str,
    tenant: Uuid,
    journey: Uuid,
    only: Option<i32>,
) -> Result<Vec<T>, sqlx::Error> {
    let rows: Vec<(serde_json::Value,)> = sqlx::query_as(&format!(
        "SELECT to_jsonb(t) FROM {table} t WHERE tenant_id = $1 \
         AND journey_id = $2 AND ($3::int IS NULL OR version = $3) ORDER BY {order}"
    ))
    .bind(tenant)
    .bind(journey)
    .bind(only)
    .persistent(false)
    .fetch_all(db)
    .await?;
    decode_all(rows)
}

/// The published versions of `journey` (`only` one of them), oldest first.
pub async fn versions<'e>(
    db: impl PgExecutor<'e>,
    tenant: Uuid,
    journey: Uuid,
    only: Option<i32>,
) -> Result<Vec<VersionDefRow>, sqlx::Error> {
    per_version(db, "journey_version_defs", "version", tenant, journey, only).await
}

/// The counters of `journey`'s versions that any execution entered (`only` one), oldest
/// first.
pub async fn version_stats<'e>(
    db: impl PgExecutor<'e>,
    tenant: Uuid,
    journey: Uuid,
    only: Option<i32>,
) -> Result<Vec<VersionStatsRow>, sqlx::Error> {
    per_version(
        db,
        "journey_version_stats",
        "version",
        tenant,
        journey,
        only,
    )
    .await
}

/// The figures of every step of `journey` any execution reached (`only` in one version),
/// by version and step.
pub async fn step_stats<'e>(
    db: impl PgExecutor<'e>,
    tenant: Uuid,
    journey: Uuid,
    only: Option<i32>,
) -> Result<Vec<StepStatsRow>, sqlx::Error> {
    per_version(
        db,
        "journey_step_stats",
        "version, step",
        tenant,
        journey,
        only,
    )
    .await
}

/// A page of `journey`'s executions in any of `statuses` (empty: all), newest entered first,
/// after the (entered_at, id) of the previous page's last one.
pub async fn executions<'e>(
    db: impl PgExecutor<'e>,
    tenant: Uuid,
    journey: Uuid,
    statuses: &[String],
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<ExecutionRow>, sqlx::Error> {
    let filters = "x.tenant_id = $1 AND x.journey_id = $2 \
                   AND ($4::timestamptz IS NULL OR (x.entered_at, x.id) < ($4, $5))";
    let order = "ORDER BY entered_at DESC, id DESC LIMIT $6";
    let rows = if statuses.is_empty() {
        format!(
            "SELECT * FROM journey_executions x \
             WHERE {filters} AND cardinality($3::text[]) = 0 {order}"
        )
    } else {
        format!(
            "SELECT x.* FROM unnest($3::text[]) AS s(status) CROSS JOIN LATERAL ( \
               SELECT * FROM journey_executions x WHERE {filters} AND x.status = s.status {order}) x"
        )
    };
    let rows: Vec<(serde_json::Value,)> =
        sqlx::query_as(&format!("SELECT to_jsonb(x) FROM ({rows}) x {order}"))
            .bind(tenant)
            .bind(journey)
            .bind(statuses)
            .bind(after.map(|a| a.0))
            .bind(after.map_or(Uuid::nil(), |a| a.1))
            .bind(limit)
            .persistent(false)
            .fetch_all(db)
            .await?;
    decode_all(rows)
}

/// A page of the executions of any of `contacts`, newest entered first, with their
/// journeys' names.
pub async fn of_contacts<'e>(
    db: impl PgExecutor<'e>,
    tenant: Uuid,
    contacts: &[Uuid],
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<ContactExecution>, sqlx::Error> {
    let rows: Vec<(serde_json::Value,)> = sqlx::query_as(
        "SELECT to_jsonb(x) || jsonb_build_object('journey_name', j.name) \
         FROM journey_executions x \
         LEFT JOIN journey_summaries j ON j.tenant_id = x.tenant_id AND j.id = x.journey_id \
         WHERE x.tenant_id = $1 AND x.contact_id = ANY($2) \
           AND ($3::timestamptz IS NULL OR (x.entered_at, x.id) < ($3, $4)) \
         ORDER BY x.entered_at DESC, x.id DESC LIMIT $5",
    )
    .bind(tenant)
    .bind(contacts)
    .bind(after.map(|a| a.0))
    .bind(after.map_or(Uuid::nil(), |a| a.1))
    .bind(limit)
    .persistent(false)
    .fetch_all(db)
    .await?;
    decode_all(rows)
}
