//! `journey_executions`: one row per execution, folded from its stream (skipped at or below
//! the row's `sequence`) — and, as each event folds, what it adds to the figures
//! ([`Deltas`]): the row knows the execution's journey, version, the step it waits at and
//! the branches it took, which the events after `JourneyEntered` do not carry.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::journey::execution::{ExecStatus, Execution, ExecutionEvent as E};
use event_store::RecordedEvent;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::figures::{Deltas, StepDelta, VersionKey};
use super::summaries::number;
use crate::{json_rows, ProjectionError};

/// The reason of an exit at an `exit` step (the step ran).
pub const EXIT_STEP: &str = "exit_step";

/// A branch an execution took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Taken {
    pub step: String,
    pub branch: String,
}

/// One contact's way through one version of a journey.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExecutionRow {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub journey_id: Uuid,
    /// The journey version it runs.
    pub version: i32,
    pub contact_id: Uuid,
    /// The trigger it entered by.
    pub trigger: String,
    /// active, waiting, completed, exited or failed.
    pub status: String,
    /// The step to run next, the one waited at, or (finished) the last one.
    pub step: Option<String>,
    /// When a wait ends at the latest.
    pub waiting_until: Option<DateTime<Utc>>,
    /// The event a wait is for.
    pub waiting_for: Option<String>,
    pub entered_at: DateTime<Utc>,
    /// When the log recorded its latest event.
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Why it exited: `exit_step`, `exit_criteria:<event>`, `journey_archived`,
    /// `contact_gone`.
    pub exit_reason: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    pub converted: bool,
    pub converted_at: Option<DateTime<Utc>>,
    /// The branches it took, in order.
    pub branches: Vec<Taken>,
    pub steps_run: i32,
    /// The sequence of its latest event (`at_sequence` of its history).
    pub sequence: i64,
}

/// Every column but the key, rewritten by a newer row.
const UPDATED: &[&str] = &[
    "journey_id",
    "version",
    "contact_id",
    "trigger",
    "status",
    "step",
    "waiting_until",
    "waiting_for",
    "entered_at",
    "updated_at",
    "finished_at",
    "exit_reason",
    "error",
    "converted",
    "converted_at",
    "branches",
    "steps_run",
    "sequence",
];

impl ExecutionRow {
    /// The row of an execution its first event `event` starts (`None`: not an entry),
    /// counted as entered.
    pub fn enter(e: &RecordedEvent, id: Uuid, event: E, d: &mut Deltas) -> Option<Self> {
        let E::JourneyEntered {
            journey_id,
            version,
            contact_id,
            trigger,
            entry,
            at,
        } = event
        else {
            return None;
        };
        let row = Self {
            tenant_id: e.tenant_id,
            id,
            journey_id,
            version: number(version),
            contact_id,
            trigger,
            status: ExecStatus::Active.as_str().to_owned(),
            step: Some(entry),
            waiting_until: None,
            waiting_for: None,
            entered_at: at,
            updated_at: e.recorded_at,
            finished_at: None,
            exit_reason: None,
            error: None,
            converted: false,
            converted_at: None,
            branches: Vec::new(),
            steps_run: 0,
            sequence: e.sequence,
        };
        let c = d.version(row.key());
        c.entered += 1;
        c.in_flight += 1;
        Some(row)
    }

    fn key(&self) -> VersionKey {
        (self.tenant_id, self.journey_id, self.version)
    }

    fn finished(&self) -> bool {
        [
            ExecStatus::Completed,
            ExecStatus::Exited,
            ExecStatus::Failed,
        ]
        .iter()
        .any(|s| s.as_str() == self.status)
    }

    /// The step it waits at.
    fn waiting_at(&self) -> Option<String> {
        (self.status == ExecStatus::Waiting.as_str())
            .then(|| self.step.clone())
            .flatten()
    }

    /// A step ran and the execution moves on (to `next`; with none it is about to complete).
    fn go(&mut self, step: String, next: Option<String>) {
        self.status = ExecStatus::Active.as_str().to_owned();
        self.step = Some(next.unwrap_or(step));
        self.waiting_until = None;
        self.waiting_for = None;
        self.steps_run += 1;
    }

    fn take(&mut self, d: &mut Deltas, step: &str, branch: String) {
        StepDelta::count(&mut d.step(self.key(), step).branches, &branch);
        self.branches.push(Taken {
            step: step.to_owned(),
            branch,
        });
    }

    fn finish(&mut self, status: ExecStatus, at: DateTime<Utc>, d: &mut Deltas) {
        let c = d.version(self.key());
        match status {
            ExecStatus::Completed => c.completed += 1,
            ExecStatus::Exited => c.exited += 1,
            _ => c.failed += 1,
        }
        c.in_flight -= 1;
        self.status = status.as_str().to_owned();
        self.finished_at = Some(at);
        self.waiting_until = None;
        self.waiting_for = None;
    }

    /// Folds one of the execution's events after its entry into the row, adding what it
    /// means to `d`. A finished execution's figures no longer move.
    pub fn fold(&mut self, e: &RecordedEvent, event: E, d: &mut Deltas) {
        self.updated_at = e.recorded_at;
        self.sequence = e.sequence;
        if self.finished() {
            return;
        }
        let key = self.key();
        let was_waiting = self.waiting_at();
        match event {
            E::JourneyEntered { .. } => {}
            E::JourneyActionRequested { step, next, .. } => {
                d.step(key, &step).runs += 1;
                self.go(step, next);
            }
            E::JourneyBranchTaken {
                step, branch, next, ..
            } => {
                d.step(key, &step).runs += 1;
                self.take(d, &step, branch);
                self.go(step, next);
            }
            E::JourneyWaitStarted {
                step, until, event, ..
            } => {
                d.step(key, &step).runs += 1;
                self.status = ExecStatus::Waiting.as_str().to_owned();
                self.step = Some(step);
                self.waiting_until = until;
                self.waiting_for = event;
            }
            E::JourneyWoken {
                step, branch, next, ..
            } => {
                if let Some(b) = branch {
                    self.take(d, &step, b);
                }
                self.go(step, next);
            }
            E::JourneyStepPassed { step, next, .. } => {
                d.step(key, &step).runs += 1;
                self.go(step, next);
            }
            E::JourneyConverted { at, .. } => {
                if !self.converted {
                    self.converted = true;
                    self.converted_at = Some(at);
                    d.version(key).converted += 1;
                    // Once for each branch taken before, however often it was taken.
                    let taken: BTreeSet<(&str, &str)> = self
                        .branches
                        .iter()
                        .map(|t| (t.step.as_str(), t.branch.as_str()))
                        .collect();
                    for (step, branch) in taken {
                        StepDelta::count(&mut d.step(key, step).conversions, branch);
                    }
                }
            }
            E::JourneyCompleted { at } => self.finish(ExecStatus::Completed, at, d),
            E::JourneyExited { step, reason, at } => {
                if let Some(s) = step {
                    if reason == EXIT_STEP {
                        d.step(key, &s).runs += 1;
                    }
                    self.step = Some(s);
                }
                self.exit_reason = Some(reason);
                self.finish(ExecStatus::Exited, at, d);
            }
            E::JourneyFailed { step, error, at } => {
                d.step(key, &step).runs += 1;
                self.step = Some(step);
                self.error = Some(error);
                self.finish(ExecStatus::Failed, at, d);
            }
        }
        let now_waiting = self.waiting_at();
        if was_waiting != now_waiting {
            if let Some(w) = was_waiting {
                d.step(key, &w).waiting -= 1;
            }
            if let Some(w) = now_waiting {
                d.step(key, &w).waiting += 1;
            }
        }
    }
}

/// Folds the execution events among `events` into `table`, adding what they mean to `d`:
/// loads the touched rows (not those whose stream starts in the batch), folds in memory,
/// writes each touched row once.
pub async fn apply(
    conn: &mut PgConnection,
    table: &str,
    events: &[RecordedEvent],
    d: &mut Deltas,
) -> Result<(), ProjectionError> {
    let mine: Vec<(&RecordedEvent, Uuid)> = events
        .iter()
        .filter(|e| e.aggregate_type == Execution::TYPE)
        .filter_map(|e| e.entity_id().map(|id| (e, id)))
        .collect();
    if mine.is_empty() {
        return Ok(());
    }
    let born: HashSet<Uuid> = mine
        .iter()
        .filter(|(e, _)| e.sequence == 1)
        .map(|(_, id)| *id)
        .collect();
    let mut keys: Vec<(Uuid, Uuid)> = mine
        .iter()
        .filter(|(_, id)| !born.contains(id))
        .map(|(e, id)| (e.tenant_id, *id))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let mut rows: HashMap<Uuid, ExecutionRow> = if keys.is_empty() {
        HashMap::new()
    } else {
        json_rows::load(conn, table, &keys).await?
    };
    let mut touched = BTreeSet::new();
    for (e, id) in mine {
        let event: E = crate::decode(e)?;
        match rows.get_mut(&id) {
            Some(r) if e.sequence <= r.sequence => continue,
            Some(r) => r.fold(e, event, d),
            None => match ExecutionRow::enter(e, id, event, d) {
                Some(r) => {
                    rows.insert(id, r);
                }
                None => continue,
            },
        }
        touched.insert(id);
    }
    let out: Vec<ExecutionRow> = touched.iter().filter_map(|id| rows.remove(id)).collect();
    json_rows::upsert_by(conn, table, &out, UPDATED, "sequence").await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use domain::journey::execution::WakeReason;
    use serde_json::json;

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + minute * 60, 0).unwrap()
    }

    fn recorded(sequence: i64, event: &E) -> RecordedEvent {
        let tenant = Uuid::from_u128(1);
        serde_json::from_str(
            &json!({
            "cursor": "1-1",
            "event_id": Uuid::now_v7(),
            "tenant_id": tenant,
            "aggregate_type": "journey_execution",
            "aggregate_id": format!("{tenant}:{}", Uuid::from_u128(2)),
            "sequence": sequence,
            "event_type": cqrs_es::DomainEvent::event_type(event),
            "event_version": "1.0",
            "payload": event,
            "metadata": {},
            "recorded_at": at(sequence),
            })
            .to_string(),
        )
        .unwrap()
    }

    /// Folds `events` (the first an entry) into a row; the row and the figures.
    fn run(events: Vec<E>) -> (ExecutionRow, Deltas) {
        let mut d = Deltas::default();
        let mut events = events.into_iter().enumerate();
        let (_, first) = events.next().unwrap();
        let mut row =
            ExecutionRow::enter(&recorded(1, &first), Uuid::from_u128(2), first, &mut d).unwrap();
        for (i, e) in events {
            row.fold(&recorded(i as i64 + 1, &e), e, &mut d);
        }
        (row, d)
    }

    fn entered() -> E {
        E::JourneyEntered {
            journey_id: Uuid::from_u128(3),
            version: 1,
            contact_id: Uuid::from_u128(4),
            trigger: "api".into(),
            entry: "a".into(),
            at: at(0),
        }
    }

    fn branch(step: &str, branch: &str, next: &str) -> E {
        E::JourneyBranchTaken {
            step: step.into(),
            branch: branch.into(),
            values: json!({}),
            stored: None,
            next: Some(next.into()),
            at: at(1),
        }
    }

    fn wait(step: &str) -> E {
        E::JourneyWaitStarted {
            step: step.into(),
            until: Some(at(60)),
            event: None,
            at: at(2),
        }
    }

    const KEY: VersionKey = (Uuid::from_u128(1), Uuid::from_u128(3), 1);

    fn step(d: &Deltas, s: &str) -> StepDelta {
        d.steps
            .get(&(KEY, s.to_owned()))
            .cloned()
            .unwrap_or_default()
    }

    #[test]
    fn a_conversion_counts_once_for_each_branch_taken_before_it() {
        let (row, d) = run(vec![
            entered(),
            branch("a", "left", "b"),
            wait("b"),
            E::JourneyWoken {
                step: "b".into(),
                reason: WakeReason::Timer,
                branch: None,
                stored: None,
                next: Some("a".into()),
                at: at(60),
            },
            branch("a", "left", "c"),
            branch("c", "yes", "d"),
            E::JourneyConverted {
                goal: "bought".into(),
                at: at(61),
            },
            E::JourneyConverted {
                goal: "bought".into(),
                at: at(62),
            },
            branch("d", "x", "e"),
        ]);
        assert!(row.converted);
        assert_eq!(row.branches.len(), 4);
        assert_eq!(step(&d, "a").runs, 2);
        assert_eq!(step(&d, "a").branches, [("left".to_owned(), 2)].into());
        assert_eq!(step(&d, "a").conversions, [("left".to_owned(), 1)].into());
        assert_eq!(step(&d, "c").conversions, [("yes".to_owned(), 1)].into());
        assert!(
            step(&d, "d").conversions.is_empty(),
            "taken after converting"
        );
        assert_eq!(d.versions[&KEY].converted, 1);
    }

    #[test]
    fn exiting_while_waiting_leaves_the_wait_and_counts_no_run() {
        let (row, d) = run(vec![
            entered(),
            wait("a"),
            E::JourneyExited {
                step: Some("a".into()),
                reason: "exit_criteria:bought".into(),
                at: at(3),
            },
        ]);
        assert_eq!(row.status, "exited");
        assert_eq!(row.exit_reason.as_deref(), Some("exit_criteria:bought"));
        assert_eq!(step(&d, "a").runs, 1, "the wait's start is its one run");
        assert_eq!(step(&d, "a").waiting, 0);
        let c = &d.versions[&KEY];
        assert_eq!((c.entered, c.in_flight, c.exited), (1, 0, 1));
    }

    #[test]
    fn an_exit_step_is_a_run_and_a_finished_execution_counts_nothing_more() {
        let (row, d) = run(vec![
            entered(),
            E::JourneyExited {
                step: Some("a".into()),
                reason: EXIT_STEP.into(),
                at: at(1),
            },
            E::JourneyCompleted { at: at(2) },
        ]);
        assert_eq!(row.status, "exited");
        assert_eq!(row.sequence, 3);
        assert_eq!(step(&d, "a").runs, 1);
        let c = &d.versions[&KEY];
        assert_eq!((c.in_flight, c.exited, c.completed), (0, 1, 0));
    }
}
