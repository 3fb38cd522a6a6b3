use event_store::reader::{self, Filter};
use event_store::Cursor;
use mauntic_tests::{append_raw, spawn_app};

/// Reads everything the reader will give now, from `after`.
async fn drain(pool: &sqlx::PgPool, after: &mut Cursor, seen: &mut Vec<(Cursor, String)>) {
    loop {
        let page = reader::read_after(pool, *after, 2, &Filter::default())
            .await
            .unwrap();
        let Some(last) = page.last() else { return };
        *after = last.cursor;
        seen.extend(page.into_iter().map(|e| (e.cursor, e.aggregate_id)));
    }
}

#[tokio::test]
async fn the_cursor_reader_never_skips_an_event_whose_transaction_commits_late() {
    let app = spawn_app().await;
    let tenant = app.tenant_id;
    // After the harness's own set-up events.
    let mut after = app.setup_cursor;
    let mut seen = Vec::new();

    // Arrange: a transaction appends first and stays open.
    let mut slow = app.pool.begin().await.unwrap();
    let late = append_raw(&mut *slow, tenant, 0).await;
    // Others append after it and commit.
    let mut early = Vec::new();
    for i in 1..=5 {
        early.push(append_raw(&app.pool, tenant, i).await);
    }

    // A naive "position > last" reader sees the later events and would move past the open one.
    let naive: Vec<(String,)> = sqlx::query_as(
        "SELECT aggregate_id FROM events WHERE aggregate_type = 'contact' ORDER BY global_position",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        naive.len(),
        5,
        "the open transaction's event is invisible to others"
    );

    // Act: the cursor reader, while the transaction is open, returns nothing past it.
    drain(&app.pool, &mut after, &mut seen).await;
    assert!(seen.is_empty(), "read past an open transaction: {seen:?}");

    slow.commit().await.unwrap();
    let more = append_raw(&app.pool, tenant, 6).await;
    // Other tests' transactions elsewhere in the cluster may hold the horizon back for a
    // moment: keep reading (never re-reading) until all seven have come.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while seen.len() < 7 && std::time::Instant::now() < deadline {
        drain(&app.pool, &mut after, &mut seen).await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }

    // Assert: every event exactly once, the late one first (its transaction began first), in
    // strictly increasing cursor order.
    let ids: Vec<&str> = seen.iter().map(|(_, id)| id.as_str()).collect();
    let mut expected = vec![late.as_str()];
    expected.extend(early.iter().map(String::as_str));
    expected.push(more.as_str());
    assert_eq!(ids, expected);
    assert!(
        seen.windows(2).all(|w| w[0].0 < w[1].0),
        "cursor order: {seen:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_log_is_append_only() {
    let app = spawn_app().await;
    append_raw(&app.pool, app.tenant_id, 1).await;
    for sql in [
        "UPDATE events SET event_type = 'Forged'",
        "DELETE FROM events",
        "TRUNCATE events",
    ] {
        let err = sqlx::query(sql).execute(&app.pool).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(app.event_count().await, 1);
    app.stop().await;
}

#[tokio::test]
async fn every_event_carries_its_tenant_and_request_metadata() {
    let app = spawn_app().await;
    let res = app
        .post(
            "/api/v1/contacts",
            &serde_json::json!({"email": "meta@example.org"}),
        )
        .header("x-correlation-id", "0190f1c2-0000-7000-8000-000000000001")
        .header("x-request-id", "req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let events = app.all_events().await;
    let e = &events[0];
    assert_eq!(e.tenant_id, app.tenant_id);
    assert!(e.aggregate_id.starts_with(&app.tenant_id.to_string()));
    assert_eq!(e.metadata.tenant_id, Some(app.tenant_id));
    assert!(e.metadata.actor.as_deref().unwrap().starts_with("apikey:"));
    assert_eq!(
        e.metadata.correlation_id.unwrap().to_string(),
        "0190f1c2-0000-7000-8000-000000000001"
    );
    assert_eq!(e.metadata.request_id.as_deref(), Some("req-42"));
    app.stop().await;
}

#[tokio::test]
async fn events_tail_catches_up_then_follows_live_filtered_by_tenant() {
    let app = spawn_app().await;
    let (_, other_key) = app.other_tenant().await;
    let (first, _) = app
        .create_contact(serde_json::json!({"email": "t1@example.org"}))
        .await;
    let res = app
        .http
        .post(app.url("/api/v1/contacts"))
        .bearer_auth(&other_key)
        .json(&serde_json::json!({"email": "elsewhere@example.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    let cancel = tokio_util::sync::CancellationToken::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let filter = Filter {
        tenant_id: Some(app.tenant_id),
        aggregate_type: Some("contact".into()),
    };
    let tail = tokio::spawn(replay::tail::tail(
        app.pool.clone(),
        filter,
        Cursor::ZERO,
        cancel.clone(),
        move |e| tx.send((e.cursor, e.tenant_id, e.entity_id())).is_ok(),
    ));
    // Catch-up: the event written before the tail started.
    let (c1, t1, id1) = next(&mut rx).await;
    assert_eq!((t1, id1), (app.tenant_id, Some(first)));
    // Live: one written after.
    let (second, _) = app
        .create_contact(serde_json::json!({"email": "t2@example.org"}))
        .await;
    let (c2, t2, id2) = next(&mut rx).await;
    assert_eq!((t2, id2), (app.tenant_id, Some(second)));
    assert!(c2 > c1);
    // The other tenant's event never came through.
    assert!(rx.try_recv().is_err());
    cancel.cancel();
    tail.await.unwrap().unwrap();
    app.stop().await;
}

/// The next item of `rx`, within 10 s.
async fn next<T>(rx: &mut tokio::sync::mpsc::UnboundedReceiver<T>) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
        .await
        .expect("an event within 10 s")
        .expect("the tail is running")
}
