//! `bench smoke`: a few seconds of each hot path at a small scale, one after the other, so
//! that every CI run prints the figures of the change it tests (`.ci/run` runs it). The
//! figures are printed, never asserted: a shared machine's seconds are no pass mark; a
//! regression shows as a figure that moved between two runs' logs, and the full-size
//! scenarios measure it.

use super::{BenchArgs, Scenario};
use crate::settings::Role;
use crate::Settings;

fn args(seconds: u64, rate: u64) -> BenchArgs {
    BenchArgs {
        scenario: Scenario::Smoke,
        seconds,
        warmup: 1,
        clients: 8,
        rate,
        max_in_flight: 256,
        events: None,
        rows: None,
        campaigns: None,
        timers: None,
    }
}

pub async fn run(settings: &Settings) -> anyhow::Result<()> {
    let mut postgres = settings.clone();
    postgres.nats = None;
    eprintln!("bench smoke: commands, every role, Postgres tail");
    super::commands::run(&postgres, &args(3, 1000)).await?;
    if settings.nats.is_some() {
        eprintln!("bench smoke: commands, every role, JetStream");
        super::commands::run(settings, &args(3, 1000)).await?;
    }
    eprintln!("bench smoke: commands, the command path alone");
    let mut api = postgres.clone();
    api.roles = [Role::Commands, Role::Queries].into();
    super::commands::run(&api, &args(3, 1000)).await?;
    eprintln!("bench smoke: lag");
    super::lag::run(settings, &args(3, 200)).await?;
    eprintln!("bench smoke: a campaign's send");
    super::campaign_send::run(&postgres, 3_000).await?;
    if settings.nats.is_some() {
        super::campaign_send::run(settings, 3_000).await?;
    }
    eprintln!("bench smoke: delivery");
    super::delivery::run(&postgres, &args(3, 100), 3_000).await?;
    eprintln!("bench smoke: journeys");
    super::journeys::run(&postgres, 3_000, 30_000).await?;
    eprintln!("bench smoke: import");
    super::import::run(&postgres, 20_000).await?;
    eprintln!("bench smoke: rebuild");
    super::rebuild::run(&postgres, 50_000).await
}
