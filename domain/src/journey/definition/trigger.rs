//! How contacts enter a journey: triggers (events, segment entries, schedules) and the
//! property conditions they filter on.

use super::*;

/// How contacts get in. Every trigger enters at its `entry` step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    pub id: String,
    #[serde(flatten)]
    pub kind: TriggerKind,
    /// The step an entry starts at.
    pub entry: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TriggerKind {
    /// A contact event of this name whose properties match `conditions` (all of them).
    Event {
        name: String,
        #[serde(default)]
        conditions: Vec<PropertyCondition>,
    },
    /// Entering a segment.
    SegmentEntered { segment_id: Uuid },
    /// Every member of a segment, on a recurring schedule.
    Schedule {
        segment_id: Uuid,
        recurrence: Recurrence,
    },
    /// Entries through the API (`POST /api/v1/journeys/{id}/entries`).
    Api,
}

impl TriggerKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Event { .. } => "event",
            Self::SegmentEntered { .. } => "segment_entered",
            Self::Schedule { .. } => "schedule",
            Self::Api => "api",
        }
    }
}

/// A recurring schedule: every `interval` days (or weeks, on `weekdays`; or months, on the
/// start's day of the month) at `time` in `time_zone`, from `starts_at`, until `ends_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recurrence {
    pub frequency: Frequency,
    #[serde(default = "one")]
    pub interval: u32,
    /// `HH:MM`.
    pub time: String,
    #[serde(default = "utc")]
    pub time_zone: String,
    /// For a weekly schedule (empty: the start's weekday).
    #[serde(default)]
    pub weekdays: Vec<Weekday>,
    pub starts_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<DateTime<Utc>>,
}

pub(super) fn one() -> u32 {
    1
}

pub(super) fn utc() -> String {
    "UTC".to_owned()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Frequency {
    Daily,
    Weekly,
    Monthly,
}

/// A condition on an event's properties: `property` (a dotted path) compared with `value`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PropertyCondition {
    pub property: String,
    pub op: PropertyOp,
    #[serde(default)]
    pub value: serde_json::Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PropertyOp {
    Equals,
    NotEquals,
    GreaterThan,
    GreaterOrEqual,
    LessThan,
    LessOrEqual,
    Contains,
    Exists,
}

/// Whether `properties` satisfy every condition.
pub fn properties_match(conditions: &[PropertyCondition], properties: &serde_json::Value) -> bool {
    conditions.iter().all(|c| {
        let found = c
            .property
            .split('.')
            .try_fold(properties, |v, key| v.get(key));
        let num = |v: &serde_json::Value| v.as_f64();
        match (c.op, found) {
            (PropertyOp::Exists, f) => f.is_some_and(|v| !v.is_null()),
            (PropertyOp::NotEquals, None) => true,
            (_, None) => false,
            (PropertyOp::Equals, Some(v)) => loosely_equal(v, &c.value),
            (PropertyOp::NotEquals, Some(v)) => !loosely_equal(v, &c.value),
            (PropertyOp::Contains, Some(v)) => match (v, &c.value) {
                (serde_json::Value::String(s), serde_json::Value::String(n)) => {
                    s.to_lowercase().contains(&n.to_lowercase())
                }
                (serde_json::Value::Array(items), n) => items.iter().any(|i| loosely_equal(i, n)),
                _ => false,
            },
            (op, Some(v)) => match (num(v), num(&c.value)) {
                (Some(a), Some(b)) => match op {
                    PropertyOp::GreaterThan => a > b,
                    PropertyOp::GreaterOrEqual => a >= b,
                    PropertyOp::LessThan => a < b,
                    _ => a <= b,
                },
                _ => false,
            },
        }
    })
}

/// Equal as JSON, numbers by value, text case-insensitively.
pub(super) fn loosely_equal(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    match (a, b) {
        (serde_json::Value::String(x), serde_json::Value::String(y)) => {
            x.to_lowercase() == y.to_lowercase()
        }
        (serde_json::Value::Number(x), serde_json::Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}
