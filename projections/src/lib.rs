//! Projectors: read models built from the log by cursor, each with its checkpoint committed
//! in the same transaction as the rows it writes.
//!
//! - [`projection`]: the `Projection` trait and the registry of all projections.
//! - [`runner`]: applies batches (idempotent, ordered, checkpointed) and the run loop.
//! - [`contacts`]: the `contacts` read model.
//! - [`companies`]: the `companies` read model.
//! - [`organizations`], [`users`]: identity read models (no secrets).
//! - [`notes`]: the notes on contacts.
//! - [`segments`]: the `segments` read model (definitions; members are write-side state).
//! - [`segment_sql`]: a checked segment rule as SQL over the contacts read model.
//! - [`templates`]: the `templates` read model (definitions and their versions).
//! - [`deliveries`]: the `deliveries` read model (one row per delivery job).
//! - [`campaigns`]: campaign summaries, rollups by hour/day and variant, and link clicks.
//! - [`journeys`]: journey summaries, executions, figures per version and step, and the
//!   published versions.
//! - [`suppressions`]: the suppression list (addresses in clear) and the batch lookup.
//! - [`providers`]: the `providers` read model (channel providers; secret names only).
//! - [`warmup`]: the `delivery_warmup` read model (warmup schedules of sending domains).
//! - [`merges`]: which contact answers for a merged one.
//! - [`timeline`]: everything that happened to a contact.
//! - [`audit_log`]: who did what, when, from where, per organization.
//! - [`json_rows`]: loading and upserting wide, few rows as JSON.
//! - [`status`]: lag of each projection (head cursor vs checkpoint) and consistency waits.

pub mod audit_log;
pub mod campaigns;
pub mod companies;
pub mod contacts;
pub mod deliveries;
pub mod error;
pub mod journeys;
pub mod json_rows;
pub mod like;
pub mod merges;
pub mod notes;
pub mod organizations;
pub mod projection;
pub mod providers;
pub mod runner;
pub mod segment_sql;
pub mod segments;
pub mod status;
pub mod suppressions;
pub mod templates;
pub mod timeline;
pub mod users;
pub mod warmup;

pub use error::ProjectionError;
pub use projection::{all, by_name, Projection, Target};

/// The event's payload as the aggregate's event type.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    e: &event_store::RecordedEvent,
) -> Result<T, ProjectionError> {
    e.decode().map_err(|x| ProjectionError::Decode {
        event_id: e.event_id,
        event_type: e.event_type.clone(),
        reason: x.to_string(),
    })
}

/// The contacts erased in `events` (each erased contact and the contacts merged into it),
/// as `(tenants, ids)` for an `UNNEST` delete.
pub(crate) fn erased(events: &[event_store::RecordedEvent]) -> (Vec<uuid::Uuid>, Vec<uuid::Uuid>) {
    use domain::contact::ContactEvent;
    let mut out = (Vec::new(), Vec::new());
    for e in events
        .iter()
        .filter(|e| e.aggregate_type == "contact" && e.event_type == "ContactErased")
    {
        let Some(id) = e.entity_id() else { continue };
        let also = match e.decode::<ContactEvent>() {
            Ok(ContactEvent::ContactErased { also_erased }) => also_erased,
            _ => Vec::new(),
        };
        for c in std::iter::once(id).chain(also) {
            out.0.push(e.tenant_id);
            out.1.push(c);
        }
    }
    out
}
