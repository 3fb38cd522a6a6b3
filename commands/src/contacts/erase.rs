//! Erasing a contact (GDPR): in one transaction, `ContactErased` is appended to its stream at
//! the expected sequence, the keys of its stream and of the streams of every contact merged
//! into it are deleted (crypto-shredding: their personal values read as erased in every
//! replay from now on), and their email and unique-field reservations (clear text) go. A
//! concurrent write to the stream makes the append conflict: load, decide and append again.

use std::collections::BTreeSet;

use domain::contact::{Contact, ContactError};
use event_store::append::AppendError;
use event_store::recorded::stream_id;
use event_store::reservation::{self, Scope};
use event_store::{shred, EventMetadata};
use http_kit::Problem;
use uuid::Uuid;

use crate::executor::{backoff, Accepted, Decided, CONFLICT_RETRIES};
use crate::{CommandError, CommandState};

/// Most contacts merged into one that an erasure follows (a bound, not a rule).
const MAX_MERGED: usize = 10_000;

fn failed(e: CommandError<ContactError>) -> Problem {
    e.into()
}

/// Erases contact `id` of `tenant` and the contacts merged into it. Refused (409
/// `already-merged`, with `survivor_id`) for a contact merged into another one: erase the
/// survivor, which erases this one too.
#[tracing::instrument(skip_all, fields(%tenant, %id))]
pub async fn erase(
    s: &CommandState,
    tenant: Uuid,
    id: Uuid,
    meta: &EventMetadata,
) -> Result<Accepted, Problem> {
    let internal = |e: &dyn std::error::Error| Problem::from_internal(e);
    for attempt in 1..=CONFLICT_RETRIES {
        let (contact, version) = s
            .contacts
            .load_versioned(tenant, id)
            .await
            .map_err(failed)?;
        let also = merged_into(s, tenant, &contact).await?;
        let event = contact
            .erase(also.clone())
            .map_err(|e| failed(CommandError::Rejected(e)))?;
        let mut tx = s.pool.begin().await.map_err(|e| internal(&e))?;
        let decided = [Decided { id, version, event }];
        let cursor = match s
            .contacts
            .append_decided(&mut tx, tenant, &decided, meta)
            .await
        {
            Ok(Some(c)) => c,
            Ok(None) => return Err(Problem::internal()),
            Err(AppendError::Conflict) => {
                drop(tx);
                tokio::time::sleep(backoff(attempt)).await;
                continue;
            }
            Err(AppendError::Store(e)) => return Err(internal(&e)),
        };
        let people: Vec<Uuid> = std::iter::once(id).chain(also).collect();
        let streams: Vec<String> = people.iter().map(|c| stream_id(tenant, *c)).collect();
        shred::erase(&mut tx, &streams)
            .await
            .map_err(|e| internal(&e))?;
        reservation::release_owned(
            &mut *tx,
            &[Scope::ContactEmail, Scope::ContactField],
            tenant,
            &people,
        )
        .await
        .map_err(|e| internal(&e))?;
        tx.commit().await.map_err(|e| internal(&e))?;
        s.contacts.poke();
        return Ok(Accepted { id, cursor });
    }
    Err(failed(CommandError::Conflict))
}

/// Every contact merged into `contact`, directly or along a chain (B into A, A into C:
/// both A and B for C).
async fn merged_into(
    s: &CommandState,
    tenant: Uuid,
    contact: &Contact,
) -> Result<Vec<Uuid>, Problem> {
    let mut seen: BTreeSet<Uuid> = BTreeSet::new();
    let mut todo: Vec<Uuid> = contact.merged_from.iter().copied().collect();
    while let Some(next) = todo.pop() {
        if !seen.insert(next) || seen.len() > MAX_MERGED {
            continue;
        }
        let c = s.contacts.load(tenant, next).await.map_err(failed)?;
        todo.extend(c.merged_from.iter().copied().filter(|m| !seen.contains(m)));
    }
    Ok(seen.into_iter().collect())
}
