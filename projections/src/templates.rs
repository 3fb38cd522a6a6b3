//! The `templates` read model: one row per template (name, channel, latest and published
//! version) with its versions, for the template list, detail and previews.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::template::{Channel, Content, Template, TemplateEvent as E};
use event_store::RecordedEvent;
use serde::{Deserialize, Serialize};
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::{json_rows, Projection, ProjectionError, Target};

pub struct TemplatesProjection;

/// One saved version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VersionRow {
    pub version: i32,
    #[schema(value_type = Object)]
    pub content: Content,
    pub saved_at: DateTime<Utc>,
}

/// A template as lists and detail views show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateRow {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub name: String,
    pub channel: Channel,
    pub latest_version: i32,
    pub published_version: Option<i32>,
    pub versions: Vec<VersionRow>,
    pub deleted: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl TemplateRow {
    /// Folds one event into the row (`None` before the template exists).
    pub fn apply(row: Option<Self>, e: &RecordedEvent, event: E, id: Uuid) -> Option<Self> {
        let mut r = match (row, event) {
            (Some(r), _) if e.sequence <= r.version => return Some(r),
            (None, E::TemplateCreated { name, channel }) => Self {
                tenant_id: e.tenant_id,
                id,
                name,
                channel,
                latest_version: 0,
                published_version: None,
                versions: Vec::new(),
                deleted: false,
                created_at: e.recorded_at,
                updated_at: e.recorded_at,
                version: e.sequence,
            },
            (None, _) => return None,
            (Some(r), E::TemplateCreated { .. }) => r,
            (Some(mut r), E::TemplateVersionSaved { version, content }) => {
                let version = i32::try_from(version).unwrap_or(i32::MAX);
                r.latest_version = version;
                r.versions.push(VersionRow {
                    version,
                    content,
                    saved_at: e.recorded_at,
                });
                r
            }
            (Some(mut r), E::TemplateVersionPublished { version, .. }) => {
                r.published_version = i32::try_from(version).ok();
                r
            }
            (Some(mut r), E::TemplateRenamed { name }) => {
                r.name = name;
                r
            }
            (Some(mut r), E::TemplateDeleted {}) => {
                r.deleted = true;
                r
            }
        };
        r.updated_at = e.recorded_at;
        r.version = e.sequence;
        Some(r)
    }
}

const UPDATED: &[&str] = &[
    "name",
    "latest_version",
    "published_version",
    "versions",
    "deleted",
    "updated_at",
    "version",
];

#[async_trait]
impl Projection for TemplatesProjection {
    fn name(&self) -> &'static str {
        "templates"
    }

    fn table(&self) -> &'static str {
        "templates"
    }

    /// Templates hold no personal data.
    fn needs_personal_data(&self) -> bool {
        false
    }

    fn concerns(&self, e: &RecordedEvent) -> bool {
        e.aggregate_type == Template::TYPE
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&[Template::TYPE])
    }

    async fn apply(
        &self,
        conn: &mut sqlx::PgConnection,
        target: &Target,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        json_rows::fold_rows::<TemplateRow, E>(
            conn,
            target,
            events,
            Template::TYPE,
            TemplateRow::apply,
            UPDATED,
        )
        .await
    }
}

fn decode(v: serde_json::Value) -> Result<TemplateRow, sqlx::Error> {
    serde_json::from_value(v).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// Template `id` of `tenant` (not deleted), with its versions.
pub async fn get<'e>(
    db: impl PgExecutor<'e>,
    tenant: Uuid,
    id: Uuid,
) -> Result<Option<TemplateRow>, sqlx::Error> {
    let row: Option<(serde_json::Value,)> = sqlx::query_as(
        "SELECT to_jsonb(t) FROM templates t WHERE tenant_id = $1 AND id = $2 AND NOT deleted",
    )
    .bind(tenant)
    .bind(id)
    .persistent(false)
    .fetch_optional(db)
    .await?;
    row.map(|(v,)| decode(v)).transpose()
}

/// A page of `tenant`'s templates by name, after the `(lower name, id)` key `after`, whose
/// name contains `name` (case-insensitive); without their versions.
pub async fn list<'e>(
    db: impl PgExecutor<'e>,
    tenant: Uuid,
    name: Option<&str>,
    after: Option<(String, Uuid)>,
    limit: i64,
) -> Result<Vec<TemplateRow>, sqlx::Error> {
    let rows: Vec<(serde_json::Value,)> = sqlx::query_as(
        "SELECT to_jsonb(t) - 'versions' || '{\"versions\": []}' FROM templates t \
         WHERE tenant_id = $1 AND NOT deleted \
           AND ($2::text IS NULL OR strpos(lower(name), lower($2)) > 0) \
           AND ($3::text IS NULL OR (lower(name), id) > ($3, $4)) \
         ORDER BY lower(name), id LIMIT $5",
    )
    .bind(tenant)
    .bind(name)
    .bind(after.as_ref().map(|a| a.0.clone()))
    .bind(after.map_or(Uuid::nil(), |a| a.1))
    .bind(limit)
    .persistent(false)
    .fetch_all(db)
    .await?;
    rows.into_iter().map(|(v,)| decode(v)).collect()
}
