use std::sync::Arc;

use async_trait::async_trait;
use event_store::RecordedEvent;
use sqlx::PgConnection;

use crate::ProjectionError;

/// A read model built from the log.
///
/// `apply` receives events in cursor order that the target has not seen yet, inside the
/// transaction that will also move the target's checkpoint. It writes `target.table`, which is
/// the live table or, during a rebuild, its shadow copy: the same code builds both.
#[async_trait]
pub trait Projection: Send + Sync {
    /// Stable name: the checkpoint's name and the CLI's argument.
    fn name(&self) -> &'static str;
    /// The table this projection owns.
    fn table(&self) -> &'static str;
    /// Whether `apply` would do anything with `e`. A batch of events none of which concern
    /// the projection only moves its checkpoint (one statement, no transaction). Erring on
    /// the side of `true` is always correct.
    fn concerns(&self, e: &RecordedEvent) -> bool {
        let _ = e;
        true
    }
    /// The only aggregate types `concerns` can be true for (`None`: any). A source that can
    /// filter (the Postgres tail) then neither fetches nor decodes the others' events.
    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        None
    }
    /// Whether `apply` reads personal values (sealed in the log, see `event_store::shred`):
    /// the runner then reveals the events it `concerns` first. A projection that only reads
    /// public fields (ids, event types, field names) says `false` and sees the stored
    /// envelopes. Erring on the side of `true` is always correct.
    fn needs_personal_data(&self) -> bool {
        true
    }
    /// Tables the projection writes besides [`table`](Self::table), in the same `apply`:
    /// read models that share state (the journeys' figures and their executions), kept
    /// consistent with each other by the one checkpoint. A rebuild fills and swaps them
    /// together with `table`; `apply` names them through [`Target::table_named`].
    fn more_tables(&self) -> &'static [&'static str] {
        &[]
    }
    /// Applies events to `target.table`.
    async fn apply(
        &self,
        conn: &mut PgConnection,
        target: &Target,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError>;
}

/// Where a projection writes: its table and its checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub table: String,
    pub checkpoint: String,
    /// What this target appends to the name of every table the projection owns (`""` for
    /// the live read model, `"__rebuild"` for a rebuild's shadow): see [`Self::table_named`].
    pub suffix: String,
}

/// The suffix of a rebuild's shadow tables and checkpoint.
pub const SHADOW: &str = "__rebuild";

impl Target {
    /// The live read model.
    pub fn live(p: &dyn Projection) -> Self {
        Self {
            table: p.table().to_owned(),
            checkpoint: p.name().to_owned(),
            suffix: String::new(),
        }
    }

    /// The shadow copy a rebuild fills before it is swapped in.
    pub fn shadow(p: &dyn Projection) -> Self {
        Self {
            table: format!("{}{SHADOW}", p.table()),
            checkpoint: format!("{}{SHADOW}", p.name()),
            suffix: SHADOW.to_owned(),
        }
    }

    /// Table `name`, one of the projection's [`more_tables`](Projection::more_tables), as
    /// this target writes it.
    pub fn table_named(&self, name: &str) -> String {
        format!("{name}{}", self.suffix)
    }
}

/// Every projection of the system.
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(crate::contacts::ContactsProjection),
        Arc::new(crate::companies::CompaniesProjection),
        Arc::new(crate::organizations::OrganizationsProjection),
        Arc::new(crate::users::UsersProjection),
        Arc::new(crate::audit_log::AuditLogProjection),
        Arc::new(crate::timeline::ContactTimelineProjection),
        Arc::new(crate::notes::ContactNotesProjection),
        Arc::new(crate::segments::SegmentsProjection),
        Arc::new(crate::merges::ContactMergesProjection),
        Arc::new(crate::templates::TemplatesProjection),
        Arc::new(crate::deliveries::DeliveriesProjection),
        Arc::new(crate::suppressions::SuppressionsProjection),
        Arc::new(crate::providers::ProvidersProjection),
        Arc::new(crate::warmup::WarmupProjection),
        Arc::new(crate::campaigns::summaries::CampaignSummariesProjection),
        Arc::new(crate::campaigns::rollups::CampaignRollupsProjection),
        Arc::new(crate::campaigns::links::CampaignLinkClicksProjection),
        Arc::new(crate::journeys::projector::JourneysProjection),
        Arc::new(crate::journeys::versions::JourneyVersionDefsProjection),
    ]
}

/// The projection called `name`.
pub fn by_name(name: &str) -> Option<Arc<dyn Projection>> {
    all().into_iter().find(|p| p.name() == name)
}
