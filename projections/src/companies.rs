//! The `companies` read model: one row per company, for the company list and detail.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::company::{Company, CompanyEvent as E};
use event_store::RecordedEvent;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::{json_rows, Projection, ProjectionError, Target};

pub struct CompaniesProjection;

/// A company as lists and detail views show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CompanyRow {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub name: String,
    pub domain: Option<String>,
    /// Custom fields: key → text, number, boolean or list of texts.
    #[schema(value_type = Object)]
    pub fields: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl CompanyRow {
    /// Folds one event into the row (`None` before the company exists).
    pub fn apply(row: Option<Self>, e: &RecordedEvent, event: E, id: Uuid) -> Option<Self> {
        match (row, event) {
            (Some(r), _) if e.sequence <= r.version => Some(r),
            (
                None,
                E::CompanyCreated {
                    name,
                    domain,
                    fields,
                },
            ) => Some(Self {
                tenant_id: e.tenant_id,
                id,
                name,
                domain,
                fields: serde_json::to_value(fields).unwrap_or_default(),
                created_at: e.recorded_at,
                updated_at: e.recorded_at,
                version: e.sequence,
            }),
            (None, _) => None,
            (Some(r), E::CompanyCreated { .. }) => Some(r),
            (
                Some(mut r),
                E::CompanyUpdated {
                    name,
                    domain,
                    fields_set,
                    fields_unset,
                    ..
                },
            ) => {
                r.name = name;
                r.domain = domain;
                if let serde_json::Value::Object(map) = &mut r.fields {
                    for (k, v) in fields_set {
                        map.insert(k, serde_json::to_value(v).unwrap_or_default());
                    }
                    for k in fields_unset {
                        map.remove(&k);
                    }
                }
                r.updated_at = e.recorded_at;
                r.version = e.sequence;
                Some(r)
            }
        }
    }
}

const UPDATED: &[&str] = &["name", "domain", "fields", "updated_at", "version"];

#[async_trait]
impl Projection for CompaniesProjection {
    fn name(&self) -> &'static str {
        "companies"
    }

    fn table(&self) -> &'static str {
        "companies"
    }

    /// Reads only public fields.
    fn needs_personal_data(&self) -> bool {
        false
    }

    fn concerns(&self, e: &RecordedEvent) -> bool {
        e.aggregate_type == Company::TYPE
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&[Company::TYPE])
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        target: &Target,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        json_rows::fold_rows::<CompanyRow, E>(
            conn,
            target,
            events,
            Company::TYPE,
            CompanyRow::apply,
            UPDATED,
        )
        .await
    }
}

/// Company `id` of `tenant`, with how many contacts are linked to it.
pub async fn get<'e>(
    db: impl PgExecutor<'e>,
    tenant: Uuid,
    id: Uuid,
) -> Result<Option<(CompanyRow, i64)>, sqlx::Error> {
    let row: Option<(serde_json::Value, i64)> = sqlx::query_as(
        "SELECT to_jsonb(c), (SELECT count(*) FROM contacts k WHERE k.tenant_id = c.tenant_id \
                              AND k.company_ids @> ARRAY[c.id]) \
         FROM companies c WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(id)
    .persistent(false)
    .fetch_optional(db)
    .await?;
    row.map(|(v, n)| serde_json::from_value(v).map(|r| (r, n)))
        .transpose()
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// A page of `tenant`'s companies whose name starts with `prefix` (any case), by name,
/// after the `(lower name, id)` key `after`.
pub async fn list<'e>(
    db: impl PgExecutor<'e>,
    tenant: Uuid,
    prefix: Option<&str>,
    after: Option<(String, Uuid)>,
    limit: i64,
) -> Result<Vec<CompanyRow>, sqlx::Error> {
    let pattern = prefix.map(crate::like::prefix_pattern);
    let rows: Vec<(serde_json::Value,)> = sqlx::query_as(
        "SELECT to_jsonb(c) FROM companies c WHERE tenant_id = $1 \
           AND ($2::text IS NULL OR lower(name) LIKE $2) \
           AND ($3::text IS NULL OR (lower(name), id) > ($3, $4)) \
         ORDER BY lower(name), id LIMIT $5",
    )
    .bind(tenant)
    .bind(pattern)
    .bind(after.as_ref().map(|a| a.0.clone()))
    .bind(after.map_or(Uuid::nil(), |a| a.1))
    .bind(limit)
    .persistent(false)
    .fetch_all(db)
    .await?;
    rows.into_iter()
        .map(|(v,)| serde_json::from_value(v).map_err(|e| sqlx::Error::Decode(Box::new(e))))
        .collect()
}
