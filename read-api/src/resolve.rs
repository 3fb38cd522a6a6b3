//! Merged contacts answer as their survivor: every per-contact query resolves the id in the
//! path through the `contact_merges` read model first (chains are collapsed there).

use http_kit::Problem;
use uuid::Uuid;

use crate::consistency::ConsistentAfter;
use crate::QueryState;

/// The contact that answers for `raw` in `tenant`: the id itself, or the contact it was
/// merged into. Waits for `contact_merges` to pass the query's `consistent_after`. A
/// malformed id names no contact (404).
pub async fn contact(
    s: &QueryState,
    tenant: Uuid,
    consistency: &ConsistentAfter,
    raw: &str,
) -> Result<Uuid, Problem> {
    let id = Uuid::parse_str(raw).map_err(|_| Problem::not_found("contact"))?;
    consistency.wait(s, "contact_merges").await?;
    projections::merges::resolve(&s.pool, tenant, id)
        .await
        .map_err(|e| Problem::from_internal(&e))
}
