//! `POST /api/v1/contacts/{id}/merge`: merge another contact into this one.

use axum::extract::State;
use axum::Json;
use domain::contact::MergeRule;
use domain::ContactId;
use http_kit::{ApiJson, PathIds, Problem};
use serde::Deserialize;
use uuid::Uuid;

use crate::context::RequestContext;
use crate::executor::Accepted;
use crate::CommandState;

/// The contact to merge into this one, and whose values win where both have one.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeContacts {
    /// The contact merged into this one (it answers as this one from now on).
    #[schema(value_type = String, format = Uuid)]
    pub from: Uuid,
    /// `keep_target` (default): this contact's values win, the other fills its gaps;
    /// `prefer_source`: the other contact's non-empty values win.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "keep_target")]
    pub rule: MergeRule,
}

/// Merge contact `from` into this contact. Tags, companies, notes and do-not-contact marks
/// are combined, points summed, consent per channel taken from the most recent decision;
/// names, profile, custom fields, stage, owner and primary company follow `rule`. This
/// contact keeps its email; `from`'s email, id and history resolve to it from now on.
#[utoipa::path(post, path = "/api/v1/contacts/{id}/merge", tag = "contacts", request_body = MergeContacts,
    params(("id" = Uuid, Path, description = "The contact that survives")),
    responses(
        (status = 200, description = "Merged; answers the surviving contact", body = Accepted),
        (status = 404, description = "No such contact (either one)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "One of them was already merged (`survivor_id`), a limit would be exceeded, or a concurrent change", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input (a contact cannot be merged into itself; too many tags or fields)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn merge(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(id): PathIds<ContactId>,
    ApiJson(b): ApiJson<MergeContacts>,
) -> Result<Json<Accepted>, Problem> {
    let from = ContactId(b.from);
    let merged = s
        .contacts
        .merge(ctx.tenant(), id, from, b.rule, &ctx.metadata);
    Ok(Json(merged.await?))
}
