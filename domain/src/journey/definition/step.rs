//! The steps of a journey's graph: what each kind does, its configuration, and where it
//! leads.

use super::*;

/// One step of the graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub id: String,
    #[serde(flatten)]
    pub kind: StepKind,
    /// The step that follows (steps with branches route through `branches` instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// Where each outcome goes, by branch key (`yes`/`no`, `event`/`timeout`, a path key).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub branches: BTreeMap<String, String>,
    /// Where later steps and templates read this step's result (`journey.<data_key>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_key: Option<String>,
    /// The step's place on the canvas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Position {
    pub x: f64,
    pub y: f64,
}

/// A step's type and its typed configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "config", rename_all = "snake_case")]
pub enum StepKind {
    ActionEmail(Message),
    ActionSms(Message),
    ActionPush(Message),
    ActionWebhook(Message),
    ActionUpdateContact(ContactChange),
    DelayDuration(Span),
    DelayUntil(Until),
    DelayEvent(WaitEvent),
    SplitRandom(Paths),
    SplitConditional(Condition),
    Gate(Gate),
    Exit(Empty),
    Experiment(Paths),
    Balancer(Balancer),
    Link(Link),
    Event(EmitEvent),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// A message step: the template sent (its published version when the step runs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub template_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Sender>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<Sender>,
}

/// Changes to the contact: fields set (`null` unsets), tags added and removed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContactChange {
    #[serde(default)]
    pub fields: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub add_tags: Vec<String>,
    #[serde(default)]
    pub remove_tags: Vec<String>,
}

/// A length of time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    #[serde(default)]
    pub days: u32,
    #[serde(default)]
    pub hours: u32,
    #[serde(default)]
    pub minutes: u32,
}

impl Span {
    pub fn minutes_total(&self) -> u64 {
        u64::from(self.days) * 1440 + u64::from(self.hours) * 60 + u64::from(self.minutes)
    }

    pub fn duration(&self) -> Duration {
        Duration::minutes(self.minutes_total() as i64)
    }
}

/// Until when a `delay_until` step waits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Until {
    /// A moment.
    At { at: DateTime<Utc> },
    /// The next `time` (`HH:MM`) in the contact's zone on one of `weekdays` (empty: any day).
    TimeOfDay {
        time: String,
        #[serde(default)]
        weekdays: Vec<Weekday>,
    },
    /// A date (or instant) field of the contact, `offset_days` later (negative: earlier), at
    /// `time` in the contact's zone (a date field; default midnight).
    DateField {
        field: String,
        #[serde(default)]
        offset_days: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        time: Option<String>,
    },
}

/// Wait for a contact event (`event` branch) or until the timeout (`timeout` branch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitEvent {
    pub name: String,
    #[serde(default)]
    pub conditions: Vec<PropertyCondition>,
    pub timeout: Span,
}

/// Weighted paths (`split_random`, `experiment`): each branch key with its weight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paths {
    pub paths: Vec<PathWeight>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathWeight {
    pub key: String,
    pub weight: u32,
}

/// A yes/no question about the contact: the CRM rule language, or what they did with a
/// message an earlier step of this execution sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Condition {
    Rule {
        rule: Rule,
    },
    Message {
        /// The message step.
        step: String,
        engagement: Engagement,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Engagement {
    Delivered,
    Opened,
    Clicked,
}

impl Engagement {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Opened => "opened",
            Self::Clicked => "clicked",
        }
    }
}

/// Wait until `condition` holds (`yes`), at most `timeout` (`timeout`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gate {
    pub condition: Condition,
    pub timeout: Span,
}

/// A random split where each path takes at most `rate_limit` contacts per window; contacts
/// over every path's quota wait for the next window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balancer {
    pub paths: Vec<BalancedPath>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalancedPath {
    pub key: String,
    pub weight: u32,
    pub rate_limit: u32,
    pub per: Window,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    Second,
    Minute,
    Hour,
    Day,
}

impl Window {
    pub fn seconds(self) -> i64 {
        match self {
            Self::Second => 1,
            Self::Minute => 60,
            Self::Hour => 3600,
            Self::Day => 86_400,
        }
    }

    /// The start of the window `at` falls in.
    pub fn start(self, at: DateTime<Utc>) -> DateTime<Utc> {
        let s = self.seconds();
        let t = at.timestamp().div_euclid(s) * s;
        DateTime::from_timestamp(t, 0).unwrap_or(at)
    }
}

/// Enter another journey (or this one again) after at least `delay` (against loops).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub journey_id: Uuid,
    pub delay: LinkDelay,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkDelay {
    #[default]
    #[serde(rename = "1m")]
    OneMinute,
    #[serde(rename = "15m")]
    FifteenMinutes,
    #[serde(rename = "1h")]
    OneHour,
    #[serde(rename = "1d")]
    OneDay,
}

impl LinkDelay {
    pub fn duration(self) -> Duration {
        match self {
            Self::OneMinute => Duration::minutes(1),
            Self::FifteenMinutes => Duration::minutes(15),
            Self::OneHour => Duration::hours(1),
            Self::OneDay => Duration::days(1),
        }
    }
}

/// Record a custom event on the contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmitEvent {
    pub name: String,
    #[serde(default)]
    pub properties: serde_json::Map<String, serde_json::Value>,
}

impl StepKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::ActionEmail(_) => "action_email",
            Self::ActionSms(_) => "action_sms",
            Self::ActionPush(_) => "action_push",
            Self::ActionWebhook(_) => "action_webhook",
            Self::ActionUpdateContact(_) => "action_update_contact",
            Self::DelayDuration(_) => "delay_duration",
            Self::DelayUntil(_) => "delay_until",
            Self::DelayEvent(_) => "delay_event",
            Self::SplitRandom(_) => "split_random",
            Self::SplitConditional(_) => "split_conditional",
            Self::Gate(_) => "gate",
            Self::Exit(_) => "exit",
            Self::Experiment(_) => "experiment",
            Self::Balancer(_) => "balancer",
            Self::Link(_) => "link",
            Self::Event(_) => "event",
        }
    }

    /// The channel of a message step.
    pub fn channel(&self) -> Option<(Channel, &Message)> {
        match self {
            Self::ActionEmail(m) => Some((Channel::Email, m)),
            Self::ActionSms(m) => Some((Channel::Sms, m)),
            Self::ActionPush(m) => Some((Channel::Push, m)),
            Self::ActionWebhook(m) => Some((Channel::Webhook, m)),
            _ => None,
        }
    }

    /// The branch keys the step routes by (`None`: it follows `next`).
    pub fn branch_keys(&self) -> Option<Vec<String>> {
        let keys = |k: &[&str]| Some(k.iter().map(|s| (*s).to_owned()).collect());
        match self {
            Self::SplitConditional(_) => keys(&["yes", "no"]),
            Self::Gate(_) => keys(&["yes", "timeout"]),
            Self::DelayEvent(_) => keys(&["event", "timeout"]),
            Self::SplitRandom(p) | Self::Experiment(p) => {
                Some(p.paths.iter().map(|p| p.key.clone()).collect())
            }
            Self::Balancer(b) => Some(b.paths.iter().map(|p| p.key.clone()).collect()),
            _ => None,
        }
    }

    /// A contact can stay on this step for a while (so a cycle through it is not a busy loop).
    pub fn waits(&self) -> bool {
        matches!(
            self,
            Self::DelayDuration(_)
                | Self::DelayUntil(_)
                | Self::DelayEvent(_)
                | Self::Gate(_)
                | Self::Link(_)
        )
    }

    /// The step ends the execution (no `next`).
    pub fn terminal(&self) -> bool {
        matches!(self, Self::Exit(_))
    }
}
