//! `mauntic bench <scenario>`: measurements that print their figures.
//!
//! Every scenario works in its own database (`mauntic_bench_<scenario>`, dropped and created
//! again at the start, left behind afterwards for inspection) and, when it needs JetStream, in
//! its own stream (`BENCH_<random>`, deleted at the end). Figures go to stdout as
//! `name: value unit` lines under a `== bench <scenario> ==` header; progress goes to stderr.

mod auth;
mod campaign_fanout;
mod campaign_send;
mod campaigns;
mod commands;
mod common;
mod delivery;
mod export;
mod import;
mod journeys;
mod lag;
mod load;
mod rebuild;
mod relay;
mod seed;
mod segments;
mod smoke;

use clap::{Args, ValueEnum};

use crate::Settings;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Scenario {
    /// Contact commands through the HTTP API: a closed loop, then an open loop at --rate.
    Commands,
    /// Commit-to-visible lag of the contacts projection at --rate creates/s, from the
    /// Postgres tail and (with NATS_URL) from JetStream.
    Lag,
    /// Relay throughput from the log to a fresh JetStream stream (needs NATS_URL).
    Relay,
    /// `replay rebuild contacts` over a seeded log.
    Rebuild,
    /// What authentication adds to a request (API key, session cookie) and login
    /// throughput and latency at the configured argon2id cost.
    Auth,
    /// Contacts to CSV, streamed (`--events` contacts, default 1,000,000), with peak RSS.
    Export,
    /// Dynamic segments: counts over `--events` contacts (default 1,000,000), and contact
    /// change → SegmentEntered latency with 50 dynamic segments.
    Segments,
    /// CSV import through the import engine (`--rows`, default 1,000,000; 20 columns),
    /// with peak RSS.
    Import,
    /// The delivery worker: `--events` emails (default 100,000) through render, tracking
    /// and SMTP to smtp-sink as fast as it goes, then latency at `--rate` messages/s, with
    /// peak RSS.
    Delivery,
    /// The campaign list query (filters, sorts, keyset pages) over `--campaigns` campaigns
    /// of one organization (default 100,000), seeded as events and projected: p50/p95/p99.
    CampaignList,
    /// A campaign's fan-out to `--events` recipients (default 1,000,000): jobs created and
    /// visible in the read models, with peak RSS; then the statistics' lag while it sends
    /// for `--seconds`.
    CampaignFanout,
    /// Journeys: `--events` contacts (default 100,000) entering one journey at once (step
    /// executions/s), 10,000 timers due in the same second (fire delay p50/p95/p99), and
    /// `--timers` pending timers (default 1,000,000): claim time and memory.
    Journeys,
    /// A campaign to `--events` recipients (default 20,000) sent by the whole platform
    /// (projectors on JetStream with NATS_URL, else on the Postgres tail): send → the last
    /// message accepted by smtp-sink.
    CampaignSend,
    /// A few seconds of each hot path at a small scale (what CI runs and prints).
    Smoke,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    pub scenario: Scenario,
    /// Measured seconds of each load phase (commands: closed and open loop; lag: each source).
    #[arg(long, default_value_t = 15)]
    pub seconds: u64,
    /// Seconds of unmeasured load before each measured phase.
    #[arg(long, default_value_t = 2)]
    pub warmup: u64,
    /// Concurrent clients of the closed loop.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Requests per second of the open loop (commands) and of the lag load.
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Most requests in flight at once in the open loop.
    #[arg(long, default_value_t = 256)]
    pub max_in_flight: usize,
    /// Events to seed (relay: 200000; rebuild: 1000000).
    #[arg(long)]
    pub events: Option<u64>,
    /// Rows of the generated CSV (import: 1000000).
    #[arg(long)]
    pub rows: Option<u64>,
    /// Campaigns to seed (campaign-list: 100000).
    #[arg(long)]
    pub campaigns: Option<u64>,
    /// Pending timers to hold (journeys: 1000000).
    #[arg(long)]
    pub timers: Option<u64>,
}

pub async fn run(settings: Settings, args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.seconds > 0, "--seconds must be at least 1");
    anyhow::ensure!(args.clients > 0, "--clients must be at least 1");
    anyhow::ensure!(args.rate > 0, "--rate must be at least 1");
    anyhow::ensure!(
        (1..=10_000).contains(&args.max_in_flight),
        "--max-in-flight must be 1 to 10000"
    );
    match args.scenario {
        Scenario::Commands => commands::run(&settings, &args).await,
        Scenario::Lag => lag::run(&settings, &args).await,
        Scenario::Relay => relay::run(&settings, args.events.unwrap_or(200_000)).await,
        Scenario::Rebuild => rebuild::run(&settings, args.events.unwrap_or(1_000_000)).await,
        Scenario::Auth => auth::run(&settings, &args).await,
        Scenario::Export => export::run(&settings, args.events.unwrap_or(1_000_000)).await,
        Scenario::Segments => segments::run(&settings, args.events.unwrap_or(1_000_000)).await,
        Scenario::Import => import::run(&settings, args.rows.unwrap_or(1_000_000)).await,
        Scenario::Delivery => delivery::run(&settings, &args, args.events.unwrap_or(100_000)).await,
        Scenario::CampaignList => {
            campaigns::run(&settings, args.campaigns.unwrap_or(100_000)).await
        }
        Scenario::CampaignFanout => {
            campaign_fanout::run(&settings, args.events.unwrap_or(1_000_000), args.seconds).await
        }
        Scenario::CampaignSend => {
            campaign_send::run(&settings, args.events.unwrap_or(20_000)).await
        }
        Scenario::Smoke => smoke::run(&settings).await,
        Scenario::Journeys => {
            journeys::run(
                &settings,
                args.events.unwrap_or(100_000),
                args.timers.unwrap_or(1_000_000),
            )
            .await
        }
    }
}
