//! `POST /api/v1/messages` (a transactional message: a template to a contact or an address,
//! with `Idempotency-Key`) and test sends of a template version.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use domain::delivery::{Channel, Request, Sender, Source};
use domain::template::{Channel as TemplateChannel, TemplateError};
use domain::EmailAddress;
use http_kit::problem::FieldProblem;
use http_kit::PathIds;
use http_kit::{ApiJson, Problem};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::context::RequestContext;
use crate::{CommandError, CommandState};

/// A sender or reply-to address.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    pub address: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// A transactional message: a template to one contact or one address.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    pub template_id: Uuid,
    /// The version to send; the published one when absent.
    #[serde(default)]
    pub version: Option<u32>,
    /// The contact to send to (its current address, consent and do-not-contact apply)…
    #[serde(default)]
    pub contact_id: Option<Uuid>,
    /// …or a bare address (email address, E.164 number, device token).
    #[serde(default)]
    pub to: Option<String>,
    /// Values for the template, under `message` in its render context.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub data: Option<serde_json::Value>,
    /// The sender: an email address for email; for SMS an E.164 number or an alphanumeric
    /// sender id (the SMS provider's `from` setting when absent).
    #[serde(default)]
    pub from: Option<Address>,
    #[serde(default)]
    pub reply_to: Option<Address>,
    /// The provider to send with: one of the organization's providers of the template's
    /// channel (`GET /api/v1/providers`). The channel's default provider when absent. Should
    /// the provider be removed before the message goes out, the message is given up, not
    /// sent by another one.
    #[serde(default)]
    pub provider_id: Option<Uuid>,
}

/// A test send of a template version to an address (rendered for a contact when given).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestSend {
    pub to: String,
    #[serde(default)]
    pub contact_id: Option<Uuid>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub data: Option<serde_json::Value>,
    #[serde(default)]
    pub from: Option<Address>,
}

/// A message accepted for delivery: its job, and the cursor after its request.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MessageAccepted {
    pub id: Uuid,
    #[schema(value_type = String)]
    pub cursor: String,
    /// True when the `Idempotency-Key` named a message requested before (nothing new).
    pub duplicate: bool,
}

fn channel_of(c: TemplateChannel) -> Channel {
    match c {
        TemplateChannel::Email => Channel::Email,
        TemplateChannel::Sms => Channel::Sms,
        TemplateChannel::Push => Channel::Push,
        TemplateChannel::Webhook => Channel::Webhook,
    }
}

/// An SMS sender: an E.164 number, or an alphanumeric sender id (1 to 11 letters, digits
/// and spaces, at least one letter) where the destination allows one.
fn sms_sender(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    let digits = raw.strip_prefix('+').unwrap_or("");
    let number = (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    let alphanumeric = (1..=11).contains(&raw.len())
        && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ')
        && raw.bytes().any(|b| b.is_ascii_alphabetic());
    if number || alphanumeric {
        Ok(raw.to_owned())
    } else {
        Err(
            "an SMS sender: an E.164 number (+ and 8 to 15 digits) or 1 to 11 letters, digits \
             and spaces"
                .to_owned(),
        )
    }
}

/// The sender of a message on `channel`: a phone number or sender id for SMS, an email
/// address otherwise.
fn sender(
    field: &str,
    a: Option<Address>,
    channel: Channel,
    problems: &mut Vec<FieldProblem>,
) -> Option<Sender> {
    let a = a?;
    if channel == Channel::Sms {
        return match sms_sender(&a.address) {
            Ok(address) => Some(Sender {
                address,
                name: None,
            }),
            Err(reason) => {
                problems.push(FieldProblem {
                    field: format!("{field}.address"),
                    reason,
                });
                None
            }
        };
    }
    match EmailAddress::parse(&a.address) {
        Ok(e) => Some(Sender {
            address: e.as_str().to_owned(),
            name: a
                .name
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty()),
        }),
        Err(e) => {
            problems.push(FieldProblem {
                field: format!("{field}.address"),
                reason: e.to_string(),
            });
            None
        }
    }
}

/// The address as the channel wants it, or why not.
fn address(channel: Channel, raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    match channel {
        Channel::Email => EmailAddress::parse(raw)
            .map(|e| e.as_str().to_owned())
            .map_err(|e| e.to_string()),
        Channel::Sms => {
            let digits = raw.strip_prefix('+').unwrap_or("");
            if (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
                Ok(raw.to_owned())
            } else {
                Err("an E.164 number: + and 8 to 15 digits".to_owned())
            }
        }
        Channel::Push | Channel::Webhook => {
            if raw.is_empty() || raw.len() > 4096 {
                Err("required, at most 4096 characters".to_owned())
            } else {
                Ok(raw.to_owned())
            }
        }
    }
}

/// The template's channel and the version to send (published unless `version` is given).
async fn template_version(
    s: &CommandState,
    tenant: Uuid,
    id: Uuid,
    version: Option<u32>,
) -> Result<(Channel, u32), Problem> {
    let t = s.templates.executor().load(tenant, id).await?;
    if !t.exists {
        return Err(CommandError::Rejected(TemplateError::NotFound).into());
    }
    if t.deleted {
        return Err(CommandError::Rejected(TemplateError::Deleted).into());
    }
    let v = match version {
        Some(v) if v >= 1 && v <= t.latest_version => v,
        Some(_) => return Err(Problem::validation("version", "no such version")),
        None => t.published_version.ok_or_else(|| {
            Problem::validation(
                "template_id",
                "the template has no published version (publish one or name a version)",
            )
        })?,
    };
    Ok((channel_of(t.channel), v))
}

/// The contact `id` as a send sees it: it must exist (a merged contact's survivor answers).
async fn live_contact(s: &CommandState, tenant: Uuid, id: Uuid) -> Result<Uuid, Problem> {
    let mut id = id;
    for _ in 0..crate::executor::MAX_REDIRECTS {
        let c = s.contacts.executor().load(tenant, id).await?;
        if let Some(next) = c.merged_into {
            id = next;
            continue;
        }
        if !c.exists || c.erased {
            break;
        }
        return Ok(id);
    }
    Err(Problem::not_found("contact"))
}

/// The provider `id`, which must be one of the organization's live providers of `channel`
/// (read from its stream: a provider configured a moment ago counts).
async fn provider_of(
    s: &CommandState,
    tenant: Uuid,
    id: Uuid,
    channel: Channel,
) -> Result<Uuid, Problem> {
    let p = s
        .delivery
        .providers
        .get(domain::TenantId(tenant), domain::ProviderId(id))
        .await?;
    if p.exists && !p.removed && p.channel == channel {
        Ok(id)
    } else {
        Err(Problem::validation(
            "provider_id",
            format!(
                "no {} provider with this id in the organization",
                channel.as_str()
            ),
        ))
    }
}

/// The job id of a request with `Idempotency-Key: key`: derived, so a retried request
/// names the same job.
fn idempotent_id(tenant: Uuid, key: &str) -> Uuid {
    Uuid::new_v5(&tenant, format!("message:{key}").as_bytes())
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
    let tenant = ctx.tenant_id;
    let key = idempotency_key(&headers)?;
    let mut problems = Vec::new();
    if b.contact_id.is_some() == b.to.is_some() {
        problems.push(FieldProblem {
            field: "to".into(),
            reason: "give either contact_id or to".into(),
        });
    }
    if b.data.as_ref().is_some_and(|d| !d.is_object()) {
        problems.push(FieldProblem {
            field: "data".into(),
            reason: "an object".into(),
        });
    }
    if !problems.is_empty() {
        return Err(Problem::invalid_fields(problems));
    }
    let (channel, version) = template_version(&s, tenant, b.template_id, b.version).await?;
    // The sender's form depends on the template's channel.
    let from = sender("from", b.from, channel, &mut problems);
    let reply_to = sender("reply_to", b.reply_to, Channel::Email, &mut problems);
    if !problems.is_empty() {
        return Err(Problem::invalid_fields(problems));
    }
    let to = match b.to {
        Some(raw) => address(channel, &raw).map_err(|r| Problem::validation("to", r))?,
        None => String::new(),
    };
    let provider_id = match b.provider_id {
        Some(p) => Some(provider_of(&s, tenant, p, channel).await?),
        None => None,
    };
    let contact_id = match b.contact_id {
        Some(c) => Some(live_contact(&s, tenant, c).await?),
        None => None,
    };
    let request = Request {
        channel,
        contact_id,
        to,
        template_id: b.template_id,
        template_version: version,
        source: Source::Transactional {
            idempotency_key: key.clone(),
        },
        data: b.data.unwrap_or_else(|| serde_json::json!({})),
        from,
        reply_to,
        provider_id,
    };
    let id = key
        .as_deref()
        .map_or_else(Uuid::now_v7, |k| idempotent_id(tenant, k));
    let done = s
        .delivery
        .jobs
        .request(tenant, &ctx.metadata, &[(id, request.clone())], Utc::now())
        .await
        .map_err(|e| Problem::from_internal(&e))?;
    let duplicate = done.created.is_empty();
    if duplicate {
        let before = s
            .delivery
            .jobs
            .load(tenant, &[id])
            .await
            .map_err(|e| Problem::from_internal(&e))?;
        let same = before
            .get(&id)
            .and_then(|l| l.job.request.as_ref())
            .is_some_and(|r| {
                r.template_id == request.template_id
                    && r.contact_id == request.contact_id
                    && r.to == request.to
                    && r.data == request.data
                    && r.provider_id == request.provider_id
            });
        if !same {
            return Err(Problem::validation(
                "Idempotency-Key",
                "already used for a different message",
            ));
        }
    }
    let body = MessageAccepted {
        id,
        cursor: done.cursor.map(|c| c.to_string()).unwrap_or_default(),
        duplicate,
    };
    let status = if duplicate {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(body)).into_response())
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
    let tenant = ctx.tenant_id;
    let id = id.0;
    let n: u32 = n
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Problem::not_found("version"))?;
    let (channel, version) = template_version(&s, tenant, id, Some(n))
        .await
        .map_err(|p| {
            if p.status == StatusCode::UNPROCESSABLE_ENTITY.as_u16() {
                Problem::not_found("version")
            } else {
                p
            }
        })?;
    let mut problems = Vec::new();
    let from = sender("from", b.from, channel, &mut problems);
    if !problems.is_empty() {
        return Err(Problem::invalid_fields(problems));
    }
    let to = address(channel, &b.to).map_err(|r| Problem::validation("to", r))?;
    let contact_id = match b.contact_id {
        Some(c) => Some(live_contact(&s, tenant, c).await?),
        None => None,
    };
    let request = Request {
        channel,
        contact_id,
        to,
        template_id: id,
        template_version: version,
        source: Source::Test,
        data: b.data.unwrap_or_else(|| serde_json::json!({})),
        from,
        reply_to: None,
        provider_id: None,
    };
    let job = Uuid::now_v7();
    let done = s
        .delivery
        .jobs
        .request(tenant, &ctx.metadata, &[(job, request)], Utc::now())
        .await
        .map_err(|e| Problem::from_internal(&e))?;
    let body = MessageAccepted {
        id: job,
        cursor: done.cursor.map(|c| c.to_string()).unwrap_or_default(),
        duplicate: false,
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}
