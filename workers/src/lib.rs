//! Process managers: long-running loops that react to the log and write back to it.
//!
//! - [`segments`]: keeping dynamic segment memberships current (the evaluator, which
//!   follows contact changes, and the refresher, which re-evaluates whole segments).
//! - [`campaigns`]: the campaign worker (scheduled starts, fan-outs, A/B decisions,
//!   completion, cancellation).
//! - [`delivery`]: messages as providers take them, and the providers (SMTP, HTTP APIs).

pub mod campaigns;
pub mod delivery;
pub mod journeys;
pub mod segments;
