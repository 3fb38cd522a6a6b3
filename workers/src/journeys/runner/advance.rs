//! Each execution of a batch run through the engine (`domain::journey::advance`) with the
//! signals its inbox held, against the batch's context; what it decided (events, message
//! requests, contact changes, entries into linked journeys, emitted events, the row's next
//! state) is gathered for `persist`. Nothing here touches the database.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use commands::executor::Decided;
use commands::journeys::enter::Entry;
use cqrs_es::Aggregate;
use domain::delivery::{Request, Source};
use domain::journey::definition::{BalancedPath, ContactChange, Engagement};
use domain::journey::execution::Signal;
use domain::journey::{advance, Action, Env, ExecutionEvent};
use domain::segment::eval::ContactFacts;
use event_store::EventMetadata;
use uuid::Uuid;

use super::balancer::Balancer;
use super::load::Context;
use super::{Claimed, Ran};
use crate::journeys::triggers::Routed;
use crate::journeys::JourneyError;

/// A contact change a step asked for: tenant, contact, change, metadata.
pub(super) type Change = (Uuid, Uuid, ContactChange, EventMetadata);

/// What a batch's executions decided, to be written in its transaction.
pub(super) struct Outcome {
    pub decided: Vec<Decided<ExecutionEvent>>,
    /// Delivery jobs to request: id, request, due.
    pub jobs: Vec<(Uuid, Request, DateTime<Utc>)>,
    /// Entries into linked journeys, by journey: (from execution, entry).
    pub links: BTreeMap<Uuid, Vec<(Uuid, Entry)>>,
    pub changes: Vec<Change>,
    pub emitted: Vec<Routed>,
    /// The rows that go on: their new state, due time and signals listened for.
    pub runs: Runs,
    /// Finished executions: (execution, journey, contact).
    pub finished: Vec<(Uuid, Uuid, Uuid)>,
    /// Signals of executions that wait for their contact: back to the inbox.
    pub returned: Vec<(Uuid, Signal)>,
    pub ran: Ran,
}

/// Column-wise updates of `journey_runs`.
#[derive(Default)]
pub(super) struct Runs {
    pub ids: Vec<Uuid>,
    pub seq: Vec<i64>,
    pub state: Vec<serde_json::Value>,
    pub due: Vec<Option<DateTime<Utc>>>,
    pub listens: Vec<String>,
}

/// Runs `rows` (one organization's) through the engine.
pub(super) fn advance_all(
    tenant: Uuid,
    meta: &EventMetadata,
    rows: Vec<Claimed>,
    ctx: &Context,
    balancer: &mut Balancer,
    signals: &HashMap<Uuid, Vec<(i64, Signal)>>,
    now: DateTime<Utc>,
) -> Result<Outcome, JourneyError> {
    let Context {
        versions,
        facts,
        lagging,
        org_zone,
        templates,
        engagement,
    } = ctx;
    let mut decided: Vec<Decided<ExecutionEvent>> = Vec::new();
    let mut jobs: Vec<(Uuid, Request, DateTime<Utc>)> = Vec::new();
    let mut links: BTreeMap<Uuid, Vec<(Uuid, Entry)>> = BTreeMap::new();
    let mut changes = Vec::new();
    let mut emitted: Vec<Routed> = Vec::new();
    let (mut upd_ids, mut upd_seq, mut upd_state, mut upd_due, mut upd_listens) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut finished: Vec<(Uuid, Uuid, Uuid)> = Vec::new();
    let mut ran = Ran::default();
    let mut returned: Vec<(Uuid, Signal)> = Vec::new();
    for r in rows {
        let mut state = r.state.0;
        if lagging.contains(&r.contact_id) {
            // Its signals go back to the inbox for the next run.
            for (_, sig) in signals.get(&r.execution_id).into_iter().flatten() {
                returned.push((r.execution_id, sig.clone()));
            }
            upd_ids.push(r.execution_id);
            upd_seq.push(r.seq);
            upd_due.push(Some(now + chrono::Duration::seconds(1)));
            upd_listens.push(
                versions
                    .get(&(r.journey_id, r.version as u32))
                    .map(|v| state.listens(v))
                    .unwrap_or_default()
                    .join("\u{1f}"),
            );
            upd_state.push(
                serde_json::to_value(&state).map_err(|e| JourneyError::Command(e.to_string()))?,
            );
            continue;
        }
        ran.executions += 1;
        let incoming: Vec<Signal> = signals
            .get(&r.execution_id)
            .map(|v| v.iter().map(|(_, s)| s.clone()).collect())
            .unwrap_or_default();
        let events = match versions.get(&(r.journey_id, r.version as u32)) {
            Some(v) => {
                let mut env = BatchEnv {
                    now,
                    facts: facts.get(&r.contact_id),
                    zone: domain::journey::timing::zone(
                        facts
                            .get(&r.contact_id)
                            .and_then(|f| f.time_zone.as_deref()),
                        org_zone.as_deref(),
                    ),
                    templates,
                    engagement,
                    balancer: &mut *balancer,
                    journey: r.journey_id,
                };
                advance(v, r.execution_id, &state, &incoming, &mut env)
            }
            None => vec![ExecutionEvent::JourneyFailed {
                step: state.at.clone().unwrap_or_default(),
                error: format!("version {} of the journey is missing", r.version),
                at: now,
            }],
        };
        for (i, e) in events.iter().enumerate() {
            if e.step().is_some() && !matches!(e, ExecutionEvent::JourneyExited { .. }) {
                ran.steps += 1;
            }
            if let ExecutionEvent::JourneyActionRequested { step, action, .. } = e {
                match action {
                    Action::Message {
                        channel,
                        job_id,
                        template_id,
                        template_version,
                        provider_id,
                        from,
                        reply_to,
                        due_at,
                    } => jobs.push((
                        *job_id,
                        Request {
                            channel: *channel,
                            contact_id: Some(r.contact_id),
                            to: String::new(),
                            template_id: *template_id,
                            template_version: *template_version,
                            source: Source::Journey {
                                journey_id: r.journey_id,
                                execution_id: r.execution_id,
                                step_id: step.clone(),
                            },
                            data: serde_json::json!({ "journey": state.data }),
                            from: from.clone(),
                            reply_to: reply_to.clone(),
                            provider_id: *provider_id,
                        },
                        *due_at,
                    )),
                    Action::UpdateContact { change } => {
                        let mut m = meta.clone();
                        m.actor = Some("system:journeys".to_owned());
                        m.causation_id = Some(r.execution_id);
                        changes.push((tenant, r.contact_id, change.clone(), m));
                    }
                    Action::Enter {
                        journey_id,
                        execution_id,
                    } => links.entry(*journey_id).or_default().push((
                        r.execution_id,
                        Entry {
                            contact_id: r.contact_id,
                            execution_id: *execution_id,
                        },
                    )),
                    Action::EmitEvent { name, properties } => emitted.push(Routed {
                        contact_id: r.contact_id,
                        signal: Signal {
                            name: name.clone(),
                            properties: serde_json::Value::Object(properties.clone()),
                            at: now,
                        },
                        source: Uuid::new_v5(
                            &r.execution_id,
                            format!("emit:{}", r.seq as usize + i).as_bytes(),
                        ),
                        wakes_only: false,
                    }),
                }
            }
            state.apply(e.clone());
            decided.push(Decided {
                id: r.execution_id,
                version: r.seq as usize + i,
                event: e.clone(),
            });
        }
        let seq = r.seq + events.len() as i64;
        if state.status.finished() {
            finished.push((r.execution_id, r.journey_id, r.contact_id));
        } else {
            let listens = versions
                .get(&(r.journey_id, r.version as u32))
                .map(|v| state.listens(v))
                .unwrap_or_default();
            upd_ids.push(r.execution_id);
            upd_seq.push(seq);
            upd_due.push(state.due_at());
            upd_listens.push(listens.join("\u{1f}"));
            upd_state.push(
                serde_json::to_value(&state).map_err(|e| JourneyError::Command(e.to_string()))?,
            );
        }
    }
    Ok(Outcome {
        decided,
        jobs,
        links,
        changes,
        emitted,
        runs: Runs {
            ids: upd_ids,
            seq: upd_seq,
            state: upd_state,
            due: upd_due,
            listens: upd_listens,
        },
        finished,
        returned,
        ran,
    })
}

/// What the engine asks, answered from what the batch loaded.
struct BatchEnv<'a> {
    now: DateTime<Utc>,
    facts: Option<&'a ContactFacts>,
    zone: Tz,
    templates: &'a HashMap<Uuid, Option<u32>>,
    engagement: &'a HashMap<Uuid, (String, i32, i32)>,
    balancer: &'a mut Balancer,
    journey: Uuid,
}

impl Env for BatchEnv<'_> {
    fn now(&self) -> DateTime<Utc> {
        self.now
    }

    fn facts(&self) -> Option<&ContactFacts> {
        self.facts
    }

    fn time_zone(&self) -> Tz {
        self.zone
    }

    fn engaged(&self, job: Uuid, engagement: Engagement) -> bool {
        let Some((status, opens, clicks)) = self.engagement.get(&job) else {
            return false;
        };
        match engagement {
            Engagement::Delivered => status == "delivered" || *opens > 0 || *clicks > 0,
            Engagement::Opened => *opens > 0 || *clicks > 0,
            Engagement::Clicked => *clicks > 0,
        }
    }

    fn template_version(&self, template: Uuid) -> Option<u32> {
        self.templates.get(&template).copied().flatten()
    }

    fn admit(&mut self, step: &str, path: &BalancedPath, now: DateTime<Utc>) -> bool {
        self.balancer.admit(self.journey, step, path, now)
    }
}
