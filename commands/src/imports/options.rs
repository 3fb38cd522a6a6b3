//! What an import is asked to do (the column → field mapping, tags for every contact,
//! whether existing contacts are updated), checked against the organization's field
//! definitions and the file's header into a [`Plan`].

use std::collections::{BTreeMap, BTreeSet};

use domain::contact::InvalidValue;
use domain::contact::Tag;
use domain::field::{FieldDefinition, FieldSchema};

use crate::Invalid;
use serde::{Deserialize, Serialize};

/// The `options` part of `POST /api/v1/imports`. Unknown keys are refused (422).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportOptions {
    /// CSV column (as named in the header) → `email`, `first_name`, `last_name`, `phone`,
    /// `time_zone`, `locale`, `fields.<key>` or `tags` (tags separated by `,` or `;`).
    /// Columns not named here are ignored; exactly one column is the email.
    pub mapping: BTreeMap<String, String>,
    /// Tags every imported contact gets.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Update contacts that already have a row's email (default true); when false, such
    /// rows change nothing and count as unchanged.
    #[serde(default = "yes")]
    pub update_existing: bool,
    /// A static segment every imported contact is added to (in the same transaction as its
    /// row's events).
    #[serde(default)]
    pub segment_id: Option<uuid::Uuid>,
}

fn yes() -> bool {
    true
}

/// Where a column goes.
#[derive(Debug, Clone)]
pub enum Target {
    Email,
    FirstName,
    LastName,
    Phone,
    TimeZone,
    Locale,
    Tags,
    Field(FieldDefinition),
}

/// The options made concrete for one file: which column goes where.
#[derive(Debug, Clone)]
pub struct Plan {
    /// (column index, target), in column order.
    pub columns: Vec<(usize, Target)>,
    /// How many columns every record must have (the header's).
    pub width: usize,
    pub tags: BTreeSet<Tag>,
    pub update_existing: bool,
    pub schema: FieldSchema,
    pub segment_id: Option<uuid::Uuid>,
}

fn problem(field: impl Into<String>, reason: impl Into<String>) -> InvalidValue {
    InvalidValue::new(field, reason)
}

impl ImportOptions {
    /// The targets by column name, or every problem with the options (without the file).
    pub fn targets(
        &self,
        schema: &FieldSchema,
    ) -> Result<(BTreeMap<String, Target>, BTreeSet<Tag>), Invalid> {
        let mut problems = Vec::new();
        let mut targets = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for (column, to) in &self.mapping {
            let at = format!("mapping.{column}");
            let target = match to.as_str() {
                "email" => Target::Email,
                "first_name" => Target::FirstName,
                "last_name" => Target::LastName,
                "phone" => Target::Phone,
                "time_zone" => Target::TimeZone,
                "locale" => Target::Locale,
                "tags" => Target::Tags,
                other => match other.strip_prefix("fields.") {
                    Some(key) => match schema.fields.get(key) {
                        Some(d) => Target::Field(d.clone()),
                        None => {
                            problems.push(problem(at, format!("unknown field {other}")));
                            continue;
                        }
                    },
                    None => {
                        problems.push(problem(
                            at,
                            format!("unknown target {other:?}: use email, first_name, last_name, phone, time_zone, locale, tags or fields.<key>"),
                        ));
                        continue;
                    }
                },
            };
            if !matches!(target, Target::Tags) && !seen.insert(to.clone()) {
                problems.push(problem(
                    at,
                    format!("{to} is mapped from more than one column"),
                ));
                continue;
            }
            targets.insert(column.clone(), target);
        }
        if !targets.values().any(|t| matches!(t, Target::Email)) {
            problems.push(problem("mapping", "no column is mapped to email"));
        }
        let mut tags = BTreeSet::new();
        for t in &self.tags {
            match Tag::parse(t) {
                Ok(t) => {
                    tags.insert(t);
                }
                Err(e) => problems.push(problem(e.field, e.reason)),
            }
        }
        if problems.is_empty() {
            Ok((targets, tags))
        } else {
            Err(Invalid(problems))
        }
    }

    /// The plan for a file with this header: every mapped column must be in it.
    pub fn plan(&self, schema: &FieldSchema, header: &[String]) -> Result<Plan, Invalid> {
        let (targets, tags) = self.targets(schema)?;
        let mut columns = Vec::new();
        let mut problems = Vec::new();
        for (name, target) in targets {
            match header.iter().position(|h| h.trim() == name.trim()) {
                Some(i) => columns.push((i, target)),
                None => problems.push(problem(
                    format!("mapping.{name}"),
                    format!("the file has no column {name:?}"),
                )),
            }
        }
        if !problems.is_empty() {
            return Err(Invalid(problems));
        }
        columns.sort_by_key(|(i, _)| *i);
        Ok(Plan {
            columns,
            width: header.len(),
            tags,
            update_existing: self.update_existing,
            schema: schema.clone(),
            segment_id: self.segment_id,
        })
    }
}
