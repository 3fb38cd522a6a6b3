//! Imports over HTTP: upload (multipart, streamed to disk), progress, the list, row errors.

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::ImportId;
use http_kit::ApiQuery;
use http_kit::PathIds;
use http_kit::Problem;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use super::engine::{self, uploads_dir};
use super::options::ImportOptions;
use super::store::{self, ImportView, RowError};
use crate::context::RequestContext;
use crate::CommandState;

/// The parts of `POST /api/v1/imports`, in this order.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ImportUpload {
    options: ImportOptions,
    /// The CSV file: a header line, then one record per contact.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// What an upload answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Started {
    pub id: Uuid,
    /// `running`.
    pub status: String,
}

/// Most bytes of the `options` part.
const MAX_OPTIONS_BYTES: usize = 64 * 1024;

/// Import contacts from a CSV file: create or update by email, in the background.
#[utoipa::path(post, path = "/api/v1/imports", tag = "imports",
    request_body(content = ImportUpload, content_type = "multipart/form-data"),
    responses(
        (status = 202, description = "Accepted; follow it at /api/v1/imports/{id}", body = Started),
        (status = 400, description = "Not a multipart body with options then file", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "File larger than MAUNTIC_IMPORT_MAX_BYTES", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad options (unknown field or column, no email column)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn create(
    State(s): State<CommandState>,
    ctx: RequestContext,
    parts: Result<Multipart, MultipartRejection>,
) -> Result<Response, Problem> {
    let bad = |m: &str| Problem::bad_request(m.to_owned());
    let mut parts = parts.map_err(|r| {
        Problem::new(
            r.status(),
            "unsupported-media-type",
            "Not multipart/form-data",
        )
        .detail("send multipart/form-data: a part options (JSON), then a part file")
    })?;
    let mut field = parts
        .next_field()
        .await
        .map_err(|e| bad(&e.body_text()))?
        .ok_or_else(|| bad("the options part is missing"))?;
    if field.name() != Some("options") {
        return Err(bad("the first part must be options (JSON), then file"));
    }
    let mut raw = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| bad(&e.body_text()))? {
        raw.extend_from_slice(&chunk);
        if raw.len() > MAX_OPTIONS_BYTES {
            return Err(bad("the options part is too large"));
        }
    }
    drop(field);
    let options: ImportOptions =
        serde_json::from_slice(&raw).map_err(|e| Problem::validation("options", e.to_string()))?;
    // Options that cannot work are refused before the upload is stored.
    super::engine::check(&s, ctx.tenant_id, &options)
        .await
        .map_err(problem)?;

    let mut file = parts
        .next_field()
        .await
        .map_err(|e| bad(&e.body_text()))?
        .ok_or_else(|| bad("the file part is missing"))?;
    if file.name() != Some("file") {
        return Err(bad("the second part must be file"));
    }
    let file_name = file.file_name().map(str::to_owned);
    let id = Uuid::now_v7();
    let dir = uploads_dir(&s.imports.config).join(ctx.tenant_id.to_string());
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| Problem::from_internal(&e))?;
    let path = dir.join(format!("{id}.csv"));
    let stored = store_upload(&s, &mut file, &path).await;
    let created = match stored {
        Ok(()) => engine::create(
            &s,
            ctx.tenant_id,
            &ctx.metadata,
            &options,
            file_name.as_deref(),
            &path,
            id,
        )
        .await
        .map_err(problem),
        Err(p) => Err(p),
    };
    if let Err(p) = created {
        let _ = tokio::fs::remove_file(&path).await;
        return Err(p);
    }
    engine::spawn(s.clone(), ctx.tenant_id, id);
    let started = Started {
        id,
        status: "running".into(),
    };
    Ok((StatusCode::ACCEPTED, Json(started)).into_response())
}

/// Streams the file part to `path`, refusing more than the configured bytes.
async fn store_upload(
    s: &CommandState,
    file: &mut axum::extract::multipart::Field<'_>,
    path: &std::path::Path,
) -> Result<(), Problem> {
    let max = s.imports.config.max_bytes;
    let mut out = tokio::fs::File::create(path)
        .await
        .map_err(|e| Problem::from_internal(&e))?;
    let mut written: u64 = 0;
    while let Some(chunk) = file
        .chunk()
        .await
        .map_err(|e| Problem::bad_request(e.body_text()))?
    {
        written += chunk.len() as u64;
        if written > max {
            return Err(
                Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "too-large", "File too large")
                    .detail(format!("an import file may have at most {max} bytes")),
            );
        }
        out.write_all(&chunk)
            .await
            .map_err(|e| Problem::from_internal(&e))?;
    }
    out.flush().await.map_err(|e| Problem::from_internal(&e))?;
    Ok(())
}

/// An import's status and counts.
#[utoipa::path(get, path = "/api/v1/imports/{id}", tag = "imports",
    params(("id" = Uuid, Path, description = "Import id")),
    responses(
        (status = 200, description = "The import", body = ImportView),
        (status = 404, description = "No such import", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn get(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(id): PathIds<ImportId>,
) -> Result<Json<ImportView>, Problem> {
    let id = id.0;
    store::get(&s.pool, ctx.tenant_id, id)
        .await
        .map_err(|e| Problem::from_internal(&e))?
        .map(Json)
        .ok_or_else(|| Problem::not_found("import"))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next` token of the previous page.
    pub after: Option<String>,
}

impl PageParams {
    fn limit(&self) -> Result<i64, Problem> {
        let limit = self.limit.unwrap_or(50);
        if (1..=500).contains(&limit) {
            Ok(limit)
        } else {
            Err(Problem::bad_parameter("limit", "an integer from 1 to 500"))
        }
    }
}

/// Cuts a page fetched with `limit + 1` rows to `limit`; the next page's token if it had more.
fn next_token<T>(items: &mut Vec<T>, limit: i64, token: impl Fn(&T) -> String) -> Option<String> {
    if items.len() as i64 <= limit {
        return None;
    }
    items.truncate(limit as usize);
    items.last().map(token)
}

/// How the API shows an import that cannot be planned.
fn problem(e: super::engine::PlanError) -> Problem {
    match e {
        super::engine::PlanError::Invalid(e) => e.into(),
        super::engine::PlanError::Technical(t) => {
            tracing::error!(cause = %crate::error::chain(t.as_ref()), "checking an import failed");
            Problem::internal()
        }
    }
}

fn bad_token() -> Problem {
    Problem::bad_parameter("after", "not a page token from this API")
}

/// A page of imports, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ImportPage {
    pub items: Vec<ImportView>,
    /// Pass as `after` for the next page; null on the last page.
    pub next: Option<String>,
}

/// The organization's imports, newest first, in keyset pages.
#[utoipa::path(get, path = "/api/v1/imports", tag = "imports", params(PageParams),
    responses(
        (status = 200, description = "A page", body = ImportPage),
        (status = 400, description = "Bad parameters", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn list(
    State(s): State<CommandState>,
    ctx: RequestContext,
    ApiQuery(p): ApiQuery<PageParams>,
) -> Result<Json<ImportPage>, Problem> {
    let limit = p.limit()?;
    let after = p
        .after
        .as_deref()
        .map(|a| Uuid::parse_str(a).map_err(|_| bad_token()))
        .transpose()?;
    let mut items = store::list(&s.pool, ctx.tenant_id, after, limit + 1)
        .await
        .map_err(|e| Problem::from_internal(&e))?;
    let next = next_token(&mut items, limit, |i| i.id.to_string());
    Ok(Json(ImportPage { items, next }))
}

/// A page of rows that could not be imported.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorPage {
    pub items: Vec<RowError>,
    /// Pass as `after` for the next page; null on the last page.
    pub next: Option<String>,
}

/// The rows of an import that could not be applied (line and reason), by line.
#[utoipa::path(get, path = "/api/v1/imports/{id}/errors", tag = "imports",
    params(("id" = Uuid, Path, description = "Import id"), PageParams),
    responses(
        (status = 200, description = "A page", body = ErrorPage),
        (status = 404, description = "No such import", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn errors(
    State(s): State<CommandState>,
    ctx: RequestContext,
    PathIds(id): PathIds<ImportId>,
    ApiQuery(p): ApiQuery<PageParams>,
) -> Result<Json<ErrorPage>, Problem> {
    let id = id.0;
    let limit = p.limit()?;
    let after = match p.after.as_deref() {
        None => 0,
        Some(a) => a.parse::<i64>().map_err(|_| bad_token())?,
    };
    let found = store::get(&s.pool, ctx.tenant_id, id)
        .await
        .map_err(|e| Problem::from_internal(&e))?;
    if found.is_none() {
        return Err(Problem::not_found("import"));
    }
    let mut items = store::errors(&s.pool, ctx.tenant_id, id, after, limit + 1)
        .await
        .map_err(|e| Problem::from_internal(&e))?;
    let next = next_token(&mut items, limit, |e| e.line.to_string());
    Ok(Json(ErrorPage { items, next }))
}
