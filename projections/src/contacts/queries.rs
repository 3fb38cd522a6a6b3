//! Reads of the `contacts` read model: one, a page, filtered, many at once, counted events;
//! and the facts segment rules and journey conditions evaluate.

use super::*;

/// One contact of a tenant.
pub async fn get<'e>(
    db: impl PgExecutor<'e>,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Option<ContactRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM contacts WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant_id)
    .bind(id)
    .persistent(false)
    .fetch_optional(db)
    .await
}

/// A page of a tenant's contacts in id (creation) order, after `after`.
pub async fn list<'e>(
    db: impl PgExecutor<'e>,
    tenant_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ContactRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM contacts WHERE tenant_id = $1 AND ($2::uuid IS NULL OR id > $2) \
         ORDER BY id LIMIT $3"
    ))
    .bind(tenant_id)
    .bind(after)
    .bind(limit)
    .persistent(false)
    .fetch_all(db)
    .await
}

/// Which contacts an export (or a filtered list) takes.
#[derive(Debug, Clone, Default)]
pub struct ContactFilter {
    pub tag: Option<String>,
    pub stage: Option<String>,
    pub company_id: Option<Uuid>,
    /// Members of this segment (static or dynamic).
    pub segment_id: Option<Uuid>,
    /// Emails that start with this (lowercased; `%` and `_` match themselves).
    pub email_prefix: Option<String>,
}

/// A page of a tenant's contacts matching `filter`, in id order, after `after`.
pub async fn list_filtered<'e>(
    db: impl PgExecutor<'e>,
    tenant_id: Uuid,
    filter: &ContactFilter,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ContactRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM contacts WHERE tenant_id = $1 AND ($2::uuid IS NULL OR id > $2) \
           AND ($3::text IS NULL OR tags @> ARRAY[$3]) \
           AND ($4::text IS NULL OR stage = $4) \
           AND ($5::uuid IS NULL OR company_ids @> ARRAY[$5]) \
           AND ($7::uuid IS NULL OR EXISTS (SELECT 1 FROM segment_members m \
                WHERE m.tenant_id = contacts.tenant_id AND m.segment_id = $7 \
                  AND m.contact_id = contacts.id)) \
           AND ($8::text IS NULL OR email LIKE $8) \
         ORDER BY id LIMIT $6"
    ))
    .bind(tenant_id)
    .bind(after)
    .bind(&filter.tag)
    .bind(&filter.stage)
    .bind(filter.company_id)
    .bind(limit)
    .bind(filter.segment_id)
    .bind(
        filter
            .email_prefix
            .as_deref()
            .map(crate::like::prefix_pattern),
    )
    .persistent(false)
    .fetch_all(db)
    .await
}

/// The contacts of a tenant with these ids (those that exist); `FOR SHARE` when `lock`, so
/// the projection cannot change them until the caller's transaction ends.
pub async fn get_many<'e>(
    db: impl PgExecutor<'e>,
    tenant_id: Uuid,
    ids: &[Uuid],
    lock: bool,
) -> Result<Vec<ContactRow>, sqlx::Error> {
    let lock = if lock { " FOR SHARE" } else { "" };
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM contacts WHERE tenant_id = $1 AND id = ANY($2){lock}"
    ))
    .bind(tenant_id)
    .bind(ids)
    .persistent(false)
    .fetch_all(db)
    .await
}

/// Timeline events of `types` for these contacts since `since` (all time when `None`),
/// as `(contact, event type, when)`: what `event` conditions of segment rules count.
pub async fn timeline_events<'e>(
    db: impl PgExecutor<'e>,
    tenant_id: Uuid,
    ids: &[Uuid],
    types: &[String],
) -> Result<Vec<(Uuid, String, DateTime<Utc>)>, sqlx::Error> {
    if types.is_empty() {
        return Ok(vec![]);
    }
    sqlx::query_as(
        "SELECT contact_id, event_type, recorded_at FROM contact_timeline \
         WHERE tenant_id = $1 AND contact_id = ANY($2) AND event_type = ANY($3)",
    )
    .bind(tenant_id)
    .bind(ids)
    .bind(types)
    .persistent(false)
    .fetch_all(db)
    .await
}

impl ContactRow {
    /// What a segment rule sees of this contact, given its segments and timeline events.
    pub fn facts(
        &self,
        segments: BTreeSet<Uuid>,
        events: Vec<(String, DateTime<Utc>)>,
    ) -> ContactFacts {
        fn per_channel<T: serde::de::DeserializeOwned>(
            v: &serde_json::Value,
            key: &str,
        ) -> BTreeMap<Channel, T> {
            v.as_object()
                .into_iter()
                .flatten()
                .filter_map(|(ch, x)| {
                    let ch = Channel::parse(ch).ok()?;
                    let t = serde_json::from_value(x.get(key)?.clone()).ok()?;
                    Some((ch, t))
                })
                .collect()
        }
        ContactFacts {
            email: self.email.clone(),
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            phone: self.phone.clone(),
            time_zone: self.time_zone.clone(),
            locale: self.locale.clone(),
            stage: self.stage.clone(),
            points: self.points,
            created_at: self.created_at,
            fields: self.fields.as_object().cloned().unwrap_or_default(),
            tags: self.tags.iter().cloned().collect(),
            consent: per_channel(&self.consent, "status"),
            do_not_contact: per_channel(&self.do_not_contact, "reason"),
            segments,
            events,
        }
    }
}

/// How many contacts the tenant has, and how many of them were created since `since`.
pub async fn counts<'e>(
    db: impl PgExecutor<'e>,
    tenant_id: Uuid,
    since: DateTime<Utc>,
) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE created_at >= $2) FROM contacts WHERE tenant_id = $1",
    )
    .bind(tenant_id)
    .bind(since)
    .persistent(false)
    .fetch_one(db)
    .await
}
