//! Merged contacts answer as their survivor: every per-contact query resolves the id in the
//! path through the `contact_merges` read model first (chains are collapsed there).

use domain::ContactId;
use http_kit::Problem;
use uuid::Uuid;

use crate::consistency::ConsistentAfter;
use crate::QueryState;

/// The contact that answers for `id` in `tenant`: the id itself, or the contact it was
/// merged into. Waits for `contact_merges` to pass the query's `consistent_after`.
pub async fn contact(
    s: &QueryState,
    tenant: Uuid,
    consistency: &ConsistentAfter,
    id: ContactId,
) -> Result<Uuid, Problem> {
    let id = id.0;
    consistency.wait(s, "contact_merges").await?;
    projections::merges::resolve(&s.pool, tenant, id)
        .await
        .map_err(|e| Problem::from_internal(&e))
}
