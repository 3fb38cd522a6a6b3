//! Faults of the parts around the log: the broker going away must lose no event and
//! duplicate none.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use event_store::nats::{Bus, NatsConfig};
use mauntic::settings::ProjectionSource;
use mauntic_tests::{eventually, fresh_settings, start, stream_contents, Options};
use serde_json::json;

/// A nats-server of this test's own, so it can be killed without disturbing other tests.
struct PrivateNats {
    child: Option<Child>,
    port: u16,
    dir: std::path::PathBuf,
}

impl PrivateNats {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("mauntic-nats-{}", uuid::Uuid::new_v4()));
        let mut n = Self {
            child: None,
            port,
            dir,
        };
        n.up().await;
        n
    }

    async fn up(&mut self) {
        let bin = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("nats-server");
        let child = Command::new(bin)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let port = self.port;
        eventually(
            Duration::from_secs(10),
            "private nats-server accepts connections",
            || async move {
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
            },
        )
        .await;
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn the_broker_going_down_loses_no_event_and_duplicates_none() {
    let mut broker = PrivateNats::start().await;
    let mut settings = fresh_settings(&Options {
        source: ProjectionSource::JetStream,
        ..Options::with_nats()
    });
    let nats_config = NatsConfig {
        url: broker.url(),
        ..settings.nats.clone().unwrap()
    };
    settings.nats = Some(nats_config.clone());
    let app = start(settings).await;
    let (id, cursor) = app
        .create_contact(json!({"email": "before@example.org"}))
        .await;
    app.contact(id, cursor).await;

    // The broker dies. Commands still succeed: the log, not the broker, is the record.
    broker.kill();
    let (http, ready) = (app.http.clone(), app.url("/readyz"));
    eventually(Duration::from_secs(10), "readyz reports NATS down", || {
        let (http, ready) = (http.clone(), ready.clone());
        async move { http.get(&ready).send().await.unwrap().status() == 503 }
    })
    .await;
    let mut during = Vec::new();
    for i in 0..20 {
        during.push(
            app.create_contact(json!({"email": format!("during{i}@example.org")}))
                .await,
        );
    }

    // It comes back on the same store: the relay resumes, the projector reconsumes.
    broker.up().await;
    app.caught_up("relay").await;
    app.caught_up("contacts").await;
    for (id, cursor) in &during {
        app.contact(*id, *cursor).await;
    }

    // Every event is in the stream exactly once, in cursor order.
    let bus = Bus::connect(nats_config, app.installation().await)
        .await
        .unwrap();
    let got = stream_contents(&bus).await;
    assert_eq!(got.len(), 21);
    assert_eq!(
        got.iter().map(|(id, _)| id).collect::<HashSet<_>>().len(),
        21,
        "a message was duplicated"
    );
    assert!(
        got.windows(2).all(|w| w[0].1 < w[1].1),
        "out of cursor order"
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM contacts")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 21);
    app.stop().await;
}

#[tokio::test]
async fn every_session_asks_the_server_to_end_a_transaction_left_idle_for_a_minute() {
    // A leaked transaction's row locks (a checkpoint's) once stalled every later move of that
    // checkpoint for as long as the process lived; the server now ends such a session.
    let app = start(fresh_settings(&Options::default())).await;
    for _ in 0..3 {
        let mut conn = app.pool.acquire().await.unwrap();
        let timeout: String = sqlx::query_scalar("SHOW idle_in_transaction_session_timeout")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(timeout, "1min");
    }
    app.stop().await;
}
