//! Every organization's segments, folded from their streams with the aggregate's own
//! `apply`, and kept current from the events a worker reads.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use cqrs_es::Aggregate;
use domain::segment::{Checked, Segment, SegmentEvent, SegmentKind};
use event_store::RecordedEvent;
use sqlx::PgPool;
use uuid::Uuid;

use super::WorkerError;

/// One segment as of its `version`.
#[derive(Debug, Clone, Default)]
struct Known {
    segment: Segment,
    version: i64,
}

/// The segments of every organization.
#[derive(Debug, Default)]
pub struct Definitions {
    by_tenant: HashMap<Uuid, BTreeMap<Uuid, Known>>,
}

/// What the dynamic segments of one organization look at beyond the contact itself.
#[derive(Debug, Clone, Default)]
pub struct Interest {
    /// Some rule looks at memberships of other segments.
    pub uses_segments: bool,
    /// The timeline event types rules count.
    pub event_types: BTreeSet<String>,
}

/// What changed when events were folded in: segments to re-evaluate in full.
pub type Changed = BTreeSet<(Uuid, Uuid)>;

impl Definitions {
    /// Every segment in the log.
    pub async fn load(pool: &PgPool) -> Result<Self, WorkerError> {
        let mut out = Self::default();
        for e in event_store::reader::load_type(pool, Segment::TYPE).await? {
            let Some((tenant, id)) = split(&e.aggregate_id) else {
                continue;
            };
            out.fold(tenant, id, e.sequence, e.decode()?);
        }
        Ok(out)
    }

    /// Folds the segment events among `events`; returns the segments whose membership must
    /// be re-evaluated in full (created, rule changed, deleted).
    pub fn apply(&mut self, events: &[RecordedEvent]) -> Result<Changed, WorkerError> {
        let mut changed = Changed::new();
        for e in events.iter().filter(|e| e.aggregate_type == Segment::TYPE) {
            let Some(id) = e.entity_id() else { continue };
            let event: SegmentEvent = e.decode().map_err(|x| WorkerError::Decode(x.to_string()))?;
            let refresh = !matches!(event, SegmentEvent::SegmentRenamed { .. });
            if self.fold(e.tenant_id, id, e.sequence, event) && refresh {
                changed.insert((e.tenant_id, id));
            }
        }
        Ok(changed)
    }

    /// True if the event was new to us.
    fn fold(&mut self, tenant: Uuid, id: Uuid, sequence: i64, event: SegmentEvent) -> bool {
        let known = self
            .by_tenant
            .entry(tenant)
            .or_default()
            .entry(id)
            .or_default();
        if sequence <= known.version {
            return false;
        }
        known.segment.apply(event);
        known.version = sequence;
        true
    }

    /// The segment, if it exists (deleted ones included).
    pub fn get(&self, tenant: Uuid, id: Uuid) -> Option<&Segment> {
        self.by_tenant.get(&tenant)?.get(&id).map(|k| &k.segment)
    }

    /// The live dynamic segments of `tenant` with their rules, each after the segments its
    /// rule refers to (so one pass sees memberships it depends on already decided).
    pub fn dynamic(&self, tenant: Uuid) -> Vec<(Uuid, Checked)> {
        let Some(all) = self.by_tenant.get(&tenant) else {
            return vec![];
        };
        let mut pending: Vec<(Uuid, Checked)> = all
            .iter()
            .filter(|(_, k)| k.segment.live() && k.segment.kind == SegmentKind::Dynamic)
            .filter_map(|(id, k)| Some((*id, k.segment.compiled.clone()?)))
            .collect();
        let ids: BTreeSet<Uuid> = pending.iter().map(|(id, _)| *id).collect();
        let mut done = BTreeSet::new();
        let mut out = Vec::with_capacity(pending.len());
        while !pending.is_empty() {
            let before = pending.len();
            let (ready, rest): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(_, rule)| {
                rule.segments()
                    .iter()
                    .all(|s| done.contains(s) || !ids.contains(s))
            });
            for (id, rule) in ready {
                done.insert(id);
                out.push((id, rule));
            }
            pending = rest;
            if pending.len() == before {
                // A cycle (refused when rules are saved): evaluate the rest as they come.
                out.append(&mut pending);
            }
        }
        out
    }

    /// What other than a contact's own events can change its dynamic segments in `tenant`.
    pub fn interest(&self, tenant: Uuid) -> Interest {
        let dynamic = self.dynamic(tenant);
        Interest {
            uses_segments: dynamic.iter().any(|(_, r)| !r.segments().is_empty()),
            event_types: dynamic.iter().flat_map(|(_, r)| r.event_types()).collect(),
        }
    }

    /// Every live dynamic segment whose rule depends on time: `(tenant, segment)`.
    pub fn time_dependent(&self) -> Vec<(Uuid, Uuid)> {
        self.by_tenant
            .iter()
            .flat_map(|(t, all)| {
                all.iter()
                    .filter(|(_, k)| {
                        k.segment.live()
                            && k.segment
                                .compiled
                                .as_ref()
                                .is_some_and(Checked::depends_on_time)
                    })
                    .map(|(id, _)| (*t, *id))
            })
            .collect()
    }
}

fn split(stream: &str) -> Option<(Uuid, Uuid)> {
    let (t, e) = stream.split_once(':')?;
    Some((t.parse().ok()?, e.parse().ok()?))
}
