//! `mauntic bench <scenario>`: measurements that print their figures.

use clap::{Args, ValueEnum};

use crate::Settings;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Scenario {
    /// Contact commands through the HTTP API.
    Commands,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    pub scenario: Scenario,
}

pub async fn run(_settings: Settings, args: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("bench {:?}: being written", args.scenario)
}
