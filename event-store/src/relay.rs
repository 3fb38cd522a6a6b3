//! The relay: one leader in the whole deployment tails the log in cursor order and publishes
//! every event to JetStream, then stores its cursor.
//!
//! Leadership is a session-level Postgres advisory lock held on a dedicated connection; the
//! relay's reads and cursor writes go through that same connection, so a leader that lost its
//! connection (and with it the lock) cannot write anything. When a leader dies, Postgres drops
//! its session and a follower, which retries the lock every half second, takes over.

use std::time::Duration;

use sqlx::{Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use crate::nats::Bus;
use crate::reader::{self, Filter};
use crate::wakeup::{Pacer, Wakeup};
use crate::{checkpoint, Cursor, StoreError};

/// The advisory lock key of the relay ("MAUNTIC" + 1).
pub const LOCK_KEY: i64 = 0x4d41_554e_5449_4301;
/// The relay's checkpoint name.
pub const CHECKPOINT: &str = "relay";
/// After a wake-up, how long to let more appends gather so a burst becomes one batch.
pub const LINGER: Duration = Duration::from_millis(5);

pub struct Relay {
    pool: PgPool,
    bus: Bus,
    batch: i64,
    poll: Duration,
}

impl Relay {
    pub fn new(pool: PgPool, bus: Bus) -> Self {
        Self {
            pool,
            bus,
            batch: 2000,
            poll: Duration::from_millis(500),
        }
    }

    /// Events per batch (default 2000).
    pub fn with_batch(mut self, batch: i64) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// Runs until `cancel`: waits for leadership, then publishes while it leads.
    pub async fn run(self, mut wake: Wakeup, cancel: CancellationToken) {
        // A follower keeps one connection to try the lock on, rather than a new one each time.
        let mut candidate: Option<PgConnection> = None;
        while !cancel.is_cancelled() {
            let mut conn = match self.try_lead_on(&mut candidate).await {
                Ok(Some(conn)) => conn,
                Ok(None) => {
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(500)) => continue,
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "relay: cannot try for leadership");
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            };
            tracing::info!("relay: leading");
            // The cursor is read once per leadership and then kept in memory.
            let mut at = match checkpoint::load(&mut conn, CHECKPOINT).await {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "relay: cannot read its cursor");
                    None
                }
            };
            let mut pacer = Pacer::new(self.poll);
            let mut woken = false;
            while let Some(from) = at {
                if cancel.is_cancelled() {
                    let _ = conn.close().await;
                    return;
                }
                match self.publish_after(&mut conn, from).await {
                    Ok((n, to)) => {
                        at = Some(to);
                        pacer.found(woken, n > 0);
                        woken = false;
                        if (n as i64) < self.batch {
                            tokio::select! {
                                _ = cancel.cancelled() => {}
                                w = pacer.wait(&mut wake) => woken = w,
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "relay: publishing failed; giving up leadership");
                        break;
                    }
                }
            }
            // Dropping the connection ends the session and releases the lock.
            drop(conn);
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// A connection holding the relay lock, or `None` if another process leads.
    pub async fn try_lead(&self) -> Result<Option<PgConnection>, StoreError> {
        self.try_lead_on(&mut None).await
    }

    /// Tries the lock on `candidate` (opening it if empty); on success hands the connection
    /// over, otherwise keeps it there for the next try.
    async fn try_lead_on(
        &self,
        candidate: &mut Option<PgConnection>,
    ) -> Result<Option<PgConnection>, StoreError> {
        let mut conn = match candidate.take() {
            Some(c) => c,
            None => self.pool.acquire().await?.detach(),
        };
        let (got,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
            .bind(LOCK_KEY)
            .fetch_one(&mut conn)
            .await?;
        if got {
            Ok(Some(conn))
        } else {
            *candidate = Some(conn);
            Ok(None)
        }
    }

    /// Publishes the next batch after the relay's cursor, awaits every PubAck, then stores
    /// the cursor. Returns how many events it published.
    #[tracing::instrument(level = "debug", skip_all, err)]
    pub async fn publish_batch(&self, lead: &mut PgConnection) -> Result<usize, StoreError> {
        let from = checkpoint::load(&mut *lead, CHECKPOINT).await?;
        Ok(self.publish_after(lead, from).await?.0)
    }

    /// Publishes the next batch after `from`; returns how many it published and its new cursor.
    async fn publish_after(
        &self,
        lead: &mut PgConnection,
        from: Cursor,
    ) -> Result<(usize, Cursor), StoreError> {
        let events = reader::read_after(&mut *lead, from, self.batch, &Filter::default()).await?;
        let Some(last) = events.last().map(|e| e.cursor) else {
            return Ok((0, from));
        };
        let mut acks = Vec::with_capacity(events.len());
        let mut prev = from;
        for e in &events {
            let msg = self.bus.message(e, prev)?;
            let ack = self
                .bus
                .js
                .send_publish(self.bus.subject(e), msg)
                .await
                .map_err(StoreError::js)?;
            acks.push(ack);
            prev = e.cursor;
        }
        for ack in acks {
            ack.await.map_err(StoreError::js)?;
        }
        checkpoint::advance(&mut *lead, CHECKPOINT, last).await?;
        Ok((events.len(), last))
    }
}
