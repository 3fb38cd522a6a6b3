//! The segment evaluator: follows the log and keeps dynamic segments current.
//!
//! For each batch of events it finds the contacts whose segments may have changed — the
//! contact's own events, its membership events when some rule looks at other segments, and
//! events on its timeline that some rule counts — waits until the contacts read model (and
//! the timeline, when rules count events) has applied the batch, decides each contact's
//! dynamic segments in memory, and appends the entries and exits together with its own
//! checkpoint, in one transaction: a batch is handled exactly once in effect. Segments
//! created, changed or deleted are queued for the [`super::refresher`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use cqrs_es::Aggregate;
use domain::contact::Contact;
use domain::identity::user::PLATFORM_TENANT;
use domain::segment::{SegmentKind, SegmentMembership};
use event_store::follow::{follow, Follower};
use event_store::source::{Batch, EventSource};
use event_store::wakeup::Notifier;
use event_store::{checkpoint, Clock, Cursor, RecordedEvent};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::definitions::{Definitions, Interest};
use super::{decide::decide, metadata, WorkerError};
use commands::segments::membership;

/// The evaluator's checkpoint.
pub const CHECKPOINT: &str = "segment_evaluator";

/// How long a batch waits for the read models it reads to catch up before it is retried.
const CATCH_UP: Duration = Duration::from_secs(30);

pub struct Evaluator {
    pool: PgPool,
    clock: Clock,
    notifier: Notifier,
    definitions: Definitions,
    /// Segments to queue for a full refresh, kept until a batch commits (a failed batch is
    /// retried with its definitions already folded in).
    refresh: super::definitions::Changed,
    /// Cancelled when the evaluator stops: a batch waiting for a read model gives up.
    stop: CancellationToken,
}

impl Evaluator {
    pub async fn new(pool: PgPool, clock: Clock) -> Result<Self, WorkerError> {
        Ok(Self {
            definitions: Definitions::load(&pool).await?,
            notifier: Notifier::start(pool.clone()),
            refresh: Default::default(),
            stop: CancellationToken::new(),
            pool,
            clock,
        })
    }

    /// Feeds the evaluator from `source` until `cancel`; a failing batch is retried, never
    /// skipped.
    pub async fn run(mut self, source: Box<dyn EventSource>, cancel: CancellationToken) {
        self.stop = cancel.clone();
        follow(self.pool.clone(), self, source, cancel).await;
    }

    /// Handles one batch; returns the checkpoint after it.
    pub async fn step(&mut self, events: &[RecordedEvent]) -> Result<Cursor, WorkerError> {
        let Some(last) = events.last().map(|e| e.cursor) else {
            return Ok(checkpoint::load(&self.pool, CHECKPOINT).await?);
        };
        let changed = self.definitions.apply(events)?;
        self.refresh.extend(changed);
        let touched = self.touched(events);
        if !touched.is_empty() {
            self.catch_up("contacts", last).await?;
            if touched
                .keys()
                .any(|t| !self.definitions.interest(*t).event_types.is_empty())
            {
                self.catch_up("contact_timeline", last).await?;
            }
        }
        let now = self.clock.now();
        let mut tx = self.pool.begin().await?;
        let at = checkpoint::lock(&mut tx, CHECKPOINT).await?;
        if at >= last {
            tx.commit().await?;
            return Ok(at);
        }
        let mut appended = false;
        let merges = merges(events);
        for (tenant, ids) in &touched {
            let ids: Vec<Uuid> = ids.iter().copied().collect();
            let segments = self.definitions.dynamic(*tenant);
            // A merged contact's static lists carry over to its survivor (read before the
            // decisions below take the merged contact out of everything).
            let mut carried: Vec<(Uuid, BTreeSet<Uuid>)> = Vec::new();
            for (survivor, source) in merges.iter().filter(|m| m.0 == *tenant).map(|m| (m.1, m.2)) {
                let lists: BTreeSet<Uuid> = membership::current(&mut tx, *tenant, &[source])
                    .await?
                    .remove(&source)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|s| {
                        self.definitions
                            .get(*tenant, *s)
                            .is_some_and(|seg| seg.live() && seg.kind == SegmentKind::Static)
                    })
                    .collect();
                carried.push((survivor, lists));
            }
            let mut decisions = decide(&mut tx, *tenant, &ids, &segments, now, false).await?;
            for (survivor, lists) in carried {
                if let Some(d) = decisions.iter_mut().find(|d| d.contact_id == survivor) {
                    d.considered.extend(lists.iter().copied());
                    d.target.extend(lists);
                }
            }
            let written =
                membership::write(&mut tx, *tenant, &decisions, &metadata(*tenant), now).await?;
            appended |= written.cursor.is_some();
        }
        membership::queue_refresh(&mut tx, &self.refresh).await?;
        checkpoint::advance(&mut *tx, CHECKPOINT, last).await?;
        tx.commit().await?;
        self.refresh.clear();
        if appended {
            self.notifier.poke();
        }
        Ok(last)
    }

    /// The contacts of each tenant whose segments the events may change.
    fn touched(&self, events: &[RecordedEvent]) -> BTreeMap<Uuid, BTreeSet<Uuid>> {
        let mut out: BTreeMap<Uuid, BTreeSet<Uuid>> = BTreeMap::new();
        // Worked out once per organization in the batch, not per event.
        let mut interests: HashMap<Uuid, Interest> = HashMap::new();
        for e in events.iter().filter(|e| e.tenant_id != PLATFORM_TENANT) {
            let interest = interests
                .entry(e.tenant_id)
                .or_insert_with(|| self.definitions.interest(e.tenant_id));
            let contact = if e.aggregate_type == Contact::TYPE {
                e.entity_id()
            } else if e.aggregate_type == SegmentMembership::TYPE {
                interest.uses_segments.then(|| e.entity_id()).flatten()
            } else if interest.event_types.contains(&e.event_type) {
                e.decode::<serde_json::Value>().ok().and_then(|v| {
                    v.as_object()?
                        .values()
                        .next()?
                        .get("contact_id")?
                        .as_str()?
                        .parse()
                        .ok()
                })
            } else {
                None
            };
            if let Some(c) = contact {
                out.entry(e.tenant_id).or_default().insert(c);
            }
        }
        out
    }

    async fn catch_up(&self, projection: &'static str, cursor: Cursor) -> Result<(), WorkerError> {
        if projections::status::wait_unless_stopped(
            &self.pool, projection, cursor, CATCH_UP, &self.stop,
        )
        .await?
        {
            Ok(())
        } else {
            Err(WorkerError::Lagging(projection))
        }
    }
}

/// The merges among `events`: `(tenant, survivor, merged contact)`. Reads only the public
/// `source_id` of the stored payload (its personal fields are sealed; see `event_store::shred`).
fn merges(events: &[RecordedEvent]) -> Vec<(Uuid, Uuid, Uuid)> {
    events
        .iter()
        .filter(|e| e.aggregate_type == Contact::TYPE && e.event_type == "ContactMerged")
        .filter_map(|e| {
            let v: serde_json::Value = e.decode().ok()?;
            let source = v.get("ContactMerged")?.get("source_id")?.as_str()?;
            Some((e.tenant_id, e.entity_id()?, source.parse().ok()?))
        })
        .collect()
}

impl Follower for Evaluator {
    type Error = WorkerError;

    fn checkpoint(&self) -> &str {
        CHECKPOINT
    }

    async fn step(&mut self, _at: Cursor, batch: &Batch) -> Result<Cursor, WorkerError> {
        Evaluator::step(self, &batch.events).await
    }

    /// Two writers deciding for one contact at once: the loser retries.
    fn expected(e: &WorkerError) -> bool {
        matches!(e, WorkerError::Conflict)
    }
}
