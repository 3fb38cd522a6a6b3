//! One subscriber interface over the log.
//!
//! [`PgTail`] reads the log itself; a [`crate::feed::FeedTail`] takes its batches from the
//! process's shared window (filled from the log or from JetStream) and reads the log as a
//! `PgTail` when it is behind the window. Both hand out the same events in cursor order.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;

use crate::reader::{self, Filter};
use crate::wakeup::{Pacer, Wakeup};
use crate::{Cursor, RecordedEvent, StoreError};

/// Events to handle.
#[derive(Default)]
pub struct Batch {
    pub events: Vec<RecordedEvent>,
    /// How far the source read the log when it filters by aggregate type: every event up to
    /// here that is not in `events` does not concern the caller, whose checkpoint may move
    /// here once `events` are handled.
    pub through: Option<Cursor>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.through.is_none()
    }
}

/// A source of events in cursor order.
#[async_trait]
pub trait EventSource: Send {
    /// Up to about `max` events after `after`, waiting a little when there are none
    /// (an empty batch then).
    async fn next_batch(&mut self, after: Cursor, max: usize) -> Result<Batch, StoreError>;
}

/// The in-process tail of the Postgres log.
pub struct PgTail {
    pool: PgPool,
    wake: Wakeup,
    pacer: Pacer,
    filter: Filter,
    /// Only events of these aggregate types (and `through`) are handed out.
    types: Option<Vec<String>>,
    /// The last read found only events of other types.
    skipped_only: bool,
}

/// How long a filtered tail lets other types' events gather after a read that found only
/// them: a read model that is quiet during another aggregate's burst reads (and moves its
/// checkpoint) about 50 times a second instead of at every append, and trails the head by
/// about this much.
pub(crate) const SKIP_LINGER: Duration = Duration::from_millis(20);

impl PgTail {
    pub fn new(pool: PgPool, wake: Wakeup) -> Self {
        Self {
            pool,
            wake,
            pacer: Pacer::new(Duration::from_millis(500)),
            filter: Filter::default(),
            types: None,
            skipped_only: false,
        }
    }

    pub fn with_filter(mut self, filter: Filter) -> Self {
        self.filter = filter;
        self
    }

    /// Hands out only events of `types` (all when `None`), with how far the log was read.
    pub fn with_types(mut self, types: Option<&[&str]>) -> Self {
        self.types = types.map(|t| t.iter().map(|s| (*s).to_owned()).collect());
        self
    }

    async fn read(&mut self, after: Cursor, max: usize) -> Result<Batch, StoreError> {
        if self.skipped_only {
            tokio::time::sleep(SKIP_LINGER).await;
        }
        let (events, through) = match &self.types {
            None => (
                reader::read_after(&self.pool, after, max as i64, &self.filter).await?,
                None,
            ),
            Some(types) => {
                let (events, through) =
                    reader::read_types_after(&self.pool, after, max as i64, types).await?;
                (events, through.filter(|t| *t > after))
            }
        };
        self.skipped_only = events.is_empty() && through.is_some();
        Ok(Batch { events, through })
    }
}

#[async_trait]
impl EventSource for PgTail {
    async fn next_batch(&mut self, after: Cursor, max: usize) -> Result<Batch, StoreError> {
        let batch = self.read(after, max).await?;
        if !batch.is_empty() {
            return Ok(batch);
        }
        let woken = self.pacer.wait(&mut self.wake).await;
        let batch = self.read(after, max).await?;
        self.pacer.found(woken, !batch.is_empty());
        Ok(batch)
    }
}

/// Spacing of a reader's transactions: after a batch that was not full, the next one starts
/// at least [`Pace::GAP`] after it began. Under a steady stream of appends, a reader that
/// wrote each event (or each few) in its own transaction spent more of the machine than the
/// commands did (a lock, a checkpoint and a commit each); waiting this long lets the events of
/// the meantime make one batch. At a low rate nothing waits (the last batch is long past), and
/// the reader trails the log by at most this much more.
#[derive(Debug, Default)]
pub struct Pace {
    last_small: Option<tokio::time::Instant>,
}

impl Pace {
    pub const GAP: Duration = Duration::from_millis(10);

    /// Waits, if the last batch was small, until [`Pace::GAP`] after it began.
    pub async fn ready(&mut self) {
        if let Some(t) = self.last_small.take() {
            tokio::time::sleep_until(t + Self::GAP).await;
        }
    }

    /// Notes a batch of `n` events (of at most `max`) beginning now.
    pub fn began(&mut self, n: usize, max: usize) {
        if n < max {
            self.last_small = Some(tokio::time::Instant::now());
        }
    }
}
