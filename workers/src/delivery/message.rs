//! A message ready to hand to a provider: rendered, tracked links rewritten, headers decided.
//! One per delivery job; `job_id` names it everywhere (Message-ID, idempotency keys, logs).

use std::collections::BTreeMap;

use uuid::Uuid;

/// The channel a message goes out on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
    Push,
    Webhook,
}

/// An address with an optional display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub name: Option<String>,
    pub address: String,
}

/// An email, rendered. The provider builds the MIME message (multipart/alternative: text, then
/// HTML) with exactly these headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub job_id: Uuid,
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    pub to: Mailbox,
    pub subject: String,
    pub html: String,
    pub text: String,
    /// `<job uuid>@<sending domain>`, without angle brackets.
    pub message_id: String,
    /// The envelope sender (`MAIL FROM`, `Return-Path`): per job, so a bounce names its job,
    /// e.g. `bounce+<job>.<signature>@<bounce domain>` (VERP).
    pub return_path: String,
    /// `List-Unsubscribe: <https://…>, <mailto:…>` and, when `https` is set,
    /// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058).
    pub unsubscribe_mailto: Option<String>,
    pub unsubscribe_https: Option<String>,
    /// `Feedback-ID` (Gmail's feedback loop), e.g. `<campaign>:<tenant>:mauntic`.
    pub feedback_id: Option<String>,
}

/// A text message. `to` and `from` are E.164 numbers (or an alphanumeric sender id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sms {
    pub job_id: Uuid,
    pub from: String,
    pub to: String,
    pub body: String,
}

/// A push notification to one device token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    pub job_id: Uuid,
    pub token: String,
    pub title: String,
    pub body: String,
    pub data: BTreeMap<String, String>,
}

/// An HTTP request to an endpoint the organization chose (HTTPS outside development).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub job_id: Uuid,
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// One message on its channel.
// One per job, passed by reference to a provider and never held in bulk: an email's size
// inline costs nothing worth a `Box` in every match.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Email(Email),
    Sms(Sms),
    Push(Push),
    Webhook(Webhook),
}

impl Message {
    pub fn job_id(&self) -> Uuid {
        match self {
            Self::Email(m) => m.job_id,
            Self::Sms(m) => m.job_id,
            Self::Push(m) => m.job_id,
            Self::Webhook(m) => m.job_id,
        }
    }

    /// Where it goes: the recipient's email address, phone number, device token or URL.
    pub fn address(&self) -> &str {
        match self {
            Self::Email(m) => &m.to.address,
            Self::Sms(m) => &m.to,
            Self::Push(m) => &m.token,
            Self::Webhook(m) => &m.url,
        }
    }

    pub fn channel(&self) -> Channel {
        match self {
            Self::Email(_) => Channel::Email,
            Self::Sms(_) => Channel::Sms,
            Self::Push(_) => Channel::Push,
            Self::Webhook(_) => Channel::Webhook,
        }
    }
}
