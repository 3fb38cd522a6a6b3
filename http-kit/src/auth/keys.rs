//! API keys: `mk_<48 hex>` (secret) or `mkp_<48 hex>` (public, ingest only). A key is
//! stored as its SHA-256 digest in its organization's stream, and reserved under that digest
//! (`event_store::reservation`) so a presented key leads to its organization in one lookup.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use domain::identity::{Digest, KeyKind};
use event_store::reservation::{self, Holder, Scope};
use event_store::StoreError;
use sqlx::PgPool;
use uuid::Uuid;

use crate::secret;

/// How often a key's "last used" time is written at most.
const USAGE_EVERY: Duration = Duration::from_secs(60);
/// Entries kept in memory before the maps are cleared.
const MAX_CACHED: usize = 100_000;

/// A freshly made key: the plain text is shown once, the digest is stored.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub plain: String,
    pub digest: Digest,
    /// The first characters, shown in lists to recognise the key.
    pub prefix: String,
}

/// Makes a key of `kind` with 192 random bits.
pub fn generate(kind: KeyKind) -> NewKey {
    let head = match kind {
        KeyKind::Secret => "mk_",
        KeyKind::Public => "mkp_",
    };
    let plain = format!("{head}{}", secret::random_hex(24));
    NewKey {
        digest: secret::digest(&plain),
        prefix: plain.chars().take(head.len() + 6).collect(),
        plain,
    }
}

/// Finds the organization and key a presented key belongs to, and records key use.
///
/// The digest → key mapping never changes once made, so it is cached without expiry;
/// whether the key is still live is decided from the organization's current state
/// (`OrgCache`) on every request.
#[derive(Clone)]
pub struct KeyResolver {
    pool: PgPool,
    index: Arc<Mutex<HashMap<Digest, Holder>>>,
    usage: Arc<Mutex<HashMap<Uuid, Instant>>>,
}

impl KeyResolver {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            index: Arc::default(),
            usage: Arc::default(),
        }
    }

    /// The organization and key id of `key`, with its digest; `None` for an unknown key.
    pub async fn locate(&self, key: &str) -> Result<Option<(Holder, Digest)>, StoreError> {
        if !(key.starts_with("mk_") || key.starts_with("mkp_")) || key.len() > 100 {
            return Ok(None);
        }
        let digest = secret::digest(key);
        if let Some(h) = self.index.lock().ok().and_then(|m| m.get(&digest).copied()) {
            return Ok(Some((h, digest)));
        }
        let Some(holder) = reservation::lookup(&self.pool, Scope::ApiKey, &digest.0).await? else {
            return Ok(None);
        };
        if let Ok(mut m) = self.index.lock() {
            if m.len() >= MAX_CACHED {
                m.clear();
            }
            m.insert(digest.clone(), holder);
        }
        Ok(Some((holder, digest)))
    }

    /// Notes that `key` of `org` was used at `at`, writing it at most once a minute per key
    /// (in the background: the request does not wait).
    pub fn record_use(&self, org: Uuid, key: Uuid, at: DateTime<Utc>) {
        let now = Instant::now();
        let due = match self.usage.lock() {
            Ok(mut m) => {
                let due = m
                    .get(&key)
                    .is_none_or(|t| now.duration_since(*t) >= USAGE_EVERY);
                if due {
                    if m.len() >= MAX_CACHED {
                        m.clear();
                    }
                    m.insert(key, now);
                }
                due
            }
            Err(_) => false,
        };
        if due {
            let pool = self.pool.clone();
            tokio::spawn(async move {
                let r = sqlx::query(
                    "INSERT INTO api_key_usage (key_id, organization_id, last_used_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (key_id) DO UPDATE SET last_used_at = GREATEST(api_key_usage.last_used_at, EXCLUDED.last_used_at)",
                )
                .bind(key)
                .bind(org)
                .bind(at)
                .execute(&pool)
                .await;
                if let Err(e) = r {
                    tracing::warn!(error = %e, "could not record API key use");
                }
            });
        }
    }
}
