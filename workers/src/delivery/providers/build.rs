//! The factory: a provider from its kind and its JSON configuration (credentials already
//! decrypted by the caller).

use super::mailgun::{Mailgun, MailgunConfig};
use super::postmark::{Postmark, PostmarkConfig};
use super::sendgrid::{SendGrid, SendGridConfig};
use super::ses::{Ses, SesConfig};
use super::smtp::{Smtp, SmtpConfig};
use crate::delivery::provider::Provider;

/// Why no provider could be made.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// No provider of this kind exists.
    #[error("unknown provider kind {0:?}")]
    UnknownKind(String),
    /// The configuration does not fit the kind's schema.
    #[error("invalid {kind} configuration: {source}")]
    Json {
        kind: &'static str,
        source: serde_json::Error,
    },
    /// The configuration parses but cannot be used (a base URL that is not a URL).
    #[error("{0}")]
    Config(String),
    /// The SMTP transport could not be set up (a relay name TLS cannot use).
    #[error("smtp: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    /// The HTTP client could not be set up.
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
}

/// The kinds [`build`] knows.
pub const KINDS: [&str; 5] = ["smtp", "ses", "sendgrid", "mailgun", "postmark"];

/// A provider of `kind` configured by `config`.
pub fn build(kind: &str, config: &serde_json::Value) -> Result<Box<dyn Provider>, BuildError> {
    Ok(match kind {
        "smtp" => Box::new(Smtp::new(&parse::<SmtpConfig>("smtp", config)?)?),
        "ses" => Box::new(Ses::new(parse::<SesConfig>("ses", config)?)?),
        "sendgrid" => Box::new(SendGrid::new(parse::<SendGridConfig>("sendgrid", config)?)?),
        "mailgun" => Box::new(Mailgun::new(parse::<MailgunConfig>("mailgun", config)?)?),
        "postmark" => Box::new(Postmark::new(parse::<PostmarkConfig>("postmark", config)?)?),
        other => return Err(BuildError::UnknownKind(other.to_owned())),
    })
}

fn parse<T: serde::de::DeserializeOwned>(
    kind: &'static str,
    config: &serde_json::Value,
) -> Result<T, BuildError> {
    T::deserialize(config).map_err(|source| BuildError::Json { kind, source })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn every_kind_builds_from_its_json_and_says_its_kind() {
        let configs = [
            (
                "smtp",
                serde_json::json!({"host": "127.0.0.1", "port": 25, "security": "none"}),
            ),
            (
                "ses",
                serde_json::json!({"region": "eu-west-1", "access_key_id": "AK", "secret_access_key": "s"}),
            ),
            ("sendgrid", serde_json::json!({"api_key": "k"})),
            (
                "mailgun",
                serde_json::json!({"domain": "mg.acme.test", "api_key": "k"}),
            ),
            ("postmark", serde_json::json!({"server_token": "t"})),
        ];
        for (kind, config) in configs {
            let provider = build(kind, &config).unwrap();
            assert_eq!(provider.kind(), kind);
            assert!(!provider.deduplicates(), "{kind}");
        }
    }

    #[test]
    fn an_unknown_kind_or_a_bad_configuration_is_refused() {
        assert!(matches!(
            build("pigeon", &serde_json::json!({})),
            Err(BuildError::UnknownKind(_))
        ));
        assert!(matches!(
            build("smtp", &serde_json::json!({"host": "x"})),
            Err(BuildError::Json { kind: "smtp", .. })
        ));
        assert!(matches!(
            build(
                "sendgrid",
                &serde_json::json!({"api_key": "k", "base_url": "not a url"})
            ),
            Err(BuildError::Config(_))
        ));
    }
}
