//! The `segments` read model: one row per segment (name, kind, rule), for the segment list,
//! detail, and the evaluators' definitions. Member counts come from `segment_members`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::segment::{Segment, SegmentEvent as E, SegmentKind};
use event_store::RecordedEvent;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::{json_rows, Projection, ProjectionError, Target};

pub struct SegmentsProjection;

/// A segment as lists and detail views show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SegmentRow {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    /// `static` or `dynamic`.
    #[schema(value_type = String)]
    pub kind: SegmentKind,
    /// The rule as written (dynamic segments).
    #[schema(value_type = Option<Object>)]
    pub rule: Option<serde_json::Value>,
    /// The rule as checked: what the evaluators run.
    #[schema(value_type = Option<Object>)]
    pub compiled: Option<serde_json::Value>,
    pub deleted: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl SegmentRow {
    /// Folds one event into the row (`None` before the segment exists).
    pub fn apply(row: Option<Self>, e: &RecordedEvent, event: E, id: Uuid) -> Option<Self> {
        let mut r = match (row, event) {
            (Some(r), _) if e.sequence <= r.version => return Some(r),
            (
                None,
                E::SegmentCreated {
                    name,
                    description,
                    kind,
                    rule,
                    compiled,
                },
            ) => Self {
                tenant_id: e.tenant_id,
                id,
                name,
                description,
                kind,
                rule: rule.and_then(|r| serde_json::to_value(r).ok()),
                compiled: compiled.and_then(|r| serde_json::to_value(r).ok()),
                deleted: false,
                created_at: e.recorded_at,
                updated_at: e.recorded_at,
                version: e.sequence,
            },
            (None, _) => return None,
            (Some(r), E::SegmentCreated { .. }) => r,
            (Some(mut r), E::SegmentRenamed { name, description }) => {
                r.name = name;
                r.description = description;
                r
            }
            (Some(mut r), E::SegmentRuleChanged { rule, compiled }) => {
                r.rule = serde_json::to_value(rule).ok();
                r.compiled = serde_json::to_value(compiled).ok();
                r
            }
            (Some(mut r), E::SegmentDeleted {}) => {
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
    "description",
    "rule",
    "compiled",
    "deleted",
    "updated_at",
    "version",
];

#[async_trait]
impl Projection for SegmentsProjection {
    fn name(&self) -> &'static str {
        "segments"
    }

    fn table(&self) -> &'static str {
        "segments"
    }

    /// Reads only public fields.
    fn needs_personal_data(&self) -> bool {
        false
    }

    fn concerns(&self, e: &RecordedEvent) -> bool {
        e.aggregate_type == Segment::TYPE
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&[Segment::TYPE])
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        target: &Target,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        json_rows::fold_rows::<SegmentRow, E>(
            conn,
            target,
            events,
            Segment::TYPE,
            SegmentRow::apply,
            UPDATED,
        )
        .await
    }
}

fn decode_rows(rows: Vec<(serde_json::Value, i64)>) -> Result<Vec<(SegmentRow, i64)>, sqlx::Error> {
    rows.into_iter()
        .map(|(v, n)| {
            serde_json::from_value(v)
                .map(|r| (r, n))
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))
        })
        .collect()
}

const WITH_COUNT: &str = "SELECT to_jsonb(s), (SELECT count(*) FROM segment_members m \
     WHERE m.tenant_id = s.tenant_id AND m.segment_id = s.id) FROM segments s";

/// Segment `id` of `tenant` (not deleted), with its member count.
pub async fn get<'e>(
    db: impl PgExecutor<'e>,
    tenant: Uuid,
    id: Uuid,
) -> Result<Option<(SegmentRow, i64)>, sqlx::Error> {
    let rows: Vec<(serde_json::Value, i64)> = sqlx::query_as(&format!(
        "{WITH_COUNT} WHERE tenant_id = $1 AND id = $2 AND NOT deleted"
    ))
    .bind(tenant)
    .bind(id)
    .persistent(false)
    .fetch_all(db)
    .await?;
    Ok(decode_rows(rows)?.into_iter().next())
}

/// A page of `tenant`'s segments by name, after the `(lower name, id)` key `after`, with
/// member counts.
pub async fn list<'e>(
    db: impl PgExecutor<'e>,
    tenant: Uuid,
    after: Option<(String, Uuid)>,
    limit: i64,
) -> Result<Vec<(SegmentRow, i64)>, sqlx::Error> {
    let rows: Vec<(serde_json::Value, i64)> = sqlx::query_as(&format!(
        "{WITH_COUNT} WHERE tenant_id = $1 AND NOT deleted \
           AND ($2::text IS NULL OR (lower(name), id) > ($2, $3)) \
         ORDER BY lower(name), id LIMIT $4"
    ))
    .bind(tenant)
    .bind(after.as_ref().map(|a| a.0.clone()))
    .bind(after.map_or(Uuid::nil(), |a| a.1))
    .bind(limit)
    .persistent(false)
    .fetch_all(db)
    .await?;
    decode_rows(rows)
}

/// How many of `tenant`'s contacts match `rule` at `now`.
pub async fn count(
    pool: &sqlx::PgPool,
    tenant: Uuid,
    rule: &domain::segment::Checked,
    now: DateTime<Utc>,
) -> Result<i64, sqlx::Error> {
    use sqlx::{Postgres, QueryBuilder};
    let mut q =
        QueryBuilder::<Postgres>::new("SELECT count(*) FROM contacts c WHERE c.tenant_id = ");
    q.push_bind(tenant).push(" AND ");
    crate::segment_sql::push_rule(&mut q, rule, now);
    // JIT compiling costs tens of milliseconds per count and saves less than that here.
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL jit = off").execute(&mut *tx).await?;
    let (n,): (i64,) = q
        .build_query_as()
        .persistent(false)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(n)
}

/// How many of `tenant`'s contacts match `rule` at `now`, and the first `limit` of them in
/// id order after `after`.
pub async fn matching(
    pool: &sqlx::PgPool,
    tenant: Uuid,
    rule: &domain::segment::Checked,
    now: DateTime<Utc>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<(i64, Vec<crate::contacts::ContactRow>), sqlx::Error> {
    use sqlx::{Postgres, QueryBuilder};
    let n = count(pool, tenant, rule, now).await?;
    let mut page = QueryBuilder::<Postgres>::new(format!(
        "SELECT {} FROM contacts c WHERE c.tenant_id = ",
        crate::contacts::COLUMNS
    ));
    page.push_bind(tenant).push(" AND ");
    crate::segment_sql::push_rule(&mut page, rule, now);
    if let Some(a) = after {
        page.push(" AND c.id > ").push_bind(a);
    }
    page.push(" ORDER BY c.id LIMIT ").push_bind(limit);
    let rows = page
        .build_query_as()
        .persistent(false)
        .fetch_all(pool)
        .await?;
    Ok((n, rows))
}

/// A page of the members of segment `id`, in contact id order after `after`, and how many
/// there are.
pub async fn members(
    pool: &sqlx::PgPool,
    tenant: Uuid,
    id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<(i64, Vec<crate::contacts::ContactRow>), sqlx::Error> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM segment_members WHERE tenant_id = $1 AND segment_id = $2",
    )
    .bind(tenant)
    .bind(id)
    .fetch_one(pool)
    .await?;
    let rows = sqlx::query_as(&format!(
        "SELECT {} FROM contacts c WHERE c.tenant_id = $1 AND c.id IN \
           (SELECT contact_id FROM segment_members WHERE tenant_id = $1 AND segment_id = $2 \
              AND ($3::uuid IS NULL OR contact_id > $3) ORDER BY contact_id LIMIT $4) \
         ORDER BY c.id",
        crate::contacts::COLUMNS
    ))
    .bind(tenant)
    .bind(id)
    .bind(after)
    .bind(limit)
    .persistent(false)
    .fetch_all(pool)
    .await?;
    Ok((n, rows))
}
