//! Two installations on one NATS server, with the default NATS settings (no stream or
//! subject prefix configured): each keeps to its own stream and read models, and a message
//! of one that reaches the other's stream anyway is refused.

use event_store::nats::{Names, NatsConfig};
use event_store::Cursor;
use mauntic::settings::ProjectionSource;
use mauntic_tests::{fresh_settings, start, Options, TestApp, NATS_URL};
use serde_json::json;

/// An installation of its own (a fresh database) on the machine's NATS, with the defaults a
/// new operator gets: `NATS_URL` set and nothing else.
async fn installation() -> TestApp {
    let mut settings = fresh_settings(&Options {
        source: ProjectionSource::JetStream,
        ..Options::with_nats()
    });
    settings.nats = Some(NatsConfig::new(NATS_URL));
    start(settings).await
}

async fn contacts_rows(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("SELECT email FROM contacts ORDER BY email")
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn two_installations_on_one_nats_server_keep_their_events_and_read_models_apart() {
    let a = installation().await;
    let b = installation().await;
    let (bus_a, bus_b) = (a.bus().await, b.bus().await);
    assert_ne!(a.installation().await, b.installation().await);
    assert_ne!(
        bus_a.names, bus_b.names,
        "each installation has its own stream"
    );
    let defaults = NatsConfig::new(NATS_URL);
    assert_eq!(bus_a.names, Names::of(&defaults, a.installation().await));

    // Both write at once.
    let mut in_a = Vec::new();
    for i in 0..20 {
        in_a.push(
            a.create_contact(json!({"email": format!("a{i:02}@example.org")}))
                .await,
        );
    }
    let (b_id, b_cursor) = b.create_contact(json!({"email": "b@example.org"})).await;

    // Each read model shows its own contacts, and only them.
    for (id, cursor) in &in_a {
        a.contact(*id, *cursor).await;
    }
    b.contact(b_id, b_cursor).await;
    a.caught_up("contacts").await;
    b.caught_up("contacts").await;
    let expected_a: Vec<String> = (0..20).map(|i| format!("a{i:02}@example.org")).collect();
    assert_eq!(contacts_rows(&a).await, expected_a);
    assert_eq!(contacts_rows(&b).await, vec!["b@example.org".to_owned()]);

    // A message of installation A in B's stream (two installations configured with the same
    // stream name): shaped to follow B's last event exactly, so only its installation header
    // tells it apart. B's feed refuses it.
    let stolen = a
        .all_events()
        .await
        .into_iter()
        .find(|e| e.event_type == "ContactCreated")
        .unwrap();
    let b_last = b.head().await;
    let mut forged = stolen.clone();
    forged.cursor = Cursor::new(b_last.tx_id, b_last.position + 1);
    bus_b
        .js
        .send_publish(
            bus_b.subject(&forged),
            bus_a.message(&forged, b_last).unwrap(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    // B goes on: its next contact is projected, A's is not.
    let (b2, b2_cursor) = b.create_contact(json!({"email": "b2@example.org"})).await;
    b.contact(b2, b2_cursor).await;
    b.caught_up("contacts").await;
    assert_eq!(
        contacts_rows(&b).await,
        vec!["b2@example.org".to_owned(), "b@example.org".to_owned()]
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM contacts WHERE id = $1")
        .bind(
            stolen
                .aggregate_id
                .split_once(':')
                .unwrap()
                .1
                .parse::<uuid::Uuid>()
                .unwrap(),
        )
        .fetch_one(&b.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0, "B applied an event of A's log");
    a.stop().await;
    b.stop().await;
}
