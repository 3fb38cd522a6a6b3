//! Which provider delivers a message: for the delivery worker, from the write-side state
//! (`provider_configs`, `provider_secrets`), never from a lagging read model.

use domain::delivery::Channel;
use event_store::shred::keyring::Keyring;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use super::secrets::{self, SecretsError};

/// A provider ready to be built (`workers::delivery::providers::build(kind, &config)`).
#[derive(Clone, PartialEq)]
pub struct ResolvedProvider {
    pub id: Uuid,
    pub kind: String,
    pub name: String,
    /// The settings merged with the decrypted secrets.
    pub config: Value,
    /// Changes whenever the settings or the secrets change (the stream sequence of the
    /// last such event): with `id`, a cache key for the built provider.
    pub version: i64,
}

impl std::fmt::Debug for ResolvedProvider {
    /// Never prints the configuration (it holds credentials).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedProvider")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

type Row = (
    Uuid,
    String,
    String,
    Value,
    i64,
    Option<i32>,
    Option<String>,
    Option<Vec<u8>>,
);

/// The provider of `channel` that `tenant` sends with: `provider_id` when given (`None` if
/// it is not one of the tenant's live providers of that channel), else the channel's
/// default. `None` when there is none: the caller falls back (the development mailbox for
/// email).
#[tracing::instrument(skip_all, fields(%tenant, channel = channel.as_str(), ?provider_id), err)]
pub async fn resolve(
    pool: &PgPool,
    keys: &Keyring,
    tenant: Uuid,
    channel: Channel,
    provider_id: Option<Uuid>,
) -> Result<Option<ResolvedProvider>, SecretsError> {
    let row: Option<Row> = sqlx::query_as(
        "SELECT c.id, c.kind, c.name, c.settings, c.config_version, \
                s.secrets_version, s.key_id, s.ciphertext \
         FROM provider_configs c \
         LEFT JOIN provider_secrets s ON s.tenant_id = c.tenant_id AND s.provider_id = c.id \
         WHERE c.tenant_id = $1 AND c.channel = $2 \
           AND (CASE WHEN $3::uuid IS NULL THEN c.is_default ELSE c.id = $3 END)",
    )
    .bind(tenant)
    .bind(channel.as_str())
    .bind(provider_id)
    .fetch_optional(pool)
    .await?;
    let Some((id, kind, name, settings, version, secrets_version, key_id, sealed)) = row else {
        return Ok(None);
    };
    let mut config = match settings {
        Value::Object(m) => m,
        _ => return Err(SecretsError::Malformed(id)),
    };
    if let (Some(v), Some(key_id), Some(sealed)) = (secrets_version, key_id, sealed) {
        config.extend(secrets::open(keys, tenant, id, v, &key_id, &sealed)?);
    }
    Ok(Some(ResolvedProvider {
        id,
        kind,
        name,
        config: Value::Object(config),
        version,
    }))
}
