//! The first stage: the claimed jobs sorted into those to check (pending), those to recover
//! (found dispatching: their worker died) and rows with nothing left to do; then the contacts
//! and the organization the ones to check need.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use commands::delivery::jobs::{Loaded, Queue, Write};
use domain::delivery::{Channel, DeliveryCommand, Sender, Status};
use projections::contacts::ContactRow;
use projections::organizations::OrganizationRow;
use sqlx::PgPool;
use uuid::Uuid;

use super::super::resolve::ResolveError;
use super::batch::{bare, decided, message_channel};
use super::{Worker, WorkerError};

/// The contacts of a batch's jobs and their organization.
pub(super) struct Audience {
    pub contacts: Vec<ContactRow>,
    contact_at: HashMap<Uuid, usize>,
    pub org: Option<OrganizationRow>,
}

impl Audience {
    /// The contacts `candidates` name and the organization.
    pub async fn load(
        pool: &PgPool,
        tenant: Uuid,
        candidates: &[(Uuid, Loaded)],
    ) -> Result<Self, WorkerError> {
        let contact_ids: Vec<Uuid> = candidates
            .iter()
            .filter_map(|(_, l)| l.job.request.as_ref().and_then(|r| r.contact_id))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let contacts = projections::contacts::get_many(pool, tenant, &contact_ids, false).await?;
        let contact_at = contacts
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id, i))
            .collect();
        let org = projections::organizations::get(pool, tenant).await?;
        Ok(Self {
            contacts,
            contact_at,
            org,
        })
    }

    /// The place of `contact` in [`Self::contacts`] (`None`: not in the read model).
    pub fn position(&self, contact: Option<Uuid>) -> Option<usize> {
        contact.and_then(|c| self.contact_at.get(&c).copied())
    }

    /// The sender when the job names none: the organization's, else `fallback`.
    pub fn default_from(&self, fallback: &Sender) -> Sender {
        self.org
            .as_ref()
            .and_then(|o| {
                let address = o.settings["sender_email"].as_str()?;
                Some(Sender {
                    address: address.to_owned(),
                    name: o.settings["sender_name"].as_str().map(str::to_owned),
                })
            })
            .unwrap_or_else(|| fallback.clone())
    }
}

impl Worker {
    /// The pending jobs among `ids`, to check; the others' writes go to `writes`.
    pub(super) async fn partition(
        &self,
        tenant: Uuid,
        ids: &[Uuid],
        mut loaded: HashMap<Uuid, Loaded>,
        now: DateTime<Utc>,
        writes: &mut Vec<Write>,
    ) -> Result<Vec<(Uuid, Loaded)>, WorkerError> {
        let mut candidates: Vec<(Uuid, Loaded)> = Vec::new();
        for id in ids {
            let Some(l) = loaded.remove(id) else {
                writes.push(bare(*id, 0, Queue::Remove));
                continue;
            };
            match l.job.status {
                Status::Dispatching => writes.push(self.recover(tenant, *id, l, now).await?),
                s if s.pending() => candidates.push((*id, l)),
                _ => writes.push(bare(*id, l.version, Queue::Remove)),
            }
        }
        Ok(candidates)
    }

    /// A job found dispatching when claimed: its worker died (or its lease lapsed) between
    /// "dispatching" and the provider's answer.
    async fn recover(
        &self,
        tenant: Uuid,
        id: Uuid,
        mut l: Loaded,
        now: DateTime<Utc>,
    ) -> Result<Write, WorkerError> {
        let channel = l.job.request.as_ref().map_or(Channel::Email, |r| r.channel);
        let named = l.job.request.as_ref().and_then(|r| r.provider_id);
        let retry = match self
            .providers
            .resolve(tenant, message_channel(channel), named)
            .await
        {
            Ok(p) => Some(&p.name) == l.job.provider.as_ref() && p.provider.deduplicates(),
            Err(ResolveError::Store(e)) => return Err(WorkerError::Sql(e)),
            Err(_) => false,
        };
        tracing::warn!(job = %id, retry, "delivery job found dispatching after a crash");
        let queue = if retry {
            Queue::DueAt(now)
        } else {
            Queue::Remove
        };
        decided(id, &mut l, DeliveryCommand::Recover { retry, now }, queue).await
    }
}
