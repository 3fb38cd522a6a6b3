//! What the engine may ask about a batch's executions, loaded once for the batch: the
//! journey versions they run on, their contacts' facts (fields, segments, counted events),
//! which contacts the read model does not have yet, the organization's time zone, templates'
//! published versions, and engagement with the messages earlier steps sent.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::journey::definition::{Condition, StepKind};
use domain::journey::Version;
use domain::segment::eval::ContactFacts;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Claimed, JourneyRunner};
use crate::journeys::JourneyError;

/// What a batch's executions run against.
pub(super) struct Context {
    pub versions: HashMap<(Uuid, u32), Arc<Version>>,
    pub facts: HashMap<Uuid, ContactFacts>,
    /// Contacts the read model does not have yet (not erased or merged away).
    pub lagging: BTreeSet<Uuid>,
    pub org_zone: Option<String>,
    /// Each template's published version (`None`: not live).
    pub templates: HashMap<Uuid, Option<u32>>,
    /// Delivery status, opens and clicks of the jobs message conditions look at.
    pub engagement: HashMap<Uuid, (String, i32, i32)>,
}

impl JourneyRunner {
    /// The context of `rows`, one organization's.
    pub(super) async fn load(
        &self,
        tx: &mut PgConnection,
        tenant: Uuid,
        rows: &[Claimed],
    ) -> Result<Context, JourneyError> {
        // The versions the batch runs on.
        let mut versions: HashMap<(Uuid, u32), Arc<Version>> = HashMap::new();
        for r in rows {
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
            let last = event_store::reader::last_event_types(
                &mut *tx,
                <domain::contact::Contact as cqrs_es::Aggregate>::TYPE,
                &missing,
            )
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
                        .get(domain::TenantId(tenant), domain::TemplateId(m.template_id))
                        .await
                        .map_err(|e| JourneyError::Command(commands::error::chain(&e)))?;
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
        Ok(Context {
            versions,
            facts,
            lagging,
            org_zone,
            templates,
            engagement,
        })
    }
}

fn has_message_condition(v: &Version) -> bool {
    v.definition.steps.iter().any(|s| match &s.kind {
        StepKind::SplitConditional(c) => matches!(c, Condition::Message { .. }),
        StepKind::Gate(g) => matches!(g.condition, Condition::Message { .. }),
        _ => false,
    })
}
