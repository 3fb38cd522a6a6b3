//! SMTP over lettre's async connection, with our own pool: STARTTLS, implicit TLS, or plain
//! (local sinks); AUTH when a username is configured.
//!
//! lettre's pooled transport sends `NOOP` and waits for its answer every time it takes a
//! connection from the pool — one round trip in five per message. Ours trusts a connection
//! used in the last few seconds and tests only older ones. That is safe because it tells
//! apart where an exchange failed:
//! - before the message's final dot was written (connecting, `MAIL`, `RCPT`, `DATA`), the
//!   server cannot have taken it: a reused connection that turns out closed is replaced and
//!   the message sent on a new one; otherwise the failure is transient (or permanent for a
//!   5xx reply) — never "unknown";
//! - after the final dot, only the server's reply says whether it took the message: a 2xx is
//!   sent, 4xx/5xx transient/permanent, a timeout or a lost connection unknown.
//!
//! A server that announces `PIPELINING` (RFC 2920) is sent `MAIL`, `RCPT` and `DATA` in one
//! write and its three replies read after; the message follows in one more write, dot-stuffed
//! in one pass and ended by its final dot. That is two round trips and two writes per message,
//! where one command at a time takes four round trips and six writes: fewer waits for the
//! client, fewer wake-ups for the server.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;

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
    /// The most connections open to the server at once (sends beyond wait for one), kept
    /// open and reused.
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
    /// The limit on one message's whole exchange, connecting included (lettre's async
    /// transport bounds only the TCP connect; a server that accepts and never answers would
    /// hold the send forever).
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_pool_size() -> u32 {
    16
}

fn default_timeout_secs() -> u64 {
    30
}

/// A connection idle for longer is tested with `NOOP` before it is used again.
const TRUST_IDLE: Duration = Duration::from_secs(5);
/// A connection idle for longer is closed rather than tested (servers drop idle clients).
const MAX_IDLE: Duration = Duration::from_secs(60);

pub struct Smtp {
    config: SmtpConfig,
    hello: ClientId,
    /// Open connections not in use, the most recently used last.
    idle: Mutex<Vec<(Connection, Instant)>>,
    /// At most `pool_size` connections at once.
    slots: tokio::sync::Semaphore,
    timeout: Duration,
}

/// A connection and whether its server pipelines.
struct Connection {
    conn: AsyncSmtpConnection,
    pipelining: bool,
}

/// Where an exchange failed.
enum Failure {
    /// Before the final dot: the server has not taken the message.
    Before(lettre::transport::smtp::Error),
    /// Waiting for the reply to the final dot (or writing the message).
    After(lettre::transport::smtp::Error),
    /// No reply in time, before or after the final dot.
    TimedOut { before: bool },
}

impl Smtp {
    /// A transport for `config`; no connection is made until the first send.
    pub fn new(config: &SmtpConfig) -> Result<Self, lettre::transport::smtp::Error> {
        if config.security != Security::None {
            // Fails now on a host name TLS cannot verify against.
            TlsParameters::new(config.host.clone())?;
        }
        Ok(Self {
            config: config.clone(),
            hello: ClientId::default(),
            idle: Mutex::new(Vec::new()),
            slots: tokio::sync::Semaphore::new(config.pool_size.max(1) as usize),
            timeout: Duration::from_secs(config.timeout_secs),
        })
    }

    /// A new connection: greeting, EHLO, TLS as configured, AUTH.
    async fn connect(&self) -> Result<Connection, lettre::transport::smtp::Error> {
        let c = &self.config;
        let server = (c.host.as_str(), c.port);
        let mut conn = match c.security {
            Security::None | Security::Starttls => {
                AsyncSmtpConnection::connect_tokio1(
                    server,
                    Some(self.timeout),
                    &self.hello,
                    None,
                    None,
                )
                .await?
            }
            Security::Tls => {
                let tls = TlsParameters::new(c.host.clone())?;
                AsyncSmtpConnection::connect_tokio1(
                    server,
                    Some(self.timeout),
                    &self.hello,
                    Some(tls),
                    None,
                )
                .await?
            }
        };
        if c.security == Security::Starttls {
            let tls = TlsParameters::new(c.host.clone())?;
            conn.starttls(tls, &self.hello).await?;
        }
        // lettre keeps only the extensions it uses from the EHLO reply, and PIPELINING is not
        // one of them: ask again (once per connection) and read it ourselves.
        let ehlo = conn.command(Ehlo::new(self.hello.clone())).await?;
        let pipelining = ehlo
            .message()
            .skip(1)
            .any(|line| line.trim().eq_ignore_ascii_case("PIPELINING"));
        if let Some(username) = &c.username {
            let credentials =
                Credentials::new(username.clone(), c.password.clone().unwrap_or_default());
            conn.auth(DEFAULT_MECHANISMS, &credentials).await?;
        }
        Ok(Connection { conn, pipelining })
    }

    /// A pooled connection that has been used recently or answers `NOOP`.
    async fn pooled(&self) -> Option<Connection> {
        loop {
            let (mut c, since) = self.idle.lock().ok()?.pop()?;
            let idle = since.elapsed();
            if idle > MAX_IDLE {
                c.conn.abort().await;
                continue;
            }
            if idle <= TRUST_IDLE || c.conn.test_connected().await {
                return Some(c);
            }
            c.conn.abort().await;
        }
    }

    fn park(&self, c: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push((c, Instant::now()));
        }
    }

    /// One message on `c`; the connection is fit for reuse after `Ok`.
    async fn exchange(
        &self,
        c: &mut Connection,
        envelope: &Envelope,
        message: &Outgoing,
    ) -> Result<Response, Failure> {
        let before = tokio::time::timeout(self.timeout, start_data(c, envelope, message))
            .await
            .map_err(|_| Failure::TimedOut { before: true })?;
        before.map_err(Failure::Before)?;
        let reply = async {
            match &message.stuffed {
                Some(stuffed) => c.conn.command(Raw(stuffed)).await,
                None => c.conn.message(&message.raw).await,
            }
        };
        tokio::time::timeout(self.timeout, reply)
            .await
            .map_err(|_| Failure::TimedOut { before: false })?
            .map_err(Failure::After)
    }
}

/// `MAIL`, `RCPT` for each recipient, `DATA`: everything before the message itself. Each is
/// answered before the next goes out, unless the server pipelines: then all go in one write
/// and the replies are read in order; the first refusal is the answer (the connection is not
/// used again after a failure, so the replies after it need not be read).
async fn start_data(
    c: &mut Connection,
    envelope: &Envelope,
    message: &Outgoing,
) -> Result<(), lettre::transport::smtp::Error> {
    let conn = &mut c.conn;
    let mut parameters = Vec::new();
    let ascii = |a: &lettre::Address| AsRef::<str>::as_ref(a).is_ascii();
    let non_ascii = envelope.from().is_some_and(|a| !ascii(a)) || !envelope.to().iter().all(ascii);
    if non_ascii && conn.server_info().supports_feature(Extension::SmtpUtfEight) {
        parameters.push(MailParameter::SmtpUtfEight);
    }
    if !message.raw.is_ascii() && conn.server_info().supports_feature(Extension::EightBitMime) {
        parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    let mail = Mail::new(envelope.from().cloned(), parameters);
    if c.pipelining {
        let mut commands = mail.to_string();
        for to in envelope.to() {
            commands.push_str(&Rcpt::new(to.clone(), vec![]).to_string());
        }
        commands.push_str(&Data.to_string());
        conn.command(Raw(&commands)).await?;
        for _ in 0..=envelope.to().len() {
            conn.read_response().await?;
        }
        return Ok(());
    }
    conn.command(mail).await?;
    for to in envelope.to() {
        conn.command(Rcpt::new(to.clone(), vec![])).await?;
    }
    conn.command(Data).await?;
    Ok(())
}

/// A message ready to go: as built, and (when it is text, as lettre's messages are) already
/// dot-stuffed with its final dot, to be written at once.
struct Outgoing {
    raw: Vec<u8>,
    stuffed: Option<String>,
}

impl Outgoing {
    fn new(raw: Vec<u8>) -> Self {
        let stuffed = std::str::from_utf8(&raw).ok().map(dot_stuffed);
        Self { raw, stuffed }
    }
}

/// The message as the DATA phase carries it (RFC 5321 §4.5.2): a dot that starts a line is
/// doubled, and the message ends with a line holding only a dot.
fn dot_stuffed(message: &str) -> String {
    let bytes = message.as_bytes();
    let mut out = String::with_capacity(message.len() + message.len() / 64 + 8);
    let mut from = 0;
    if bytes.first() == Some(&b'.') {
        out.push('.');
    }
    for at in memchr::memmem::find_iter(bytes, b"\n.") {
        // Up to and including the line's first dot, then that dot again.
        out.push_str(&message[from..at + 2]);
        out.push('.');
        from = at + 2;
    }
    out.push_str(&message[from..]);
    out.push_str(if message.ends_with("\r\n") || message.is_empty() {
        ".\r\n"
    } else {
        "\r\n.\r\n"
    });
    out
}

/// Text written to the connection as it is: lettre's `command` writes what it is given and
/// reads one reply, which is what a pipelined group and a pre-stuffed message both need.
struct Raw<'a>(&'a str);

impl std::fmt::Display for Raw<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
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
        let envelope = mime.envelope().clone();
        let message = Outgoing::new(mime.formatted());
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| SendError::Transient {
                reason: "smtp: the transport is shut down".into(),
                retry_after: None,
            })?;
        // A pooled connection first; if it turns out closed before the message went out,
        // once more on a new one.
        let mut reused = self.pooled().await;
        loop {
            let was_reused = reused.is_some();
            let mut conn = match reused.take() {
                Some(c) => c,
                None => match tokio::time::timeout(self.timeout, self.connect()).await {
                    Ok(Ok(c)) => c,
                    Ok(Err(e)) => return Err(not_sent(&e)),
                    Err(_) => {
                        return Err(SendError::Transient {
                            reason: format!("smtp: no greeting within {:?}", self.timeout),
                            retry_after: None,
                        })
                    }
                },
            };
            match self.exchange(&mut conn, &envelope, &message).await {
                Ok(response) => {
                    self.park(conn);
                    let provider_message_id =
                        queue_id(&response).unwrap_or_else(|| email.message_id.clone());
                    return Ok(Sent {
                        provider_message_id,
                    });
                }
                // Closed, or closing (421), while it sat in the pool: a new connection.
                Err(Failure::Before(e)) if was_reused && !e.is_permanent() => {
                    tracing::debug!(error = %e, "smtp: a pooled connection failed; reconnecting");
                    conn.conn.abort().await;
                }
                Err(Failure::Before(e)) => {
                    conn.conn.abort().await;
                    return Err(not_sent(&e));
                }
                Err(Failure::After(e)) => {
                    conn.conn.abort().await;
                    return Err(classify(&e));
                }
                Err(Failure::TimedOut { before }) => {
                    conn.conn.abort().await;
                    let reason = format!("smtp: no answer within {:?}", self.timeout);
                    return Err(if before {
                        SendError::Transient {
                            reason,
                            retry_after: None,
                        }
                    } else {
                        SendError::Unknown { reason }
                    });
                }
            }
        }
    }
}

/// A failure before the message's final dot: the server has not taken it, so it is never
/// unknown — permanent for a 5xx reply or a message the client cannot send, else transient.
fn not_sent(e: &lettre::transport::smtp::Error) -> SendError {
    match classify(e) {
        SendError::Unknown { reason } => SendError::Transient {
            reason,
            retry_after: None,
        },
        other => other,
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
    fn a_line_starting_with_a_dot_gets_another_and_the_message_ends_with_a_lone_dot() {
        assert_eq!(dot_stuffed("a\r\nb\r\n"), "a\r\nb\r\n.\r\n");
        assert_eq!(dot_stuffed("a\r\nb"), "a\r\nb\r\n.\r\n");
        assert_eq!(
            dot_stuffed(".a\r\n..b\r\nc.d\r\n.\r\n"),
            "..a\r\n...b\r\nc.d\r\n..\r\n.\r\n"
        );
        assert_eq!(dot_stuffed(""), ".\r\n");
        // What a server un-stuffs (RFC 5321 §4.5.2) is the message again.
        let message = "Subject: x\r\n\r\n.\r\n.x=3D\r\nend.";
        let stuffed = dot_stuffed(message);
        let unstuffed: Vec<&str> = stuffed
            .strip_suffix("\r\n.\r\n")
            .unwrap()
            .split("\r\n")
            .map(|line| line.strip_prefix('.').unwrap_or(line))
            .collect();
        assert_eq!(unstuffed.join("\r\n"), message);
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
