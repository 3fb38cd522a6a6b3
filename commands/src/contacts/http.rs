//! Thin handlers: extract → typed command → execute with metadata → answer.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::contact::{ContactCommand, Tag};
use domain::ContactId;
use http_kit::{ApiJson, PathIds, Problem};

use super::body::{AddTags, CreateContact, UpdateContact};
use super::ContactsError;
use crate::context::RequestContext;
use crate::error::Rejection;
use crate::executor::Accepted;
use crate::CommandState;

/// How the API shows a contacts failure: the one mapping for every contact route.
impl From<ContactsError> for Problem {
    fn from(e: ContactsError) -> Self {
        match e {
            ContactsError::Invalid(e) => e.into(),
            ContactsError::Rejected(e) => e.problem(),
            ContactsError::EmailTaken { existing } => {
                Problem::new(StatusCode::CONFLICT, "email-taken", "Email taken")
                    .detail("another contact of this organization has this email")
                    .with("existing_id", existing.to_string())
            }
            ContactsError::FieldTaken { field, existing } => {
                Problem::new(StatusCode::CONFLICT, "field-taken", "Value taken")
                    .detail(format!("{field}: another contact has this value"))
                    .with("field", field)
                    .with("existing_id", existing.to_string())
            }
            ContactsError::NoSuchCompany => Problem::not_found("company"),
            ContactsError::Conflict => {
                crate::CommandError::<domain::contact::ContactError>::Conflict.into()
            }
            ContactsError::Technical(cause) => {
                crate::CommandError::<domain::contact::ContactError>::Technical(cause).into()
            }
        }
    }
}

/// Create a contact.
#[utoipa::path(post, path = "/api/v1/contacts", tag = "contacts",
    request_body = CreateContact,
    responses(
        (status = 201, description = "Created", body = Accepted),
        (status = 409, description = "Another contact has this email (`existing_id`)", body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn create(
    State(s): State<CommandState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<CreateContact>,
) -> Result<Response, Problem> {
    let new = body.validate()?;
    let accepted = s.contacts.create(ctx.tenant(), new, &ctx.metadata).await?;
    Ok((StatusCode::CREATED, Json(accepted)).into_response())
}

/// What an upsert answers.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Upserted {
    #[serde(flatten)]
    pub accepted: Accepted,
    /// True if the contact was created, false if it existed and was updated.
    pub created: bool,
}

/// Create the contact with this email, or update the one that has it (names and fields
/// given are set, tags added).
#[utoipa::path(post, path = "/api/v1/contacts:upsert", tag = "contacts",
    request_body = CreateContact,
    responses(
        (status = 201, description = "Created", body = Upserted),
        (status = 200, description = "Updated", body = Upserted),
        (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn upsert(
    State(s): State<CommandState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<CreateContact>,
) -> Result<Response, Problem> {
    let new = body.validate()?;
    let (accepted, created) = s.contacts.upsert(ctx.tenant(), new, &ctx.metadata).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(Upserted { accepted, created })).into_response())
}

/// Change a contact's email, names or custom fields.
#[utoipa::path(patch, path = "/api/v1/contacts/{id}", tag = "contacts",
    request_body = UpdateContact,
    params(("id" = Uuid, Path, description = "Contact id")),
    responses(
        (status = 200, description = "Updated (or nothing to change)", body = Accepted),
        (status = 404, description = "No such contact", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn update(
    State(s): State<CommandState>,
    PathIds(id): PathIds<ContactId>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<UpdateContact>,
) -> Result<Json<Accepted>, Problem> {
    let patch = body.validate()?;
    Ok(Json(
        s.contacts
            .update(ctx.tenant(), id, patch, &ctx.metadata)
            .await?,
    ))
}

/// Erase a contact (GDPR right to erasure): its key is deleted, so every personal value in
/// its events (and in those of the contacts merged into it) reads as erased from now on, and
/// it leaves every read model (a later GET answers 404). Its email can be used again.
#[utoipa::path(delete, path = "/api/v1/contacts/{id}", tag = "contacts",
    params(("id" = Uuid, Path, description = "Contact id")),
    responses(
        (status = 200, description = "Erased", body = Accepted),
        (status = 404, description = "No such contact", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The contact was merged into another one (`survivor_id`): erase that one", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "Already erased", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn erase(
    State(s): State<CommandState>,
    PathIds(id): PathIds<ContactId>,
    ctx: RequestContext,
) -> Result<Json<Accepted>, Problem> {
    Ok(Json(
        s.contacts.erase(ctx.tenant(), id, &ctx.metadata).await?,
    ))
}

/// Add tags to a contact (tags it already has are ignored).
#[utoipa::path(post, path = "/api/v1/contacts/{id}/tags", tag = "contacts",
    request_body = AddTags,
    params(("id" = Uuid, Path, description = "Contact id")),
    responses(
        (status = 200, description = "Tagged", body = Accepted),
        (status = 404, description = "No such contact", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn add_tags(
    State(s): State<CommandState>,
    PathIds(id): PathIds<ContactId>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<AddTags>,
) -> Result<Json<Accepted>, Problem> {
    let tags = body.validate()?;
    Ok(Json(
        s.contacts
            .add_tags(ctx.tenant(), id, tags, &ctx.metadata)
            .await?,
    ))
}

/// Remove a tag from a contact (removing a tag it does not carry changes nothing).
#[utoipa::path(delete, path = "/api/v1/contacts/{id}/tags/{tag}", tag = "contacts",
    params(("id" = Uuid, Path, description = "Contact id"), ("tag" = String, Path, description = "The tag")),
    responses(
        (status = 200, description = "Removed", body = Accepted),
        (status = 404, description = "No such contact", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn remove_tag(
    State(s): State<CommandState>,
    PathIds((id, tag)): PathIds<(ContactId, String)>,
    ctx: RequestContext,
) -> Result<Json<Accepted>, Problem> {
    let tag = Tag::parse(&tag).map_err(|e| Problem::bad_parameter(e.field, e.reason))?;
    let command = ContactCommand::RemoveTag(tag);
    Ok(Json(
        s.contacts
            .execute(ctx.tenant(), id, command, &ctx.metadata)
            .await?,
    ))
}
