//! Journey queries: the list (status filter, name search, two sorts, keyset pages), one
//! journey with its draft and versions, one version's definition, the figures per version
//! and step, a journey's executions, one execution's history from the log (time travel),
//! and a contact's journeys.

use domain::{ExecutionId, JourneyId};
use http_kit::PathIds;
use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use axum::Json;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::journey::execution::Execution;
use event_store::reader::Until;
use http_kit::{Authenticated, Problem};
use projections::journeys::executions::ExecutionRow;
use projections::journeys::figures::Counters;
use projections::journeys::read::{self, ContactExecution, JourneyRow, ListQuery, Sort};
use projections::journeys::summaries::{SummaryRow, VersionRef};
use projections::journeys::versions::VersionDefRow;
use replay::inspect::{self, HistoryEvent};
use serde::Serialize;
use uuid::Uuid;

use crate::consistency::ConsistentAfter;
use crate::params::{token, Params};
use crate::QueryState;

const STATUSES: &[&str] = &["draft", "live", "paused", "archived"];
const EXECUTION_STATUSES: &[&str] = &["active", "waiting", "completed", "exited", "failed"];
/// The read models of `journeys` and of `journey_version_defs`.
const SUMMARIES: &str = "journeys";
const VERSIONS: &str = "journey_version_defs";

/// A page of journeys.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JourneyPage {
    pub items: Vec<JourneyRow>,
    /// Pass as `after` for the next page (same filters and sort); null on the last page.
    pub next: Option<String>,
}

/// A journey: lifecycle, draft, published versions, and what its executions did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JourneyDetail {
    pub id: Uuid,
    pub name: String,
    /// draft, live, paused or archived.
    pub status: String,
    /// The latest published version (null: none yet): new executions start on it.
    pub latest_version: Option<i32>,
    /// The draft's definition (what the next publish freezes).
    #[schema(value_type = Object)]
    pub draft: serde_json::Value,
    /// Published versions, oldest first.
    pub versions: Vec<VersionRef>,
    pub created_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    #[serde(flatten)]
    pub counts: Counters,
}

impl From<SummaryRow> for JourneyDetail {
    fn from(r: SummaryRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            status: r.status,
            latest_version: r.latest_version,
            draft: r.draft,
            versions: r.versions,
            created_at: r.created_at,
            published_at: r.published_at,
            updated_at: r.updated_at,
            counts: r.counts,
        }
    }
}

/// A step's figures.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StepStats {
    pub step: String,
    /// The step's type (`action_email`, `split_random`, …; null for a step the version's
    /// definition does not have).
    pub kind: Option<String>,
    /// Times the step completed or started a wait.
    pub runs: i64,
    /// Executions waiting at it now.
    pub waiting: i64,
    /// Times each branch was taken.
    pub branches: BTreeMap<String, i64>,
    /// Executions that took each branch and then converted (once per branch however often
    /// they took it).
    pub conversions: BTreeMap<String, i64>,
}

/// A version's figures.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VersionStats {
    pub version: i32,
    pub published_at: Option<DateTime<Utc>>,
    /// Its executions.
    pub totals: Counters,
    /// Every step of the version's definition, in its order (zeros where no execution went).
    pub steps: Vec<StepStats>,
}

/// A journey's figures.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JourneyStats {
    pub id: Uuid,
    pub status: String,
    /// Of every version, or of the one `version` names.
    pub totals: Counters,
    pub versions: Vec<VersionStats>,
}

/// A page of executions, newest entered first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExecutionPage {
    pub items: Vec<ExecutionRow>,
    pub next: Option<String>,
}

/// A page of a contact's executions, newest entered first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ContactJourneyPage {
    pub items: Vec<ContactExecution>,
    pub next: Option<String>,
}

/// An execution's history from the log and its state at a point of it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExecutionHistory {
    pub id: Uuid,
    pub journey_id: Uuid,
    /// The sequence of the last event `state` includes.
    pub at_sequence: i64,
    /// The execution after that event, folded with the domain's own `Execution::apply`.
    #[schema(value_type = Object)]
    pub state: serde_json::Value,
    /// Every event of the execution, oldest first.
    pub events: Vec<HistoryEvent>,
}

fn internal(e: sqlx::Error) -> Problem {
    Problem::from_internal(&e)
}

/// Journey `id` of `tenant`, once the `journeys` read model has passed the query's cursor.
async fn load(
    s: &QueryState,
    tenant: Uuid,
    consistency: &ConsistentAfter,
    id: JourneyId,
) -> Result<SummaryRow, Problem> {
    let id = id.0;
    consistency.wait(s, SUMMARIES).await?;
    read::get(&s.pool, tenant, id)
        .await
        .map_err(internal)?
        .ok_or_else(|| Problem::not_found("journey"))
}

fn sort(p: &mut Params) -> (Sort, bool) {
    let raw = p.get("sort").unwrap_or("created_at").to_owned();
    let (descending, name) = match raw.strip_prefix('-') {
        Some(n) => (true, n),
        None => (false, raw.as_str()),
    };
    match name {
        "created_at" => (Sort::CreatedAt, descending),
        "name" => (Sort::Name, descending),
        _ => {
            p.bad("sort", "created_at or name, with - for descending");
            (Sort::CreatedAt, false)
        }
    }
}

/// The list's page token: the sort it was made for, the key as text, the id.
type ListToken = (String, String, Uuid);

/// List journeys (any status, or those of `status`), in keyset pages.
#[utoipa::path(get, path = "/api/v1/journeys", tag = "journeys",
    params(
        ("status" = Option<Vec<String>>, Query, description = "Only these statuses (draft, live, paused, archived): repeated, or a comma list"),
        ("q" = Option<String>, Query, description = "Only journeys whose name contains this (case-insensitive)"),
        ("sort" = Option<String>, Query, description = "`created_at` (default) or `name`; a `-` prefix sorts descending"),
        ("limit" = Option<i64>, Query, description = "Page size, 1 to 500 (default 50)"),
        ("after" = Option<String>, Query, description = "The `next` token of the previous page (same filters and sort)"),
        ("consistent_after" = Option<String>, Query, description = "Wait until the read model has passed this cursor")),
    responses(
        (status = 200, description = "A page", body = JourneyPage),
        (status = 422, description = "Bad parameters (each named in `errors`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn list(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    RawQuery(raw): RawQuery,
) -> Result<Json<JourneyPage>, Problem> {
    let mut p = Params::parse(raw.as_deref());
    let limit = p.limit();
    let (sort, descending) = sort(&mut p);
    let sort_name = p.get("sort").unwrap_or("created_at").to_owned();
    let statuses = p.choices("status", STATUSES);
    let after = match p.token::<ListToken>("after") {
        Some((made_for, key, id)) if made_for == sort_name => Some((key, id)),
        Some(_) => {
            p.bad("after", "a token of a page in another order");
            None
        }
        None => None,
    };
    let name = p.get("q").map(str::to_owned);
    p.finish()?;
    let query = ListQuery {
        statuses,
        name,
        sort,
        descending,
        after,
        limit: limit + 1,
    };
    consistency.wait(&s, SUMMARIES).await?;
    let mut rows = read::list(&s.pool, caller.tenant_id, &query)
        .await
        .map_err(internal)?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last()
            .and_then(|(r, key)| token(&(&sort_name, key, r.id)))
    } else {
        None
    };
    Ok(Json(JourneyPage {
        items: rows.into_iter().map(|(r, _)| r).collect(),
        next,
    }))
}

/// One journey: status, draft, published versions, counters of its executions.
#[utoipa::path(get, path = "/api/v1/journeys/{id}", tag = "journeys",
    params(("id" = Uuid, Path, description = "Journey id"),
           ("consistent_after" = Option<String>, Query, description = "Wait until the read model has passed this cursor")),
    responses(
        (status = 200, description = "The journey", body = JourneyDetail),
        (status = 404, description = "No such journey", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn get(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    PathIds(id): PathIds<JourneyId>,
) -> Result<Json<JourneyDetail>, Problem> {
    let row = load(&s, caller.tenant_id, &consistency, id).await?;
    Ok(Json(row.into()))
}

/// One published version: its definition as published and the checked rules of its
/// conditions.
#[utoipa::path(get, path = "/api/v1/journeys/{id}/versions/{version}", tag = "journeys",
    params(("id" = Uuid, Path, description = "Journey id"),
           ("version" = i32, Path, description = "Version number"),
           ("consistent_after" = Option<String>, Query, description = "Wait until the read model has passed this cursor")),
    responses(
        (status = 200, description = "The version", body = VersionDefRow),
        (status = 404, description = "No such journey or version", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn get_version(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    PathIds((id, version)): PathIds<(JourneyId, String)>,
) -> Result<Json<VersionDefRow>, Problem> {
    let id = id.0;
    let version: i32 = version.parse().map_err(|_| Problem::not_found("version"))?;
    consistency.wait(&s, VERSIONS).await?;
    read::version(&s.pool, caller.tenant_id, id, version)
        .await
        .map_err(internal)?
        .map(Json)
        .ok_or_else(|| Problem::not_found("version"))
}

/// The steps of a version's definition, in order: (id, type).
fn steps_of(def: &VersionDefRow) -> Vec<(String, Option<String>)> {
    def.definition["steps"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .filter_map(|s| {
                    let id = s["id"].as_str()?.to_owned();
                    Some((id, s["type"].as_str().map(str::to_owned)))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A journey's figures: totals, and per version (`version`: one) its totals and each step's
/// runs, executions waiting, branches taken and conversions after each branch.
#[utoipa::path(get, path = "/api/v1/journeys/{id}/stats", tag = "journeys",
    params(("id" = Uuid, Path, description = "Journey id"),
           ("version" = Option<i32>, Query, description = "Only this version"),
           ("consistent_after" = Option<String>, Query, description = "Wait until the read models have passed this cursor")),
    responses(
        (status = 200, description = "The figures", body = JourneyStats),
        (status = 404, description = "No such journey or version", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad parameters (each named in `errors`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn stats(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    PathIds(id): PathIds<JourneyId>,
    RawQuery(raw): RawQuery,
) -> Result<Json<JourneyStats>, Problem> {
    let mut p = Params::parse(raw.as_deref());
    let only = p
        .positive("version")
        .map(|v| i32::try_from(v).unwrap_or(i32::MAX));
    p.finish()?;
    let tenant = caller.tenant_id;
    let row = load(&s, tenant, &consistency, id).await?;
    consistency.wait(&s, VERSIONS).await?;
    let defs = read::versions(&s.pool, tenant, row.id, only)
        .await
        .map_err(internal)?;
    let counts = read::version_stats(&s.pool, tenant, row.id, only)
        .await
        .map_err(internal)?;
    let mut steps = read::step_stats(&s.pool, tenant, row.id, only)
        .await
        .map_err(internal)?;
    let mut numbers: Vec<i32> = defs
        .iter()
        .map(|d| d.version)
        .chain(counts.iter().map(|c| c.version))
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    if only.is_some() && numbers.is_empty() {
        return Err(Problem::not_found("version"));
    }
    let mut versions = Vec::with_capacity(numbers.len());
    for n in numbers {
        let def = defs.iter().find(|d| d.version == n);
        let totals = counts
            .iter()
            .find(|c| c.version == n)
            .map(|c| c.counts.clone())
            .unwrap_or_default();
        // The definition's steps in order, then figures of any step it does not have.
        let mut out: Vec<StepStats> = def
            .map(steps_of)
            .unwrap_or_default()
            .into_iter()
            .map(|(step, kind)| StepStats {
                step,
                kind,
                runs: 0,
                waiting: 0,
                branches: BTreeMap::new(),
                conversions: BTreeMap::new(),
            })
            .collect();
        for f in steps.iter_mut().filter(|f| f.version == n) {
            let figures = StepStats {
                step: std::mem::take(&mut f.step),
                kind: None,
                runs: f.runs,
                waiting: f.waiting,
                branches: std::mem::take(&mut f.branches),
                conversions: std::mem::take(&mut f.conversions),
            };
            match out.iter_mut().find(|o| o.step == figures.step) {
                Some(o) => {
                    o.runs = figures.runs;
                    o.waiting = figures.waiting;
                    o.branches = figures.branches;
                    o.conversions = figures.conversions;
                }
                None => out.push(figures),
            }
        }
        versions.push(VersionStats {
            version: n,
            published_at: def.map(|d| d.published_at),
            totals,
            steps: out,
        });
    }
    let totals = match only {
        Some(_) => versions
            .first()
            .map(|v| v.totals.clone())
            .unwrap_or_default(),
        None => row.counts.clone(),
    };
    Ok(Json(JourneyStats {
        id: row.id,
        status: row.status,
        totals,
        versions,
    }))
}

/// A journey's executions (any status, or those of `status`), newest entered first, in
/// keyset pages.
#[utoipa::path(get, path = "/api/v1/journeys/{id}/executions", tag = "journeys",
    params(("id" = Uuid, Path, description = "Journey id"),
        ("status" = Option<Vec<String>>, Query, description = "Only these statuses (active, waiting, completed, exited, failed): repeated, or a comma list"),
        ("limit" = Option<i64>, Query, description = "Page size, 1 to 500 (default 50)"),
        ("after" = Option<String>, Query, description = "The `next` token of the previous page"),
        ("consistent_after" = Option<String>, Query, description = "Wait until the read model has passed this cursor")),
    responses(
        (status = 200, description = "A page", body = ExecutionPage),
        (status = 404, description = "No such journey", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad parameters (each named in `errors`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn executions(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    PathIds(id): PathIds<JourneyId>,
    RawQuery(raw): RawQuery,
) -> Result<Json<ExecutionPage>, Problem> {
    let mut p = Params::parse(raw.as_deref());
    let limit = p.limit();
    let statuses = p.choices("status", EXECUTION_STATUSES);
    let after = p.token::<(DateTime<Utc>, Uuid)>("after");
    p.finish()?;
    let tenant = caller.tenant_id;
    let row = load(&s, tenant, &consistency, id).await?;
    let mut items = read::executions(&s.pool, tenant, row.id, &statuses, after, limit + 1)
        .await
        .map_err(internal)?;
    let next = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().and_then(|x| token(&(x.entered_at, x.id)))
    } else {
        None
    };
    Ok(Json(ExecutionPage { items, next }))
}

/// One execution from the log: every event (sequence, type, time, payload, who caused it)
/// and its state — after its last event, or `at_sequence` (time travel) — folded with the
/// domain's own `apply`. Not a read model: no `consistent_after` needed.
#[utoipa::path(get, path = "/api/v1/journeys/{id}/executions/{execution_id}", tag = "journeys",
    params(("id" = Uuid, Path, description = "Journey id"),
           ("execution_id" = Uuid, Path, description = "Execution id"),
           ("at_sequence" = Option<i64>, Query, description = "The state after this event (from 1)")),
    responses(
        (status = 200, description = "The execution's history and state", body = ExecutionHistory),
        (status = 404, description = "No such execution of this journey", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad parameters (each named in `errors`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn execution(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    PathIds((journey, id)): PathIds<(JourneyId, ExecutionId)>,
    RawQuery(raw): RawQuery,
) -> Result<Json<ExecutionHistory>, Problem> {
    let mut p = Params::parse(raw.as_deref());
    let at = p.positive("at_sequence");
    p.finish()?;
    let not_found = || Problem::not_found("execution");
    let (journey, id) = (journey.0, id.0);
    let tenant = caller.tenant_id;
    let inspect = |until| inspect::inspect(&s.pool, tenant, Execution::TYPE, id, until);
    let whole = inspect(Until::End)
        .await
        .map_err(|e| Problem::from_internal(&e))?
        .ok_or_else(not_found)?;
    let of_journey = serde_json::from_value::<Execution>(whole.state.clone())
        .is_ok_and(|x| x.journey_id == journey);
    if !of_journey {
        return Err(not_found());
    }
    let then = match at {
        Some(n) if n < whole.version => inspect(Until::Sequence(n))
            .await
            .map_err(|e| Problem::from_internal(&e))?
            .ok_or_else(not_found)?,
        _ => whole.clone(),
    };
    Ok(Json(ExecutionHistory {
        id,
        journey_id: journey,
        at_sequence: then.version,
        state: then.state,
        events: whole.events,
    }))
}

/// The contact's journeys: its executions — and those of contacts merged into it — newest
/// entered first, with their journeys' names, in keyset pages. A merged contact's id answers
/// as its survivor.
#[utoipa::path(get, path = "/api/v1/contacts/{id}/journeys", tag = "contacts",
    params(("id" = Uuid, Path, description = "Contact id"),
        ("limit" = Option<i64>, Query, description = "Page size, 1 to 500 (default 50)"),
        ("after" = Option<String>, Query, description = "The `next` token of the previous page"),
        ("consistent_after" = Option<String>, Query, description = "Wait until the read models have passed this cursor")),
    responses(
        (status = 200, description = "A page", body = ContactJourneyPage),
        (status = 404, description = "No such contact", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad parameters (each named in `errors`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn of_contact(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    PathIds(id): PathIds<domain::ContactId>,
    RawQuery(raw): RawQuery,
) -> Result<Json<ContactJourneyPage>, Problem> {
    let mut p = Params::parse(raw.as_deref());
    let limit = p.limit();
    let after = p.token::<(DateTime<Utc>, Uuid)>("after");
    p.finish()?;
    let tenant = caller.tenant_id;
    let id = crate::resolve::contact(&s, tenant, &consistency, id).await?;
    consistency.wait(&s, "contacts").await?;
    consistency.wait(&s, SUMMARIES).await?;
    if projections::contacts::get(&s.pool, tenant, id)
        .await
        .map_err(internal)?
        .is_none()
    {
        return Err(Problem::not_found("contact"));
    }
    let mut contacts = projections::merges::merged_into(&s.pool, tenant, id)
        .await
        .map_err(internal)?;
    contacts.push(id);
    let mut items = read::of_contacts(&s.pool, tenant, &contacts, after, limit + 1)
        .await
        .map_err(internal)?;
    let next = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items
            .last()
            .and_then(|x| token(&(x.execution.entered_at, x.execution.id)))
    } else {
        None
    };
    Ok(Json(ContactJourneyPage { items, next }))
}
