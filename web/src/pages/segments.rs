//! Segments: static lists and dynamic segments, with a rule builder (conditions on standard
//! and custom fields and tags, joined by all or any) whose count and sample follow the rule
//! while it is edited, through HTMX and without a script of ours.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use commands::segments::{NewSegment, SegmentsError};
use domain::field::{FieldDefinition, FieldType};
use domain::identity::Action;
use domain::segment::rule::{FieldCondition, Op, Subject};
use domain::segment::Rule;
use domain::SegmentId;
use http_kit::PathIds;
use projections::segments::{self as read, SegmentRow};
use serde::Deserialize;

use super::contacts::{caught_up, Row};
use crate::page::{command_errors, render, render_with, FieldErrors, Frame, PageError};
use crate::visit::{CsrfForm, Member};
use crate::WebState;

/// Every operator, as the rule language names it, and what the builder calls it.
const OPS: [(&str, &str); 23] = [
    ("equals", "is"),
    ("not_equals", "is not"),
    ("contains", "contains"),
    ("not_contains", "does not contain"),
    ("starts_with", "starts with"),
    ("ends_with", "ends with"),
    ("in", "is one of (a, b, …)"),
    ("not_in", "is none of (a, b, …)"),
    ("contains_all", "has all of (a, b, …)"),
    ("gt", ">"),
    ("gte", "≥"),
    ("lt", "<"),
    ("lte", "≤"),
    ("between", "is between (low, high)"),
    ("before", "is before"),
    ("after", "is after"),
    ("within_last_days", "within the last … days"),
    ("within_next_days", "within the next … days"),
    ("anniversary_in_days", "anniversary in … days"),
    ("is_set", "is set"),
    ("is_empty", "is empty"),
    ("has_tag", "has the tag"),
    ("lacks_tag", "does not have the tag"),
];

/// One condition of the builder, as typed.
#[derive(Debug, Clone, Default)]
pub struct Condition {
    /// A standard field, `fields.<key>`, or `tag`.
    what: String,
    op: String,
    value: String,
}

/// The builder's state, as the form holds it.
#[derive(Debug, Clone)]
pub struct Builder {
    name: String,
    description: String,
    dynamic: bool,
    /// `all` or `any`.
    join: String,
    conditions: Vec<Condition>,
}

impl Builder {
    fn from_form(f: &BTreeMap<String, String>) -> Self {
        let get = |k: &str| f.get(k).cloned().unwrap_or_default();
        let mut conditions: BTreeMap<usize, Condition> = BTreeMap::new();
        for (k, v) in f {
            let Some(rest) = k.strip_prefix("c.") else {
                continue;
            };
            let Some((i, part)) = rest.split_once('.') else {
                continue;
            };
            let Ok(i) = i.parse::<usize>() else {
                continue;
            };
            let c = conditions.entry(i).or_default();
            match part {
                "what" => c.what = v.clone(),
                "op" => c.op = v.clone(),
                "value" => c.value = v.clone(),
                _ => {}
            }
        }
        Self {
            name: get("name"),
            description: get("description"),
            dynamic: get("kind") != "static",
            join: if get("join") == "any" { "any" } else { "all" }.into(),
            conditions: conditions.into_values().collect(),
        }
    }

    fn blank() -> Self {
        Self {
            name: String::new(),
            description: String::new(),
            dynamic: true,
            join: "all".into(),
            conditions: vec![Condition {
                what: "email".into(),
                op: "ends_with".into(),
                value: String::new(),
            }],
        }
    }

    /// The rule the conditions make (a dynamic segment's), typed by the fields' kinds.
    fn rule(&self, defs: &BTreeMap<String, FieldDefinition>) -> Rule {
        let rules = self
            .conditions
            .iter()
            .map(|c| condition_rule(c, defs))
            .collect();
        if self.join == "any" {
            Rule::Any(rules)
        } else {
            Rule::All(rules)
        }
    }
}

/// How a text is typed for the field `what`.
#[derive(Clone, Copy)]
enum Typing {
    Text,
    Number,
    Boolean,
}

fn typing(what: &str, defs: &BTreeMap<String, FieldDefinition>) -> Typing {
    if what == "points" {
        return Typing::Number;
    }
    match what
        .strip_prefix("fields.")
        .and_then(|k| defs.get(k))
        .map(|d| d.field_type)
    {
        Some(FieldType::Number) => Typing::Number,
        Some(FieldType::Boolean) => Typing::Boolean,
        _ => Typing::Text,
    }
}

fn typed(raw: &str, t: Typing) -> serde_json::Value {
    let raw = raw.trim();
    match t {
        Typing::Number => raw
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(serde_json::Value::Number)
            .unwrap_or_else(|| raw.into()),
        Typing::Boolean => match raw.to_ascii_lowercase().as_str() {
            "true" | "yes" => true.into(),
            "false" | "no" => false.into(),
            _ => raw.into(),
        },
        Typing::Text => raw.into(),
    }
}

fn condition_rule(c: &Condition, defs: &BTreeMap<String, FieldDefinition>) -> Rule {
    match c.op.as_str() {
        "has_tag" => return Rule::Tag(c.value.trim().to_owned()),
        "lacks_tag" => return Rule::Not(Box::new(Rule::Tag(c.value.trim().to_owned()))),
        _ => {}
    }
    let t = typing(&c.what, defs);
    // An operator the language does not know is left for the check to name.
    let op: Op = serde_json::from_value(c.op.clone().into()).unwrap_or(Op::Equals);
    let list = || c.value.split(',').map(|v| typed(v, t)).collect::<Vec<_>>();
    let mut cond = FieldCondition {
        name: c.what.clone(),
        op,
        value: None,
        values: None,
        days: None,
    };
    match op {
        Op::In | Op::NotIn | Op::ContainsAll | Op::Between => cond.values = Some(list()),
        Op::WithinLastDays | Op::WithinNextDays | Op::AnniversaryInDays => {
            cond.days = c.value.trim().parse().ok();
        }
        Op::IsSet | Op::IsEmpty => {}
        _ => cond.value = Some(typed(&c.value, t)),
    }
    Rule::Field(cond)
}

/// What the builder offers to compare: standard fields, then custom ones.
fn subjects(defs: &BTreeMap<String, FieldDefinition>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Subject::STANDARD
        .iter()
        .map(|(name, _, _)| ((*name).to_owned(), name.replace('_', " ")))
        .collect();
    out.extend(
        defs.values()
            .map(|d| (format!("fields.{}", d.key), d.label.clone())),
    );
    out.push(("tag".into(), "tag".into()));
    out
}

#[derive(Template)]
#[template(path = "segments/form.html")]
struct FormPage {
    frame: Frame,
    b: Builder,
    subjects: Vec<(String, String)>,
    ops: [(&'static str, &'static str); 23],
    errors: FieldErrors,
    preview: Preview,
}

impl FormPage {
    fn row_error(&self, i: &usize) -> Option<&str> {
        self.errors.get(&format!("rule/{}/{i}", self.b.join))
    }
}

#[derive(Template, Default)]
#[template(path = "segments/preview.html")]
struct Preview {
    /// None before a rule was checked, or for a static list.
    count: Option<i64>,
    sample: Vec<Row>,
    problem: Option<String>,
}

fn form_errors(e: SegmentsError) -> Result<(StatusCode, FieldErrors), PageError> {
    command_errors(e, "segment")
}

async fn definitions(
    s: &WebState,
    me: &Member,
) -> Result<BTreeMap<String, FieldDefinition>, PageError> {
    Ok(s.commands
        .fields
        .schema(me.tenant)
        .await
        .map_err(|e| PageError::internal(&e))?
        .fields)
}

/// How many contacts the builder's rule matches now, and the first few; or why it cannot.
async fn preview(
    s: &WebState,
    me: &Member,
    b: &Builder,
    defs: &BTreeMap<String, FieldDefinition>,
) -> Result<(Preview, FieldErrors), PageError> {
    if !b.dynamic {
        return Ok((Preview::default(), FieldErrors::none()));
    }
    match s
        .commands
        .segments
        .check_rule(me.tenant, None, &b.rule(defs))
        .await
    {
        Ok(checked) => {
            let (count, sample) =
                read::matching(&s.pool, me.tenant.0, &checked, Utc::now(), None, 5).await?;
            Ok((
                Preview {
                    count: Some(count),
                    sample: sample.into_iter().map(Row::from).collect(),
                    problem: None,
                },
                FieldErrors::none(),
            ))
        }
        Err(e) => {
            let (_, errors) = form_errors(e)?;
            let problem = Some("Fix the conditions marked below to see who matches.".to_owned());
            Ok((
                Preview {
                    problem,
                    ..Preview::default()
                },
                errors,
            ))
        }
    }
}

/// `GET /segments/new`
pub async fn new_form(State(s): State<WebState>, me: Member) -> Result<Response, PageError> {
    me.require(Action::Write)?;
    let defs = definitions(&s, &me).await?;
    Ok(render(&FormPage {
        frame: me.frame("New segment", "segments"),
        b: Builder::blank(),
        subjects: subjects(&defs),
        ops: OPS,
        errors: FieldErrors::none(),
        preview: Preview::default(),
    }))
}

/// `POST /segments/preview` (HTMX, as the rule changes): the count and sample.
pub async fn live_preview(
    State(s): State<WebState>,
    me: Member,
    CsrfForm(f): CsrfForm<BTreeMap<String, String>>,
) -> Result<Response, PageError> {
    let defs = definitions(&s, &me).await?;
    let (p, _) = preview(&s, &me, &Builder::from_form(&f), &defs).await?;
    Ok(render(&p))
}

/// `POST /segments/new`: add or remove a condition, or save.
pub async fn create(
    State(s): State<WebState>,
    me: Member,
    CsrfForm(f): CsrfForm<BTreeMap<String, String>>,
) -> Result<Response, PageError> {
    me.require(Action::Write)?;
    let defs = definitions(&s, &me).await?;
    let mut b = Builder::from_form(&f);
    let action = f.get("action").map(String::as_str).unwrap_or("save");
    let page = |b: Builder, errors: FieldErrors, preview: Preview| FormPage {
        frame: me.frame("New segment", "segments"),
        b,
        subjects: subjects(&defs),
        ops: OPS,
        errors,
        preview,
    };
    if action == "add" {
        b.conditions.push(Condition {
            what: "email".into(),
            op: "equals".into(),
            value: String::new(),
        });
        let (p, errors) = preview(&s, &me, &b, &defs).await?;
        return Ok(render(&page(b, errors, p)));
    }
    if let Some(i) = action
        .strip_prefix("remove:")
        .and_then(|i| i.parse::<usize>().ok())
    {
        if i < b.conditions.len() {
            b.conditions.remove(i);
        }
        let (p, errors) = preview(&s, &me, &b, &defs).await?;
        return Ok(render(&page(b, errors, p)));
    }
    let name = b.name.trim().to_owned();
    let new = NewSegment {
        name: name.clone(),
        description: Some(b.description.trim().to_owned()).filter(|d| !d.is_empty()),
        rule: b.dynamic.then(|| b.rule(&defs)),
    };
    let outcome = if name.is_empty() {
        Err(commands::Invalid::one("name", "give the segment a name").into())
    } else {
        s.commands.segments.create(me.tenant, new, &me.meta).await
    };
    match outcome {
        Ok(a) => {
            Ok(Redirect::to(&format!("/segments/{}?after={}", a.id, a.cursor)).into_response())
        }
        Err(e) => {
            let (status, errors) = form_errors(e)?;
            let (p, _) = preview(&s, &me, &b, &defs).await?;
            Ok(render_with(status, &page(b, errors, p)))
        }
    }
}

#[derive(Template)]
#[template(path = "segments/list.html")]
struct ListPage {
    frame: Frame,
    segments: Vec<(SegmentRow, i64)>,
}

/// `GET /segments`
pub async fn list(State(s): State<WebState>, me: Member) -> Result<Response, PageError> {
    let segments = read::list(&s.pool, me.tenant.0, None, 500).await?;
    Ok(render(&ListPage {
        frame: me.frame("Segments", "segments"),
        segments,
    }))
}

#[derive(Template)]
#[template(path = "segments/show.html")]
struct ShowPage {
    frame: Frame,
    segment: SegmentRow,
    count: i64,
    members: Vec<Row>,
    rule: String,
    stale: bool,
}

#[derive(Deserialize, Default)]
pub struct AfterWrite {
    after: Option<String>,
}

/// `GET /segments/{id}`: a dynamic segment fills in the background; the count follows.
pub async fn show(
    State(s): State<WebState>,
    me: Member,
    PathIds(id): PathIds<SegmentId>,
    axum::extract::Query(q): axum::extract::Query<AfterWrite>,
) -> Result<Response, PageError> {
    let stale = !caught_up(&s, "segments", q.after.as_deref()).await?;
    let Some((segment, _)) = read::get(&s.pool, me.tenant.0, id.0).await? else {
        return Err(PageError::NotFound(if stale {
            "This segment is still being saved; reload the page in a moment.".into()
        } else {
            "No such segment in this organization.".into()
        }));
    };
    let (count, members) = read::members(&s.pool, me.tenant.0, id.0, None, 50).await?;
    let rule = segment
        .rule
        .as_ref()
        .and_then(|r| serde_json::to_string_pretty(r).ok())
        .unwrap_or_default();
    Ok(render(&ShowPage {
        frame: me.frame(segment.name.clone(), "segments"),
        segment,
        count,
        members: members.into_iter().map(Row::from).collect(),
        rule,
        stale,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_that_does_not_fit_its_field_is_refused_on_its_condition() {
        let mut form = BTreeMap::new();
        for (k, v) in [
            ("c.0.what", "points"),
            ("c.0.op", "gte"),
            ("c.0.value", "lots"),
            ("c.1.what", "email"),
            ("c.1.op", "ends_with"),
            ("c.1.value", "@example.org"),
        ] {
            form.insert(k.to_owned(), v.to_owned());
        }
        let b = Builder::from_form(&form);
        let errors = b.rule(&BTreeMap::new()).check(&BTreeMap::new()).err();
        let paths: Vec<String> = errors
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(paths, vec!["/all/0/field".to_owned()]);
    }
}
