//! `mauntic providers rotate-key`: everything sealed directly under the master key re-sealed
//! under the new one (`MAUNTIC_MASTER_KEY`), opened with it or the previous one
//! (`MAUNTIC_MASTER_KEY_PREVIOUS`), so the previous key can be dropped afterwards.

use event_store::shred::derived::Reseal;
use event_store::shred::keyring::Keyring;
use event_store::shred::keys::Rewrap;
use sqlx::PgPool;

/// What a rotation did, per table (the command's JSON output).
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyRotation {
    pub provider_secrets: commands::providers::Rotation,
    pub contact_keys: Rewrap,
    /// The keys of keyed digests (suppression entry ids): re-sealed, never changed, so
    /// digests made before the rotation are found again after it.
    pub derived_keys: Reseal,
}

impl KeyRotation {
    /// Rows sealed under neither key (left as they are).
    pub fn unreadable(&self) -> u64 {
        self.provider_secrets.unreadable
            + self.contact_keys.unreadable
            + self.derived_keys.unreadable
    }
}

/// Re-seals provider secrets, re-wraps contact keys and re-seals derived keys, row by row
/// with conditional updates (serving processes keep running); idempotent.
pub async fn rotate_master_key(pool: &PgPool, keys: &Keyring) -> anyhow::Result<KeyRotation> {
    Ok(KeyRotation {
        provider_secrets: commands::providers::rotate(pool, keys).await?,
        contact_keys: event_store::shred::keys::rewrap(pool, keys).await?,
        derived_keys: event_store::shred::derived::reseal(pool, keys).await?,
    })
}
