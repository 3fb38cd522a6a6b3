//! The `imports` and `import_errors` tables (operational state of the background job; the
//! contacts themselves are events in the log).

use chrono::{DateTime, Utc};
use event_store::StoreError;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::options::ImportOptions;

/// An import as `GET /api/v1/imports/{id}` shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ImportView {
    pub id: Uuid,
    /// `running`, `completed` or `failed`.
    pub status: String,
    pub file_name: Option<String>,
    /// Size of the file in bytes.
    pub bytes: i64,
    /// Records read so far (created + updated + unchanged + failed).
    pub rows_done: i64,
    pub created: i64,
    pub updated: i64,
    /// Rows whose contact existed and needed no change.
    pub unchanged: i64,
    pub failed: i64,
    /// Why the import as a whole failed (rows' errors are under `/errors`).
    pub error: Option<String>,
    #[schema(value_type = Object)]
    pub options: sqlx::types::Json<ImportOptions>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

const VIEW: &str = "id, status, file_name, bytes, rows_done, created, updated, unchanged, failed, \
                    error, options, created_at, updated_at, finished_at";

/// What a running import needs to go on: its options, metadata, file and resume point.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Job {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub options: sqlx::types::Json<ImportOptions>,
    pub metadata: sqlx::types::Json<event_store::EventMetadata>,
    pub path: String,
    pub offset: i64,
    pub line: i64,
}

/// One batch's outcome, written with its events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub rows_done: i64,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub failed: i64,
}

impl Counts {
    pub fn add(&mut self, other: &Counts) {
        self.rows_done += other.rows_done;
        self.created += other.created;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.failed += other.failed;
    }
}

/// Records a new running import.
#[allow(clippy::too_many_arguments)]
pub async fn insert(
    pool: &PgPool,
    tenant: Uuid,
    id: Uuid,
    options: &ImportOptions,
    metadata: &event_store::EventMetadata,
    file_name: Option<&str>,
    path: &str,
    bytes: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO imports (tenant_id, id, status, options, metadata, file_name, path, bytes) \
         VALUES ($1, $2, 'running', $3, $4, $5, $6, $7)",
    )
    .bind(tenant)
    .bind(id)
    .bind(sqlx::types::Json(options))
    .bind(sqlx::types::Json(metadata))
    .bind(file_name)
    .bind(path)
    .bind(bytes)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn job(pool: &PgPool, tenant: Uuid, id: Uuid) -> Result<Option<Job>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT tenant_id, id, options, metadata, path, \"offset\", line FROM imports \
         WHERE tenant_id = $1 AND id = $2 AND status = 'running'",
    )
    .bind(tenant)
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// Running imports of every tenant (to resume after a restart).
pub async fn running(pool: &PgPool) -> Result<Vec<(Uuid, Uuid)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT tenant_id, id FROM imports WHERE status = 'running'")
            .fetch_all(pool)
            .await?,
    )
}

/// Moves the import past a batch, if it is still where the batch started (so two
/// processes can never both apply one batch). False if it was not.
pub async fn advance(
    conn: &mut PgConnection,
    job: &Job,
    from_offset: i64,
    to: (i64, i64),
    counts: &Counts,
    errors: &[(i64, String)],
) -> Result<bool, StoreError> {
    let moved = sqlx::query(
        "UPDATE imports SET \"offset\" = $3, line = $4, rows_done = rows_done + $5, \
             created = created + $6, updated = updated + $7, unchanged = unchanged + $8, \
             failed = failed + $9, updated_at = now() \
         WHERE tenant_id = $1 AND id = $2 AND \"offset\" = $10 AND status = 'running'",
    )
    .bind(job.tenant_id)
    .bind(job.id)
    .bind(to.0)
    .bind(to.1)
    .bind(counts.rows_done)
    .bind(counts.created)
    .bind(counts.updated)
    .bind(counts.unchanged)
    .bind(counts.failed)
    .bind(from_offset)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if moved == 0 {
        return Ok(false);
    }
    if !errors.is_empty() {
        let lines: Vec<i64> = errors.iter().map(|(l, _)| *l).collect();
        let reasons: Vec<&str> = errors.iter().map(|(_, r)| r.as_str()).collect();
        sqlx::query(
            "INSERT INTO import_errors (tenant_id, import_id, line, reason) \
             SELECT $1, $2, l, r FROM UNNEST($3::bigint[], $4::text[]) AS u(l, r) \
             ON CONFLICT DO NOTHING",
        )
        .bind(job.tenant_id)
        .bind(job.id)
        .bind(&lines)
        .bind(&reasons)
        .execute(&mut *conn)
        .await?;
    }
    Ok(true)
}

/// Ends the import: `completed`, or `failed` with the reason.
pub async fn finish(
    pool: &PgPool,
    tenant: Uuid,
    id: Uuid,
    error: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE imports SET status = $3, error = $4, finished_at = now(), updated_at = now() \
         WHERE tenant_id = $1 AND id = $2 AND status = 'running'",
    )
    .bind(tenant)
    .bind(id)
    .bind(if error.is_some() {
        "failed"
    } else {
        "completed"
    })
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn get(pool: &PgPool, tenant: Uuid, id: Uuid) -> Result<Option<ImportView>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {VIEW} FROM imports WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// Newest first, `limit` after the import `after` (ids are UUIDv7: time-ordered).
pub async fn list(
    pool: &PgPool,
    tenant: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ImportView>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {VIEW} FROM imports WHERE tenant_id = $1 AND ($2::uuid IS NULL OR id < $2) \
         ORDER BY id DESC LIMIT $3"
    ))
    .bind(tenant)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// One row that could not be imported.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct RowError {
    /// The file's physical line where the record starts (the header is line 1).
    pub line: i64,
    pub reason: String,
}

/// Errors by line, `limit` after line `after`.
pub async fn errors(
    pool: &PgPool,
    tenant: Uuid,
    id: Uuid,
    after: i64,
    limit: i64,
) -> Result<Vec<RowError>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT line, reason FROM import_errors WHERE tenant_id = $1 AND import_id = $2 \
         AND line > $3 ORDER BY line LIMIT $4",
    )
    .bind(tenant)
    .bind(id)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}
