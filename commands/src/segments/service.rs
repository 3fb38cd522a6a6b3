//! The segments service: definitions (static lists and dynamic rules), static membership and
//! refreshes, with typed inputs and [`SegmentsError`]. The API and the console call it.

use std::collections::BTreeSet;
use std::sync::Arc;

use cqrs_es::Aggregate;
use domain::contact::Contact;
use domain::segment::{
    Checked, Definition, MembershipReason, Rule, Segment, SegmentCommand, SegmentError,
    SegmentKind, SegmentPatch,
};
use domain::{ContactId, SegmentId, TenantId};
use event_store::append::AppendError;
use event_store::wakeup::Notifier;
use event_store::{reader, Clock, EventMetadata};
use sqlx::PgPool;
use uuid::Uuid;

use super::membership::{self, Decision};
use crate::executor::{Accepted, Executor};
use crate::fields::Fields;
use crate::{CommandError, Invalid};

/// Why a segment command was not carried out.
pub type SegmentsError = CommandError<SegmentError>;

/// Most contacts one add or remove may name.
pub const MAX_CONTACTS: usize = 10_000;

/// A new segment: with a rule, a dynamic segment; without, a static list.
#[derive(Debug, Clone)]
pub struct NewSegment {
    pub name: String,
    pub description: Option<String>,
    pub rule: Option<Rule>,
}

/// A change to a segment: `None` leaves each part as it is; `description: Some(None)`
/// clears it; a rule only for a dynamic segment.
#[derive(Debug, Clone, Default)]
pub struct SegmentChange {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub rule: Option<Rule>,
}

/// What an add or remove changed.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct MembershipChanged {
    /// Contacts that entered (add) or left (remove); the others already were / were not in.
    pub changed: usize,
    /// The cursor after the change (pass as `consistent_after`).
    #[schema(value_type = Option<String>)]
    pub cursor: Option<event_store::Cursor>,
}

/// The segments of every organization.
#[derive(Clone)]
pub struct Segments {
    pool: PgPool,
    executor: Arc<Executor<Segment>>,
    fields: Fields,
    notifier: Notifier,
    clock: Clock,
}

impl Segments {
    pub fn new(
        pool: PgPool,
        executor: Arc<Executor<Segment>>,
        fields: Fields,
        notifier: Notifier,
        clock: Clock,
    ) -> Self {
        Self {
            pool,
            executor,
            fields,
            notifier,
            clock,
        }
    }

    /// Segment `id` as the log has it now.
    pub async fn get(&self, tenant: TenantId, id: SegmentId) -> Result<Segment, SegmentsError> {
        self.executor.load(tenant.0, id.0).await
    }

    /// Creates a segment; a dynamic one fills in the background.
    pub async fn create(
        &self,
        tenant: TenantId,
        new: NewSegment,
        meta: &EventMetadata,
    ) -> Result<Accepted, SegmentsError> {
        let id = SegmentId::generate();
        let definition = match new.rule {
            Some(rule) => {
                let compiled = self.check_rule(tenant, Some(id), &rule).await?;
                Definition::Dynamic { rule, compiled }
            }
            None => Definition::Static,
        };
        let command = SegmentCommand::Create {
            name: new.name,
            description: new.description,
            definition,
        };
        self.executor.execute(tenant.0, id.0, command, meta).await
    }

    /// Renames a segment or changes its rule (members are re-evaluated).
    pub async fn update(
        &self,
        tenant: TenantId,
        id: SegmentId,
        change: SegmentChange,
        meta: &EventMetadata,
    ) -> Result<Accepted, SegmentsError> {
        let rule = match change.rule {
            Some(rule) => {
                let compiled = self.check_rule(tenant, Some(id), &rule).await?;
                Some((rule, compiled))
            }
            None => None,
        };
        let patch = SegmentPatch {
            name: change.name,
            description: change.description,
            rule,
        };
        let command = SegmentCommand::Update(patch);
        self.executor.execute(tenant.0, id.0, command, meta).await
    }

    /// Deletes a segment: its members leave it (in the background).
    pub async fn delete(
        &self,
        tenant: TenantId,
        id: SegmentId,
        meta: &EventMetadata,
    ) -> Result<Accepted, SegmentsError> {
        let command = SegmentCommand::Delete;
        self.executor.execute(tenant.0, id.0, command, meta).await
    }

    /// Adds contacts to static segment `id` (every one must be a contact of the
    /// organization).
    pub async fn add_contacts(
        &self,
        tenant: TenantId,
        id: SegmentId,
        contacts: &[ContactId],
        meta: &EventMetadata,
    ) -> Result<MembershipChanged, SegmentsError> {
        self.change_members(tenant, id, contacts, true, meta).await
    }

    /// Removes contacts from static segment `id`.
    pub async fn remove_contacts(
        &self,
        tenant: TenantId,
        id: SegmentId,
        contacts: &[ContactId],
        meta: &EventMetadata,
    ) -> Result<MembershipChanged, SegmentsError> {
        self.change_members(tenant, id, contacts, false, meta).await
    }

    /// Queues dynamic segment `id` to be re-evaluated now (rules on relative dates are also
    /// re-evaluated on a schedule).
    pub async fn refresh(&self, tenant: TenantId, id: SegmentId) -> Result<(), SegmentsError> {
        self.live(tenant, id).await?;
        let mut conn = self.pool.acquire().await.map_err(technical)?;
        membership::queue_refresh(&mut conn, &BTreeSet::from([(tenant.0, id.0)]))
            .await
            .map_err(technical)
    }

    /// `rule` checked for `tenant`, for segment `saving` (none for a preview): its fields
    /// against the organization's definitions, and the segments it refers to (they exist,
    /// and no rule refers back to the segment being saved, however indirectly).
    pub async fn check_rule(
        &self,
        tenant: TenantId,
        saving: Option<SegmentId>,
        rule: &Rule,
    ) -> Result<Checked, SegmentsError> {
        let schema = self
            .fields
            .schema(tenant)
            .await
            .map_err(CommandError::within)?;
        let checked = rule.check(&schema.fields).map_err(|errors| {
            Invalid(
                errors
                    .into_iter()
                    .map(|e| {
                        domain::contact::InvalidValue::new(format!("rule{}", e.path), e.reason)
                    })
                    .collect(),
            )
        })?;
        // Walk the segments the rule refers to, and theirs.
        let mut seen = BTreeSet::new();
        let mut pending: Vec<Uuid> = checked.segments().into_iter().collect();
        let direct: BTreeSet<Uuid> = pending.iter().copied().collect();
        while let Some(id) = pending.pop() {
            if Some(id) == saving.map(|s| s.0) {
                return Err(Invalid::one(
                    "rule",
                    "the rule refers to its own segment (directly or through other segments)",
                )
                .into());
            }
            if !seen.insert(id) {
                continue;
            }
            let other = self.executor.load(tenant.0, id).await?;
            if !other.live() {
                if direct.contains(&id) {
                    return Err(Invalid::one(
                        "rule",
                        format!("no segment {id} (a rule can only refer to existing segments)"),
                    )
                    .into());
                }
                continue;
            }
            if let Some(c) = &other.compiled {
                pending.extend(c.segments());
            }
        }
        Ok(checked)
    }

    /// The segment, if it exists and is not deleted.
    async fn live(&self, tenant: TenantId, id: SegmentId) -> Result<Segment, SegmentsError> {
        let segment = self.get(tenant, id).await?;
        if !segment.live() {
            return Err(CommandError::Rejected(SegmentError::NotFound));
        }
        Ok(segment)
    }

    async fn change_members(
        &self,
        tenant: TenantId,
        id: SegmentId,
        contacts: &[ContactId],
        add: bool,
        meta: &EventMetadata,
    ) -> Result<MembershipChanged, SegmentsError> {
        let ids: BTreeSet<Uuid> = contacts.iter().map(|c| c.0).collect();
        if ids.is_empty() || ids.len() > MAX_CONTACTS {
            let why = format!("1 to {MAX_CONTACTS} contact ids");
            return Err(Invalid::one("contact_ids", why).into());
        }
        let segment = self.live(tenant, id).await?;
        if segment.kind == SegmentKind::Dynamic {
            return Err(CommandError::Rejected(SegmentError::MembersFollowRule));
        }
        let ids: Vec<Uuid> = ids.into_iter().collect();
        if add {
            let unknown = self.unknown_contacts(tenant, &ids).await?;
            if !unknown.is_empty() {
                let list: Vec<String> = unknown.iter().map(Uuid::to_string).collect();
                let why = format!("no such contacts: {}", list.join(", "));
                return Err(Invalid::one("contact_ids", why).into());
            }
        }
        let target = if add {
            BTreeSet::from([id.0])
        } else {
            BTreeSet::new()
        };
        let decisions: Vec<Decision> = ids
            .iter()
            .map(|c| Decision {
                contact_id: *c,
                considered: BTreeSet::from([id.0]),
                target: target.clone(),
                reason: MembershipReason::Manual,
            })
            .collect();
        let now = self.clock.now();
        for _ in 0..crate::executor::CONFLICT_RETRIES {
            let mut tx = self.pool.begin().await.map_err(technical)?;
            match membership::write(&mut tx, tenant.0, &decisions, meta, now).await {
                Ok(w) => {
                    tx.commit().await.map_err(technical)?;
                    if w.cursor.is_some() {
                        self.notifier.poke();
                    }
                    return Ok(MembershipChanged {
                        changed: w.entered + w.exited,
                        cursor: w.cursor,
                    });
                }
                Err(AppendError::Conflict) => continue,
                Err(AppendError::Store(e)) => return Err(technical(e)),
            }
        }
        Err(CommandError::Conflict)
    }

    /// The ids among `ids` that are not contacts of `tenant` (by their streams).
    async fn unknown_contacts(
        &self,
        tenant: TenantId,
        ids: &[Uuid],
    ) -> Result<Vec<Uuid>, SegmentsError> {
        let streams: Vec<String> = ids
            .iter()
            .map(|c| event_store::recorded::stream_id(tenant.0, *c))
            .collect();
        let known = reader::existing_streams(&self.pool, Contact::TYPE, &streams)
            .await
            .map_err(technical)?;
        Ok(ids
            .iter()
            .zip(&streams)
            .filter(|(_, st)| !known.contains(st.as_str()))
            .map(|(id, _)| *id)
            .collect())
    }
}

fn technical(e: impl std::error::Error + Send + Sync + 'static) -> SegmentsError {
    CommandError::Technical(Box::new(e))
}
