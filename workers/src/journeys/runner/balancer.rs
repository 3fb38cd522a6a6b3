//! Balancer places: how many executions each path of a balancer step admitted in its current
//! window, locked for the batch's transaction and written back once.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::journey::definition::{BalancedPath, StepKind};
use domain::journey::Version;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::journeys::JourneyError;

/// A balancer path's window: (journey, step, path, window start).
type PathWindow = (Uuid, String, String, DateTime<Utc>);

/// Balancer places per path and window (taken, changed by this batch), locked for the batch.
#[derive(Default)]
pub(super) struct Balancer {
    taken: HashMap<PathWindow, (i32, bool)>,
}

impl Balancer {
    /// Locks (creating them) the current window's rows of every balancer path of `versions`.
    pub(super) async fn load(
        conn: &mut PgConnection,
        tenant: Uuid,
        versions: &HashMap<(Uuid, u32), Arc<Version>>,
        now: DateTime<Utc>,
    ) -> Result<Self, JourneyError> {
        let mut out = Self::default();
        for ((journey, _), v) in versions {
            for s in &v.definition.steps {
                let StepKind::Balancer(b) = &s.kind else {
                    continue;
                };
                for p in &b.paths {
                    let window = p.per.start(now);
                    let key = (*journey, s.id.clone(), p.key.clone(), window);
                    if out.taken.contains_key(&key) {
                        continue;
                    }
                    sqlx::query(
                        "INSERT INTO journey_balancer (tenant_id, journey_id, step, path, window_start) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    )
                    .bind(tenant)
                    .bind(journey)
                    .bind(&s.id)
                    .bind(&p.key)
                    .bind(window)
                    .execute(&mut *conn)
                    .await?;
                    let (taken,): (i32,) = sqlx::query_as(
                        "SELECT taken FROM journey_balancer WHERE tenant_id = $1 AND journey_id = $2 \
                         AND step = $3 AND path = $4 AND window_start = $5 FOR UPDATE",
                    )
                    .bind(tenant)
                    .bind(journey)
                    .bind(&s.id)
                    .bind(&p.key)
                    .bind(window)
                    .fetch_one(&mut *conn)
                    .await?;
                    out.taken.insert(key, (taken, false));
                }
            }
        }
        Ok(out)
    }

    pub(super) fn admit(
        &mut self,
        journey: Uuid,
        step: &str,
        path: &BalancedPath,
        now: DateTime<Utc>,
    ) -> bool {
        let key = (
            journey,
            step.to_owned(),
            path.key.clone(),
            path.per.start(now),
        );
        let Some((taken, dirty)) = self.taken.get_mut(&key) else {
            return false;
        };
        if (*taken as i64) < i64::from(path.rate_limit) {
            *taken += 1;
            *dirty = true;
            true
        } else {
            false
        }
    }

    pub(super) async fn save(
        &self,
        conn: &mut PgConnection,
        tenant: Uuid,
    ) -> Result<(), JourneyError> {
        for ((journey, step, path, window), (taken, dirty)) in &self.taken {
            if !dirty {
                continue;
            }
            sqlx::query(
                "UPDATE journey_balancer SET taken = $6 WHERE tenant_id = $1 AND journey_id = $2 \
                 AND step = $3 AND path = $4 AND window_start = $5",
            )
            .bind(tenant)
            .bind(journey)
            .bind(step)
            .bind(path)
            .bind(window)
            .bind(taken)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}
