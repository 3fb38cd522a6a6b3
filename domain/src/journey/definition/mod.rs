//! What a journey is made of: its triggers, its graph of steps, exit criteria, goal and
//! re-entry policy — and the checks a draft must pass to be published.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, NaiveTime, Utc, Weekday};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::delivery::{Channel, Sender};
use crate::segment::rule::{Checked, Rule};

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

fn one() -> u32 {
    1
}

fn utc() -> String {
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
fn loosely_equal(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    match (a, b) {
        (serde_json::Value::String(x), serde_json::Value::String(y)) => {
            x.to_lowercase() == y.to_lowercase()
        }
        (serde_json::Value::Number(x), serde_json::Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

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

/// What is wrong with a definition, at a path (`steps.<id>.config.timeout`, `triggers.0`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub path: String,
    pub reason: String,
}

fn problem(path: impl Into<String>, reason: impl Into<String>) -> Problem {
    Problem {
        path: path.into(),
        reason: reason.into(),
    }
}

fn key_ok(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= MAX_KEY
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn name_ok(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 100
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

impl Definition {
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// Checks a draft can be saved: its shape (sizes, keys), not whether it is complete.
    pub fn check_draft(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if self.steps.len() > MAX_STEPS {
            out.push(problem(
                "steps",
                format!("at most {MAX_STEPS} steps in a journey"),
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, s) in self.steps.iter().enumerate() {
            if !key_ok(&s.id) {
                out.push(problem(
                    format!("steps.{i}.id"),
                    "1–64 characters of letters, digits, '_' and '-'",
                ));
            } else if !seen.insert(s.id.as_str()) {
                out.push(problem(format!("steps.{i}.id"), "two steps with this id"));
            }
            if let Some(k) = &s.data_key {
                if !key_ok(k) {
                    out.push(problem(
                        format!("steps.{}.data_key", s.id),
                        "1–64 characters of letters, digits, '_' and '-'",
                    ));
                }
            }
        }
        let mut triggers = BTreeSet::new();
        for (i, t) in self.triggers.iter().enumerate() {
            if !key_ok(&t.id) {
                out.push(problem(
                    format!("triggers.{i}.id"),
                    "1–64 characters of letters, digits, '_' and '-'",
                ));
            } else if !triggers.insert(t.id.as_str()) {
                out.push(problem(
                    format!("triggers.{i}.id"),
                    "two triggers with this id",
                ));
            }
        }
        out
    }

    /// Checks the definition can be published, with the rules of its conditions checked by
    /// `check_rule` (against the organization's fields): every problem, each at its path.
    /// On success, the checked rules by step id.
    pub fn check_publish(
        &self,
        mut check_rule: impl FnMut(&Rule) -> Result<Checked, Vec<String>>,
    ) -> Result<BTreeMap<String, Checked>, Vec<Problem>> {
        let mut out = self.check_draft();
        let mut checked = BTreeMap::new();
        let ids: HashMap<&str, &Step> = self.steps.iter().map(|s| (s.id.as_str(), s)).collect();
        if self.steps.is_empty() {
            out.push(problem("steps", "a journey needs at least one step"));
        }
        if self.triggers.is_empty() {
            out.push(problem("triggers", "a journey needs at least one trigger"));
        }
        // One entrance per trigger, and it exists.
        let mut entries = Vec::new();
        for t in &self.triggers {
            let path = format!("triggers.{}", t.id);
            if !ids.contains_key(t.entry.as_str()) {
                out.push(problem(
                    format!("{path}.entry"),
                    format!("no step '{}'", t.entry),
                ));
            } else {
                entries.push(t.entry.as_str());
            }
            match &t.kind {
                TriggerKind::Event { name, conditions } => {
                    check_name(&mut out, &format!("{path}.name"), name);
                    check_conditions(&mut out, &format!("{path}.conditions"), conditions);
                }
                TriggerKind::Schedule { recurrence, .. } => {
                    check_recurrence(&mut out, &format!("{path}.recurrence"), recurrence)
                }
                TriggerKind::SegmentEntered { .. } | TriggerKind::Api => {}
            }
        }
        if self
            .triggers
            .iter()
            .filter(|t| matches!(t.kind, TriggerKind::Api))
            .count()
            > 1
        {
            out.push(problem("triggers", "at most one api trigger"));
        }
        // Edges: every `next` and branch target exists; branches are exactly the step's keys.
        for s in &self.steps {
            let path = format!("steps.{}", s.id);
            if let Some(n) = &s.next {
                if !ids.contains_key(n.as_str()) {
                    out.push(problem(format!("{path}.next"), format!("no step '{n}'")));
                }
            }
            for (key, to) in &s.branches {
                if !ids.contains_key(to.as_str()) {
                    out.push(problem(
                        format!("{path}.branches.{key}"),
                        format!("no step '{to}'"),
                    ));
                }
            }
            match s.kind.branch_keys() {
                Some(keys) => {
                    if s.next.is_some() {
                        out.push(problem(
                            format!("{path}.next"),
                            "a step with branches routes through `branches`",
                        ));
                    }
                    for k in &keys {
                        if !s.branches.contains_key(k) {
                            out.push(problem(
                                format!("{path}.branches.{k}"),
                                "this branch is not routed to a step",
                            ));
                        }
                    }
                    for k in s.branches.keys() {
                        if !keys.contains(k) {
                            out.push(problem(
                                format!("{path}.branches.{k}"),
                                format!("{} has no branch '{k}'", s.kind.as_str()),
                            ));
                        }
                    }
                }
                None => {
                    if !s.branches.is_empty() {
                        out.push(problem(
                            format!("{path}.branches"),
                            format!("{} has no branches; use `next`", s.kind.as_str()),
                        ));
                    }
                    if s.kind.terminal() && s.next.is_some() {
                        out.push(problem(format!("{path}.next"), "exit ends the journey"));
                    }
                }
            }
            check_step(&mut out, &path, s, &ids, &mut checked, &mut check_rule);
        }
        // Every step reachable from an entrance.
        let reachable = reach(&entries, &ids);
        for s in &self.steps {
            if !reachable.contains(s.id.as_str()) {
                out.push(problem(
                    format!("steps.{}", s.id),
                    "not reachable from any trigger",
                ));
            }
        }
        // No cycle made only of steps that pass straight through.
        if let Some(cycle) = busy_cycle(&self.steps, &ids) {
            out.push(problem(
                format!("steps.{}", cycle[0]),
                format!(
                    "cycle without a delay: {} — add a delay step to it",
                    cycle.join(" → ")
                ),
            ));
        }
        for (i, c) in self.exit_criteria.iter().enumerate() {
            if let ExitCriterion::Event { name, conditions } = c {
                check_name(&mut out, &format!("exit_criteria.{i}.name"), name);
                check_conditions(
                    &mut out,
                    &format!("exit_criteria.{i}.conditions"),
                    conditions,
                );
            }
        }
        if let Some(g) = &self.goal {
            check_name(&mut out, "goal.name", &g.name);
            check_conditions(&mut out, "goal.conditions", &g.conditions);
        }
        if let Reentry::After { period } = &self.reentry {
            check_span(&mut out, "reentry.period", period);
        }
        if let Some(q) = &self.quiet_hours {
            for (k, v) in [("start", &q.start), ("end", &q.end)] {
                if parse_time(v).is_none() {
                    out.push(problem(format!("quiet_hours.{k}"), "a time as HH:MM"));
                }
            }
            if q.start == q.end {
                out.push(problem("quiet_hours", "start and end must differ"));
            }
        }
        if out.is_empty() {
            Ok(checked)
        } else {
            Err(out)
        }
    }
}

fn reach<'a>(entries: &[&'a str], ids: &HashMap<&'a str, &'a Step>) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<&str> = entries.to_vec();
    while let Some(id) = todo.pop() {
        if !seen.insert(id) {
            continue;
        }
        if let Some(s) = ids.get(id) {
            todo.extend(s.next.iter().map(String::as_str));
            todo.extend(s.branches.values().map(String::as_str));
        }
    }
    seen
}

/// A cycle whose every step passes straight through (no step of it waits), as step ids.
fn busy_cycle<'a>(steps: &'a [Step], ids: &HashMap<&'a str, &'a Step>) -> Option<Vec<&'a str>> {
    // Depth-first search over the steps that do not wait; a back edge closes a cycle.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut mark: HashMap<&str, Mark> = steps.iter().map(|s| (s.id.as_str(), Mark::New)).collect();
    for start in steps.iter().filter(|s| !s.kind.waits()) {
        if mark.get(start.id.as_str()) != Some(&Mark::New) {
            continue;
        }
        let mut stack: Vec<(&str, Vec<&str>)> = vec![(start.id.as_str(), edges(start))];
        mark.insert(start.id.as_str(), Mark::Open);
        while let Some((id, rest)) = stack.last_mut() {
            let id = *id;
            match rest.pop() {
                None => {
                    mark.insert(id, Mark::Done);
                    stack.pop();
                }
                Some(next) => {
                    let Some(step) = ids.get(next) else { continue };
                    if step.kind.waits() {
                        continue;
                    }
                    match mark.get(next).copied() {
                        Some(Mark::Open) => {
                            let from = stack.iter().position(|(s, _)| *s == next).unwrap_or(0);
                            return Some(stack[from..].iter().map(|(s, _)| *s).collect());
                        }
                        Some(Mark::New) => {
                            mark.insert(next, Mark::Open);
                            stack.push((next, edges(step)));
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    None
}

fn edges(s: &Step) -> Vec<&str> {
    s.next
        .iter()
        .map(String::as_str)
        .chain(s.branches.values().map(String::as_str))
        .collect()
}

fn check_name(out: &mut Vec<Problem>, path: &str, name: &str) {
    if !name_ok(name) {
        out.push(problem(
            path,
            "an event name: 1–100 characters of letters, digits, '_', '.', ':' and '-'",
        ));
    }
}

fn check_conditions(out: &mut Vec<Problem>, path: &str, conditions: &[PropertyCondition]) {
    for (i, c) in conditions.iter().enumerate() {
        if c.property.is_empty() || c.property.len() > 200 {
            out.push(problem(format!("{path}.{i}.property"), "a property path"));
        }
        let numeric = matches!(
            c.op,
            PropertyOp::GreaterThan
                | PropertyOp::GreaterOrEqual
                | PropertyOp::LessThan
                | PropertyOp::LessOrEqual
        );
        if numeric && !c.value.is_number() {
            out.push(problem(format!("{path}.{i}.value"), "a number"));
        }
    }
}

fn check_span(out: &mut Vec<Problem>, path: &str, span: &Span) {
    let m = span.minutes_total();
    if m == 0 {
        out.push(problem(path, "at least one minute"));
    } else if m > MAX_WAIT_MINUTES {
        out.push(problem(path, "at most two years"));
    }
}

fn check_recurrence(out: &mut Vec<Problem>, path: &str, r: &Recurrence) {
    if parse_time(&r.time).is_none() {
        out.push(problem(format!("{path}.time"), "a time as HH:MM"));
    }
    if r.time_zone.parse::<chrono_tz::Tz>().is_err() {
        out.push(problem(format!("{path}.time_zone"), "an IANA time zone"));
    }
    if r.interval == 0 || r.interval > 366 {
        out.push(problem(format!("{path}.interval"), "1 to 366"));
    }
    if r.ends_at.is_some_and(|e| e <= r.starts_at) {
        out.push(problem(format!("{path}.ends_at"), "after starts_at"));
    }
}

fn check_paths(out: &mut Vec<Problem>, path: &str, keys: &[(&str, u32)]) {
    if keys.len() < 2 || keys.len() > 10 {
        out.push(problem(format!("{path}.paths"), "2 to 10 paths"));
    }
    let mut seen = BTreeSet::new();
    for (k, w) in keys {
        if !key_ok(k) || !seen.insert(*k) {
            out.push(problem(
                format!("{path}.paths.{k}"),
                "unique keys of letters, digits, '_' and '-'",
            ));
        }
        if *w == 0 || *w > 10_000 {
            out.push(problem(format!("{path}.paths.{k}.weight"), "1 to 10000"));
        }
    }
}

fn check_condition(
    out: &mut Vec<Problem>,
    path: &str,
    step: &Step,
    condition: &Condition,
    ids: &HashMap<&str, &Step>,
    checked: &mut BTreeMap<String, Checked>,
    check_rule: &mut impl FnMut(&Rule) -> Result<Checked, Vec<String>>,
) {
    match condition {
        Condition::Rule { rule } => match check_rule(rule) {
            Ok(c) => {
                checked.insert(step.id.clone(), c);
            }
            Err(errors) => {
                for e in errors {
                    out.push(problem(format!("{path}.condition.rule"), e));
                }
            }
        },
        Condition::Message { step: target, .. } => {
            if ids
                .get(target.as_str())
                .is_none_or(|s| s.kind.channel().is_none())
            {
                out.push(problem(
                    format!("{path}.condition.step"),
                    format!("'{target}' is not a message step of this journey"),
                ));
            }
        }
    }
}

fn check_step(
    out: &mut Vec<Problem>,
    path: &str,
    step: &Step,
    ids: &HashMap<&str, &Step>,
    checked: &mut BTreeMap<String, Checked>,
    check_rule: &mut impl FnMut(&Rule) -> Result<Checked, Vec<String>>,
) {
    let config = format!("{path}.config");
    match &step.kind {
        StepKind::ActionEmail(_)
        | StepKind::ActionSms(_)
        | StepKind::ActionPush(_)
        | StepKind::ActionWebhook(_)
        | StepKind::Exit(_) => {}
        StepKind::ActionUpdateContact(c) => {
            if c.fields.is_empty() && c.add_tags.is_empty() && c.remove_tags.is_empty() {
                out.push(problem(config, "change at least one field or tag"));
            }
        }
        StepKind::DelayDuration(span) => check_span(out, &config, span),
        StepKind::DelayUntil(until) => match until {
            Until::At { .. } => {}
            Until::TimeOfDay { time, .. } => {
                if parse_time(time).is_none() {
                    out.push(problem(format!("{config}.time"), "a time as HH:MM"));
                }
            }
            Until::DateField { field, time, .. } => {
                if field.is_empty() {
                    out.push(problem(format!("{config}.field"), "a date field"));
                }
                if time.as_deref().is_some_and(|t| parse_time(t).is_none()) {
                    out.push(problem(format!("{config}.time"), "a time as HH:MM"));
                }
            }
        },
        StepKind::DelayEvent(w) => {
            check_name(out, &format!("{config}.name"), &w.name);
            check_conditions(out, &format!("{config}.conditions"), &w.conditions);
            check_span(out, &format!("{config}.timeout"), &w.timeout);
        }
        StepKind::SplitRandom(p) | StepKind::Experiment(p) => {
            let keys: Vec<(&str, u32)> =
                p.paths.iter().map(|p| (p.key.as_str(), p.weight)).collect();
            check_paths(out, &config, &keys);
        }
        StepKind::Balancer(b) => {
            let keys: Vec<(&str, u32)> =
                b.paths.iter().map(|p| (p.key.as_str(), p.weight)).collect();
            check_paths(out, &config, &keys);
            for p in &b.paths {
                if p.rate_limit == 0 {
                    out.push(problem(
                        format!("{config}.paths.{}.rate_limit", p.key),
                        "at least 1",
                    ));
                }
            }
        }
        StepKind::SplitConditional(c) => {
            check_condition(out, &config, step, c, ids, checked, check_rule)
        }
        StepKind::Gate(g) => {
            check_condition(out, &config, step, &g.condition, ids, checked, check_rule);
            check_span(out, &format!("{config}.timeout"), &g.timeout);
        }
        StepKind::Link(_) => {}
        StepKind::Event(e) => {
            check_name(out, &format!("{config}.name"), &e.name);
            if serde_json::to_vec(&e.properties).map_or(0, |v| v.len()) > 16 * 1024 {
                out.push(problem(format!("{config}.properties"), "at most 16 KiB"));
            }
        }
    }
}
