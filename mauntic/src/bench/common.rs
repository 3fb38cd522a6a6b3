//! What every scenario shares: fresh databases and streams, the in-process application,
//! latency histograms and printing figures.

use std::fmt::Display;
use std::time::Duration;

use anyhow::{bail, Context};
use async_nats::jetstream;
use event_store::nats::NatsConfig;
use hdrhistogram::Histogram;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::settings::Role;
use crate::{Application, Settings};

/// The aggregate type of contacts in the log (`<Contact as cqrs_es::Aggregate>::TYPE`).
pub const CONTACT: &str = "contact";

/// Prints the header of a block of figures.
pub fn header(title: &str) {
    println!();
    println!("== bench {title} ==");
}

/// Prints one figure as `name: value unit`.
pub fn figure(name: &str, value: impl Display, unit: &str) {
    println!("{name}: {value} {unit}");
}

/// Prints a rate or a duration with one decimal.
pub fn figure_f(name: &str, value: f64, unit: &str) {
    figure(name, format!("{value:.1}"), unit);
}

/// Latencies in microseconds, from 1 µs to 10 minutes, 3 significant digits.
pub struct Latencies(Histogram<u64>);

impl Latencies {
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self(
            Histogram::new_with_bounds(1, 600_000_000, 3).context("creating a histogram")?,
        ))
    }

    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
        self.0.saturating_record(us);
    }

    pub fn add(&mut self, other: &Latencies) -> anyhow::Result<()> {
        self.0.add(&other.0).context("merging histograms")
    }

    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// The latency at quantile `q` in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.0.value_at_quantile(q) as f64 / 1000.0
    }

    fn ms(&self, q: f64) -> String {
        format!("{:.2}", self.0.value_at_quantile(q) as f64 / 1000.0)
    }

    /// Prints `<prefix>_p50` … in milliseconds; `quantiles` among 50, 95, 99; then max.
    pub fn print(&self, prefix: &str, quantiles: &[u32]) {
        if self.0.is_empty() {
            figure(&format!("{prefix}_samples"), 0, "count");
            return;
        }
        for q in quantiles {
            figure(
                &format!("{prefix}_p{q}"),
                self.ms(f64::from(*q) / 100.0),
                "ms",
            );
        }
        figure(
            &format!("{prefix}_max"),
            format!("{:.2}", self.0.max() as f64 / 1000.0),
            "ms",
        );
    }
}

/// `url` with its database name replaced by `db`.
pub fn with_database(url: &str, db: &str) -> anyhow::Result<String> {
    let authority_at = url
        .find("://")
        .context("DATABASE_URL is not a postgres:// URL")?
        + 3;
    let (scheme, rest) = url.split_at(authority_at);
    let (before_query, query) = rest.split_at(rest.find('?').unwrap_or(rest.len()));
    let authority = before_query
        .find('/')
        .map_or(before_query, |i| &before_query[..i]);
    Ok(format!("{scheme}{authority}/{db}{query}"))
}

/// Drops database `db` (closing its sessions) and returns `settings` pointing at it; the
/// caller creates and migrates it with `app::connect` or `Application::build`.
pub async fn fresh_database(settings: &Settings, db: &str) -> anyhow::Result<Settings> {
    if !db.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
        bail!("bench database names are lower-case identifiers, not {db:?}");
    }
    let admin = with_database(&settings.database_url, "postgres")?;
    let mut conn = PgConnection::connect(&admin)
        .await
        .context("connecting to the postgres database to drop the bench database")?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .with_context(|| format!("dropping database {db}"))?;
    conn.close().await?;
    let mut out = settings.clone();
    out.database_url = with_database(&settings.database_url, db)?;
    Ok(out)
}

/// A stream and subject prefix of its own for one run.
pub fn fresh_nats(url: &str) -> NatsConfig {
    let tag = Uuid::new_v4().simple().to_string();
    let tag = tag.get(..12).unwrap_or(&tag).to_owned();
    NatsConfig {
        url: url.to_owned(),
        stream: Some(format!("BENCH_{tag}")),
        subject_prefix: Some(format!("bench{tag}")),
    }
}

async fn jetstream_of(cfg: &NatsConfig) -> anyhow::Result<jetstream::Context> {
    let client = async_nats::ConnectOptions::new()
        .name("mauntic-bench")
        .connection_timeout(Duration::from_secs(5))
        .connect(cfg.url.as_str())
        .await
        .with_context(|| format!("connecting to NATS at {}", cfg.url))?;
    Ok(jetstream::new(client))
}

/// The stream name of `cfg` (a bench always names its own).
fn stream_name(cfg: &NatsConfig) -> anyhow::Result<&str> {
    cfg.stream
        .as_deref()
        .context("a bench's NATS configuration names its stream (fresh_nats)")
}

/// How many messages the stream of `cfg` holds.
pub async fn stream_messages(cfg: &NatsConfig) -> anyhow::Result<u64> {
    let js = jetstream_of(cfg).await?;
    let name = stream_name(cfg)?;
    let stream = js
        .get_stream(name)
        .await
        .with_context(|| format!("finding stream {name}"))?;
    let info = stream.get_info().await.context("reading the stream info")?;
    Ok(info.state.messages)
}

/// Deletes the stream of `cfg`.
pub async fn delete_stream(cfg: &NatsConfig) -> anyhow::Result<()> {
    let js = jetstream_of(cfg).await?;
    let name = stream_name(cfg)?;
    js.delete_stream(name)
        .await
        .with_context(|| format!("deleting stream {name}"))?;
    eprintln!("bench: deleted stream {name}");
    Ok(())
}

/// The application running in this process, every role, on an ephemeral port.
pub struct RunningApp {
    pub base_url: String,
    pub settings: Settings,
    /// The application's pool (closed once the application stops).
    pub pool: PgPool,
    cancel: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningApp {
    /// Builds (creating and migrating the database) and starts the application.
    pub async fn start(settings: Settings) -> anyhow::Result<Self> {
        // Every role unless MAUNTIC_ROLES narrows it (e.g. `api` to measure the command path
        // without the relay and projectors competing for the same cores).
        let roles = match std::env::var("MAUNTIC_ROLES") {
            Err(_) => Role::all(),
            Ok(_) => settings.roles.clone(),
        };
        Self::start_roles(settings, roles).await
    }

    /// [`Self::start`] with these roles only (a scenario that runs one worker itself).
    pub async fn start_roles(
        mut settings: Settings,
        roles: std::collections::BTreeSet<Role>,
    ) -> anyhow::Result<Self> {
        settings.http_addr = "127.0.0.1:0".parse().context("the bench address")?;
        settings.roles = roles;
        let app = Application::build(settings.clone()).await?;
        let addr = app.addr.context("the application serves no HTTP")?;
        let pool = app.pool.clone();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(app.run(cancel.clone()));
        Ok(Self {
            base_url: format!("http://{addr}"),
            settings,
            pool,
            cancel,
            task,
        })
    }

    /// A tenant (organization and admin key) to drive the API with.
    pub async fn tenant(&self) -> anyhow::Result<commands::identity::admin::NewTenant> {
        let s = crate::http::command_state(&self.settings, self.pool.clone())?;
        commands::identity::admin::create_tenant(&s, "bench").await
    }

    /// A new organization, the command services on this application's pool, and the
    /// metadata a bench's own commands carry.
    pub async fn organization(
        &self,
    ) -> anyhow::Result<(
        uuid::Uuid,
        commands::CommandState,
        event_store::EventMetadata,
    )> {
        let t = self.tenant().await?.tenant_id;
        let state = crate::http::command_state(&self.settings, self.pool.clone())?;
        let meta = event_store::EventMetadata {
            tenant_id: Some(t),
            actor: Some("system:bench".into()),
            ..Default::default()
        };
        Ok((t, state, meta))
    }

    /// Waits until every reader of the log this application runs (the projections, and the
    /// segment evaluator and journey triggers with the workers) has reached the events
    /// committed so far; how long that took. A phase measured after a heavier one starts
    /// from here, not while the readers still catch up with its backlog.
    pub async fn caught_up(&self, within: Duration) -> anyhow::Result<Duration> {
        let started = std::time::Instant::now();
        let head = event_store::reader::committed_head(&self.pool).await?;
        let mut readers: Vec<&str> = Vec::new();
        if self.settings.roles.contains(&Role::Projector) {
            readers.extend(projections::all().iter().map(|p| p.name()));
        }
        if self.settings.roles.contains(&Role::Workers) {
            readers.push(workers::segments::evaluator::CHECKPOINT);
            readers.push(workers::journeys::triggers::CHECKPOINT);
        }
        for name in readers {
            let left = within.saturating_sub(started.elapsed());
            let reached = projections::status::wait_for(&self.pool, name, head, left).await?;
            anyhow::ensure!(reached, "{name} did not reach {head} within {within:?}");
        }
        Ok(started.elapsed())
    }

    /// Stops every role and reports how the application ended.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.cancel.cancel();
        match tokio::time::timeout(Duration::from_secs(30), self.task).await {
            Err(_) => bail!("the application did not stop within 30 s"),
            Ok(Err(e)) => Err(e).context("the application task panicked"),
            Ok(Ok(r)) => r.context("the application failed"),
        }
    }
}

/// Events per second, guarding against a zero duration.
pub fn per_second(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}
