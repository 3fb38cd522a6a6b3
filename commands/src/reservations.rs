//! Values unique across aggregates (a user's or a contact's email, a key's digest): claimed
//! with `event_store::reservation` before the command that makes them someone's.

use event_store::reservation::{self, Holder, Scope};
use event_store::StoreError;

/// Claims `value` for `holder`, then runs `command`, releasing the claim if it fails.
/// `Ok(Err(other))` when someone else holds the value (and nothing was run).
pub async fn reserved<T, E, Fut>(
    pool: &sqlx::PgPool,
    scope: Scope,
    value: &str,
    holder: Holder,
    command: impl FnOnce() -> Fut,
) -> Result<Result<T, Holder>, E>
where
    Fut: std::future::Future<Output = Result<T, E>>,
    E: From<StoreError>,
{
    let held = reservation::claim(pool, scope, value, holder).await?;
    if held != holder {
        return Ok(Err(held));
    }
    match command().await {
        Ok(v) => Ok(Ok(v)),
        Err(e) => {
            if let Err(x) = reservation::release(pool, scope, value, holder).await {
                tracing::warn!(error = %x, "could not release a reservation; it expires unused");
            }
            Err(e)
        }
    }
}
