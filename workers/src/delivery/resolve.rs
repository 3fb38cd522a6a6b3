//! Which provider carries an organization's messages on a channel: the one a message names,
//! else the channel's default the organization configured (built from its decrypted
//! configuration and kept until the configuration changes), else the development mailbox for
//! email.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::Mutex;
use uuid::Uuid;

use super::dev_mailbox::DevMailbox;
use super::message::Channel;
use super::provider::Provider;
use event_store::shred::keyring::Keyring;

/// A provider ready to use, and the limits of its configuration.
#[derive(Clone)]
pub struct Resolved {
    pub provider: Arc<dyn Provider>,
    /// Names the configuration in job events and rate buckets (its kind, or `kind:<id>`).
    pub name: String,
    /// At most this many messages per second, across every worker process.
    pub rate_per_second: Option<f64>,
    /// The sender its settings name (`from`): the number or sender id of SMS that do not
    /// name their own.
    pub from: Option<String>,
}

/// Why no provider could be had.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The organization has no provider for the channel (and it has no default).
    #[error("no {0} provider is configured")]
    NoneConfigured(&'static str),
    /// The message names a provider the organization does not have (any more) on the
    /// channel: removed since the message was requested. Never replaced by another one.
    #[error("the {channel} provider {id} the message names does not exist (removed?)")]
    Unknown { channel: &'static str, id: Uuid },
    /// The configured provider cannot be built from its configuration.
    #[error("the {kind} provider cannot be used: {reason}")]
    Unusable { kind: String, reason: String },
    /// The database failed while looking the provider up: transient, the message is tried
    /// again (never given up for it).
    #[error(transparent)]
    Store(#[from] sqlx::Error),
}

/// Where the worker gets its providers from.
#[async_trait::async_trait]
pub trait Providers: Send + Sync {
    /// The provider of `tenant`'s messages on `channel`: `provider_id` when the message names
    /// one (the job's `Request::provider_id`), else the channel's default.
    async fn resolve(
        &self,
        tenant: Uuid,
        channel: Channel,
        provider_id: Option<Uuid>,
    ) -> Result<Resolved, ResolveError>;
}

/// Every organization's messages of a channel through one provider (tests, benchmarks, and
/// a single-sender deployment); email without one goes to the development mailbox. A
/// message's named provider is ignored: there is only one.
pub struct Fixed {
    pool: PgPool,
    by_channel: HashMap<Channel, Resolved>,
}

impl Fixed {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            by_channel: HashMap::new(),
        }
    }

    pub fn with(mut self, provider: Arc<dyn Provider>, rate_per_second: Option<f64>) -> Self {
        let name = provider.kind().to_owned();
        self.by_channel.insert(
            provider.channel(),
            Resolved {
                provider,
                name,
                rate_per_second,
                from: None,
            },
        );
        self
    }
}

#[async_trait::async_trait]
impl Providers for Fixed {
    async fn resolve(
        &self,
        tenant: Uuid,
        channel: Channel,
        _provider_id: Option<Uuid>,
    ) -> Result<Resolved, ResolveError> {
        if let Some(r) = self.by_channel.get(&channel) {
            return Ok(r.clone());
        }
        dev_mailbox(&self.pool, tenant, channel)
    }
}

fn dev_mailbox(pool: &PgPool, tenant: Uuid, channel: Channel) -> Result<Resolved, ResolveError> {
    match channel {
        Channel::Email => Ok(Resolved {
            provider: Arc::new(DevMailbox::new(pool.clone(), tenant)),
            name: super::dev_mailbox::KIND.to_owned(),
            rate_per_second: None,
            from: None,
        }),
        Channel::Sms => Err(ResolveError::NoneConfigured("sms")),
        Channel::Push => Err(ResolveError::NoneConfigured("push")),
        Channel::Webhook => Err(ResolveError::NoneConfigured("webhook")),
    }
}

/// Providers as organizations configured them (`commands::providers::resolve`: the one a
/// message names, else the default of the channel), each built once per provider and
/// configuration version (an SMTP pool is kept across batches); email of an organization
/// without a default goes through the platform's relay when there is one, else to the
/// development mailbox. A named provider that is gone is an error, never a fallback.
pub struct Configured {
    pool: PgPool,
    keys: Arc<Keyring>,
    platform_email: Option<Resolved>,
    built: Mutex<HashMap<(Uuid, i64), Resolved>>,
}

impl Configured {
    pub fn new(
        pool: PgPool,
        keys: Arc<Keyring>,
        platform_email: Option<Arc<dyn Provider>>,
    ) -> Self {
        Self {
            pool,
            keys,
            platform_email: platform_email.map(|provider| Resolved {
                name: provider.kind().to_owned(),
                provider,
                rate_per_second: None,
                from: None,
            }),
            built: Mutex::new(HashMap::new()),
        }
    }
}

fn domain_channel(c: Channel) -> domain::delivery::Channel {
    match c {
        Channel::Email => domain::delivery::Channel::Email,
        Channel::Sms => domain::delivery::Channel::Sms,
        Channel::Push => domain::delivery::Channel::Push,
        Channel::Webhook => domain::delivery::Channel::Webhook,
    }
}

#[async_trait::async_trait]
impl Providers for Configured {
    async fn resolve(
        &self,
        tenant: Uuid,
        channel: Channel,
        provider_id: Option<Uuid>,
    ) -> Result<Resolved, ResolveError> {
        let found = commands::providers::resolve(
            &self.pool,
            &self.keys,
            tenant,
            domain_channel(channel),
            provider_id,
        )
        .await
        .map_err(|e| match e {
            commands::providers::SecretsError::Database(e) => ResolveError::Store(e),
            e => ResolveError::Unusable {
                kind: "configured".into(),
                reason: e.to_string(),
            },
        })?;
        let Some(p) = found else {
            if let Some(id) = provider_id {
                return Err(ResolveError::Unknown {
                    channel: domain_channel(channel).as_str(),
                    id,
                });
            }
            return match (&self.platform_email, channel) {
                (Some(r), Channel::Email) => Ok(r.clone()),
                _ => dev_mailbox(&self.pool, tenant, channel),
            };
        };
        // The provider's own id: a named provider and a default are cached alike.
        let key = (p.id, p.version);
        if let Some(r) = self.built.lock().await.get(&key) {
            return Ok(r.clone());
        }
        let provider =
            super::providers::build(&p.kind, &p.config).map_err(|e| ResolveError::Unusable {
                kind: p.kind.clone(),
                reason: e.to_string(),
            })?;
        let r = Resolved {
            provider: Arc::from(provider),
            name: format!("{}:{}", p.kind, p.id),
            rate_per_second: p.config["rate_per_second"].as_f64().filter(|r| *r > 0.0),
            from: p.config["from"]
                .as_str()
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .map(str::to_owned),
        };
        let mut built = self.built.lock().await;
        // Older versions of this provider are done with.
        built.retain(|(id, _), _| *id != p.id);
        built.insert(key, r.clone());
        Ok(r)
    }
}
