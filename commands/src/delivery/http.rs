//! `POST /api/v1/messages` (a transactional message: a template to a contact or an address,
//! with `Idempotency-Key`) and test sends of a template version.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http_kit::{ApiJson, PathIds, Problem};

use super::body::{MessageAccepted, SendMessage, TestSend};
use super::messages::MessagesError;
use crate::context::RequestContext;
use crate::error::Rejection;
use crate::{CommandError, CommandState};

/// How the API shows a message that was not requested: the one mapping for both routes.
impl From<MessagesError> for Problem {
    fn from(e: MessagesError) -> Self {
        match e {
            MessagesError::Invalid(e) => e.into(),
            MessagesError::Template(e) => e.problem(),
            MessagesError::NoSuchContact => Problem::not_found("contact"),
            MessagesError::Technical(t) => {
                CommandError::<domain::template::TemplateError>::Technical(t).into()
            }
        }
    }
}

pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let v = v
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 255)
        .ok_or_else(|| Problem::bad_request("Idempotency-Key: 1 to 255 visible characters"))?;
    Ok(Some(v.to_owned()))
}

/// Send a template to a contact or an address (a transactional message). With
/// `Idempotency-Key`, a repeated request answers the first one's job and sends nothing more.
#[utoipa::path(post, path = "/api/v1/messages", tag = "messages", request_body = SendMessage,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the same key names the same message")),
    responses(
        (status = 202, description = "Accepted for delivery", body = MessageAccepted),
        (status = 200, description = "Requested before with this Idempotency-Key", body = MessageAccepted),
        (status = 404, description = "No such template or contact", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The template was deleted", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request (including a provider_id that names no provider of the template's channel), or an Idempotency-Key reused for another message", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn send_message(
    State(s): State<CommandState>,
    ctx: RequestContext,
    headers: HeaderMap,
    ApiJson(b): ApiJson<SendMessage>,
) -> Result<Response, Problem> {
    let key = idempotency_key(&headers)?;
    let messages = &s.delivery.messages;
    let accepted = messages.send(ctx.tenant(), b, key, &ctx.metadata).await?;
    let status = if accepted.duplicate {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(accepted)).into_response())
}

/// Send one version of a template to an address, rendered for `contact_id` when given (with
/// the organization's sample values otherwise). Consent and frequency rules do not apply;
/// the suppression list does.
#[utoipa::path(post, path = "/api/v1/templates/{id}/versions/{n}/test", tag = "templates", request_body = TestSend,
    params(("id" = Uuid, Path, description = "Template id"), ("n" = u32, Path, description = "Version number")),
    responses(
        (status = 202, description = "Accepted for delivery", body = MessageAccepted),
        (status = 404, description = "No such template, version or contact", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The template was deleted", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid address", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn test_send(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds((id, n)): PathIds<(domain::TemplateId, String)>,
    ApiJson(b): ApiJson<TestSend>,
) -> Result<Response, Problem> {
    let n: u32 = n
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Problem::not_found("version"))?;
    let messages = &s.delivery.messages;
    let accepted = messages
        .test_send(ctx.tenant(), id, n, b, &ctx.metadata)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)).into_response())
}
