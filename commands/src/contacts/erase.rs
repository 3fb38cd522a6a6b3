//! Erasing a contact (GDPR): in one transaction, `ContactErased` is appended to its stream at
//! the expected sequence, the keys of its stream and of the streams of every contact merged
//! into it are deleted (crypto-shredding: their personal values read as erased in every
//! replay from now on), and their email and unique-field reservations (clear text) go. A
//! concurrent write to the stream makes the append conflict: load, decide and append again.

use std::collections::BTreeSet;

use domain::contact::Contact;
use domain::{ContactId, TenantId};
use event_store::append::AppendError;
use event_store::recorded::stream_id;
use event_store::reservation::{self, Scope};
use event_store::{shred, EventMetadata};
use uuid::Uuid;

use super::{Contacts, ContactsError};
use crate::executor::{backoff, Accepted, Decided, CONFLICT_RETRIES};

/// Most contacts merged into one that an erasure follows (a bound, not a rule).
const MAX_MERGED: usize = 10_000;

impl Contacts {
    /// Erases contact `id` of `tenant` and the contacts merged into it. Refused (409
    /// `already-merged`, with `survivor_id`) for a contact merged into another one: erase the
    /// survivor, which erases this one too.
    #[tracing::instrument(skip_all, fields(%tenant, %id))]
    pub async fn erase(
        &self,
        tenant: TenantId,
        id: ContactId,
        meta: &EventMetadata,
    ) -> Result<Accepted, ContactsError> {
        let s = self;
        let (tenant, id) = (tenant.0, id.0);
        for attempt in 1..=CONFLICT_RETRIES {
            let (contact, version) = s.executor.load_versioned(tenant, id).await?;
            let also = merged_into(s, tenant, &contact).await?;
            let event = contact
                .erase(also.clone())
                .map_err(ContactsError::Rejected)?;
            let mut tx = s.pool.begin().await?;
            let decided = [Decided { id, version, event }];
            let cursor = match s
                .executor
                .append_decided(&mut tx, tenant, &decided, meta)
                .await
            {
                Ok(Some(c)) => c,
                Ok(None) => {
                    return Err(ContactsError::Technical("erasure decided no event".into()))
                }
                Err(AppendError::Conflict) => {
                    drop(tx);
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
                Err(AppendError::Store(e)) => return Err(e.into()),
            };
            let people: Vec<Uuid> = std::iter::once(id).chain(also).collect();
            let streams: Vec<String> = people.iter().map(|c| stream_id(tenant, *c)).collect();
            shred::erase(&mut tx, &streams).await?;
            reservation::release_owned(
                &mut *tx,
                &[Scope::ContactEmail, Scope::ContactField],
                tenant,
                &people,
            )
            .await?;
            tx.commit().await?;
            s.executor.poke();
            return Ok(Accepted { id, cursor });
        }
        Err(ContactsError::Conflict)
    }
}

/// Every contact merged into `contact`, directly or along a chain (B into A, A into C:
/// both A and B for C).
async fn merged_into(
    s: &Contacts,
    tenant: Uuid,
    contact: &Contact,
) -> Result<Vec<Uuid>, ContactsError> {
    let mut seen: BTreeSet<Uuid> = BTreeSet::new();
    let mut todo: Vec<Uuid> = contact.merged_from.iter().copied().collect();
    while let Some(next) = todo.pop() {
        if !seen.insert(next) || seen.len() > MAX_MERGED {
            continue;
        }
        let c = s.executor.load(tenant, next).await?;
        todo.extend(c.merged_from.iter().copied().filter(|m| !seen.contains(m)));
    }
    Ok(seen.into_iter().collect())
}
