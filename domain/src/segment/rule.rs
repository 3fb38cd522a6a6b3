//! The rule language of dynamic segments, as JSON:
//!
//! ```json
//! {"all": [
//!   {"field": {"name": "fields.plan", "op": "equals", "value": "pro"}},
//!   {"any": [{"tag": "vip"}, {"field": {"name": "points", "op": "gte", "value": 100}}]},
//!   {"not": {"do_not_contact": {"channel": "email"}}},
//!   {"consent": {"channel": "email", "status": "opted_in"}},
//!   {"segment": "0193…"},
//!   {"event": {"type": "ContactTagsAdded", "at_least": 2, "within_days": 30}}
//! ]}
//! ```
//!
//! A [`Rule`] is what a client sends; [`Rule::check`] resolves every field against the
//! organization's definitions into a [`Checked`] rule, whose conditions know the type of
//! what they compare. The checked rule is what both evaluators run: in memory
//! ([`super::eval`]) and as SQL over the contacts read model (`projections::segment_sql`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::contact::{Channel, ConsentStatus, DncReason};
use crate::field::{FieldDefinition, FieldType};

/// Most conditions one rule may have, and how deep it may nest.
pub const MAX_CONDITIONS: usize = 100;
pub const MAX_DEPTH: usize = 8;
/// Most values an `in` / `not_in` list may have.
pub const MAX_VALUES: usize = 500;

/// A segment's rule, as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Rule {
    /// Every rule holds (an empty list always holds).
    All(Vec<Rule>),
    /// Some rule holds (an empty list never holds).
    Any(Vec<Rule>),
    Not(Box<Rule>),
    /// A comparison on a standard or custom field.
    Field(FieldCondition),
    /// Has this tag (exact).
    Tag(String),
    /// Consent on a channel has this status (`unknown` when none was recorded).
    Consent {
        channel: Channel,
        status: ConsentStatus,
    },
    /// Must not be contacted on the channel (for this reason, if given).
    DoNotContact {
        channel: Channel,
        #[serde(default)]
        reason: Option<DncReason>,
    },
    /// Is a member of another segment.
    Segment(Uuid),
    /// Has an event of this type on the timeline at least `at_least` times (default 1),
    /// within the last `within_days` days (default: ever).
    Event {
        #[serde(rename = "type")]
        event_type: String,
        #[serde(default = "one")]
        at_least: u32,
        #[serde(default)]
        within_days: Option<u32>,
    },
}

fn one() -> u32 {
    1
}

/// `{"name": "fields.plan", "op": "equals", "value": "pro"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldCondition {
    pub name: String,
    pub op: Op,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
}

/// Comparison operators. Which apply depends on the field's kind ([`Kind::ops`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Equals,
    NotEquals,
    Contains,
    NotContains,
    StartsWith,
    EndsWith,
    In,
    NotIn,
    /// Multiselect: has every one of `values`.
    ContainsAll,
    Gt,
    Gte,
    Lt,
    Lte,
    /// `values: [low, high]`, both included.
    Between,
    Before,
    After,
    /// Within the last `days` days, up to now.
    WithinLastDays,
    /// Within the next `days` days, from now.
    WithinNextDays,
    /// The month and day fall `days` days from today (birthdays, renewals).
    AnniversaryInDays,
    IsSet,
    IsEmpty,
}

/// How values of a field compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Free text: compared case-insensitively.
    Text,
    /// A value from a fixed vocabulary (select, country, time zone, locale): exact.
    Choice,
    Number,
    Boolean,
    /// `YYYY-MM-DD`.
    Date,
    /// RFC 3339 in UTC, as contact writes store them.
    Datetime,
    /// A list of options (multiselect): exact.
    List,
}

impl Kind {
    fn of(t: FieldType) -> Self {
        use FieldType as T;
        match t {
            T::Text | T::LongText | T::Email | T::Url | T::Phone => Kind::Text,
            T::Select | T::Country | T::Timezone | T::Locale => Kind::Choice,
            T::Number => Kind::Number,
            T::Boolean => Kind::Boolean,
            T::Date => Kind::Date,
            T::Datetime => Kind::Datetime,
            T::Multiselect => Kind::List,
        }
    }

    /// The operators that apply to this kind.
    pub fn ops(self) -> &'static [Op] {
        use Op::*;
        match self {
            Kind::Text => &[
                Equals,
                NotEquals,
                Contains,
                NotContains,
                StartsWith,
                EndsWith,
                In,
                NotIn,
                IsSet,
                IsEmpty,
            ],
            Kind::Choice => &[Equals, NotEquals, In, NotIn, IsSet, IsEmpty],
            Kind::Number => &[
                Equals, NotEquals, Gt, Gte, Lt, Lte, Between, In, NotIn, IsSet, IsEmpty,
            ],
            Kind::Boolean => &[Equals, IsSet, IsEmpty],
            Kind::Date | Kind::Datetime => &[
                Equals,
                Before,
                After,
                Between,
                WithinLastDays,
                WithinNextDays,
                AnniversaryInDays,
                IsSet,
                IsEmpty,
            ],
            Kind::List => &[Contains, NotContains, In, ContainsAll, IsSet, IsEmpty],
        }
    }
}

/// A standard column of the contact, or a custom field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    Email,
    FirstName,
    LastName,
    Phone,
    TimeZone,
    Locale,
    Stage,
    Points,
    CreatedAt,
    Custom(String),
}

impl Subject {
    /// The standard fields a rule can name, with their kinds.
    pub const STANDARD: &'static [(&'static str, Subject, Kind)] = &[
        ("email", Subject::Email, Kind::Text),
        ("first_name", Subject::FirstName, Kind::Text),
        ("last_name", Subject::LastName, Kind::Text),
        ("phone", Subject::Phone, Kind::Text),
        ("time_zone", Subject::TimeZone, Kind::Choice),
        ("locale", Subject::Locale, Kind::Choice),
        ("stage", Subject::Stage, Kind::Choice),
        ("points", Subject::Points, Kind::Number),
        ("created_at", Subject::CreatedAt, Kind::Datetime),
    ];
}

/// A comparison's operand, typed for its field's kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operand {
    None,
    Text(String),
    Texts(Vec<String>),
    Number(f64),
    Numbers(Vec<f64>),
    Range(f64, f64),
    Bool(bool),
    /// A date (`YYYY-MM-DD`) or an instant in the stored form (`…+00:00`).
    Time(String),
    TimeRange(String, String),
    Days(u32),
}

/// A comparison, checked: the field, its kind, the operator and the typed operand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub subject: Subject,
    pub kind: Kind,
    pub op: Op,
    pub operand: Operand,
}

/// A rule whose every field is known and every operand fits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Checked {
    All(Vec<Checked>),
    Any(Vec<Checked>),
    Not(Box<Checked>),
    Compare(Comparison),
    Tag(String),
    Consent {
        channel: Channel,
        status: ConsentStatus,
    },
    DoNotContact {
        channel: Channel,
        reason: Option<DncReason>,
    },
    Segment(Uuid),
    Event {
        event_type: String,
        at_least: u32,
        within_days: Option<u32>,
    },
}

impl Checked {
    /// The segments this rule refers to.
    pub fn segments(&self) -> BTreeSet<Uuid> {
        let mut out = BTreeSet::new();
        self.visit(&mut |c| {
            if let Checked::Segment(id) = c {
                out.insert(*id);
            }
        });
        out
    }

    /// Whether the rule's truth can change with time alone (relative dates, event windows):
    /// such segments are re-evaluated on a schedule.
    pub fn depends_on_time(&self) -> bool {
        let mut yes = false;
        self.visit(&mut |c| match c {
            Checked::Compare(cmp) => {
                yes |= matches!(
                    cmp.op,
                    Op::WithinLastDays | Op::WithinNextDays | Op::AnniversaryInDays
                );
            }
            Checked::Event { within_days, .. } => yes |= within_days.is_some(),
            _ => {}
        });
        yes
    }

    /// The timeline event types the rule counts.
    pub fn event_types(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        self.visit(&mut |c| {
            if let Checked::Event { event_type, .. } = c {
                out.insert(event_type.clone());
            }
        });
        out
    }

    fn visit(&self, f: &mut impl FnMut(&Checked)) {
        f(self);
        match self {
            Checked::All(rs) | Checked::Any(rs) => rs.iter().for_each(|r| r.visit(f)),
            Checked::Not(r) => r.visit(f),
            _ => {}
        }
    }
}

/// Why a rule was refused: where (a JSON pointer into the rule) and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct RuleError {
    pub path: String,
    pub reason: String,
}

impl Rule {
    /// Resolves and type-checks the rule against the organization's field definitions.
    /// Every problem is reported, each with the JSON pointer of the condition.
    pub fn check(
        &self,
        fields: &BTreeMap<String, FieldDefinition>,
    ) -> Result<Checked, Vec<RuleError>> {
        let mut errors = Vec::new();
        let mut count = 0;
        let checked = self.check_at("", 1, fields, &mut count, &mut errors);
        if count > MAX_CONDITIONS {
            errors.push(RuleError {
                path: String::new(),
                reason: format!("a rule can have at most {MAX_CONDITIONS} conditions"),
            });
        }
        match checked {
            Some(c) if errors.is_empty() => Ok(c),
            _ => Err(errors),
        }
    }

    fn check_at(
        &self,
        path: &str,
        depth: usize,
        fields: &BTreeMap<String, FieldDefinition>,
        count: &mut usize,
        errors: &mut Vec<RuleError>,
    ) -> Option<Checked> {
        let mut fail = |path: String, reason: String| {
            errors.push(RuleError { path, reason });
            None
        };
        if depth > MAX_DEPTH {
            return fail(path.into(), format!("rules nest at most {MAX_DEPTH} deep"));
        }
        *count += 1;
        match self {
            Rule::All(rs) | Rule::Any(rs) => {
                let key = if matches!(self, Rule::All(_)) {
                    "all"
                } else {
                    "any"
                };
                let mut out = Vec::with_capacity(rs.len());
                let mut ok = true;
                for (i, r) in rs.iter().enumerate() {
                    match r.check_at(
                        &format!("{path}/{key}/{i}"),
                        depth + 1,
                        fields,
                        count,
                        errors,
                    ) {
                        Some(c) => out.push(c),
                        None => ok = false,
                    }
                }
                ok.then(|| {
                    if key == "all" {
                        Checked::All(out)
                    } else {
                        Checked::Any(out)
                    }
                })
            }
            Rule::Not(r) => r
                .check_at(&format!("{path}/not"), depth + 1, fields, count, errors)
                .map(|c| Checked::Not(Box::new(c))),
            Rule::Tag(t) => {
                if t.trim().is_empty() {
                    return fail(format!("{path}/tag"), "a tag cannot be empty".into());
                }
                Some(Checked::Tag(t.trim().to_owned()))
            }
            Rule::Consent { channel, status } => Some(Checked::Consent {
                channel: *channel,
                status: *status,
            }),
            Rule::DoNotContact { channel, reason } => Some(Checked::DoNotContact {
                channel: *channel,
                reason: *reason,
            }),
            Rule::Segment(id) => Some(Checked::Segment(*id)),
            Rule::Event {
                event_type,
                at_least,
                within_days,
            } => {
                let p = format!("{path}/event");
                if event_type.is_empty() || event_type.len() > 100 {
                    return fail(format!("{p}/type"), "1 to 100 characters".into());
                }
                if *at_least == 0 || *at_least > 1_000_000 {
                    return fail(format!("{p}/at_least"), "1 to 1000000".into());
                }
                if within_days.is_some_and(|d| d == 0 || d > 36_500) {
                    return fail(format!("{p}/within_days"), "1 to 36500 days".into());
                }
                Some(Checked::Event {
                    event_type: event_type.clone(),
                    at_least: *at_least,
                    within_days: *within_days,
                })
            }
            Rule::Field(c) => match c.check(fields) {
                Ok(cmp) => Some(Checked::Compare(cmp)),
                Err(reason) => fail(format!("{path}/field"), reason),
            },
        }
    }
}

impl FieldCondition {
    fn check(&self, fields: &BTreeMap<String, FieldDefinition>) -> Result<Comparison, String> {
        let (subject, kind) = self.resolve(fields)?;
        if !kind.ops().contains(&self.op) {
            let names: Vec<String> = kind
                .ops()
                .iter()
                .filter_map(|o| serde_json::to_value(o).ok())
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            return Err(format!(
                "{} does not apply to {}; use one of {}",
                op_name(self.op),
                self.name,
                names.join(", ")
            ));
        }
        let operand = self.operand(kind)?;
        Ok(Comparison {
            subject,
            kind,
            op: self.op,
            operand,
        })
    }

    fn resolve(
        &self,
        fields: &BTreeMap<String, FieldDefinition>,
    ) -> Result<(Subject, Kind), String> {
        if let Some(key) = self.name.strip_prefix("fields.") {
            let def = fields
                .get(key)
                .ok_or_else(|| format!("no field {:?} is defined", key))?;
            return Ok((Subject::Custom(key.to_owned()), Kind::of(def.field_type)));
        }
        Subject::STANDARD
            .iter()
            .find(|(n, _, _)| *n == self.name)
            .map(|(_, s, k)| (s.clone(), *k))
            .ok_or_else(|| {
                format!(
                    "unknown field {:?}: use fields.<key> or one of email, first_name, \
                     last_name, phone, time_zone, locale, stage, points, created_at",
                    self.name
                )
            })
    }

    fn operand(&self, kind: Kind) -> Result<Operand, String> {
        use Op::*;
        let one = || self.value.as_ref().ok_or("needs a value");
        let many = || match &self.values {
            Some(v) if !v.is_empty() && v.len() <= MAX_VALUES => Ok(v),
            _ => Err(format!("needs values: a list of 1 to {MAX_VALUES}")),
        };
        let text = |v: &serde_json::Value| {
            v.as_str()
                .filter(|s| s.chars().count() <= 1000)
                .map(str::to_owned)
                .ok_or_else(|| "expected text (at most 1000 characters)".to_owned())
        };
        let number = |v: &serde_json::Value| {
            v.as_f64()
                .filter(|n| n.is_finite())
                .ok_or_else(|| "expected a number".to_owned())
        };
        let time = |v: &serde_json::Value| time_operand(kind, v);
        Ok(match (self.op, kind) {
            (IsSet | IsEmpty, _) => Operand::None,
            (WithinLastDays | WithinNextDays | AnniversaryInDays, _) => match self.days {
                Some(d)
                    if (1..=36_500).contains(&d) || (d == 0 && self.op == AnniversaryInDays) =>
                {
                    Operand::Days(d)
                }
                _ => return Err("needs days: 1 to 36500 (0 allowed for anniversaries)".into()),
            },
            (In | NotIn | ContainsAll, Kind::Number) => {
                Operand::Numbers(many()?.iter().map(number).collect::<Result<_, _>>()?)
            }
            (In | NotIn | ContainsAll, _) => {
                Operand::Texts(many()?.iter().map(text).collect::<Result<_, _>>()?)
            }
            (Between, Kind::Number) => match many()?.as_slice() {
                [a, b] => {
                    let (a, b) = (number(a)?, number(b)?);
                    if a > b {
                        return Err("between needs values [low, high]".into());
                    }
                    Operand::Range(a, b)
                }
                _ => return Err("between needs values [low, high]".into()),
            },
            (Between, _) => match many()?.as_slice() {
                [a, b] => {
                    let (a, b) = (time(a)?, time(b)?);
                    if a > b {
                        return Err("between needs values [earliest, latest]".into());
                    }
                    Operand::TimeRange(a, b)
                }
                _ => return Err("between needs values [earliest, latest]".into()),
            },
            (_, Kind::Number) => Operand::Number(number(one()?)?),
            (_, Kind::Boolean) => Operand::Bool(one()?.as_bool().ok_or("expected true or false")?),
            (_, Kind::Date | Kind::Datetime) => Operand::Time(time(one()?)?),
            (_, Kind::Text | Kind::Choice | Kind::List) => Operand::Text(text(one()?)?),
        })
    }
}

/// A date or datetime operand in the form stored values have, so both compare as text.
fn time_operand(kind: Kind, v: &serde_json::Value) -> Result<String, String> {
    let s = v.as_str().ok_or("expected a date or date-time string")?;
    match kind {
        Kind::Date => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(|d| d.format("%Y-%m-%d").to_string())
            .map_err(|_| "expected a date like 2026-11-22".into()),
        _ => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| super::eval::instant_text(t.to_utc()))
            .or_else(|_| {
                chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map(|d| {
                    super::eval::instant_text(d.and_time(chrono::NaiveTime::MIN).and_utc())
                })
            })
            .map_err(|_| "expected a date-time like 2026-11-22T10:00:00Z".into()),
    }
}

fn op_name(op: Op) -> String {
    serde_json::to_value(op)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
