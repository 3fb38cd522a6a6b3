//! Thin handlers: extract → validated entries → `suppress_many` or the executor → answer.

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::delivery::suppression::SuppressionCommand;
use domain::SuppressionId;
use http_kit::PathIds;
use http_kit::{ApiJson, Problem};
use serde::Serialize;

use super::body::AddSuppression;
use super::import::{self, RejectedRow, MAX_BYTES};
use super::many::{suppress_many, NewSuppression, Outcome, SuppressError};
use crate::context::RequestContext;
use crate::executor::Accepted;
use crate::CommandState;

/// Entries applied per transaction by an import.
const IMPORT_BATCH: usize = 1000;

/// Row errors an import answers with (the counts cover all of them).
const MAX_ROW_ERRORS: usize = 1000;

/// What an import did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    /// Addresses suppressed (new, or for a stronger reason than before).
    pub added: usize,
    /// Addresses suppressed already for as strong a reason (or twice in the file).
    pub already_suppressed: usize,
    /// Records that could not be used.
    pub rejected: usize,
    /// The rejected records' lines and reasons (the first 1000).
    pub errors: Vec<RejectedRow>,
    /// The cursor after the import's events (null when it recorded nothing).
    #[schema(value_type = Option<String>)]
    pub cursor: Option<event_store::Cursor>,
}

/// The parts of `POST /api/v1/suppressions/import`.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct SuppressionUpload {
    /// The CSV file: a header with `address`, optionally `channel` and `reason`.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

fn problem_of(e: SuppressError) -> Problem {
    match e {
        SuppressError::Conflict => {
            Problem::new(StatusCode::CONFLICT, "conflict", "Concurrent change")
                .detail(
                    "the suppression list kept changing while this request was applied; retry it",
                )
                .retry_after(1)
        }
        SuppressError::Store(e) => Problem::from_internal(&e),
    }
}

/// Suppress an address on a channel. Suppressing it again answers 200 with the same id;
/// a stronger reason (a bounce or complaint over a manual entry) is recorded (201).
#[utoipa::path(post, path = "/api/v1/suppressions", tag = "suppressions", request_body = AddSuppression,
    responses(
        (status = 201, description = "Suppressed (or its reason strengthened)", body = Accepted),
        (status = 200, description = "Suppressed already, for as strong a reason: nothing changed", body = Accepted),
        (status = 422, description = "Invalid channel, address, reason or source (every one listed)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn add(
    State(s): State<CommandState>,
    ctx: RequestContext,
    ApiJson(b): ApiJson<AddSuppression>,
) -> Result<Response, Problem> {
    let entry = b.validate(ctx.metadata.actor.clone().unwrap_or_default())?;
    let done = suppress_many(&s.pool, &s.notifier, ctx.tenant_id, &ctx.metadata, &[entry])
        .await
        .map_err(problem_of)?;
    let Some((id, outcome)) = done.entries.first().cloned() else {
        return Err(Problem::internal());
    };
    let status = match outcome {
        Outcome::Added => StatusCode::CREATED,
        Outcome::AlreadySuppressed => StatusCode::OK,
        Outcome::Refused(why) => return Err(Problem::validation("address", why)),
    };
    let cursor = match done.cursor {
        Some(c) => c,
        None => event_store::reader::stream_cursor(
            &s.pool,
            "suppression",
            &event_store::recorded::stream_id(ctx.tenant_id, id),
        )
        .await
        .map_err(|e| Problem::from_internal(&e))?
        .unwrap_or(event_store::Cursor::ZERO),
    };
    Ok((status, Json(Accepted { id, cursor })).into_response())
}

/// Remove an address from the list (sending to it is allowed again). The caller is recorded
/// as the removal's source, so bounces and complaints can be removed too.
#[utoipa::path(delete, path = "/api/v1/suppressions/{id}", tag = "suppressions",
    params(("id" = Uuid, Path, description = "Suppression entry id")),
    responses(
        (status = 200, description = "Removed", body = Accepted),
        (status = 404, description = "No such entry, or not suppressed (removed already)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn remove(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(id): PathIds<SuppressionId>,
) -> Result<Json<Accepted>, Problem> {
    let id = id.0;
    let command = SuppressionCommand::Remove {
        source: ctx.metadata.actor.clone(),
    };
    let accepted = s
        .delivery
        .suppressions
        .execute(ctx.tenant_id, id, command, &ctx.metadata)
        .await?;
    Ok(Json(accepted))
}

/// Suppress the addresses of a CSV file (multipart part `file`, at most 10 MB): a header
/// with `address`, optionally `channel` (default email) and `reason` (default manual).
/// Records that cannot be used are reported by line; the others are applied.
#[utoipa::path(post, path = "/api/v1/suppressions/import", tag = "suppressions",
    request_body(content = SuppressionUpload, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "Applied: counts, and the rejected records by line", body = ImportReport),
        (status = 400, description = "Not a multipart body with a file part", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "File larger than 10 MB", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The file cannot be used (empty, or no address column)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn import(
    State(s): State<CommandState>,
    ctx: RequestContext,
    parts: Result<Multipart, MultipartRejection>,
) -> Result<Json<ImportReport>, Problem> {
    let bytes = read_file(parts).await?;
    let (rows, mut errors) = tokio::task::spawn_blocking(move || import::parse(&bytes))
        .await
        .map_err(|e| Problem::from_internal(&e))?
        .map_err(|e| Problem::validation("file", e.to_string()))?;
    let source = ctx.metadata.actor.as_deref().map(|a| format!("import:{a}"));
    let mut cursor = None;
    let mut added = 0;
    let mut already = 0;
    for chunk in rows.chunks(IMPORT_BATCH) {
        let entries: Vec<NewSuppression> = chunk
            .iter()
            .map(|r| (r.channel, r.address.clone(), r.reason, source.clone()))
            .collect();
        let done = suppress_many(&s.pool, &s.notifier, ctx.tenant_id, &ctx.metadata, &entries)
            .await
            .map_err(problem_of)?;
        added += done.added();
        already += done.already_suppressed();
        for (row, (_, outcome)) in chunk.iter().zip(&done.entries) {
            if let Outcome::Refused(message) = outcome {
                errors.push(RejectedRow {
                    line: row.line,
                    message: message.clone(),
                });
            }
        }
        cursor = done.cursor.or(cursor);
    }
    errors.sort_by_key(|e| e.line);
    let rejected = errors.len();
    errors.truncate(MAX_ROW_ERRORS);
    Ok(Json(ImportReport {
        added,
        already_suppressed: already,
        rejected,
        errors,
        cursor,
    }))
}

/// The `file` part's bytes, refusing more than [`MAX_BYTES`].
async fn read_file(parts: Result<Multipart, MultipartRejection>) -> Result<Vec<u8>, Problem> {
    let bad = |m: String| Problem::bad_request(m);
    let mut parts = parts.map_err(|r| {
        Problem::new(
            r.status(),
            "unsupported-media-type",
            "Not multipart/form-data",
        )
        .detail("send multipart/form-data with a part file (the CSV)")
    })?;
    while let Some(mut field) = parts.next_field().await.map_err(|e| bad(e.body_text()))? {
        if field.name() != Some("file") {
            continue;
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(|e| bad(e.body_text()))? {
            if bytes.len() + chunk.len() > MAX_BYTES {
                return Err(Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too-large",
                    "File too large",
                )
                .detail(format!(
                    "a suppression file may have at most {MAX_BYTES} bytes"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        return Ok(bytes);
    }
    Err(bad("the file part is missing".into()))
}
