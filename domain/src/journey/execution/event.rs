//! What an execution records: its events, and the actions (effects) its steps request.

use super::*;

/// What an action step asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// A delivery job (its id derived from the execution and the step run).
    Message {
        channel: Channel,
        job_id: Uuid,
        template_id: Uuid,
        template_version: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provider_id: Option<Uuid>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<crate::delivery::Sender>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<crate::delivery::Sender>,
        /// Not before this (quiet hours).
        due_at: DateTime<Utc>,
    },
    UpdateContact {
        change: ContactChange,
    },
    EmitEvent {
        name: String,
        properties: serde_json::Map<String, Value>,
    },
    /// An entry into another journey (a `link` step).
    Enter {
        journey_id: Uuid,
        execution_id: Uuid,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WakeReason {
    /// The wait's time came.
    Timer,
    /// The awaited event arrived.
    Event,
    /// A gate's condition holds.
    Condition,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ExecutionEvent {
    JourneyEntered {
        journey_id: Uuid,
        version: u32,
        contact_id: Uuid,
        /// The trigger's id (`api`, `link:<execution>` for entries through those).
        trigger: String,
        entry: String,
        at: DateTime<Utc>,
    },
    JourneyActionRequested {
        step: String,
        action: Action,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stored: Option<Stored>,
        next: Option<String>,
        at: DateTime<Utc>,
    },
    JourneyBranchTaken {
        step: String,
        branch: String,
        /// What decided it (the draw, the condition's result and what it looked at).
        values: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stored: Option<Stored>,
        next: Option<String>,
        at: DateTime<Utc>,
    },
    JourneyWaitStarted {
        step: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<DateTime<Utc>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event: Option<String>,
        at: DateTime<Utc>,
    },
    JourneyWoken {
        step: String,
        reason: WakeReason,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        branch: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stored: Option<Stored>,
        next: Option<String>,
        at: DateTime<Utc>,
    },
    /// A step with nothing to do passed (a delay whose time had come, a date field missing).
    JourneyStepPassed {
        step: String,
        why: String,
        next: Option<String>,
        at: DateTime<Utc>,
    },
    JourneyConverted {
        goal: String,
        at: DateTime<Utc>,
    },
    JourneyCompleted {
        at: DateTime<Utc>,
    },
    JourneyExited {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<String>,
        reason: String,
        at: DateTime<Utc>,
    },
    JourneyFailed {
        step: String,
        error: String,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for ExecutionEvent {
    fn event_type(&self) -> String {
        match self {
            Self::JourneyEntered { .. } => "JourneyEntered",
            Self::JourneyActionRequested { .. } => "JourneyActionRequested",
            Self::JourneyBranchTaken { .. } => "JourneyBranchTaken",
            Self::JourneyWaitStarted { .. } => "JourneyWaitStarted",
            Self::JourneyWoken { .. } => "JourneyWoken",
            Self::JourneyStepPassed { .. } => "JourneyStepPassed",
            Self::JourneyConverted { .. } => "JourneyConverted",
            Self::JourneyCompleted { .. } => "JourneyCompleted",
            Self::JourneyExited { .. } => "JourneyExited",
            Self::JourneyFailed { .. } => "JourneyFailed",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

impl ExecutionEvent {
    /// The step this event is about, if any.
    pub fn step(&self) -> Option<&str> {
        match self {
            Self::JourneyActionRequested { step, .. }
            | Self::JourneyBranchTaken { step, .. }
            | Self::JourneyWaitStarted { step, .. }
            | Self::JourneyWoken { step, .. }
            | Self::JourneyStepPassed { step, .. }
            | Self::JourneyFailed { step, .. } => Some(step),
            Self::JourneyExited { step, .. } => step.as_deref(),
            _ => None,
        }
    }
}
