//! A contact's row and how events fold into it (`ContactRow::apply`), in memory.

use super::*;

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
pub(super) const TAG_SEPARATOR: &str = "\u{1f}";

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

pub(super) fn to_json<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

/// Sets (or, with `None`, removes) the entry for `channel` of a per-channel JSON object.
pub(super) fn set(map: &mut serde_json::Value, channel: Channel, value: Option<serde_json::Value>) {
    let key = to_json(&channel).as_str().unwrap_or_default().to_owned();
    if let serde_json::Value::Object(m) = map {
        match value {
            Some(v) => m.insert(key, v),
            None => m.remove(&key),
        };
    }
}

pub(super) fn sorted(mut tags: Vec<String>) -> Vec<String> {
    tags.sort();
    tags.dedup();
    tags
}
