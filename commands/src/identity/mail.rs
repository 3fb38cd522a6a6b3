//! System mail (verification, password reset, invites) through the configured SMTP server.
//! Once the delivery engine exists these go through the platform's own mail path; until
//! then `MAUNTIC_SMTP_URL` names the server. Without one, mail is written to the log (for a
//! developer machine) and not sent.

use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// Sends plain-text system mail.
#[derive(Clone)]
pub struct SystemMailer {
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: String,
}

/// Why a mail was not sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid address or message: {0}")]
    Message(String),
    #[error("SMTP: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
}

impl SystemMailer {
    /// `smtp_url` like `smtp://host:25`, `smtp://user:pass@host:587?tls=required` or
    /// `smtps://host:465` (lettre's URL form).
    pub fn new(smtp_url: Option<&str>, from: &str) -> Result<Self, MailError> {
        let transport = smtp_url
            .map(|u| AsyncSmtpTransport::<Tokio1Executor>::from_url(u).map(|b| b.build()))
            .transpose()?;
        Ok(Self {
            transport,
            from: from.to_owned(),
        })
    }

    /// Sends `body` to `to` with `subject`.
    #[tracing::instrument(skip(self, body), err)]
    pub async fn send(&self, to: &str, subject: &str, body: String) -> Result<(), MailError> {
        let Some(transport) = &self.transport else {
            tracing::info!(%to, %subject, %body, "MAUNTIC_SMTP_URL not set: system mail logged, not sent");
            return Ok(());
        };
        let message = Message::builder()
            .from(
                self.from
                    .parse()
                    .map_err(|e: lettre::address::AddressError| {
                        MailError::Message(e.to_string())
                    })?,
            )
            .to(to
                .parse()
                .map_err(|e: lettre::address::AddressError| MailError::Message(e.to_string()))?)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| MailError::Message(e.to_string()))?;
        transport.send(message).await?;
        Ok(())
    }
}
