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

/// What the engine may ask of the world while it runs one execution (the worker answers from
/// what it loaded for the batch).
pub trait Env {
    fn now(&self) -> DateTime<Utc>;
    /// The contact as rules see it (`None`: the contact is gone — erased or merged away).
    fn facts(&self) -> Option<&ContactFacts>;
    /// The contact's zone (or the organization's, or UTC).
    fn time_zone(&self) -> Tz;
    /// Whether a job was delivered, opened or clicked.
    fn engaged(&self, job: Uuid, engagement: Engagement) -> bool;
    /// The published version of a template (`None`: none published, or no such template).
    fn template_version(&self, template: Uuid) -> Option<u32>;
    /// Takes one place on a balancer path in the window `now` falls in, if one is left.
    fn admit(&mut self, step: &str, path: &BalancedPath, now: DateTime<Utc>) -> bool;
}

/// The id of what the `n`-th step run of execution `execution` creates (its job, its linked
/// entry): a repeated run derives the same id.
pub fn effect_id(execution: Uuid, step: &str, n: u32) -> Uuid {
    Uuid::new_v5(&execution, format!("{step}:{n}").as_bytes())
}

/// A draw in `0..total` fixed by the execution and the step run.
fn draw(execution: Uuid, step: &str, n: u32, total: u64) -> u64 {
    let h = Uuid::new_v5(&execution, format!("draw:{step}:{n}").as_bytes()).as_u128();
    (h % u128::from(total.max(1))) as u64
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

/// Runs execution `id` (state `exec`, on `version`) given the signals that arrived for it:
/// exits and conversions first, then a wait's wake-up, then steps until it waits or ends.
/// Pure but for what `env` answers; the events say everything that happened.
pub fn advance(
    version: &Version,
    id: Uuid,
    exec: &Execution,
    signals: &[Signal],
    env: &mut dyn Env,
) -> Vec<ExecutionEvent> {
    let mut run = Run {
        version,
        id,
        state: exec.clone(),
        events: Vec::new(),
    };
    run.go(signals, env);
    run.events
}

struct Run<'a> {
    version: &'a Version,
    id: Uuid,
    state: Execution,
    events: Vec<ExecutionEvent>,
}

impl Run<'_> {
    fn push(&mut self, e: ExecutionEvent) {
        self.state.apply(e.clone());
        self.events.push(e);
    }

    fn done(&self) -> bool {
        self.state.status.finished()
    }

    fn go(&mut self, signals: &[Signal], env: &mut dyn Env) {
        if self.done() || self.state.status == ExecStatus::None {
            return;
        }
        let now = env.now();
        let def = &self.version.definition;
        if env.facts().is_none() {
            self.push(ExecutionEvent::JourneyExited {
                step: self.state.at.clone(),
                reason: "contact_gone".into(),
                at: now,
            });
            return;
        }
        for s in signals {
            if s.name == ARCHIVED {
                self.push(ExecutionEvent::JourneyExited {
                    step: self.state.at.clone(),
                    reason: ARCHIVED.into(),
                    at: now,
                });
                return;
            }
            let exits = def.exit_criteria.iter().any(|c| match c {
                ExitCriterion::Event { name, conditions } => {
                    *name == s.name && properties_match(conditions, &s.properties)
                }
                ExitCriterion::SegmentExited { segment_id } => {
                    s.name == segment_signal(false, *segment_id)
                }
            });
            if exits {
                self.push(ExecutionEvent::JourneyExited {
                    step: self.state.at.clone(),
                    reason: format!("exit_criteria:{}", s.name),
                    at: now,
                });
                return;
            }
            if let Some(g) = &def.goal {
                if !self.state.converted
                    && g.name == s.name
                    && properties_match(&g.conditions, &s.properties)
                {
                    self.push(ExecutionEvent::JourneyConverted {
                        goal: g.name.clone(),
                        at: now,
                    });
                }
            }
            if let Some(w) = self.state.wait.clone() {
                if w.event.as_deref() == Some(s.name.as_str()) {
                    if let Some(Step {
                        kind: StepKind::DelayEvent(cfg),
                        ..
                    }) = def.step(&w.step)
                    {
                        if properties_match(&cfg.conditions, &s.properties) {
                            self.wake(
                                &w.step,
                                WakeReason::Event,
                                Some("event"),
                                Some(s.properties.clone()),
                                now,
                            );
                        }
                    }
                }
            }
        }
        if let Some(w) = self.state.wait.clone() {
            let step = def.step(&w.step);
            match step.map(|s| &s.kind) {
                Some(StepKind::Gate(g)) => {
                    let (holds, values) = self.condition(&w.step, &g.condition, env);
                    if holds {
                        self.wake(
                            &w.step,
                            WakeReason::Condition,
                            Some("yes"),
                            Some(values),
                            now,
                        );
                    } else if w.until.is_some_and(|u| u <= now) {
                        self.wake(
                            &w.step,
                            WakeReason::Timer,
                            Some("timeout"),
                            Some(values),
                            now,
                        );
                    }
                }
                Some(StepKind::DelayEvent(_)) => {
                    if w.until.is_some_and(|u| u <= now) {
                        self.wake(&w.step, WakeReason::Timer, Some("timeout"), None, now);
                    }
                }
                Some(StepKind::Balancer(_)) => {
                    if w.until.is_some_and(|u| u <= now) {
                        // Try the paths again: the step runs anew.
                        self.state.wait = None;
                        self.state.status = ExecStatus::Active;
                    }
                }
                Some(StepKind::Link(link)) => {
                    if w.until.is_some_and(|u| u <= now) {
                        let n = self.state.steps_run;
                        let action = Action::Enter {
                            journey_id: link.journey_id,
                            execution_id: effect_id(self.id, &w.step, n),
                        };
                        let next = step.and_then(|s| s.next.clone());
                        self.push(ExecutionEvent::JourneyActionRequested {
                            step: w.step.clone(),
                            action,
                            stored: None,
                            next,
                            at: now,
                        });
                    }
                }
                Some(_) => {
                    if w.until.is_some_and(|u| u <= now) {
                        self.wake(&w.step, WakeReason::Timer, None, None, now);
                    }
                }
                None => {
                    self.push(ExecutionEvent::JourneyFailed {
                        step: w.step.clone(),
                        error: "the step is not in the version".into(),
                        at: now,
                    });
                }
            }
        }
        self.settle(now);
        let mut ran = 0;
        while self.state.status == ExecStatus::Active && ran < MAX_STEPS_PER_RUN {
            let Some(at) = self.state.at.clone() else {
                break;
            };
            let Some(step) = def.step(&at) else {
                self.push(ExecutionEvent::JourneyFailed {
                    step: at,
                    error: "the step is not in the version".into(),
                    at: now,
                });
                return;
            };
            self.run_step(step, env, now);
            self.settle(now);
            ran += 1;
        }
    }

    /// An execution whose last event left it without a step to go to is complete.
    fn settle(&mut self, now: DateTime<Utc>) {
        if self.state.status == ExecStatus::Active && self.state.at.is_none() {
            self.push(ExecutionEvent::JourneyCompleted { at: now });
        }
    }

    fn wake(
        &mut self,
        step: &str,
        reason: WakeReason,
        branch: Option<&str>,
        value: Option<Value>,
        now: DateTime<Utc>,
    ) {
        let def = &self.version.definition;
        let Some(s) = def.step(step) else { return };
        let next = match branch {
            Some(b) => s.branches.get(b).cloned(),
            None => s.next.clone(),
        };
        let stored = s.data_key.as_ref().map(|k| Stored {
            key: k.clone(),
            value: json!({ "branch": branch, "reason": reason, "value": value }),
        });
        self.push(ExecutionEvent::JourneyWoken {
            step: step.to_owned(),
            reason,
            branch: branch.map(str::to_owned),
            stored,
            next,
            at: now,
        });
    }

    /// Whether a condition holds, and what it looked at.
    fn condition(&self, step: &str, c: &Condition, env: &dyn Env) -> (bool, Value) {
        match c {
            Condition::Rule { .. } => {
                let rule = self.version.rules.get(step);
                let holds = match (rule, env.facts()) {
                    (Some(r), Some(f)) => f.matches(r, env.now()),
                    _ => false,
                };
                (holds, json!({ "rule": holds }))
            }
            Condition::Message {
                step: target,
                engagement,
            } => match self.state.jobs.get(target) {
                Some(job) => {
                    let holds = env.engaged(*job, *engagement);
                    (holds, json!({ "job_id": job, engagement.as_str(): holds }))
                }
                None => (false, json!({ "job_id": null, engagement.as_str(): false })),
            },
        }
    }

    fn branch(&mut self, step: &Step, branch: &str, values: Value, now: DateTime<Utc>) {
        let stored = step.data_key.as_ref().map(|k| Stored {
            key: k.clone(),
            value: json!({ "branch": branch }),
        });
        self.push(ExecutionEvent::JourneyBranchTaken {
            step: step.id.clone(),
            branch: branch.to_owned(),
            values,
            stored,
            next: step.branches.get(branch).cloned(),
            at: now,
        });
    }

    fn wait(
        &mut self,
        step: &Step,
        until: Option<DateTime<Utc>>,
        event: Option<String>,
        now: DateTime<Utc>,
    ) {
        self.push(ExecutionEvent::JourneyWaitStarted {
            step: step.id.clone(),
            until,
            event,
            at: now,
        });
    }

    fn pass(&mut self, step: &Step, why: &str, now: DateTime<Utc>) {
        self.push(ExecutionEvent::JourneyStepPassed {
            step: step.id.clone(),
            why: why.to_owned(),
            next: step.next.clone(),
            at: now,
        });
    }

    fn act(&mut self, step: &Step, action: Action, stored: Option<Value>, now: DateTime<Utc>) {
        let stored = match (&step.data_key, stored) {
            (Some(k), Some(v)) => Some(Stored {
                key: k.clone(),
                value: v,
            }),
            _ => None,
        };
        self.push(ExecutionEvent::JourneyActionRequested {
            step: step.id.clone(),
            action,
            stored,
            next: step.next.clone(),
            at: now,
        });
    }

    fn run_step(&mut self, step: &Step, env: &mut dyn Env, now: DateTime<Utc>) {
        let n = self.state.steps_run;
        let def = &self.version.definition;
        match &step.kind {
            StepKind::ActionEmail(_)
            | StepKind::ActionSms(_)
            | StepKind::ActionPush(_)
            | StepKind::ActionWebhook(_) => {
                let Some((channel, m)) = step.kind.channel() else {
                    return;
                };
                let Some(template_version) = env.template_version(m.template_id) else {
                    self.push(ExecutionEvent::JourneyFailed {
                        step: step.id.clone(),
                        error: format!("template {} has no published version", m.template_id),
                        at: now,
                    });
                    return;
                };
                let due_at = match &def.quiet_hours {
                    Some(q) => timing::after_quiet_hours(now, env.time_zone(), q),
                    None => now,
                };
                let job_id = effect_id(self.id, &step.id, n);
                let action = Action::Message {
                    channel,
                    job_id,
                    template_id: m.template_id,
                    template_version,
                    provider_id: m.provider_id,
                    from: m.from.clone(),
                    reply_to: m.reply_to.clone(),
                    due_at,
                };
                self.act(step, action, Some(json!({ "job_id": job_id })), now);
            }
            StepKind::ActionUpdateContact(change) => {
                let action = Action::UpdateContact {
                    change: change.clone(),
                };
                self.act(step, action, None, now);
            }
            StepKind::Event(e) => {
                let action = Action::EmitEvent {
                    name: e.name.clone(),
                    properties: e.properties.clone(),
                };
                self.act(step, action, None, now);
            }
            StepKind::DelayDuration(span) => {
                self.wait(step, Some(now + span.duration()), None, now);
            }
            StepKind::DelayUntil(until) => {
                let tz = env.time_zone();
                let moment = match until {
                    Until::At { at } => Some(*at),
                    Until::TimeOfDay { time, weekdays } => {
                        parse_time(time).map(|t| timing::next_time_of_day(now, tz, t, weekdays))
                    }
                    Until::DateField {
                        field,
                        offset_days,
                        time,
                    } => env
                        .facts()
                        .and_then(|f| f.fields.get(field))
                        .and_then(Value::as_str)
                        .and_then(|v| {
                            timing::field_moment(
                                v,
                                *offset_days,
                                time.as_deref().and_then(parse_time),
                                tz,
                            )
                        }),
                };
                match moment {
                    Some(t) if t > now => self.wait(step, Some(t), None, now),
                    Some(_) => self.pass(step, "the time has passed", now),
                    None => self.pass(step, "no date to wait for", now),
                }
            }
            StepKind::DelayEvent(w) => {
                self.wait(
                    step,
                    Some(now + w.timeout.duration()),
                    Some(w.name.clone()),
                    now,
                );
            }
            StepKind::SplitRandom(p) | StepKind::Experiment(p) => {
                let total: u64 = p.paths.iter().map(|p| u64::from(p.weight)).sum();
                let mut d = draw(self.id, &step.id, n, total);
                let mut chosen = p.paths.last().map(|p| p.key.clone()).unwrap_or_default();
                for path in &p.paths {
                    if d < u64::from(path.weight) {
                        chosen = path.key.clone();
                        break;
                    }
                    d -= u64::from(path.weight);
                }
                self.branch(
                    step,
                    &chosen,
                    json!({ "draw": draw(self.id, &step.id, n, total), "of": total }),
                    now,
                );
            }
            StepKind::SplitConditional(c) => {
                let (holds, values) = self.condition(&step.id, c, env);
                self.branch(step, if holds { "yes" } else { "no" }, values, now);
            }
            StepKind::Gate(g) => {
                let (holds, values) = self.condition(&step.id, &g.condition, env);
                if holds {
                    self.branch(step, "yes", values, now);
                } else {
                    self.wait(step, Some(now + g.timeout.duration()), None, now);
                }
            }
            StepKind::Balancer(b) => {
                // Paths in the order of a weighted draw; the first with room takes the contact.
                let total: u64 = b.paths.iter().map(|p| u64::from(p.weight)).sum();
                let mut d = draw(self.id, &step.id, n, total);
                let mut first = 0;
                for (i, p) in b.paths.iter().enumerate() {
                    if d < u64::from(p.weight) {
                        first = i;
                        break;
                    }
                    d -= u64::from(p.weight);
                }
                let order = (0..b.paths.len()).map(|k| &b.paths[(first + k) % b.paths.len()]);
                let mut taken = None;
                for p in order {
                    if env.admit(&step.id, p, now) {
                        taken = Some(p.key.clone());
                        break;
                    }
                }
                match taken {
                    Some(key) => self.branch(step, &key, json!({ "path": key }), now),
                    None => {
                        let next_window = b
                            .paths
                            .iter()
                            .map(|p| p.per.start(now) + chrono::Duration::seconds(p.per.seconds()))
                            .min()
                            .unwrap_or(now);
                        self.wait(step, Some(next_window), None, now);
                    }
                }
            }
            StepKind::Link(link) => {
                self.wait(step, Some(now + link.delay.duration()), None, now);
            }
            StepKind::Exit(_) => {
                self.push(ExecutionEvent::JourneyExited {
                    step: Some(step.id.clone()),
                    reason: "exit_step".into(),
                    at: now,
                });
            }
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
