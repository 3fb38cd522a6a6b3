//! Company queries: the list (by name, with a name-prefix search) and the detail.

use axum::extract::State;
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use domain::CompanyId;
use http_kit::ApiQuery;
use http_kit::PathIds;
use http_kit::{Authenticated, Problem};
use projections::companies::{self, CompanyRow};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::consistency::ConsistentAfter;
use crate::QueryState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CompanyParams {
    /// Companies whose name starts with this (any case).
    pub q: Option<String>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next` token of the previous page.
    pub after: Option<String>,
    pub consistent_after: Option<String>,
}

/// A page of companies.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CompanyPage {
    pub items: Vec<CompanyRow>,
    /// Pass as `after` for the next page; null on the last page.
    pub next: Option<String>,
}

/// List companies by name, in keyset pages.
#[utoipa::path(get, path = "/api/v1/companies", tag = "companies", params(CompanyParams),
    responses(
        (status = 200, description = "A page", body = CompanyPage),
        (status = 400, description = "Bad parameters", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn list(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    ApiQuery(p): ApiQuery<CompanyParams>,
) -> Result<Json<CompanyPage>, Problem> {
    let limit = p.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(Problem::bad_parameter("limit", "an integer from 1 to 500"));
    }
    let after = p.after.as_deref().map(decode_token).transpose()?;
    consistency.wait(&s, "companies").await?;
    let mut items = companies::list(&s.pool, caller.tenant_id, p.q.as_deref(), after, limit + 1)
        .await
        .map_err(|e| Problem::from_internal(&e))?;
    let next = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items
            .last()
            .map(|r| encode_token(&r.name.to_lowercase(), r.id))
    } else {
        None
    };
    Ok(Json(CompanyPage { items, next }))
}

/// A company with its number of contacts.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CompanyView {
    #[serde(flatten)]
    pub company: CompanyRow,
    pub contact_count: i64,
}

/// One company.
#[utoipa::path(get, path = "/api/v1/companies/{id}", tag = "companies",
    params(("id" = Uuid, Path, description = "Company id"),
           ("consistent_after" = Option<String>, Query, description = "Wait until the read models have passed this cursor")),
    responses(
        (status = 200, description = "The company", body = CompanyView),
        (status = 404, description = "No such company", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn get(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    PathIds(id): PathIds<CompanyId>,
) -> Result<Json<CompanyView>, Problem> {
    let id = id.0;
    consistency.wait(&s, "companies").await?;
    consistency.wait(&s, "contacts").await?;
    companies::get(&s.pool, caller.tenant_id, id)
        .await
        .map_err(|e| Problem::from_internal(&e))?
        .map(|(company, contact_count)| {
            Json(CompanyView {
                company,
                contact_count,
            })
        })
        .ok_or_else(|| Problem::not_found("company"))
}

fn encode_token(name: &str, id: Uuid) -> String {
    let mut b = id.as_bytes().to_vec();
    b.extend(name.as_bytes());
    URL_SAFE_NO_PAD.encode(b)
}

fn decode_token(t: &str) -> Result<(String, Uuid), Problem> {
    let bad = || Problem::bad_parameter("after", "not a page token from this API");
    let b = URL_SAFE_NO_PAD.decode(t).map_err(|_| bad())?;
    let id = b
        .get(..16)
        .and_then(|i| Uuid::from_slice(i).ok())
        .ok_or_else(bad)?;
    let name = String::from_utf8(b[16..].to_vec()).map_err(|_| bad())?;
    Ok((name, id))
}
