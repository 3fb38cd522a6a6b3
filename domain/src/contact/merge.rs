//! Merging contact B (the source) into contact A (the target, the survivor): a decision over
//! two aggregates, in pure code. The command layer loads both, calls [`merge`] and appends
//! both events atomically with the streams' expected sequence numbers.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::aggregate::{MAX_NOTES, MAX_POINTS};
use super::{Contact, ContactError, ContactEvent, FieldValue, MAX_FIELDS, MAX_TAGS};

/// Whose value wins where both contacts have one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MergeRule {
    /// The target's values win; the source fills the target's gaps.
    #[default]
    KeepTarget,
    /// The source's non-empty values win; the target keeps what the source lacks.
    PreferSource,
}

/// The two events of a merge: one for each stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// `ContactMerged`, appended to the target's stream.
    pub target: ContactEvent,
    /// `ContactMergedInto`, appended to the source's stream (its last event).
    pub source: ContactEvent,
}

/// Decides the merge of `source` into `target` under `rule`.
///
/// Tags, companies, notes and do-not-contact marks are united (a do-not-contact mark is never
/// lost), points summed, consent per channel taken from the most recent decision, frequency
/// rules are the target's else the source's; names, profile, custom fields, stage, owner and
/// the primary company follow `rule`. The target keeps its email; the source's email resolves
/// to the target from now on (the command layer moves its reservation).
pub fn merge(
    target: &Contact,
    target_id: Uuid,
    source: &Contact,
    source_id: Uuid,
    rule: MergeRule,
) -> Result<Merged, ContactError> {
    if target_id == source_id {
        return Err(ContactError::MergeIntoItself);
    }
    if target.erased || source.erased {
        return Err(ContactError::Erased);
    }
    if !target.exists {
        return Err(ContactError::NotFound);
    }
    if let Some(survivor_id) = target.merged_into {
        return Err(ContactError::MergeTargetMerged { survivor_id });
    }
    if !source.exists {
        return Err(ContactError::MergeSourceNotFound);
    }
    if let Some(survivor_id) = source.merged_into {
        return Err(ContactError::MergeSourceMerged { survivor_id });
    }
    let (first, second) = match rule {
        MergeRule::KeepTarget => (target, source),
        MergeRule::PreferSource => (source, target),
    };
    let pick = |a: &Option<String>, b: &Option<String>| a.clone().or_else(|| b.clone());

    let tags: BTreeSet<String> = target.tags.union(&source.tags).cloned().collect();
    if tags.len() > MAX_TAGS {
        return Err(ContactError::TooManyTags { max: MAX_TAGS });
    }
    let mut fields = second.fields.clone();
    for (k, v) in &first.fields {
        if !is_empty(v) || !fields.contains_key(k) {
            fields.insert(k.clone(), v.clone());
        }
    }
    if fields.len() > MAX_FIELDS {
        return Err(ContactError::TooManyFields { max: MAX_FIELDS });
    }
    if target.notes.len() + source.notes.difference(&target.notes).count() > MAX_NOTES {
        return Err(ContactError::TooManyNotes { max: MAX_NOTES });
    }
    let points = target
        .points
        .checked_add(source.points)
        .filter(|t| t.abs() <= MAX_POINTS)
        .ok_or(ContactError::PointsOutOfRange)?;

    // Consent: the most recent decision per channel; a tie goes by the rule.
    let mut consent = second.consent.clone();
    for (channel, c) in &first.consent {
        let newer = consent.get(channel).is_none_or(|other| c.at >= other.at);
        if newer {
            consent.insert(*channel, c.clone());
        }
    }
    // Do-not-contact: every mark of either; where both have one, the rule's.
    let mut do_not_contact = second.do_not_contact.clone();
    do_not_contact.extend(first.do_not_contact.clone());
    // Frequency: the target's rule per channel, else the source's.
    let mut frequency = source.frequency.clone();
    frequency.extend(target.frequency.clone());

    let companies: BTreeSet<Uuid> = target.companies.union(&source.companies).copied().collect();
    let notes: Vec<Uuid> = source.notes.difference(&target.notes).copied().collect();

    Ok(Merged {
        target: ContactEvent::ContactMerged {
            source_id,
            rule,
            source_email: source.email.clone(),
            first_name: pick(&first.first_name, &second.first_name),
            last_name: pick(&first.last_name, &second.last_name),
            profile: super::Profile {
                phone: pick(&first.profile.phone, &second.profile.phone),
                time_zone: pick(&first.profile.time_zone, &second.profile.time_zone),
                locale: pick(&first.profile.locale, &second.profile.locale),
            },
            fields,
            tags: tags.into_iter().collect(),
            consent,
            do_not_contact,
            frequency,
            stage: pick(&first.stage, &second.stage),
            points,
            owner: first.owner.or(second.owner),
            companies: companies.into_iter().collect(),
            primary_company: first.primary_company.or(second.primary_company),
            notes,
        },
        source: ContactEvent::ContactMergedInto {
            survivor_id: target_id,
        },
    })
}

/// An empty text or list does not win over a value.
fn is_empty(v: &FieldValue) -> bool {
    match v {
        FieldValue::Text(s) => s.trim().is_empty(),
        FieldValue::List(l) => l.is_empty(),
        FieldValue::Bool(_) | FieldValue::Number(_) => false,
    }
}
