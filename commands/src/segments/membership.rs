//! The one writer of segment memberships: it decides, for a set of contacts, which segments
//! each enters or leaves, appends those `SegmentEntered` / `SegmentExited` events to the
//! contacts' `segment_membership` streams (one batched append) and updates
//! `segment_members` — in the caller's transaction, so the table and the log never disagree.
//!
//! Callers: the static-segment routes (add / remove), the segment evaluator (a contact
//! changed) and the refresher (a whole segment re-evaluated). Two writers deciding for one
//! contact at once collide on its stream's next sequence number; the loser's transaction
//! fails with [`AppendError::Conflict`] and is retried from the start.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use domain::segment::{MembershipReason, SegmentMembership, SegmentMembershipEvent};
use event_store::append::{append, AppendError, NewEvent};
use event_store::{Cursor, EventMetadata, StoreError};
use sqlx::PgConnection;
use uuid::Uuid;

/// What one contact's memberships should be among `considered` segments (others untouched).
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub contact_id: Uuid,
    pub considered: BTreeSet<Uuid>,
    pub target: BTreeSet<Uuid>,
    pub reason: MembershipReason,
}

/// What a write changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Written {
    pub entered: usize,
    pub exited: usize,
    /// The cursor of the last appended event (none if nothing changed).
    pub cursor: Option<Cursor>,
}

/// The segments each of `contacts` is in now (as `segment_members` says, in `conn`'s view).
pub async fn current(
    conn: &mut PgConnection,
    tenant: Uuid,
    contacts: &[Uuid],
) -> Result<HashMap<Uuid, BTreeSet<Uuid>>, StoreError> {
    let rows: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT contact_id, segment_id FROM segment_members \
         WHERE tenant_id = $1 AND contact_id = ANY($2)",
    )
    .bind(tenant)
    .bind(contacts)
    .persistent(false)
    .fetch_all(&mut *conn)
    .await?;
    let mut out: HashMap<Uuid, BTreeSet<Uuid>> = HashMap::new();
    for (c, s) in rows {
        out.entry(c).or_default().insert(s);
    }
    Ok(out)
}

/// Applies `decisions` (each contact at most once) for `tenant` in `conn`'s transaction.
pub async fn write(
    conn: &mut PgConnection,
    tenant: Uuid,
    decisions: &[Decision],
    metadata: &EventMetadata,
    now: DateTime<Utc>,
) -> Result<Written, AppendError> {
    if decisions.is_empty() {
        return Ok(Written::default());
    }
    let contacts: Vec<Uuid> = decisions.iter().map(|d| d.contact_id).collect();
    let members = current(conn, tenant, &contacts).await?;
    let mut changes: BTreeMap<Uuid, Vec<SegmentMembershipEvent>> = BTreeMap::new();
    for d in decisions {
        let state = SegmentMembership {
            segments: members.get(&d.contact_id).cloned().unwrap_or_default(),
        };
        let events = state.reconcile(d.contact_id, &d.considered, &d.target, d.reason);
        if !events.is_empty() {
            changes.insert(d.contact_id, events);
        }
    }
    if changes.is_empty() {
        return Ok(Written::default());
    }
    let streams: Vec<String> = changes
        .keys()
        .map(|c| event_store::recorded::stream_id(tenant, *c))
        .collect();
    let versions: HashMap<String, i64> =
        event_store::reader::stream_versions(&mut *conn, SegmentMembership::TYPE, &streams).await?;

    let meta = serde_json::to_value(metadata.to_map()).map_err(malformed)?;
    let mut owned = Vec::new();
    let (mut entered, mut exited) = (Vec::new(), Vec::new());
    for ((contact, events), stream) in changes.iter().zip(&streams) {
        let mut seq = versions.get(stream).copied().unwrap_or(0);
        for e in events {
            seq += 1;
            let payload = serde_json::to_string(e).map_err(malformed)?;
            owned.push((stream.clone(), seq, e.event_type(), payload));
            match e {
                SegmentMembershipEvent::SegmentEntered { segment_id, .. } => {
                    entered.push((*segment_id, *contact));
                }
                SegmentMembershipEvent::SegmentExited { segment_id, .. } => {
                    exited.push((*segment_id, *contact));
                }
            }
        }
    }
    let version = "1.0";
    let batch: Vec<NewEvent<'_>> = owned
        .iter()
        .map(|(stream, seq, event_type, payload)| NewEvent {
            aggregate_type: SegmentMembership::TYPE,
            aggregate_id: stream,
            sequence: *seq,
            event_type,
            event_version: version,
            payload,
            metadata: &meta,
        })
        .collect();
    let cursor = append(&mut *conn, &batch).await?;

    let (seg_in, con_in): (Vec<Uuid>, Vec<Uuid>) = entered.iter().copied().unzip();
    sqlx::query(
        "INSERT INTO segment_members (tenant_id, segment_id, contact_id, entered_at) \
         SELECT $1, s, c, $4 FROM UNNEST($2::uuid[], $3::uuid[]) AS x(s, c)",
    )
    .bind(tenant)
    .bind(&seg_in)
    .bind(&con_in)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::from)?;
    let (seg_out, con_out): (Vec<Uuid>, Vec<Uuid>) = exited.iter().copied().unzip();
    sqlx::query(
        "DELETE FROM segment_members m USING UNNEST($2::uuid[], $3::uuid[]) AS x(s, c) \
         WHERE m.tenant_id = $1 AND m.segment_id = x.s AND m.contact_id = x.c",
    )
    .bind(tenant)
    .bind(&seg_out)
    .bind(&con_out)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::from)?;
    Ok(Written {
        entered: entered.len(),
        exited: exited.len(),
        cursor,
    })
}

/// Queues whole-segment re-evaluations `(tenant, segment)` for the refresher (coalesced: a
/// queued segment is queued once, and a refresh in progress runs again after it ends).
pub async fn queue_refresh(
    conn: &mut PgConnection,
    segments: &BTreeSet<(Uuid, Uuid)>,
) -> Result<(), StoreError> {
    if segments.is_empty() {
        return Ok(());
    }
    let (tenants, ids): (Vec<Uuid>, Vec<Uuid>) = segments.iter().copied().unzip();
    sqlx::query(
        "INSERT INTO segment_refresh (tenant_id, segment_id) \
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[]) \
         ON CONFLICT (tenant_id, segment_id) DO UPDATE SET requested_at = now()",
    )
    .bind(&tenants)
    .bind(&ids)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn malformed(e: serde_json::Error) -> StoreError {
    StoreError::Malformed(e.to_string())
}
