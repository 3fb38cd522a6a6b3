//! Suppression routes: extract, call [`super::Suppressions`], answer.

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::SuppressionId;
use http_kit::{ApiJson, PathIds, Problem};

use super::body::AddSuppression;
use super::import::MAX_BYTES;
use super::ImportReport;
use crate::context::RequestContext;
use crate::executor::Accepted;
use crate::CommandState;

/// The parts of `POST /api/v1/suppressions/import`.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct SuppressionUpload {
    /// The CSV file: a header with `address`, optionally `channel` and `reason`.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
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
    let (accepted, added) = s
        .delivery
        .suppressions
        .add(ctx.tenant(), entry, &ctx.metadata)
        .await?;
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(accepted)).into_response())
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
    let source = ctx.metadata.actor.clone();
    let removed = s
        .delivery
        .suppressions
        .remove(ctx.tenant(), id, source, &ctx.metadata);
    Ok(Json(removed.await?))
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
    let source = ctx.metadata.actor.as_deref().map(|a| format!("import:{a}"));
    let imported = s
        .delivery
        .suppressions
        .import(ctx.tenant(), bytes, source, &ctx.metadata);
    Ok(Json(imported.await?))
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
