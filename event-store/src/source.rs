//! One subscriber interface, two sources.
//!
//! [`PgTail`] reads the log itself; [`JetStreamSource`] reads a durable pull consumer of the
//! events stream. Both hand out the same events in the same cursor order: the JetStream
//! source checks each message's `Mauntic-Prev-Cursor` against what it has handed out and
//! fills any gap from the log, and drops anything at or below the caller's cursor.

use std::time::Duration;

use async_nats::jetstream;
use async_trait::async_trait;
use futures::{FutureExt, StreamExt};
use sqlx::PgPool;

use crate::nats::{self, Bus};
use crate::reader::{self, Filter};
use crate::wakeup::{Pacer, Wakeup};
use crate::{Cursor, RecordedEvent, StoreError};

/// Events to handle, and what to acknowledge once they are durably handled.
#[derive(Default)]
pub struct Batch {
    pub events: Vec<RecordedEvent>,
    /// How far the source read the log when it filters by aggregate type: every event up to
    /// here that is not in `events` does not concern the caller, whose checkpoint may move
    /// here once `events` are handled.
    pub through: Option<Cursor>,
    pub(crate) acks: Vec<jetstream::Message>,
}

impl Batch {
    /// Acknowledges the batch to its source. Call only after the handler's commit.
    pub async fn ack(self) -> Result<(), StoreError> {
        for m in self.acks {
            m.ack().await.map_err(StoreError::js)?;
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.acks.is_empty() && self.through.is_none()
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
        Ok(Batch {
            events,
            through,
            acks: vec![],
        })
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

/// A durable pull consumer (explicit ack, one filter subject) of the events stream.
/// Reopens the consumer after the connection or the stream failed (NATS restarted, say).
pub struct JetStreamSource {
    pool: PgPool,
    bus: Bus,
    name: String,
    messages: Option<jetstream::consumer::pull::Stream>,
    poll: Duration,
}

impl JetStreamSource {
    /// Opens (creating if needed) the durable consumer `name` over every event subject.
    pub async fn open(pool: PgPool, bus: &Bus, name: &str) -> Result<Self, StoreError> {
        let messages = Self::consume(bus, name).await?;
        Ok(Self {
            pool,
            bus: bus.clone(),
            name: name.to_owned(),
            messages: Some(messages),
            poll: Duration::from_millis(500),
        })
    }

    async fn consume(
        bus: &Bus,
        name: &str,
    ) -> Result<jetstream::consumer::pull::Stream, StoreError> {
        let stream = bus.stream().await?;
        let durable: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let consumer: jetstream::consumer::PullConsumer = stream
            .get_or_create_consumer(
                &durable,
                jetstream::consumer::pull::Config {
                    durable_name: Some(durable.clone()),
                    // One filter subject: nats-server 2.9 drops `filter_subjects`.
                    filter_subject: bus.all_subjects(),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    deliver_policy: jetstream::consumer::DeliverPolicy::All,
                    ack_wait: Duration::from_secs(60),
                    max_ack_pending: 20_000,
                    ..Default::default()
                },
            )
            .await
            .map_err(StoreError::js)?;
        consumer
            .stream()
            .max_messages_per_batch(1000)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
            .map_err(StoreError::js)
    }

    async fn decode(m: &jetstream::Message) -> Result<(RecordedEvent, Cursor), StoreError> {
        let event: RecordedEvent = serde_json::from_slice(&m.payload)
            .map_err(|e| StoreError::Malformed(format!("jetstream message body: {e}")))?;
        let prev = m
            .headers
            .as_ref()
            .and_then(|h| h.get(nats::PREV_CURSOR))
            .and_then(|v| v.as_str().parse::<Cursor>().ok())
            .unwrap_or(Cursor::ZERO);
        Ok((event, prev))
    }

    /// The events after `from` up to and including `to`, read from the log.
    async fn fill(&self, from: Cursor, to: Cursor) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut out = Vec::new();
        let mut at = from;
        while at < to {
            let page = reader::read_after(&self.pool, at, 1000, &Filter::default()).await?;
            let Some(last) = page.last().map(|e| e.cursor) else {
                break;
            };
            out.extend(page.into_iter().filter(|e| e.cursor <= to));
            at = last;
        }
        Ok(out)
    }
}

#[async_trait]
impl EventSource for JetStreamSource {
    async fn next_batch(&mut self, after: Cursor, max: usize) -> Result<Batch, StoreError> {
        let mut batch = Batch::default();
        let messages = match &mut self.messages {
            Some(m) => m,
            None => self
                .messages
                .insert(Self::consume(&self.bus, &self.name).await?),
        };
        let first = match tokio::time::timeout(self.poll, messages.next()).await {
            Err(_) => return Ok(batch),
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(e))) => {
                self.messages = None;
                return Err(StoreError::js(e));
            }
            Ok(None) => {
                self.messages = None;
                return Err(StoreError::js("consumer stream ended"));
            }
        };
        let mut received = vec![first];
        // Let a burst gather for a moment so it becomes one batch (one transaction).
        let linger = tokio::time::Instant::now() + crate::relay::LINGER;
        while received.len() < max {
            let next = match messages.next().now_or_never() {
                Some(m) => m,
                None => match tokio::time::timeout_at(linger, messages.next()).await {
                    Ok(m) => m,
                    Err(_) => break,
                },
            };
            match next {
                Some(Ok(m)) => received.push(m),
                // Handle what arrived; the next call reopens the consumer.
                Some(Err(_)) | None => {
                    self.messages = None;
                    break;
                }
            }
        }
        let mut expected = after;
        for m in received {
            let (event, prev) = Self::decode(&m).await?;
            if event.cursor > expected {
                if prev > expected {
                    // Messages between what we handed out and this one never reached us
                    // (stream limits, a purge, a consumer created late): read them from the log.
                    let missing = self.fill(expected, prev).await?;
                    tracing::info!(from = %expected, to = %prev, n = missing.len(), "filled a gap from the log");
                    batch.events.extend(missing);
                }
                expected = event.cursor;
                batch.events.push(event);
            }
            batch.acks.push(m);
        }
        Ok(batch)
    }
}
