//! Deliveries: every message requested, filtered by status, channel and source, newest first;
//! one delivery with the events of its job.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use domain::delivery::Status;
use domain::DeliveryId;
use event_store::reader::{self, Until};
use http_kit::PathIds;
use projections::deliveries::{self as read, DeliveryRow, Filter};
use serde::Deserialize;

use crate::page::{humanized, parse_time_key, render, time_key, Frame, PageError};
use crate::visit::{url_encode, Member};
use crate::WebState;

const PAGE: i64 = 50;
const CHANNELS: [&str; 4] = ["email", "sms", "push", "webhook"];
const SOURCES: [&str; 4] = ["campaign", "journey", "transactional", "test"];

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    after: String,
}

#[derive(Template)]
#[template(path = "deliveries/list.html")]
struct ListPage {
    frame: Frame,
    status: String,
    channel: String,
    source: String,
    statuses: Vec<&'static str>,
    channels: [&'static str; 4],
    sources: [&'static str; 4],
    rows: Rows,
}

#[derive(Template)]
#[template(path = "deliveries/rows.html")]
struct Rows {
    rows: Vec<DeliveryRow>,
    next: Option<String>,
    first_page: bool,
}

/// A value of a closed list, or none (anything else is ignored: a filter, not a command).
fn one_of(v: &str, allowed: &[&str]) -> Option<String> {
    Some(v.trim().to_owned()).filter(|v| allowed.contains(&v.as_str()))
}

fn key_of(r: &DeliveryRow) -> String {
    time_key(r.requested_at, r.id)
}

/// `GET /deliveries`
pub async fn list(
    State(s): State<WebState>,
    me: Member,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let statuses: Vec<&'static str> = Status::ALL.iter().map(|s| s.as_str()).collect();
    let filter = Filter {
        status: one_of(&q.status, &statuses),
        channel: one_of(&q.channel, &CHANNELS),
        source: one_of(&q.source, &SOURCES),
        ..Filter::default()
    };
    let after = parse_time_key(&q.after);
    let mut found = read::list(&s.pool, me.tenant.0, &filter, after, PAGE + 1).await?;
    let next = (found.len() as i64 > PAGE).then(|| {
        found.truncate(PAGE as usize);
        format!(
            "status={}&channel={}&source={}&after={}",
            url_encode(&q.status),
            url_encode(&q.channel),
            url_encode(&q.source),
            found.last().map(key_of).unwrap_or_default()
        )
    });
    let rows = Rows {
        rows: found,
        next,
        first_page: after.is_none(),
    };
    if crate::page::wants_partial(&headers) {
        return Ok(render(&rows));
    }
    Ok(render(&ListPage {
        frame: me.frame("Deliveries", "deliveries"),
        status: q.status,
        channel: q.channel,
        source: q.source,
        statuses,
        channels: CHANNELS,
        sources: SOURCES,
        rows,
    }))
}

/// One event of a job, as shown.
struct Step {
    at: String,
    what: String,
}

#[derive(Template)]
#[template(path = "deliveries/show.html")]
struct ShowPage {
    frame: Frame,
    d: DeliveryRow,
    reason: String,
    steps: Vec<Step>,
}

/// `GET /deliveries/{id}`
pub async fn show(
    State(s): State<WebState>,
    me: Member,
    PathIds(id): PathIds<DeliveryId>,
) -> Result<Response, PageError> {
    let d = read::get(&s.pool, me.tenant.0, id.0)
        .await?
        .ok_or_else(|| PageError::NotFound("No such delivery in this organization.".into()))?;
    let stream = event_store::recorded::stream_id(me.tenant.0, id.0);
    let steps = reader::load_stream(&s.pool, "delivery_job", &stream, Until::End)
        .await
        .map_err(|e| PageError::internal(&e))?
        .into_iter()
        .map(|e| Step {
            at: e.recorded_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            what: humanized(&e.event_type),
        })
        .collect();
    let reason = d
        .reason
        .as_ref()
        .map(|r| match r {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .unwrap_or_default();
    Ok(render(&ShowPage {
        frame: me.frame("Delivery", "deliveries"),
        d,
        reason,
        steps,
    }))
}
