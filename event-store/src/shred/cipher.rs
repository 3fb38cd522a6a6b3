//! AES-256-GCM: per-contact keys wrapped by the master key, and ciphertext envelopes
//! (`{"$enc": "<base64 of nonce ‖ ciphertext ‖ tag>"}`) for personal values.

use std::collections::BTreeMap;
use std::sync::{OnceLock, PoisonError, RwLock};

use aes_gcm::aead::{Aead, AeadInPlace, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde_json::value::RawValue;
use serde_json::Value;
use sha2::Sha256;

use crate::StoreError;

/// The key of an envelope object.
pub const ENVELOPE: &str = "$enc";

const NONCE: usize = 12;

/// The development master key, used when `MAUNTIC_MASTER_KEY` is not set (with a warning):
/// keys wrapped by it protect nothing against someone who reads this source.
pub(crate) const DEVELOPMENT_MASTER_KEY: [u8; 32] = *b"mauntic3-development-master-key!";

static MASTER: OnceLock<[u8; 32]> = OnceLock::new();

/// During a rotation, the master key `MASTER` replaces: keys it wrapped still unwrap.
static PREVIOUS: OnceLock<[u8; 32]> = OnceLock::new();

/// Derived keys by purpose, as the database keeps them (`derived_keys`, installed at
/// startup by [`super::derived::load`]): they outlive master-key rotations.
static DERIVED: RwLock<BTreeMap<String, [u8; 32]>> = RwLock::new(BTreeMap::new());

/// Sets the master key that wraps every contact key, once per process (`None`: the
/// development key, with a warning). A second call with another key is refused.
pub fn configure(master: Option<[u8; 32]>) -> Result<(), StoreError> {
    let key = master.unwrap_or_else(|| {
        tracing::warn!(
            "MAUNTIC_MASTER_KEY is not set: contact keys are wrapped with the development \
             master key; set 32 random bytes (base64) in production"
        );
        DEVELOPMENT_MASTER_KEY
    });
    let set = MASTER.get_or_init(|| key);
    if *set == key {
        Ok(())
    } else {
        Err(StoreError::Crypto(
            "the master key was already configured with another value".into(),
        ))
    }
}

/// Sets the previous master key (`MAUNTIC_MASTER_KEY_PREVIOUS`), once per process: contact
/// keys it wrapped still unwrap until `mauntic providers rotate-key` re-wraps them.
pub fn configure_previous(previous: Option<[u8; 32]>) -> Result<(), StoreError> {
    let Some(key) = previous else { return Ok(()) };
    if *PREVIOUS.get_or_init(|| key) == key {
        Ok(())
    } else {
        Err(StoreError::Crypto(
            "the previous master key was already configured with another value".into(),
        ))
    }
}

fn master() -> &'static [u8; 32] {
    MASTER.get_or_init(|| DEVELOPMENT_MASTER_KEY)
}

/// A keyed digest of `message` for `purpose`: HMAC-SHA256 under the key of that purpose
/// alone, so digests of one purpose say nothing about another's and none can be computed
/// without the key. Used where an id must be found again from a personal value without
/// revealing it (suppression entries: `tenant|channel|address` → entry id).
///
/// The key is the one [`install_derived`] installed for `purpose` (a process connected to a
/// database: `derived_keys`, which outlives master-key rotations); without one (unit tests),
/// [`derive`] from the master key, which is how the stored key was first made.
pub fn keyed_digest(purpose: &str, message: &[u8]) -> [u8; 32] {
    let installed = DERIVED
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(purpose)
        .copied();
    let sub = installed.unwrap_or_else(|| derive(master(), purpose));
    let mut mac = hmac_of(&sub);
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// The key of `purpose` derived from `master`: HMAC-SHA256(master, "mauntic3/derived/<purpose>").
pub(crate) fn derive(master: &[u8; 32], purpose: &str) -> [u8; 32] {
    let mut derive = hmac_of(master);
    derive.update(b"mauntic3/derived/");
    derive.update(purpose.as_bytes());
    derive.finalize().into_bytes().into()
}

/// Makes `key` the key of `purpose` for [`keyed_digest`] in this process. Installing another
/// key for a purpose that has one is refused: one process serves one installation, whose
/// digests must not change under it.
pub(crate) fn install_derived(purpose: &str, key: [u8; 32]) -> Result<(), StoreError> {
    let mut installed = DERIVED.write().unwrap_or_else(PoisonError::into_inner);
    match installed.get(purpose) {
        Some(k) if *k != key => Err(StoreError::Crypto(format!(
            "the derived key {purpose:?} of this database differs from the one this process \
             already uses (a database of another installation?)"
        ))),
        Some(_) => Ok(()),
        None => {
            installed.insert(purpose.to_owned(), key);
            Ok(())
        }
    }
}

/// HMAC-SHA256 under a 32-byte key: RFC 2104 pads a key shorter than the hash's 64-byte
/// block with zeros, so the padded block is the same key (and the constructor cannot fail).
fn hmac_of(key: &[u8; 32]) -> Hmac<Sha256> {
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    <Hmac<Sha256> as KeyInit>::new(&block.into())
}

/// A contact's data key (plain, in memory only; the expanded key schedule is boxed).
#[derive(Clone)]
pub struct DataKey(Box<Aes256Gcm>);

impl DataKey {
    /// A fresh random key and its wrapped form for `stream_id`.
    pub fn generate(stream_id: &str) -> Result<(Self, Vec<u8>), StoreError> {
        let mut raw = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut raw);
        let wrapped = seal_bytes(master(), &raw, stream_id.as_bytes())?;
        Ok((Self::from_raw(&raw), wrapped))
    }

    /// Unwraps a stored key of `stream_id`.
    pub fn unwrap(stream_id: &str, wrapped: &[u8]) -> Result<Self, StoreError> {
        let raw = match (
            open_bytes(master(), wrapped, stream_id.as_bytes()),
            PREVIOUS.get(),
        ) {
            (Ok(raw), _) => raw,
            (Err(_), Some(previous)) => open_bytes(previous, wrapped, stream_id.as_bytes())?,
            (Err(e), None) => return Err(e),
        };
        let raw: [u8; 32] = raw
            .try_into()
            .map_err(|_| StoreError::Crypto(format!("the key of {stream_id} is not 32 bytes")))?;
        Ok(Self::from_raw(&raw))
    }

    fn from_raw(raw: &[u8; 32]) -> Self {
        Self(Box::new(Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(raw))))
    }

    /// The JSON text `json` (one value, as written) sealed, appended to `out` as an
    /// envelope's JSON text: the write path seals payload text without building a tree of
    /// it, in one buffer (nonce ‖ ciphertext ‖ tag) and one base64 pass.
    pub fn seal_raw(&self, json: &RawValue, aad: &str, out: &mut String) -> Result<(), StoreError> {
        let plain = json.get().as_bytes();
        let mut buf = Vec::with_capacity(NONCE + plain.len() + 16);
        let mut nonce = [0u8; NONCE];
        rand::thread_rng().fill_bytes(&mut nonce);
        buf.extend_from_slice(&nonce);
        buf.extend_from_slice(plain);
        let tag = self
            .0
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), aad.as_bytes(), &mut buf[NONCE..])
            .map_err(|_| StoreError::Crypto("encryption failed".into()))?;
        buf.extend_from_slice(&tag);
        // Base64 needs no escaping inside a JSON string.
        out.push_str("{\"");
        out.push_str(ENVELOPE);
        out.push_str("\":\"");
        STANDARD.encode_string(&buf, out);
        out.push_str("\"}");
        Ok(())
    }

    /// The value inside envelope text `b64`.
    pub fn open(&self, b64: &str, aad: &str) -> Result<Value, StoreError> {
        let bytes = STANDARD
            .decode(b64)
            .map_err(|e| StoreError::Crypto(format!("envelope: {e}")))?;
        let plain = open_with(&self.0, &bytes, aad.as_bytes())?;
        serde_json::from_slice(&plain).map_err(|e| StoreError::Crypto(format!("envelope: {e}")))
    }
}

/// Whether JSON text is an envelope (`{"$enc": "…"}`, however spaced).
pub fn is_envelope_text(json: &RawValue) -> bool {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Envelope {
        #[serde(rename = "$enc")]
        _enc: String,
    }
    json.get().trim_start().starts_with('{') && serde_json::from_str::<Envelope>(json.get()).is_ok()
}

/// The base64 text of `v` if it is an envelope.
pub fn envelope(v: &Value) -> Option<&str> {
    match v {
        Value::Object(o) if o.len() == 1 => o.get(ENVELOPE)?.as_str(),
        _ => None,
    }
}

pub(crate) fn seal_bytes(key: &[u8; 32], plain: &[u8], aad: &[u8]) -> Result<Vec<u8>, StoreError> {
    seal_with(
        &Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key)),
        plain,
        aad,
    )
}

pub(crate) fn open_bytes(key: &[u8; 32], sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, StoreError> {
    open_with(
        &Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key)),
        sealed,
        aad,
    )
}

fn seal_with(cipher: &Aes256Gcm, plain: &[u8], aad: &[u8]) -> Result<Vec<u8>, StoreError> {
    let mut nonce = [0u8; NONCE];
    rand::thread_rng().fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad })
        .map_err(|_| StoreError::Crypto("encryption failed".into()))?;
    let mut out = Vec::with_capacity(NONCE + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

fn open_with(cipher: &Aes256Gcm, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, StoreError> {
    if sealed.len() < NONCE {
        return Err(StoreError::Crypto("ciphertext too short".into()));
    }
    let (nonce, ct) = sealed.split_at(NONCE);
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .map_err(|_| {
            StoreError::Crypto(
                "decryption failed (wrong master key, or the data was tampered with)".into(),
            )
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keyed_digests_differ_by_purpose_and_message_and_repeat() {
        let a = keyed_digest("p", b"m");
        assert_eq!(a, keyed_digest("p", b"m"));
        assert_ne!(a, keyed_digest("q", b"m"));
        assert_ne!(a, keyed_digest("p", b"n"));
        // The padded block is the same HMAC key as the 32 bytes themselves.
        let key = [7u8; 32];
        let mut padded = hmac_of(&key);
        let mut plain = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
        padded.update(b"x");
        plain.update(b"x");
        assert_eq!(
            padded.finalize().into_bytes(),
            plain.finalize().into_bytes()
        );
    }

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_its_aad() {
        let (key, wrapped) = DataKey::generate("t:c").unwrap();
        let v = serde_json::json!({"a": ["x", 1]});
        let mut text = String::new();
        key.seal_raw(
            &RawValue::from_string(v.to_string()).unwrap(),
            "t:c/E/f",
            &mut text,
        )
        .unwrap();
        let env: Value = serde_json::from_str(&text).unwrap();
        let b64 = envelope(&env).unwrap();
        assert_eq!(key.open(b64, "t:c/E/f").unwrap(), v);
        assert!(key.open(b64, "t:c/E/g").is_err());
        let again = DataKey::unwrap("t:c", &wrapped).unwrap();
        assert_eq!(again.open(b64, "t:c/E/f").unwrap(), v);
        assert!(DataKey::unwrap("t:other", &wrapped).is_err());
        let (other, _) = DataKey::generate("t:c").unwrap();
        assert!(other.open(b64, "t:c/E/f").is_err());
    }

    #[test]
    fn raw_json_text_seals_to_an_envelope_of_the_same_value() {
        let (key, _) = DataKey::generate("t:c").unwrap();
        let raw = RawValue::from_string(r#"{"b": [1, "x"], "a": null}"#.into()).unwrap();
        let mut text = String::new();
        key.seal_raw(&raw, "t:c/E/f", &mut text).unwrap();
        let env = RawValue::from_string(text).unwrap();
        assert!(is_envelope_text(&env));
        let v: Value = serde_json::from_str(env.get()).unwrap();
        let opened = key.open(envelope(&v).unwrap(), "t:c/E/f").unwrap();
        assert_eq!(opened, serde_json::json!({"a": null, "b": [1, "x"]}));
        assert!(key.open(envelope(&v).unwrap(), "t:c/E/g").is_err());
        for text in [r#"{"$enc": "abc"}"#, r#" {"$enc":"abc"}"#] {
            assert!(is_envelope_text(
                &RawValue::from_string(text.into()).unwrap()
            ));
        }
        for text in [
            r#"{"$enc": "abc", "x": 1}"#,
            r#"{"x": 1}"#,
            r#""$enc""#,
            "null",
        ] {
            assert!(!is_envelope_text(
                &RawValue::from_string(text.into()).unwrap()
            ));
        }
    }
}
