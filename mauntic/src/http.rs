//! The HTTP surface of `mauntic serve`: both APIs behind API-key auth, health, OpenAPI.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{middleware, Json, Router};
use event_store::nats::Bus;
use http_kit::Problem;
use sqlx::PgPool;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;

use crate::settings::{Role, Settings};

#[derive(Clone)]
struct Health {
    pool: PgPool,
    bus: Option<Bus>,
}

/// What authentication needs, from settings.
pub fn auth_state(settings: &Settings, pool: PgPool) -> http_kit::AuthState {
    http_kit::AuthState::new(
        pool,
        settings.sessions.clone(),
        settings.clock.clone(),
        settings.trust_proxy,
    )
}

/// The command side's state, from settings (also used by the admin subcommands).
pub fn command_state(settings: &Settings, pool: PgPool) -> anyhow::Result<commands::CommandState> {
    Ok(commands::CommandState::new(
        pool.clone(),
        auth_state(settings, pool),
        settings.identity.clone(),
    )?
    .with_imports(settings.imports.clone())
    .with_provider_keys(settings.provider_keys())
    .with_clock(settings.clock.clone()))
}

/// The router for the roles in `settings`; `commands`, the process's command side, is
/// needed with the commands role (built here when not given).
pub fn router(
    settings: &Settings,
    pool: PgPool,
    bus: Option<Bus>,
    commands: Option<&commands::CommandState>,
) -> anyhow::Result<Router> {
    let needs_commands =
        settings.roles.contains(&Role::Commands) || settings.roles.contains(&Role::Web);
    let commands = match (needs_commands, commands) {
        (false, _) => None,
        (true, Some(c)) => Some(c.clone()),
        (true, None) => Some(command_state(settings, pool.clone())?),
    };
    // The console: its own sessions check, CSRF and security headers (web::router).
    let console = match (&commands, settings.roles.contains(&Role::Web)) {
        (Some(commands), true) => web::router(web::WebState {
            commands: commands.clone(),
            pool: pool.clone(),
            consistency_timeout: settings.consistency_timeout,
        }),
        _ => Router::new(),
    };
    let commands = commands.filter(|_| settings.roles.contains(&Role::Commands));
    let mut api = Router::new();
    if let Some(commands) = &commands {
        api = api.merge(commands::router(commands.clone()));
    }
    if settings.roles.contains(&Role::Queries) {
        api = api.merge(read_api::router(read_api::QueryState {
            pool: pool.clone(),
            consistency_timeout: settings.consistency_timeout,
            clock: settings.clock.clone(),
        }));
        api = api.merge(workers::delivery::http::dev_mailbox_routes(pool.clone()));
    }
    // Open pixels, click redirects and unsubscribe links: public, the signed token is the
    // credential; they record on delivery jobs and contacts, so they go with the commands.
    let mut public = Router::new();
    if let Some(commands) = commands {
        public = public.merge(workers::delivery::http::tracking_routes(
            workers::delivery::http::TrackingState {
                jobs: commands.delivery.jobs.clone(),
                contacts: commands.contacts.executor().clone(),
                tracker: tracker(settings)?,
                clock: settings.clock.clone(),
            },
        ));
        public = public.merge(workers::delivery::reports::report_routes(
            workers::delivery::reports::ReportState {
                pool: pool.clone(),
                jobs: commands.delivery.jobs.clone(),
                notifier: commands.notifier.clone(),
                keys: std::sync::Arc::new(settings.provider_keys()),
                certs: std::sync::Arc::new(workers::delivery::webhooks::HttpsCertSource::new(
                    std::time::Duration::from_secs(10),
                )?),
                public_url: settings.identity.public_url.clone(),
            },
        ));
        // Bounces, complaints and mailto unsubscribes piped by the bounce domain's MTA;
        // only with a secret to authenticate it.
        if let Some(secret) = &settings.delivery.inbound_secret {
            public = public.merge(workers::delivery::inbound::http::inbound_routes(
                workers::delivery::inbound::http::InboundState {
                    pool: pool.clone(),
                    jobs: commands.delivery.jobs.clone(),
                    contacts: commands.contacts.executor().clone(),
                    notifier: commands.notifier.clone(),
                    tracker: tracker(settings)?,
                    clock: settings.clock.clone(),
                    secret: secret.0.as_str().into(),
                },
            ));
        }
    }
    // Every route's access rule is applied here (http_kit::auth::routes): keys, sessions,
    // CSRF, blocked organizations, the role × action table.
    let api = api
        .layer(middleware::from_fn_with_state(
            auth_state(settings, pool.clone()),
            http_kit::authenticate,
        ))
        .layer(DefaultBodyLimit::max(settings.max_body_bytes));
    let x_request_id = axum::http::HeaderName::from_static("x-request-id");
    Ok(Router::new()
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "alive"})) }),
        )
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(|| async { Json(openapi()) }))
        .with_state(Health { pool, bus })
        .merge(public)
        .merge(api)
        .merge(console)
        .fallback(|| async { Problem::not_found("route") })
        .method_not_allowed_fallback(|| async { Problem::method_not_allowed(&[]) })
        .layer(TraceLayer::new_for_http())
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid)))
}

/// The signer of tracking links, from settings.
pub fn tracker(settings: &Settings) -> anyhow::Result<workers::delivery::tracking::Tracker> {
    Ok(workers::delivery::tracking::Tracker::new(
        settings.delivery.tracking_keys.clone(),
        &settings.delivery.tracking_url,
    )?)
}

/// Ready when the database answers and, if configured, NATS does.
async fn readyz(State(h): State<Health>) -> Response {
    let db = sqlx::query("SELECT 1").execute(&h.pool).await.is_ok();
    let nats = match &h.bus {
        None => None,
        Some(bus) => Some(bus.ping().await),
    };
    let body = serde_json::json!({
        "database": if db { "ok" } else { "unreachable" },
        "nats": match nats { None => "not configured", Some(true) => "ok", Some(false) => "unreachable" },
    });
    if db && nats != Some(false) {
        Json(body).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

/// The API description, generated from the handlers' annotations.
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
    let mut doc = commands::ApiDoc::openapi();
    doc.merge(read_api::ApiDoc::openapi());
    doc.merge(workers::delivery::http::ApiDoc::openapi());
    doc.info.title = "Mauntic3 API".into();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "api_key",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    // Cookie sessions; writes also need the session's X-CSRF-Token header.
    components.add_security_scheme(
        "session",
        SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Cookie(
            utoipa::openapi::security::ApiKeyValue::new(http_kit::auth::session::COOKIE),
        )),
    );
    http_kit::openapi::declare_shared_errors(&mut doc);
    doc
}
