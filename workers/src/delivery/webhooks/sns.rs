//! The Amazon SNS envelope (HTTP/HTTPS subscriptions): `Notification`,
//! `SubscriptionConfirmation` and `UnsubscribeConfirmation` messages, and their signature.
//!
//! The signature (base64, PKCS#1 v1.5: `SignatureVersion` 1 is SHA1withRSA, 2 is
//! SHA256withRSA) covers a string of `Name\nValue\n` pairs in this order: for a notification
//! `Message`, `MessageId`, `Subject` (only when present), `Timestamp`, `TopicArn`, `Type`; for
//! the confirmations `Message`, `MessageId`, `SubscribeURL`, `Timestamp`, `Token`, `TopicArn`,
//! `Type`. The key is the one of the certificate at `SigningCertURL`, which must be an HTTPS
//! `.pem` URL on an SNS host ([`certs::signing_cert_url`](super::certs::signing_cert_url)) and
//! within its validity period. Trust in the certificate comes from where it is fetched (SNS's
//! own host over TLS), as in AWS's SDK verifiers.
//!
//! SNS sets no freshness window (it retries for hours), so a verified message can be replayed:
//! applying a report twice must change nothing (the route deduplicates by `MessageId`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use rsa::RsaPublicKey;
use serde::Deserialize;
use x509_cert::der::{DecodePem, Encode};
use x509_cert::Certificate;

use super::certs::signing_cert_url;
use super::{CertSource, Incoming, WebhookError};

/// An SNS message as posted to an HTTP(S) endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Envelope {
    #[serde(rename = "Type")]
    pub kind: String,
    pub message_id: String,
    pub topic_arn: String,
    #[serde(default)]
    pub subject: Option<String>,
    pub message: String,
    pub timestamp: String,
    #[serde(default, rename = "SubscribeURL")]
    pub subscribe_url: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
    pub signature_version: String,
    pub signature: String,
    #[serde(rename = "SigningCertURL")]
    pub signing_cert_url: String,
}

/// The envelope of `incoming`, once its signature verifies (and its topic is `topic`, when
/// one is configured).
pub async fn verify(
    incoming: &Incoming<'_>,
    certs: &dyn CertSource,
    topic: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Envelope, WebhookError> {
    let envelope: Envelope = serde_json::from_slice(incoming.body)
        .map_err(|e| WebhookError::Malformed(format!("not an SNS message: {e}")))?;
    if let Some(topic) = topic {
        if envelope.topic_arn != topic {
            return Err(WebhookError::WrongTopic(envelope.topic_arn));
        }
    }
    let signed = string_to_sign(&envelope)?;
    let signature = STANDARD
        .decode(envelope.signature.trim())
        .map_err(|_| WebhookError::BadSignature)?;
    let signature =
        Signature::try_from(signature.as_slice()).map_err(|_| WebhookError::BadSignature)?;
    // Refuse a foreign certificate URL here too, whatever the CertSource does.
    signing_cert_url(&envelope.signing_cert_url)?;
    let key = public_key(&certs.pem(&envelope.signing_cert_url).await?, now)?;
    let verified = match envelope.signature_version.as_str() {
        "1" => VerifyingKey::<sha1::Sha1>::new(key).verify(signed.as_bytes(), &signature),
        "2" => VerifyingKey::<sha2::Sha256>::new(key).verify(signed.as_bytes(), &signature),
        other => {
            return Err(WebhookError::Unsupported(format!(
                "SNS SignatureVersion {other:?}"
            )))
        }
    };
    verified.map_err(|_| WebhookError::BadSignature)?;
    Ok(envelope)
}

/// The string SNS signs for this message's type.
pub fn string_to_sign(e: &Envelope) -> Result<String, WebhookError> {
    let missing = |name: &str| WebhookError::Malformed(format!("SNS {} without {name}", e.kind));
    let pairs: Vec<(&str, &str)> = match e.kind.as_str() {
        "Notification" => {
            let mut pairs = vec![
                ("Message", e.message.as_str()),
                ("MessageId", &e.message_id),
            ];
            if let Some(subject) = &e.subject {
                pairs.push(("Subject", subject));
            }
            pairs.extend([
                ("Timestamp", e.timestamp.as_str()),
                ("TopicArn", &e.topic_arn),
                ("Type", &e.kind),
            ]);
            pairs
        }
        "SubscriptionConfirmation" | "UnsubscribeConfirmation" => vec![
            ("Message", e.message.as_str()),
            ("MessageId", &e.message_id),
            (
                "SubscribeURL",
                e.subscribe_url
                    .as_deref()
                    .ok_or_else(|| missing("SubscribeURL"))?,
            ),
            ("Timestamp", &e.timestamp),
            ("Token", e.token.as_deref().ok_or_else(|| missing("Token"))?),
            ("TopicArn", &e.topic_arn),
            ("Type", &e.kind),
        ],
        other => {
            return Err(WebhookError::Malformed(format!(
                "SNS message type {other:?}"
            )))
        }
    };
    Ok(pairs
        .into_iter()
        .map(|(name, value)| format!("{name}\n{value}\n"))
        .collect())
}

/// The RSA key of a PEM certificate valid at `now`.
fn public_key(pem: &str, now: DateTime<Utc>) -> Result<RsaPublicKey, WebhookError> {
    let bad = |what: String| WebhookError::Certificate(what);
    let cert = Certificate::from_pem(pem.as_bytes())
        .map_err(|e| bad(format!("not a PEM certificate: {e}")))?;
    let validity = &cert.tbs_certificate.validity;
    let now = std::time::SystemTime::from(now);
    if now < validity.not_before.to_system_time() || now > validity.not_after.to_system_time() {
        return Err(bad(format!(
            "not valid now (from {} to {})",
            validity.not_before, validity.not_after
        )));
    }
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| bad(e.to_string()))?;
    RsaPublicKey::from_public_key_der(&spki).map_err(|e| bad(format!("not an RSA key: {e}")))
}
