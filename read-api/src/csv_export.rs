//! Contacts to CSV, streamed: pages of the read model are turned into CSV by a task and
//! sent through a small bounded channel, so memory stays flat however many contacts there
//! are, and no transaction is held open for the whole download.

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use http_kit::ApiQuery;
use http_kit::{Authenticated, Problem};
use projections::contacts::{self, ContactFilter, ContactRow};
use serde::Deserialize;
use uuid::Uuid;

use crate::consistency::ConsistentAfter;
use crate::QueryState;

/// Rows read per page.
const PAGE: i64 = 5_000;
/// Pages of CSV in flight between the reader and the client.
const IN_FLIGHT: usize = 2;

const HEADER: [&str; 16] = [
    "id",
    "email",
    "first_name",
    "last_name",
    "phone",
    "time_zone",
    "locale",
    "stage",
    "points",
    "tags",
    "owner_id",
    "primary_company_id",
    "consent",
    "do_not_contact",
    "fields",
    "created_at",
];

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// Only contacts with this tag.
    pub tag: Option<String>,
    /// Only contacts in this stage.
    pub stage: Option<String>,
    /// Only contacts linked to this company.
    pub company_id: Option<Uuid>,
    /// Only the members of this segment.
    pub segment_id: Option<Uuid>,
    pub consistent_after: Option<String>,
}

fn record(r: &ContactRow) -> [String; 16] {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    [
        r.id.to_string(),
        r.email.clone(),
        opt(&r.first_name),
        opt(&r.last_name),
        opt(&r.phone),
        opt(&r.time_zone),
        opt(&r.locale),
        opt(&r.stage),
        r.points.to_string(),
        r.tags.join(";"),
        r.owner_id.map(|u| u.to_string()).unwrap_or_default(),
        r.primary_company_id
            .map(|u| u.to_string())
            .unwrap_or_default(),
        r.consent.to_string(),
        r.do_not_contact.to_string(),
        r.fields.to_string(),
        r.created_at.to_rfc3339(),
    ]
}

/// CSV bytes of `rows` (with the header first when `header`).
fn to_csv(rows: &[ContactRow], header: bool) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(rows.len() * 256));
    if header {
        w.write_record(HEADER)?;
    }
    for r in rows {
        w.write_record(record(r))?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// Export contacts (all, or those with a tag, in a stage, of a company, or in a segment) as
/// CSV, streamed.
#[utoipa::path(get, path = "/api/v1/contacts:export", tag = "contacts", params(ExportParams),
    responses(
        (status = 200, description = "CSV (text/csv), one contact per line after a header", content_type = "text/csv"),
        (status = 400, description = "Bad parameters", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such segment", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn export(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    ApiQuery(p): ApiQuery<ExportParams>,
) -> Result<Response, Problem> {
    consistency.wait(&s, "contacts").await?;
    if let Some(id) = p.segment_id {
        let known = projections::segments::get(&s.pool, caller.tenant_id, id)
            .await
            .map_err(|e| Problem::from_internal(&e))?;
        if known.is_none() {
            return Err(Problem::not_found("segment"));
        }
    }
    let filter = ContactFilter {
        tag: p.tag,
        stage: p.stage,
        company_id: p.company_id,
        segment_id: p.segment_id,
        email_prefix: None,
    };
    // The first page is read before answering, so a database failure is a clean 500.
    let first = contacts::list_filtered(&s.pool, caller.tenant_id, &filter, None, PAGE)
        .await
        .map_err(|e| Problem::from_internal(&e))?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(IN_FLIGHT);
    let pool = s.pool.clone();
    tokio::spawn(async move {
        let mut page = first;
        let mut header = true;
        loop {
            let chunk = to_csv(&page, header).map_err(std::io::Error::other);
            header = false;
            let last = page.last().map(|r| r.id);
            let done = chunk.is_err() || (page.len() as i64) < PAGE;
            if tx.send(chunk).await.is_err() || done {
                return; // the client went away, or everything was sent
            }
            page = match contacts::list_filtered(&pool, caller.tenant_id, &filter, last, PAGE).await
            {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "contact export failed part-way");
                    let _ = tx.send(Err(std::io::Error::other(e))).await;
                    return;
                }
            };
        }
    });
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"contacts.csv\"",
            ),
        ],
        Body::from_stream(body),
    )
        .into_response())
}
