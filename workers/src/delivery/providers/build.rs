//! The factory: a provider from its kind and its JSON configuration (credentials already
//! decrypted by the caller).

use super::apns::{Apns, ApnsConfig};
use super::fcm::{Fcm, FcmConfig};
use super::mailgun::{Mailgun, MailgunConfig};
use super::plivo::{Plivo, PlivoConfig};
use super::postmark::{Postmark, PostmarkConfig};
use super::sendgrid::{SendGrid, SendGridConfig};
use super::ses::{Ses, SesConfig};
use super::smtp::{Smtp, SmtpConfig};
use super::telnyx::{Telnyx, TelnyxConfig};
use super::twilio::{Twilio, TwilioConfig};
use super::vonage::{Vonage, VonageConfig};
use super::webhook::{WebhookConfig, WebhookSender};
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
    /// The configuration parses but cannot be used (a base URL that is not a URL, a key that
    /// is not PEM).
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
pub const KINDS: [&str; 12] = [
    "smtp", "ses", "sendgrid", "mailgun", "postmark", "twilio", "vonage", "plivo", "telnyx", "fcm",
    "apns", "webhook",
];

/// A provider of `kind` configured by `config`.
pub fn build(kind: &str, config: &serde_json::Value) -> Result<Box<dyn Provider>, BuildError> {
    Ok(match kind {
        "smtp" => Box::new(Smtp::new(&parse::<SmtpConfig>("smtp", config)?)?),
        "ses" => Box::new(Ses::new(parse::<SesConfig>("ses", config)?)?),
        "sendgrid" => Box::new(SendGrid::new(parse::<SendGridConfig>("sendgrid", config)?)?),
        "mailgun" => Box::new(Mailgun::new(parse::<MailgunConfig>("mailgun", config)?)?),
        "postmark" => Box::new(Postmark::new(parse::<PostmarkConfig>("postmark", config)?)?),
        "twilio" => Box::new(Twilio::new(parse::<TwilioConfig>("twilio", config)?)?),
        "vonage" => Box::new(Vonage::new(parse::<VonageConfig>("vonage", config)?)?),
        "plivo" => Box::new(Plivo::new(parse::<PlivoConfig>("plivo", config)?)?),
        "telnyx" => Box::new(Telnyx::new(parse::<TelnyxConfig>("telnyx", config)?)?),
        "fcm" => Box::new(Fcm::new(parse::<FcmConfig>("fcm", config)?)?),
        "apns" => Box::new(Apns::new(parse::<ApnsConfig>("apns", config)?)?),
        "webhook" => Box::new(WebhookSender::new(parse::<WebhookConfig>(
            "webhook", config,
        )?)?),
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
    use crate::delivery::message::Channel;

    /// A PKCS#8 PEM RSA key, made for the test.
    fn rsa_pem() -> String {
        use rsa::pkcs8::EncodePrivateKey;
        let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
            .unwrap()
            .to_string()
    }

    /// A PKCS#8 PEM P-256 key (an APNs `.p8`), made for the test.
    fn p256_pem() -> String {
        use base64::Engine as _;
        let rng = ring::rand::SystemRandom::new();
        let der = ring::signature::EcdsaKeyPair::generate_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &rng,
        )
        .unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n")
    }

    fn configs() -> Vec<(&'static str, serde_json::Value)> {
        vec![
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
            (
                "twilio",
                serde_json::json!({"account_sid": "AC1", "auth_token": "t"}),
            ),
            (
                "vonage",
                serde_json::json!({"api_key": "k", "api_secret": "s"}),
            ),
            (
                "plivo",
                serde_json::json!({"auth_id": "MA1", "auth_token": "t"}),
            ),
            ("telnyx", serde_json::json!({"api_key": "KEY1"})),
            (
                "fcm",
                serde_json::json!({"service_account": {
                    "type": "service_account",
                    "project_id": "acme-app",
                    "client_email": "sender@acme-app.iam.gserviceaccount.com",
                    "private_key": rsa_pem(),
                }}),
            ),
            (
                "apns",
                serde_json::json!({"key_id": "ABC123DEFG", "team_id": "DEF123GHIJ",
                    "private_key": p256_pem(), "topic": "com.acme.app"}),
            ),
            ("webhook", serde_json::json!({})),
        ]
    }

    #[tokio::test]
    async fn every_kind_builds_from_its_json_and_says_its_kind_and_channel() {
        let configs = configs();
        let kinds: Vec<&str> = configs.iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds, KINDS, "every kind is tested");
        for (kind, config) in configs {
            let provider = build(kind, &config).unwrap();
            assert_eq!(provider.kind(), kind);
            let channel = match kind {
                "twilio" | "vonage" | "plivo" | "telnyx" => Channel::Sms,
                "fcm" | "apns" => Channel::Push,
                "webhook" => Channel::Webhook,
                _ => Channel::Email,
            };
            assert_eq!(provider.channel(), channel, "{kind}");
            assert!(!provider.deduplicates(), "{kind}");
        }
    }

    #[tokio::test]
    async fn only_a_webhook_configured_so_deduplicates() {
        let provider = build("webhook", &serde_json::json!({"deduplicates": true})).unwrap();
        assert!(provider.deduplicates());
    }

    #[tokio::test]
    async fn a_push_key_that_is_not_pem_or_a_missing_project_is_refused() {
        let mut fcm = configs().remove(9).1;
        fcm["service_account"]["project_id"] = serde_json::Value::Null;
        assert!(
            matches!(build("fcm", &fcm), Err(BuildError::Config(m)) if m.contains("project_id"))
        );
        fcm["project_id"] = "acme-app".into();
        assert!(build("fcm", &fcm).is_ok());
        fcm["service_account"]["private_key"] = "not a key".into();
        assert!(matches!(build("fcm", &fcm), Err(BuildError::Config(_))));
        let apns = serde_json::json!({"key_id": "K", "team_id": "T", "private_key": rsa_pem(), "topic": "t"});
        assert!(matches!(build("apns", &apns), Err(BuildError::Config(_))));
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
