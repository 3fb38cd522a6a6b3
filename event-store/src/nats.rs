//! The JetStream contract, documented in ARCHITECTURE.md ("Subscribing from outside").
//!
//! Each installation has a stream of its own, `MAUNTIC_<installation>` (configurable), holding
//! subjects `<prefix>.>` where the prefix is `mauntic.<installation>` (configurable); each event
//! is published to `<prefix>.<tenant>.<aggregate_type>.<event_type>` with the
//! [`RecordedEvent`] as its JSON body and these headers. The installation is the id its
//! database was made with (`store::installation`), so two installations sharing one NATS
//! server never share a stream, and a message of another installation is recognised by its
//! [`INSTALLATION`] header and refused.

use std::time::Duration;

use async_nats::jetstream;
use uuid::Uuid;

use crate::{Cursor, RecordedEvent, StoreError};

/// `<aggregate_type>/<aggregate_id>/<sequence>`: JetStream's duplicate detection key.
pub const MSG_ID: &str = "Nats-Msg-Id";
/// The event's cursor, `"<tx_id>-<position>"`.
pub const CURSOR: &str = "Mauntic-Cursor";
/// The cursor of the event the relay published just before this one. A subscriber that
/// consumes the whole stream uses it to prove it has missed nothing.
pub const PREV_CURSOR: &str = "Mauntic-Prev-Cursor";
pub const EVENT_ID: &str = "Mauntic-Event-Id";
pub const TENANT: &str = "Mauntic-Tenant";
pub const AGGREGATE_TYPE: &str = "Mauntic-Aggregate-Type";
pub const AGGREGATE_ID: &str = "Mauntic-Aggregate-Id";
pub const SEQUENCE: &str = "Mauntic-Sequence";
pub const EVENT_TYPE: &str = "Mauntic-Event-Type";
pub const EVENT_VERSION: &str = "Mauntic-Event-Version";
/// The installation that published the message (its database's id).
pub const INSTALLATION: &str = "Mauntic-Installation";

/// Where the events go. The stream and the subject prefix default to names of the
/// installation's own ([`Names::of`]); set them only to choose other names.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    pub url: String,
    pub stream: Option<String>,
    pub subject_prefix: Option<String>,
}

impl NatsConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            stream: None,
            subject_prefix: None,
        }
    }
}

/// The stream and subject prefix of one installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub stream: String,
    pub subject_prefix: String,
}

impl Names {
    /// The names `config` gives installation `installation`: its own unless configured.
    pub fn of(config: &NatsConfig, installation: Uuid) -> Self {
        let id = installation.simple();
        Self {
            stream: config
                .stream
                .clone()
                .unwrap_or_else(|| format!("MAUNTIC_{id}")),
            subject_prefix: config
                .subject_prefix
                .clone()
                .unwrap_or_else(|| format!("mauntic.{id}")),
        }
    }
}

/// A connected JetStream context of one installation, with its stream made sure of.
#[derive(Clone)]
pub struct Bus {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub config: NatsConfig,
    pub names: Names,
    /// The installation whose events this bus carries.
    pub installation: Uuid,
}

impl Bus {
    /// Connects and creates the installation's stream if it is missing.
    #[tracing::instrument(skip_all, fields(url = %config.url, %installation), err)]
    pub async fn connect(config: NatsConfig, installation: Uuid) -> Result<Self, StoreError> {
        let client = async_nats::ConnectOptions::new()
            .name("mauntic")
            .connection_timeout(Duration::from_secs(5))
            .connect(config.url.as_str())
            .await
            .map_err(StoreError::js)?;
        let js = jetstream::new(client.clone());
        let names = Names::of(&config, installation);
        let bus = Self {
            client,
            js,
            config,
            names,
            installation,
        };
        bus.stream().await?;
        Ok(bus)
    }

    /// The events stream, created on first use.
    pub async fn stream(&self) -> Result<jetstream::stream::Stream, StoreError> {
        self.js
            .get_or_create_stream(jetstream::stream::Config {
                name: self.names.stream.clone(),
                subjects: vec![self.all_subjects()],
                storage: jetstream::stream::StorageType::File,
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await
            .map_err(StoreError::js)
    }

    /// The subject of an event.
    pub fn subject(&self, e: &RecordedEvent) -> String {
        format!(
            "{}.{}.{}.{}",
            self.names.subject_prefix,
            e.tenant_id,
            token(&e.aggregate_type),
            token(&e.event_type)
        )
    }

    /// The subject that matches every event.
    pub fn all_subjects(&self) -> String {
        format!("{}.>", self.names.subject_prefix)
    }

    /// Whether the server answers.
    pub async fn ping(&self) -> bool {
        matches!(
            tokio::time::timeout(Duration::from_secs(2), self.client.flush()).await,
            Ok(Ok(()))
        )
    }

    /// The message for one event, published after `prev`.
    pub fn message(
        &self,
        e: &RecordedEvent,
        prev: Cursor,
    ) -> Result<jetstream::message::PublishMessage, StoreError> {
        message(e, prev, self.installation)
    }
}

/// The message for one event of `installation`, published after `prev`.
pub fn message(
    e: &RecordedEvent,
    prev: Cursor,
    installation: Uuid,
) -> Result<jetstream::message::PublishMessage, StoreError> {
    let body = serde_json::to_vec(e).map_err(|x| StoreError::Malformed(x.to_string()))?;
    Ok(jetstream::message::PublishMessage::build()
        .payload(body.into())
        .message_id(e.msg_id())
        .header(CURSOR, e.cursor.to_string().as_str())
        .header(PREV_CURSOR, prev.to_string().as_str())
        .header(EVENT_ID, e.event_id.to_string().as_str())
        .header(TENANT, e.tenant_id.to_string().as_str())
        .header(AGGREGATE_TYPE, e.aggregate_type.as_str())
        .header(AGGREGATE_ID, e.aggregate_id.as_str())
        .header(SEQUENCE, e.sequence.to_string().as_str())
        .header(EVENT_TYPE, e.event_type.as_str())
        .header(EVENT_VERSION, e.event_version.as_str())
        .header(INSTALLATION, installation.to_string().as_str()))
}

/// A subject token: NATS forbids `.`, `*`, `>` and whitespace in one.
fn token(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == '.' || c == '*' || c == '>' || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect()
}
