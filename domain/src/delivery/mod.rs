//! Delivery: the DeliveryJob aggregate, one per message, from request to its last tracking
//! event (requested → suppressed | deferred → dispatching → sent | failed | given up →
//! delivered | bounced | complained, with opens, clicks and unsubscribes; in doubt after a
//! crash between dispatching and the provider's answer), and [`warmup`] schedules of sending
//! domains (configured per organization and domain by [`warmup_config`]), and the
//! [`suppression`] list (one entry per organization, channel and
//! address), and [`provider_config`]: the channel providers an organization configures
//! (settings in the log, credentials never).

mod job;
pub mod provider_config;
#[cfg(test)]
mod provider_config_tests;
pub mod suppression;
#[cfg(test)]
mod tests;
pub mod warmup;
pub mod warmup_config;
#[cfg(test)]
mod warmup_config_tests;

pub use job::{
    BounceKind, CampaignRef, Channel, Deferral, DeliveryCommand, DeliveryError, DeliveryEvent,
    DeliveryJob, Request, Sender, Source, Status, Suppression,
};
