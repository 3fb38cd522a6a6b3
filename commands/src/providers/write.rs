//! The providers service ([`Providers`]). Every provider command in one transaction: the provider's events (and, when a default
//! moves, the previous default's), its row in `provider_configs` and its sealed secrets in
//! `provider_secrets` commit together or not at all. Provider commands of one organization
//! take a transaction-scoped advisory lock, so the "previous default" they look up cannot
//! change under them; the unique index on defaults and the append's sequence check stay as
//! backstops (a conflict loads, decides and appends again).

use cqrs_es::Aggregate;
use domain::delivery::provider_config::{
    ProviderCommand, ProviderConfig, ProviderError, ProviderEvent,
};
use domain::delivery::Channel;
use event_store::append::AppendError;
use event_store::{reader, Cursor, EventMetadata};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use std::sync::Arc;

use domain::{ProviderId, TenantId};
use event_store::shred::keyring::Keyring;

use super::body::{NewProvider, ProviderChange};
use super::secrets;
use crate::executor::{backoff, Accepted, Decided, Executor, CONFLICT_RETRIES};
use crate::CommandError;

/// Why a provider command was not carried out.
pub type ProvidersError = CommandError<ProviderError>;

type Failure = ProvidersError;

/// The channel providers of every organization, with the master keys that seal their
/// credentials (`MAUNTIC_MASTER_KEY`, and `MAUNTIC_MASTER_KEY_PREVIOUS` during a rotation).
#[derive(Clone)]
pub struct Providers {
    pool: sqlx::PgPool,
    executor: Arc<Executor<ProviderConfig>>,
    keys: Arc<Keyring>,
}

impl Providers {
    pub fn new(
        pool: sqlx::PgPool,
        executor: Arc<Executor<ProviderConfig>>,
        keys: Arc<Keyring>,
    ) -> Self {
        Self {
            pool,
            executor,
            keys,
        }
    }

    /// The same providers sealing with `keys`.
    pub fn with_keys(mut self, keys: Arc<Keyring>) -> Self {
        self.keys = keys;
        self
    }

    /// The master keys credentials are sealed with.
    pub fn keys(&self) -> &Arc<Keyring> {
        &self.keys
    }

    /// Provider `id` as the log has it now.
    pub async fn get(&self, tenant: TenantId, id: ProviderId) -> Result<ProviderConfig, Failure> {
        self.executor.load(tenant.0, id.0).await
    }

    /// Configures a provider (the first of its channel, or one with `default`, becomes the
    /// channel's default).
    pub async fn create(
        &self,
        tenant: TenantId,
        new: NewProvider,
        meta: &EventMetadata,
    ) -> Result<Accepted, Failure> {
        run(
            self,
            tenant.0,
            ProviderId::generate().0,
            Op::Create(new),
            meta,
        )
        .await
    }

    /// Changes a provider's name or settings, or replaces its secrets (whole).
    pub async fn update(
        &self,
        tenant: TenantId,
        id: ProviderId,
        change: ProviderChange,
        meta: &EventMetadata,
    ) -> Result<Accepted, Failure> {
        run(self, tenant.0, id.0, Op::Change(change), meta).await
    }

    /// Makes a provider its channel's default (the previous default loses the mark).
    pub async fn make_default(
        &self,
        tenant: TenantId,
        id: ProviderId,
        meta: &EventMetadata,
    ) -> Result<Accepted, Failure> {
        run(self, tenant.0, id.0, Op::MakeDefault, meta).await
    }

    /// Removes a provider and its secrets (its history stays in the log).
    pub async fn remove(
        &self,
        tenant: TenantId,
        id: ProviderId,
        meta: &EventMetadata,
    ) -> Result<Accepted, Failure> {
        run(self, tenant.0, id.0, Op::Remove, meta).await
    }
}

/// What to do to provider `id`.
#[derive(Debug, Clone)]
enum Op {
    Create(NewProvider),
    Change(ProviderChange),
    MakeDefault,
    Remove,
}

enum Attempt {
    Done(Accepted),
    Conflict,
}

fn technical(e: impl Into<crate::error::Technical>) -> Failure {
    CommandError::Technical(e.into())
}

/// Runs `op` on provider `id` of `tenant`.
#[tracing::instrument(skip_all, fields(%tenant, %id), err(level = "debug"))]
async fn run(
    s: &Providers,
    tenant: Uuid,
    id: Uuid,
    op: Op,
    meta: &EventMetadata,
) -> Result<Accepted, Failure> {
    for attempt in 1..=CONFLICT_RETRIES {
        match once(s, tenant, id, &op, meta).await? {
            Attempt::Done(a) => {
                s.executor.poke();
                return Ok(a);
            }
            Attempt::Conflict => tokio::time::sleep(backoff(attempt)).await,
        }
    }
    Err(CommandError::Conflict)
}

/// The default provider of `channel` in `tenant`, if any (write-side state).
async fn default_of(
    conn: &mut PgConnection,
    tenant: Uuid,
    channel: Channel,
) -> Result<Option<Uuid>, Failure> {
    sqlx::query_scalar(
        "SELECT id FROM provider_configs WHERE tenant_id = $1 AND channel = $2 AND is_default",
    )
    .bind(tenant)
    .bind(channel.as_str())
    .fetch_optional(conn)
    .await
    .map_err(technical)
}

async fn once(
    s: &Providers,
    tenant: Uuid,
    id: Uuid,
    op: &Op,
    meta: &EventMetadata,
) -> Result<Attempt, Failure> {
    let mut tx = s.pool.begin().await.map_err(technical)?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("{}:{tenant}", ProviderConfig::TYPE))
        .execute(&mut *tx)
        .await
        .map_err(technical)?;
    let (provider, version) = s.executor.load_versioned(tenant, id).await?;
    let (command, secrets) = match op {
        Op::Create(p) => {
            let current = default_of(&mut tx, tenant, p.channel).await?;
            let make_default = p.default || current.is_none();
            let command = ProviderCommand::Configure {
                name: p.name.clone(),
                channel: p.channel,
                kind: p.kind.clone(),
                settings: p.settings.clone(),
                secret_fields: p.secrets.keys().cloned().collect(),
                make_default,
                previous_default: current.filter(|_| make_default),
            };
            (command, Some(&p.secrets))
        }
        Op::Change(c) => {
            let command = ProviderCommand::Change {
                name: c.name.clone(),
                settings: c.settings.clone(),
                secret_fields: c.secrets.as_ref().map(|m| m.keys().cloned().collect()),
            };
            (command, c.secrets.as_ref())
        }
        Op::MakeDefault => {
            let previous = if provider.live() {
                default_of(&mut tx, tenant, provider.channel)
                    .await?
                    .filter(|p| *p != id)
            } else {
                None
            };
            (ProviderCommand::MakeDefault { previous }, None)
        }
        Op::Remove => (ProviderCommand::Remove, None),
    };
    let events = provider.decide(command).map_err(CommandError::Rejected)?;
    let mut decided: Vec<Decided<ProviderEvent>> = Vec::new();
    let mut after = provider.clone();
    let mut config_version = None;
    let mut previous_default = None;
    for (i, event) in events.into_iter().enumerate() {
        match &event {
            ProviderEvent::ProviderConfigured { .. }
            | ProviderEvent::ProviderSettingsChanged { .. }
            | ProviderEvent::ProviderSecretsReplaced { .. } => {
                config_version = Some((version + i + 1) as i64)
            }
            ProviderEvent::ProviderMadeDefault { previous, .. } => previous_default = *previous,
            _ => {}
        }
        after.apply(event.clone());
        decided.push(Decided {
            id,
            version: version + i,
            event,
        });
    }
    if decided.is_empty() {
        // Nothing changes: answer the stream's cursor.
        let stream = event_store::recorded::stream_id(tenant, id);
        let cursor = reader::stream_cursor(&s.pool, ProviderConfig::TYPE, &stream)
            .await
            .map_err(technical)?
            .unwrap_or(Cursor::ZERO);
        return Ok(Attempt::Done(Accepted { id, cursor }));
    }
    if let Some(previous) = previous_default {
        let (old, old_version) = s.executor.load_versioned(tenant, previous).await?;
        for (i, event) in old
            .decide(ProviderCommand::RemoveDefault { replaced_by: id })
            .map_err(CommandError::Rejected)?
            .into_iter()
            .enumerate()
        {
            decided.push(Decided {
                id: previous,
                version: old_version + i,
                event,
            });
        }
        sqlx::query(
            "UPDATE provider_configs SET is_default = false WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(previous)
        .execute(&mut *tx)
        .await
        .map_err(technical)?;
    }
    write_state(&mut tx, tenant, id, &after, config_version).await?;
    if let (Some(secrets), true) = (secrets, after.live()) {
        secrets::store(&mut tx, &s.keys, tenant, id, after.secrets_version, secrets)
            .await
            .map_err(technical)?;
    }
    let cursor = match s
        .executor
        .append_decided(&mut tx, tenant, &decided, meta)
        .await
    {
        Ok(Some(c)) => c,
        Ok(None) => return Err(technical("no events appended")),
        Err(AppendError::Conflict) => return Ok(Attempt::Conflict),
        Err(AppendError::Store(e)) => return Err(technical(e)),
    };
    match tx.commit().await {
        Ok(()) => Ok(Attempt::Done(Accepted { id, cursor })),
        Err(e) if is_unique_violation(&e) => Ok(Attempt::Conflict),
        Err(e) => Err(technical(e)),
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

/// The provider's write-side row as `after` says (gone once removed, with its secrets).
async fn write_state(
    conn: &mut PgConnection,
    tenant: Uuid,
    id: Uuid,
    after: &ProviderConfig,
    config_version: Option<i64>,
) -> Result<(), Failure> {
    if after.removed {
        for table in [
            "provider_secrets WHERE tenant_id = $1 AND provider_id = $2",
            "provider_configs WHERE tenant_id = $1 AND id = $2",
        ] {
            sqlx::query(&format!("DELETE FROM {table}"))
                .bind(tenant)
                .bind(id)
                .execute(&mut *conn)
                .await
                .map_err(technical)?;
        }
        return Ok(());
    }
    let result = sqlx::query(
        "INSERT INTO provider_configs (tenant_id, id, channel, kind, name, settings, is_default, config_version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, COALESCE($8, 0)) \
         ON CONFLICT (tenant_id, id) DO UPDATE SET name = EXCLUDED.name, settings = EXCLUDED.settings, \
           is_default = EXCLUDED.is_default, \
           config_version = COALESCE($8, provider_configs.config_version)",
    )
    .bind(tenant)
    .bind(id)
    .bind(after.channel.as_str())
    .bind(&after.kind)
    .bind(&after.name)
    .bind(Value::Object(after.settings.clone()))
    .bind(after.is_default)
    .bind(config_version)
    .execute(&mut *conn)
    .await;
    match result {
        Ok(_) => Ok(()),
        // Another default appeared meanwhile (the lock makes this a backstop only).
        Err(e) if is_unique_violation(&e) => Err(CommandError::Conflict),
        Err(e) => Err(technical(e)),
    }
}
