//! The log read once per process for every tail at its head.
//!
//! Every projection, the segment evaluator and the journey triggers tail the log. Each
//! reading it on its own made Postgres send every new event about twenty times (and walk
//! the cursor index as often for the readers that want a few aggregate types): during a
//! campaign's fan-out those reads were most of what Postgres did. A [`Feed`] reads the log
//! once, in cursor order and gap-safe ([`reader::read_after`]), into a window of the most
//! recent events; each [`FeedTail`] takes its batches from the window. A tail behind the
//! window (a projection catching up after a restart, or one slower than the window is long)
//! reads Postgres itself, exactly as a [`PgTail`], until it reaches the window again.
//!
//! **Invariant:** the window holds every event after `start` up to its last one, in cursor
//! order, with nothing missing: it is only ever extended by a gap-safe read after its own
//! last cursor and only ever shortened at the front (moving `start` to the dropped event).

use std::collections::VecDeque;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::reader::{self, Filter};
use crate::source::{Batch, EventSource, PgTail, SKIP_LINGER};
use crate::wakeup::{Pacer, Wakeup};
use crate::{Cursor, RecordedEvent};

/// Events read from the log per statement.
const READ: i64 = 2_000;
/// How long a tail at the head waits for the window to grow before it looks again.
const POLL: Duration = Duration::from_millis(500);

/// The shared reader of the log (cheap to clone: one window per process).
#[derive(Clone)]
pub struct Feed {
    shared: Arc<Shared>,
}

struct Shared {
    window: RwLock<Window>,
    /// Bumped whenever the window grows.
    grown: watch::Sender<u64>,
    capacity: usize,
}

#[derive(Default)]
struct Window {
    /// Every event after `start` is in `events` (`None` until the feed's first read).
    start: Option<Cursor>,
    events: VecDeque<RecordedEvent>,
}

/// What the window has for a tail at `after`.
enum Taken {
    Batch(Batch),
    /// Nothing after `after` yet.
    AtHead,
    /// `after` is before the window: the tail reads Postgres.
    Behind,
}

impl Feed {
    /// Starts reading `pool`'s log from its current head, keeping the last `capacity`
    /// events, until `cancel`.
    pub fn start(pool: PgPool, wake: Wakeup, capacity: usize, cancel: CancellationToken) -> Self {
        let (grown, _) = watch::channel(0u64);
        let feed = Self {
            shared: Arc::new(Shared {
                window: RwLock::new(Window::default()),
                grown,
                capacity: capacity.max(1),
            }),
        };
        let f = feed.clone();
        tokio::spawn(async move { f.read_log(pool, wake, cancel).await });
        feed
    }

    /// A tail of the log from this feed for a reader of `types` (all when `None`).
    pub fn tail(&self, pool: PgPool, wake: Wakeup, types: Option<&[&str]>) -> FeedTail {
        FeedTail {
            feed: self.clone(),
            grown: self.shared.grown.subscribe(),
            types: types.map(|t| t.iter().map(|s| (*s).to_owned()).collect()),
            postgres: PgTail::new(pool, wake).with_types(types),
            skipped_only: false,
        }
    }

    async fn read_log(self, pool: PgPool, mut wake: Wakeup, cancel: CancellationToken) {
        // Everything after the visible head is read from here on: any event that appears
        // later comes from a transaction at or above the horizon, so after this cursor.
        let mut last = loop {
            match reader::head(&pool).await {
                Ok(c) => break c,
                Err(e) => {
                    tracing::warn!(error = %e, "feed: cannot read the log's head");
                    if sleep_or_cancel(&cancel, Duration::from_secs(1)).await {
                        return;
                    }
                }
            }
        };
        if let Ok(mut w) = self.shared.window.write() {
            w.start = Some(last);
        }
        let mut pacer = Pacer::new(POLL);
        let mut woken = false;
        while !cancel.is_cancelled() {
            match reader::read_after(&pool, last, READ, &Filter::default()).await {
                Ok(events) => {
                    let n = events.len();
                    pacer.found(woken, n > 0);
                    if let Some(e) = events.last() {
                        last = e.cursor;
                        self.extend(events);
                    }
                    if n as i64 >= READ {
                        woken = false;
                        continue;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "feed: reading the log failed; retrying");
                    if sleep_or_cancel(&cancel, Duration::from_secs(1)).await {
                        return;
                    }
                    continue;
                }
            }
            woken = tokio::select! {
                _ = cancel.cancelled() => return,
                w = pacer.wait(&mut wake) => w,
            };
        }
    }

    fn extend(&self, events: Vec<RecordedEvent>) {
        let Ok(mut w) = self.shared.window.write() else {
            return;
        };
        w.events.extend(events);
        while w.events.len() > self.shared.capacity {
            if let Some(dropped) = w.events.pop_front() {
                w.start = Some(dropped.cursor);
            }
        }
        drop(w);
        self.shared.grown.send_modify(|n| *n += 1);
    }

    /// Up to `max` events after `after` (of `types`), with how far the window was read.
    fn take(&self, after: Cursor, max: usize, types: Option<&[String]>) -> Taken {
        let Ok(w) = self.shared.window.read() else {
            return Taken::Behind;
        };
        match w.start {
            Some(start) if after >= start => {}
            _ => return Taken::Behind,
        }
        let from = w.events.partition_point(|e| e.cursor <= after);
        if from == w.events.len() {
            return Taken::AtHead;
        }
        let newer = w.events.range(from..);
        let Some(types) = types else {
            return Taken::Batch(Batch {
                events: newer.take(max).cloned().collect(),
                ..Batch::default()
            });
        };
        let mut events = Vec::new();
        let mut through = after;
        for e in newer {
            through = e.cursor;
            if types.contains(&e.aggregate_type) {
                events.push(e.clone());
                if events.len() >= max {
                    break;
                }
            }
        }
        Taken::Batch(Batch {
            events,
            through: Some(through),
            ..Batch::default()
        })
    }
}

/// One reader's tail of the log through a [`Feed`] (see the module's documentation).
pub struct FeedTail {
    feed: Feed,
    grown: watch::Receiver<u64>,
    types: Option<Vec<String>>,
    /// For reads behind the window.
    postgres: PgTail,
    /// The last batch held only events of other types.
    skipped_only: bool,
}

impl FeedTail {
    fn take(&mut self, after: Cursor, max: usize) -> Taken {
        // Seen before looking, so growth after the look is not missed.
        self.grown.borrow_and_update();
        let taken = self.feed.take(after, max, self.types.as_deref());
        if let Taken::Batch(b) = &taken {
            self.skipped_only = b.events.is_empty();
        }
        taken
    }
}

#[async_trait]
impl EventSource for FeedTail {
    async fn next_batch(&mut self, after: Cursor, max: usize) -> Result<Batch, crate::StoreError> {
        if self.skipped_only {
            // As a Postgres tail does: a reader that is quiet during another aggregate's
            // burst moves its checkpoint about 50 times a second, not at every append.
            tokio::time::sleep(SKIP_LINGER).await;
        }
        match self.take(after, max) {
            Taken::Batch(b) => return Ok(b),
            Taken::Behind => return self.postgres.next_batch(after, max).await,
            Taken::AtHead => {}
        }
        if let Ok(Err(_)) = tokio::time::timeout(POLL, self.grown.changed()).await {
            // The feed is gone (only when the process stops): poll instead.
            tokio::time::sleep(POLL).await;
        }
        Ok(match self.take(after, max) {
            Taken::Batch(b) => b,
            Taken::Behind => self.postgres.next_batch(after, max).await?,
            Taken::AtHead => Batch::default(),
        })
    }
}

/// Sleeps; true if cancelled meanwhile.
async fn sleep_or_cancel(cancel: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}
