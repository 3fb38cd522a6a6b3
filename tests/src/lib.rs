//! The harness of the black-box tests: `spawn_app` builds the real application on port 0
//! against a fresh database (and, when asked, a fresh JetStream stream on the real NATS).

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod browser;
pub mod chromium;
pub mod console;
pub mod fake_oidc;
pub mod fakes;
pub mod pg_count;
pub mod smtp_sink;

use std::time::{Duration, Instant};

use commands::identity::admin;
use commands::identity::password::PasswordCost;
use event_store::nats::NatsConfig;
use event_store::{checkpoint, reader, Clock, Cursor};
use mauntic::settings::{ProjectionSource, Role, Settings};
use mauntic::Application;
use serde_json::Value;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const NATS_URL: &str = "nats://127.0.0.1:4222";

/// How the application under test is set up.
#[derive(Debug, Clone)]
pub struct Options {
    /// Configure NATS (relay on, projectors on JetStream unless `source` says otherwise).
    pub nats: bool,
    pub source: ProjectionSource,
    pub roles: std::collections::BTreeSet<Role>,
    pub consistency_timeout: Duration,
    pub max_body_bytes: usize,
    /// The system SMTP server (an `SmtpSink`'s URL).
    pub smtp_url: Option<String>,
    pub oidc: Option<commands::identity::OidcConfig>,
    /// Take client addresses from `X-Forwarded-For`.
    pub trust_proxy: bool,
    /// Set the public URL (links in mail, the OpenID redirect) to where the app listens.
    pub public_url_from_addr: bool,
    /// The platform SMTP relay for email (an `smtp` provider's JSON); the development
    /// mailbox without it.
    pub delivery_smtp: Option<serde_json::Value>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            nats: false,
            source: ProjectionSource::Auto,
            roles: Role::all(),
            // Generous: the suite runs its tests in parallel on two cores, the 100,000-
            // recipient crash test among them, and a read model may trail by seconds then;
            // a test that means to see a 503 sets its own.
            consistency_timeout: Duration::from_secs(30),
            max_body_bytes: 64 * 1024,
            smtp_url: None,
            oidc: None,
            trust_proxy: false,
            public_url_from_addr: false,
            delivery_smtp: None,
        }
    }
}

impl Options {
    pub fn with_nats() -> Self {
        Self {
            nats: true,
            ..Self::default()
        }
    }
}

/// A running application with a tenant and its key.
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub pool: PgPool,
    pub settings: Settings,
    pub tenant_id: Uuid,
    pub api_key: String,
    pub cancel: CancellationToken,
    pub task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// The command side, for admin operations (what the CLI does).
    pub admin: commands::CommandState,
    /// The head once the harness had set up its tenant: `event_count` and `all_events`
    /// count from here, so tests see only the events they caused.
    pub setup_cursor: Cursor,
}

/// A fresh database URL and NATS names for one test.
pub fn fresh_settings(opts: &Options) -> Settings {
    let id = Uuid::new_v4().simple().to_string();
    let short = &id[..16];
    Settings {
        database_url: format!("postgres://postgres@127.0.0.1:5432/mauntic_test_{short}"),
        pool_size: 8,
        nats: opts.nats.then(|| NatsConfig {
            url: NATS_URL.into(),
            stream: Some(format!("TEST_{short}")),
            subject_prefix: Some(format!("t{short}")),
        }),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        max_body_bytes: opts.max_body_bytes,
        consistency_timeout: opts.consistency_timeout,
        projection_source: opts.source,
        roles: opts.roles.clone(),
        identity: commands::IdentityConfig {
            // Cheap hashing: tests check behaviour, the login bench measures the real cost.
            password_cost: PasswordCost {
                memory_kib: 1024,
                iterations: 1,
                lanes: 1,
            },
            smtp_url: opts.smtp_url.clone(),
            oidc: opts.oidc.clone(),
            ..Default::default()
        },
        sessions: Default::default(),
        trust_proxy: opts.trust_proxy,
        clock: Clock::system(),
        segment_refresh_every: std::time::Duration::from_secs(3600),
        imports: commands::imports::ImportConfig {
            data_dir: std::env::temp_dir().join(format!("mauntic_test_{short}")),
            max_bytes: 1 << 20,
            batch_rows: 3,
        },
        master_key: None,
        delivery: mauntic::settings::DeliverySettings {
            smtp: opts.delivery_smtp.clone(),
            tracking_url: "http://track.mauntic.test".into(),
            tracking_keys: vec![b"test tracking key".to_vec()],
            inbound_secret: None,
            worker: workers::delivery::worker::WorkerConfig {
                loops: 2,
                retry_base: Duration::from_millis(200),
                poll: Duration::from_millis(100),
                default_from: domain::delivery::Sender {
                    address: "news@acme.test".into(),
                    name: Some("Acme".into()),
                },
                ..Default::default()
            },
        },
        master_key_previous: None,
        campaigns: workers::campaigns::CampaignWorkerConfig {
            page: 500,
            poll: Duration::from_millis(100),
            completion_check: Duration::from_millis(200),
            ..Default::default()
        },
        journeys: workers::journeys::JourneyWorkerConfig {
            batch: 200,
            poll: Duration::from_millis(100),
            loops: 2,
        },
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_with(Options::default()).await
}

pub async fn spawn_with(opts: Options) -> TestApp {
    let mut settings = fresh_settings(&opts);
    if opts.public_url_from_addr {
        // Bind first so the public URL (the OpenID redirect) names the real port.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        settings.http_addr = l.local_addr().unwrap();
        settings.identity.public_url = format!("http://{}", settings.http_addr);
        drop(l);
    }
    start(settings).await
}

/// Starts the application with `settings` (a second process on the same database, say).
pub async fn start(settings: Settings) -> TestApp {
    let app = Application::build(settings.clone())
        .await
        .expect("application builds");
    let pool = app.pool.clone();
    let base = app.addr.map(|a| format!("http://{a}")).unwrap_or_default();
    let admin = mauntic::http::command_state(&settings, pool.clone()).unwrap();
    let tenant = admin::create_tenant(&admin, "Acme").await.unwrap();
    let setup_cursor = committed_head(&pool).await;
    let cancel = CancellationToken::new();
    let task = tokio::spawn(app.run(cancel.clone()));
    TestApp {
        base,
        http: reqwest::Client::new(),
        pool,
        settings,
        tenant_id: tenant.tenant_id,
        api_key: tenant.api_key,
        cancel,
        task: Some(task),
        admin,
        setup_cursor,
    }
}

/// Polls `cond` until it holds or `within` passes; panics with `what` on timeout.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if cond().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl TestApp {
    /// A template of `channel` (`POST /api/v1/templates`) with one version holding `content`,
    /// published; its id.
    pub async fn published_template(&self, channel: &str, content: Value) -> Uuid {
        let res = self
            .post(
                "/api/v1/templates",
                &serde_json::json!({"name": format!("An {channel}"), "channel": channel}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
        let id = accepted(res).await.0;
        let res = self
            .post(&format!("/api/v1/templates/{id}/versions"), &content)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
        let res = self
            .post(
                &format!("/api/v1/templates/{id}/versions/1/publish"),
                &serde_json::json!({}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
        id
    }

    /// `POST /api/v1/messages` with `body`, which must be accepted (202); the job id.
    pub async fn send_message(&self, body: Value) -> String {
        let res = self.post("/api/v1/messages", &body).send().await.unwrap();
        let status = res.status();
        let answer: Value = res.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 202, "{answer}");
        answer["id"].as_str().unwrap().to_owned()
    }

    /// Delivery job `id` as the log says it is now (`GET /api/v1/audit/delivery_job/{id}`:
    /// `state` and `events`).
    pub async fn delivery_job(&self, id: &str) -> Value {
        let res = self
            .get(&format!("/api/v1/audit/delivery_job/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }

    /// Waits (20 s at most) until delivery job `id` is in `status`; the job then.
    pub async fn wait_delivery_job(&self, id: &str, status: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let j = self.delivery_job(id).await;
            if j["state"]["status"] == status {
                return j;
            }
            assert!(
                Instant::now() < deadline,
                "job {id} is {}, not {status:?}: {j}",
                j["state"]["status"]
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// This installation's id (its database's).
    pub async fn installation(&self) -> Uuid {
        event_store::store::installation(&self.pool).await.unwrap()
    }

    /// The installation's JetStream stream, as the application connects to it.
    pub async fn bus(&self) -> event_store::nats::Bus {
        let config = self.settings.nats.clone().expect("the app has NATS");
        event_store::nats::Bus::connect(config, self.installation().await)
            .await
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(self.url(path)).bearer_auth(&self.api_key)
    }

    pub fn post(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .post(self.url(path))
            .bearer_auth(&self.api_key)
            .json(body)
    }

    pub fn patch(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .patch(self.url(path))
            .bearer_auth(&self.api_key)
            .json(body)
    }

    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.delete(self.url(path)).bearer_auth(&self.api_key)
    }

    /// Creates a contact; returns (id, cursor).
    pub async fn create_contact(&self, body: Value) -> (Uuid, Cursor) {
        let res = self.post("/api/v1/contacts", &body).send().await.unwrap();
        assert_eq!(
            res.status(),
            201,
            "{}",
            res.text().await.unwrap_or_default()
        );
        accepted(res).await
    }

    /// A new tenant with its own key, on the same application.
    pub async fn other_tenant(&self) -> (Uuid, String) {
        let t = admin::create_tenant(&self.admin, "Other").await.unwrap();
        (t.tenant_id, t.api_key)
    }

    /// The contact as the query API shows it once the read model has passed `cursor`.
    pub async fn contact(&self, id: Uuid, cursor: Cursor) -> Value {
        let res = self
            .get(&format!("/api/v1/contacts/{id}?consistent_after={cursor}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }

    /// Events appended since the harness set up its tenant.
    pub async fn event_count(&self) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE (tx_id::text::bigint, global_position) > ($1, $2)",
        )
        .bind(self.setup_cursor.tx_id)
        .bind(self.setup_cursor.position)
        .fetch_one(&self.pool)
        .await
        .unwrap()
    }

    /// The cursor of the last committed event, ignoring the readers' horizon (which other
    /// tests' transactions elsewhere in the cluster may hold back for a moment).
    pub async fn head(&self) -> Cursor {
        committed_head(&self.pool).await
    }

    /// Every event committed since the harness set up its tenant, in cursor order, read
    /// through the gap-safe reader (waiting for the horizon to pass the last one).
    pub async fn all_events(&self) -> Vec<event_store::RecordedEvent> {
        let head = self.head().await;
        let mut out: Vec<event_store::RecordedEvent> = Vec::new();
        let mut after = self.setup_cursor;
        let deadline = Instant::now() + Duration::from_secs(20);
        while after < head {
            assert!(Instant::now() < deadline, "the reader did not reach {head}");
            let page = reader::read_after(&self.pool, after, 10_000, &Default::default())
                .await
                .unwrap();
            if page.is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            after = page.last().map_or(after, |e| e.cursor);
            out.extend(page);
        }
        out
    }

    /// Waits until checkpoint `name` reaches the current head.
    pub async fn caught_up(&self, name: &str) {
        let head = self.head().await;
        let pool = self.pool.clone();
        eventually(
            Duration::from_secs(20),
            &format!("{name} reaches {head}"),
            || {
                let pool = pool.clone();
                let name = name.to_owned();
                async move { checkpoint::load(&pool, &name).await.unwrap() >= head }
            },
        )
        .await;
    }

    /// Drives the platform until it is idle, then returns: the log has stopped growing,
    /// every follower of it (projections, the segment evaluator, the journey trigger
    /// follower) has read to its head, and no work is due by the application's clock (no
    /// journey signal waiting, no journey timer due, no delivery job due, no campaign run
    /// due, no segment refresh queued). Assert that something did not happen after this,
    /// never after a sleep.
    pub async fn settle(&self) {
        let mut before = None;
        loop {
            eventually(
                Duration::from_secs(60),
                "the platform settles (followers at the head, no work due)",
                || self.idle(),
            )
            .await;
            // Idle twice with nothing appended between: nothing was in flight either.
            let head = self.head().await;
            if before == Some(head) {
                return;
            }
            before = Some(head);
        }
    }

    /// Whether the followers are at the head and no work is due (one look).
    async fn idle(&self) -> bool {
        let head = committed_head(&self.pool).await;
        let now = self.settings.clock.now();
        let (behind, due): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM checkpoints \
                     WHERE (tx_id, global_position) < ($1, $2)), \
                    (SELECT count(*) FROM journey_inbox) \
                  + (SELECT count(*) FROM journey_runs WHERE due_at <= $3 AND NOT held) \
                  + (SELECT count(*) FROM delivery_queue WHERE due_at <= $3) \
                  + (SELECT count(*) FROM campaign_runs \
                     WHERE due_at <= $3 AND state IN ('scheduled', 'sending', 'cancelling')) \
                  + (SELECT count(*) FROM segment_refresh)",
        )
        .bind(head.tx_id)
        .bind(head.position)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .unwrap();
        behind == 0 && due == 0
    }

    /// A checksum of a table's whole content.
    pub async fn checksum(&self, table: &str) -> String {
        checksum(&self.pool, table).await
    }

    /// Stops the application and waits for it to end.
    /// Stops the application (which closes its pool) and keeps its database, for a restart:
    /// a test that halts drops the database itself (`drop_database`).
    pub async fn halt(mut self) -> Settings {
        self.cancel.cancel();
        if let Some(t) = self.task.take() {
            let r = tokio::time::timeout(Duration::from_secs(15), t).await;
            assert!(r.is_ok(), "application did not stop within 15 s");
        }
        self.settings.clone()
    }

    pub async fn stop(mut self) {
        // Read before the application closes its pool.
        let mut names = None;
        if let Some(nats) = &self.settings.nats {
            if let Ok(installation) = event_store::store::installation(&self.pool).await {
                names = Some((
                    nats.url.clone(),
                    event_store::nats::Names::of(nats, installation),
                ));
            }
        }
        self.cancel.cancel();
        if let Some(t) = self.task.take() {
            let r = tokio::time::timeout(Duration::from_secs(15), t).await;
            assert!(r.is_ok(), "application did not stop within 15 s");
        }
        if let Some((url, names)) = names {
            if let Ok(client) = async_nats::connect(url.as_str()).await {
                let _ = async_nats::jetstream::new(client)
                    .delete_stream(&names.stream)
                    .await;
            }
        }
        self.pool.close().await;
        drop_database(&self.settings.database_url).await;
    }
}

/// Drops the test's database (a failed test leaves its database behind for inspection).
pub async fn drop_database(url: &str) {
    let (server, name) = url.rsplit_once('/').unwrap();
    if let Ok(admin) = PgPool::connect(&format!("{server}/postgres")).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&admin)
            .await;
        admin.close().await;
    }
}

/// The cursor of the last committed event (no horizon).
pub async fn committed_head(pool: &PgPool) -> Cursor {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT tx_id::text::bigint, global_position FROM events ORDER BY tx_id DESC, global_position DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await
    .unwrap();
    row.map_or(Cursor::ZERO, |(t, p)| Cursor::new(t, p))
}

/// md5 over every row of `table` (in the order of their text, so any table works).
pub async fn checksum(pool: &PgPool, table: &str) -> String {
    sqlx::query_scalar(&format!(
        "SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), 'empty') FROM {table} t"
    ))
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Reads `{"id", "cursor"}` from a command's answer.
pub async fn accepted(res: reqwest::Response) -> (Uuid, Cursor) {
    let v: Value = res.json().await.unwrap();
    let id = v["id"].as_str().unwrap().parse().unwrap();
    let cursor = v["cursor"].as_str().unwrap().parse().unwrap();
    (id, cursor)
}

/// Appends a raw contact-created event (for tests of the log itself).
pub async fn append_raw(db: impl sqlx::PgExecutor<'_>, tenant: Uuid, n: usize) -> String {
    let id = format!("{tenant}:{}", Uuid::now_v7());
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('contact', $1, 1, 'ContactCreated', '1.0', $2, '{}')",
    )
    .bind(&id)
    .bind(serde_json::json!({"ContactCreated": {"email": format!("raw{n}@example.org"),
        "first_name": null, "last_name": null, "fields": {}, "tags": []}}))
    .execute(db)
    .await
    .unwrap();
    id
}

/// Every message in the stream, in stream order: (msg id, cursor), leaving out the
/// organization events of the harness's own tenant set-up.
pub async fn stream_contents(bus: &event_store::nats::Bus) -> Vec<(String, Cursor)> {
    let stream = bus.stream().await.unwrap();
    let mut n = stream.get_info().await.unwrap().state.messages as usize;
    let consumer: async_nats::jetstream::consumer::PullConsumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            ack_policy: async_nats::jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut out = Vec::new();
    let mut msgs = consumer.messages().await.unwrap();
    while out.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(5), futures::StreamExt::next(&mut msgs))
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let h = m.headers.as_ref().unwrap();
        let msg_id = h.get(event_store::nats::MSG_ID).unwrap().as_str();
        if msg_id.starts_with("organization/") {
            n -= 1;
            continue;
        }
        out.push((
            h.get(event_store::nats::MSG_ID)
                .unwrap()
                .as_str()
                .to_owned(),
            h.get(event_store::nats::CURSOR)
                .unwrap()
                .as_str()
                .parse()
                .unwrap(),
        ));
    }
    out
}
