//! Campaign queries: the list (status filter, name search, three sorts, keyset pages), one
//! campaign whole, its stats (totals and rates, by variant, by channel, over hours or days,
//! per link), and its recipients (its jobs in the `deliveries` read model).

use domain::CampaignId;
use http_kit::{ApiQuery, PathIds};
use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use http_kit::{Authenticated, Problem};
use projections::campaigns::links::{self, LinkRow};
use projections::campaigns::list::{self as campaign_list, ListQuery, ListRow, Sort};
use projections::campaigns::rollups::{self, Figures, Granularity};
use projections::campaigns::summaries::{Counts, SummaryRow};
use projections::deliveries::{self, Filter};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::consistency::ConsistentAfter;
use crate::QueryState;

const STATUSES: &[&str] = &[
    "draft",
    "scheduled",
    "sending",
    "paused",
    "sent",
    "cancelled",
];

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CampaignPageParams {
    /// Only campaigns whose name contains this (case-insensitive).
    pub q: Option<String>,
    /// `created_at` (default), `name` or `starts_at` (unscheduled campaigns last); a `-`
    /// prefix sorts descending.
    pub sort: Option<String>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next` token of the previous page (with the same filters and sort).
    pub after: Option<String>,
    /// Wait until the read model has passed this cursor (from a command's answer).
    pub consistent_after: Option<String>,
}

/// A page of campaigns.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CampaignPage {
    pub items: Vec<ListRow>,
    /// Pass as `after` for the next page; null on the last page.
    pub next: Option<String>,
}

/// The rates of a set of figures, as shares of the messages sent (0 when none was), and
/// clicks to opens.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Rates {
    pub delivery_rate: f64,
    /// Unique opens / sent.
    pub open_rate: f64,
    /// Unique clicks / sent.
    pub click_rate: f64,
    /// Unique clicks / unique opens.
    pub click_to_open_rate: f64,
    pub bounce_rate: f64,
    pub complaint_rate: f64,
    pub unsubscribe_rate: f64,
}

fn share(part: i64, whole: i64) -> f64 {
    if whole <= 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

impl Rates {
    fn of(f: &Figures) -> Self {
        Self {
            delivery_rate: share(f.delivered, f.sent),
            open_rate: share(f.unique_opens, f.sent),
            click_rate: share(f.unique_clicks, f.sent),
            click_to_open_rate: share(f.unique_clicks, f.unique_opens),
            bounce_rate: share(f.bounced, f.sent),
            complaint_rate: share(f.complained, f.sent),
            unsubscribe_rate: share(f.unsubscribes, f.sent),
        }
    }
}

/// Figures of a part of a campaign (a variant, a channel) with their rates.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Part {
    /// The variant (`""`: no A/B test) or the channel.
    pub name: String,
    #[serde(flatten)]
    pub figures: Figures,
    pub rates: Rates,
}

/// One hour or day.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Bucket {
    /// Its start (UTC).
    pub bucket: DateTime<Utc>,
    #[serde(flatten)]
    pub figures: Figures,
}

/// A campaign's figures.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CampaignStats {
    pub id: Uuid,
    pub status: String,
    /// What became of its jobs (the summary's counters).
    pub totals: Counts,
    /// Every open and click (not only recipients' first ones).
    pub opens: i64,
    pub clicks: i64,
    pub rates: Rates,
    pub by_variant: Vec<Part>,
    pub by_channel: Vec<Part>,
    /// `hour` or `day`.
    pub granularity: String,
    /// Buckets with any activity, oldest first.
    pub series: Vec<Bucket>,
    /// The most clicked links (at most 100). `unique_clicks` of a link: recipients whose
    /// first click was on it.
    pub links: Vec<LinkRow>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// `hour` (default) or `day`.
    pub granularity: Option<String>,
    /// Wait until the read models have passed this cursor (from a command's answer).
    pub consistent_after: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecipientPageParams {
    /// requested, deferred, failed, dispatching, sent, in_doubt, delivered, bounced,
    /// complained, suppressed, given_up or cancelled.
    pub status: Option<String>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next` token of the previous page.
    pub after: Option<String>,
    /// Wait until the read models have passed this cursor (from a command's answer).
    pub consistent_after: Option<String>,
}

/// A recipient of a campaign: their delivery job.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Recipient {
    pub contact_id: Option<Uuid>,
    pub job_id: Uuid,
    /// The A/B test variant they got.
    pub variant: Option<String>,
    pub status: String,
    /// Why it is suppressed, deferred, failed or given up.
    #[schema(value_type = Option<Object>)]
    pub reason: Option<serde_json::Value>,
    pub opens: i32,
    pub clicks: i32,
    pub requested_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// A page of recipients, latest requested first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecipientPage {
    pub items: Vec<Recipient>,
    pub next: Option<String>,
}

fn token<T: Serialize>(key: &T) -> Option<String> {
    serde_json::to_vec(key)
        .ok()
        .map(|b| URL_SAFE_NO_PAD.encode(b))
}

fn untoken<T: serde::de::DeserializeOwned>(raw: Option<&str>) -> Result<Option<T>, Problem> {
    raw.map(|t| {
        URL_SAFE_NO_PAD
            .decode(t)
            .ok()
            .and_then(|b| serde_json::from_slice::<T>(&b).ok())
            .ok_or_else(|| Problem::bad_parameter("after", "not a page token from this API"))
    })
    .transpose()
}

fn limit(raw: Option<i64>) -> Result<i64, Problem> {
    let limit = raw.unwrap_or(50);
    if (1..=500).contains(&limit) {
        Ok(limit)
    } else {
        Err(Problem::bad_parameter("limit", "an integer from 1 to 500"))
    }
}

/// `status=a&status=b` and `status=a,b` alike, each checked.
fn statuses(raw: Option<&str>) -> Result<Vec<String>, Problem> {
    let mut out: Vec<String> = Vec::new();
    let pairs = form_urlencoded::parse(raw.unwrap_or_default().as_bytes());
    for (_, v) in pairs.filter(|(k, _)| k == "status") {
        for s in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if !STATUSES.contains(&s) {
                return Err(Problem::bad_request(format!(
                    "status must be one of {}",
                    STATUSES.join(", ")
                )));
            }
            if !out.iter().any(|o| o == s) {
                out.push(s.to_owned());
            }
        }
    }
    Ok(out)
}

fn sort(raw: Option<&str>) -> Result<(Sort, bool), Problem> {
    let raw = raw.unwrap_or("created_at");
    let (descending, name) = match raw.strip_prefix('-') {
        Some(n) => (true, n),
        None => (false, raw),
    };
    let sort = match name {
        "created_at" => Sort::CreatedAt,
        "name" => Sort::Name,
        "starts_at" => Sort::StartsAt,
        _ => {
            return Err(Problem::bad_request(
                "sort must be created_at, name or starts_at, with - for descending",
            ))
        }
    };
    Ok((sort, descending))
}

/// List campaigns (deleted ones never), in keyset pages.
#[utoipa::path(get, path = "/api/v1/campaigns", tag = "campaigns",
    params(CampaignPageParams,
        ("status" = Option<Vec<String>>, Query, description = "Only these statuses (draft, scheduled, sending, paused, sent, cancelled): repeated, or a comma list")),
    responses(
        (status = 200, description = "A page", body = CampaignPage),
        (status = 400, description = "Bad parameters", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn list(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    RawQuery(raw): RawQuery,
    ApiQuery(p): ApiQuery<CampaignPageParams>,
) -> Result<Json<CampaignPage>, Problem> {
    let limit = limit(p.limit)?;
    let (sort, descending) = sort(p.sort.as_deref())?;
    let query = ListQuery {
        statuses: statuses(raw.as_deref())?,
        name: p.q.filter(|q| !q.is_empty()),
        sort,
        descending,
        after: untoken(p.after.as_deref())?,
        limit: limit + 1,
    };
    consistency.wait(&s, "campaign_summaries").await?;
    let mut rows = campaign_list::list(&s.pool, caller.tenant_id, &query)
        .await
        .map_err(|e| Problem::from_internal(&e))?
        .rows;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().and_then(|(r, key)| token(&(key, r.id)))
    } else {
        None
    };
    Ok(Json(CampaignPage {
        items: rows.into_iter().map(|(r, _)| r).collect(),
        next,
    }))
}

async fn load(
    s: &QueryState,
    tenant: Uuid,
    consistency: &ConsistentAfter,
    id: CampaignId,
    projections: &[&str],
) -> Result<SummaryRow, Problem> {
    let id = id.0;
    for p in projections {
        consistency.wait(s, p).await?;
    }
    campaign_list::get(&s.pool, tenant, id)
        .await
        .map_err(|e| Problem::from_internal(&e))?
        .ok_or_else(|| Problem::not_found("campaign"))
}

/// One campaign: settings, schedule, pinned versions, A/B decision with its figures, counts
/// (suppressed by reason in `skipped`).
#[utoipa::path(get, path = "/api/v1/campaigns/{id}", tag = "campaigns",
    params(("id" = Uuid, Path, description = "Campaign id"),
           ("consistent_after" = Option<String>, Query, description = "Wait until the read model has passed this cursor")),
    responses(
        (status = 200, description = "The campaign", body = SummaryRow),
        (status = 404, description = "No such campaign (or deleted)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn get(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    PathIds(id): PathIds<CampaignId>,
) -> Result<Json<SummaryRow>, Problem> {
    load(
        &s,
        caller.tenant_id,
        &consistency,
        id,
        &["campaign_summaries"],
    )
    .await
    .map(Json)
}

fn parts(rows: &[rollups::RollupRow], name: fn(&rollups::RollupRow) -> &str) -> Vec<Part> {
    let mut by: BTreeMap<&str, Figures> = BTreeMap::new();
    for r in rows {
        by.entry(name(r)).or_default().merge(&r.figures);
    }
    by.into_iter()
        .map(|(n, figures)| Part {
            name: n.to_owned(),
            rates: Rates::of(&figures),
            figures,
        })
        .collect()
}

/// A campaign's figures: totals and rates, by variant, by channel, by hour (or day), and
/// per link.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}/stats", tag = "campaigns",
    params(("id" = Uuid, Path, description = "Campaign id"), StatsParams),
    responses(
        (status = 200, description = "The campaign's figures", body = CampaignStats),
        (status = 400, description = "Bad parameters", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such campaign (or deleted)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn stats(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    PathIds(id): PathIds<CampaignId>,
    ApiQuery(p): ApiQuery<StatsParams>,
) -> Result<Json<CampaignStats>, Problem> {
    let granularity = match p.granularity.as_deref() {
        None | Some("hour") => Granularity::Hour,
        Some("day") => Granularity::Day,
        Some(_) => return Err(Problem::bad_request("granularity must be hour or day")),
    };
    let tenant = caller.tenant_id;
    let row = load(
        &s,
        tenant,
        &consistency,
        id,
        &[
            "campaign_summaries",
            "campaign_rollups",
            "campaign_link_clicks",
        ],
    )
    .await?;
    let internal = |e: sqlx::Error| Problem::from_internal(&e);
    // Per variant and channel, days are the fewer rows; the series is what was asked for.
    let days = rollups::rows(&s.pool, tenant, row.id, Granularity::Day)
        .await
        .map_err(internal)?;
    let series_rows = if granularity == Granularity::Day {
        days.clone()
    } else {
        rollups::rows(&s.pool, tenant, row.id, granularity)
            .await
            .map_err(internal)?
    };
    let links = links::rows(&s.pool, tenant, row.id, 100)
        .await
        .map_err(internal)?;
    let mut all = Figures::default();
    for d in &days {
        all.merge(&d.figures);
    }
    let mut series: Vec<Bucket> = Vec::new();
    for r in &series_rows {
        match series.last_mut() {
            Some(b) if b.bucket == r.bucket => b.figures.merge(&r.figures),
            _ => series.push(Bucket {
                bucket: r.bucket,
                figures: r.figures.clone(),
            }),
        }
    }
    // The totals' rates use the summary's counters (they see every job event, reports and
    // all), the same figures as the list shows.
    let c = &row.counts;
    let totals = Figures {
        sent: c.sent,
        delivered: c.delivered,
        bounced: c.bounced,
        complained: c.complained,
        opens: all.opens,
        unique_opens: c.opened,
        clicks: all.clicks,
        unique_clicks: c.clicked,
        unsubscribes: c.unsubscribed,
    };
    Ok(Json(CampaignStats {
        id: row.id,
        status: row.status.clone(),
        opens: all.opens,
        clicks: all.clicks,
        rates: Rates::of(&totals),
        by_variant: parts(&days, |r| &r.variant),
        by_channel: parts(&days, |r| &r.channel),
        granularity: granularity.as_str().to_owned(),
        series,
        links,
        totals: row.counts,
    }))
}

/// A campaign's recipients: its delivery jobs, latest requested first, in keyset pages.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}/recipients", tag = "campaigns",
    params(("id" = Uuid, Path, description = "Campaign id"), RecipientPageParams),
    responses(
        (status = 200, description = "A page", body = RecipientPage),
        (status = 400, description = "Bad parameters", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such campaign (or deleted)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn recipients(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    PathIds(id): PathIds<CampaignId>,
    ApiQuery(p): ApiQuery<RecipientPageParams>,
) -> Result<Json<RecipientPage>, Problem> {
    let limit = limit(p.limit)?;
    let after: Option<(DateTime<Utc>, Uuid)> = untoken(p.after.as_deref())?;
    let status = match p.status.filter(|v| !v.is_empty()) {
        Some(v) if !crate::deliveries::STATUSES.contains(&v.as_str()) => {
            return Err(Problem::bad_request(format!(
                "status must be one of {}",
                crate::deliveries::STATUSES.join(", ")
            )))
        }
        v => v,
    };
    let tenant = caller.tenant_id;
    let row = load(
        &s,
        tenant,
        &consistency,
        id,
        &["campaign_summaries", "deliveries"],
    )
    .await?;
    let filter = Filter {
        status,
        source: Some("campaign".to_owned()),
        source_id: Some(row.id),
        ..Filter::default()
    };
    let mut rows = deliveries::list(&s.pool, tenant, &filter, after, limit + 1)
        .await
        .map_err(|e| Problem::from_internal(&e))?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().and_then(|r| token(&(r.requested_at, r.id)))
    } else {
        None
    };
    Ok(Json(RecipientPage {
        items: rows
            .into_iter()
            .map(|d| Recipient {
                contact_id: d.contact_id,
                job_id: d.id,
                variant: d.variant,
                status: d.status,
                reason: d.reason,
                opens: d.opens,
                clicks: d.clicks,
                requested_at: d.requested_at,
                sent_at: d.sent_at,
            })
            .collect(),
        next,
    }))
}
