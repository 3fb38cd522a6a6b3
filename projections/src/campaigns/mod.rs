//! Campaigns as users read them: three read models built from the campaigns' own events and
//! their delivery jobs' events (which name their campaign, variant and channel).
//!
//! - [`facts`]: what a job event means to its campaign (the one reading the three share).
//! - [`summaries`]: `campaign_summaries`, one row per campaign, lifecycle and counters.
//! - [`rollups`]: `campaign_rollups`, figures per variant, channel and hour or day.
//! - [`links`]: `campaign_link_clicks`, clicks per link.
//! - [`list`]: reading summaries: one campaign, and the list with its filters and sorts.

pub mod facts;
pub mod links;
pub mod list;
pub mod rollups;
pub mod summaries;
