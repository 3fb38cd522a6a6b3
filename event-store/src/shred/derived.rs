//! The `derived_keys` table: the keys of keyed digests ([`super::cipher::keyed_digest`]), one
//! per purpose, with a lifetime of their own. A digest key is made once — derived from the
//! master key, as before this table existed, so the ids of an existing installation do not
//! move — and from then on kept sealed under the master key (like provider secrets): a
//! master-key rotation re-seals it ([`reseal`]) instead of changing it.

use sqlx::PgPool;

use super::cipher::{derive, install_derived};
use super::keyring::Keyring;
use crate::StoreError;

/// The purpose of suppression entry ids (`tenant|channel|address` → entry id). Never change
/// it: it names the stored key, and the derivation of installations that have none yet.
pub const SUPPRESSION_ENTRY_ID: &str = "suppression-entry-id";

/// Every purpose a process loads at startup.
pub const PURPOSES: &[&str] = &[SUPPRESSION_ENTRY_ID];

fn aad(purpose: &str) -> String {
    format!("mauntic3/derived/{purpose}")
}

/// Loads the key of every purpose (making the missing ones) and installs it for
/// [`super::cipher::keyed_digest`] in this process. Run after the migrations, before
/// anything computes a digest.
pub async fn load(pool: &PgPool, keys: &Keyring) -> Result<(), StoreError> {
    for purpose in PURPOSES {
        let key = get_or_create(pool, keys, purpose).await?;
        install_derived(purpose, key)?;
    }
    Ok(())
}

/// The key of `purpose`, opened with the current or the previous master key; made and stored
/// if the database has none yet. When none is stored, it is derived from the master key the
/// existing digests were made with: the previous one during a rotation, else the current one.
/// Two processes starting at once agree: the insert does nothing if a row exists, and both
/// read the row that won.
pub async fn get_or_create(
    pool: &PgPool,
    keys: &Keyring,
    purpose: &str,
) -> Result<[u8; 32], StoreError> {
    if let Some(key) = read(pool, keys, purpose).await? {
        return Ok(key);
    }
    let master = keys.previous_key().unwrap_or_else(|| keys.current_key());
    let key = derive(master, purpose);
    let (key_id, sealed) = keys.seal(&key, aad(purpose).as_bytes())?;
    sqlx::query(
        "INSERT INTO derived_keys (purpose, key_id, ciphertext) VALUES ($1, $2, $3) \
         ON CONFLICT (purpose) DO NOTHING",
    )
    .bind(purpose)
    .bind(key_id)
    .bind(sealed)
    .execute(pool)
    .await?;
    read(pool, keys, purpose).await?.ok_or_else(|| {
        StoreError::Crypto(format!(
            "the derived key {purpose:?} was stored, but is not there to read"
        ))
    })
}

async fn read(
    pool: &PgPool,
    keys: &Keyring,
    purpose: &str,
) -> Result<Option<[u8; 32]>, StoreError> {
    let row: Option<(String, Vec<u8>)> =
        sqlx::query_as("SELECT key_id, ciphertext FROM derived_keys WHERE purpose = $1")
            .bind(purpose)
            .fetch_optional(pool)
            .await?;
    let Some((key_id, sealed)) = row else {
        return Ok(None);
    };
    let plain = keys
        .open(&key_id, &sealed, aad(purpose).as_bytes())
        .map_err(|e| StoreError::Crypto(format!("the derived key {purpose:?}: {e}")))?;
    let key: [u8; 32] = plain
        .try_into()
        .map_err(|_| StoreError::Crypto(format!("the derived key {purpose:?} is not 32 bytes")))?;
    Ok(Some(key))
}

/// What re-sealing the derived keys did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Reseal {
    /// Keys re-sealed under the current master key.
    pub resealed: u64,
    /// Keys sealed by it already.
    pub already_current: u64,
    /// Keys sealed by neither the current nor the previous master key: left as they are.
    pub unreadable: u64,
}

/// Re-seals every derived key sealed under `keys`' previous master key under its current
/// one; each update is conditional on the row being unchanged, so it can run beside serving
/// processes and be run again (idempotent). The keys themselves do not change.
pub async fn reseal(pool: &PgPool, keys: &Keyring) -> Result<Reseal, StoreError> {
    let mut report = Reseal::default();
    let rows: Vec<(String, String, Vec<u8>)> =
        sqlx::query_as("SELECT purpose, key_id, ciphertext FROM derived_keys ORDER BY purpose")
            .fetch_all(pool)
            .await?;
    for (purpose, key_id, sealed) in rows {
        if key_id == keys.current_id() {
            report.already_current += 1;
            continue;
        }
        let plain = match keys.open(&key_id, &sealed, aad(&purpose).as_bytes()) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(%purpose, %key_id, error = %e, "derived key not re-sealed");
                report.unreadable += 1;
                continue;
            }
        };
        let (new_id, resealed) = keys.seal(&plain, aad(&purpose).as_bytes())?;
        let updated = sqlx::query(
            "UPDATE derived_keys SET key_id = $4, ciphertext = $5, updated_at = now() \
             WHERE purpose = $1 AND key_id = $2 AND ciphertext = $3",
        )
        .bind(&purpose)
        .bind(&key_id)
        .bind(&sealed)
        .bind(new_id)
        .bind(resealed)
        .execute(pool)
        .await?;
        if updated.rows_affected() == 1 {
            report.resealed += 1;
        } else {
            report.already_current += 1;
        }
    }
    Ok(report)
}
