//! An execution's state — where the contact is, what it waits for, what its steps stored —
//! its commands and how its events fold into it.

use super::*;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecStatus {
    #[default]
    None,
    /// Running steps (between two events of one run, or due to run now).
    Active,
    Waiting,
    Completed,
    Exited,
    Failed,
}

impl ExecStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Active => "active",
            Self::Waiting => "waiting",
            Self::Completed => "completed",
            Self::Exited => "exited",
            Self::Failed => "failed",
        }
    }

    pub fn finished(self) -> bool {
        matches!(self, Self::Completed | Self::Exited | Self::Failed)
    }
}

/// What an execution waits for at a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wait {
    pub step: String,
    /// Woken at this time (a delay's end, a timeout, a balancer's next window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    /// Woken by this event (`delay_event`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
}

/// A value a step stored for later steps and templates (`journey.<key>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    pub key: String,
    pub value: Value,
}

/// One contact's way through one version of a journey.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    pub status: ExecStatus,
    pub journey_id: Uuid,
    pub version: u32,
    pub contact_id: Uuid,
    pub trigger: String,
    /// The step to run next, or the one waited at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<Wait>,
    /// What steps stored, by data key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, Value>,
    /// The job each message step requested last, by step id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub jobs: BTreeMap<String, Uuid>,
    /// Steps run so far (numbers each step run, for the ids its effects derive).
    pub steps_run: u32,
    pub entered_at: DateTime<Utc>,
    pub converted: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExecutionCommand {
    Enter {
        journey_id: Uuid,
        version: u32,
        contact_id: Uuid,
        trigger: String,
        entry: String,
        now: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecutionError {
    #[error("the execution exists already")]
    AlreadyExists,
}

/// Something that happened to the contact, routed to executions that listen for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// A custom event's name, `segment_entered:<id>`, `segment_exited:<id>`,
    /// [`CHANGED`] or [`ARCHIVED`].
    pub name: String,
    #[serde(default)]
    pub properties: Value,
    pub at: DateTime<Utc>,
}

impl Execution {
    /// The names of the signals this execution reacts to now (its row's `listens`, which the
    /// trigger worker matches against).
    pub fn listens(&self, version: &Version) -> Vec<String> {
        if self.status.finished() {
            return vec![];
        }
        let d = &version.definition;
        let mut out: Vec<String> = d
            .exit_criteria
            .iter()
            .map(|c| match c {
                ExitCriterion::Event { name, .. } => name.clone(),
                ExitCriterion::SegmentExited { segment_id } => segment_signal(false, *segment_id),
            })
            .collect();
        out.push(ARCHIVED.to_owned());
        if let (Some(g), false) = (&d.goal, self.converted) {
            out.push(g.name.clone());
        }
        if let Some(w) = &self.wait {
            if let Some(e) = &w.event {
                out.push(e.clone());
            }
            if matches!(d.step(&w.step).map(|s| &s.kind), Some(StepKind::Gate(_))) {
                out.push(CHANGED.to_owned());
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// When the execution is due to run (`None`: only a signal wakes it).
    pub fn due_at(&self) -> Option<DateTime<Utc>> {
        match self.status {
            ExecStatus::Active => Some(self.entered_at),
            ExecStatus::Waiting => self.wait.as_ref().and_then(|w| w.until),
            _ => None,
        }
    }
}

impl Aggregate for Execution {
    const TYPE: &'static str = "journey_execution";
    type Command = ExecutionCommand;
    type Event = ExecutionEvent;
    type Error = ExecutionError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for e in self.decide(command)? {
            sink.write(e, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        use ExecutionEvent as E;
        let go = |s: &mut Execution, next: Option<String>, stored: Option<Stored>| {
            s.steps_run += 1;
            s.wait = None;
            s.at = next;
            s.status = ExecStatus::Active;
            if let Some(st) = stored {
                s.data.insert(st.key, st.value);
            }
        };
        match event {
            E::JourneyEntered {
                journey_id,
                version,
                contact_id,
                trigger,
                entry,
                at,
            } => {
                self.status = ExecStatus::Active;
                self.journey_id = journey_id;
                self.version = version;
                self.contact_id = contact_id;
                self.trigger = trigger;
                self.at = Some(entry);
                self.entered_at = at;
            }
            E::JourneyActionRequested {
                step,
                action,
                stored,
                next,
                ..
            } => {
                if let Action::Message { job_id, .. } = action {
                    self.jobs.insert(step, job_id);
                }
                go(self, next, stored);
            }
            E::JourneyBranchTaken { stored, next, .. } => go(self, next, stored),
            E::JourneyWoken { stored, next, .. } => go(self, next, stored),
            E::JourneyStepPassed { next, .. } => go(self, next, None),
            E::JourneyWaitStarted {
                step, until, event, ..
            } => {
                self.status = ExecStatus::Waiting;
                self.at = Some(step.clone());
                self.wait = Some(Wait { step, until, event });
            }
            E::JourneyConverted { .. } => self.converted = true,
            E::JourneyCompleted { .. } => {
                self.status = ExecStatus::Completed;
                self.wait = None;
            }
            E::JourneyExited { .. } => {
                self.status = ExecStatus::Exited;
                self.wait = None;
            }
            E::JourneyFailed { .. } => {
                self.status = ExecStatus::Failed;
                self.wait = None;
            }
        }
    }
}

impl Execution {
    pub fn decide(&self, command: ExecutionCommand) -> Result<Vec<ExecutionEvent>, ExecutionError> {
        match command {
            ExecutionCommand::Enter {
                journey_id,
                version,
                contact_id,
                trigger,
                entry,
                now,
            } => {
                if self.status != ExecStatus::None {
                    return Err(ExecutionError::AlreadyExists);
                }
                Ok(vec![ExecutionEvent::JourneyEntered {
                    journey_id,
                    version,
                    contact_id,
                    trigger,
                    entry,
                    at: now,
                }])
            }
        }
    }
}
