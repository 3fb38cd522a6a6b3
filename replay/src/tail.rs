//! Following the log: catch up from a cursor, then keep following live.

use event_store::reader::Filter;
use event_store::source::{EventSource, PgTail};
use event_store::wakeup::Wakeup;
use event_store::{Cursor, RecordedEvent};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::ReplayError;

/// Calls `each` for every event after `from` that matches `filter`, in cursor order, until
/// `cancel` (or `each` returns false).
pub async fn tail(
    pool: PgPool,
    filter: Filter,
    from: Cursor,
    cancel: CancellationToken,
    mut each: impl FnMut(&RecordedEvent) -> bool,
) -> Result<(), ReplayError> {
    let wake = Wakeup::listen(pool.clone(), cancel.clone());
    let mut source = PgTail::new(pool, wake).with_filter(filter);
    let mut at = from;
    while !cancel.is_cancelled() {
        let batch = tokio::select! {
            _ = cancel.cancelled() => break,
            b = source.next_batch(at, 1000) => b?,
        };
        for e in &batch.events {
            at = e.cursor;
            if !each(e) {
                return Ok(());
            }
        }
    }
    Ok(())
}
