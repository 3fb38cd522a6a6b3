//! The application: every role wired together, started and stopped as one.

use std::net::SocketAddr;

use anyhow::Context;
use event_store::checkpoint;
use event_store::feed::Feed;
use event_store::nats::Bus;
use event_store::relay::Relay;
use event_store::source::{EventSource, PgTail};
use event_store::store;
use event_store::wakeup::Wakeup;
use projections::Target;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::settings::{Role, Settings};

/// Events the shared reader of the log keeps for the tails at its head (about 1 KB each):
/// a tail further behind reads Postgres itself until it catches up.
const FEED_WINDOW: usize = 30_000;

pub struct Application {
    pub settings: Settings,
    pub pool: PgPool,
    pub bus: Option<Bus>,
    listener: Option<TcpListener>,
    /// The bound HTTP address (the real port when configured with port 0).
    pub addr: Option<SocketAddr>,
    /// The command side, built once for every part of the process that writes (the command
    /// API, tracking and report routes, imports, workers): one notifier of appends, one
    /// registry of running imports.
    pub commands: Option<commands::CommandState>,
}

/// Connects to the database (creating and migrating it) and, if configured, to NATS.
pub async fn connect(settings: &Settings) -> anyhow::Result<(PgPool, Option<Bus>)> {
    event_store::shred::configure(settings.master_key.map(|k| k.0))
        .context("configuring the master key")?;
    event_store::shred::cipher::configure_previous(settings.master_key_previous.map(|k| k.0))
        .context("configuring the previous master key")?;
    store::create_database_if_missing(&settings.database_url)
        .await
        .context("creating the database")?;
    let pool = store::connect(&settings.database_url, settings.pool_size)
        .await
        .context("connecting to Postgres")?;
    store::migrate(&pool).await.context("applying migrations")?;
    // Keyed digests (suppression entry ids) use the installation's stored keys, which
    // outlive master-key rotations.
    event_store::shred::derived::load(&pool, &settings.provider_keys())
        .await
        .context("loading the derived keys (derived_keys)")?;
    let bus = match &settings.nats {
        Some(cfg) => {
            // Everything this installation puts on NATS is scoped by its database's id.
            let installation = store::installation(&pool)
                .await
                .context("reading the installation id")?;
            Some(
                Bus::connect(cfg.clone(), installation)
                    .await
                    .context("connecting to NATS JetStream")?,
            )
        }
        None => None,
    };
    Ok((pool, bus))
}

/// The delivery worker of these settings: the organizations' providers, else the platform
/// relay (`MAUNTIC_DELIVERY_SMTP`), else the development mailbox.
pub fn delivery_worker(
    settings: &Settings,
    pool: &PgPool,
    commands: &commands::CommandState,
) -> anyhow::Result<std::sync::Arc<workers::delivery::worker::Worker>> {
    let platform_email = match &settings.delivery.smtp {
        Some(config) => Some(std::sync::Arc::from(
            workers::delivery::providers::build("smtp", config).context("MAUNTIC_DELIVERY_SMTP")?,
        )),
        None => None,
    };
    Ok(std::sync::Arc::new(workers::delivery::worker::Worker::new(
        pool.clone(),
        commands.delivery.jobs.clone(),
        settings.clock.clone(),
        settings.delivery.worker.clone(),
        std::sync::Arc::new(workers::delivery::resolve::Configured::new(
            pool.clone(),
            std::sync::Arc::new(settings.provider_keys()),
            platform_email,
        )),
        Some(crate::http::tracker(settings)?),
    )))
}

impl Application {
    /// Everything a run needs, ready to go: database migrated, NATS stream made sure of, HTTP
    /// port bound.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let (pool, bus) = connect(&settings).await?;
        let serves_http = settings.roles.contains(&Role::Commands)
            || settings.roles.contains(&Role::Queries)
            || settings.roles.contains(&Role::Web);
        let (listener, addr) = if serves_http {
            let l = TcpListener::bind(settings.http_addr)
                .await
                .with_context(|| format!("binding {}", settings.http_addr))?;
            let a = l.local_addr()?;
            (Some(l), Some(a))
        } else {
            (None, None)
        };
        let commands = (settings.roles.contains(&Role::Commands)
            || settings.roles.contains(&Role::Workers)
            || settings.roles.contains(&Role::Web))
        .then(|| crate::http::command_state(&settings, pool.clone()))
        .transpose()?;
        Ok(Self {
            settings,
            pool,
            bus,
            listener,
            addr,
            commands,
        })
    }

    /// Runs every role until `cancel`, then stops them all and reports how each ended.
    pub async fn run(self, cancel: CancellationToken) -> anyhow::Result<()> {
        let mut tasks: JoinSet<(&'static str, anyhow::Result<()>)> = JoinSet::new();
        let wake = Wakeup::listen(self.pool.clone(), cancel.clone());
        // Every tail of the log in this process (projections, the segment evaluator, the
        // journey triggers) takes its events from one shared window, filled from the
        // installation's JetStream stream (one consumer) or from the Postgres log.
        let from_jetstream = self.settings.projects_from_jetstream()?;
        let tails = self.settings.roles.contains(&Role::Projector)
            || self.settings.roles.contains(&Role::Workers);
        let feed = match (&self.bus, from_jetstream) {
            _ if !tails => None,
            (Some(bus), true) => Some(Feed::start_jetstream(
                bus.clone(),
                FEED_WINDOW,
                cancel.clone(),
            )),
            _ => Some(Feed::start(
                self.pool.clone(),
                wake.clone(),
                FEED_WINDOW,
                cancel.clone(),
            )),
        };
        let tail = |types: Option<&[&str]>| -> Box<dyn EventSource> {
            match &feed {
                Some(feed) => Box::new(feed.tail(self.pool.clone(), wake.clone(), types)),
                None => Box::new(PgTail::new(self.pool.clone(), wake.clone()).with_types(types)),
            }
        };

        if let Some(listener) = self.listener {
            let router = crate::http::router(
                &self.settings,
                self.pool.clone(),
                self.bus.clone(),
                self.commands.as_ref(),
            )?
            .into_make_service_with_connect_info::<SocketAddr>();
            let c = cancel.clone();
            tracing::info!(addr = ?self.addr, "serving HTTP");
            tasks.spawn(async move {
                let r = axum::serve(listener, router)
                    .with_graceful_shutdown(async move { c.cancelled().await })
                    .await
                    .context("HTTP server");
                ("http", r)
            });
        }
        if let (true, Some(state)) = (
            self.settings.roles.contains(&Role::Commands),
            self.commands.clone(),
        ) {
            // Imports left running by a stopped process are taken up again.
            let c = cancel.clone();
            tasks.spawn(async move {
                commands::imports::engine::resume(state, std::time::Duration::from_secs(5), c)
                    .await;
                ("imports", Ok(()))
            });
        }
        if self.settings.roles.contains(&Role::Relay) {
            match &self.bus {
                Some(bus) => {
                    let relay = Relay::new(self.pool.clone(), bus.clone());
                    let (w, c) = (wake.clone(), cancel.clone());
                    tasks.spawn(async move {
                        relay.run(w, c).await;
                        ("relay", Ok(()))
                    });
                }
                None => tracing::info!("relay: NATS_URL not set; subscribers tail Postgres"),
            }
        }
        if self.settings.roles.contains(&Role::Projector) {
            let mover = checkpoint::Mover::start(self.pool.clone(), cancel.clone());
            for p in projections::all() {
                let source = tail(p.aggregate_types());
                let (pool, m, c) = (self.pool.clone(), mover.clone(), cancel.clone());
                let target = Target::live(p.as_ref());
                tasks.spawn(async move {
                    projections::runner::run(pool, p, target, source, m, c).await;
                    ("projector", Ok(()))
                });
            }
        }
        if self.settings.roles.contains(&Role::Workers) {
            let source = tail(None);
            let evaluator = workers::segments::evaluator::Evaluator::new(
                self.pool.clone(),
                self.settings.clock.clone(),
            )
            .await
            .context("loading segment definitions")?;
            let c = cancel.clone();
            tasks.spawn(async move {
                evaluator.run(source, c).await;
                ("segment evaluator", Ok(()))
            });
            let commands = self
                .commands
                .clone()
                .context("the workers role builds the command side")?;
            let delivery = delivery_worker(&self.settings, &self.pool, &commands)?;
            let (w, c) = (wake.clone(), cancel.clone());
            tasks.spawn(async move {
                delivery.run(w, c).await;
                ("delivery worker", Ok(()))
            });
            let campaigns = workers::campaigns::CampaignWorker::new(
                self.pool.clone(),
                commands.campaigns.writer().clone(),
                self.settings.clock.clone(),
                self.settings.campaigns.clone(),
            );
            let (w, c) = (wake.clone(), cancel.clone());
            tasks.spawn(async move {
                campaigns.run(w, c).await;
                ("campaign worker", Ok(()))
            });
            for _ in 0..self.settings.journeys.loops.max(1) {
                let runner = workers::journeys::JourneyRunner::new(
                    commands.clone(),
                    self.settings.clock.clone(),
                    self.settings.journeys.clone(),
                );
                let (w, c) = (wake.clone(), cancel.clone());
                tasks.spawn(async move {
                    runner.run(w, c).await;
                    ("journey runner", Ok(()))
                });
            }
            let source = tail(None);
            let follower = workers::journeys::TriggerFollower::new(
                self.pool.clone(),
                self.settings.clock.clone(),
                commands.journeys.writer().executions.clone(),
            );
            let c = cancel.clone();
            tasks.spawn(async move {
                follower.run(source, c).await;
                ("journey triggers", Ok(()))
            });
            let refresher = workers::segments::refresher::Refresher::new(
                self.pool.clone(),
                self.settings.clock.clone(),
                self.settings.segment_refresh_every,
            );
            let c = cancel.clone();
            tasks.spawn(async move {
                refresher.run(c).await;
                ("segment refresher", Ok(()))
            });
        }

        let mut first_error = None;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((name, Ok(()))) => tracing::info!(task = name, "stopped"),
                Ok((name, Err(e))) => {
                    tracing::error!(task = name, error = ?e, "failed; stopping everything");
                    cancel.cancel();
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    tracing::error!(error = %e, "a task panicked; stopping everything");
                    cancel.cancel();
                    first_error.get_or_insert(e.into());
                }
            }
            if !cancel.is_cancelled() {
                tracing::error!("a task ended on its own; stopping everything");
                cancel.cancel();
            }
        }
        self.pool.close().await;
        first_error.map_or(Ok(()), Err)
    }
}
