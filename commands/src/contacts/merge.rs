//! Merging contact B (the source) into contact A (the target): both aggregates are loaded,
//! the domain decides (`domain::contact::merge`), and both events are appended in one
//! transaction at the streams' expected sequence numbers, together with handing B's email
//! and unique field values to A. Another writer on either stream makes the append conflict:
//! load, decide and append again.

use domain::contact::{Contact, ContactError, MergeRule};
use domain::{ContactId, TenantId};
use event_store::append::AppendError;
use event_store::reservation::{self, Holder, Scope};
use event_store::EventMetadata;

use super::{Contacts, ContactsError};
use crate::executor::{backoff, Accepted, Decided, CONFLICT_RETRIES, MAX_REDIRECTS};
use crate::fields::claims;

impl Contacts {
    /// Merges `source` into `target` (both of `tenant`) under `rule`; answers the target.
    #[tracing::instrument(skip_all, fields(%tenant, %target, %source))]
    pub async fn merge(
        &self,
        tenant: TenantId,
        target: ContactId,
        source: ContactId,
        rule: MergeRule,
        meta: &EventMetadata,
    ) -> Result<Accepted, ContactsError> {
        let s = self;
        let schema = s.fields.schema(tenant).await?;
        let typed_tenant = tenant;
        let (tenant, target, source) = (tenant.0, target.0, source.0);
        let holder = |owner_id| Holder {
            tenant_id: tenant,
            owner_id,
        };
        for attempt in 1..=CONFLICT_RETRIES {
            let (a, a_version) = s.executor.load_versioned(tenant, target).await?;
            let (b, b_version) = s.executor.load_versioned(tenant, source).await?;
            let merged = domain::contact::merge(&a, target, &b, source, rule)
                .map_err(ContactsError::Rejected)?;
            let kept = match &merged.target {
                domain::contact::ContactEvent::ContactMerged { fields, .. } => {
                    claims::unique_values(
                        &schema,
                        tenant,
                        fields.iter().map(|(k, v)| (k.as_str(), v)),
                    )
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
            let mut tx = s.pool.begin().await?;
            let cursor = match s
                .executor
                .append_decided(&mut tx, tenant, &events, meta)
                .await
            {
                Ok(Some(c)) => c,
                Ok(None) => {
                    return Err(ContactsError::Technical("a merge decided no event".into()))
                }
                Err(AppendError::Conflict) => {
                    drop(tx);
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
                Err(AppendError::Store(e)) => return Err(e.into()),
            };
            // B's email and unique values resolve to A from now on, or neither happens.
            for scope in [Scope::ContactEmail, Scope::ContactField] {
                reservation::transfer(&mut *tx, scope, holder(source), holder(target)).await?;
            }
            tx.commit().await?;
            s.executor.poke();
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
            claims::release(&s.pool, typed_tenant, ContactId(target), &unused).await;
            return Ok(Accepted { id: target, cursor });
        }
        Err(ContactsError::Conflict)
    }
}

/// Contact `id` of `tenant`, or the contact it was merged into (followed along a chain):
/// the id that answers for it and that contact's state.
pub(super) async fn follow(
    s: &Contacts,
    tenant: TenantId,
    id: ContactId,
) -> Result<(ContactId, Contact), ContactsError> {
    let mut id = id.0;
    for _ in 0..=MAX_REDIRECTS {
        let c = s.executor.load(tenant.0, id).await?;
        match c.merged_into {
            Some(next) if next != id => id = next,
            _ => return Ok((ContactId(id), c)),
        }
    }
    Err(ContactsError::Rejected(ContactError::NotFound))
}
