//! Journeys as users read them, from the `journey` and `journey_execution` streams.
//!
//! Two projections:
//! - [`projector`]: `journeys`, which owns four tables written under one checkpoint —
//!   [`summaries`] (`journey_summaries`: one row per journey, its lifecycle and counters),
//!   [`executions`] (`journey_executions`: one row per execution — which journey, version and
//!   contact it is of, where it is, the branches it took), and [`figures`]
//!   (`journey_version_stats`, `journey_step_stats`: counters per version and per step).
//!   Execution events name their journey only when entered, so the figures need each
//!   execution's row: one projection keeps both, and they never disagree.
//! - [`versions`]: `journey_version_defs`, the published versions.
//!
//! [`read`] holds the queries the API runs over them.

pub mod executions;
pub mod figures;
pub mod projector;
pub mod read;
pub mod summaries;
pub mod versions;

/// The tables of the `journeys` projection besides `journey_summaries`.
pub const EXECUTIONS: &str = "journey_executions";
pub const VERSION_STATS: &str = "journey_version_stats";
pub const STEP_STATS: &str = "journey_step_stats";
