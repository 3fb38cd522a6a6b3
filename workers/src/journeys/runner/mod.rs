//! The journey runner: claims due executions (`journey_runs`, the timer table) with
//! `FOR UPDATE SKIP LOCKED`, runs each through the engine (`domain::journey::advance`) with
//! the signals its inbox holds, and writes in the same transaction everything that follows:
//! the executions' events (one append for the batch), the delivery jobs their message steps
//! request (ids derived from the execution and the step run), entries into linked journeys,
//! balancer places, and the rows' new state, due time and signals listened for. A worker
//! that dies mid-batch leaves nothing half-done: the transaction rolls back and the rows are
//! due again. Contact changes (`action_update_contact`) go through the contacts write path
//! just before the commit; they only set values, so a batch run again records nothing new.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use commands::executor::Decided;
use commands::journeys::contact;
use commands::journeys::enter::{enter_in, load_version, EnterError, Entry, Via};
use commands::CommandState;
use cqrs_es::Aggregate;
use domain::delivery::{Request, Source};
use domain::journey::definition::{BalancedPath, Condition, ContactChange, Engagement, StepKind};
use domain::journey::execution::Signal;
use domain::journey::{advance, Action, Env, Execution, ExecutionEvent, Version};
use domain::segment::eval::ContactFacts;
use event_store::{Clock, EventMetadata};
use sqlx::PgConnection;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::triggers::Routed;
use super::JourneyError;

/// How the runner works.
#[derive(Debug, Clone)]
pub struct JourneyWorkerConfig {
    /// Executions per batch (one transaction).
    pub batch: i64,
    /// How often an idle runner looks for due timers (appends wake it sooner).
    pub poll: Duration,
    /// Runner loops per process (each claims its own batches).
    pub loops: usize,
}

impl Default for JourneyWorkerConfig {
    fn default() -> Self {
        Self {
            batch: 500,
            poll: Duration::from_millis(200),
            loops: 2,
        }
    }
}

pub(crate) fn metadata(tenant: Uuid) -> EventMetadata {
    EventMetadata {
        tenant_id: Some(tenant),
        actor: Some("system:journeys".to_owned()),
        correlation_id: Some(Uuid::now_v7()),
        causation_id: None,
        request_id: None,
        ip: None,
        user_agent: None,
    }
}

/// A claimed row.
#[derive(sqlx::FromRow)]
struct Claimed {
    tenant_id: Uuid,
    execution_id: Uuid,
    journey_id: Uuid,
    version: i32,
    contact_id: Uuid,
    seq: i64,
    state: sqlx::types::Json<Execution>,
}

/// Versions are immutable: kept once loaded.
type Versions = Arc<Mutex<HashMap<(Uuid, Uuid, u32), Arc<Version>>>>;

pub struct JourneyRunner {
    state: CommandState,
    clock: Clock,
    config: JourneyWorkerConfig,
    versions: Versions,
}

/// What one batch did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Ran {
    /// Executions run.
    pub executions: usize,
    /// Step runs (events naming a step).
    pub steps: usize,
}

impl JourneyRunner {
    pub fn new(state: CommandState, clock: Clock, config: JourneyWorkerConfig) -> Self {
        Self {
            state,
            clock,
            config,
            versions: Arc::default(),
        }
    }

    /// Runs batches until `cancel`; idle, it waits for a wake-up (appends of journeys and
    /// executions, through `wake`) or the poll interval.
    pub async fn run(self, wake: event_store::wakeup::Wakeup, cancel: CancellationToken) {
        let mut wake = wake.only(&[
            domain::journey::Journey::TYPE,
            domain::journey::Execution::TYPE,
        ]);
        while !cancel.is_cancelled() {
            if let Err(e) = super::triggers::run_schedules(
                &self.state.pool,
                &self.state.executions,
                self.clock.now(),
            )
            .await
            {
                tracing::warn!(error = %e, "journey schedules failed; retrying");
            }
            match self.step().await {
                Ok(r) if r.executions as i64 >= self.config.batch => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "journey batch failed; retrying"),
            }
            // Idle: sleep until the next timer is due (at most the poll interval), so a timer
            // fires within a batch's time of its moment rather than a poll's.
            let idle = self.until_next_due().await.unwrap_or(self.config.poll);
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = wake.wait(idle) => {}
            }
        }
    }

    /// How long until the next timer is due, at most the poll interval.
    async fn until_next_due(&self) -> Result<Duration, JourneyError> {
        let next: Option<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT min(due_at) FROM journey_runs WHERE due_at IS NOT NULL AND NOT held",
        )
        .fetch_one(&self.state.pool)
        .await?;
        Ok(match next {
            Some(t) => (t - self.clock.now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                // Rows due now that another loop holds: look again shortly, not in a spin.
                .max(Duration::from_millis(10))
                .min(self.config.poll),
            None => self.config.poll,
        })
    }

    async fn version(
        &self,
        conn: &mut PgConnection,
        tenant: Uuid,
        journey: Uuid,
        number: u32,
    ) -> Result<Option<Arc<Version>>, JourneyError> {
        let key = (tenant, journey, number);
        if let Some(v) = self.versions.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(Some(v));
        }
        let Some(v) = load_version(conn, tenant, journey, number).await? else {
            return Ok(None);
        };
        let v = Arc::new(v);
        if let Ok(mut m) = self.versions.lock() {
            m.insert(key, v.clone());
        }
        Ok(Some(v))
    }

    /// Runs one batch of due executions.
    pub async fn step(&self) -> Result<Ran, JourneyError> {
        let now = self.clock.now();
        let mut tx = self.state.pool.begin().await?;
        let claimed: Vec<Claimed> = sqlx::query_as(
            "SELECT tenant_id, execution_id, journey_id, version, contact_id, seq, state \
             FROM journey_runs WHERE due_at <= $1 AND NOT held \
             ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        )
        .bind(now)
        .bind(self.config.batch)
        .fetch_all(&mut *tx)
        .await?;
        if claimed.is_empty() {
            tx.commit().await?;
            return Ok(Ran::default());
        }
        let mut signals: HashMap<Uuid, Vec<(i64, Signal)>> = HashMap::new();
        let ids: Vec<Uuid> = claimed.iter().map(|c| c.execution_id).collect();
        let tenants: Vec<Uuid> = claimed.iter().map(|c| c.tenant_id).collect();
        let inbox: Vec<(i64, Uuid, sqlx::types::Json<Signal>)> = sqlx::query_as(
            "DELETE FROM journey_inbox i USING UNNEST($1::uuid[], $2::uuid[]) AS u(t, e) \
             WHERE i.tenant_id = u.t AND i.execution_id = u.e \
             RETURNING i.id, i.execution_id, i.signal",
        )
        .bind(&tenants)
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        for (id, exec, s) in inbox {
            signals.entry(exec).or_default().push((id, s.0));
        }
        for s in signals.values_mut() {
            s.sort_by_key(|(id, _)| *id);
        }
        let mut by_tenant: BTreeMap<Uuid, Vec<Claimed>> = BTreeMap::new();
        for c in claimed {
            by_tenant.entry(c.tenant_id).or_default().push(c);
        }
        let mut ran = Ran::default();
        let mut appended = false;
        let mut changes: Vec<(Uuid, Uuid, ContactChange, EventMetadata)> = Vec::new();
        for (tenant, rows) in by_tenant {
            let (r, a, c) = self
                .tenant_batch(&mut tx, tenant, rows, &signals, now)
                .await?;
            ran.executions += r.executions;
            ran.steps += r.steps;
            appended |= a;
            changes.extend(c);
        }
        // Contact changes last, just before the commit (each is idempotent: see the module).
        for (tenant, contact_id, change, meta) in &changes {
            if let Err(p) = contact::apply(&self.state, *tenant, *contact_id, change, meta).await {
                // A failure of ours rolls the batch back (it runs again); a change the contact
                // refuses (a value that no longer fits the fields, a contact gone) is logged,
                // and the step stays done.
                if p.status >= 500 {
                    return Err(JourneyError::Command(format!(
                        "contact change: {}",
                        p.title
                    )));
                }
                tracing::warn!(contact = %contact_id, problem = ?p.errors, detail = ?p.detail, "journey contact change refused");
            }
        }
        tx.commit().await?;
        if appended {
            self.state.notifier.poke();
        }
        Ok(ran)
    }

    async fn tenant_batch(
        &self,
        tx: &mut PgConnection,
        tenant: Uuid,
        rows: Vec<Claimed>,
        signals: &HashMap<Uuid, Vec<(i64, Signal)>>,
        now: DateTime<Utc>,
    ) -> Result<(Ran, bool, Vec<(Uuid, Uuid, ContactChange, EventMetadata)>), JourneyError> {
        let meta = metadata(tenant);
        // The versions the batch runs on.
        let mut versions: HashMap<(Uuid, u32), Arc<Version>> = HashMap::new();
        for r in &rows {
            let key = (r.journey_id, r.version as u32);
            if let std::collections::hash_map::Entry::Vacant(e) = versions.entry(key) {
                if let Some(v) = self.version(tx, tenant, key.0, key.1).await? {
                    e.insert(v);
                }
            }
        }
        // What the engine may ask: contacts, their segments and counted events, templates'
        // published versions, engagement with earlier messages, balancer places.
        let contact_ids: Vec<Uuid> = rows
            .iter()
            .map(|r| r.contact_id)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let rules: Vec<&domain::segment::Checked> =
            versions.values().flat_map(|v| v.rules.values()).collect();
        let uses_segments = rules.iter().any(|r| !r.segments().is_empty());
        let event_types: Vec<String> = rules
            .iter()
            .flat_map(|r| r.event_types())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let contacts =
            projections::contacts::get_many(&mut *tx, tenant, &contact_ids, false).await?;
        let mut members = if uses_segments {
            commands::segments::membership::current(tx, tenant, &contact_ids).await?
        } else {
            HashMap::new()
        };
        let mut counted: HashMap<Uuid, Vec<(String, DateTime<Utc>)>> = HashMap::new();
        for (c, t, at) in
            projections::contacts::timeline_events(&mut *tx, tenant, &contact_ids, &event_types)
                .await?
        {
            counted.entry(c).or_default().push((t, at));
        }
        let facts: HashMap<Uuid, ContactFacts> = contacts
            .iter()
            .map(|row| {
                (
                    row.id,
                    row.facts(
                        members.remove(&row.id).unwrap_or_default(),
                        counted.remove(&row.id).unwrap_or_default(),
                    ),
                )
            })
            .collect();
        // A contact the read model does not have yet (it trails the log by milliseconds) is
        // not gone: its executions wait a moment. Gone is erased or merged away.
        let missing: Vec<String> = contact_ids
            .iter()
            .filter(|c| !facts.contains_key(c))
            .map(|c| event_store::recorded::stream_id(tenant, *c))
            .collect();
        let lagging: BTreeSet<Uuid> = if missing.is_empty() {
            BTreeSet::new()
        } else {
            let last: Vec<(String, String)> = sqlx::query_as(
                "SELECT DISTINCT ON (aggregate_id) aggregate_id, event_type FROM events \
                 WHERE aggregate_type = 'contact' AND aggregate_id = ANY($1) \
                 ORDER BY aggregate_id, sequence DESC",
            )
            .bind(&missing)
            .fetch_all(&mut *tx)
            .await?;
            last.into_iter()
                .filter(|(_, t)| t != "ContactErased" && t != "ContactMergedInto")
                .filter_map(|(s, _)| event_store::recorded::entity_of(&s))
                .collect()
        };
        let org_zone: Option<String> = projections::organizations::get(&mut *tx, tenant)
            .await?
            .and_then(|o| o.settings.get("time_zone")?.as_str().map(str::to_owned));
        let mut templates: HashMap<Uuid, Option<u32>> = HashMap::new();
        for v in versions.values() {
            for s in &v.definition.steps {
                if let Some((_, m)) = s.kind.channel() {
                    if templates.contains_key(&m.template_id) {
                        continue;
                    }
                    let t = self
                        .state
                        .templates
                        .load(tenant, m.template_id)
                        .await
                        .map_err(|e| JourneyError::Command(e.to_string()))?;
                    let published = if t.live() { t.published_version } else { None };
                    templates.insert(m.template_id, published);
                }
            }
        }
        let watched_jobs: Vec<Uuid> = rows
            .iter()
            .filter(|r| {
                versions
                    .get(&(r.journey_id, r.version as u32))
                    .is_some_and(|v| has_message_condition(v))
            })
            .flat_map(|r| r.state.0.jobs.values().copied())
            .collect();
        let engagement: HashMap<Uuid, (String, i32, i32)> = if watched_jobs.is_empty() {
            HashMap::new()
        } else {
            let found: Vec<(Uuid, String, i32, i32)> = sqlx::query_as(
                "SELECT id, status, opens, clicks FROM deliveries WHERE tenant_id = $1 AND id = ANY($2)",
            )
            .bind(tenant)
            .bind(&watched_jobs)
            .fetch_all(&mut *tx)
            .await?;
            found
                .into_iter()
                .map(|(id, s, o, c)| (id, (s, o, c)))
                .collect()
        };
        let mut balancer = Balancer::load(tx, tenant, &versions, now).await?;

        let mut decided: Vec<Decided<ExecutionEvent>> = Vec::new();
        let mut jobs: Vec<(Uuid, Request, DateTime<Utc>)> = Vec::new();
        let mut links: BTreeMap<Uuid, Vec<(Uuid, Entry)>> = BTreeMap::new();
        let mut changes = Vec::new();
        let mut emitted: Vec<Routed> = Vec::new();
        let (mut upd_ids, mut upd_seq, mut upd_state, mut upd_due, mut upd_listens) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut finished: Vec<(Uuid, Uuid, Uuid)> = Vec::new();
        let mut ran = Ran::default();
        for r in rows {
            let mut state = r.state.0;
            if lagging.contains(&r.contact_id) {
                // Its signals go back to the inbox for the next run.
                for (_, sig) in signals.get(&r.execution_id).into_iter().flatten() {
                    sqlx::query(
                        "INSERT INTO journey_inbox (tenant_id, execution_id, signal) VALUES ($1, $2, $3)",
                    )
                    .bind(tenant)
                    .bind(r.execution_id)
                    .bind(sqlx::types::Json(sig))
                    .execute(&mut *tx)
                    .await?;
                }
                upd_ids.push(r.execution_id);
                upd_seq.push(r.seq);
                upd_due.push(Some(now + chrono::Duration::seconds(1)));
                upd_listens.push(
                    versions
                        .get(&(r.journey_id, r.version as u32))
                        .map(|v| state.listens(v))
                        .unwrap_or_default()
                        .join("\u{1f}"),
                );
                upd_state.push(
                    serde_json::to_value(&state)
                        .map_err(|e| JourneyError::Command(e.to_string()))?,
                );
                continue;
            }
            ran.executions += 1;
            let incoming: Vec<Signal> = signals
                .get(&r.execution_id)
                .map(|v| v.iter().map(|(_, s)| s.clone()).collect())
                .unwrap_or_default();
            let events = match versions.get(&(r.journey_id, r.version as u32)) {
                Some(v) => {
                    let mut env = BatchEnv {
                        now,
                        facts: facts.get(&r.contact_id),
                        zone: domain::journey::timing::zone(
                            facts
                                .get(&r.contact_id)
                                .and_then(|f| f.time_zone.as_deref()),
                            org_zone.as_deref(),
                        ),
                        templates: &templates,
                        engagement: &engagement,
                        balancer: &mut balancer,
                        journey: r.journey_id,
                    };
                    advance(v, r.execution_id, &state, &incoming, &mut env)
                }
                None => vec![ExecutionEvent::JourneyFailed {
                    step: state.at.clone().unwrap_or_default(),
                    error: format!("version {} of the journey is missing", r.version),
                    at: now,
                }],
            };
            for (i, e) in events.iter().enumerate() {
                if e.step().is_some() && !matches!(e, ExecutionEvent::JourneyExited { .. }) {
                    ran.steps += 1;
                }
                if let ExecutionEvent::JourneyActionRequested { step, action, .. } = e {
                    match action {
                        Action::Message {
                            channel,
                            job_id,
                            template_id,
                            template_version,
                            provider_id,
                            from,
                            reply_to,
                            due_at,
                        } => jobs.push((
                            *job_id,
                            Request {
                                channel: *channel,
                                contact_id: Some(r.contact_id),
                                to: String::new(),
                                template_id: *template_id,
                                template_version: *template_version,
                                source: Source::Journey {
                                    journey_id: r.journey_id,
                                    execution_id: r.execution_id,
                                    step_id: step.clone(),
                                },
                                data: serde_json::json!({ "journey": state.data }),
                                from: from.clone(),
                                reply_to: reply_to.clone(),
                                provider_id: *provider_id,
                            },
                            *due_at,
                        )),
                        Action::UpdateContact { change } => {
                            let mut m = meta.clone();
                            m.actor = Some("system:journeys".to_owned());
                            m.causation_id = Some(r.execution_id);
                            changes.push((tenant, r.contact_id, change.clone(), m));
                        }
                        Action::Enter {
                            journey_id,
                            execution_id,
                        } => links.entry(*journey_id).or_default().push((
                            r.execution_id,
                            Entry {
                                contact_id: r.contact_id,
                                execution_id: *execution_id,
                            },
                        )),
                        Action::EmitEvent { name, properties } => emitted.push(Routed {
                            contact_id: r.contact_id,
                            signal: Signal {
                                name: name.clone(),
                                properties: serde_json::Value::Object(properties.clone()),
                                at: now,
                            },
                            source: Uuid::new_v5(
                                &r.execution_id,
                                format!("emit:{}", r.seq as usize + i).as_bytes(),
                            ),
                            wakes_only: false,
                        }),
                    }
                }
                state.apply(e.clone());
                decided.push(Decided {
                    id: r.execution_id,
                    version: r.seq as usize + i,
                    event: e.clone(),
                });
            }
            let seq = r.seq + events.len() as i64;
            if state.status.finished() {
                finished.push((r.execution_id, r.journey_id, r.contact_id));
            } else {
                let listens = versions
                    .get(&(r.journey_id, r.version as u32))
                    .map(|v| state.listens(v))
                    .unwrap_or_default();
                upd_ids.push(r.execution_id);
                upd_seq.push(seq);
                upd_due.push(state.due_at());
                upd_listens.push(listens.join("\u{1f}"));
                upd_state.push(
                    serde_json::to_value(&state)
                        .map_err(|e| JourneyError::Command(e.to_string()))?,
                );
            }
        }
        let appended = !decided.is_empty();
        self.state
            .executions
            .append_decided(tx, tenant, &decided, &meta)
            .await?;
        if !jobs.is_empty() {
            commands::delivery::jobs::request_each_in(tx, tenant, &meta, &jobs, false).await?;
        }
        for (journey, entries) in links {
            for (from, entry) in entries {
                match enter_in(
                    tx,
                    &self.state.executions,
                    tenant,
                    journey,
                    &Via::Link(from),
                    &[entry],
                    &meta,
                    now,
                )
                .await
                {
                    Ok(_) => {}
                    Err(EnterError::NotLive) | Err(EnterError::NoTrigger(_)) => {
                        tracing::info!(%journey, "link to a journey that is not live: nobody entered");
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        balancer.save(tx, tenant).await?;
        let updated = !upd_ids.is_empty();
        if updated {
            sqlx::query(
                "UPDATE journey_runs r SET seq = u.seq, state = u.state, due_at = u.due, \
                   listens = string_to_array(u.listens, E'\\x1f') \
                 FROM UNNEST($2::uuid[], $3::bigint[], $4::jsonb[], $5::timestamptz[], $6::text[]) \
                   AS u(id, seq, state, due, listens) \
                 WHERE r.tenant_id = $1 AND r.execution_id = u.id",
            )
            .bind(tenant)
            .bind(&upd_ids)
            .bind(&upd_seq)
            .bind(&upd_state)
            .bind(&upd_due)
            .bind(&upd_listens)
            .execute(&mut *tx)
            .await?;
        }
        if !finished.is_empty() {
            let ids: Vec<Uuid> = finished.iter().map(|f| f.0).collect();
            let journeys: Vec<Uuid> = finished.iter().map(|f| f.1).collect();
            let contacts: Vec<Uuid> = finished.iter().map(|f| f.2).collect();
            sqlx::query("DELETE FROM journey_runs WHERE tenant_id = $1 AND execution_id = ANY($2)")
                .bind(tenant)
                .bind(&ids)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE journey_entries e SET active = greatest(e.active - u.n, 0) \
                 FROM (SELECT j, c, count(*) AS n FROM UNNEST($2::uuid[], $3::uuid[]) AS x(j, c) \
                       GROUP BY j, c) AS u \
                 WHERE e.tenant_id = $1 AND e.journey_id = u.j AND e.contact_id = u.c",
            )
            .bind(tenant)
            .bind(&journeys)
            .bind(&contacts)
            .execute(&mut *tx)
            .await?;
        }
        // Custom events that `event` steps emitted reach other executions and triggers like
        // recorded ones (after the rows above, so a signal to one of them makes it due).
        if !emitted.is_empty() {
            super::triggers::route(tx, &self.state.executions, tenant, &emitted, now).await?;
        }
        Ok((ran, appended, changes))
    }
}

fn has_message_condition(v: &Version) -> bool {
    v.definition.steps.iter().any(|s| match &s.kind {
        StepKind::SplitConditional(c) => matches!(c, Condition::Message { .. }),
        StepKind::Gate(g) => matches!(g.condition, Condition::Message { .. }),
        _ => false,
    })
}

/// What the engine asks, answered from what the batch loaded.
struct BatchEnv<'a> {
    now: DateTime<Utc>,
    facts: Option<&'a ContactFacts>,
    zone: Tz,
    templates: &'a HashMap<Uuid, Option<u32>>,
    engagement: &'a HashMap<Uuid, (String, i32, i32)>,
    balancer: &'a mut Balancer,
    journey: Uuid,
}

impl Env for BatchEnv<'_> {
    fn now(&self) -> DateTime<Utc> {
        self.now
    }

    fn facts(&self) -> Option<&ContactFacts> {
        self.facts
    }

    fn time_zone(&self) -> Tz {
        self.zone
    }

    fn engaged(&self, job: Uuid, engagement: Engagement) -> bool {
        let Some((status, opens, clicks)) = self.engagement.get(&job) else {
            return false;
        };
        match engagement {
            Engagement::Delivered => status == "delivered" || *opens > 0 || *clicks > 0,
            Engagement::Opened => *opens > 0 || *clicks > 0,
            Engagement::Clicked => *clicks > 0,
        }
    }

    fn template_version(&self, template: Uuid) -> Option<u32> {
        self.templates.get(&template).copied().flatten()
    }

    fn admit(&mut self, step: &str, path: &BalancedPath, now: DateTime<Utc>) -> bool {
        self.balancer.admit(self.journey, step, path, now)
    }
}

/// A balancer path's window: (journey, step, path, window start).
type PathWindow = (Uuid, String, String, DateTime<Utc>);

/// Balancer places per path and window (taken, changed by this batch), locked for the batch.
#[derive(Default)]
struct Balancer {
    taken: HashMap<PathWindow, (i32, bool)>,
}

impl Balancer {
    /// Locks (creating them) the current window's rows of every balancer path of `versions`.
    async fn load(
        conn: &mut PgConnection,
        tenant: Uuid,
        versions: &HashMap<(Uuid, u32), Arc<Version>>,
        now: DateTime<Utc>,
    ) -> Result<Self, JourneyError> {
        let mut out = Self::default();
        for ((journey, _), v) in versions {
            for s in &v.definition.steps {
                let StepKind::Balancer(b) = &s.kind else {
                    continue;
                };
                for p in &b.paths {
                    let window = p.per.start(now);
                    let key = (*journey, s.id.clone(), p.key.clone(), window);
                    if out.taken.contains_key(&key) {
                        continue;
                    }
                    sqlx::query(
                        "INSERT INTO journey_balancer (tenant_id, journey_id, step, path, window_start) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    )
                    .bind(tenant)
                    .bind(journey)
                    .bind(&s.id)
                    .bind(&p.key)
                    .bind(window)
                    .execute(&mut *conn)
                    .await?;
                    let (taken,): (i32,) = sqlx::query_as(
                        "SELECT taken FROM journey_balancer WHERE tenant_id = $1 AND journey_id = $2 \
                         AND step = $3 AND path = $4 AND window_start = $5 FOR UPDATE",
                    )
                    .bind(tenant)
                    .bind(journey)
                    .bind(&s.id)
                    .bind(&p.key)
                    .bind(window)
                    .fetch_one(&mut *conn)
                    .await?;
                    out.taken.insert(key, (taken, false));
                }
            }
        }
        Ok(out)
    }

    fn admit(
        &mut self,
        journey: Uuid,
        step: &str,
        path: &BalancedPath,
        now: DateTime<Utc>,
    ) -> bool {
        let key = (
            journey,
            step.to_owned(),
            path.key.clone(),
            path.per.start(now),
        );
        let Some((taken, dirty)) = self.taken.get_mut(&key) else {
            return false;
        };
        if (*taken as i64) < i64::from(path.rate_limit) {
            *taken += 1;
            *dirty = true;
            true
        } else {
            false
        }
    }

    async fn save(&self, conn: &mut PgConnection, tenant: Uuid) -> Result<(), JourneyError> {
        for ((journey, step, path, window), (taken, dirty)) in &self.taken {
            if !dirty {
                continue;
            }
            sqlx::query(
                "UPDATE journey_balancer SET taken = $6 WHERE tenant_id = $1 AND journey_id = $2 \
                 AND step = $3 AND path = $4 AND window_start = $5",
            )
            .bind(tenant)
            .bind(journey)
            .bind(step)
            .bind(path)
            .bind(window)
            .bind(taken)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}
