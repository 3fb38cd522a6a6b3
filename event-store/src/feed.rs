//! The log read once per process for every tail at its head.
//!
//! Every projection, the segment evaluator and the journey triggers tail the log. Each
//! reading it on its own made Postgres send every new event about twenty times (and walk
//! the cursor index as often for the readers that want a few aggregate types): during a
//! campaign's fan-out those reads were most of what Postgres did. A [`Feed`] reads the log
//! once, in cursor order and gap-safe, into a window of the most recent events; each
//! [`FeedTail`] takes its batches from the window. A tail behind the window (a projection
//! catching up after a restart, or one slower than the window is long) reads Postgres itself,
//! exactly as a [`PgTail`], until it reaches the window again.
//!
//! The window is filled from one of two places:
//! - [`Feed::start`]: the Postgres log ([`reader::read_after`]), when there is no NATS;
//! - [`Feed::start_jetstream`]: one ordered consumer of the installation's JetStream stream
//!   per process (no acknowledgements: the checkpoints live in Postgres, and whatever the
//!   window lacks is read from the log). Each message names the event the relay published
//!   before it (`Mauntic-Prev-Cursor`); a message that does not follow the window's last
//!   event (a purge, stream limits, a consumer reopened after NATS restarted) starts the
//!   window afresh at it, and tails behind the new start read the log. A message of another
//!   installation (`Mauntic-Installation`) is refused, loudly, and never reaches a reader.
//!
//! **Invariant:** the window holds every event after `start` up to its last one, in cursor
//! order, with nothing missing: it is only ever extended by an event that follows its last
//! one (a gap-safe read after its own last cursor, or a message whose previous event is that
//! last one), and only ever shortened at the front (moving `start` to the dropped event) or
//! started afresh (`start` moved to the event before the new first one).

use std::collections::VecDeque;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_nats::jetstream;
use async_trait::async_trait;
use futures::{FutureExt, StreamExt};
use sqlx::PgPool;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::nats::{self, Bus};
use crate::reader::{self, Filter};
use crate::source::{Batch, EventSource, PgTail, SKIP_LINGER};
use crate::wakeup::{Pacer, Wakeup};
use crate::{Cursor, RecordedEvent, StoreError};

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
    fn new(capacity: usize) -> Self {
        let (grown, _) = watch::channel(0u64);
        Self {
            shared: Arc::new(Shared {
                window: RwLock::new(Window::default()),
                grown,
                capacity: capacity.max(1),
            }),
        }
    }

    /// Starts reading `pool`'s log from its current head, keeping the last `capacity`
    /// events, until `cancel`.
    pub fn start(pool: PgPool, wake: Wakeup, capacity: usize, cancel: CancellationToken) -> Self {
        let feed = Self::new(capacity);
        let f = feed.clone();
        tokio::spawn(async move { f.read_log(pool, wake, cancel).await });
        feed
    }

    /// Starts reading the installation's JetStream stream (`bus`) from its last message,
    /// keeping the last `capacity` events, until `cancel`. One ordered consumer, reopened
    /// whenever it fails.
    pub fn start_jetstream(bus: Bus, capacity: usize, cancel: CancellationToken) -> Self {
        let feed = Self::new(capacity);
        let f = feed.clone();
        tokio::spawn(async move { f.read_stream(bus, cancel).await });
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

    async fn read_stream(self, bus: Bus, cancel: CancellationToken) {
        let mut refused = Refused::default();
        while !cancel.is_cancelled() {
            let mut messages = match open(&bus).await {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, stream = %bus.names.stream, "feed: cannot open the JetStream consumer; retrying");
                    if sleep_or_cancel(&cancel, Duration::from_secs(1)).await {
                        return;
                    }
                    continue;
                }
            };
            tracing::info!(stream = %bus.names.stream, "feed: reading JetStream");
            loop {
                let first = tokio::select! {
                    _ = cancel.cancelled() => return,
                    m = messages.next() => m,
                };
                let mut received = match first {
                    Some(Ok(m)) => vec![m],
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "feed: the JetStream consumer failed; reopening");
                        break;
                    }
                    None => break,
                };
                // What arrives within a moment joins this batch: one window update, so the
                // tails wake for a burst about as often as they do on the Postgres feed
                // (which reads after the same linger), not once per message.
                let mut failed = false;
                let linger = tokio::time::Instant::now() + crate::relay::LINGER;
                while received.len() < READ as usize {
                    let next = match messages.next().now_or_never() {
                        Some(m) => m,
                        None => match tokio::time::timeout_at(linger, messages.next()).await {
                            Ok(m) => m,
                            Err(_) => break,
                        },
                    };
                    match next {
                        Some(Ok(m)) => received.push(m),
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "feed: the JetStream consumer failed; reopening");
                            failed = true;
                            break;
                        }
                        None => {
                            failed = true;
                            break;
                        }
                    }
                }
                self.receive(&bus, received, &mut refused);
                if failed {
                    break;
                }
            }
            if sleep_or_cancel(&cancel, Duration::from_millis(100)).await {
                return;
            }
        }
    }

    /// Puts the events of `messages` (in stream order) into the window.
    fn receive(&self, bus: &Bus, messages: Vec<jetstream::Message>, refused: &mut Refused) {
        // Decoded before the window is locked: readers take from it meanwhile.
        let ours = bus.installation.to_string();
        let mut decoded: Vec<(RecordedEvent, Cursor)> = Vec::with_capacity(messages.len());
        for m in messages {
            let headers = m.headers.as_ref();
            let header = |name: &str| headers.and_then(|h| h.get(name)).map(|v| v.as_str());
            let from = header(nats::INSTALLATION);
            if from != Some(ours.as_str()) {
                refused.note(bus, from.unwrap_or("none"), &m.subject);
                continue;
            }
            match serde_json::from_slice::<RecordedEvent>(&m.payload) {
                Ok(event) => {
                    let prev = header(nats::PREV_CURSOR)
                        .and_then(|v| v.parse::<Cursor>().ok())
                        .unwrap_or(Cursor::ZERO);
                    decoded.push((event, prev));
                }
                // The next message then does not follow the window: it starts afresh, and
                // readers take this event from the log.
                Err(e) => {
                    tracing::error!(error = %e, subject = %m.subject, "feed: a JetStream message of this installation is not an event; skipped");
                }
            }
        }
        let Ok(mut w) = self.shared.window.write() else {
            return;
        };
        let mut grown = false;
        for (event, prev) in decoded {
            let last = w.events.back().map(|e| e.cursor).or(w.start);
            match last {
                Some(last) if event.cursor <= last => continue, // published again
                Some(last) if prev == last => {}
                _ => {
                    // The first message, or one that does not follow the window's last event.
                    if last.is_some() {
                        tracing::info!(from = ?last, to = %prev, "feed: JetStream skipped events; readers behind take them from the log");
                    }
                    w.events.clear();
                    w.start = Some(prev);
                }
            }
            w.events.push_back(event);
            grown = true;
        }
        if !grown {
            return;
        }
        while w.events.len() > self.shared.capacity {
            if let Some(dropped) = w.events.pop_front() {
                w.start = Some(dropped.cursor);
            }
        }
        drop(w);
        self.shared.grown.send_modify(|n| *n += 1);
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
                through: None,
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

/// An ordered consumer (ephemeral, no acknowledgements, recreated by the client on any gap
/// in its own sequence) of every subject of the installation's stream, from its last message.
async fn open(bus: &Bus) -> Result<jetstream::consumer::pull::Ordered, StoreError> {
    let stream = bus.stream().await?;
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            // One filter subject: nats-server 2.9 drops `filter_subjects`.
            filter_subject: bus.all_subjects(),
            deliver_policy: jetstream::consumer::DeliverPolicy::Last,
            ..Default::default()
        })
        .await
        .map_err(StoreError::js)?;
    consumer.messages().await.map_err(StoreError::js)
}

/// Messages of other installations refused, logged loudly but not once per message.
#[derive(Default)]
struct Refused {
    count: u64,
    logged: Option<std::time::Instant>,
}

impl Refused {
    fn note(&mut self, bus: &Bus, from: &str, subject: &str) {
        self.count += 1;
        if self
            .logged
            .is_some_and(|t| t.elapsed() < Duration::from_secs(10))
        {
            return;
        }
        self.logged = Some(std::time::Instant::now());
        tracing::error!(
            installation = %bus.installation,
            from,
            subject,
            stream = %bus.names.stream,
            refused = self.count,
            "feed: refused a message of another installation: two installations publish to one \
             stream (MAUNTIC_NATS_STREAM / MAUNTIC_NATS_SUBJECT_PREFIX set alike on both?)"
        );
    }
}
