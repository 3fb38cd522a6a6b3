//! `POST /api/v1/contacts/{id}/events` and `POST /api/v1/events`: custom contact events over
//! HTTP (public keys may call both: they ingest).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use domain::contact::{custom_event, EventName, EventProperties, InvalidValue};
use domain::ContactId;
use domain::EmailAddress;
use event_store::Cursor;
use http_kit::{ApiJson, PathIds, Problem};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::body::Check;
use super::service::CustomEvent;
use crate::context::RequestContext;
use crate::executor::Accepted;
use crate::CommandState;

/// Most events in one `POST /api/v1/events`.
pub const MAX_EVENTS: usize = 500;

/// What both routes record as the event's `source`.
const SOURCE: &str = "api";

/// `POST /api/v1/contacts/{id}/events`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordEvent {
    /// 1 to 100 characters of letters, digits, `_`, `.`, `:` and `-`.
    #[schema(example = "purchase")]
    pub name: String,
    /// A JSON object, at most 16 KiB and 4 levels deep; top-level names may not start with
    /// `$`. Personal data: erased with the contact.
    #[schema(value_type = Option<Object>, example = json!({"total": 42}))]
    pub properties: Option<Value>,
    /// RFC 3339; now when absent; at most 24 hours ahead.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub occurred_at: Option<String>,
}

/// Checks name, properties and time, noting every bad one in `c`.
fn check(
    c: &mut Check,
    name: &str,
    properties: Option<Value>,
    occurred_at: Option<&str>,
    now: DateTime<Utc>,
) -> Option<CustomEvent> {
    let name = c.take(EventName::parse(name));
    let properties = c.take(EventProperties::parse(properties));
    let given = occurred_at.map(|t| {
        DateTime::parse_from_rfc3339(t)
            .map(|t| t.to_utc())
            .map_err(|_| {
                InvalidValue::new(
                    "occurred_at",
                    "an RFC 3339 date and time, e.g. 2026-11-01T10:00:00Z",
                )
            })
    });
    let occurred_at = match given {
        None => Some(now),
        Some(t) => c
            .take(t)
            .and_then(|t| c.take(custom_event::occurred_at(Some(t), now))),
    };
    Some(CustomEvent {
        name: name?,
        properties: properties?,
        occurred_at: occurred_at?,
    })
}

/// Record a custom event (`signed_up`, `purchase`) on a contact: what journeys trigger on.
/// A merged contact's event is recorded on its survivor, whose id the answer carries.
#[utoipa::path(post, path = "/api/v1/contacts/{id}/events", tag = "contacts",
    request_body = RecordEvent,
    params(("id" = Uuid, Path, description = "Contact id")),
    responses(
        (status = 201, description = "Recorded (`id`: the contact, a merged one's survivor)", body = Accepted),
        (status = 404, description = "No such contact", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The contact was erased", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input (every bad field listed)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn record(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(id): PathIds<ContactId>,
    ApiJson(b): ApiJson<RecordEvent>,
) -> Result<(StatusCode, Json<Accepted>), Problem> {
    let mut c = Check::default();
    let event = check(
        &mut c,
        &b.name,
        b.properties,
        b.occurred_at.as_deref(),
        s.auth.clock.now(),
    );
    let e = c.finish(event)?;
    let source = Some(SOURCE.to_owned());
    let recorded = s
        .contacts
        .record_event(ctx.tenant(), id, e, source, &ctx.metadata);
    let accepted = recorded.await?;
    Ok((StatusCode::CREATED, Json(accepted)))
}

/// One event of `POST /api/v1/events`: the contact by `contact_id` or by `email` (one of
/// the two), and the event.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventItem {
    #[schema(value_type = Option<Uuid>)]
    pub contact_id: Option<String>,
    /// The email of an existing contact (an unknown email is this item's error; no contact
    /// is created).
    pub email: Option<String>,
    #[schema(example = "signed_up")]
    pub name: String,
    #[schema(value_type = Option<Object>)]
    pub properties: Option<Value>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub occurred_at: Option<String>,
}

/// `POST /api/v1/events`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordEvents {
    /// 1 to 500 events, recorded in this order.
    #[schema(value_type = Vec<EventItem>)]
    pub events: Vec<Value>,
}

/// What became of one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    Recorded,
    Error,
}

/// The result of item `index`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ItemResult {
    pub index: usize,
    /// The contact the event was recorded on (a merged contact's survivor), or the one the
    /// item named; null when it named none.
    pub contact_id: Option<Uuid>,
    pub status: ItemStatus,
    /// Why the item was not recorded: the problem its own request would have answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
}

/// What `POST /api/v1/events` answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventsRecorded {
    /// One per item, in the order given.
    pub results: Vec<ItemResult>,
    /// The cursor after the last event recorded (pass as `consistent_after`); null when
    /// none was.
    #[schema(value_type = Option<String>, example = "812-45")]
    pub cursor: Option<Cursor>,
}

/// Record custom events for integrations that know a contact's email rather than its id.
/// **Items are independent**: each is checked, resolved to its contact and recorded on its
/// own, in order, and one bad item does not stop the others — read each item's `status`
/// (and `problem`, the problem+json its own request would have answered). The answer is 200
/// whenever the list itself is acceptable, even if no item was recorded. A retried request
/// records its events again.
#[utoipa::path(post, path = "/api/v1/events", tag = "contacts",
    request_body = RecordEvents,
    responses(
        (status = 200, description = "Each item's result", body = EventsRecorded),
        (status = 413, description = "Body larger than the API's limit (`MAUNTIC_MAX_BODY_BYTES`, 256 KiB by default)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a list of 1 to 500 events", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn record_many(
    State(s): State<CommandState>,
    ctx: RequestContext,
    ApiJson(b): ApiJson<RecordEvents>,
) -> Result<Json<EventsRecorded>, Problem> {
    if !(1..=MAX_EVENTS).contains(&b.events.len()) {
        return Err(Problem::validation(
            "events",
            format!("1 to {MAX_EVENTS} events"),
        ));
    }
    let now = s.auth.clock.now();
    let mut results = Vec::with_capacity(b.events.len());
    let mut cursor: Option<Cursor> = None;
    for (index, raw) in b.events.into_iter().enumerate() {
        results.push(match item(&s, &ctx, raw, now).await {
            Ok(a) => {
                cursor = cursor.max(Some(a.cursor));
                ItemResult {
                    index,
                    contact_id: Some(a.id),
                    status: ItemStatus::Recorded,
                    problem: None,
                }
            }
            Err((contact_id, problem)) => ItemResult {
                index,
                contact_id,
                status: ItemStatus::Error,
                problem: Some(problem),
            },
        });
    }
    Ok(Json(EventsRecorded { results, cursor }))
}

/// Which contact an item names.
enum Target {
    Id(ContactId),
    Email(EmailAddress),
}

/// Records one item; on failure the contact it named (if any) and why.
async fn item(
    s: &CommandState,
    ctx: &RequestContext,
    raw: Value,
    now: DateTime<Utc>,
) -> Result<Accepted, (Option<Uuid>, Problem)> {
    let it: EventItem = serde_json::from_value(raw).map_err(|e| {
        let p = Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "Invalid input",
        );
        (None, p.detail(e.to_string()))
    })?;
    let mut c = Check::default();
    let target = match (it.contact_id.as_deref(), it.email.as_deref()) {
        (Some(id), None) => c.take(
            Uuid::parse_str(id)
                .map(|id| Target::Id(ContactId(id)))
                .map_err(|_| InvalidValue::new("contact_id", "not a UUID")),
        ),
        (None, Some(email)) => c.take(
            EmailAddress::parse(email)
                .map(Target::Email)
                .map_err(|e| InvalidValue::new("email", e.to_string())),
        ),
        _ => c.take(Err(InvalidValue::new(
            "contact_id",
            "give the contact's contact_id or its email (one of the two)",
        ))),
    };
    let event = check(
        &mut c,
        &it.name,
        it.properties,
        it.occurred_at.as_deref(),
        now,
    );
    let (target, e) = c.finish(target.zip(event)).map_err(|p| (None, p.into()))?;
    let id = match target {
        Target::Id(id) => id,
        Target::Email(email) => s
            .contacts
            .owner_of(ctx.tenant(), &email)
            .await
            .map_err(|p| (None, p.into()))?
            .ok_or_else(|| {
                let p = Problem::not_found("contact");
                (
                    None,
                    p.detail("no contact of this organization has this email"),
                )
            })?,
    };
    let source = Some(SOURCE.to_owned());
    let recorded = s
        .contacts
        .record_event(ctx.tenant(), id, e, source, &ctx.metadata);
    recorded.await.map_err(|e| (Some(id.0), Problem::from(e)))
}
