//! Company routes: extract, call [`super::Companies`], answer.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::company::{CompanyPatch, NewCompany};
use domain::contact::{short_text, InvalidValue};
use domain::{CompanyId, ContactId};
use http_kit::json::present;
use http_kit::{ApiJson, PathIds, Problem};
use serde::Deserialize;

use crate::contacts::body::Check;
use crate::context::RequestContext;
use crate::executor::Accepted;
use crate::{CommandState, Invalid};

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

impl CreateCompany {
    /// The company this asks for (every invalid field named).
    pub fn validate(self) -> Result<NewCompany, Invalid> {
        let mut c = Check::default();
        let name = c.take(short_text("name", &self.name, 200));
        let domain = self
            .domain
            .as_deref()
            .filter(|d| !d.trim().is_empty())
            .map(|d| web_domain(&mut c, d));
        let fields = c
            .fields(&self.fields)
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
        c.finish(Some(NewCompany {
            name: name.unwrap_or_default(),
            domain: domain.flatten(),
            fields,
        }))
    }
}

impl UpdateCompany {
    /// The change this asks for (every invalid field named).
    pub fn validate(self) -> Result<CompanyPatch, Invalid> {
        let mut c = Check::default();
        let name = self
            .name
            .as_deref()
            .and_then(|n| c.take(short_text("name", n, 200)));
        let domain = self.domain.map(|d| {
            d.as_deref()
                .filter(|d| !d.trim().is_empty())
                .and_then(|d| web_domain(&mut c, d))
        });
        let fields = c.fields(&self.fields);
        c.finish(Some(CompanyPatch {
            name,
            domain,
            fields,
        }))
    }
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
    let new = b.validate()?;
    let accepted = s.companies.create(ctx.tenant(), new, &ctx.metadata).await?;
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
    PathIds(id): PathIds<CompanyId>,
    ApiJson(b): ApiJson<UpdateCompany>,
) -> Result<Json<Accepted>, Problem> {
    let patch = b.validate()?;
    let updated = s.companies.update(ctx.tenant(), id, patch, &ctx.metadata);
    Ok(Json(updated.await?))
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
    PathIds((id, company)): PathIds<(ContactId, CompanyId)>,
    ApiJson(b): ApiJson<Link>,
) -> Result<Json<Accepted>, Problem> {
    let linked = s
        .companies
        .link(ctx.tenant(), id, company, b.primary, &ctx.metadata);
    Ok(Json(linked.await?))
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
    PathIds((id, company)): PathIds<(ContactId, CompanyId)>,
) -> Result<Json<Accepted>, Problem> {
    let unlinked = s.companies.unlink(ctx.tenant(), id, company, &ctx.metadata);
    Ok(Json(unlinked.await?))
}
