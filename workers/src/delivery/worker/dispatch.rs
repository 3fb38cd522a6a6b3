//! The last stage: `DeliveryDispatching` in the log before any provider is called, a chunk
//! at a time; the providers called concurrently; their answers recorded (sent, retried with
//! backoff, given up, in doubt) and the addresses they say are gone suppressed.

use std::time::Duration;

use chrono::{DateTime, Utc};
use commands::delivery::jobs::{JobsError, Loaded, Queue, Write};
use domain::delivery::suppression::SuppressionReason;
use domain::delivery::DeliveryCommand;
use event_store::{Cursor, EventMetadata};
use futures::StreamExt;
use uuid::Uuid;

use super::super::provider::SendError;
use super::batch::{decided, Dispatched};
use super::{Worker, WorkerError};

impl Worker {
    /// Records `writes` with the first chunk's `dispatching`, then hands each chunk of
    /// `dispatch` to its providers once its `dispatching` is recorded; the jobs sent.
    pub(super) async fn dispatch(
        &self,
        tenant: Uuid,
        meta: &EventMetadata,
        mut writes: Vec<Write>,
        dispatching: Vec<Write>,
        dispatch: Vec<Dispatched>,
        now: DateTime<Utc>,
    ) -> Result<usize, WorkerError> {
        // "Dispatching" is in the log before any provider is called, a chunk of
        // `concurrency` jobs at a time: a crash leaves in doubt only what was being handed
        // over, not the rest of the batch (the other decisions go with the first chunk).
        let chunk = self.config.concurrency.max(1);
        let (mut dispatching, mut dispatch) = (dispatching.into_iter(), dispatch.into_iter());
        let mut sent = 0;
        let lease = chrono::Duration::from_std(self.config.lease)
            .unwrap_or_else(|_| chrono::Duration::minutes(5));
        loop {
            // The chunk handed over now holds its rows for a whole lease from here, not from
            // the claim: a batch that waited (read models, its earlier chunks) never has a
            // live worker's messages found "dispatching" by another claim, and put in doubt.
            let until = self.clock.now().max(now) + lease;
            writes.extend(dispatching.by_ref().take(chunk).map(|mut w| {
                w.queue = Queue::DueAt(until);
                w
            }));
            let now_sending: Vec<Dispatched> = dispatch.by_ref().take(chunk).collect();
            self.jobs.record(tenant, meta, &writes).await?;
            writes.clear();
            if now_sending.is_empty() {
                break;
            }
            sent += self.send_all(tenant, meta, now_sending, now).await?;
        }
        Ok(sent)
    }

    /// Calls the providers and records their answers.
    async fn send_all(
        &self,
        tenant: Uuid,
        meta: &EventMetadata,
        dispatch: Vec<Dispatched>,
        now: DateTime<Utc>,
    ) -> Result<usize, WorkerError> {
        let answers: Vec<(Dispatched, Result<_, SendError>)> = futures::stream::iter(dispatch)
            .map(|d| async move {
                let r = d.provider.provider.send(&d.message).await;
                (d, r)
            })
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await;
        // A retry's delay counts from the answer (a provider's Retry-After does), not from
        // the claim: the batch may have waited for read models and other sends since.
        let answered = self.clock.now().max(now);
        let mut writes = Vec::with_capacity(answers.len());
        let mut sent = 0;
        // Addresses the providers say are gone: suppressed once the outcomes are recorded.
        let mut gone = Vec::new();
        for (mut d, answer) in answers {
            let mut loaded = Loaded {
                job: std::mem::take(&mut d.job),
                version: d.version,
                requested: Cursor::ZERO,
            };
            let (command, queue, message) = match answer {
                Ok(s) => {
                    sent += 1;
                    let pm = (d.provider.name.clone(), s.provider_message_id.clone());
                    (
                        DeliveryCommand::RecordSent {
                            provider_message_id: s.provider_message_id,
                        },
                        Queue::Remove,
                        Some(pm),
                    )
                }
                Err(SendError::Transient {
                    reason,
                    retry_after,
                }) if loaded.job.attempts < self.config.max_attempts => {
                    let retry_at = answered + self.backoff(loaded.job.attempts, retry_after);
                    (
                        DeliveryCommand::RecordTransientFailure {
                            error: reason,
                            retry_at,
                        },
                        Queue::DueAt(retry_at),
                        None,
                    )
                }
                Err(SendError::Transient { reason, .. }) => (
                    DeliveryCommand::GiveUp {
                        error: format!("gave up after {} attempts: {reason}", loaded.job.attempts),
                    },
                    Queue::Remove,
                    None,
                ),
                Err(SendError::Permanent { reason }) => (
                    DeliveryCommand::GiveUp { error: reason },
                    Queue::Remove,
                    None,
                ),
                Err(SendError::Unreachable { reason }) => {
                    if let Some(channel) = loaded.job.request.as_ref().map(|r| r.channel) {
                        if let Ok(address) =
                            commands::suppressions::normalize(channel, d.message.address())
                        {
                            gone.push((
                                channel,
                                address,
                                SuppressionReason::HardBounce,
                                Some(format!("job:{}", d.id)),
                            ));
                        }
                    }
                    (
                        DeliveryCommand::GiveUp { error: reason },
                        Queue::Remove,
                        None,
                    )
                }
                Err(SendError::Unknown { reason }) => {
                    tracing::warn!(job = %d.id, %reason, "provider outcome unknown");
                    let retry = d.provider.provider.deduplicates();
                    let queue = if retry {
                        Queue::DueAt(now)
                    } else {
                        Queue::Remove
                    };
                    (DeliveryCommand::Recover { retry, now }, queue, None)
                }
            };
            let mut w = decided(d.id, &mut loaded, command, queue).await?;
            w.provider_message = message;
            writes.push(w);
        }
        // The messages have left: losing their outcomes to a database blip would leave them in
        // doubt, so recording is tried a few times before giving the batch up to recovery.
        let mut attempt = 0u32;
        loop {
            match self.jobs.record(tenant, meta, &writes).await {
                Ok(_) => break,
                Err(JobsError::Store(e)) if attempt < 5 => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "recording delivery outcomes failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        if !gone.is_empty() {
            // A lost suppression costs one more refused send (which suppresses again): the
            // outcomes, already recorded, stand either way.
            if let Err(e) = commands::suppressions::suppress_many(
                self.jobs.pool(),
                self.jobs.notifier(),
                tenant,
                meta,
                &gone,
            )
            .await
            {
                tracing::warn!(error = %e, "suppressing addresses providers report gone failed");
            }
        }
        Ok(sent)
    }

    /// The delay before attempt `attempts + 1`: doubling from `retry_base` with ±20 %
    /// jitter, at most an hour, and never sooner than the provider asked.
    fn backoff(&self, attempts: u32, asked: Option<Duration>) -> chrono::Duration {
        use rand::Rng;
        let base = self.config.retry_base.as_secs_f64()
            * 2f64.powi(attempts.saturating_sub(1).min(16) as i32);
        let jittered = base.min(3600.0) * rand::thread_rng().gen_range(0.8..1.2);
        let secs = jittered.max(asked.map_or(0.0, |a| a.as_secs_f64()));
        chrono::Duration::milliseconds((secs * 1000.0) as i64)
    }
}
