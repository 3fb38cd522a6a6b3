//! Provider queries: the list (per channel) and one provider. Settings are shown; secret
//! values never are (the read model has only their names).

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use domain::delivery::Channel;
use domain::ProviderId;
use http_kit::ApiQuery;
use http_kit::PathIds;
use http_kit::{Authenticated, Problem};
use projections::providers::{self, ProviderRow};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::consistency::ConsistentAfter;
use crate::QueryState;

/// Most providers one list answers (an organization has a handful per channel).
const MAX_LIST: i64 = 500;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProviderListParams {
    /// Only providers of this channel: `email`, `sms`, `push` or `webhook`.
    pub channel: Option<String>,
    /// Wait until the read model has passed this cursor (from a command's answer).
    pub consistent_after: Option<String>,
}

/// A provider: its settings and the names of its secret fields, never their values.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProviderView {
    pub id: Uuid,
    pub name: String,
    /// `email`, `sms`, `push` or `webhook`.
    #[schema(value_type = String)]
    pub channel: Channel,
    pub kind: String,
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    /// The names of the secret fields stored (encrypted) for it.
    pub secret_fields: Vec<String>,
    /// Whether secrets are stored.
    pub secrets_set: bool,
    /// Whether it is its channel's default.
    pub is_default: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The providers of the organization.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProviderList {
    pub items: Vec<ProviderView>,
}

fn view(r: ProviderRow) -> ProviderView {
    ProviderView {
        id: r.id,
        name: r.name,
        channel: r.channel,
        kind: r.kind,
        settings: r.settings,
        secrets_set: !r.secret_fields.is_empty(),
        secret_fields: r.secret_fields,
        is_default: r.is_default,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

/// List the organization's providers by channel and name.
#[utoipa::path(get, path = "/api/v1/providers", tag = "providers", params(ProviderListParams),
    responses(
        (status = 200, description = "The providers", body = ProviderList),
        (status = 400, description = "Bad parameters", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn list(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    ApiQuery(p): ApiQuery<ProviderListParams>,
) -> Result<Json<ProviderList>, Problem> {
    let channel = p
        .channel
        .map(|c| {
            serde_json::from_value::<Channel>(serde_json::Value::String(c))
                .map_err(|_| Problem::bad_request("channel: one of email, sms, push, webhook"))
        })
        .transpose()?;
    consistency.wait(&s, "providers").await?;
    let rows = providers::list(&s.pool, caller.tenant_id, channel, MAX_LIST)
        .await
        .map_err(|e| Problem::from_internal(&e))?;
    Ok(Json(ProviderList {
        items: rows.into_iter().map(view).collect(),
    }))
}

/// One provider.
#[utoipa::path(get, path = "/api/v1/providers/{id}", tag = "providers",
    params(("id" = Uuid, Path, description = "Provider id"),
           ("consistent_after" = Option<String>, Query, description = "Wait until the read model has passed this cursor")),
    responses(
        (status = 200, description = "The provider", body = ProviderView),
        (status = 404, description = "No such provider", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn get(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    PathIds(id): PathIds<ProviderId>,
) -> Result<Json<ProviderView>, Problem> {
    let id = id.0;
    consistency.wait(&s, "providers").await?;
    providers::get(&s.pool, caller.tenant_id, id)
        .await
        .map_err(|e| Problem::from_internal(&e))?
        .map(|r| Json(view(r)))
        .ok_or_else(|| Problem::not_found("provider"))
}
