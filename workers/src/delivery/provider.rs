//! The provider interface: one call hands one message over and says what became of it.

use std::time::Duration;

use super::message::{Channel, Message};

/// The provider took the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The provider's id for it (SMTP: the queue id from the 250 reply, or the Message-ID),
    /// used to match its later delivery, bounce and complaint reports.
    pub provider_message_id: String,
}

/// Why the provider did not take the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Try again later: SMTP 4xx, HTTP 429 and 5xx, timeouts, connection failures.
    /// `retry_after` when the provider said when (e.g. `Retry-After`).
    #[error("transient: {reason}")]
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Never succeeds as it is: SMTP 5xx, HTTP 4xx other than 429 (bad address, bad
    /// credentials, rejected content).
    #[error("permanent: {reason}")]
    Permanent { reason: String },
    /// The address no longer exists for the provider (a push token it reports unregistered):
    /// permanent, and the worker puts the address on the suppression list, as a hard bounce.
    #[error("unreachable: {reason}")]
    Unreachable { reason: String },
    /// The request went out (or may have: a timeout, a connection lost mid-request, a reply
    /// that could not be read) and no answer came, so the provider may have the message.
    /// Never retried automatically unless the provider deduplicates: the job is in doubt.
    #[error("outcome unknown: {reason}")]
    Unknown { reason: String },
}

/// A way out for messages of one channel.
#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    /// Its kind, as configured (`smtp`, `ses`, `sendgrid`, `twilio`, …).
    fn kind(&self) -> &'static str;

    fn channel(&self) -> Channel;

    /// Whether a repeated call with the same job id is recognised by the provider and not
    /// delivered twice (an idempotency key the provider honours). Only then may a job caught
    /// between "dispatching" and an outcome by a crash be sent again automatically.
    fn deduplicates(&self) -> bool;

    /// Hands `message` over (one attempt; retries are the worker's).
    async fn send(&self, message: &Message) -> Result<Sent, SendError>;
}
