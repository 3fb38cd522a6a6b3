//! Tenants and API keys, minimal: a tenant, and hashed secret keys that resolve to it.
//! The identity issue replaces this with Organization and ApiKey aggregates.

use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use crate::StoreError;

/// Who is calling: the tenant every read and write is scoped to, and the key used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub tenant_id: Uuid,
    pub key_id: Uuid,
}

impl Caller {
    /// The actor recorded in event metadata.
    pub fn actor(&self) -> String {
        format!("apikey:{}", self.key_id)
    }
}

/// A tenant with its first key; the key's secret is shown here once and stored hashed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NewTenant {
    pub tenant_id: Uuid,
    pub api_key: String,
}

/// Creates a tenant named `name` and a secret API key for it.
pub async fn create_tenant(pool: &PgPool, name: &str) -> Result<NewTenant, StoreError> {
    let tenant_id = Uuid::now_v7();
    let mut tx = pool.begin().await?;
    sqlx::query("INSERT INTO tenants (id, name) VALUES ($1, $2)")
        .bind(tenant_id)
        .bind(name)
        .execute(&mut *tx)
        .await?;
    let api_key = issue_key(&mut tx, tenant_id).await?;
    tx.commit().await?;
    Ok(NewTenant { tenant_id, api_key })
}

async fn issue_key(conn: &mut sqlx::PgConnection, tenant_id: Uuid) -> Result<String, StoreError> {
    let mut secret = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut secret);
    let key = format!("mk_{}", hex::encode(secret));
    sqlx::query("INSERT INTO api_keys (id, tenant_id, prefix, key_hash) VALUES ($1, $2, $3, $4)")
        .bind(Uuid::now_v7())
        .bind(tenant_id)
        .bind(&key[..10])
        .bind(hash(&key))
        .execute(conn)
        .await?;
    Ok(key)
}

/// The caller a presented key belongs to, if it is a live key.
pub async fn authenticate(pool: &PgPool, key: &str) -> Result<Option<Caller>, StoreError> {
    let row: Option<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT id, tenant_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
    )
    .bind(hash(key))
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(key_id, tenant_id)| Caller { tenant_id, key_id }))
}

/// Keys are 192 random bits, so a fast hash is enough (no password stretching needed).
fn hash(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}
