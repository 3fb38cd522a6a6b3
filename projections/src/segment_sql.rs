//! A checked segment rule as SQL over the `contacts` read model (alias `c`), for counts,
//! previews, audiences and full re-evaluations. The semantics are `domain::segment::eval`'s,
//! condition by condition (a property test runs both on random contacts and rules):
//! every condition is a two-valued boolean (`COALESCE(…, false)`), so `NOT` is exact.
//!
//! Conditions use the indexes where they can: tags (`GIN (tags)`), and equality on choices,
//! booleans and list options through containment (`fields @> {…}`, `GIN (fields
//! jsonb_path_ops)`).

use chrono::{DateTime, Utc};
use domain::segment::eval::{self, anniversary, event_since, window};
use domain::segment::rule::{Checked, Comparison, Kind, Op, Operand, Subject};
use serde_json::json;
use sqlx::{Postgres, QueryBuilder};

/// Appends the rule as a boolean SQL expression over `c` (a `contacts` row).
pub fn push_rule(qb: &mut QueryBuilder<'_, Postgres>, rule: &Checked, now: DateTime<Utc>) {
    let now = eval::micros(now);
    match rule {
        Checked::All(rs) | Checked::Any(rs) if rs.is_empty() => {
            qb.push(if matches!(rule, Checked::All(_)) {
                "TRUE"
            } else {
                "FALSE"
            });
        }
        Checked::All(rs) | Checked::Any(rs) => {
            let joiner = if matches!(rule, Checked::All(_)) {
                " AND "
            } else {
                " OR "
            };
            qb.push("(");
            for (i, r) in rs.iter().enumerate() {
                if i > 0 {
                    qb.push(joiner);
                }
                push_rule(qb, r, now);
            }
            qb.push(")");
        }
        Checked::Not(r) => {
            qb.push("(NOT ");
            push_rule(qb, r, now);
            qb.push(")");
        }
        Checked::Tag(t) => {
            qb.push("(c.tags @> ARRAY[")
                .push_bind(t.clone())
                .push("]::text[])");
        }
        Checked::Consent { channel, status } => {
            qb.push("(COALESCE(c.consent->")
                .push_bind(json_str(channel))
                .push("->>'status', 'unknown') = ")
                .push_bind(json_str(status))
                .push(")");
        }
        Checked::DoNotContact { channel, reason } => {
            qb.push("COALESCE(c.do_not_contact ? ")
                .push_bind(json_str(channel));
            if let Some(r) = reason {
                qb.push(" AND c.do_not_contact->")
                    .push_bind(json_str(channel))
                    .push("->>'reason' = ")
                    .push_bind(json_str(r));
            }
            qb.push(", false)");
        }
        Checked::Segment(id) => {
            qb.push(
                "EXISTS (SELECT 1 FROM segment_members m WHERE m.tenant_id = c.tenant_id \
                 AND m.contact_id = c.id AND m.segment_id = ",
            )
            .push_bind(*id)
            .push(")");
        }
        Checked::Event {
            event_type,
            at_least,
            within_days,
        } => {
            qb.push(
                "((SELECT count(*) FROM contact_timeline t WHERE t.tenant_id = c.tenant_id \
                 AND t.contact_id = c.id AND t.event_type = ",
            )
            .push_bind(event_type.clone());
            if let Some(since) = event_since(*within_days, now) {
                qb.push(" AND t.recorded_at >= ").push_bind(since);
            }
            qb.push(") >= ").push_bind(i64::from(*at_least)).push(")");
        }
        Checked::Compare(c) => push_compare(qb, c, now),
    }
}

/// A serde enum's JSON name (`email`, `opted_in`, `bounced`).
fn json_str(v: &impl serde::Serialize) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn push_compare(qb: &mut QueryBuilder<'_, Postgres>, c: &Comparison, now: DateTime<Utc>) {
    let (positive, negate) = match c.op {
        Op::NotEquals => (Op::Equals, true),
        Op::NotContains => (Op::Contains, true),
        Op::NotIn => (Op::In, true),
        Op::IsEmpty => (Op::IsSet, true),
        op => (op, false),
    };
    qb.push(if negate {
        "(NOT COALESCE("
    } else {
        "COALESCE("
    });
    push_positive(qb, c, positive, now);
    qb.push(if negate { ", false))" } else { ", false)" });
}

/// The value of a comparison's subject as SQL: NULL when missing or of another JSON type.
fn push_value(qb: &mut QueryBuilder<'_, Postgres>, subject: &Subject, kind: Kind) {
    let column = match subject {
        Subject::Email => "c.email",
        Subject::FirstName => "c.first_name",
        Subject::LastName => "c.last_name",
        Subject::Phone => "c.phone",
        Subject::TimeZone => "c.time_zone",
        Subject::Locale => "c.locale",
        Subject::Stage => "c.stage",
        Subject::Points => "c.points::float8",
        Subject::CreatedAt => "c.created_at",
        Subject::Custom(key) => {
            let (json_type, pattern, cast) = match kind {
                Kind::Text | Kind::Choice => ("string", None, ""),
                Kind::Number => ("number", None, "::float8"),
                Kind::Boolean => ("boolean", None, "::boolean"),
                Kind::Date => ("string", Some(DATE_PATTERN), ""),
                Kind::Datetime => ("string", Some(INSTANT_PATTERN), ""),
                Kind::List => {
                    qb.push("(CASE WHEN jsonb_typeof(c.fields->")
                        .push_bind(key.clone())
                        .push(") = 'array' THEN c.fields->")
                        .push_bind(key.clone())
                        .push(" END)");
                    return;
                }
            };
            qb.push("(CASE WHEN jsonb_typeof(c.fields->")
                .push_bind(key.clone())
                .push(") = '")
                .push(json_type)
                .push("'");
            if let Some(p) = pattern {
                qb.push(" AND (c.fields->>")
                    .push_bind(key.clone())
                    .push(") ~ '")
                    .push(p)
                    .push("'");
            }
            qb.push(" THEN (c.fields->>")
                .push_bind(key.clone())
                .push(")")
                .push(cast);
            qb.push(" END)");
            return;
        }
    };
    qb.push(column);
}

/// `eval::is_date_text` as a regular expression.
const DATE_PATTERN: &str = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$";
/// `eval::is_instant_text` as a regular expression.
const INSTANT_PATTERN: &str =
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?\\+00:00$";

fn push_positive(qb: &mut QueryBuilder<'_, Postgres>, c: &Comparison, op: Op, now: DateTime<Utc>) {
    let value = |qb: &mut QueryBuilder<'_, Postgres>| push_value(qb, &c.subject, c.kind);
    let custom = match &c.subject {
        Subject::Custom(k) => Some(k.clone()),
        _ => None,
    };
    match (c.kind, op, &c.operand) {
        (Kind::Text, Op::IsSet, _) | (Kind::Choice, Op::IsSet, _) => {
            value(qb);
            qb.push(" <> ''");
        }
        (Kind::Text, Op::Equals, Operand::Text(x)) => {
            qb.push("lower(");
            value(qb);
            qb.push(") = lower(").push_bind(x.clone()).push(")");
        }
        (Kind::Text, Op::Contains, Operand::Text(x)) => {
            qb.push("strpos(lower(");
            value(qb);
            qb.push("), lower(").push_bind(x.clone()).push(")) > 0");
        }
        (Kind::Text, Op::StartsWith, Operand::Text(x)) => {
            qb.push("starts_with(lower(");
            value(qb);
            qb.push("), lower(").push_bind(x.clone()).push("))");
        }
        (Kind::Text, Op::EndsWith, Operand::Text(x)) => {
            qb.push("right(lower(");
            value(qb);
            qb.push("), char_length(lower(")
                .push_bind(x.clone())
                .push("))) = lower(")
                .push_bind(x.clone())
                .push(")");
        }
        (Kind::Text, Op::In, Operand::Texts(xs)) => {
            qb.push("lower(");
            value(qb);
            qb.push(") IN (");
            for (i, x) in xs.iter().enumerate() {
                if i > 0 {
                    qb.push(", ");
                }
                qb.push("lower(").push_bind(x.clone()).push(")");
            }
            qb.push(")");
        }
        (Kind::Choice, Op::Equals, Operand::Text(x)) => match custom {
            // Containment, so the GIN index on `fields` serves it.
            // `{"k": "x"}` contains only the string "x" at `k` (an array holding "x" at
            // `k` does not match: the array-contains-primitive exception is top-level only).
            Some(k) => {
                qb.push("c.fields @> ").push_bind(json!({ k: x }));
            }
            None => {
                value(qb);
                qb.push(" = ").push_bind(x.clone());
            }
        },
        (Kind::Choice, Op::In, Operand::Texts(xs)) => {
            value(qb);
            qb.push(" = ANY(").push_bind(xs.clone()).push(")");
        }
        (Kind::Number, Op::IsSet, _) | (Kind::Boolean, Op::IsSet, _) => {
            value(qb);
            qb.push(" IS NOT NULL");
        }
        (Kind::Number, Op::Equals | Op::Gt | Op::Gte | Op::Lt | Op::Lte, Operand::Number(x)) => {
            let sym = match op {
                Op::Equals => " = ",
                Op::Gt => " > ",
                Op::Gte => " >= ",
                Op::Lt => " < ",
                _ => " <= ",
            };
            value(qb);
            qb.push(sym).push_bind(*x);
        }
        (Kind::Number, Op::Between, Operand::Range(a, b)) => {
            value(qb);
            qb.push(" BETWEEN ")
                .push_bind(*a)
                .push(" AND ")
                .push_bind(*b);
        }
        (Kind::Number, Op::In, Operand::Numbers(xs)) => {
            value(qb);
            qb.push(" = ANY(").push_bind(xs.clone()).push(")");
        }
        (Kind::Boolean, Op::Equals, Operand::Bool(b)) => match custom {
            Some(k) => {
                qb.push("c.fields @> ").push_bind(json!({ k: b }));
            }
            None => {
                value(qb);
                qb.push(" = ").push_bind(*b);
            }
        },
        (Kind::List, Op::IsSet, _) => {
            qb.push("jsonb_array_length(");
            value(qb);
            qb.push(") > 0");
        }
        (Kind::List, Op::Contains, Operand::Text(x)) => {
            if let Some(k) = custom {
                qb.push("c.fields @> ").push_bind(json!({ k: [x] }));
            } else {
                qb.push("FALSE");
            }
        }
        (Kind::List, Op::In | Op::ContainsAll, Operand::Texts(xs)) => {
            value(qb);
            qb.push(if op == Op::In { " ?| " } else { " ?& " });
            qb.push_bind(xs.clone());
        }
        (Kind::Date | Kind::Datetime, _, _) => push_time(qb, c, op, now),
        // Operators that do not apply to the kind never pass `Rule::check`.
        _ => {
            qb.push("FALSE");
        }
    }
}

/// Dates and instants: stored text compared as text (`COLLATE "C"`), except `created_at`,
/// a `timestamptz` compared with the same bounds as instants.
fn push_time(qb: &mut QueryBuilder<'_, Postgres>, c: &Comparison, op: Op, now: DateTime<Utc>) {
    let created = c.subject == Subject::CreatedAt;
    let value = |qb: &mut QueryBuilder<'_, Postgres>| push_value(qb, &c.subject, c.kind);
    // The value's `YYYY-MM-DD` (and, from it, `MM-DD`) text.
    let day = |qb: &mut QueryBuilder<'_, Postgres>| {
        if created {
            qb.push("to_char(c.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')");
        } else {
            qb.push("left(");
            value(qb);
            qb.push(", 10)");
        }
    };
    if let Some((lo, hi)) = window(c.kind, op, &c.operand, now) {
        qb.push("(TRUE");
        for (bound, above) in [(lo, true), (hi, false)] {
            let Some((text, inclusive)) = bound else {
                continue;
            };
            qb.push(" AND ");
            value(qb);
            qb.push(match (above, inclusive) {
                (true, true) => " >= ",
                (true, false) => " > ",
                (false, true) => " <= ",
                (false, false) => " < ",
            });
            if created {
                match DateTime::parse_from_rfc3339(&text) {
                    Ok(t) => {
                        qb.push_bind(t.to_utc());
                    }
                    Err(_) => {
                        qb.push("NULL");
                    }
                }
            } else {
                qb.push_bind(text).push(" COLLATE \"C\"");
            }
        }
        qb.push(")");
        return;
    }
    match (op, &c.operand) {
        (Op::IsSet, _) => {
            value(qb);
            qb.push(" IS NOT NULL");
        }
        (Op::Equals, Operand::Time(x)) => {
            day(qb);
            qb.push(" = ")
                .push_bind(x.get(..10).unwrap_or_default().to_owned());
        }
        (Op::AnniversaryInDays, Operand::Days(d)) => {
            qb.push("substr(");
            day(qb);
            qb.push(", 6, 5) = ").push_bind(anniversary(now, *d));
        }
        _ => {
            qb.push("FALSE");
        }
    }
}
