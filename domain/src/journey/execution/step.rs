//! One step run: what each kind of step does when the execution reaches it.

use super::*;

use super::engine::Run;

impl Run<'_> {
    pub(super) fn run_step(&mut self, step: &Step, env: &mut dyn Env, now: DateTime<Utc>) {
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
