//! Values of the identity context.

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::contact::InvalidValue;
use crate::EmailAddress;

/// An organization's name: trimmed, 1 to 200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrgName(String);

impl OrgName {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let s = raw.trim();
        if s.is_empty() || s.chars().count() > 200 {
            return Err(InvalidValue::new("name", "must have 1 to 200 characters"));
        }
        if s.chars().any(char::is_control) {
            return Err(InvalidValue::new("name", "contains control characters"));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The hex SHA-256 digest of a secret (a token, an API key, a recovery code). Secrets are
/// random with ≥ 128 bits, so a fast digest is enough; the secret itself is never stored.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Digest(pub String);

/// An organization's defaults: time zone and locale for recipients without their own, and
/// the sender shown on mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgSettings {
    /// IANA time zone, e.g. `Europe/Paris`.
    pub time_zone: String,
    /// BCP 47 language tag, e.g. `fr-FR`.
    pub locale: String,
    pub sender_name: Option<String>,
    pub sender_email: Option<String>,
}

impl Default for OrgSettings {
    fn default() -> Self {
        Self {
            time_zone: "UTC".into(),
            locale: "en".into(),
            sender_name: None,
            sender_email: None,
        }
    }
}

impl OrgSettings {
    /// An IANA time zone name.
    pub fn parse_time_zone(raw: &str) -> Result<String, InvalidValue> {
        raw.trim()
            .parse::<Tz>()
            .map(|tz| tz.name().to_owned())
            .map_err(|_| {
                InvalidValue::new("time_zone", format!("{raw:?} is not an IANA time zone"))
            })
    }

    /// A BCP 47 tag of the common shape: a 2–3 letter language, optionally a script and a
    /// region (`en`, `fr-FR`, `zh-Hant-TW`).
    pub fn parse_locale(raw: &str) -> Result<String, InvalidValue> {
        let bad = || {
            InvalidValue::new(
                "locale",
                format!("{raw:?} is not a locale like en or fr-FR"),
            )
        };
        let mut parts = raw.trim().split(['-', '_']);
        let lang = parts
            .next()
            .filter(|l| (2..=3).contains(&l.len()) && l.chars().all(|c| c.is_ascii_alphabetic()))
            .ok_or_else(bad)?;
        let mut out = lang.to_ascii_lowercase();
        for p in parts {
            let ok = (p.len() == 4 && p.chars().all(|c| c.is_ascii_alphabetic()))
                || (p.len() == 2 && p.chars().all(|c| c.is_ascii_alphabetic()))
                || (p.len() == 3 && p.chars().all(|c| c.is_ascii_digit()));
            if !ok {
                return Err(bad());
            }
            out.push('-');
            out.push_str(&match p.len() {
                4 => {
                    let mut s = p.to_ascii_lowercase();
                    s[..1].make_ascii_uppercase();
                    s
                }
                _ => p.to_ascii_uppercase(),
            });
        }
        Ok(out)
    }

    /// The sender's display name: at most 200 characters, no control characters.
    pub fn parse_sender_name(raw: &str) -> Result<Option<String>, InvalidValue> {
        let s = raw.trim();
        if s.is_empty() {
            return Ok(None);
        }
        if s.chars().count() > 200 || s.chars().any(char::is_control) {
            return Err(InvalidValue::new(
                "sender_name",
                "at most 200 characters, no control characters",
            ));
        }
        Ok(Some(s.to_owned()))
    }

    pub fn parse_sender_email(raw: &str) -> Result<Option<String>, InvalidValue> {
        if raw.trim().is_empty() {
            return Ok(None);
        }
        EmailAddress::parse(raw)
            .map(|e| Some(e.as_str().to_owned()))
            .map_err(|e| InvalidValue::new("sender_email", e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_values_are_checked_and_normalised() {
        assert_eq!(
            OrgSettings::parse_time_zone("Europe/Paris").ok().as_deref(),
            Some("Europe/Paris")
        );
        assert!(OrgSettings::parse_time_zone("Mars/Olympus").is_err());
        assert_eq!(
            OrgSettings::parse_locale("fr_fr").ok().as_deref(),
            Some("fr-FR")
        );
        assert_eq!(
            OrgSettings::parse_locale("zh-hant-tw").ok().as_deref(),
            Some("zh-Hant-TW")
        );
        assert!(OrgSettings::parse_locale("english").is_err());
        assert!(OrgSettings::parse_sender_email("nope").is_err());
        assert!(OrgName::parse("  ").is_err());
    }
}
