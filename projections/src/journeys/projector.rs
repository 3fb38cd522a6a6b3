//! The `journeys` projection: journey summaries, executions, and the figures per version
//! and per step, in one transaction per batch under one checkpoint.

use async_trait::async_trait;
use cqrs_es::Aggregate;
use domain::journey::aggregate::{Journey, JourneyEvent};
use domain::journey::execution::Execution;
use event_store::RecordedEvent;
use sqlx::PgConnection;

use super::figures::{self, Deltas};
use super::summaries::{self, SummaryRow};
use super::{executions, EXECUTIONS, STEP_STATS, VERSION_STATS};
use crate::{json_rows, Projection, ProjectionError, Target};

pub struct JourneysProjection;

#[async_trait]
impl Projection for JourneysProjection {
    fn name(&self) -> &'static str {
        "journeys"
    }

    fn table(&self) -> &'static str {
        "journey_summaries"
    }

    fn more_tables(&self) -> &'static [&'static str] {
        &[EXECUTIONS, VERSION_STATS, STEP_STATS]
    }

    /// Journey and execution events hold no sealed values.
    fn needs_personal_data(&self) -> bool {
        false
    }

    fn concerns(&self, e: &RecordedEvent) -> bool {
        e.aggregate_type == Journey::TYPE || e.aggregate_type == Execution::TYPE
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&[Journey::TYPE, Execution::TYPE])
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        target: &Target,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        // Journeys first: one created in this batch is there for its executions' counts.
        json_rows::fold_rows::<SummaryRow, JourneyEvent>(
            conn,
            target,
            events,
            Journey::TYPE,
            SummaryRow::apply,
            summaries::UPDATED,
        )
        .await?;
        let mut d = Deltas::default();
        executions::apply(conn, &target.table_named(EXECUTIONS), events, &mut d).await?;
        summaries::add_counts(conn, &target.table, &d.journeys()).await?;
        figures::add_versions(conn, &target.table_named(VERSION_STATS), &d).await?;
        figures::add_steps(conn, &target.table_named(STEP_STATS), &d).await
    }
}
