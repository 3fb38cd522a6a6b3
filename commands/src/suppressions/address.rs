//! An address as the suppression list keeps it, and the id of its entry.
//!
//! One entry stream per (organization, channel, normalized address). Its id is a keyed
//! digest (HMAC-SHA256 under the installation's stored digest key, `derived_keys`) of
//! `tenant|channel|address`: a second suppression of the same address reaches the same
//! stream, and the id — which travels in URLs, logs, JetStream subjects and headers — does
//! not give the address away, not even to someone who guesses addresses and knows the
//! tenant.

use domain::contact::Phone;
use domain::delivery::Channel;
use domain::EmailAddress;
use uuid::Uuid;

/// The digest's purpose (names its key in `derived_keys`; never change it: ids would move).
const PURPOSE: &str = event_store::shred::derived::SUPPRESSION_ENTRY_ID;

/// Most characters of a push token or webhook URL.
pub const MAX_ADDRESS: usize = 2048;

/// Why a text is not an address of its channel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidAddress(pub String);

/// `raw` as the suppression list keeps it on `channel`: an email trimmed and lower-cased
/// (and checked as an email address), an SMS number in E.164 (`+` and digits, from any
/// usual way of writing it), a push token or webhook URL trimmed.
pub fn normalize(channel: Channel, raw: &str) -> Result<String, InvalidAddress> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(InvalidAddress("required".into()));
    }
    match channel {
        Channel::Email => EmailAddress::parse(trimmed)
            .map(|e| e.as_str().to_owned())
            .map_err(|e| InvalidAddress(format!("not an email address: {}", e.1))),
        Channel::Sms => Phone::parse(trimmed)
            .map(|p| p.as_str().to_owned())
            .map_err(|_| {
                InvalidAddress(
                    "not a phone number: + country code and number, e.g. +4915123456789".into(),
                )
            }),
        Channel::Push | Channel::Webhook if trimmed.chars().count() > MAX_ADDRESS => Err(
            InvalidAddress(format!("longer than {MAX_ADDRESS} characters")),
        ),
        Channel::Push => Ok(trimmed.to_owned()),
        Channel::Webhook => {
            let lower = trimmed.to_ascii_lowercase();
            if lower.starts_with("https://") || lower.starts_with("http://") {
                Ok(trimmed.to_owned())
            } else {
                Err(InvalidAddress("not an http(s) URL".into()))
            }
        }
    }
}

/// The id of the suppression entry of `normalized_address` on `channel` in `tenant`'s list
/// (pass the output of [`normalize`]: another spelling is another entry).
pub fn entry_id(tenant: Uuid, channel: Channel, normalized_address: &str) -> Uuid {
    let message = format!("{tenant}|{}|{normalized_address}", channel.as_str());
    let digest = event_store::shred::cipher::keyed_digest(PURPOSE, message.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    // A version 8 (custom) UUID: 122 bits of the digest.
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalized_per_channel() {
        assert_eq!(
            normalize(Channel::Email, "  Ada@Example.ORG ").unwrap(),
            "ada@example.org"
        );
        assert!(normalize(Channel::Email, "ada").is_err());
        assert_eq!(
            normalize(Channel::Sms, "+49 (151) 234-567").unwrap(),
            "+49151234567"
        );
        assert!(normalize(Channel::Sms, "0151 234567").is_err());
        assert_eq!(normalize(Channel::Push, " Tok-EN ").unwrap(), "Tok-EN");
        assert_eq!(
            normalize(Channel::Webhook, " https://x.example/Hook ").unwrap(),
            "https://x.example/Hook"
        );
        assert!(normalize(Channel::Webhook, "ftp://x").is_err());
        assert!(normalize(Channel::Push, "   ").is_err());
    }

    #[test]
    fn an_entry_id_depends_on_tenant_channel_and_address_only() {
        let t = Uuid::now_v7();
        let a = normalize(Channel::Email, "ADA@example.org").unwrap();
        let b = normalize(Channel::Email, "ada@example.org ").unwrap();
        assert_eq!(
            entry_id(t, Channel::Email, &a),
            entry_id(t, Channel::Email, &b)
        );
        assert_ne!(
            entry_id(t, Channel::Email, &a),
            entry_id(t, Channel::Push, &a)
        );
        assert_ne!(
            entry_id(t, Channel::Email, &a),
            entry_id(Uuid::now_v7(), Channel::Email, &a)
        );
        assert_eq!(entry_id(t, Channel::Email, &a).get_version_num(), 8);
    }
}
