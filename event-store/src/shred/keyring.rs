//! Master keys by id, for values sealed directly under the master key (provider
//! credentials): the current key seals, the current or the previous one opens, so a
//! rotation can re-seal row by row while the application keeps reading.

use sha2::{Digest, Sha256};

use super::cipher::{open_bytes, seal_bytes, DEVELOPMENT_MASTER_KEY};
use crate::StoreError;

/// One master key and its id (a fingerprint: the first 8 bytes of a SHA-256 of it, hex).
#[derive(Clone)]
struct IdentifiedKey {
    id: String,
    key: [u8; 32],
}

impl IdentifiedKey {
    fn new(key: [u8; 32]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"mauntic3 master key id\0")
            .chain_update(key)
            .finalize();
        Self {
            id: hex::encode(&digest[..8]),
            key,
        }
    }
}

/// The current master key (`MAUNTIC_MASTER_KEY`) and, during a rotation, the previous one
/// (`MAUNTIC_MASTER_KEY_PREVIOUS`). Never printed.
#[derive(Clone)]
pub struct Keyring {
    current: IdentifiedKey,
    previous: Option<IdentifiedKey>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current.id)
            .field("previous", &self.previous.as_ref().map(|k| &k.id))
            .finish()
    }
}

impl Keyring {
    /// `current` (`None`: the development key, as for contact keys) and `previous`.
    pub fn new(current: Option<[u8; 32]>, previous: Option<[u8; 32]>) -> Self {
        Self {
            current: IdentifiedKey::new(current.unwrap_or(DEVELOPMENT_MASTER_KEY)),
            previous: previous.map(IdentifiedKey::new),
        }
    }

    /// The id of the key [`Self::seal`] uses.
    pub fn current_id(&self) -> &str {
        &self.current.id
    }

    /// The current key (re-wrapping contact keys).
    pub(crate) fn current_key(&self) -> &[u8; 32] {
        &self.current.key
    }

    /// The previous key, if any.
    pub(crate) fn previous_key(&self) -> Option<&[u8; 32]> {
        self.previous.as_ref().map(|k| &k.key)
    }

    /// `plain` sealed under the current key with `aad`: (key id, nonce ‖ ciphertext ‖ tag).
    pub fn seal(&self, plain: &[u8], aad: &[u8]) -> Result<(String, Vec<u8>), StoreError> {
        Ok((
            self.current.id.clone(),
            seal_bytes(&self.current.key, plain, aad)?,
        ))
    }

    /// What [`Self::seal`] sealed, opened with the key `key_id` names — the current one,
    /// else the previous one.
    pub fn open(&self, key_id: &str, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, StoreError> {
        let key = std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .find(|k| k.id == key_id)
            .ok_or_else(|| {
                StoreError::Crypto(format!(
                    "sealed under master key {key_id}, which is neither MAUNTIC_MASTER_KEY \
                     nor MAUNTIC_MASTER_KEY_PREVIOUS"
                ))
            })?;
        open_bytes(&key.key, sealed, aad)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_with_the_current_or_the_previous_key_only() {
        let a = Keyring::new(Some([1; 32]), None);
        let (id, sealed) = a.seal(b"secret", b"aad").unwrap();
        assert_eq!(id, a.current_id());
        assert_eq!(a.open(&id, &sealed, b"aad").unwrap(), b"secret");
        assert!(a.open(&id, &sealed, b"other aad").is_err());
        let rotated = Keyring::new(Some([2; 32]), Some([1; 32]));
        assert_ne!(rotated.current_id(), id);
        assert_eq!(rotated.open(&id, &sealed, b"aad").unwrap(), b"secret");
        let only_b = Keyring::new(Some([2; 32]), None);
        assert!(only_b.open(&id, &sealed, b"aad").is_err());
        assert!(!format!("{only_b:?}").contains("2, 2"));
    }
}
