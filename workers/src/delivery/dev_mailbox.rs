//! The built-in development mailbox: the email provider of an organization that configured
//! none. It keeps each message (the full RFC 5322 text lettre builds, and its parts) in
//! `dev_mailbox`, listed by `GET /api/v1/dev-mailbox`, so a newcomer sees real rendered mail
//! without an account anywhere. Nothing leaves the machine.

use sqlx::PgPool;
use uuid::Uuid;

use super::message::{Channel, Message};
use super::provider::{Provider, SendError, Sent};
use super::providers::mime;

/// The kind name jobs record.
pub const KIND: &str = "dev_mailbox";

pub struct DevMailbox {
    pool: PgPool,
    tenant: Uuid,
}

impl DevMailbox {
    pub fn new(pool: PgPool, tenant: Uuid) -> Self {
        Self { pool, tenant }
    }
}

#[async_trait::async_trait]
impl Provider for DevMailbox {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn channel(&self) -> Channel {
        Channel::Email
    }

    /// A message is stored once per job (the insert is keyed by it), so a job in doubt may
    /// be handed over again.
    fn deduplicates(&self) -> bool {
        true
    }

    async fn send(&self, message: &Message) -> Result<Sent, SendError> {
        let Message::Email(email) = message else {
            return Err(SendError::Permanent {
                reason: "the development mailbox takes email only".into(),
            });
        };
        let raw = mime::formatted(email).map_err(|e| SendError::Permanent {
            reason: e.to_string(),
        })?;
        let raw = String::from_utf8_lossy(&raw).into_owned();
        sqlx::query(
            "INSERT INTO dev_mailbox (tenant_id, job_id, message_id, sender, recipient, subject, html, text, raw) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 \
             WHERE NOT EXISTS (SELECT 1 FROM dev_mailbox WHERE tenant_id = $1 AND job_id = $2)",
        )
        .bind(self.tenant)
        .bind(email.job_id)
        .bind(&email.message_id)
        .bind(mime::display(&email.from))
        .bind(mime::display(&email.to))
        .bind(&email.subject)
        .bind(&email.html)
        .bind(&email.text)
        .bind(raw)
        .execute(&self.pool)
        .await
        .map_err(|e| SendError::Transient {
            reason: format!("development mailbox: {e}"),
            retry_after: None,
        })?;
        Ok(Sent {
            provider_message_id: email.message_id.clone(),
        })
    }
}
