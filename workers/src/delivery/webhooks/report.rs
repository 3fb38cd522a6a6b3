//! What a webhook request is, and the normalized reports it becomes.

use chrono::{DateTime, Utc};

/// One HTTP request as the provider made it.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    /// The full URL as the provider called it, with its query (Twilio signs it: behind a
    /// proxy, rebuild it from the public scheme and host, not the internal ones).
    pub url: &'a str,
    pub headers: &'a http::HeaderMap,
    /// The raw body, byte for byte (signatures cover it as sent).
    pub body: &'a [u8],
}

/// What became of a message, as far as the platform acts on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportKind {
    /// The receiving server accepted it (SMS: the carrier confirmed delivery).
    Delivered,
    /// It bounced: `hard` when the address will never accept mail (suppress it), soft when
    /// the failure may pass (full mailbox, greylisting, a block).
    Bounced {
        hard: bool,
        diagnostic: String,
    },
    /// The recipient marked it as spam (a feedback loop report).
    Complained,
    /// The provider gave up on it without a bounce: an SMS undelivered or failed, an email
    /// the provider dropped or rejected before sending.
    Failed {
        diagnostic: String,
    },
    Opened,
    Clicked {
        url: String,
    },
    /// The recipient unsubscribed through the provider (its link or list management).
    Unsubscribed,
}

/// One normalized report about one message (and, for email, one recipient).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The id the provider gave the message when it took it (`Sent::provider_message_id`).
    pub provider_message_id: String,
    /// The recipient the report is about, when the provider says.
    pub recipient: Option<String>,
    pub kind: ReportKind,
    /// When it happened, by the provider's clock (when the provider sends no time: when the
    /// report was received).
    pub at: DateTime<Utc>,
}
