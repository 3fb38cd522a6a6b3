//! How contacts get into journeys and how what they do reaches executions in flight.
//!
//! The **trigger follower** reads the log (its own checkpoint, `journey_triggers`) and turns
//! events into signals about a contact: a custom event (`ContactEventRecorded`) is its name
//! with its properties; a segment entry or exit is `segment_entered:<id>` /
//! `segment_exited:<id>`; any change to the contact is also [`CHANGED`] (what gates wait on).
//! [`route`] delivers signals, in the caller's transaction: to the inbox of every execution of
//! the contact that listens for it (made due now), and as entries into live journeys whose
//! triggers match (execution ids derived from the event, so nothing enters twice). The
//! checkpoint moves in the same transaction. The runner routes the custom events `event`
//! steps emit through the same [`route`], in its own batch's transaction.
//!
//! **Schedules** ([`run_schedules`]): a schedule trigger whose `next_run_at` came enters every
//! member of its segment and moves to its next occurrence, in one transaction.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use commands::executor::Executor;
use commands::journeys::enter::{enter_in, live_version, EnterError, Entry, Via};
use cqrs_es::Aggregate;
use domain::contact::Contact;
use domain::journey::definition::{properties_match, segment_signal};
use domain::journey::execution::{Signal, CHANGED};
use domain::journey::{Execution, TriggerKind};
use domain::segment::SegmentMembership;
use event_store::follow::{follow, Follower};
use event_store::source::{Batch, EventSource};
use event_store::wakeup::Notifier;
use event_store::{checkpoint, Clock, Cursor, RecordedEvent};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::runner::metadata;
use super::JourneyError;

/// The follower's checkpoint.
pub const CHECKPOINT: &str = "journey_triggers";

/// How long a batch waits for the contacts read model before it is retried.
const CATCH_UP: Duration = Duration::from_secs(30);

/// A signal about a contact, and the id of the log event it came from (entries derive their
/// execution ids from it).
#[derive(Debug, Clone)]
pub struct Routed {
    pub contact_id: Uuid,
    pub signal: Signal,
    pub source: Uuid,
    /// Only executions listen for it (a [`CHANGED`]); it enters nobody.
    pub wakes_only: bool,
}

/// The signals `events` (revealed) carry, by tenant.
fn signals_of(events: &[RecordedEvent]) -> BTreeMap<Uuid, Vec<Routed>> {
    let mut out: BTreeMap<Uuid, Vec<Routed>> = BTreeMap::new();
    for e in events {
        let Some(contact) = e.entity_id() else {
            continue;
        };
        let mut push = |signal: Signal, wakes_only: bool| {
            out.entry(e.tenant_id).or_default().push(Routed {
                contact_id: contact,
                signal,
                source: e.event_id,
                wakes_only,
            })
        };
        if e.aggregate_type == Contact::TYPE {
            if e.event_type == "ContactEventRecorded" {
                let v: serde_json::Value = e.decode().unwrap_or_default();
                let body = &v["ContactEventRecorded"];
                if let Some(name) = body["name"].as_str() {
                    push(
                        Signal {
                            name: name.to_owned(),
                            properties: body["properties"].clone(),
                            at: e.recorded_at,
                        },
                        false,
                    );
                }
            }
            push(
                Signal {
                    name: CHANGED.to_owned(),
                    properties: serde_json::Value::Null,
                    at: e.recorded_at,
                },
                true,
            );
        } else if e.aggregate_type == SegmentMembership::TYPE {
            let v: serde_json::Value = e.decode().unwrap_or_default();
            let (entered, body) = match e.event_type.as_str() {
                "SegmentEntered" => (true, &v["SegmentEntered"]),
                "SegmentExited" => (false, &v["SegmentExited"]),
                _ => continue,
            };
            let Some(segment) = body["segment_id"].as_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            push(
                Signal {
                    name: segment_signal(entered, segment),
                    properties: serde_json::Value::Null,
                    at: e.recorded_at,
                },
                false,
            );
            push(
                Signal {
                    name: CHANGED.to_owned(),
                    properties: serde_json::Value::Null,
                    at: e.recorded_at,
                },
                true,
            );
        }
    }
    out
}

/// Delivers `signals` of `tenant` in the caller's transaction: to the inboxes of the
/// contacts' executions that listen for them, and as entries into live journeys whose
/// triggers they match. Whether anything was appended.
pub async fn route(
    conn: &mut PgConnection,
    executions: &Executor<Execution>,
    tenant: Uuid,
    signals: &[Routed],
    now: DateTime<Utc>,
) -> Result<bool, JourneyError> {
    if signals.is_empty() {
        return Ok(false);
    }
    let contacts: Vec<Uuid> = signals.iter().map(|s| s.contact_id).collect();
    let names: Vec<&str> = signals.iter().map(|s| s.signal.name.as_str()).collect();
    let bodies: Vec<serde_json::Value> = signals
        .iter()
        .map(|s| serde_json::to_value(&s.signal).unwrap_or_default())
        .collect();
    sqlx::query(
        "WITH sent AS ( \
           INSERT INTO journey_inbox (tenant_id, execution_id, signal) \
           SELECT r.tenant_id, r.execution_id, u.signal \
           FROM UNNEST($2::uuid[], $3::text[], $4::jsonb[]) WITH ORDINALITY AS u(contact, name, signal, n) \
           JOIN journey_runs r ON r.tenant_id = $1 AND r.contact_id = u.contact \
           WHERE u.name = ANY(r.listens) ORDER BY u.n \
           RETURNING execution_id) \
         UPDATE journey_runs SET due_at = $5 \
         WHERE tenant_id = $1 AND execution_id IN (SELECT execution_id FROM sent)",
    )
    .bind(tenant)
    .bind(&contacts)
    .bind(&names)
    .bind(&bodies)
    .bind(now)
    .execute(&mut *conn)
    .await?;

    // Entries: triggers of live journeys that these signals match.
    let entering: Vec<&Routed> = signals.iter().filter(|s| !s.wakes_only).collect();
    if entering.is_empty() {
        return Ok(false);
    }
    let event_names: Vec<&str> = entering.iter().map(|s| s.signal.name.as_str()).collect();
    let segments: Vec<Uuid> = entering
        .iter()
        .filter_map(|s| s.signal.name.strip_prefix("segment_entered:"))
        .filter_map(|s| s.parse().ok())
        .collect();
    let triggers: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT t.journey_id, t.trigger_id FROM journey_triggers t \
         JOIN journey_states s ON s.tenant_id = t.tenant_id AND s.journey_id = t.journey_id \
         WHERE t.tenant_id = $1 AND s.status = 'live' \
           AND ((t.kind = 'event' AND t.event_name = ANY($2)) \
             OR (t.kind = 'segment_entered' AND t.segment_id = ANY($3)))",
    )
    .bind(tenant)
    .bind(&event_names)
    .bind(&segments)
    .fetch_all(&mut *conn)
    .await?;
    let mut appended = false;
    let mut by_journey: BTreeMap<Uuid, BTreeSet<String>> = BTreeMap::new();
    for (j, t) in triggers {
        by_journey.entry(j).or_default().insert(t);
    }
    let meta = metadata(tenant);
    for (journey, trigger_ids) in by_journey {
        let Some(version) = live_version(conn, tenant, journey).await? else {
            continue;
        };
        for trigger in version
            .definition
            .triggers
            .iter()
            .filter(|t| trigger_ids.contains(&t.id))
        {
            let entries: Vec<Entry> = entering
                .iter()
                .filter(|s| match &trigger.kind {
                    TriggerKind::Event { name, conditions } => {
                        s.signal.name == *name && properties_match(conditions, &s.signal.properties)
                    }
                    TriggerKind::SegmentEntered { segment_id } => {
                        s.signal.name == segment_signal(true, *segment_id)
                    }
                    _ => false,
                })
                .map(|s| Entry {
                    contact_id: s.contact_id,
                    execution_id: Uuid::new_v5(
                        &journey,
                        format!("{}:{}:{}", s.source, trigger.id, s.contact_id).as_bytes(),
                    ),
                })
                .collect();
            if entries.is_empty() {
                continue;
            }
            // One contact per call: the same contact may enter twice from two events of a
            // batch (the re-entry policy decides), which one statement cannot hold.
            let mut seen = BTreeSet::new();
            let (first, rest): (Vec<Entry>, Vec<Entry>) =
                entries.into_iter().partition(|e| seen.insert(e.contact_id));
            for batch in std::iter::once(first).chain(rest.into_iter().map(|e| vec![e])) {
                match enter_in(
                    conn,
                    executions,
                    tenant,
                    journey,
                    &Via::Trigger(trigger.id.clone()),
                    &batch,
                    &meta,
                    now,
                )
                .await
                {
                    Ok(done) => appended |= !done.entered.is_empty(),
                    Err(EnterError::NotLive) | Err(EnterError::NoTrigger(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    Ok(appended)
}

impl Follower for TriggerFollower {
    type Error = JourneyError;

    fn checkpoint(&self) -> &str {
        CHECKPOINT
    }

    async fn step(&mut self, _at: Cursor, batch: &Batch) -> Result<Cursor, JourneyError> {
        TriggerFollower::step(self, &batch.events).await
    }
}

pub struct TriggerFollower {
    /// Cancelled when the follower stops: a batch waiting for a read model gives up.
    stop: CancellationToken,
    pool: PgPool,
    clock: Clock,
    notifier: Notifier,
    executions: std::sync::Arc<Executor<Execution>>,
}

impl TriggerFollower {
    pub fn new(
        pool: PgPool,
        clock: Clock,
        executions: std::sync::Arc<Executor<Execution>>,
    ) -> Self {
        Self {
            stop: CancellationToken::new(),
            notifier: Notifier::start(pool.clone()),
            pool,
            clock,
            executions,
        }
    }

    /// Follows `source` until `cancel`; a failing batch is retried, never skipped.
    pub async fn run(mut self, source: Box<dyn EventSource>, cancel: CancellationToken) {
        self.stop = cancel.clone();
        follow(self.pool.clone(), self, source, cancel).await;
    }

    /// Handles one batch; returns the checkpoint after it.
    pub async fn step(&self, events: &[RecordedEvent]) -> Result<Cursor, JourneyError> {
        let Some(last) = events.last().map(|e| e.cursor) else {
            return Ok(checkpoint::load(&self.pool, CHECKPOINT).await?);
        };
        let relevant = |e: &RecordedEvent| {
            e.aggregate_type == Contact::TYPE || e.aggregate_type == SegmentMembership::TYPE
        };
        if !events.iter().any(relevant) {
            checkpoint::advance(&self.pool, CHECKPOINT, last).await?;
            return Ok(last);
        }
        let mut conn = self.pool.acquire().await?;
        let revealed = event_store::shred::reveal(&mut conn, events, |e| {
            e.event_type == "ContactEventRecorded"
        })
        .await?;
        drop(conn);
        let events = revealed.as_deref().unwrap_or(events);
        let by_tenant = signals_of(events);
        // Gates re-check their condition on the contacts read model: let it have the batch.
        let mut gates_waiting = false;
        for (tenant, signals) in &by_tenant {
            let contacts: Vec<Uuid> = signals.iter().map(|s| s.contact_id).collect();
            let (waiting,): (bool,) = sqlx::query_as(
                "SELECT EXISTS (SELECT 1 FROM journey_runs WHERE tenant_id = $1 \
                   AND contact_id = ANY($2) AND $3 = ANY(listens))",
            )
            .bind(tenant)
            .bind(&contacts)
            .bind(CHANGED)
            .fetch_one(&self.pool)
            .await?;
            gates_waiting |= waiting;
        }
        if gates_waiting
            && !projections::status::wait_unless_stopped(
                &self.pool, "contacts", last, CATCH_UP, &self.stop,
            )
            .await?
        {
            return Err(JourneyError::Lagging("contacts"));
        }
        let now = self.clock.now();
        let mut tx = self.pool.begin().await?;
        let at = checkpoint::lock(&mut tx, CHECKPOINT).await?;
        if at >= last {
            tx.commit().await?;
            return Ok(at);
        }
        for (tenant, signals) in &by_tenant {
            route(&mut tx, &self.executions, *tenant, signals, now).await?;
        }
        checkpoint::advance(&mut *tx, CHECKPOINT, last).await?;
        tx.commit().await?;
        // Executions were made due (and entries appended): wake the runners and the tails.
        self.notifier.poke();
        Ok(last)
    }
}

/// Runs schedule triggers that came due: enters their segments' members and moves each to
/// its next occurrence. The number of triggers run.
pub async fn run_schedules(
    pool: &PgPool,
    executions: &Executor<Execution>,
    now: DateTime<Utc>,
) -> Result<usize, JourneyError> {
    let mut tx = pool.begin().await?;
    let due: Vec<(Uuid, Uuid, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT tenant_id, journey_id, trigger_id, next_run_at FROM journey_triggers \
         WHERE kind = 'schedule' AND next_run_at <= $1 \
         ORDER BY next_run_at LIMIT 10 FOR UPDATE SKIP LOCKED",
    )
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    let mut ran = 0;
    for (tenant, journey, trigger_id, occurrence) in due {
        let version = live_version(&mut tx, tenant, journey).await?;
        let trigger = version
            .as_ref()
            .and_then(|v| v.definition.triggers.iter().find(|t| t.id == trigger_id));
        let Some(TriggerKind::Schedule {
            segment_id,
            recurrence,
        }) = trigger.map(|t| &t.kind)
        else {
            // Paused (or the trigger is gone): look again in a minute.
            sqlx::query(
                "UPDATE journey_triggers SET next_run_at = $4 \
                 WHERE tenant_id = $1 AND journey_id = $2 AND trigger_id = $3",
            )
            .bind(tenant)
            .bind(journey)
            .bind(&trigger_id)
            .bind(now + chrono::Duration::minutes(1))
            .execute(&mut *tx)
            .await?;
            continue;
        };
        let members: Vec<(Uuid,)> = sqlx::query_as(
            "SELECT contact_id FROM segment_members WHERE tenant_id = $1 AND segment_id = $2",
        )
        .bind(tenant)
        .bind(segment_id)
        .fetch_all(&mut *tx)
        .await?;
        let meta = metadata(tenant);
        for page in members.chunks(5000) {
            let entries: Vec<Entry> = page
                .iter()
                .map(|(c,)| Entry {
                    contact_id: *c,
                    execution_id: Uuid::new_v5(
                        &journey,
                        format!("schedule:{trigger_id}:{}:{c}", occurrence.timestamp()).as_bytes(),
                    ),
                })
                .collect();
            enter_in(
                &mut tx,
                executions,
                tenant,
                journey,
                &Via::Trigger(trigger_id.clone()),
                &entries,
                &meta,
                now,
            )
            .await?;
        }
        sqlx::query(
            "UPDATE journey_triggers SET next_run_at = $4 \
             WHERE tenant_id = $1 AND journey_id = $2 AND trigger_id = $3",
        )
        .bind(tenant)
        .bind(journey)
        .bind(&trigger_id)
        .bind(recurrence.next_after(occurrence.max(now)))
        .execute(&mut *tx)
        .await?;
        ran += 1;
    }
    tx.commit().await?;
    Ok(ran)
}
