//! Consent and do-not-contact per channel, frequency rules, stage and points of a contact.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use domain::contact::{
    short_text, Channel, ConsentStatus, ContactCommand, DncReason, FrequencyRule,
};
use domain::{ContactId, NoteId};
use http_kit::{ApiJson, PathIds, Problem};
use serde::Deserialize;
use uuid::Uuid;

use crate::context::RequestContext;
use crate::executor::Accepted;
use crate::{CommandState, Invalid};

fn invalid(e: domain::contact::InvalidValue) -> Problem {
    Invalid::from(e).into()
}

/// A path parameter: a bad one is a 400, like every bad parameter.
fn channel_of(raw: &str) -> Result<Channel, Problem> {
    Channel::parse(raw).map_err(|e| Problem::bad_parameter(e.field, e.reason))
}

async fn run(
    s: &CommandState,
    ctx: &RequestContext,
    id: ContactId,
    c: ContactCommand,
) -> Result<Json<Accepted>, Problem> {
    Ok(Json(
        s.contacts
            .execute(ctx.tenant(), id, c, &ctx.metadata)
            .await?,
    ))
}

/// `PUT /api/v1/contacts/{id}/consent/{channel}`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetConsent {
    /// opted_in, opted_out or unknown.
    #[schema(value_type = String, example = "opted_in")]
    pub status: ConsentStatus,
    /// Where it was given, e.g. `form:newsletter`.
    pub source: String,
    /// When it was given (now if absent).
    pub at: Option<DateTime<Utc>>,
}

/// Record a contact's consent on a channel.
#[utoipa::path(put, path = "/api/v1/contacts/{id}/consent/{channel}", tag = "contacts", request_body = SetConsent,
    params(("id" = Uuid, Path, description = "Contact id"), ("channel" = String, Path, description = "email, sms or push")),
    responses(
        (status = 200, description = "Recorded (or unchanged)", body = Accepted),
        (status = 404, description = "No such contact", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn set_consent(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds((id, channel)): PathIds<(ContactId, String)>,
    ApiJson(b): ApiJson<SetConsent>,
) -> Result<Json<Accepted>, Problem> {
    let channel = channel_of(&channel)?;
    let source = short_text("source", &b.source, 200).map_err(invalid)?;
    let at = b.at.unwrap_or_else(|| s.auth.clock.now());
    run(
        &s,
        &ctx,
        id,
        ContactCommand::SetConsent {
            channel,
            status: b.status,
            source,
            at,
        },
    )
    .await
}

/// `PUT /api/v1/contacts/{id}/do-not-contact/{channel}`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddDoNotContact {
    /// unsubscribed, bounced, complaint or manual.
    #[schema(value_type = String, example = "manual")]
    pub reason: DncReason,
    pub note: Option<String>,
}

/// Mark a channel as not to be used for a contact.
#[utoipa::path(put, path = "/api/v1/contacts/{id}/do-not-contact/{channel}", tag = "contacts", request_body = AddDoNotContact,
    params(("id" = Uuid, Path, description = "Contact id"), ("channel" = String, Path, description = "email, sms or push")),
    responses(
        (status = 200, description = "Marked (or unchanged)", body = Accepted),
        (status = 404, description = "No such contact", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn add_dnc(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds((id, channel)): PathIds<(ContactId, String)>,
    ApiJson(b): ApiJson<AddDoNotContact>,
) -> Result<Json<Accepted>, Problem> {
    let channel = channel_of(&channel)?;
    let note = b
        .note
        .as_deref()
        .map(|n| short_text("note", n, 1000))
        .transpose()
        .map_err(invalid)?;
    run(
        &s,
        &ctx,
        id,
        ContactCommand::AddDoNotContact {
            channel,
            reason: b.reason,
            note,
        },
    )
    .await
}

/// Lift the do-not-contact mark of a channel.
#[utoipa::path(delete, path = "/api/v1/contacts/{id}/do-not-contact/{channel}", tag = "contacts",
    params(("id" = Uuid, Path, description = "Contact id"), ("channel" = String, Path, description = "email, sms or push")),
    responses(
        (status = 200, description = "Lifted (or there was none)", body = Accepted),
        (status = 404, description = "No such contact", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn remove_dnc(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds((id, channel)): PathIds<(ContactId, String)>,
) -> Result<Json<Accepted>, Problem> {
    let channel = channel_of(&channel)?;
    run(&s, &ctx, id, ContactCommand::RemoveDoNotContact(channel)).await
}

/// `PUT /api/v1/contacts/{id}/frequency/{channel}`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetFrequency {
    /// At most this many messages …
    pub max: u32,
    /// … per this many days.
    pub per_days: u32,
}

/// Limit how often a contact is messaged on a channel.
#[utoipa::path(put, path = "/api/v1/contacts/{id}/frequency/{channel}", tag = "contacts", request_body = SetFrequency,
    params(("id" = Uuid, Path, description = "Contact id"), ("channel" = String, Path, description = "email, sms or push")),
    responses(
        (status = 200, description = "Set (or unchanged)", body = Accepted),
        (status = 404, description = "No such contact", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn set_frequency(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds((id, channel)): PathIds<(ContactId, String)>,
    ApiJson(b): ApiJson<SetFrequency>,
) -> Result<Json<Accepted>, Problem> {
    let channel = channel_of(&channel)?;
    let rule = FrequencyRule::parse(b.max, b.per_days).map_err(invalid)?;
    run(
        &s,
        &ctx,
        id,
        ContactCommand::SetFrequencyRule {
            channel,
            rule: Some(rule),
        },
    )
    .await
}

/// Remove a channel's frequency rule.
#[utoipa::path(delete, path = "/api/v1/contacts/{id}/frequency/{channel}", tag = "contacts",
    params(("id" = Uuid, Path, description = "Contact id"), ("channel" = String, Path, description = "email, sms or push")),
    responses(
        (status = 200, description = "Removed (or there was none)", body = Accepted),
        (status = 404, description = "No such contact", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn remove_frequency(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds((id, channel)): PathIds<(ContactId, String)>,
) -> Result<Json<Accepted>, Problem> {
    let channel = channel_of(&channel)?;
    run(
        &s,
        &ctx,
        id,
        ContactCommand::SetFrequencyRule {
            channel,
            rule: None,
        },
    )
    .await
}

/// `PUT /api/v1/contacts/{id}/stage`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetStage {
    #[schema(example = "lead")]
    pub stage: String,
}

/// Move a contact to a stage (the history is in the log and the audit log).
#[utoipa::path(put, path = "/api/v1/contacts/{id}/stage", tag = "contacts", request_body = SetStage,
    params(("id" = Uuid, Path, description = "Contact id")),
    responses(
        (status = 200, description = "Moved (or already there)", body = Accepted),
        (status = 404, description = "No such contact", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn set_stage(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(id): PathIds<ContactId>,
    ApiJson(b): ApiJson<SetStage>,
) -> Result<Json<Accepted>, Problem> {
    let stage = super::body::stage(&b.stage)?;
    run(&s, &ctx, id, ContactCommand::ChangeStage(stage)).await
}

/// `POST /api/v1/contacts/{id}/points`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePoints {
    /// Points to add (negative to subtract), not 0.
    pub delta: i64,
    #[schema(example = "attended webinar")]
    pub reason: String,
}

/// Add or subtract points, with the reason.
#[utoipa::path(post, path = "/api/v1/contacts/{id}/points", tag = "contacts", request_body = ChangePoints,
    params(("id" = Uuid, Path, description = "Contact id")),
    responses(
        (status = 200, description = "Changed", body = Accepted),
        (status = 404, description = "No such contact", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn change_points(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(id): PathIds<ContactId>,
    ApiJson(b): ApiJson<ChangePoints>,
) -> Result<Json<Accepted>, Problem> {
    let command = super::body::points(b.delta, &b.reason)?;
    run(&s, &ctx, id, command).await
}

/// `PUT /api/v1/contacts/{id}/owner`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetOwner {
    /// A member of the organization, or null for no owner.
    pub user_id: Option<Uuid>,
}

/// Make a member of the organization the contact's owner (or clear it).
#[utoipa::path(put, path = "/api/v1/contacts/{id}/owner", tag = "contacts", request_body = SetOwner,
    params(("id" = Uuid, Path, description = "Contact id")),
    responses(
        (status = 200, description = "Assigned (or unchanged)", body = Accepted),
        (status = 404, description = "No such contact", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a member of the organization", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn set_owner(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(id): PathIds<ContactId>,
    ApiJson(b): ApiJson<SetOwner>,
) -> Result<Json<Accepted>, Problem> {
    if let Some(user) = b.user_id {
        let org = s
            .auth
            .orgs
            .current(ctx.tenant_id)
            .await
            .map_err(|e| Problem::from_internal(&e))?;
        if org.and_then(|o| o.role_of(user)).is_none() {
            return Err(Problem::validation(
                "user_id",
                "not a member of this organization",
            ));
        }
    }
    run(&s, &ctx, id, ContactCommand::AssignOwner(b.user_id)).await
}

/// `POST /api/v1/contacts/{id}/notes`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddNote {
    pub text: String,
}

/// Add a note to a contact; answers the note's id.
#[utoipa::path(post, path = "/api/v1/contacts/{id}/notes", tag = "contacts", request_body = AddNote,
    params(("id" = Uuid, Path, description = "Contact id")),
    responses(
        (status = 201, description = "Added", body = Accepted),
        (status = 404, description = "No such contact", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn add_note(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(id): PathIds<ContactId>,
    ApiJson(b): ApiJson<AddNote>,
) -> Result<(axum::http::StatusCode, Json<Accepted>), Problem> {
    let text = super::body::note(&b.text)?;
    let note_id = Uuid::now_v7();
    let Json(a) = run(&s, &ctx, id, ContactCommand::AddNote { note_id, text }).await?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(Accepted {
            id: note_id,
            cursor: a.cursor,
        }),
    ))
}

/// Remove a note from a contact.
#[utoipa::path(delete, path = "/api/v1/contacts/{id}/notes/{note_id}", tag = "contacts",
    params(("id" = Uuid, Path, description = "Contact id"), ("note_id" = Uuid, Path, description = "Note id")),
    responses(
        (status = 200, description = "Removed", body = Accepted),
        (status = 404, description = "No such contact or note", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn remove_note(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds((id, note)): PathIds<(ContactId, NoteId)>,
) -> Result<Json<Accepted>, Problem> {
    run(&s, &ctx, id, ContactCommand::RemoveNote(note.0)).await
}
