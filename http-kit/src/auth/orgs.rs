//! Organizations as authentication sees them: the Organization aggregate folded from its
//! stream, cached per process, and brought up to date on every request by reading the
//! stream's events after the cached version (one indexed query; usually none). So a
//! revoked key, a removed member or a blocked organization is refused on the very next
//! request, in every process, with no invalidation messages to lose.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cqrs_es::Aggregate;
use domain::identity::organization::{Organization, OrganizationEvent};
use event_store::StoreError;

use sqlx::PgPool;
use uuid::Uuid;

const MAX_CACHED: usize = 100_000;

#[derive(Clone)]
struct Entry {
    version: i64,
    org: Arc<Organization>,
}

/// The current state of organizations, for authentication.
#[derive(Clone)]
pub struct OrgCache {
    pool: PgPool,
    cached: Arc<Mutex<HashMap<Uuid, Entry>>>,
}

impl OrgCache {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            cached: Arc::default(),
        }
    }

    /// Organization `id` as of its latest committed event; `None` if it does not exist.
    #[tracing::instrument(level = "debug", skip(self), err)]
    pub async fn current(&self, id: Uuid) -> Result<Option<Arc<Organization>>, StoreError> {
        let cached = self.cached.lock().ok().and_then(|m| m.get(&id).cloned());
        let since = cached.as_ref().map_or(0, |e| e.version);
        let stream = event_store::recorded::stream_id(id, id);
        let newer =
            event_store::reader::stream_since(&self.pool, Organization::TYPE, &stream, since)
                .await?;
        let Some(last) = newer.last().map(|e| e.sequence) else {
            return Ok(cached.map(|e| e.org));
        };
        let mut org = cached.map_or_else(Organization::default, |e| (*e.org).clone());
        for e in newer {
            org.apply(e.decode::<OrganizationEvent>()?);
        }
        let org = Arc::new(org);
        if let Ok(mut m) = self.cached.lock() {
            if m.len() >= MAX_CACHED {
                m.clear();
            }
            // Keep whichever is newer if another request raced us.
            if m.get(&id).is_none_or(|e| e.version < last) {
                m.insert(
                    id,
                    Entry {
                        version: last,
                        org: org.clone(),
                    },
                );
            }
        }
        Ok(Some(org))
    }
}
