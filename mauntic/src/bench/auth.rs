//! `bench auth`: what authentication adds to a request, and what a login costs.
//!
//! - *Overhead*: the same `GET /api/v1/contacts/{id}` served by two routers built alike,
//!   one behind the production `authenticate` middleware (API key, then a session cookie),
//!   one with the caller fixed in advance; sequential requests, interleaved in rounds so
//!   both see the same machine. Prints each p50/p99 and the difference at p50.
//! - *Login*: a closed loop of `--clients` password logins (argon2id at the configured cost;
//!   each login also creates a session). Each request names its
//!   own client address in `X-Forwarded-For` so the per-address limit does not throttle
//!   the bench; the per-account limit resets on each success.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::Request;
use axum::middleware::{self, Next};
use domain::identity::Role;
use http_kit::{Actor, Caller};
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use uuid::Uuid;

use super::common::{figure, figure_f, fresh_database, header, per_second, Latencies, RunningApp};
use super::BenchArgs;
use crate::Settings;

const DATABASE: &str = "mauntic_bench_auth";
const PASSWORD: &str = "quartz-Lantern-92-vivid";

pub async fn run(settings: &Settings, args: &BenchArgs) -> anyhow::Result<()> {
    let mut s = fresh_database(settings, DATABASE).await?;
    s.nats = None;
    s.trust_proxy = true;
    let app = RunningApp::start(s).await?;
    let outcome = measure(&app, args).await;
    let stopped = app.stop().await;
    outcome?;
    stopped
}

async fn measure(app: &RunningApp, args: &BenchArgs) -> anyhow::Result<()> {
    let tenant = app.tenant().await?;
    let admin = crate::http::command_state(&app.settings, app.pool.clone())?;
    let client = reqwest::Client::builder().tcp_nodelay(true).build()?;

    // A contact to read, and a signed-in member of the tenant for the cookie path.
    let res = client
        .post(format!("{}/api/v1/contacts", app.base_url))
        .bearer_auth(&tenant.api_key)
        .json(&serde_json::json!({"email": "read-me@bench.example.org"}))
        .send()
        .await?;
    let created: serde_json::Value = res.json().await?;
    let contact = created["id"].as_str().context("contact id")?.to_owned();
    let cursor = created["cursor"].as_str().context("cursor")?.to_owned();
    let url = format!(
        "{}/api/v1/contacts/{contact}?consistent_after={cursor}",
        app.base_url
    );
    anyhow::ensure!(
        client
            .get(&url)
            .bearer_auth(&tenant.api_key)
            .send()
            .await?
            .status()
            == 200
    );
    let user = commands::identity::admin::create_user(
        &admin,
        "member@bench.example.org",
        Some(PASSWORD.into()),
        None,
    )
    .await?;
    let email = domain::EmailAddress::parse("member@bench.example.org")?;
    let meta = event_store::EventMetadata {
        tenant_id: Some(tenant.tenant_id),
        ..Default::default()
    };
    admin
        .identity
        .organizations
        .executor()
        .execute(
            tenant.tenant_id,
            tenant.tenant_id,
            domain::identity::organization::OrganizationCommand::AddMember {
                user_id: user,
                email,
                role: Role::Member,
            },
            &meta,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let browser = reqwest::Client::builder()
        .tcp_nodelay(true)
        .cookie_store(true)
        .build()?;
    let login = browser
        .post(format!("{}/api/v1/auth/login", app.base_url))
        .json(&serde_json::json!({"email": "member@bench.example.org", "password": PASSWORD}))
        .send()
        .await?;
    anyhow::ensure!(login.status() == 200, "login: {}", login.status());
    let switched = browser
        .post(format!("{}/api/v1/me/organization", app.base_url))
        .header(
            "x-csrf-token",
            login.json::<serde_json::Value>().await?["csrf_token"]
                .as_str()
                .unwrap_or(""),
        )
        .json(&serde_json::json!({"organization_id": tenant.tenant_id}))
        .send()
        .await?;
    anyhow::ensure!(
        switched.status() == 204,
        "switching organization: {}",
        switched.status()
    );

    // The same route without authentication: the caller is fixed in advance.
    let fixed = Caller {
        tenant_id: tenant.tenant_id,
        actor: Actor::ApiKey(Uuid::nil()),
        role: Role::Admin,
    };
    let open = read_api::router(read_api::QueryState {
        pool: app.pool.clone(),
        consistency_timeout: app.settings.consistency_timeout,
        clock: app.settings.clock.clone(),
    })
    .layer(middleware::from_fn(
        move |mut req: Request, next: Next| async move {
            req.extensions_mut().insert(fixed);
            next.run(req).await
        },
    ))
    // The same outer layers as the served router, so only authentication differs.
    .layer(axum::extract::DefaultBodyLimit::max(
        app.settings.max_body_bytes,
    ))
    .layer(tower_http::trace::TraceLayer::new_for_http())
    .layer(tower_http::request_id::PropagateRequestIdLayer::new(
        axum::http::HeaderName::from_static("x-request-id"),
    ))
    .layer(tower_http::request_id::SetRequestIdLayer::new(
        axum::http::HeaderName::from_static("x-request-id"),
        tower_http::request_id::MakeRequestUuid,
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let open_addr: SocketAddr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, open).await });
    let open_url = format!("http://{open_addr}/api/v1/contacts/{contact}");
    let keyed_url = format!("{}/api/v1/contacts/{contact}", app.base_url);

    header("auth (request overhead: GET /api/v1/contacts/{id}, sequential)");
    let (mut none, mut key, mut cookie) = (Latencies::new()?, Latencies::new()?, Latencies::new()?);
    let deadline = Instant::now() + Duration::from_secs(args.warmup + args.seconds);
    let measure_from = Instant::now() + Duration::from_secs(args.warmup);
    while Instant::now() < deadline {
        let counting = Instant::now() >= measure_from;
        for _ in 0..50 {
            let t = Instant::now();
            anyhow::ensure!(client.get(&open_url).send().await?.status() == 200);
            if counting {
                none.record(t.elapsed());
            }
            let t = Instant::now();
            anyhow::ensure!(
                client
                    .get(&keyed_url)
                    .bearer_auth(&tenant.api_key)
                    .send()
                    .await?
                    .status()
                    == 200
            );
            if counting {
                key.record(t.elapsed());
            }
            let t = Instant::now();
            anyhow::ensure!(browser.get(&keyed_url).send().await?.status() == 200);
            if counting {
                cookie.record(t.elapsed());
            }
        }
    }
    server.abort();
    figure("requests_each", none.len(), "count");
    none.print("no_auth", &[50, 99]);
    key.print("api_key", &[50, 99]);
    cookie.print("session_cookie", &[50, 99]);
    figure(
        "api_key_added_p50",
        format!(
            "{:.3}",
            (key.quantile_ms(0.5) - none.quantile_ms(0.5)).max(0.0)
        ),
        "ms",
    );
    figure(
        "session_cookie_added_p50",
        format!(
            "{:.3}",
            (cookie.quantile_ms(0.5) - none.quantile_ms(0.5)).max(0.0)
        ),
        "ms",
    );

    logins(app, args).await
}

async fn logins(app: &RunningApp, args: &BenchArgs) -> anyhow::Result<()> {
    let admin = crate::http::command_state(&app.settings, app.pool.clone())?;
    let cost = app.settings.identity.password_cost;
    let mut emails = Vec::new();
    for i in 0..args.clients {
        let email = format!("login{i}@bench.example.org");
        commands::identity::admin::create_user(&admin, &email, Some(PASSWORD.into()), None).await?;
        emails.push(email);
    }
    header(&format!(
        "auth (login: argon2id m={} KiB t={} p={}, {} clients, closed loop)",
        cost.memory_kib, cost.iterations, cost.lanes, args.clients
    ));
    let all = Arc::new(Mutex::new(Latencies::new()?));
    let start = Instant::now() + Duration::from_secs(args.warmup);
    let end = start + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    for (i, email) in emails.into_iter().enumerate() {
        let (all, base) = (all.clone(), app.base_url.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder().tcp_nodelay(true).build()?;
            let mut mine = Latencies::new()?;
            let mut n = 0u32;
            while Instant::now() < end {
                n += 1;
                let t = Instant::now();
                let res = client
                    .post(format!("{base}/api/v1/auth/login"))
                    .header(
                        "x-forwarded-for",
                        format!("10.{}.{}.{}", i % 250, (n >> 8) % 250, n % 250),
                    )
                    .json(&serde_json::json!({"email": email, "password": PASSWORD}))
                    .send()
                    .await?;
                anyhow::ensure!(res.status() == 200, "login answered {}", res.status());
                if Instant::now() >= start && Instant::now() < end {
                    mine.record(t.elapsed());
                }
            }
            all.lock().await.add(&mine)
        }));
    }
    for t in tasks {
        t.await.context("a login client panicked")??;
    }
    let all = all.lock().await;
    figure("logins", all.len(), "count");
    figure_f(
        "logins_per_second",
        per_second(all.len(), Duration::from_secs(args.seconds)),
        "logins/s",
    );
    all.print("login", &[50, 99]);
    Ok(())
}
