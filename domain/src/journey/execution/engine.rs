//! The engine: [`advance`] runs an execution's steps until it waits or ends, asking the
//! world through [`Env`]; effects get ids derived from the execution and the step run.

use super::*;

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
pub(super) fn draw(execution: Uuid, step: &str, n: u32, total: u64) -> u64 {
    let h = Uuid::new_v5(&execution, format!("draw:{step}:{n}").as_bytes()).as_u128();
    (h % u128::from(total.max(1))) as u64
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

pub(super) struct Run<'a> {
    pub(super) version: &'a Version,
    pub(super) id: Uuid,
    pub(super) state: Execution,
    pub(super) events: Vec<ExecutionEvent>,
}

impl Run<'_> {
    pub(super) fn push(&mut self, e: ExecutionEvent) {
        self.state.apply(e.clone());
        self.events.push(e);
    }

    pub(super) fn done(&self) -> bool {
        self.state.status.finished()
    }

    pub(super) fn go(&mut self, signals: &[Signal], env: &mut dyn Env) {
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
    pub(super) fn settle(&mut self, now: DateTime<Utc>) {
        if self.state.status == ExecStatus::Active && self.state.at.is_none() {
            self.push(ExecutionEvent::JourneyCompleted { at: now });
        }
    }

    pub(super) fn wake(
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
    pub(super) fn condition(&self, step: &str, c: &Condition, env: &dyn Env) -> (bool, Value) {
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

    pub(super) fn branch(&mut self, step: &Step, branch: &str, values: Value, now: DateTime<Utc>) {
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

    pub(super) fn wait(
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

    pub(super) fn pass(&mut self, step: &Step, why: &str, now: DateTime<Utc>) {
        self.push(ExecutionEvent::JourneyStepPassed {
            step: step.id.clone(),
            why: why.to_owned(),
            next: step.next.clone(),
            at: now,
        });
    }

    pub(super) fn act(
        &mut self,
        step: &Step,
        action: Action,
        stored: Option<Value>,
        now: DateTime<Utc>,
    ) {
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
}
