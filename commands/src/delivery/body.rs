//! The bodies of a transactional message and a test send, and what both answer.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A sender or reply-to address.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    pub address: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// A transactional message: a template to one contact or one address.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    pub template_id: Uuid,
    /// The version to send; the published one when absent.
    #[serde(default)]
    pub version: Option<u32>,
    /// The contact to send to (its current address, consent and do-not-contact apply)…
    #[serde(default)]
    pub contact_id: Option<Uuid>,
    /// …or a bare address (email address, E.164 number, device token).
    #[serde(default)]
    pub to: Option<String>,
    /// Values for the template, under `message` in its render context.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub data: Option<serde_json::Value>,
    /// The sender: an email address for email; for SMS an E.164 number or an alphanumeric
    /// sender id (the SMS provider's `from` setting when absent).
    #[serde(default)]
    pub from: Option<Address>,
    #[serde(default)]
    pub reply_to: Option<Address>,
    /// The provider to send with: one of the organization's providers of the template's
    /// channel (`GET /api/v1/providers`). The channel's default provider when absent. Should
    /// the provider be removed before the message goes out, the message is given up, not
    /// sent by another one.
    #[serde(default)]
    pub provider_id: Option<Uuid>,
}

/// A test send of a template version to an address (rendered for a contact when given).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestSend {
    pub to: String,
    #[serde(default)]
    pub contact_id: Option<Uuid>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub data: Option<serde_json::Value>,
    #[serde(default)]
    pub from: Option<Address>,
}

/// A message accepted for delivery: its job, and the cursor after its request.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MessageAccepted {
    pub id: Uuid,
    #[schema(value_type = String)]
    pub cursor: String,
    /// True when the `Idempotency-Key` named a message requested before (nothing new).
    pub duplicate: bool,
}
