//! Guards of the hot paths: the SQL statements a contact create, a contact update, a message
//! request and a journey's email step send, counted on the wire (`CountingProxy`) and pinned.
//! A change that adds a round trip to one of them fails here and says which statements ran;
//! if the new count is right, change the pin and say why in the commit.
//!
//! The commands run through the real HTTP router (authentication included) on a pool that
//! connects through the proxy and that nothing else uses; the journey step through a runner
//! on that pool. Each path runs once unmeasured first (prepared statements, caches, the API
//! key's first use), then once measured.

use std::net::SocketAddr;

use mauntic::settings::Role;
use mauntic_tests::pg_count::CountingProxy;
use mauntic_tests::{spawn_with, Options, TestApp};
use serde_json::{json, Value};

use super::journeys::{enter, published};

/// The pinned counts, and what the statements are.
/// The API key's organization (authentication), the field schema, and one append that
/// writes the events, the contact's new key and the email's claim.
const CONTACT_CREATE: usize = 3;
/// Authentication, the field schema, the contact's stream with its key, the append.
const CONTACT_UPDATE: usize = 4;
/// Authentication, the template, then a transaction: the jobs requested already (a retried
/// request), the job's events, its queue row.
const MESSAGE_REQUEST: usize = 7;
/// One batch of one execution, in one transaction: the claim of due runs, their inbox, the
/// contacts, the organization's zone, the template's published version, the execution's
/// events, the jobs requested already, the job's events, its queue row, the finished run
/// deleted, the journey's active entries.
const JOURNEY_EMAIL_STEP: usize = 13;

/// The application without workers (nothing acts on what a counted path requests, and the
/// only journey runner is the counted one), and a published email template.
async fn without_workers() -> (TestApp, uuid::Uuid) {
    let app = spawn_with(Options {
        roles: [Role::Commands, Role::Queries, Role::Projector].into(),
        ..Options::default()
    })
    .await;
    let template = app
        .published_template("email", json!({"subject": "Hi", "html": "<p>Hello</p>"}))
        .await;
    (app, template)
}

/// The API on a pool through the proxy; its base URL.
async fn counted_api(app: &TestApp, proxy: &CountingProxy) -> (String, sqlx::PgPool) {
    let pool = event_store::store::connect(&proxy.url(&app.settings.database_url), 4)
        .await
        .unwrap();
    let router = mauntic::http::router(&app.settings, pool.clone(), None, None)
        .unwrap()
        .into_make_service_with_connect_info::<SocketAddr>();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (base, pool)
}

/// Sends `body` to `path` on the counted API; the answer's JSON.
async fn call(app: &TestApp, base: &str, method: &str, path: &str, body: Value) -> Value {
    let url = format!("{base}{path}");
    let rb = match method {
        "POST" => app.http.post(url),
        "PATCH" => app.http.patch(url),
        _ => unreachable!(),
    };
    let res = rb
        .bearer_auth(&app.api_key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let v: Value = res.json().await.unwrap();
    assert!(status.is_success(), "{method} {path}: {status} {v}");
    v
}

/// Runs `f` and returns the statements it sent through the proxy, leaving out `NOTIFY`:
/// the notifier sends one for all the appends of a few milliseconds, on its own schedule, so
/// it is not any one command's.
async fn counting<F: std::future::Future<Output = T>, T>(
    proxy: &CountingProxy,
    f: F,
) -> (T, Vec<String>) {
    proxy.reset();
    let out = f.await;
    let statements = proxy
        .statements()
        .into_iter()
        .filter(|s| !s.contains("pg_notify"))
        .collect();
    (out, statements)
}

fn pinned(what: &str, statements: &[String], expected: usize) {
    eprintln!("{what}: {} statements", statements.len());
    assert_eq!(
        statements.len(),
        expected,
        "{what} sent {} statements, pinned at {expected}:\n{}",
        statements.len(),
        statements
            .iter()
            .enumerate()
            .map(|(i, s)| format!(
                "{:>3}. {}",
                i + 1,
                s.split_whitespace().collect::<Vec<_>>().join(" ")
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[tokio::test]
async fn contact_commands_and_message_requests_send_a_pinned_number_of_statements() {
    let (app, template) = without_workers().await;
    let proxy = CountingProxy::start().await;
    let (base, _pool) = counted_api(&app, &proxy).await;

    // Warm: the key's first use, prepared statements, the caches.
    let warm = call(
        &app,
        &base,
        "POST",
        "/api/v1/contacts",
        json!({"email": "warm@example.org"}),
    )
    .await;
    let warm_id = warm["id"].as_str().unwrap().to_owned();
    call(
        &app,
        &base,
        "PATCH",
        &format!("/api/v1/contacts/{warm_id}"),
        json!({"first_name": "W"}),
    )
    .await;
    call(
        &app,
        &base,
        "POST",
        "/api/v1/messages",
        json!({"template_id": template, "to": "warm@example.org"}),
    )
    .await;

    let create =
        json!({"email": "ada@example.org", "first_name": "Ada", "fields": {}, "tags": ["vip"]});
    let (created, statements) = counting(
        &proxy,
        call(&app, &base, "POST", "/api/v1/contacts", create),
    )
    .await;
    pinned("a contact create", &statements, CONTACT_CREATE);

    let id = created["id"].as_str().unwrap().to_owned();
    let (_, statements) = counting(
        &proxy,
        call(
            &app,
            &base,
            "PATCH",
            &format!("/api/v1/contacts/{id}"),
            json!({"last_name": "Lovelace"}),
        ),
    )
    .await;
    pinned("a contact update", &statements, CONTACT_UPDATE);

    let (_, statements) = counting(
        &proxy,
        call(
            &app,
            &base,
            "POST",
            "/api/v1/messages",
            json!({"template_id": template, "to": "ada@example.org"}),
        ),
    )
    .await;
    pinned("a message request", &statements, MESSAGE_REQUEST);
    app.stop().await;
}

#[tokio::test]
async fn a_journey_email_step_sends_a_pinned_number_of_statements() {
    let (app, template) = without_workers().await;
    let mut people = Vec::new();
    for who in ["warm", "counted"] {
        people.push(
            app.create_contact(json!({"email": format!("{who}@example.org")}))
                .await,
        );
    }
    for (id, cursor) in &people {
        app.contact(*id, *cursor).await;
    }
    let journey = published(
        &app,
        "Welcome",
        json!({
            "triggers": [{"id": "api", "type": "api", "entry": "welcome"}],
            "steps": [{"id": "welcome", "type": "action_email", "config": {"template_id": template}}]
        }),
    )
    .await;
    app.caught_up("contacts").await;

    let proxy = CountingProxy::start().await;
    let pool = event_store::store::connect(&proxy.url(&app.settings.database_url), 4)
        .await
        .unwrap();
    let state = mauntic::http::command_state(&app.settings, pool).unwrap();
    let runner = workers::journeys::JourneyRunner::new(
        state,
        app.settings.clock.clone(),
        app.settings.journeys.clone(),
    );
    for (i, (contact, _)) in people.iter().enumerate() {
        enter(&app, journey, &[*contact]).await;
        // The entry is due now: the runner's first look finds it.
        let (ran, statements) = counting(&proxy, async { runner.step().await.unwrap() }).await;
        assert_eq!(ran.executions, 1, "the entry ran");
        if i == 1 {
            pinned("a journey's email step", &statements, JOURNEY_EMAIL_STEP);
        }
    }
    let jobs: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_type = 'delivery_job' AND event_type = 'DeliveryRequested'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(jobs, 2, "each step requested its email");
    app.stop().await;
}
