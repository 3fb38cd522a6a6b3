//! The `JourneyExecution` aggregate — one contact's way through one version of a journey — and
//! the engine that moves it: [`advance`] runs steps until the execution waits or ends, and
//! says what it did as events. The worker derives every effect (a delivery job, a contact
//! change, a custom event, an entry into another journey) from those events and writes it
//! in the same transaction, so each effect happens once per step run.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use super::aggregate::Version;
use super::definition::{
    parse_time, properties_match, segment_signal, BalancedPath, Condition, ContactChange,
    Engagement, ExitCriterion, Step, StepKind, Until,
};
use super::timing;
use crate::delivery::Channel;
use crate::segment::eval::ContactFacts;

/// Most steps one call of [`advance`] runs (a guard: publishing refuses busy cycles).
pub const MAX_STEPS_PER_RUN: usize = 100;
/// The signal that ends executions of an archived journey.
pub const ARCHIVED: &str = "journey_archived";
/// The signal a gate reacts to: anything about the contact changed.
pub const CHANGED: &str = "contact_changed";

mod engine;
mod event;
mod state;
mod step;

pub use engine::*;
pub use event::*;
pub use state::*;
