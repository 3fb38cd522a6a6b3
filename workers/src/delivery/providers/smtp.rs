//! SMTP with lettre's pooled async transport: STARTTLS, implicit TLS, or plain (local sinks);
//! AUTH when a username is configured. Replies map to [`SendError`]: 4xx, timeouts and
//! connection failures are transient, 5xx permanent.

use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::response::Response;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{http, mime};
use crate::delivery::message::{Channel, Message};
use crate::delivery::provider::{Provider, SendError, Sent};

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Security {
    /// Plain text (a local sink or relay only).
    None,
    /// Plain, then `STARTTLS`, required (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: Security,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// Connections kept open and reused.
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
    /// The limit on one message's whole exchange, connecting included (lettre's async
    /// transport bounds only the TCP connect; a server that accepts and never answers would
    /// hold the send forever).
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_pool_size() -> u32 {
    4
}

fn default_timeout_secs() -> u64 {
    30
}

pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    timeout: Duration,
}

impl Smtp {
    /// A transport for `config`; no connection is made until the first send.
    pub fn new(config: &SmtpConfig) -> Result<Self, lettre::transport::smtp::Error> {
        let builder = match config.security {
            Security::None => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.as_str())
            }
            Security::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.host)?
            }
            Security::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&config.host)?,
        };
        let mut builder = builder
            .port(config.port)
            .timeout(Some(Duration::from_secs(config.timeout_secs)))
            .pool_config(PoolConfig::new().max_size(config.pool_size.max(1)));
        if let Some(username) = &config.username {
            let password = config.password.clone().unwrap_or_default();
            builder = builder.credentials(Credentials::new(username.clone(), password));
        }
        Ok(Self {
            transport: builder.build(),
            timeout: Duration::from_secs(config.timeout_secs),
        })
    }
}

#[async_trait::async_trait]
impl Provider for Smtp {
    fn kind(&self) -> &'static str {
        "smtp"
    }

    fn channel(&self) -> Channel {
        Channel::Email
    }

    /// SMTP has no idempotency key: a repeated transaction is a second message.
    fn deduplicates(&self) -> bool {
        false
    }

    #[tracing::instrument(skip_all, fields(job_id = %message.job_id()), err)]
    async fn send(&self, message: &Message) -> Result<Sent, SendError> {
        let Message::Email(email) = message else {
            return Err(http::wrong_channel("smtp", Channel::Email, message));
        };
        let mime = mime::build(email).map_err(|e| http::unbuildable("smtp", e))?;
        let response = tokio::time::timeout(self.timeout, self.transport.send(mime))
            .await
            .map_err(|_| SendError::Unknown {
                reason: format!("smtp: no answer within {:?}", self.timeout),
            })?
            .map_err(|e| classify(&e))?;
        let provider_message_id = queue_id(&response).unwrap_or_else(|| email.message_id.clone());
        Ok(Sent {
            provider_message_id,
        })
    }
}

/// 4xx → transient, 5xx → permanent, an error of the client itself (a message it cannot
/// send) → permanent; no connection (refused, unreachable, TLS) → transient, as nothing was
/// sent; a timeout, a connection lost mid-session or an unreadable reply → unknown, as the
/// server may have taken the message.
pub fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    use std::io::ErrorKind as K;
    let reason = format!("smtp: {e}");
    let transient = |reason| SendError::Transient {
        reason,
        retry_after: None,
    };
    if e.is_permanent() || (e.is_client() && !e.is_timeout()) {
        return SendError::Permanent { reason };
    }
    if e.is_transient() || e.is_tls() || e.is_transport_shutdown() {
        return transient(reason);
    }
    let io = std::error::Error::source(e).and_then(|s| s.downcast_ref::<std::io::Error>());
    let never_connected = io.is_some_and(|io| {
        matches!(
            io.kind(),
            K::ConnectionRefused
                | K::AddrNotAvailable
                | K::HostUnreachable
                | K::NetworkUnreachable
                | K::NotFound
        )
    });
    if never_connected && !e.is_timeout() {
        transient(reason)
    } else {
        SendError::Unknown { reason }
    }
}

/// The queue id of a 250 reply: Postfix's `Ok: queued as 4Xyz`, Exim's `OK id=1abc-…`.
pub fn queue_id(response: &Response) -> Option<String> {
    let text = response.message().collect::<Vec<_>>().join(" ");
    let after = text
        .split_once("queued as ")
        .or_else(|| text.split_once("id="))
        .map(|(_, rest)| rest)?;
    let id: String = after
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '@'))
        .collect();
    (!id.is_empty()).then_some(id)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use lettre::transport::smtp::response::{Category, Code, Detail, Severity};

    use super::*;

    fn ok(line: &str) -> Response {
        let code = Code::new(
            Severity::PositiveCompletion,
            Category::MailSystem,
            Detail::Zero,
        );
        Response::new(code, vec![line.to_owned()])
    }

    #[test]
    fn the_queue_id_is_read_from_postfix_and_exim_replies() {
        assert_eq!(
            queue_id(&ok("2.0.0 Ok: queued as 4Q1x2Y3zKpz")).as_deref(),
            Some("4Q1x2Y3zKpz")
        );
        assert_eq!(
            queue_id(&ok("OK id=1rXyZ-000abc-Q1")).as_deref(),
            Some("1rXyZ-000abc-Q1")
        );
        assert_eq!(queue_id(&ok("2.0.0 Ok")), None);
    }
}
