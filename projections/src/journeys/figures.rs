//! What executions add up to: counters per version (and, summed, per journey) and figures
//! per step. A batch's events are summed in memory ([`Deltas`], filled as the executions'
//! rows fold them) and added in one statement per table.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::ProjectionError;

/// How many executions did what.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Counters {
    pub entered: i64,
    /// Entered and not finished yet: entered − completed − exited − failed.
    pub in_flight: i64,
    pub completed: i64,
    pub exited: i64,
    pub failed: i64,
    /// Reached the goal (once per execution).
    pub converted: i64,
}

impl Counters {
    /// Adds `o`.
    pub fn merge(&mut self, o: &Counters) {
        self.entered += o.entered;
        self.in_flight += o.in_flight;
        self.completed += o.completed;
        self.exited += o.exited;
        self.failed += o.failed;
        self.converted += o.converted;
    }
}

/// What a batch adds to one step's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepDelta {
    /// The step completed or started a wait.
    pub runs: i64,
    /// Executions that started waiting at the step, less those that stopped.
    pub waiting: i64,
    /// Times each branch was taken.
    pub branches: BTreeMap<String, i64>,
    /// Executions that took each branch and then converted.
    pub conversions: BTreeMap<String, i64>,
}

impl StepDelta {
    /// Adds 1 to `branch` in `map`.
    pub fn count(map: &mut BTreeMap<String, i64>, branch: &str) {
        *map.entry(branch.to_owned()).or_default() += 1;
    }
}

/// A version of a journey: (tenant, journey, version).
pub type VersionKey = (Uuid, Uuid, i32);

/// What a batch adds to the figures.
#[derive(Debug, Default)]
pub struct Deltas {
    pub versions: BTreeMap<VersionKey, Counters>,
    pub steps: BTreeMap<(VersionKey, String), StepDelta>,
}

impl Deltas {
    pub fn version(&mut self, key: VersionKey) -> &mut Counters {
        self.versions.entry(key).or_default()
    }

    pub fn step(&mut self, key: VersionKey, step: &str) -> &mut StepDelta {
        self.steps.entry((key, step.to_owned())).or_default()
    }

    /// The versions' counters summed per journey: (tenant, journey) → counters.
    pub fn journeys(&self) -> BTreeMap<(Uuid, Uuid), Counters> {
        let mut out: BTreeMap<(Uuid, Uuid), Counters> = BTreeMap::new();
        for ((tenant, journey, _), c) in &self.versions {
            out.entry((*tenant, *journey)).or_default().merge(c);
        }
        out
    }
}

fn json(map: &BTreeMap<String, i64>) -> serde_json::Value {
    serde_json::to_value(map).unwrap_or_default()
}

/// `col = col + EXCLUDED.col` for a `{key: n}` map (rows of `alias`).
fn add_map(alias: &str, col: &str) -> String {
    format!(
        "{col} = CASE WHEN EXCLUDED.{col} = '{{}}'::jsonb THEN {alias}.{col} ELSE ( \
           SELECT jsonb_object_agg(k, coalesce(({alias}.{col} ->> k)::bigint, 0) \
                                    + coalesce((EXCLUDED.{col} ->> k)::bigint, 0)) \
           FROM jsonb_object_keys({alias}.{col} || EXCLUDED.{col}) AS k) END"
    )
}

/// Adds the batch's counters per version to `table` (`journey_version_stats`).
pub async fn add_versions(
    conn: &mut PgConnection,
    table: &str,
    d: &Deltas,
) -> Result<(), ProjectionError> {
    if d.versions.is_empty() {
        return Ok(());
    }
    let keys: Vec<&VersionKey> = d.versions.keys().collect();
    let col = |f: fn(&Counters) -> i64| -> Vec<i64> { d.versions.values().map(f).collect() };
    sqlx::query(&format!(
        "INSERT INTO {table} AS s (tenant_id, journey_id, version, entered, in_flight, completed, \
                                   exited, failed, converted) \
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::int[], $4::bigint[], $5::bigint[], \
                              $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[]) \
         ON CONFLICT (tenant_id, journey_id, version) DO UPDATE SET \
           entered = s.entered + EXCLUDED.entered, in_flight = s.in_flight + EXCLUDED.in_flight, \
           completed = s.completed + EXCLUDED.completed, exited = s.exited + EXCLUDED.exited, \
           failed = s.failed + EXCLUDED.failed, converted = s.converted + EXCLUDED.converted"
    ))
    .bind(keys.iter().map(|k| k.0).collect::<Vec<_>>())
    .bind(keys.iter().map(|k| k.1).collect::<Vec<_>>())
    .bind(keys.iter().map(|k| k.2).collect::<Vec<_>>())
    .bind(col(|c| c.entered))
    .bind(col(|c| c.in_flight))
    .bind(col(|c| c.completed))
    .bind(col(|c| c.exited))
    .bind(col(|c| c.failed))
    .bind(col(|c| c.converted))
    .persistent(false)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Adds the batch's figures per step to `table` (`journey_step_stats`).
pub async fn add_steps(
    conn: &mut PgConnection,
    table: &str,
    d: &Deltas,
) -> Result<(), ProjectionError> {
    if d.steps.is_empty() {
        return Ok(());
    }
    let keys: Vec<&(VersionKey, String)> = d.steps.keys().collect();
    let steps: Vec<&StepDelta> = d.steps.values().collect();
    sqlx::query(&format!(
        "INSERT INTO {table} AS s (tenant_id, journey_id, version, step, runs, waiting, branches, \
                                   conversions) \
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::int[], $4::text[], $5::bigint[], \
                              $6::bigint[], $7::jsonb[], $8::jsonb[]) \
         ON CONFLICT (tenant_id, journey_id, version, step) DO UPDATE SET \
           runs = s.runs + EXCLUDED.runs, waiting = s.waiting + EXCLUDED.waiting, {}, {}",
        add_map("s", "branches"),
        add_map("s", "conversions"),
    ))
    .bind(keys.iter().map(|k| k.0 .0).collect::<Vec<_>>())
    .bind(keys.iter().map(|k| k.0 .1).collect::<Vec<_>>())
    .bind(keys.iter().map(|k| k.0 .2).collect::<Vec<_>>())
    .bind(keys.iter().map(|k| k.1.as_str()).collect::<Vec<_>>())
    .bind(steps.iter().map(|s| s.runs).collect::<Vec<_>>())
    .bind(steps.iter().map(|s| s.waiting).collect::<Vec<_>>())
    .bind(steps.iter().map(|s| json(&s.branches)).collect::<Vec<_>>())
    .bind(
        steps
            .iter()
            .map(|s| json(&s.conversions))
            .collect::<Vec<_>>(),
    )
    .persistent(false)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
