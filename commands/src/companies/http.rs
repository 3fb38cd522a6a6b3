//! Thin handlers: extract → typed command → execute with metadata → answer.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::company::{CompanyCommand, CompanyPatch, NewCompany};
use domain::contact::{short_text, ContactCommand, InvalidValue};
use http_kit::json::present;
use http_kit::ApiPath;
use http_kit::{ApiJson, Problem};
use serde::Deserialize;
use uuid::Uuid;

use crate::contacts::body::Check;
use crate::contacts::http::contact_id;
use crate::context::RequestContext;
use crate::executor::Accepted;
use crate::CommandState;

/// `POST /api/v1/companies`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCompany {
    #[schema(example = "Acme")]
    pub name: String,
    /// The company's web domain, e.g. `acme.example`.
    pub domain: Option<String>,
    /// Custom fields: key → text, number, boolean or list of texts.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// `PATCH /api/v1/companies/{id}`: absent keys stay; `null` clears the domain or a field.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCompany {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub domain: Option<Option<String>>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// A company's web domain: labels of letters, digits and hyphens, with a dot.
fn web_domain(c: &mut Check, raw: &str) -> Option<String> {
    let d = raw.trim().trim_end_matches('.').to_lowercase();
    let ok = d.contains('.')
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    c.take(if ok {
        Ok(d)
    } else {
        Err(InvalidValue::new("domain", "a domain like example.org"))
    })
}

/// Create a company.
#[utoipa::path(post, path = "/api/v1/companies", tag = "companies", request_body = CreateCompany,
    responses(
        (status = 201, description = "Created", body = Accepted),
        (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn create(
    State(s): State<CommandState>,
    ctx: RequestContext,
    ApiJson(b): ApiJson<CreateCompany>,
) -> Result<Response, Problem> {
    let mut c = Check::default();
    let name = c.take(short_text("name", &b.name, 200));
    let domain = b
        .domain
        .as_deref()
        .filter(|d| !d.trim().is_empty())
        .map(|d| web_domain(&mut c, d));
    let fields = c
        .fields(&b.fields)
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    let new = c.finish(Some(NewCompany {
        name: name.unwrap_or_default(),
        domain: domain.flatten(),
        fields,
    }))?;
    let id = Uuid::now_v7();
    let accepted = s
        .companies
        .execute(
            ctx.tenant_id,
            id,
            CompanyCommand::Create(new),
            &ctx.metadata,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(accepted)).into_response())
}

/// Change a company's name, domain or custom fields.
#[utoipa::path(patch, path = "/api/v1/companies/{id}", tag = "companies", request_body = UpdateCompany,
    params(("id" = Uuid, Path, description = "Company id")),
    responses(
        (status = 200, description = "Updated (or nothing to change)", body = Accepted),
        (status = 404, description = "No such company", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn update(
    State(s): State<CommandState>,
    ctx: RequestContext,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<UpdateCompany>,
) -> Result<Json<Accepted>, Problem> {
    let id = Uuid::parse_str(&id).map_err(|_| Problem::not_found("company"))?;
    let mut c = Check::default();
    let name = b
        .name
        .as_deref()
        .and_then(|n| c.take(short_text("name", n, 200)));
    let domain = b.domain.map(|d| {
        d.as_deref()
            .filter(|d| !d.trim().is_empty())
            .and_then(|d| web_domain(&mut c, d))
    });
    let fields = c.fields(&b.fields);
    let patch = c.finish(Some(CompanyPatch {
        name,
        domain,
        fields,
    }))?;
    s.companies
        .execute(
            ctx.tenant_id,
            id,
            CompanyCommand::Update(patch),
            &ctx.metadata,
        )
        .await
        .map(Json)
        .map_err(Problem::from)
}

/// `PUT /api/v1/contacts/{id}/companies/{company_id}`
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// Make this the contact's primary company.
    #[serde(default)]
    pub primary: bool,
}

/// Link a contact to a company of the same organization.
#[utoipa::path(put, path = "/api/v1/contacts/{id}/companies/{company_id}", tag = "contacts", request_body = Link,
    params(("id" = Uuid, Path, description = "Contact id"), ("company_id" = Uuid, Path, description = "Company id")),
    responses(
        (status = 200, description = "Linked (or already linked)", body = Accepted),
        (status = 404, description = "No such contact or company", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn link(
    State(s): State<CommandState>,
    ctx: RequestContext,
    ApiPath((id, company)): ApiPath<(String, String)>,
    ApiJson(b): ApiJson<Link>,
) -> Result<Json<Accepted>, Problem> {
    let id = contact_id(&id)?;
    let company_id = Uuid::parse_str(&company).map_err(|_| Problem::not_found("company"))?;
    // The company must exist in the caller's organization (loaded by tenant-scoped id).
    if !s.companies.load(ctx.tenant_id, company_id).await?.exists {
        return Err(Problem::not_found("company"));
    }
    let command = ContactCommand::LinkCompany {
        company_id,
        primary: b.primary,
    };
    s.contacts
        .execute(ctx.tenant_id, id, command, &ctx.metadata)
        .await
        .map(Json)
        .map_err(Problem::from)
}

/// Unlink a contact from a company.
#[utoipa::path(delete, path = "/api/v1/contacts/{id}/companies/{company_id}", tag = "contacts",
    params(("id" = Uuid, Path, description = "Contact id"), ("company_id" = Uuid, Path, description = "Company id")),
    responses(
        (status = 200, description = "Unlinked (or was not linked)", body = Accepted),
        (status = 404, description = "No such contact", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn unlink(
    State(s): State<CommandState>,
    ctx: RequestContext,
    ApiPath((id, company)): ApiPath<(String, String)>,
) -> Result<Json<Accepted>, Problem> {
    let id = contact_id(&id)?;
    let company_id = Uuid::parse_str(&company).map_err(|_| Problem::not_found("company"))?;
    s.contacts
        .execute(
            ctx.tenant_id,
            id,
            ContactCommand::UnlinkCompany(company_id),
            &ctx.metadata,
        )
        .await
        .map(Json)
        .map_err(Problem::from)
}
