use std::sync::Arc;
use std::time::Duration;

use event_store::checkpoint;
use event_store::source::PgTail;
use event_store::wakeup::Wakeup;
use mauntic::settings::{ProjectionSource, Role};
use mauntic_tests::{spawn_with, Options, TestApp};
use projections::contacts::ContactsProjection;
use projections::{runner, Target};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// A command sequence touching every contact event type.
async fn some_history(app: &TestApp) {
    for i in 0..20 {
        let (id, _) = app
            .create_contact(
                json!({"email": format!("p{i}@example.org"), "first_name": "P", "tags": ["a"],
                                   "fields": {"n": i}}),
            )
            .await;
        let r = app
            .patch(
                &format!("/api/v1/contacts/{id}"),
                &json!({"last_name": format!("L{i}"), "fields": {"n": null, "city": "Oslo"}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = app
            .post(
                &format!("/api/v1/contacts/{id}/tags"),
                &json!({"tags": ["b", "c"]}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = app
            .delete(&format!("/api/v1/contacts/{id}/tags/a"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
}

#[tokio::test]
async fn the_same_batch_delivered_twice_changes_nothing() {
    // No projector running: the test drives the projection itself.
    let app = spawn_with(Options {
        roles: [Role::Commands].into(),
        ..Options::default()
    })
    .await;
    some_history(&app).await;
    let events = app.all_events().await;
    assert_eq!(events.len(), 80);
    let target = Target::live(&ContactsProjection);

    let first = runner::apply_batch(&app.pool, &ContactsProjection, &target, &events)
        .await
        .unwrap();
    let after_once = app.checksum("contacts").await;
    let second = runner::apply_batch(&app.pool, &ContactsProjection, &target, &events)
        .await
        .unwrap();
    // Overlapping redelivery: the second half again, plus nothing new.
    let third = runner::apply_batch(
        &app.pool,
        &ContactsProjection,
        &target,
        &events[events.len() / 2..],
    )
    .await
    .unwrap();

    assert_eq!(first, events.last().unwrap().cursor);
    assert_eq!((second, third), (first, first));
    assert_eq!(app.checksum("contacts").await, after_once);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM contacts")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 20);
    let tags: Vec<String> = sqlx::query_scalar("SELECT tags FROM contacts LIMIT 1")
        .fetch_one(&app.pool)
        .await
        .map(|t: Vec<String>| t)
        .unwrap();
    assert_eq!(tags, vec!["b", "c"]);
    app.stop().await;
}

#[tokio::test]
async fn jetstream_and_the_postgres_tail_build_identical_read_models() {
    // The application projects `contacts` from JetStream...
    let app = spawn_with(Options {
        source: ProjectionSource::JetStream,
        ..Options::with_nats()
    })
    .await;
    // ...and beside it the same projection runs from the Postgres tail into a copy.
    sqlx::query("CREATE TABLE contacts_from_pg (LIKE contacts INCLUDING ALL)")
        .execute(&app.pool)
        .await
        .unwrap();
    let cancel = CancellationToken::new();
    let pg_target = Target {
        table: "contacts_from_pg".into(),
        checkpoint: "contacts_from_pg".into(),
        suffix: "_from_pg".into(),
    };
    let tail = PgTail::new(
        app.pool.clone(),
        Wakeup::listen(app.pool.clone(), cancel.clone()),
    );
    let task = tokio::spawn(runner::run(
        app.pool.clone(),
        Arc::new(ContactsProjection),
        pg_target,
        Box::new(tail),
        event_store::checkpoint::Mover::start(app.pool.clone(), cancel.clone()),
        cancel.clone(),
    ));

    some_history(&app).await;
    app.caught_up("contacts").await;
    app.caught_up("contacts_from_pg").await;

    let js = app.checksum("contacts").await;
    assert_ne!(js, "empty");
    assert_eq!(js, app.checksum("contacts_from_pg").await);
    cancel.cancel();
    task.await.unwrap();
    app.stop().await;
}

#[tokio::test]
async fn a_jetstream_projector_fills_a_gap_in_the_stream_from_the_log() {
    let app = spawn_with(Options {
        source: ProjectionSource::JetStream,
        ..Options::with_nats()
    })
    .await;
    let (id, c1) = app
        .create_contact(json!({"email": "gap@example.org"}))
        .await;
    app.contact(id, c1).await;
    app.cancel.cancel();
    let mut app = app;
    app.task.take().unwrap().await.unwrap().unwrap();

    // While the projector is down, events are relayed and then lost from the stream.
    let pool = event_store::store::connect(&app.settings.database_url, 4)
        .await
        .unwrap();
    let installation = event_store::store::installation(&pool).await.unwrap();
    let bus = event_store::nats::Bus::connect(app.settings.nats.clone().unwrap(), installation)
        .await
        .unwrap();
    for i in 0..10 {
        mauntic_tests::append_raw(&pool, app.tenant_id, i).await;
    }
    let relay = event_store::relay::Relay::new(pool.clone(), bus.clone());
    let mut lead = relay.try_lead().await.unwrap().unwrap();
    relay.publish_batch(&mut lead).await.unwrap();
    drop(lead);
    bus.stream().await.unwrap().purge().await.unwrap();

    // Restarted, the projector gets only what comes next, notices the gap and reads it.
    let app2 = mauntic_tests::start(app.settings.clone()).await;
    let (id2, c2) = app2
        .create_contact(json!({"email": "after@example.org"}))
        .await;
    app2.contact(id2, c2).await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM contacts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 12, "1 before + 10 lost from the stream + 1 after");
    pool.close().await;
    app2.stop().await;
}

#[tokio::test]
async fn a_failing_projection_never_moves_its_checkpoint_and_recovers_when_fixed() {
    let app = spawn_with(Options {
        consistency_timeout: Duration::from_millis(300),
        ..Options::default()
    })
    .await;
    let (_, c1) = app
        .create_contact(json!({"email": "one@example.org"}))
        .await;
    app.caught_up("contacts").await;

    // Break the read model: its table is gone.
    sqlx::query("ALTER TABLE contacts RENAME TO contacts_broken")
        .execute(&app.pool)
        .await
        .unwrap();
    let (id2, c2) = app
        .create_contact(json!({"email": "two@example.org"}))
        .await;
    // The read model cannot reach the new event: the query API says so instead of lying.
    let res = app
        .get(&format!("/api/v1/contacts/{id2}?consistent_after={c2}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let cp = checkpoint::load(&app.pool, "contacts").await.unwrap();
    assert!(
        cp >= c1 && cp < c2,
        "checkpoint moved past an event it could not apply: {cp}"
    );

    sqlx::query("ALTER TABLE contacts_broken RENAME TO contacts")
        .execute(&app.pool)
        .await
        .unwrap();
    // The projector retries with backoff; once fixed it catches up by itself.
    app.caught_up("contacts").await;
    let v = app.contact(id2, c2).await;
    assert_eq!(v["email"], "two@example.org");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM contacts")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 2, "both contacts, each once");
    app.stop().await;
}

#[tokio::test]
async fn a_batch_that_does_not_concern_a_projection_only_moves_its_checkpoint() {
    // No projector running: the test drives the projection itself.
    let app = spawn_with(Options {
        roles: [Role::Commands].into(),
        ..Options::default()
    })
    .await;
    let res = app
        .patch(
            "/api/v1/organization",
            &serde_json::json!({"name": "Renamed"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let events = app.all_events().await;
    assert!(events.iter().all(|e| e.aggregate_type == "organization"));
    let target = Target::live(&ContactsProjection);
    let before = app.checksum("contacts").await;
    let at = runner::apply_batch(&app.pool, &ContactsProjection, &target, &events)
        .await
        .unwrap();
    assert_eq!(at, events.last().unwrap().cursor);
    assert_eq!(
        event_store::checkpoint::load(&app.pool, "contacts")
            .await
            .unwrap(),
        at,
        "the checkpoint moved past events it does not project"
    );
    assert_eq!(app.checksum("contacts").await, before);
    app.stop().await;
}
