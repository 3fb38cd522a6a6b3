//! Evaluating a checked rule against one contact, in memory.
//!
//! The semantics are the SQL compiler's (`projections::segment_sql`), condition by condition;
//! a property test holds the two together:
//! - a comparison on a missing value, or a value of the wrong JSON type, is false — except
//!   the negative operators (`not_equals`, `not_contains`, `not_in`), which are then true;
//! - free text compares case-insensitively; choices, lists and tags exactly;
//! - dates (`YYYY-MM-DD`) and instants (RFC 3339 in UTC, `…+00:00`, as contact writes store
//!   them) compare as text, which orders them correctly; "today" is the UTC date of `now`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Days, Utc};
use uuid::Uuid;

use super::rule::{Checked, Comparison, Kind, Op, Operand, Subject};
use crate::contact::{Channel, ConsentStatus, DncReason};

/// What a rule can look at of one contact.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactFacts {
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub time_zone: Option<String>,
    pub locale: Option<String>,
    pub stage: Option<String>,
    pub points: i64,
    pub created_at: DateTime<Utc>,
    /// Custom fields as the read model holds them.
    pub fields: serde_json::Map<String, serde_json::Value>,
    pub tags: BTreeSet<String>,
    pub consent: BTreeMap<Channel, ConsentStatus>,
    pub do_not_contact: BTreeMap<Channel, DncReason>,
    /// The segments the contact is a member of.
    pub segments: BTreeSet<Uuid>,
    /// Timeline events (type, when) of the types the rules count.
    pub events: Vec<(String, DateTime<Utc>)>,
}

/// An instant in the text form contact writes store (`2026-11-22T10:00:00+00:00`).
pub fn instant_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339()
}

/// Whether `s` is a stored date (`YYYY-MM-DD`: digits and dashes in place).
pub fn is_date_text(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

/// Whether `s` is a stored instant (`YYYY-MM-DDTHH:MM:SS[.fraction]+00:00`).
pub fn is_instant_text(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 25 || !s.ends_with("+00:00") || !is_date_text(&s[..10]) {
        return false;
    }
    let time = &b[10..19];
    let shape_ok = time.iter().enumerate().all(|(i, c)| match i {
        0 => *c == b'T',
        3 | 6 => *c == b':',
        _ => c.is_ascii_digit(),
    });
    let frac = &b[19..b.len() - 6];
    let frac_ok = frac.is_empty()
        || (frac.len() >= 2 && frac[0] == b'.' && frac[1..].iter().all(u8::is_ascii_digit));
    shape_ok && frac_ok
}

/// A value as a condition sees it.
enum Value<'a> {
    Missing,
    Text(&'a str),
    Number(f64),
    Bool(bool),
    List(&'a [serde_json::Value]),
    /// Something of another JSON type.
    Other,
}

impl ContactFacts {
    /// Whether the contact matches `rule` at `now`.
    pub fn matches(&self, rule: &Checked, now: DateTime<Utc>) -> bool {
        match rule {
            Checked::All(rs) => rs.iter().all(|r| self.matches(r, now)),
            Checked::Any(rs) => rs.iter().any(|r| self.matches(r, now)),
            Checked::Not(r) => !self.matches(r, now),
            Checked::Compare(c) => self.compare(c, now),
            Checked::Tag(t) => self.tags.contains(t),
            Checked::Consent { channel, status } => {
                self.consent
                    .get(channel)
                    .copied()
                    .unwrap_or(ConsentStatus::Unknown)
                    == *status
            }
            Checked::DoNotContact { channel, reason } => match self.do_not_contact.get(channel) {
                Some(r) => reason.is_none_or(|want| want == *r),
                None => false,
            },
            Checked::Segment(id) => self.segments.contains(id),
            Checked::Event {
                event_type,
                at_least,
                within_days,
            } => {
                let since = event_since(*within_days, now);
                let n = self
                    .events
                    .iter()
                    .filter(|(t, at)| t == event_type && since.is_none_or(|s| *at >= s))
                    .count();
                n >= *at_least as usize
            }
        }
    }

    fn value(&self, subject: &Subject) -> Value<'_> {
        fn text(o: &Option<String>) -> Value<'_> {
            match o {
                Some(s) => Value::Text(s.as_str()),
                None => Value::Missing,
            }
        }
        match subject {
            Subject::Email => Value::Text(&self.email),
            Subject::FirstName => text(&self.first_name),
            Subject::LastName => text(&self.last_name),
            Subject::Phone => text(&self.phone),
            Subject::TimeZone => text(&self.time_zone),
            Subject::Locale => text(&self.locale),
            Subject::Stage => text(&self.stage),
            Subject::Points => Value::Number(self.points as f64),
            // Handled in `compare` (the one standard instant).
            Subject::CreatedAt => Value::Missing,
            Subject::Custom(key) => match self.fields.get(key) {
                None | Some(serde_json::Value::Null) => Value::Missing,
                Some(serde_json::Value::String(s)) => Value::Text(s),
                Some(serde_json::Value::Number(n)) => {
                    n.as_f64().map_or(Value::Other, Value::Number)
                }
                Some(serde_json::Value::Bool(b)) => Value::Bool(*b),
                Some(serde_json::Value::Array(a)) => Value::List(a),
                Some(serde_json::Value::Object(_)) => Value::Other,
            },
        }
    }

    fn compare(&self, c: &Comparison, now: DateTime<Utc>) -> bool {
        let negative = matches!(c.op, Op::NotEquals | Op::NotContains | Op::NotIn);
        let positive_op = match c.op {
            Op::NotEquals => Op::Equals,
            Op::NotContains => Op::Contains,
            Op::NotIn => Op::In,
            op => op,
        };
        if c.op == Op::IsEmpty {
            return !self.holds(c, Op::IsSet, now);
        }
        let held = self.holds(c, positive_op, now);
        if negative {
            !held
        } else {
            held
        }
    }

    /// A positive operator on the value (false when it is missing or of another type).
    fn holds(&self, c: &Comparison, op: Op, now: DateTime<Utc>) -> bool {
        let created;
        let value = if c.subject == Subject::CreatedAt {
            created = instant_text(self.created_at);
            Value::Text(&created)
        } else {
            self.value(&c.subject)
        };
        match c.kind {
            Kind::Text | Kind::Choice => {
                let Value::Text(v) = value else { return false };
                let exact = c.kind == Kind::Choice;
                let norm = |s: &str| {
                    if exact {
                        s.to_owned()
                    } else {
                        s.to_lowercase()
                    }
                };
                let v = norm(v);
                match (op, &c.operand) {
                    (Op::IsSet, _) => !v.is_empty(),
                    (Op::Equals, Operand::Text(x)) => v == norm(x),
                    (Op::Contains, Operand::Text(x)) => v.contains(&norm(x)),
                    (Op::StartsWith, Operand::Text(x)) => v.starts_with(&norm(x)),
                    (Op::EndsWith, Operand::Text(x)) => v.ends_with(&norm(x)),
                    (Op::In, Operand::Texts(xs)) => xs.iter().any(|x| v == norm(x)),
                    _ => false,
                }
            }
            Kind::Number => {
                let Value::Number(v) = value else {
                    return false;
                };
                match (op, &c.operand) {
                    (Op::IsSet, _) => true,
                    (Op::Equals, Operand::Number(x)) => v == *x,
                    (Op::Gt, Operand::Number(x)) => v > *x,
                    (Op::Gte, Operand::Number(x)) => v >= *x,
                    (Op::Lt, Operand::Number(x)) => v < *x,
                    (Op::Lte, Operand::Number(x)) => v <= *x,
                    (Op::Between, Operand::Range(a, b)) => *a <= v && v <= *b,
                    (Op::In, Operand::Numbers(xs)) => xs.contains(&v),
                    _ => false,
                }
            }
            Kind::Boolean => {
                let Value::Bool(v) = value else { return false };
                match (op, &c.operand) {
                    (Op::IsSet, _) => true,
                    (Op::Equals, Operand::Bool(x)) => v == *x,
                    _ => false,
                }
            }
            Kind::Date | Kind::Datetime => {
                let Value::Text(v) = value else { return false };
                let date = c.kind == Kind::Date;
                let well_formed = if date {
                    is_date_text(v)
                } else {
                    is_instant_text(v)
                };
                if !well_formed {
                    return false;
                }
                let (lo, hi) = match window(c.kind, op, &c.operand, now) {
                    Some(w) => w,
                    None => {
                        return match (op, &c.operand) {
                            (Op::IsSet, _) => true,
                            (Op::Equals, Operand::Time(x)) => v[..10] == x[..10],
                            (Op::AnniversaryInDays, Operand::Days(d)) => {
                                v[5..10] == anniversary(now, *d)
                            }
                            _ => false,
                        }
                    }
                };
                let above = lo.is_none_or(|(b, incl)| {
                    if incl {
                        v >= b.as_str()
                    } else {
                        v > b.as_str()
                    }
                });
                let below = hi.is_none_or(|(b, incl)| {
                    if incl {
                        v <= b.as_str()
                    } else {
                        v < b.as_str()
                    }
                });
                above && below
            }
            Kind::List => {
                let Value::List(items) = value else {
                    return false;
                };
                let has = |x: &str| items.iter().any(|i| i.as_str() == Some(x));
                match (op, &c.operand) {
                    (Op::IsSet, _) => !items.is_empty(),
                    (Op::Contains, Operand::Text(x)) => has(x),
                    (Op::In, Operand::Texts(xs)) => xs.iter().any(|x| has(x)),
                    (Op::ContainsAll, Operand::Texts(xs)) => xs.iter().all(|x| has(x)),
                    _ => false,
                }
            }
        }
    }
}

/// One end of a window: the text bound and whether it is included.
pub type Bound = Option<(String, bool)>;

/// The window a date/instant operator allows, as `(low, high)` text bounds (stored dates
/// and instants sort as text). `None` for the operators that are not a window (`equals`,
/// `anniversary_in_days`, `is_set`).
pub fn window(kind: Kind, op: Op, operand: &Operand, now: DateTime<Utc>) -> Option<(Bound, Bound)> {
    let now = micros(now);
    let date = kind == Kind::Date;
    let today = now.date_naive();
    let day_text = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
    let days = |d: &u32| u64::from(*d);
    let incl = |s: String| Some((s, true));
    match (op, operand) {
        (Op::Between, Operand::TimeRange(a, b)) => Some((incl(a.clone()), incl(b.clone()))),
        (Op::Before, Operand::Time(x)) => Some((None, Some((x.clone(), false)))),
        (Op::After, Operand::Time(x)) => Some((Some((x.clone(), false)), None)),
        (Op::WithinLastDays, Operand::Days(d)) => Some(if date {
            let from = today.checked_sub_days(Days::new(days(d))).unwrap_or(today);
            (incl(day_text(from)), incl(day_text(today)))
        } else {
            let from = now - chrono::Duration::days(i64::from(*d));
            (incl(instant_text(from)), incl(instant_text(now)))
        }),
        (Op::WithinNextDays, Operand::Days(d)) => Some(if date {
            let to = today.checked_add_days(Days::new(days(d))).unwrap_or(today);
            (incl(day_text(today)), incl(day_text(to)))
        } else {
            let to = now + chrono::Duration::days(i64::from(*d));
            (incl(instant_text(now)), incl(instant_text(to)))
        }),
        _ => None,
    }
}

/// The earliest time an `event` condition counts from.
pub fn event_since(within_days: Option<u32>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    within_days.map(|d| micros(now) - chrono::Duration::days(i64::from(d)))
}

/// `t` to whole microseconds (what Postgres keeps), so both evaluators see one `now`.
pub fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::SubsecRound;
    t.trunc_subsecs(6)
}

/// The month and day (`MM-DD`) `days` days after `now`'s date.
pub fn anniversary(now: DateTime<Utc>, days: u32) -> String {
    let today = now.date_naive();
    today
        .checked_add_days(Days::new(u64::from(days)))
        .unwrap_or(today)
        .format("%m-%d")
        .to_string()
}
