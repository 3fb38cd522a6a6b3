//! The projection: a batch's rows loaded, folded and written back with one multi-row upsert.

use super::*;

pub struct ContactsProjection;

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
pub(super) async fn upsert<'e>(
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
