use std::collections::HashSet;
use std::time::Duration;

use event_store::relay::{Relay, LOCK_KEY};
use event_store::wakeup::Wakeup;
use event_store::{checkpoint, Cursor};
use mauntic::settings::Role;
use mauntic_tests::{append_raw, eventually, spawn_with, stream_contents, Options};
use tokio_util::sync::CancellationToken;

/// The backends holding the relay's leadership lock in this test's database (advisory locks
/// are per database; `pg_locks` shows every database's).
async fn relay_lock_holders(pool: &sqlx::PgPool) -> Vec<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND ((classid::bigint << 32) | objid::bigint) = $1",
    )
    .bind(LOCK_KEY)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// A relay-only application (no projector) on NATS.
fn relay_only() -> Options {
    Options {
        roles: [Role::Relay].into(),
        ..Options::with_nats()
    }
}

#[tokio::test]
async fn a_relay_stopped_mid_stream_and_restarted_publishes_every_event_exactly_once_in_order() {
    let app = spawn_with(Options {
        roles: [Role::Queries].into(),
        ..Options::with_nats()
    })
    .await;
    let bus = app.bus().await;
    for i in 0..300 {
        append_raw(&app.pool, app.tenant_id, i).await;
    }
    let all = app.all_events().await;
    assert_eq!(all.len(), 300);

    // A relay that published the first 50 and died before storing its cursor.
    let mut prev = Cursor::ZERO;
    for e in &all[..50] {
        bus.js
            .send_publish(bus.subject(e), bus.message(e, prev).unwrap())
            .await
            .unwrap()
            .await
            .unwrap();
        prev = e.cursor;
    }
    assert_eq!(
        checkpoint::load(&app.pool, "relay").await.unwrap(),
        Cursor::ZERO
    );

    // A relay that is stopped part-way (after some batches), then one that takes over.
    let first = Relay::new(app.pool.clone(), bus.clone()).with_batch(40);
    let mut lead = first.try_lead().await.unwrap().unwrap();
    for _ in 0..3 {
        first.publish_batch(&mut lead).await.unwrap();
    }
    drop(lead);
    let cancel = CancellationToken::new();
    let second = Relay::new(app.pool.clone(), bus.clone()).with_batch(40);
    let task = tokio::spawn(second.run(Wakeup::polling(), cancel.clone()));
    let last = all.last().unwrap().cursor;
    let pool = app.pool.clone();
    eventually(Duration::from_secs(20), "relay reaches the head", || {
        let pool = pool.clone();
        async move { checkpoint::load(&pool, "relay").await.unwrap() >= last }
    })
    .await;
    cancel.cancel();
    task.await.unwrap();

    let got = stream_contents(&bus).await;
    let expected: Vec<(String, Cursor)> = all.iter().map(|e| (e.msg_id(), e.cursor)).collect();
    assert_eq!(got.len(), 300, "each event exactly once");
    assert_eq!(got, expected, "in cursor order");
    assert_eq!(
        got.iter().map(|(id, _)| id).collect::<HashSet<_>>().len(),
        300
    );
    app.stop().await;
}

#[tokio::test]
async fn only_one_relay_leads_and_a_follower_takes_over_when_the_leader_dies() {
    let a = spawn_with(relay_only()).await;
    // A second process on the same database and stream.
    let b = mauntic_tests::start(a.settings.clone()).await;
    append_raw(&a.pool, a.tenant_id, 1).await;
    a.caught_up("relay").await;

    let holders = || async { relay_lock_holders(&a.pool).await };
    assert_eq!(holders().await.len(), 1, "exactly one leader");

    // Kill whichever process leads: terminating its session is what a killed process looks
    // like to Postgres (the lock goes with the session).
    let [pid] = holders().await[..] else {
        panic!("not exactly one leader")
    };
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .execute(&a.pool)
        .await
        .unwrap();
    for i in 2..=50 {
        append_raw(&a.pool, a.tenant_id, i).await;
    }
    a.caught_up("relay").await;
    let bus = a.bus().await;
    let got = stream_contents(&bus).await;
    assert_eq!(
        got.len(),
        50,
        "no event lost or doubled across the hand-over"
    );
    eventually(Duration::from_secs(5), "one leader again", || async {
        holders().await.len() == 1
    })
    .await;
    assert_ne!(holders().await, vec![pid], "the killed session cannot lead");
    b.stop().await;
    a.stop().await;
}
