//! The `contacts` read model: one row per contact, for lists and detail views.
//!
//! A batch is applied by loading the rows it touches, folding the events over them in memory
//! ([`ContactRow::apply`]) and writing every touched row back with one multi-row upsert. The
//! live projector and `replay rebuild` both run exactly this code.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::contact::{Channel, Contact, ContactEvent};
use domain::segment::ContactFacts;
use event_store::RecordedEvent;
use serde::Serialize;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::{Projection, ProjectionError, Target};

pub struct ContactsProjection;

/// A contact as lists and detail views show it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ContactRow {
    #[serde(skip)]
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// E.164, e.g. `+4915123456789`.
    pub phone: Option<String>,
    /// IANA time zone, e.g. `Europe/Paris` (the organization's applies when absent).
    pub time_zone: Option<String>,
    /// BCP 47, e.g. `fr-FR`.
    pub locale: Option<String>,
    /// Custom fields: key → text, number, boolean or list of texts.
    #[schema(value_type = Object)]
    pub fields: serde_json::Value,
    pub tags: Vec<String>,
    /// Per channel (`email`, `sms`, `push`): `{status, source, at}`.
    #[schema(value_type = Object)]
    pub consent: serde_json::Value,
    /// Per channel: `{reason, note}` (unsubscribed, bounced, complaint, manual).
    #[schema(value_type = Object)]
    pub do_not_contact: serde_json::Value,
    /// Per channel: `{max, per_days}`.
    #[schema(value_type = Object)]
    pub frequency: serde_json::Value,
    pub stage: Option<String>,
    pub points: i64,
    /// The companies the contact is linked to.
    pub company_ids: Vec<Uuid>,
    pub primary_company_id: Option<Uuid>,
    /// The member of the organization who owns the contact.
    pub owner_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The sequence number of the last event applied (the stream's version).
    pub version: i64,
}

/// Joins a row's tags for the upsert; tags cannot contain control characters (`Tag::parse`).
const TAG_SEPARATOR: &str = "\u{1f}";

pub(crate) const COLUMNS: &str = "tenant_id, id, email, first_name, last_name, phone, time_zone, locale, \
     fields, tags, consent, \
     do_not_contact, frequency, stage, points, company_ids, primary_company_id, owner_id, created_at, \
     updated_at, version";

impl ContactRow {
    /// Folds one event into the row (`None` before the contact exists). Events at or below
    /// the row's version are ignored.
    pub fn apply(
        row: Option<Self>,
        e: &RecordedEvent,
        event: ContactEvent,
        id: Uuid,
    ) -> Option<Self> {
        if let Some(r) = &row {
            if e.sequence <= r.version {
                return row;
            }
        }
        match (row, event) {
            (
                None,
                ContactEvent::ContactCreated {
                    email,
                    first_name,
                    last_name,
                    fields,
                    tags,
                    profile,
                },
            ) => Some(Self {
                tenant_id: e.tenant_id,
                id,
                email,
                first_name,
                last_name,
                phone: profile.phone,
                time_zone: profile.time_zone,
                locale: profile.locale,
                fields: serde_json::to_value(fields).unwrap_or_default(),
                tags: sorted(tags),
                consent: serde_json::json!({}),
                do_not_contact: serde_json::json!({}),
                frequency: serde_json::json!({}),
                stage: None,
                points: 0,
                company_ids: vec![],
                primary_company_id: None,
                owner_id: None,
                created_at: e.recorded_at,
                updated_at: e.recorded_at,
                version: e.sequence,
            }),
            (None, _) => None,
            (Some(mut r), event) => {
                match event {
                    ContactEvent::ContactCreated { .. } => return Some(r),
                    ContactEvent::ContactUpdated {
                        email,
                        first_name,
                        last_name,
                        fields_set,
                        fields_unset,
                        profile,
                        ..
                    } => {
                        r.phone = profile.phone;
                        r.time_zone = profile.time_zone;
                        r.locale = profile.locale;
                        r.email = email;
                        r.first_name = first_name;
                        r.last_name = last_name;
                        if let serde_json::Value::Object(map) = &mut r.fields {
                            for (k, v) in fields_set {
                                map.insert(k, serde_json::to_value(v).unwrap_or_default());
                            }
                            for k in fields_unset {
                                map.remove(&k);
                            }
                        }
                    }
                    ContactEvent::ContactTagsAdded { tags } => {
                        r.tags.extend(tags);
                        r.tags = sorted(std::mem::take(&mut r.tags));
                    }
                    ContactEvent::ContactTagRemoved { tag } => r.tags.retain(|t| *t != tag),
                    ContactEvent::ContactConsentChanged { channel, consent } => {
                        set(&mut r.consent, channel, Some(to_json(&consent)));
                    }
                    ContactEvent::ContactDoNotContactAdded {
                        channel,
                        reason,
                        note,
                    } => {
                        let mark = serde_json::json!({"reason": reason, "note": note, "at": e.recorded_at});
                        set(&mut r.do_not_contact, channel, Some(mark));
                    }
                    ContactEvent::ContactDoNotContactRemoved { channel } => {
                        set(&mut r.do_not_contact, channel, None);
                    }
                    ContactEvent::ContactFrequencyRuleChanged { channel, rule } => {
                        set(&mut r.frequency, channel, rule.map(|x| to_json(&x)));
                    }
                    ContactEvent::ContactStageChanged { to, .. } => r.stage = Some(to),
                    ContactEvent::ContactPointsChanged { total, .. } => r.points = total,
                    ContactEvent::ContactCompanyLinked {
                        company_id,
                        primary,
                    } => {
                        if !r.company_ids.contains(&company_id) {
                            r.company_ids.push(company_id);
                            r.company_ids.sort();
                        }
                        if primary {
                            r.primary_company_id = Some(company_id);
                        } else if r.primary_company_id == Some(company_id) {
                            r.primary_company_id = None;
                        }
                    }
                    ContactEvent::ContactOwnerChanged { owner } => r.owner_id = owner,
                    // Notes have their own read model (`contact_notes`).
                    ContactEvent::ContactNoteAdded { .. }
                    | ContactEvent::ContactNoteRemoved { .. } => {}
                    // Custom events are what the contact did (the timeline lists them), not a
                    // change of the contact: only the version moves.
                    ContactEvent::ContactEventRecorded { .. } => {
                        r.version = e.sequence;
                        return Some(r);
                    }
                    ContactEvent::ContactCompanyUnlinked { company_id } => {
                        r.company_ids.retain(|c| *c != company_id);
                        if r.primary_company_id == Some(company_id) {
                            r.primary_company_id = None;
                        }
                    }
                    ContactEvent::ContactMerged {
                        first_name,
                        last_name,
                        profile,
                        fields,
                        tags,
                        consent,
                        do_not_contact,
                        frequency,
                        stage,
                        points,
                        owner,
                        companies,
                        primary_company,
                        ..
                    } => {
                        r.first_name = first_name;
                        r.last_name = last_name;
                        r.phone = profile.phone;
                        r.time_zone = profile.time_zone;
                        r.locale = profile.locale;
                        r.fields = to_json(&fields);
                        r.tags = sorted(tags);
                        r.consent = to_json(&consent);
                        // A mark the survivor had keeps its time; one taken over is the
                        // survivor's from the merge on.
                        let mut marks = serde_json::Map::new();
                        for (channel, mark) in do_not_contact {
                            let key = to_json(&channel).as_str().unwrap_or_default().to_owned();
                            let since = r
                                .do_not_contact
                                .get(&key)
                                .filter(|old| {
                                    old.get("reason") == Some(&to_json(&mark.reason))
                                        && old.get("note") == Some(&to_json(&mark.note))
                                })
                                .and_then(|old| old.get("at").cloned())
                                .unwrap_or_else(|| to_json(&e.recorded_at));
                            marks.insert(
                                key,
                                serde_json::json!({"reason": mark.reason, "note": mark.note, "at": since}),
                            );
                        }
                        r.do_not_contact = serde_json::Value::Object(marks);
                        r.frequency = to_json(&frequency);
                        r.stage = stage;
                        r.points = points;
                        r.owner_id = owner;
                        r.company_ids = companies;
                        r.company_ids.sort();
                        r.primary_company_id = primary_company;
                    }
                    // The merged contact's row goes: the survivor answers for it. An erased
                    // contact's row goes for good.
                    ContactEvent::ContactMergedInto { .. } | ContactEvent::ContactErased { .. } => {
                        return None
                    }
                }
                r.updated_at = e.recorded_at;
                r.version = e.sequence;
                Some(r)
            }
        }
    }
}

fn to_json<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

/// Sets (or, with `None`, removes) the entry for `channel` of a per-channel JSON object.
fn set(map: &mut serde_json::Value, channel: Channel, value: Option<serde_json::Value>) {
    let key = to_json(&channel).as_str().unwrap_or_default().to_owned();
    if let serde_json::Value::Object(m) = map {
        match value {
            Some(v) => m.insert(key, v),
            None => m.remove(&key),
        };
    }
}

fn sorted(mut tags: Vec<String>) -> Vec<String> {
    tags.sort();
    tags.dedup();
    tags
}

#[async_trait]
impl Projection for ContactsProjection {
    fn name(&self) -> &'static str {
        "contacts"
    }

    fn table(&self) -> &'static str {
        "contacts"
    }

    fn concerns(&self, e: &RecordedEvent) -> bool {
        e.aggregate_type == <Contact as cqrs_es::Aggregate>::TYPE
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&[<Contact as cqrs_es::Aggregate>::TYPE])
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        target: &Target,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let mine: Vec<(&RecordedEvent, Uuid)> = events
            .iter()
            .filter(|e| e.aggregate_type == <Contact as cqrs_es::Aggregate>::TYPE)
            .filter_map(|e| e.entity_id().map(|id| (e, id)))
            .collect();
        if mine.is_empty() {
            return Ok(());
        }
        let mut keys: Vec<(Uuid, Uuid)> = mine.iter().map(|(e, id)| (e.tenant_id, *id)).collect();
        keys.sort_unstable();
        keys.dedup();
        let (tenants, ids): (Vec<Uuid>, Vec<Uuid>) = keys.into_iter().unzip();
        let existing: Vec<ContactRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM {} WHERE (tenant_id, id) IN \
             (SELECT * FROM UNNEST($1::uuid[], $2::uuid[]))",
            target.table
        ))
        .bind(&tenants)
        .bind(&ids)
        // Planned per execution: a plan cached while the table (or a rebuild's fresh shadow
        // table) was small would keep scanning it sequentially as it grows.
        .persistent(false)
        .fetch_all(&mut *conn)
        .await?;
        let mut rows: HashMap<Uuid, Option<ContactRow>> =
            existing.into_iter().map(|r| (r.id, Some(r))).collect();
        let mut merged = Vec::new();
        for (e, id) in mine {
            let event: ContactEvent = crate::decode(e)?;
            if matches!(
                event,
                ContactEvent::ContactMergedInto { .. } | ContactEvent::ContactErased { .. }
            ) {
                merged.push((e.tenant_id, id));
            }
            let slot = rows.entry(id).or_default();
            *slot = ContactRow::apply(slot.take(), e, event, id);
        }
        let touched: Vec<ContactRow> = rows.into_values().flatten().collect();
        upsert(&mut *conn, &target.table, &touched).await?;
        if !merged.is_empty() {
            let (tenants, ids): (Vec<Uuid>, Vec<Uuid>) = merged.into_iter().unzip();
            sqlx::query(&format!(
                "DELETE FROM {} WHERE (tenant_id, id) IN \
                 (SELECT * FROM UNNEST($1::uuid[], $2::uuid[]))",
                target.table
            ))
            .bind(&tenants)
            .bind(&ids)
            .persistent(false)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

/// Writes `rows` with one statement.
async fn upsert<'e>(
    db: impl PgExecutor<'e>,
    table: &str,
    rows: &[ContactRow],
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut tenant_ids = Vec::with_capacity(rows.len());
    let mut ids = Vec::with_capacity(rows.len());
    let mut emails = Vec::with_capacity(rows.len());
    let mut first_names = Vec::with_capacity(rows.len());
    let mut last_names = Vec::with_capacity(rows.len());
    let mut phones = Vec::with_capacity(rows.len());
    let mut zones = Vec::with_capacity(rows.len());
    let mut locales = Vec::with_capacity(rows.len());
    let mut fields = Vec::with_capacity(rows.len());
    let mut tags = Vec::with_capacity(rows.len());
    let mut consent = Vec::with_capacity(rows.len());
    let mut dnc = Vec::with_capacity(rows.len());
    let mut frequency = Vec::with_capacity(rows.len());
    let mut stages = Vec::with_capacity(rows.len());
    let mut points = Vec::with_capacity(rows.len());
    let mut companies = Vec::with_capacity(rows.len());
    let mut primaries = Vec::with_capacity(rows.len());
    let mut owners = Vec::with_capacity(rows.len());
    let mut created = Vec::with_capacity(rows.len());
    let mut updated = Vec::with_capacity(rows.len());
    let mut versions = Vec::with_capacity(rows.len());
    for r in rows {
        tenant_ids.push(r.tenant_id);
        ids.push(r.id);
        emails.push(r.email.as_str());
        first_names.push(r.first_name.as_deref());
        last_names.push(r.last_name.as_deref());
        phones.push(r.phone.as_deref());
        zones.push(r.time_zone.as_deref());
        locales.push(r.locale.as_deref());
        fields.push(&r.fields);
        tags.push(r.tags.join(TAG_SEPARATOR));
        consent.push(&r.consent);
        dnc.push(&r.do_not_contact);
        frequency.push(&r.frequency);
        stages.push(r.stage.as_deref());
        points.push(r.points);
        companies.push(
            r.company_ids
                .iter()
                .map(Uuid::to_string)
                .collect::<Vec<_>>()
                .join(","),
        );
        primaries.push(r.primary_company_id);
        owners.push(r.owner_id);
        created.push(r.created_at);
        updated.push(r.updated_at);
        versions.push(r.version);
    }
    sqlx::query(&format!(
        "INSERT INTO {table} ({COLUMNS}) \
         SELECT u.tenant_id, u.id, u.email, u.first_name, u.last_name, u.phone, u.time_zone, \
                u.locale, u.fields, \
                string_to_array(u.tags, E'\\x1f'), u.consent, u.dnc, u.frequency, u.stage, u.points, \
                string_to_array(u.companies, ',')::uuid[], u.primary_company, u.owner_id, \
                u.created_at, u.updated_at, u.version \
         FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::jsonb[], \
                     $7::text[], $8::jsonb[], $9::jsonb[], $10::jsonb[], $11::text[], $12::bigint[], \
                     $13::text[], $14::uuid[], $15::timestamptz[], $16::timestamptz[], $17::bigint[], \
                     $18::text[], $19::text[], $20::text[], $21::uuid[]) \
              AS u(tenant_id, id, email, first_name, last_name, fields, tags, consent, dnc, frequency, \
                   stage, points, companies, primary_company, created_at, updated_at, version, \
                   phone, time_zone, locale, owner_id) \
         ON CONFLICT (tenant_id, id) DO UPDATE SET \
             email = EXCLUDED.email, first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name, \
             phone = EXCLUDED.phone, time_zone = EXCLUDED.time_zone, locale = EXCLUDED.locale, \
             fields = EXCLUDED.fields, tags = EXCLUDED.tags, consent = EXCLUDED.consent, \
             do_not_contact = EXCLUDED.do_not_contact, frequency = EXCLUDED.frequency, \
             stage = EXCLUDED.stage, points = EXCLUDED.points, company_ids = EXCLUDED.company_ids, \
             primary_company_id = EXCLUDED.primary_company_id, owner_id = EXCLUDED.owner_id, \
             updated_at = EXCLUDED.updated_at, \
             version = EXCLUDED.version \
         WHERE {table}.version < EXCLUDED.version"
    ))
    .bind(&tenant_ids)
    .bind(&ids)
    .bind(&emails)
    .bind(&first_names)
    .bind(&last_names)
    .bind(&fields)
    .bind(&tags)
    .bind(&consent)
    .bind(&dnc)
    .bind(&frequency)
    .bind(&stages)
    .bind(&points)
    .bind(&companies)
    .bind(&primaries)
    .bind(&created)
    .bind(&updated)
    .bind(&versions)
    .bind(&phones)
    .bind(&zones)
    .bind(&locales)
    .bind(&owners)
    .execute(db)
    .await?;
    Ok(())
}

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
         ORDER BY id LIMIT $6"
    ))
    .bind(tenant_id)
    .bind(after)
    .bind(&filter.tag)
    .bind(&filter.stage)
    .bind(filter.company_id)
    .bind(limit)
    .bind(filter.segment_id)
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

impl ContactRow {
    /// The contact as templates see it (`domain::template::render`'s context), in an
    /// organization whose settings may give the time zone and locale a contact lacks;
    /// `message` holds what the sender adds.
    pub fn render_context(
        &self,
        organization: Option<&crate::organizations::OrganizationRow>,
        message: serde_json::Value,
    ) -> serde_json::Value {
        let setting = |key: &str| {
            organization
                .and_then(|o| o.settings[key].as_str())
                .map(str::to_owned)
        };
        serde_json::json!({
            "contact": {
                "id": self.id,
                "email": self.email,
                "first_name": self.first_name,
                "last_name": self.last_name,
                "phone": self.phone,
                "time_zone": self.time_zone.clone().or_else(|| setting("time_zone")),
                "locale": self.locale.clone().or_else(|| setting("locale")),
                "fields": self.fields,
                "tags": self.tags,
                "stage": self.stage,
                "points": self.points,
            },
            "organization": organization_context(self.tenant_id, organization),
            "message": message,
        })
    }
}

/// `organization` in a render context.
pub fn organization_context(
    tenant: Uuid,
    organization: Option<&crate::organizations::OrganizationRow>,
) -> serde_json::Value {
    let setting = |key: &str| organization.and_then(|o| o.settings[key].as_str());
    serde_json::json!({
        "id": tenant,
        "name": organization.map(|o| o.name.as_str()),
        "time_zone": setting("time_zone"),
        "locale": setting("locale"),
    })
}
