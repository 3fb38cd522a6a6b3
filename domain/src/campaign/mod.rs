//! Blast campaigns: a template (or an A/B test's variants) sent to the members of segments,
//! now, at a time, or at a local time in each recipient's zone.
//!
//! - [`settings`]: what a campaign sends, to whom and how; schedules and when each recipient
//!   is due; the recipients' job ids.
//! - [`aggregate`]: the `Campaign` aggregate, its lifecycle and its A/B decision.

pub mod aggregate;
pub mod settings;

#[cfg(test)]
mod tests;

pub use aggregate::{
    winner, Campaign, CampaignCommand, CampaignError, CampaignEvent, Phase, Pinned, Status,
    VariantFigures,
};
pub use settings::{job_id, AbTest, Schedule, Settings, SettingsError, Variant, WinnerMetric};
