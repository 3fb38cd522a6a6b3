//! Which provider carries an organization's messages on a channel: the one it configured
//! (built from its decrypted configuration and kept until the configuration changes), else
//! the development mailbox for email.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::Mutex;
use uuid::Uuid;

use super::dev_mailbox::DevMailbox;
use super::message::Channel;
use super::provider::Provider;

/// A provider ready to use, and the limits of its configuration.
#[derive(Clone)]
pub struct Resolved {
    pub provider: Arc<dyn Provider>,
    /// Names the configuration in job events and rate buckets (its kind, or `kind:<id>`).
    pub name: String,
    /// At most this many messages per second, across every worker process.
    pub rate_per_second: Option<f64>,
}

/// Why no provider could be had.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The organization has no provider for the channel (and it has no default).
    #[error("no {0} provider is configured")]
    NoneConfigured(&'static str),
    /// The configured provider cannot be built from its configuration.
    #[error("the {kind} provider cannot be used: {reason}")]
    Unusable { kind: String, reason: String },
    #[error(transparent)]
    Store(#[from] sqlx::Error),
}

/// Where the worker gets its providers from.
#[async_trait::async_trait]
pub trait Providers: Send + Sync {
    async fn resolve(&self, tenant: Uuid, channel: Channel) -> Result<Resolved, ResolveError>;
}

/// Every organization's messages of a channel through one provider (tests, benchmarks, and
/// a single-sender deployment); email without one goes to the development mailbox.
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
            },
        );
        self
    }
}

#[async_trait::async_trait]
impl Providers for Fixed {
    async fn resolve(&self, tenant: Uuid, channel: Channel) -> Result<Resolved, ResolveError> {
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
        }),
        Channel::Sms => Err(ResolveError::NoneConfigured("sms")),
        Channel::Push => Err(ResolveError::NoneConfigured("push")),
        Channel::Webhook => Err(ResolveError::NoneConfigured("webhook")),
    }
}

/// Providers as organizations configured them (`commands::providers`), cached per
/// configuration version; email of an organization without one goes through the platform's
/// relay when there is one, else to the development mailbox.
pub struct Configured {
    pool: PgPool,
    platform_email: Option<Resolved>,
    cache: Mutex<HashMap<(Uuid, Channel), Resolved>>,
}

impl Configured {
    pub fn new(pool: PgPool, platform_email: Option<Arc<dyn Provider>>) -> Self {
        Self {
            pool,
            platform_email: platform_email.map(|provider| Resolved {
                name: provider.kind().to_owned(),
                provider,
                rate_per_second: None,
            }),
            cache: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait::async_trait]
impl Providers for Configured {
    async fn resolve(&self, tenant: Uuid, channel: Channel) -> Result<Resolved, ResolveError> {
        if let Some(r) = self.cache.lock().await.get(&(tenant, channel)) {
            return Ok(r.clone());
        }
        let r = match (&self.platform_email, channel) {
            (Some(p), Channel::Email) => p.clone(),
            _ => dev_mailbox(&self.pool, tenant, channel)?,
        };
        self.cache.lock().await.insert((tenant, channel), r.clone());
        Ok(r)
    }
}
