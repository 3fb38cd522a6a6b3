//! Template queries: the list (keyset pages, name filter), the detail with its versions, one
//! version, and previews of a version rendered against a contact or a given context.

use axum::extract::State;
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use domain::template::render::{self, Known, PartError};
use domain::template::{Channel, Rendered};
use domain::TemplateId;
use event_store::reader::Until;
use http_kit::problem::FieldProblem;
use http_kit::{ApiJson, Authenticated, Problem};
use http_kit::{ApiQuery, PathIds};
use projections::templates::{self, TemplateRow, VersionRow};
use replay::inspect;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as JsonValue};
use uuid::Uuid;

use crate::consistency::ConsistentAfter;
use crate::QueryState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TemplatePageParams {
    /// Only templates whose name contains this (case-insensitive).
    pub name: Option<String>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next` token of the previous page.
    pub after: Option<String>,
    /// Wait until the read model has passed this cursor (from a command's answer).
    pub consistent_after: Option<String>,
}

/// A template in a list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TemplateSummary {
    pub id: Uuid,
    pub name: String,
    /// `email`, `sms`, `push` or `webhook`.
    #[schema(value_type = String)]
    pub channel: Channel,
    /// The last version saved (0: none yet).
    pub latest_version: i32,
    /// The version sends use (null: none published).
    pub published_version: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A template with its versions (oldest first).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TemplateDetail {
    #[serde(flatten)]
    pub summary: TemplateSummary,
    pub versions: Vec<VersionRow>,
}

/// A page of templates.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TemplatePage {
    pub items: Vec<TemplateSummary>,
    /// Pass as `after` for the next page; null on the last page.
    pub next: Option<String>,
}

/// `POST /api/v1/templates/{id}/versions/{n}/preview`: one of the two.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewTemplate {
    /// Render for this contact (as the contacts read model has it).
    pub contact_id: Option<Uuid>,
    /// Render against this context (`{contact, organization, message}`).
    #[schema(value_type = Option<Object>)]
    pub context: Option<JsonValue>,
}

/// A rendered version: each part's text by name (`subject`, `html`, `text`, `body`, …).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Preview {
    pub version: i32,
    #[schema(value_type = Object)]
    pub parts: std::collections::BTreeMap<String, String>,
}

fn summary(r: &TemplateRow) -> TemplateSummary {
    TemplateSummary {
        id: r.id,
        name: r.name.clone(),
        channel: r.channel,
        latest_version: r.latest_version,
        published_version: r.published_version,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

async fn load(
    s: &QueryState,
    tenant: Uuid,
    consistency: &ConsistentAfter,
    id: TemplateId,
) -> Result<TemplateRow, Problem> {
    let id = id.0;
    consistency.wait(s, "templates").await?;
    templates::get(&s.pool, tenant, id)
        .await
        .map_err(|e| Problem::from_internal(&e))?
        .ok_or_else(|| Problem::not_found("template"))
}

fn version_of(row: TemplateRow, raw: &str) -> Result<VersionRow, Problem> {
    let n: i32 = raw.parse().map_err(|_| Problem::not_found("version"))?;
    row.versions
        .into_iter()
        .find(|v| v.version == n)
        .ok_or_else(|| Problem::not_found("version"))
}

/// List templates by name, in keyset pages.
#[utoipa::path(get, path = "/api/v1/templates", tag = "templates", params(TemplatePageParams),
    responses(
        (status = 200, description = "A page", body = TemplatePage),
        (status = 400, description = "Bad parameters", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn list(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    ApiQuery(p): ApiQuery<TemplatePageParams>,
) -> Result<Json<TemplatePage>, Problem> {
    let limit = p.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(Problem::bad_parameter("limit", "an integer from 1 to 500"));
    }
    let after = p
        .after
        .as_deref()
        .map(|t| {
            URL_SAFE_NO_PAD
                .decode(t)
                .ok()
                .and_then(|b| serde_json::from_slice::<(String, Uuid)>(&b).ok())
                .ok_or_else(|| Problem::bad_parameter("after", "not a page token from this API"))
        })
        .transpose()?;
    consistency.wait(&s, "templates").await?;
    let name = p.name.as_deref().filter(|n| !n.is_empty());
    let mut rows = templates::list(&s.pool, caller.tenant_id, name, after, limit + 1)
        .await
        .map_err(|e| Problem::from_internal(&e))?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().and_then(|r| {
            serde_json::to_vec(&(r.name.to_lowercase(), r.id))
                .ok()
                .map(|b| URL_SAFE_NO_PAD.encode(b))
        })
    } else {
        None
    };
    Ok(Json(TemplatePage {
        items: rows.iter().map(summary).collect(),
        next,
    }))
}

/// One template with its versions.
#[utoipa::path(get, path = "/api/v1/templates/{id}", tag = "templates",
    params(("id" = Uuid, Path, description = "Template id"),
           ("consistent_after" = Option<String>, Query, description = "Wait until the read model has passed this cursor")),
    responses(
        (status = 200, description = "The template", body = TemplateDetail),
        (status = 404, description = "No such template", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn get(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    PathIds(id): PathIds<TemplateId>,
) -> Result<Json<TemplateDetail>, Problem> {
    let row = load(&s, caller.tenant_id, &consistency, id).await?;
    Ok(Json(TemplateDetail {
        summary: summary(&row),
        versions: row.versions,
    }))
}

/// One version of a template.
#[utoipa::path(get, path = "/api/v1/templates/{id}/versions/{n}", tag = "templates",
    params(("id" = Uuid, Path, description = "Template id"), ("n" = i32, Path, description = "Version number"),
           ("consistent_after" = Option<String>, Query, description = "Wait until the read model has passed this cursor")),
    responses(
        (status = 200, description = "The version", body = VersionRow),
        (status = 404, description = "No such template or version", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn get_version(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    PathIds((id, n)): PathIds<(TemplateId, String)>,
) -> Result<Json<VersionRow>, Problem> {
    let row = load(&s, caller.tenant_id, &consistency, id).await?;
    version_of(row, &n).map(Json)
}

/// Render a version for a contact (`contact_id`) or against a given `context`.
#[utoipa::path(post, path = "/api/v1/templates/{id}/versions/{n}/preview", tag = "templates",
    request_body = PreviewTemplate,
    params(("id" = Uuid, Path, description = "Template id"), ("n" = i32, Path, description = "Version number"),
           ("consistent_after" = Option<String>, Query, description = "Wait until the read models have passed this cursor")),
    responses(
        (status = 200, description = "The rendered parts", body = Preview),
        (status = 404, description = "No such template, version or contact", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Neither or both of contact_id and context, or the context lacks a value (`template_errors`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn preview(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    PathIds((id, n)): PathIds<(TemplateId, String)>,
    ApiJson(b): ApiJson<PreviewTemplate>,
) -> Result<Json<Preview>, Problem> {
    let tenant = caller.tenant_id;
    let row = load(&s, tenant, &consistency, id).await?;
    let version = version_of(row, &n)?;
    let known = known_fields(&s, tenant).await?;
    let mut context = match (b.contact_id, b.context) {
        (Some(contact), None) => contact_context(&s, tenant, &consistency, contact).await?,
        (None, Some(context)) if context.is_object() => context,
        _ => {
            return Err(Problem::validation(
                "contact_id",
                "give either contact_id or context (an object)",
            ))
        }
    };
    render::fill_fields(&mut context, &known);
    let rendered: Rendered =
        render::render(&version.content, &context).map_err(|e| template_problem(&e))?;
    Ok(Json(Preview {
        version: version.version,
        parts: rendered.parts,
    }))
}

/// The keys of the organization's custom fields (folded from its schema stream).
async fn known_fields(s: &QueryState, tenant: Uuid) -> Result<Known, Problem> {
    let found = inspect::inspect(&s.pool, tenant, "field_schema", tenant, Until::End)
        .await
        .map_err(|e| Problem::from_internal(&e))?;
    let fields = found
        .and_then(|f| f.state["fields"].as_object().cloned())
        .unwrap_or_default();
    Ok(Known {
        fields: fields.keys().cloned().collect(),
    })
}

/// The render context of `contact` (see `domain::template::render` for its shape).
async fn contact_context(
    s: &QueryState,
    tenant: Uuid,
    consistency: &ConsistentAfter,
    contact: Uuid,
) -> Result<JsonValue, Problem> {
    let id = crate::resolve::contact(s, tenant, consistency, domain::ContactId(contact)).await?;
    consistency.wait(s, "contacts").await?;
    let c = projections::contacts::get(&s.pool, tenant, id)
        .await
        .map_err(|e| Problem::from_internal(&e))?
        .ok_or_else(|| Problem::not_found("contact"))?;
    let org = projections::organizations::get(&s.pool, tenant)
        .await
        .map_err(|e| Problem::from_internal(&e))?;
    Ok(c.render_context(org.as_ref(), json!({})))
}

/// 422 for template errors: `errors` per part, and `template_errors` with line and column.
fn template_problem(errors: &[PartError]) -> Problem {
    let fields = errors
        .iter()
        .map(|e| FieldProblem {
            field: e.part.clone(),
            reason: match (e.line, e.column) {
                (Some(l), Some(c)) => format!("line {l}, column {c}: {}", e.message),
                _ => e.message.clone(),
            },
        })
        .collect();
    Problem::invalid_fields(fields).with(
        "template_errors",
        serde_json::to_value(errors).unwrap_or_default(),
    )
}
