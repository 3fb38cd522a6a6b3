//! The audit log: who changed what, when and from where, newest first, filtered by actor and
//! by kind of thing (owners and admins only, as in the API).

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use domain::identity::Action;
use projections::audit_log::{self as read, AuditFilter, AuditRow};
use serde::Deserialize;

use crate::page::{humanized, render, Frame, PageError};
use crate::visit::{url_encode, Member};
use crate::WebState;

const PAGE: i64 = 100;

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    kind: String,
    /// `<tx_id>.<position>` of the last entry of the previous page.
    #[serde(default)]
    after: String,
}

struct Entry {
    at: String,
    at_iso: String,
    actor: String,
    what: String,
    kind: String,
    id: String,
    changed: String,
    ip: String,
}

impl From<AuditRow> for Entry {
    fn from(r: AuditRow) -> Self {
        Self {
            at: r.recorded_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            at_iso: r.recorded_at.to_rfc3339(),
            actor: r.actor.unwrap_or_default(),
            what: humanized(&r.event_type),
            kind: r.aggregate_type,
            id: r.aggregate_id.to_string(),
            changed: r.changed.join(", "),
            ip: r.ip.unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    frame: Frame,
    q: AuditQuery,
    entries: Vec<Entry>,
    next: Option<String>,
}

/// `GET /audit`
pub async fn list(
    State(s): State<WebState>,
    me: Member,
    Query(q): Query<AuditQuery>,
) -> Result<Response, PageError> {
    me.require(Action::ReadAudit)?;
    let filter = AuditFilter {
        actor: Some(q.actor.trim().to_owned()).filter(|a| !a.is_empty()),
        aggregate_type: Some(q.kind.trim().to_owned()).filter(|k| !k.is_empty()),
        ..AuditFilter::default()
    };
    let after = q
        .after
        .split_once('.')
        .and_then(|(t, p)| Some((t.parse::<i64>().ok()?, p.parse::<i64>().ok()?)));
    let mut rows = read::list(&s.pool, me.tenant.0, &filter, after, PAGE + 1).await?;
    let next = (rows.len() as i64 > PAGE).then(|| {
        rows.truncate(PAGE as usize);
        let last = rows
            .last()
            .map(|r| format!("{}.{}", r.tx_id, r.global_position))
            .unwrap_or_default();
        format!(
            "actor={}&kind={}&after={last}",
            url_encode(&q.actor),
            url_encode(&q.kind)
        )
    });
    Ok(render(&AuditPage {
        frame: me.frame("Audit log", "audit"),
        entries: rows.into_iter().map(Entry::from).collect(),
        q,
        next,
    }))
}
