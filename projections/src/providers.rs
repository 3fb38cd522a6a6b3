//! The `providers` read model: one row per channel provider (name, channel, kind,
//! settings, the names of its secret fields, whether it is the default). Secret values
//! never reach it: the events do not carry them.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::delivery::provider_config::{ProviderConfig, ProviderEvent as E};
use domain::delivery::Channel;
use event_store::RecordedEvent;
use serde::{Deserialize, Serialize};
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::{json_rows, Projection, ProjectionError, Target};

pub struct ProvidersProjection;

/// A provider as lists and detail views show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderRow {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub name: String,
    pub channel: Channel,
    pub kind: String,
    pub settings: serde_json::Value,
    pub secret_fields: Vec<String>,
    pub secrets_version: i32,
    pub is_default: bool,
    pub removed: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl ProviderRow {
    /// Folds one event into the row (`None` before the provider exists).
    pub fn apply(row: Option<Self>, e: &RecordedEvent, event: E, id: Uuid) -> Option<Self> {
        let mut r = match (row, event) {
            (Some(r), _) if e.sequence <= r.version => return Some(r),
            (
                None,
                E::ProviderConfigured {
                    name,
                    channel,
                    kind,
                    settings,
                    secret_fields,
                    secrets_version,
                },
            ) => Self {
                tenant_id: e.tenant_id,
                id,
                name,
                channel,
                kind,
                settings,
                secret_fields,
                secrets_version: i32::try_from(secrets_version).unwrap_or(i32::MAX),
                is_default: false,
                removed: false,
                created_at: e.recorded_at,
                updated_at: e.recorded_at,
                version: e.sequence,
            },
            (None, _) => return None,
            (Some(r), E::ProviderConfigured { .. }) => r,
            (Some(mut r), E::ProviderSettingsChanged { name, settings }) => {
                r.name = name;
                r.settings = settings;
                r
            }
            (
                Some(mut r),
                E::ProviderSecretsReplaced {
                    secret_fields,
                    secrets_version,
                },
            ) => {
                r.secret_fields = secret_fields;
                r.secrets_version = i32::try_from(secrets_version).unwrap_or(i32::MAX);
                r
            }
            (Some(mut r), E::ProviderMadeDefault { .. }) => {
                r.is_default = true;
                r
            }
            (Some(mut r), E::ProviderDefaultRemoved { .. }) => {
                r.is_default = false;
                r
            }
            (Some(mut r), E::ProviderRemoved { .. }) => {
                r.removed = true;
                r.is_default = false;
                r
            }
        };
        r.updated_at = e.recorded_at;
        r.version = e.sequence;
        Some(r)
    }
}

const UPDATED: &[&str] = &[
    "name",
    "settings",
    "secret_fields",
    "secrets_version",
    "is_default",
    "removed",
    "updated_at",
    "version",
];

#[async_trait]
impl Projection for ProvidersProjection {
    fn name(&self) -> &'static str {
        "providers"
    }

    fn table(&self) -> &'static str {
        "providers"
    }

    /// Providers hold no personal data.
    fn needs_personal_data(&self) -> bool {
        false
    }

    fn concerns(&self, e: &RecordedEvent) -> bool {
        e.aggregate_type == ProviderConfig::TYPE
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&[ProviderConfig::TYPE])
    }

    async fn apply(
        &self,
        conn: &mut sqlx::PgConnection,
        target: &Target,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        json_rows::fold_rows::<ProviderRow, E>(
            conn,
            target,
            events,
            ProviderConfig::TYPE,
            ProviderRow::apply,
            UPDATED,
        )
        .await
    }
}

fn decode(v: serde_json::Value) -> Result<ProviderRow, sqlx::Error> {
    serde_json::from_value(v).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// Provider `id` of `tenant` (not removed).
pub async fn get<'e>(
    db: impl PgExecutor<'e>,
    tenant: Uuid,
    id: Uuid,
) -> Result<Option<ProviderRow>, sqlx::Error> {
    let row: Option<(serde_json::Value,)> = sqlx::query_as(
        "SELECT to_jsonb(p) FROM providers p WHERE tenant_id = $1 AND id = $2 AND NOT removed",
    )
    .bind(tenant)
    .bind(id)
    .persistent(false)
    .fetch_optional(db)
    .await?;
    row.map(|(v,)| decode(v)).transpose()
}

/// `tenant`'s providers (not removed), of `channel` when given, by channel and name; at
/// most `limit` (an organization has a handful per channel).
pub async fn list<'e>(
    db: impl PgExecutor<'e>,
    tenant: Uuid,
    channel: Option<Channel>,
    limit: i64,
) -> Result<Vec<ProviderRow>, sqlx::Error> {
    let rows: Vec<(serde_json::Value,)> = sqlx::query_as(
        "SELECT to_jsonb(p) FROM providers p \
         WHERE tenant_id = $1 AND NOT removed AND ($2::text IS NULL OR channel = $2) \
         ORDER BY channel, lower(name), id LIMIT $3",
    )
    .bind(tenant)
    .bind(channel.map(Channel::as_str))
    .bind(limit)
    .persistent(false)
    .fetch_all(db)
    .await?;
    rows.into_iter().map(|(v,)| decode(v)).collect()
}
