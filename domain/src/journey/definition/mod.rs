//! What a journey is made of: its triggers, its graph of steps, exit criteria, goal and
//! re-entry policy — and the checks a draft must pass to be published. `trigger`: how
//! contacts enter; `step`: the graph's steps; `check`: the draft and publish checks; `graph`:
//! reachability and cycles.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, NaiveTime, Utc, Weekday};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::delivery::{Channel, Sender};
use crate::segment::rule::{Checked, Rule};

mod check;
mod graph;
mod step;
mod trigger;

pub use check::Problem;
pub use step::*;
pub use trigger::*;

/// Most steps in a journey.
pub const MAX_STEPS: usize = 500;
/// Most characters of a step id, a branch key or a data key.
pub const MAX_KEY: usize = 64;
/// Most characters of a journey's name.
pub const MAX_NAME: usize = 200;
/// The longest wait a step may configure (two years).
pub const MAX_WAIT_MINUTES: u64 = 2 * 366 * 24 * 60;

/// A journey's definition: edited freely as a draft, frozen as a version when published.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Definition {
    #[serde(default)]
    pub triggers: Vec<Trigger>,
    #[serde(default)]
    pub steps: Vec<Step>,
    /// Leaving wherever they are when one of these happens.
    #[serde(default)]
    pub exit_criteria: Vec<ExitCriterion>,
    /// What counts as a conversion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<Goal>,
    #[serde(default)]
    pub reentry: Reentry,
    /// Messages that would go out in these hours (the contact's local time) wait until the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<QuietHours>,
}

impl Definition {
    /// The step `id`.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }
}

/// Leave the journey when this happens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExitCriterion {
    Event {
        name: String,
        #[serde(default)]
        conditions: Vec<PropertyCondition>,
    },
    SegmentExited {
        segment_id: Uuid,
    },
}

/// A conversion: the contact records this event after entering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Goal {
    pub name: String,
    #[serde(default)]
    pub conditions: Vec<PropertyCondition>,
}

/// May a contact enter again?
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "policy", rename_all = "snake_case")]
pub enum Reentry {
    /// Once ever.
    #[default]
    Never,
    /// Again once their last entry is at least this long ago and they are not in it now.
    After { period: Span },
    /// Any number of times, at the same time too.
    Concurrent,
}

/// Hours in which no message goes out (`start` to `end`, `HH:MM`, the contact's local time;
/// `start` after `end` spans midnight).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuietHours {
    pub start: String,
    pub end: String,
}

/// `HH:MM` as a time of day.
pub fn parse_time(s: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(s, "%H:%M").ok()
}

/// Signals the journey engine and the trigger worker route by name: a custom event is its own
/// name; membership changes are `segment_entered:<id>` / `segment_exited:<id>`.
pub fn segment_signal(entered: bool, segment: Uuid) -> String {
    if entered {
        format!("segment_entered:{segment}")
    } else {
        format!("segment_exited:{segment}")
    }
}
