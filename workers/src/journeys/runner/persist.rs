//! A batch's outcome written in its transaction: the executions' events (one append), the
//! delivery jobs their message steps request, entries into linked journeys, balancer places,
//! the rows' new state (or their removal, finished), signals back to the inbox, and the
//! events `event` steps emitted routed to other executions and triggers.

use chrono::{DateTime, Utc};
use commands::journeys::enter::{enter_in, EnterError, Via};
use event_store::EventMetadata;
use sqlx::PgConnection;
use uuid::Uuid;

use super::advance::Outcome;
use super::balancer::Balancer;
use super::JourneyRunner;
use crate::journeys::JourneyError;

impl JourneyRunner {
    /// Writes `outcome` (contact changes aside: the caller applies them before the commit);
    /// whether it appended events.
    pub(super) async fn persist(
        &self,
        tx: &mut PgConnection,
        tenant: Uuid,
        meta: &EventMetadata,
        outcome: Outcome,
        balancer: &Balancer,
        now: DateTime<Utc>,
    ) -> Result<bool, JourneyError> {
        let Outcome {
            decided,
            jobs,
            links,
            emitted,
            runs,
            finished,
            returned,
            ..
        } = outcome;
        for (execution, signal) in &returned {
            sqlx::query(
                "INSERT INTO journey_inbox (tenant_id, execution_id, signal) VALUES ($1, $2, $3)",
            )
            .bind(tenant)
            .bind(execution)
            .bind(sqlx::types::Json(signal))
            .execute(&mut *tx)
            .await?;
        }
        let appended = !decided.is_empty();
        self.state
            .journeys
            .writer()
            .executions
            .append_decided(tx, tenant, &decided, meta)
            .await?;
        if !jobs.is_empty() {
            commands::delivery::jobs::request_each_in(tx, tenant, meta, &jobs, false).await?;
        }
        for (journey, entries) in links {
            for (from, entry) in entries {
                match enter_in(
                    tx,
                    &self.state.journeys.writer().executions,
                    tenant,
                    journey,
                    &Via::Link(from),
                    &[entry],
                    meta,
                    now,
                )
                .await
                {
                    Ok(_) => {}
                    Err(EnterError::NotLive) | Err(EnterError::NoTrigger(_)) => {
                        tracing::info!(%journey, "link to a journey that is not live: nobody entered");
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        balancer.save(tx, tenant).await?;
        let updated = !runs.ids.is_empty();
        if updated {
            sqlx::query(
                "UPDATE journey_runs r SET seq = u.seq, state = u.state, due_at = u.due, \
                   listens = string_to_array(u.listens, E'\\x1f') \
                 FROM UNNEST($2::uuid[], $3::bigint[], $4::jsonb[], $5::timestamptz[], $6::text[]) \
                   AS u(id, seq, state, due, listens) \
                 WHERE r.tenant_id = $1 AND r.execution_id = u.id",
            )
            .bind(tenant)
            .bind(&runs.ids)
            .bind(&runs.seq)
            .bind(&runs.state)
            .bind(&runs.due)
            .bind(&runs.listens)
            .execute(&mut *tx)
            .await?;
        }
        if !finished.is_empty() {
            let ids: Vec<Uuid> = finished.iter().map(|f| f.0).collect();
            let journeys: Vec<Uuid> = finished.iter().map(|f| f.1).collect();
            let contacts: Vec<Uuid> = finished.iter().map(|f| f.2).collect();
            sqlx::query("DELETE FROM journey_runs WHERE tenant_id = $1 AND execution_id = ANY($2)")
                .bind(tenant)
                .bind(&ids)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE journey_entries e SET active = greatest(e.active - u.n, 0) \
                 FROM (SELECT j, c, count(*) AS n FROM UNNEST($2::uuid[], $3::uuid[]) AS x(j, c) \
                       GROUP BY j, c) AS u \
                 WHERE e.tenant_id = $1 AND e.journey_id = u.j AND e.contact_id = u.c",
            )
            .bind(tenant)
            .bind(&journeys)
            .bind(&contacts)
            .execute(&mut *tx)
            .await?;
        }
        // Custom events that `event` steps emitted reach other executions and triggers like
        // recorded ones (after the rows above, so a signal to one of them makes it due).
        if !emitted.is_empty() {
            crate::journeys::triggers::route(
                tx,
                &self.state.journeys.writer().executions,
                tenant,
                &emitted,
                now,
            )
            .await?;
        }
        Ok(appended)
    }
}
