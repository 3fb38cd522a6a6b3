//! Why a webhook request was refused (or, for SNS subscriptions, what must be done first).

/// A webhook request that yields no reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The signature or credentials are missing or do not verify: not from the provider, or
    /// altered on the way.
    #[error("the webhook's signature or credentials do not verify")]
    BadSignature,
    /// The signed timestamp is too far from now (a replayed request, or a badly wrong clock).
    #[error("the webhook's timestamp is {age_secs} s away from now")]
    Stale { age_secs: i64 },
    /// The SNS message names a signing certificate that is not on an Amazon SNS host: a
    /// forged certificate URL, refused before anything is fetched.
    #[error("untrusted signing certificate URL {0:?}")]
    UntrustedCertUrl(String),
    /// The signing certificate could not be fetched, read, or is outside its validity.
    #[error("signing certificate: {0}")]
    Certificate(String),
    /// The SNS message comes from a topic other than the configured `sns_topic_arn`.
    #[error("unexpected SNS topic {0:?}")]
    WrongTopic(String),
    /// The configuration lacks a secret this kind needs, or holds one that cannot be used.
    #[error("webhook configuration: {0}")]
    Config(String),
    /// The request is not what the provider documents (not JSON, a field missing).
    #[error("malformed webhook: {0}")]
    Malformed(String),
    /// The provider kind, or a signature scheme it uses, is not supported.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A verified SNS subscription confirmation: no reports; the route confirms it by GETting
    /// `subscribe_url` (checked to be on an Amazon SNS host) and answers 200.
    #[error("SNS subscription confirmation for {topic_arn}")]
    SubscriptionConfirmation {
        topic_arn: String,
        subscribe_url: String,
    },
}
