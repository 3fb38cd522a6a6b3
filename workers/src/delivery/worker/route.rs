//! Each ready job's provider (the one its request names, else the channel's default),
//! resolved once per batch, and the provider's rate: a job over it goes back to the queue for
//! a moment; a job whose provider cannot be had is given up (a failed lookup gives the whole
//! batch back instead).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use commands::delivery::jobs::Write;
use uuid::Uuid;

use super::super::resolve::{ResolveError, Resolved};
use super::batch::{given_up, message_channel, ProviderKey, Ready, Routed};
use super::{limits, queue, Worker, WorkerError};

impl Worker {
    /// The ready jobs that have a provider and room in its rate.
    pub(super) async fn route(
        &self,
        tenant: Uuid,
        ready: Vec<Ready>,
        now: DateTime<Utc>,
        writes: &mut Vec<Write>,
    ) -> Result<Vec<Routed>, WorkerError> {
        let mut providers: HashMap<ProviderKey, Result<Resolved, String>> = HashMap::new();
        let mut rate_granted: HashMap<ProviderKey, i64> = HashMap::new();
        let mut wants: HashMap<ProviderKey, i64> = HashMap::new();
        for r in &ready {
            if let Some(req) = &r.loaded.job.request {
                *wants.entry((req.channel, req.provider_id)).or_default() += 1;
            }
        }
        let mut routed = Vec::with_capacity(ready.len());
        let mut released = Vec::new();
        for mut r in ready {
            let Some(request) = r.loaded.job.request.as_ref() else {
                continue;
            };
            let key = (request.channel, request.provider_id);
            let resolved = match providers.get(&key) {
                Some(p) => p.clone(),
                None => {
                    let p = self
                        .providers
                        .resolve(tenant, message_channel(key.0), key.1)
                        .await;
                    // A failed lookup gives the batch back; a provider that cannot be had
                    // gives the message up.
                    let p = match p {
                        Err(ResolveError::Store(e)) => return Err(WorkerError::Sql(e)),
                        p => p.map_err(|e| e.to_string()),
                    };
                    providers.insert(key, p.clone());
                    p
                }
            };
            let resolved = match resolved {
                Ok(p) => p,
                Err(reason) => {
                    writes.push(given_up(r.id, &mut r.loaded, reason).await?);
                    continue;
                }
            };
            if let Some(rate) = resolved.rate_per_second {
                let granted = match rate_granted.get(&key) {
                    Some(g) => *g,
                    None => {
                        let want = wants.get(&key).copied().unwrap_or(0);
                        let scope = format!("rate:{}", resolved.name);
                        let g = limits::take_tokens(&self.pool, tenant, &scope, rate, want, now)
                            .await?;
                        rate_granted.insert(key, g);
                        g
                    }
                };
                if granted <= 0 {
                    released.push(r.id);
                    continue;
                }
                rate_granted.insert(key, granted - 1);
            }
            routed.push(Routed {
                ready: r,
                provider: resolved,
            });
        }
        if !released.is_empty() {
            // Over the provider's rate: due again when the bucket has refilled a little.
            queue::release(
                &self.pool,
                tenant,
                &released,
                now + chrono::Duration::milliseconds(200),
            )
            .await?;
        }
        Ok(routed)
    }
}
