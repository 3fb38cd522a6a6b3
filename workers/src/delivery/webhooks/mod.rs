//! Provider webhooks: one incoming HTTP request from a provider (delivery, bounce and complaint
//! reports of email providers, status callbacks of SMS providers) becomes verified, normalized
//! [`Report`]s — or is refused. No HTTP routing and no jobs here: the route hands over the
//! request as it came ([`Incoming`]) with the provider configuration's JSON, and applies the
//! reports it gets back.
//!
//! - [`report`]: what comes in ([`Incoming`]) and what goes out ([`Report`], [`ReportKind`]).
//! - [`error`]: why a request is refused ([`WebhookError`]).
//! - [`certs`]: where Amazon SNS signing certificates come from ([`CertSource`]; in production
//!   [`HttpsCertSource`], which only fetches from SNS's own hosts and caches).
//! - one file per provider kind: [`ses`] (SES events inside the [`sns`] envelope), [`sendgrid`],
//!   [`mailgun`], [`postmark`], [`twilio`].
//!
//! **Secrets read per kind** (`secrets` is the provider configuration's JSON):
//!
//! | kind | keys | how the request is authenticated |
//! |---|---|---|
//! | `ses` | `sns_topic_arn` (optional: only this topic is accepted) | SNS RSA signature, certificate from `SigningCertURL` |
//! | `sendgrid` | `webhook_public_key` (base64 DER SubjectPublicKeyInfo, as SendGrid shows it; PEM also taken) | ECDSA P-256 over timestamp header + body |
//! | `mailgun` | `webhook_signing_key` | HMAC-SHA256 of timestamp + token, at most 5 minutes old |
//! | `postmark` | `webhook_username`, `webhook_password` | HTTP Basic credentials put in the webhook URL |
//! | `twilio` | `auth_token` | `X-Twilio-Signature`: HMAC-SHA1 over URL + sorted form params |
//!
//! Report kinds the platform does not act on (processed, deferred, queued, sent, …) are
//! dropped, not errors: a request made only of them answers `Ok(vec![])`.
//!
//! **Invariant:** nothing is parsed into a report before the request is authenticated.

pub mod certs;
pub mod error;
pub mod mailgun;
pub mod postmark;
pub mod report;
pub mod sendgrid;
pub mod ses;
pub mod sns;
pub mod twilio;
mod util;

#[cfg(test)]
mod test_support;

pub use certs::{CertSource, HttpsCertSource};
pub use error::WebhookError;
pub use report::{Incoming, Report, ReportKind};

use chrono::{DateTime, Utc};

/// The provider kinds [`verify_and_parse`] knows.
pub const KINDS: [&str; 5] = ["ses", "sendgrid", "mailgun", "postmark", "twilio"];

/// Verifies `incoming` as a webhook of provider `kind` configured by `secrets`, and returns
/// the reports it carries (none when it only carries kinds we ignore).
///
/// A verified SNS subscription confirmation answers
/// [`WebhookError::SubscriptionConfirmation`]: the route confirms it by GETting its
/// `subscribe_url`.
pub async fn verify_and_parse(
    kind: &str,
    secrets: &serde_json::Value,
    incoming: &Incoming<'_>,
    certs: &dyn CertSource,
) -> Result<Vec<Report>, WebhookError> {
    verify_and_parse_at(kind, secrets, incoming, certs, Utc::now()).await
}

/// [`verify_and_parse`] at a given time: `now` judges Mailgun's timestamp, SNS certificates'
/// validity, and dates reports whose provider sends no time (Twilio).
#[tracing::instrument(skip_all, fields(kind = %kind), err(level = tracing::Level::INFO))]
pub async fn verify_and_parse_at(
    kind: &str,
    secrets: &serde_json::Value,
    incoming: &Incoming<'_>,
    certs: &dyn CertSource,
    now: DateTime<Utc>,
) -> Result<Vec<Report>, WebhookError> {
    match kind {
        "ses" => ses::verify_and_parse(secrets, incoming, certs, now).await,
        "sendgrid" => sendgrid::verify_and_parse(secrets, incoming),
        "mailgun" => mailgun::verify_and_parse(secrets, incoming, now),
        "postmark" => postmark::verify_and_parse(secrets, incoming),
        "twilio" => twilio::verify_and_parse(secrets, incoming, now),
        other => Err(WebhookError::Unsupported(format!(
            "no webhook for provider kind {other:?}"
        ))),
    }
}
