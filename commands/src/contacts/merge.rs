//! Merging contact B (the source) into contact A (the target): both aggregates are loaded,
//! the domain decides (`domain::contact::merge`), and both events are appended in one
//! transaction at the streams' expected sequence numbers, together with handing B's email
//! and unique field values to A. Another writer on either stream makes the append conflict:
//! load, decide and append again.

use domain::contact::{Contact, ContactError, MergeRule};
use event_store::append::AppendError;
use event_store::reservation::{self, Holder, Scope};
use event_store::EventMetadata;
use http_kit::Problem;
use uuid::Uuid;

use crate::executor::{backoff, Accepted, Decided, CONFLICT_RETRIES, MAX_REDIRECTS};
use crate::fields::claims;
use crate::{CommandError, CommandState};

fn rejected(e: ContactError) -> Problem {
    CommandError::Rejected(e).into()
}

fn failed(e: CommandError<ContactError>) -> Problem {
    e.into()
}

/// Merges `source` into `target` (both of `tenant`) under `rule`; answers the target.
#[tracing::instrument(skip_all, fields(%tenant, %target, %source))]
pub async fn merge(
    s: &CommandState,
    tenant: Uuid,
    target: Uuid,
    source: Uuid,
    rule: MergeRule,
    meta: &EventMetadata,
) -> Result<Accepted, Problem> {
    let schema = crate::fields::schema(s, tenant).await?;
    let holder = |owner_id| Holder {
        tenant_id: tenant,
        owner_id,
    };
    let internal = |e: &dyn std::error::Error| Problem::from_internal(e);
    for attempt in 1..=CONFLICT_RETRIES {
        let (a, a_version) = s
            .contacts
            .load_versioned(tenant, target)
            .await
            .map_err(failed)?;
        let (b, b_version) = s
            .contacts
            .load_versioned(tenant, source)
            .await
            .map_err(failed)?;
        let merged = domain::contact::merge(&a, target, &b, source, rule).map_err(rejected)?;
        let kept = match &merged.target {
            domain::contact::ContactEvent::ContactMerged { fields, .. } => {
                claims::unique_values(&schema, tenant, fields.iter().map(|(k, v)| (k.as_str(), v)))
            }
            _ => Vec::new(),
        };
        let events = [
            Decided {
                id: source,
                version: b_version,
                event: merged.source,
            },
            Decided {
                id: target,
                version: a_version,
                event: merged.target,
            },
        ];
        let mut tx = s.pool.begin().await.map_err(|e| internal(&e))?;
        let cursor = match s
            .contacts
            .append_decided(&mut tx, tenant, &events, meta)
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
        // B's email and unique values resolve to A from now on, or neither happens.
        for scope in [Scope::ContactEmail, Scope::ContactField] {
            reservation::transfer(&mut *tx, scope, holder(source), holder(target))
                .await
                .map_err(|e| internal(&e))?;
        }
        tx.commit().await.map_err(|e| internal(&e))?;
        s.contacts.poke();
        // Unique values neither contact keeps are free again.
        let unused: Vec<(String, String)> = [&a, &b]
            .iter()
            .flat_map(|c| {
                claims::unique_values(
                    &schema,
                    tenant,
                    c.fields.iter().map(|(k, v)| (k.as_str(), v)),
                )
            })
            .filter(|v| !kept.iter().any(|k| k.1 == v.1))
            .collect();
        claims::release(s, tenant, target, &unused).await;
        return Ok(Accepted { id: target, cursor });
    }
    Err(failed(CommandError::Conflict))
}

/// Contact `id` of `tenant`, or the contact it was merged into (followed along a chain):
/// the id that answers for it and that contact's state.
pub async fn follow(s: &CommandState, tenant: Uuid, id: Uuid) -> Result<(Uuid, Contact), Problem> {
    let mut id = id;
    for _ in 0..=MAX_REDIRECTS {
        let c = s.contacts.load(tenant, id).await.map_err(failed)?;
        match c.merged_into {
            Some(next) if next != id => id = next,
            _ => return Ok((id, c)),
        }
    }
    Err(rejected(ContactError::NotFound))
}
