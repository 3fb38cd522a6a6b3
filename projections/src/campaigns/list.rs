//! Reading `campaign_summaries`: one campaign, and the list (status filter, name search, three
//! sorts either way, keyset pages). The API and `mauntic bench campaign-list` run this same
//! code.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgExecutor;
use uuid::Uuid;

use super::summaries::{Counts, SummaryRow};

/// What the list sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    CreatedAt,
    Name,
    /// Unscheduled campaigns sort as starting last.
    StartsAt,
}

impl Sort {
    /// The key expression (as indexed) and its type, for the page token's cast.
    fn key(self) -> (&'static str, &'static str) {
        match self {
            Self::CreatedAt => ("created_at", "timestamptz"),
            Self::Name => ("lower(name)", "text"),
            Self::StartsAt => (
                "coalesce(starts_at, 'infinity'::timestamptz)",
                "timestamptz",
            ),
        }
    }
}

/// A query of the list.
#[derive(Debug, Clone)]
pub struct ListQuery {
    /// Any of these statuses (empty: all but deleted).
    pub statuses: Vec<String>,
    /// The name contains this, case-insensitive.
    pub name: Option<String>,
    pub sort: Sort,
    pub descending: bool,
    /// The key of the last row of the previous page: the sort key as text, and the id.
    pub after: Option<(String, Uuid)>,
    pub limit: i64,
}

/// A campaign in a list: everything but its settings, pinned versions and A/B decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ListRow {
    pub id: Uuid,
    pub name: String,
    pub status: String,
    pub channel: String,
    pub starts_at: Option<DateTime<Utc>>,
    pub audience: i64,
    pub test_group: i64,
    #[serde(flatten)]
    pub counts: Counts,
    pub winner: Option<String>,
    pub cloned_from: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// A page: its rows and each row's sort key as text (the last one's is the next page token).
#[derive(Debug, Clone)]
pub struct Page {
    pub rows: Vec<(ListRow, String)>,
}

fn decode<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, sqlx::Error> {
    serde_json::from_value(v).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// `%q%` for `ILIKE`, with the pattern characters of `q` taken literally.
pub(crate) fn contains(q: &str) -> String {
    let mut out = String::with_capacity(q.len() + 2);
    out.push('%');
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Campaign `id` of `tenant` (`None`: absent or deleted).
pub async fn get<'e>(
    db: impl PgExecutor<'e>,
    tenant: Uuid,
    id: Uuid,
) -> Result<Option<SummaryRow>, sqlx::Error> {
    let row: Option<(serde_json::Value,)> = sqlx::query_as(
        "SELECT to_jsonb(c) FROM campaign_summaries c \
         WHERE tenant_id = $1 AND id = $2 AND NOT deleted",
    )
    .bind(tenant)
    .bind(id)
    .persistent(false)
    .fetch_optional(db)
    .await?;
    row.map(|(v,)| decode(v)).transpose()
}

/// The statement of a list query (`$1` tenant, `$2` statuses, `$3` name pattern, `$4` and
/// `$5` the page token, `$6` the limit). Each filter left out is folded away when it is
/// planned (unnamed statements are planned with their values), so every shape walks one of
/// the list's indexes in its order and stops after a page:
/// - without a status filter, the sort's index;
/// - with statuses, one walk of the status-led index per status (Postgres 15 does not keep
///   an index's order under `status = ANY(…)`: it would read every matching row and sort),
///   each stopping after a page, and the pages merged.
///
/// The key's text is named `sort_key`: unnamed, `created_at::text` would be called
/// `created_at`, and `ORDER BY created_at` would sort by that text (no index).
fn statement(q: &ListQuery) -> String {
    let (key, ty) = q.sort.key();
    let (dir, cmp) = if q.descending {
        ("DESC", "<")
    } else {
        ("ASC", ">")
    };
    let filters = format!(
        "c.tenant_id = $1 AND NOT c.deleted AND ($3::text IS NULL OR c.name ILIKE $3) \
         AND ($4::text IS NULL OR ({key}, c.id) {cmp} ($4::{ty}, $5))"
    );
    let order = format!("ORDER BY {key} {dir}, c.id {dir} LIMIT $6");
    let rows = if q.statuses.is_empty() {
        format!(
            "SELECT * FROM campaign_summaries c \
             WHERE {filters} AND cardinality($2::text[]) = 0 {order}"
        )
    } else {
        format!(
            "SELECT c.* FROM unnest($2::text[]) AS s(status) CROSS JOIN LATERAL ( \
               SELECT * FROM campaign_summaries c WHERE {filters} AND c.status = s.status {order}) c"
        )
    };
    format!(
        "SELECT to_jsonb(c) - 'settings' - 'pinned' - 'ab_decision', ({key})::text AS sort_key \
         FROM ({rows}) c {order}"
    )
}

fn bind<'q, O>(
    query: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    tenant: Uuid,
    q: &'q ListQuery,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
    query
        .bind(tenant)
        .bind(&q.statuses)
        .bind(q.name.as_deref().map(contains))
        .bind(q.after.as_ref().map(|a| a.0.as_str()))
        .bind(q.after.as_ref().map_or(Uuid::nil(), |a| a.1))
        .bind(q.limit)
        .persistent(false)
}

/// A page of `tenant`'s campaigns (never deleted ones).
pub async fn list<'e>(
    db: impl PgExecutor<'e>,
    tenant: Uuid,
    q: &ListQuery,
) -> Result<Page, sqlx::Error> {
    let sql = statement(q);
    let rows: Vec<(serde_json::Value, String)> =
        bind(sqlx::query_as(&sql), tenant, q).fetch_all(db).await?;
    let rows = rows
        .into_iter()
        .map(|(v, k)| decode(v).map(|r| (r, k)))
        .collect::<Result<_, _>>()?;
    Ok(Page { rows })
}

/// The plan [`list`] runs for `q`, executed (`EXPLAIN (ANALYZE, BUFFERS)`), line by line:
/// for benchmarks.
pub async fn explain<'e>(
    db: impl PgExecutor<'e>,
    tenant: Uuid,
    q: &ListQuery,
) -> Result<Vec<String>, sqlx::Error> {
    let sql = format!("EXPLAIN (ANALYZE, BUFFERS) {}", statement(q));
    let lines: Vec<(String,)> = bind(sqlx::query_as(&sql), tenant, q).fetch_all(db).await?;
    Ok(lines.into_iter().map(|(l,)| l).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_takes_pattern_characters_literally() {
        assert_eq!(contains("50%_off\\"), "%50\\%\\_off\\\\%");
    }
}
