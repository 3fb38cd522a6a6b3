use event_store::reader::{self, Filter};
use event_store::Cursor;
use mauntic_tests::{append_raw, eventually, spawn_app};

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

/// An event of aggregate type `template` (a type the reader below wants), written raw.
async fn append_template(db: impl sqlx::PgExecutor<'_>, tenant: uuid::Uuid) -> String {
    let id = format!("{tenant}:{}", uuid::Uuid::now_v7());
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('template', $1, 1, 'TemplateCreated', '1.0', '{\"TemplateCreated\": {}}', '{}')",
    )
    .bind(&id)
    .execute(db)
    .await
    .unwrap();
    id
}

#[tokio::test]
async fn a_reader_of_some_aggregate_types_skips_the_others_and_says_how_far_it_read() {
    let app = spawn_app().await;
    let tenant = app.tenant_id;
    let start = app.setup_cursor;
    // Six contact events, a template event, six contact events.
    for i in 0..6 {
        append_raw(&app.pool, tenant, i).await;
    }
    let template = append_template(&app.pool, tenant).await;
    let mut last_contact = String::new();
    for i in 6..12 {
        last_contact = append_raw(&app.pool, tenant, i).await;
    }
    let wanted = ["template".to_owned()];

    // Read with pages of 2 (the reader looks at most 10 events ahead per call) until it says
    // it has read through the last contact event.
    let all = {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let all = reader::read_after(&app.pool, start, 100, &Filter::default())
                .await
                .unwrap();
            if all.iter().any(|e| e.aggregate_id == last_contact) {
                break all;
            }
            assert!(std::time::Instant::now() < deadline, "events not visible");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    };
    let head = all
        .iter()
        .find(|e| e.aggregate_id == last_contact)
        .unwrap()
        .cursor;
    let (mut after, mut got, mut calls) = (start, Vec::new(), 0);
    while after < head {
        let (events, through) = reader::read_types_after(&app.pool, after, 2, &wanted)
            .await
            .unwrap();
        calls += 1;
        let through = through.expect("events follow");
        assert!(through > after, "no progress from {after}");
        // Never past what it looked at: at most 10 events further.
        let window_end = all
            .iter()
            .filter(|e| e.cursor > after)
            .nth(9)
            .map(|e| e.cursor);
        if let Some(end) = window_end {
            assert!(
                through <= end,
                "{through} is past the 10 events read after {after}"
            );
        }
        assert!(events
            .iter()
            .all(|e| e.cursor > after && e.cursor <= through));
        got.extend(
            events
                .into_iter()
                .map(|e| (e.aggregate_type, e.aggregate_id)),
        );
        after = through;
    }
    assert_eq!(got, vec![("template".to_owned(), template.clone())]);
    assert!(calls >= 2, "13 events need two looks of 10");

    // A full page of wanted events stops at its last event, not at what was seen.
    let (page, through) = reader::read_types_after(&app.pool, start, 2, &["contact".to_owned()])
        .await
        .unwrap();
    assert_eq!(page.len(), 2);
    assert_eq!(through, Some(page[1].cursor));

    // An open transaction holds the reader back like the plain reader: nothing past it.
    let mut slow = app.pool.begin().await.unwrap();
    let late = append_template(&mut *slow, tenant).await;
    append_raw(&app.pool, tenant, 12).await;
    let (events, through) = reader::read_types_after(&app.pool, head, 2, &wanted)
        .await
        .unwrap();
    assert!(
        events.is_empty() && through.is_none(),
        "read past an open transaction"
    );
    slow.commit().await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let late_seen = loop {
        let (events, _) = reader::read_types_after(&app.pool, head, 2, &wanted)
            .await
            .unwrap();
        if !events.is_empty() {
            break events;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the late event never came"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    assert_eq!(late_seen[0].aggregate_id, late);
    app.stop().await;
}

/// Takes batches of at most 3 from `tail` until `done` says so (10 s at most): every event
/// handed out, and how far the tail said it read.
async fn take_until(
    tail: &mut event_store::feed::FeedTail,
    after: &mut Cursor,
    got: &mut Vec<(Cursor, String)>,
    done: impl Fn(&[(Cursor, String)], Cursor) -> bool,
) {
    use event_store::source::EventSource;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !done(got, *after) {
        assert!(
            std::time::Instant::now() < deadline,
            "the tail stopped at {after} after {} events",
            got.len()
        );
        let batch = tail.next_batch(*after, 3).await.unwrap();
        assert!(batch.events.len() <= 3);
        for e in &batch.events {
            assert!(e.cursor > *after, "{} handed out again", e.cursor);
            *after = e.cursor;
            got.push((e.cursor, e.aggregate_id.clone()));
        }
        if let Some(through) = batch.through {
            assert!(through >= *after, "read through {through}, before {after}");
            *after = through;
        }
    }
}

#[tokio::test]
async fn tails_of_the_shared_feed_get_every_event_once_in_order_whether_ahead_of_or_behind_its_window(
) {
    use event_store::feed::Feed;
    use event_store::wakeup::Wakeup;
    let app = spawn_app().await;
    let tenant = app.tenant_id;
    let start = app.setup_cursor;
    // Events from before the feed started: the tails read them from Postgres.
    let mut expected = Vec::new();
    for i in 0..7 {
        expected.push(append_raw(&app.pool, tenant, i).await);
    }
    let cancel = tokio_util::sync::CancellationToken::new();
    let wake = Wakeup::listen(app.pool.clone(), cancel.clone());
    // A window of 4 events: a tail further behind than that reads Postgres.
    let feed = Feed::start(app.pool.clone(), wake.clone(), 4, cancel.clone());
    let mut all = feed.tail(app.pool.clone(), wake.clone(), None);
    let mut templates = feed.tail(app.pool.clone(), wake.clone(), Some(&["template"]));

    // A transaction appends first and stays open while 23 later ones commit.
    let mut slow = app.pool.begin().await.unwrap();
    let late = append_template(&mut *slow, tenant).await;
    let mut after_late = Vec::new();
    for i in 7..30 {
        after_late.push(append_raw(&app.pool, tenant, i).await);
    }
    let (mut at, mut got) = (start, Vec::new());
    take_until(&mut all, &mut at, &mut got, |g, _| g.len() >= 7).await;
    // Nothing past the open transaction, however long the tail looks.
    for _ in 0..3 {
        use event_store::source::EventSource;
        let batch = all.next_batch(at, 3).await.unwrap();
        assert!(
            batch.events.is_empty(),
            "read past an open transaction: {:?}",
            batch
                .events
                .iter()
                .map(|e| &e.aggregate_id)
                .collect::<Vec<_>>()
        );
    }
    slow.commit().await.unwrap();
    take_until(&mut all, &mut at, &mut got, |g, _| g.len() >= 31).await;
    expected.push(late.clone());
    expected.extend(after_late);
    let ids: Vec<&String> = got.iter().map(|(_, id)| id).collect();
    assert_eq!(ids, expected.iter().collect::<Vec<_>>());
    assert!(
        got.windows(2).all(|w| w[0].0 < w[1].0),
        "not in cursor order"
    );

    // A reader of one type gets only that type, and reads through the rest.
    let head = got.last().unwrap().0;
    let (mut at, mut picked) = (start, Vec::new());
    take_until(&mut templates, &mut at, &mut picked, |_, at| at >= head).await;
    assert_eq!(picked.len(), 1);
    assert_eq!(picked[0].1, late);

    // New events reach a tail at the head through the window.
    let next = append_template(&app.pool, tenant).await;
    take_until(&mut templates, &mut at, &mut picked, |g, _| g.len() >= 2).await;
    assert_eq!(picked[1].1, next);
    cancel.cancel();
    app.stop().await;
}

#[tokio::test]
async fn the_checkpoint_mover_writes_every_readers_move_never_moves_one_back_and_skips_a_busy_one()
{
    use event_store::checkpoint::{self, Mover};
    const WAIT: std::time::Duration = std::time::Duration::from_secs(10);
    let app = spawn_app().await;
    let pool = &app.pool;
    let at = |name: &'static str| async move { checkpoint::load(pool, name).await.unwrap() };
    let cancel = tokio_util::sync::CancellationToken::new();
    let mover = Mover::start(app.pool.clone(), cancel.clone());
    let (a, b) = (Cursor::new(10, 5), Cursor::new(12, 9));
    mover.advance("mover_test_a", Cursor::new(3, 1));
    mover.advance("mover_test_a", a);
    mover.advance("mover_test_b", b);
    eventually(WAIT, "both moves written", || async {
        at("mover_test_a").await == a && at("mover_test_b").await == b
    })
    .await;
    // A move behind the stored cursor (another runner went further) changes nothing, while
    // a later move of the same batch is written.
    mover.advance("mover_test_a", Cursor::new(4, 2));
    let c = Cursor::new(13, 1);
    mover.advance("mover_test_b", c);
    eventually(WAIT, "the later move", || async {
        at("mover_test_b").await == c
    })
    .await;
    assert_eq!(at("mover_test_a").await, a);

    // A checkpoint whose row a transaction holds (its projection applying a batch) does not
    // hold back the others' moves; its own is made once the row is free.
    let mut busy = app.pool.begin().await.unwrap();
    checkpoint::lock(&mut busy, "mover_test_a").await.unwrap();
    let (a2, c2) = (Cursor::new(20, 1), Cursor::new(21, 1));
    mover.advance("mover_test_a", a2);
    mover.advance("mover_test_b", c2);
    eventually(WAIT, "a move beside a busy checkpoint", || async {
        at("mover_test_b").await == c2
    })
    .await;
    assert_eq!(at("mover_test_a").await, a);
    busy.commit().await.unwrap();
    eventually(WAIT, "the busy checkpoint's move", || async {
        at("mover_test_a").await == a2
    })
    .await;
    cancel.cancel();
    app.stop().await;
}
