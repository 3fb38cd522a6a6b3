//! Which segments contacts belong in, decided in memory from the contacts read model.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use commands::segments::membership::{self, Decision};
use domain::segment::{Checked, MembershipReason};
use projections::contacts;
use sqlx::PgConnection;
use uuid::Uuid;

use super::WorkerError;

/// Decisions for `ids` of `tenant` against `segments` (in dependency order), at `now`.
///
/// A contact the read model no longer has (merged away, erased) leaves every segment it is
/// in. With `lock`, the contact rows are read `FOR SHARE`, so the contacts projection cannot
/// change them before the caller's transaction (which writes the decisions) ends.
pub async fn decide(
    conn: &mut PgConnection,
    tenant: Uuid,
    ids: &[Uuid],
    segments: &[(Uuid, Checked)],
    now: DateTime<Utc>,
    lock: bool,
) -> Result<Vec<Decision>, WorkerError> {
    let rows = contacts::get_many(&mut *conn, tenant, ids, lock).await?;
    let mut members = membership::current(conn, tenant, ids).await?;
    let types: Vec<String> = segments
        .iter()
        .flat_map(|(_, r)| r.event_types())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut events: HashMap<Uuid, Vec<(String, DateTime<Utc>)>> = HashMap::new();
    for (c, t, at) in contacts::timeline_events(&mut *conn, tenant, ids, &types).await? {
        events.entry(c).or_default().push((t, at));
    }
    let considered: BTreeSet<Uuid> = segments.iter().map(|(id, _)| *id).collect();
    let mut out = Vec::with_capacity(ids.len());
    let mut seen = BTreeSet::new();
    for row in rows {
        seen.insert(row.id);
        let current = members.remove(&row.id).unwrap_or_default();
        let mut facts = row.facts(current, events.remove(&row.id).unwrap_or_default());
        let mut target = BTreeSet::new();
        for (id, rule) in segments {
            if facts.matches(rule, now) {
                facts.segments.insert(*id);
                target.insert(*id);
            } else {
                facts.segments.remove(id);
            }
        }
        out.push(Decision {
            contact_id: row.id,
            considered: considered.clone(),
            target,
            reason: MembershipReason::Rule,
        });
    }
    for id in ids.iter().filter(|id| !seen.contains(id)) {
        if let Some(current) = members.remove(id) {
            out.push(Decision {
                contact_id: *id,
                considered: current,
                target: BTreeSet::new(),
                reason: MembershipReason::ContactGone,
            });
        }
    }
    Ok(out)
}
