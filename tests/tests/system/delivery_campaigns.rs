//! The delivery side of campaigns: jobs requested in bulk each with its own due time, held
//! while their campaign is paused (never claimed) and sent once released, a message's own
//! provider (`provider_id`), and a campaign's message to a contact over its frequency cap
//! suppressed (a journey's waits: `delivery.rs`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use commands::delivery::jobs;
use domain::delivery::{Channel, Request, Source};
use mauntic_tests::fakes::mailgun::FakeMailgun;
use mauntic_tests::fakes::postmark::FakePostmark;
use mauntic_tests::{accepted, eventually, spawn_app, TestApp};
use serde_json::{json, Value};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(20);

async fn template(app: &TestApp) -> Uuid {
    app.published_template(
        "email",
        json!({"subject": "News", "html": "<p>Hi {{contact.email}}</p>"}),
    )
    .await
}

fn meta(app: &TestApp) -> event_store::EventMetadata {
    event_store::EventMetadata {
        tenant_id: Some(app.tenant_id),
        ..Default::default()
    }
}

/// An email of `template` to the bare address `to`, from `source`.
fn request(template: Uuid, to: &str, source: Source) -> Request {
    Request {
        channel: Channel::Email,
        contact_id: None,
        to: to.into(),
        template_id: template,
        template_version: 1,
        source,
        data: json!({}),
        from: None,
        reply_to: None,
        provider_id: None,
    }
}

fn campaign(id: Uuid) -> Source {
    Source::Campaign {
        campaign_id: id,
        variant: None,
    }
}

fn transactional() -> Source {
    Source::Transactional {
        idempotency_key: None,
    }
}

/// A job's queue row: `(campaign_id, held, due_at)`, `None` once the row is gone.
async fn queue_row(app: &TestApp, job: Uuid) -> Option<(Option<Uuid>, bool, DateTime<Utc>)> {
    sqlx::query_as(
        "SELECT campaign_id, held, due_at FROM delivery_queue WHERE tenant_id = $1 AND job_id = $2",
    )
    .bind(app.tenant_id)
    .bind(job)
    .fetch_optional(&app.pool)
    .await
    .unwrap()
}

async fn pending(app: &TestApp, campaign: Uuid) -> i64 {
    let mut conn = app.pool.acquire().await.unwrap();
    jobs::campaign_pending(&mut conn, app.tenant_id, campaign)
        .await
        .unwrap()
}

async fn status(app: &TestApp, job: Uuid) -> String {
    app.delivery_job(&job.to_string()).await["state"]["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_held_campaign_job_is_not_claimed_until_its_campaign_is_released() {
    let app = spawn_app().await;
    let t = template(&app).await;
    let blast = Uuid::now_v7();
    let now = Utc::now();

    // Requested held (the fan-out of a paused campaign), due at once; then an ordinary
    // message, due at once too. Every claim that takes the second would take the first
    // (it is older) if held rows were claimable.
    let held = Uuid::now_v7();
    let mut tx = app.pool.begin().await.unwrap();
    let done = jobs::request_each_in(
        &mut tx,
        app.tenant_id,
        &meta(&app),
        &[(held, request(t, "held@example.org", campaign(blast)), now)],
        true,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(done.created, vec![held]);
    let ordinary = app
        .send_message(json!({"template_id": t, "to": "ordinary@example.org"}))
        .await;
    app.wait_delivery_job(&ordinary, "sent").await;

    assert_eq!(status(&app, held).await, "requested");
    let (campaign_id, is_held, _) = queue_row(&app, held).await.unwrap();
    assert_eq!((campaign_id, is_held), (Some(blast), true));
    assert_eq!(pending(&app, blast).await, 1);
    assert_eq!(pending(&app, Uuid::now_v7()).await, 0, "another campaign");
    let mut conn = app.pool.acquire().await.unwrap();
    assert_eq!(
        jobs::hold_campaign(&mut conn, app.tenant_id, blast, true)
            .await
            .unwrap(),
        0,
        "held already: nothing changes"
    );

    // Resumed: the row is claimed like any other and the message goes out.
    assert_eq!(
        jobs::hold_campaign(&mut conn, app.tenant_id, blast, false)
            .await
            .unwrap(),
        1
    );
    drop(conn);
    app.admin.delivery.jobs.notifier().poke();
    app.wait_delivery_job(&held.to_string(), "sent").await;
    assert_eq!(pending(&app, blast).await, 0);
    assert!(queue_row(&app, held).await.is_none());
}

#[tokio::test]
async fn holding_a_campaign_stops_its_waiting_jobs_and_only_its_own() {
    let app = spawn_app().await;
    let t = template(&app).await;
    let (paused, running) = (Uuid::now_v7(), Uuid::now_v7());
    // Both campaigns' jobs wait an hour (a scheduled send); one campaign is paused.
    let later = Utc::now() + chrono::Duration::hours(1);
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    app.admin
        .delivery
        .jobs
        .request_each(
            app.tenant_id,
            &meta(&app),
            &[
                (a, request(t, "a@example.org", campaign(paused)), later),
                (b, request(t, "b@example.org", campaign(running)), later),
            ],
            false,
        )
        .await
        .unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    assert_eq!(
        jobs::hold_campaign(&mut conn, app.tenant_id, paused, true)
            .await
            .unwrap(),
        1
    );
    drop(conn);

    // The hour passes: the running campaign's job goes out, the paused one's stays.
    app.settings.clock.advance(chrono::Duration::hours(2));
    app.admin.delivery.jobs.notifier().poke();
    app.wait_delivery_job(&b.to_string(), "sent").await;
    assert_eq!(status(&app, a).await, "requested");
    assert_eq!(pending(&app, paused).await, 1);
    assert_eq!(pending(&app, running).await, 0);
}

#[tokio::test]
async fn each_job_of_a_batch_is_due_at_its_own_time() {
    let app = spawn_app().await;
    let t = template(&app).await;
    let blast = Uuid::now_v7();
    let now = Utc::now();
    // Microseconds: what Postgres keeps of a timestamp.
    let later =
        DateTime::from_timestamp_micros((now + chrono::Duration::hours(3)).timestamp_micros())
            .unwrap();
    let (soon, late, plain) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let batch = vec![
        (soon, request(t, "soon@example.org", campaign(blast)), now),
        (late, request(t, "late@example.org", campaign(blast)), later),
        (
            plain,
            request(t, "plain@example.org", transactional()),
            later,
        ),
    ];
    let done = app
        .admin
        .delivery
        .jobs
        .request_each(app.tenant_id, &meta(&app), &batch, false)
        .await
        .unwrap();
    assert_eq!(done.created, vec![soon, late, plain]);
    // Requested again (a fan-out batch retried): nothing new, the rows unchanged.
    let again = app
        .admin
        .delivery
        .jobs
        .request_each(app.tenant_id, &meta(&app), &batch, true)
        .await
        .unwrap();
    assert_eq!((again.created.len(), again.existing.len()), (0, 3));

    app.wait_delivery_job(&soon.to_string(), "sent").await;
    assert_eq!(status(&app, late).await, "requested");
    assert_eq!(
        queue_row(&app, late).await,
        Some((Some(blast), false, later)),
        "its own due time, its campaign"
    );
    assert_eq!(
        queue_row(&app, plain).await,
        Some((None, false, later)),
        "no campaign for a transactional message"
    );
    assert_eq!(pending(&app, blast).await, 1);

    // Its time comes (the worker's clock moves): it is sent.
    app.settings.clock.advance(chrono::Duration::hours(4));
    app.admin.delivery.jobs.notifier().poke();
    app.wait_delivery_job(&late.to_string(), "sent").await;
    app.wait_delivery_job(&plain.to_string(), "sent").await;
    assert_eq!(pending(&app, blast).await, 0);
}

/// Configures a provider (`POST /api/v1/providers`) of `kind` from a fake's `config`, its
/// credentials as secrets; its id.
async fn provider_from(app: &TestApp, name: &str, kind: &str, config: Value) -> Uuid {
    let mut settings = config.as_object().unwrap().clone();
    let mut secrets = serde_json::Map::new();
    for key in ["api_key", "server_token"] {
        if let Some(v) = settings.remove(key) {
            secrets.insert(key.into(), v);
        }
    }
    provider(
        app,
        json!({"name": name, "channel": "email", "kind": kind, "settings": settings,
               "secrets": secrets}),
    )
    .await
}

async fn provider(app: &TestApp, body: Value) -> Uuid {
    let res = app.post("/api/v1/providers", &body).send().await.unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    accepted(res).await.0
}

#[tokio::test]
async fn a_message_names_the_provider_that_sends_it() {
    let (postmark, mailgun) = (FakePostmark::start().await, FakeMailgun::start().await);
    let app = spawn_app().await;
    let default = provider_from(&app, "Postmark", "postmark", postmark.config()).await;
    let chosen = provider_from(&app, "Mailgun", "mailgun", mailgun.config()).await;
    let t = template(&app).await;

    let named = app
        .send_message(json!({"template_id": t, "to": "named@example.org", "provider_id": chosen}))
        .await;
    let unnamed = app
        .send_message(json!({"template_id": t, "to": "unnamed@example.org"}))
        .await;
    let j = app.wait_delivery_job(&named, "sent").await;
    assert_eq!(j["state"]["provider"], format!("mailgun:{chosen}"));
    assert_eq!(
        j["events"][0]["payload"]["DeliveryRequested"]["provider_id"],
        chosen.to_string()
    );
    let j = app.wait_delivery_job(&unnamed, "sent").await;
    assert_eq!(j["state"]["provider"], format!("postmark:{default}"));
    let to_mailgun: Vec<String> = mailgun
        .received()
        .iter()
        .filter_map(|r| r.field("to").map(str::to_owned))
        .collect();
    assert_eq!(to_mailgun, ["named@example.org"]);
    let to_postmark: Vec<Value> = postmark
        .received()
        .iter()
        .map(|r| r.json()["To"].clone())
        .collect();
    assert_eq!(to_postmark, [json!("unnamed@example.org")]);

    // No such provider, or one of another channel: refused, nothing requested.
    let hook = provider(
        &app,
        json!({"name": "Hook", "channel": "webhook", "kind": "webhook", "settings": {}}),
    )
    .await;
    let before = app.event_count().await;
    for id in [Uuid::now_v7(), hook] {
        let res = app
            .post(
                "/api/v1/messages",
                &json!({"template_id": t, "to": "x@example.org", "provider_id": id}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422);
        let problem: Value = res.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], "provider_id", "{problem}");
    }
    assert_eq!(app.event_count().await, before);
}

#[tokio::test]
async fn a_message_whose_provider_was_removed_is_given_up_not_sent_by_another() {
    let (postmark, mailgun) = (FakePostmark::start().await, FakeMailgun::start().await);
    let app = spawn_app().await;
    provider_from(&app, "Postmark", "postmark", postmark.config()).await;
    let removed = provider_from(&app, "Mailgun", "mailgun", mailgun.config()).await;
    let t = template(&app).await;
    let res = app
        .delete(&format!("/api/v1/providers/{removed}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // Requested before the removal (a scheduled campaign's job): its provider is gone now.
    let id = Uuid::now_v7();
    let mut r = request(t, "orphan@example.org", campaign(Uuid::now_v7()));
    r.provider_id = Some(removed);
    app.admin
        .delivery
        .jobs
        .request(app.tenant_id, &meta(&app), &[(id, r)], Utc::now())
        .await
        .unwrap();
    let j = app.wait_delivery_job(&id.to_string(), "given_up").await;
    let error = j["events"].as_array().unwrap().last().unwrap()["payload"]["DeliveryGivenUp"]
        ["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        error.contains(&removed.to_string()) && error.contains("does not exist"),
        "{error}"
    );
    assert!(queue_row(&app, id).await.is_none(), "not retried");
    assert!(postmark.received().is_empty() && mailgun.received().is_empty());
}

/// A job for `contact` from `source`, requested directly (campaigns and journeys request
/// their jobs through the same write path); its id.
async fn contact_job(app: &TestApp, template: Uuid, contact: Uuid, source: Source) -> Uuid {
    let id = Uuid::now_v7();
    let mut r = request(template, "", source);
    r.contact_id = Some(contact);
    app.admin
        .delivery
        .jobs
        .request(app.tenant_id, &meta(app), &[(id, r)], Utc::now())
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn over_its_frequency_cap_a_contact_is_skipped_by_a_campaign() {
    let app = spawn_app().await;
    let t = template(&app).await;
    let (capped, _) = app
        .create_contact(json!({"email": "capped@example.org"}))
        .await;
    let res = app
        .http
        .put(app.url(&format!("/api/v1/contacts/{capped}/frequency/email")))
        .bearer_auth(&app.api_key)
        .json(&json!({"max": 1, "per_days": 7}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    let blast = Uuid::now_v7();

    let first = contact_job(&app, t, capped, campaign(blast)).await;
    app.wait_delivery_job(&first.to_string(), "sent").await;

    let skipped = contact_job(&app, t, capped, campaign(blast)).await;
    let j = app
        .wait_delivery_job(&skipped.to_string(), "suppressed")
        .await;
    assert_eq!(
        j["events"].as_array().unwrap().last().unwrap()["payload"]["DeliverySuppressed"]["reason"],
        json!({"kind": "frequency_cap"})
    );
    assert!(queue_row(&app, skipped).await.is_none());
    assert_eq!(pending(&app, blast).await, 0, "the blast is done with it");

    // A journey's message to the same contact waits instead
    // (`delivery::opted_out_and_over_frequency_contacts_get_no_marketing_and_the_job_says_why`).
    eventually(WAIT, "the deliveries list the suppression", || async {
        let res = app
            .get("/api/v1/deliveries?status=suppressed")
            .send()
            .await
            .unwrap();
        let page: Value = res.json().await.unwrap();
        page["items"]
            .as_array()
            .is_some_and(|i| i.len() == 1 && i[0]["reason"]["kind"] == "frequency_cap")
    })
    .await;
}

#[tokio::test]
async fn claims_read_only_the_index_of_rows_that_are_not_held() {
    let app = spawn_app().await;
    // A paused blast: many held rows, all due.
    sqlx::query(
        "INSERT INTO delivery_queue (tenant_id, job_id, channel, due_at, campaign_id, held) \
         SELECT $1, gen_random_uuid(), 'email', now() - interval '1 hour', $2, true \
         FROM generate_series(1, 20000)",
    )
    .bind(app.tenant_id)
    .bind(Uuid::now_v7())
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query("ANALYZE delivery_queue")
        .execute(&app.pool)
        .await
        .unwrap();
    let (def,): (String,) =
        sqlx::query_as("SELECT indexdef FROM pg_indexes WHERE indexname = 'delivery_queue_due'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(def.contains("WHERE (NOT held)"), "{def}");

    let mut conn = app.pool.acquire().await.unwrap();
    // Whatever the table's statistics: the plan must be able to use the partial index,
    // which it can only when the statement's predicate implies the index's.
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut *conn)
        .await
        .unwrap();
    let now = Utc::now();
    let plan: Vec<(String,)> = sqlx::query_as(&format!(
        "EXPLAIN {}",
        workers::delivery::worker::queue::CLAIM
    ))
    .bind(now)
    .bind(500_i64)
    .bind(now + chrono::Duration::minutes(5))
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let plan: String = plan.into_iter().map(|(l,)| l + "\n").collect();
    assert!(plan.contains("delivery_queue_due"), "{plan}");
    let plan: Vec<(String,)> = sqlx::query_as(&format!(
        "EXPLAIN {}",
        workers::delivery::worker::queue::NEXT_DUE
    ))
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let plan: String = plan.into_iter().map(|(l,)| l + "\n").collect();
    assert!(plan.contains("delivery_queue_due"), "{plan}");
    sqlx::query("RESET enable_seqscan")
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);

    // And nothing of them is claimed: an ordinary message goes out, the held rows stay.
    let t = template(&app).await;
    let id = app
        .send_message(json!({"template_id": t, "to": "through@example.org"}))
        .await;
    app.wait_delivery_job(&id, "sent").await;
    let (claimed,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM delivery_queue WHERE held AND claims > 0")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(claimed, 0);
}

/// Fails the first `failures` lookups as a database would (a pool that timed out), then
/// hands out the development mailbox.
struct FlakyProviders {
    failures: std::sync::atomic::AtomicUsize,
    inner: workers::delivery::resolve::Fixed,
}

#[async_trait::async_trait]
impl workers::delivery::resolve::Providers for FlakyProviders {
    async fn resolve(
        &self,
        tenant: Uuid,
        channel: workers::delivery::message::Channel,
        provider_id: Option<Uuid>,
    ) -> Result<workers::delivery::resolve::Resolved, workers::delivery::resolve::ResolveError>
    {
        use std::sync::atomic::Ordering;
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(sqlx::Error::PoolTimedOut.into());
        }
        self.inner.resolve(tenant, channel, provider_id).await
    }
}

#[tokio::test]
async fn a_database_failure_while_finding_the_provider_retries_the_message_not_gives_it_up() {
    let app = mauntic_tests::spawn_with(mauntic_tests::Options {
        roles: [
            mauntic::settings::Role::Commands,
            mauntic::settings::Role::Queries,
            mauntic::settings::Role::Projector,
        ]
        .into(),
        ..Default::default()
    })
    .await;
    let t = template(&app).await;
    let worker = workers::delivery::worker::Worker::new(
        app.pool.clone(),
        app.admin.delivery.jobs.clone(),
        event_store::Clock::system(),
        workers::delivery::worker::WorkerConfig {
            // A batch the step gave back is claimable again at once.
            lease: Duration::ZERO,
            ..Default::default()
        },
        std::sync::Arc::new(FlakyProviders {
            failures: 1.into(),
            inner: workers::delivery::resolve::Fixed::new(app.pool.clone()),
        }),
        None,
    );
    let id = Uuid::now_v7();
    app.admin
        .delivery
        .jobs
        .request(
            app.tenant_id,
            &meta(&app),
            &[(
                id,
                request(t, "flaky@example.org", campaign(Uuid::now_v7())),
            )],
            Utc::now(),
        )
        .await
        .unwrap();

    let failed = worker.step().await;
    assert!(
        matches!(failed, Err(workers::delivery::worker::WorkerError::Sql(_))),
        "{failed:?}"
    );
    let j = app.delivery_job(&id.to_string()).await;
    assert_eq!(j["state"]["status"], "requested", "not given up: {j}");
    assert!(queue_row(&app, id).await.is_some(), "still queued");

    let stepped = worker.step().await.unwrap();
    assert_eq!((stepped.claimed, stepped.sent), (1, 1));
    app.wait_delivery_job(&id.to_string(), "sent").await;
}
