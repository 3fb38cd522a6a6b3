//! The `provider_secrets` table: a provider's credentials as one JSON object, sealed with
//! AES-256-GCM under the master key (`event_store::shred::keyring`), with
//! AAD = `"<tenant>:<provider>:<secrets_version>"` so a row cannot be moved to another
//! provider, organization or version, and the id of the key that sealed it so a rotation
//! can re-seal row by row. Like `user_credentials`, it lives beside the log: no event,
//! bus message or read model ever holds a secret value.

use event_store::shred::keyring::Keyring;
use event_store::StoreError;
use serde_json::{Map, Value};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// Why secrets could not be stored, read or rotated.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// The database failed.
    #[error("provider secrets: {0}")]
    Database(#[from] sqlx::Error),
    /// Sealing or opening failed (a master key that is not configured, or tampering).
    #[error("provider secrets: {0}")]
    Crypto(#[from] StoreError),
    /// An opened row is not a JSON object.
    #[error("provider secrets of {0}: not a JSON object")]
    Malformed(Uuid),
}

fn aad(tenant: Uuid, provider: Uuid, version: u32) -> String {
    format!("{tenant}:{provider}:{version}")
}

/// Stores `secrets` as version `version` of `provider`'s secrets (replacing the row), in
/// the caller's transaction.
pub async fn store(
    conn: &mut PgConnection,
    keys: &Keyring,
    tenant: Uuid,
    provider: Uuid,
    version: u32,
    secrets: &Map<String, Value>,
) -> Result<(), SecretsError> {
    let plain = serde_json::to_vec(secrets).map_err(|e| StoreError::Malformed(e.to_string()))?;
    let (key_id, sealed) = keys.seal(&plain, aad(tenant, provider, version).as_bytes())?;
    sqlx::query(
        "INSERT INTO provider_secrets (tenant_id, provider_id, secrets_version, key_id, ciphertext) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (tenant_id, provider_id) DO UPDATE SET secrets_version = EXCLUDED.secrets_version, \
           key_id = EXCLUDED.key_id, ciphertext = EXCLUDED.ciphertext, updated_at = now()",
    )
    .bind(tenant)
    .bind(provider)
    .bind(version as i32)
    .bind(key_id)
    .bind(sealed)
    .execute(conn)
    .await?;
    Ok(())
}

/// A stored row opened: the secrets object.
pub fn open(
    keys: &Keyring,
    tenant: Uuid,
    provider: Uuid,
    version: i32,
    key_id: &str,
    sealed: &[u8],
) -> Result<Map<String, Value>, SecretsError> {
    let version = u32::try_from(version).map_err(|_| SecretsError::Malformed(provider))?;
    let plain = keys.open(key_id, sealed, aad(tenant, provider, version).as_bytes())?;
    match serde_json::from_slice(&plain) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(SecretsError::Malformed(provider)),
    }
}

/// What a rotation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Rotation {
    /// The id of the master key every row is sealed under now.
    pub key_id: String,
    /// Rows re-sealed under the current key.
    pub rotated: u64,
    /// Rows that already were.
    pub already_current: u64,
    /// Rows sealed under a key that is neither the current nor the previous one (or
    /// tampered with): left as they are.
    pub unreadable: u64,
}

/// Re-seals every row not sealed under the current key (`MAUNTIC_MASTER_KEY`), opening it
/// with the previous one (`MAUNTIC_MASTER_KEY_PREVIOUS`). Row by row, each update
/// conditional on the row being unchanged (a provider's secrets replaced meanwhile are
/// already under the current key), so the application keeps running during a rotation.
/// Idempotent: a second run rotates nothing.
#[tracing::instrument(skip_all, fields(key_id = keys.current_id()), err)]
pub async fn rotate(pool: &PgPool, keys: &Keyring) -> Result<Rotation, SecretsError> {
    let mut report = Rotation {
        key_id: keys.current_id().to_owned(),
        ..Rotation::default()
    };
    report.already_current =
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM provider_secrets WHERE key_id = $1")
            .bind(keys.current_id())
            .fetch_one(pool)
            .await? as u64;
    let rows: Vec<(Uuid, Uuid, i32, String, Vec<u8>)> = sqlx::query_as(
        "SELECT tenant_id, provider_id, secrets_version, key_id, ciphertext \
         FROM provider_secrets WHERE key_id <> $1 ORDER BY tenant_id, provider_id",
    )
    .bind(keys.current_id())
    .fetch_all(pool)
    .await?;
    for (tenant, provider, version, key_id, sealed) in rows {
        let aad = aad(tenant, provider, u32::try_from(version).unwrap_or_default());
        let plain = match keys.open(&key_id, &sealed, aad.as_bytes()) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(%tenant, %provider, %key_id, error = %e, "provider secrets not rotated");
                report.unreadable += 1;
                continue;
            }
        };
        let (new_id, resealed) = keys.seal(&plain, aad.as_bytes())?;
        let updated = sqlx::query(
            "UPDATE provider_secrets SET key_id = $5, ciphertext = $6, updated_at = now() \
             WHERE tenant_id = $1 AND provider_id = $2 AND secrets_version = $3 AND key_id = $4",
        )
        .bind(tenant)
        .bind(provider)
        .bind(version)
        .bind(&key_id)
        .bind(new_id)
        .bind(resealed)
        .execute(pool)
        .await?;
        if updated.rows_affected() == 1 {
            report.rotated += 1;
        } else {
            report.already_current += 1;
        }
    }
    Ok(report)
}
