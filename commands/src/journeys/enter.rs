//! Entering contacts into a journey: the one path of the API's entries, the trigger worker's
//! (events, segment entries, schedules) and `link` steps. In the caller's transaction: the
//! journey must be live; the re-entry policy is decided in `journey_entries` (one statement
//! for the whole batch); each entry's `JourneyEntered` is appended and its `journey_runs` row
//! written, due now.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use domain::journey::definition::Reentry;
use domain::journey::{Execution, ExecutionCommand, ExecutionEvent, TriggerKind, Version};
use event_store::append::AppendError;
use event_store::{recorded, Cursor, EventMetadata, StoreError};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::executor::{Decided, Executor};

/// Why entries could not be made.
#[derive(Debug, thiserror::Error)]
pub enum EnterError {
    /// The journey is not live (never published, paused, archived) or does not exist.
    #[error("the journey is not live")]
    NotLive,
    /// The trigger is not in the journey's live version.
    #[error("no trigger {0} in the journey's live version")]
    NoTrigger(String),
    #[error("an execution was appended concurrently")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for EnterError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

impl From<AppendError> for EnterError {
    fn from(e: AppendError) -> Self {
        match e {
            AppendError::Conflict => Self::Conflict,
            AppendError::Store(e) => Self::Store(e),
        }
    }
}

/// Where an entry comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// A trigger of the live version, by id.
    Trigger(String),
    /// A `link` step of another execution: enters at the API trigger's entrance (else the
    /// first trigger's).
    Link(Uuid),
    /// `POST /api/v1/journeys/{id}/entries`: the API trigger's entrance.
    Api,
}

/// One contact to enter, with the execution's id (derived by the caller where a repeat must
/// be a no-op: a trigger event's id, a link step's run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub contact_id: Uuid,
    pub execution_id: Uuid,
}

#[derive(Debug, Clone, Default)]
pub struct Entered {
    /// `(contact, execution)` of the entries made.
    pub entered: Vec<(Uuid, Uuid)>,
    /// Contacts the re-entry policy kept out (or whose execution existed already).
    pub refused: Vec<Uuid>,
    pub cursor: Option<Cursor>,
}

/// A published version of a journey.
pub async fn load_version(
    conn: &mut PgConnection,
    tenant: Uuid,
    journey: Uuid,
    version: u32,
) -> Result<Option<Version>, StoreError> {
    let row: Option<(sqlx::types::Json<Version>,)> = sqlx::query_as(
        "SELECT body FROM journey_versions \
         WHERE tenant_id = $1 AND journey_id = $2 AND version = $3",
    )
    .bind(tenant)
    .bind(journey)
    .bind(version as i32)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|(v,)| v.0))
}

/// The live version of a journey (`None`: not live).
pub async fn live_version(
    conn: &mut PgConnection,
    tenant: Uuid,
    journey: Uuid,
) -> Result<Option<Version>, StoreError> {
    let row: Option<(i32,)> = sqlx::query_as(
        "SELECT version FROM journey_states \
         WHERE tenant_id = $1 AND journey_id = $2 AND status = 'live' FOR SHARE",
    )
    .bind(tenant)
    .bind(journey)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some((v,)) => load_version(conn, tenant, journey, v as u32).await,
        None => Ok(None),
    }
}

/// Enters `entries` into journey `journey_id` of `tenant`, in the caller's transaction.
#[allow(clippy::too_many_arguments)]
pub async fn enter_in(
    conn: &mut PgConnection,
    executions: &Executor<Execution>,
    tenant: Uuid,
    journey_id: Uuid,
    via: &Via,
    entries: &[Entry],
    metadata: &EventMetadata,
    now: DateTime<Utc>,
) -> Result<Entered, EnterError> {
    let Some(version) = live_version(conn, tenant, journey_id).await? else {
        return Err(EnterError::NotLive);
    };
    let d = &version.definition;
    let trigger = match via {
        Via::Trigger(id) => d.triggers.iter().find(|t| t.id == *id),
        Via::Api | Via::Link(_) => d
            .triggers
            .iter()
            .find(|t| matches!(t.kind, TriggerKind::Api))
            .or(match via {
                Via::Link(_) => d.triggers.first(),
                _ => None,
            }),
    };
    let Some(trigger) = trigger else {
        return Err(EnterError::NoTrigger(match via {
            Via::Trigger(id) => id.clone(),
            _ => "api".to_owned(),
        }));
    };
    let trigger_name = match via {
        Via::Link(from) => format!("link:{from}"),
        _ => trigger.id.clone(),
    };
    let mut out = Entered::default();
    // One entry per contact and per execution id; executions that exist already are left.
    let mut contacts = HashSet::new();
    let mut ids = HashSet::new();
    let mut wanted = Vec::new();
    for e in entries {
        if contacts.insert(e.contact_id) && ids.insert(e.execution_id) {
            wanted.push(*e);
        } else {
            out.refused.push(e.contact_id);
        }
    }
    let streams: Vec<String> = wanted
        .iter()
        .map(|e| recorded::stream_id(tenant, e.execution_id))
        .collect();
    let existing: HashSet<Uuid> = event_store::reader::existing_streams(
        &mut *conn,
        <domain::journey::Execution as cqrs_es::Aggregate>::TYPE,
        &streams,
    )
    .await?
    .iter()
    .filter_map(|s| recorded::entity_of(s))
    .collect();
    wanted.retain(|e| {
        let keep = !existing.contains(&e.execution_id);
        if !keep {
            out.refused.push(e.contact_id);
        }
        keep
    });
    if wanted.is_empty() {
        return Ok(out);
    }
    // The re-entry policy, for the whole batch in one statement.
    let contact_ids: Vec<Uuid> = wanted.iter().map(|e| e.contact_id).collect();
    let conflict = match d.reentry {
        Reentry::Never => "DO NOTHING".to_owned(),
        Reentry::After { .. } => "DO UPDATE SET last_entered_at = excluded.last_entered_at, \
             entries = journey_entries.entries + 1, active = journey_entries.active + 1 \
             WHERE journey_entries.active = 0 AND journey_entries.last_entered_at <= $5"
            .to_owned(),
        Reentry::Concurrent => "DO UPDATE SET last_entered_at = excluded.last_entered_at, \
             entries = journey_entries.entries + 1, active = journey_entries.active + 1"
            .to_owned(),
    };
    let cutoff = match d.reentry {
        Reentry::After { period } => now - period.duration(),
        _ => now,
    };
    let admitted: Vec<(Uuid,)> = sqlx::query_as(&format!(
        "INSERT INTO journey_entries (tenant_id, journey_id, contact_id, last_entered_at) \
         SELECT $1, $2, c, $3 FROM UNNEST($4::uuid[]) AS c \
         ON CONFLICT (tenant_id, journey_id, contact_id) {conflict} \
         RETURNING contact_id"
    ))
    .bind(tenant)
    .bind(journey_id)
    .bind(now)
    .bind(&contact_ids)
    .bind(cutoff)
    .fetch_all(&mut *conn)
    .await?;
    let admitted: HashSet<Uuid> = admitted.into_iter().map(|(c,)| c).collect();
    let mut decided = Vec::new();
    let (mut run_ids, mut run_contacts, mut states, mut listens) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for e in wanted {
        if !admitted.contains(&e.contact_id) {
            out.refused.push(e.contact_id);
            continue;
        }
        let command = ExecutionCommand::Enter {
            journey_id,
            version: version.number,
            contact_id: e.contact_id,
            trigger: trigger_name.clone(),
            entry: trigger.entry.clone(),
            now,
        };
        let mut state = Execution::default();
        let events = state
            .decide(command)
            .map_err(|x| StoreError::Malformed(x.to_string()))?;
        for ev in &events {
            cqrs_es::Aggregate::apply(&mut state, ev.clone());
        }
        decided.extend(events.into_iter().map(|event: ExecutionEvent| Decided {
            id: e.execution_id,
            version: 0,
            event,
        }));
        run_ids.push(e.execution_id);
        run_contacts.push(e.contact_id);
        listens.push(state.listens(&version).join("\u{1f}"));
        states
            .push(serde_json::to_value(&state).map_err(|x| StoreError::Malformed(x.to_string()))?);
        out.entered.push((e.contact_id, e.execution_id));
    }
    out.cursor = executions
        .append_decided(conn, tenant, &decided, metadata)
        .await?;
    sqlx::query(
        "INSERT INTO journey_runs \
           (tenant_id, execution_id, journey_id, version, contact_id, seq, state, due_at, listens) \
         SELECT $1, u.id, $2, $3, u.contact, 1, u.state, $4, string_to_array(u.listens, E'\\x1f') \
         FROM UNNEST($5::uuid[], $6::uuid[], $7::jsonb[], $8::text[]) AS u(id, contact, state, listens)",
    )
    .bind(tenant)
    .bind(journey_id)
    .bind(version.number as i32)
    .bind(now)
    .bind(&run_ids)
    .bind(&run_contacts)
    .bind(&states)
    .bind(&listens)
    .execute(&mut *conn)
    .await?;
    Ok(out)
}
