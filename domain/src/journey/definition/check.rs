//! The checks a draft must pass to be saved (`check_draft`) and to be published
//! (`check_publish`): every problem named at its path.

use super::graph::{busy_cycle, reach};
use super::*;

/// What is wrong with a definition, at a path (`steps.<id>.config.timeout`, `triggers.0`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub path: String,
    pub reason: String,
}

pub(super) fn problem(path: impl Into<String>, reason: impl Into<String>) -> Problem {
    Problem {
        path: path.into(),
        reason: reason.into(),
    }
}

pub(super) fn key_ok(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= MAX_KEY
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub(super) fn name_ok(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 100
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

impl Definition {
    /// Checks a draft can be saved: its shape (sizes, keys), not whether it is complete.
    pub fn check_draft(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if self.steps.len() > MAX_STEPS {
            out.push(problem(
                "steps",
                format!("at most {MAX_STEPS} steps in a journey"),
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, s) in self.steps.iter().enumerate() {
            if !key_ok(&s.id) {
                out.push(problem(
                    format!("steps.{i}.id"),
                    "1–64 characters of letters, digits, '_' and '-'",
                ));
            } else if !seen.insert(s.id.as_str()) {
                out.push(problem(format!("steps.{i}.id"), "two steps with this id"));
            }
            if let Some(k) = &s.data_key {
                if !key_ok(k) {
                    out.push(problem(
                        format!("steps.{}.data_key", s.id),
                        "1–64 characters of letters, digits, '_' and '-'",
                    ));
                }
            }
        }
        let mut triggers = BTreeSet::new();
        for (i, t) in self.triggers.iter().enumerate() {
            if !key_ok(&t.id) {
                out.push(problem(
                    format!("triggers.{i}.id"),
                    "1–64 characters of letters, digits, '_' and '-'",
                ));
            } else if !triggers.insert(t.id.as_str()) {
                out.push(problem(
                    format!("triggers.{i}.id"),
                    "two triggers with this id",
                ));
            }
        }
        out
    }

    /// Checks the definition can be published, with the rules of its conditions checked by
    /// `check_rule` (against the organization's fields): every problem, each at its path.
    /// On success, the checked rules by step id.
    pub fn check_publish(
        &self,
        mut check_rule: impl FnMut(&Rule) -> Result<Checked, Vec<String>>,
    ) -> Result<BTreeMap<String, Checked>, Vec<Problem>> {
        let mut out = self.check_draft();
        let mut checked = BTreeMap::new();
        let ids: HashMap<&str, &Step> = self.steps.iter().map(|s| (s.id.as_str(), s)).collect();
        if self.steps.is_empty() {
            out.push(problem("steps", "a journey needs at least one step"));
        }
        if self.triggers.is_empty() {
            out.push(problem("triggers", "a journey needs at least one trigger"));
        }
        // One entrance per trigger, and it exists.
        let mut entries = Vec::new();
        for t in &self.triggers {
            let path = format!("triggers.{}", t.id);
            if !ids.contains_key(t.entry.as_str()) {
                out.push(problem(
                    format!("{path}.entry"),
                    format!("no step '{}'", t.entry),
                ));
            } else {
                entries.push(t.entry.as_str());
            }
            match &t.kind {
                TriggerKind::Event { name, conditions } => {
                    check_name(&mut out, &format!("{path}.name"), name);
                    check_conditions(&mut out, &format!("{path}.conditions"), conditions);
                }
                TriggerKind::Schedule { recurrence, .. } => {
                    check_recurrence(&mut out, &format!("{path}.recurrence"), recurrence)
                }
                TriggerKind::SegmentEntered { .. } | TriggerKind::Api => {}
            }
        }
        if self
            .triggers
            .iter()
            .filter(|t| matches!(t.kind, TriggerKind::Api))
            .count()
            > 1
        {
            out.push(problem("triggers", "at most one api trigger"));
        }
        // Edges: every `next` and branch target exists; branches are exactly the step's keys.
        for s in &self.steps {
            let path = format!("steps.{}", s.id);
            if let Some(n) = &s.next {
                if !ids.contains_key(n.as_str()) {
                    out.push(problem(format!("{path}.next"), format!("no step '{n}'")));
                }
            }
            for (key, to) in &s.branches {
                if !ids.contains_key(to.as_str()) {
                    out.push(problem(
                        format!("{path}.branches.{key}"),
                        format!("no step '{to}'"),
                    ));
                }
            }
            match s.kind.branch_keys() {
                Some(keys) => {
                    if s.next.is_some() {
                        out.push(problem(
                            format!("{path}.next"),
                            "a step with branches routes through `branches`",
                        ));
                    }
                    for k in &keys {
                        if !s.branches.contains_key(k) {
                            out.push(problem(
                                format!("{path}.branches.{k}"),
                                "this branch is not routed to a step",
                            ));
                        }
                    }
                    for k in s.branches.keys() {
                        if !keys.contains(k) {
                            out.push(problem(
                                format!("{path}.branches.{k}"),
                                format!("{} has no branch '{k}'", s.kind.as_str()),
                            ));
                        }
                    }
                }
                None => {
                    if !s.branches.is_empty() {
                        out.push(problem(
                            format!("{path}.branches"),
                            format!("{} has no branches; use `next`", s.kind.as_str()),
                        ));
                    }
                    if s.kind.terminal() && s.next.is_some() {
                        out.push(problem(format!("{path}.next"), "exit ends the journey"));
                    }
                }
            }
            check_step(&mut out, &path, s, &ids, &mut checked, &mut check_rule);
        }
        // Every step reachable from an entrance.
        let reachable = reach(&entries, &ids);
        for s in &self.steps {
            if !reachable.contains(s.id.as_str()) {
                out.push(problem(
                    format!("steps.{}", s.id),
                    "not reachable from any trigger",
                ));
            }
        }
        // No cycle made only of steps that pass straight through.
        if let Some(cycle) = busy_cycle(&self.steps, &ids) {
            out.push(problem(
                format!("steps.{}", cycle[0]),
                format!(
                    "cycle without a delay: {} — add a delay step to it",
                    cycle.join(" → ")
                ),
            ));
        }
        for (i, c) in self.exit_criteria.iter().enumerate() {
            if let ExitCriterion::Event { name, conditions } = c {
                check_name(&mut out, &format!("exit_criteria.{i}.name"), name);
                check_conditions(
                    &mut out,
                    &format!("exit_criteria.{i}.conditions"),
                    conditions,
                );
            }
        }
        if let Some(g) = &self.goal {
            check_name(&mut out, "goal.name", &g.name);
            check_conditions(&mut out, "goal.conditions", &g.conditions);
        }
        if let Reentry::After { period } = &self.reentry {
            check_span(&mut out, "reentry.period", period);
        }
        if let Some(q) = &self.quiet_hours {
            for (k, v) in [("start", &q.start), ("end", &q.end)] {
                if parse_time(v).is_none() {
                    out.push(problem(format!("quiet_hours.{k}"), "a time as HH:MM"));
                }
            }
            if q.start == q.end {
                out.push(problem("quiet_hours", "start and end must differ"));
            }
        }
        if out.is_empty() {
            Ok(checked)
        } else {
            Err(out)
        }
    }
}

pub(super) fn check_name(out: &mut Vec<Problem>, path: &str, name: &str) {
    if !name_ok(name) {
        out.push(problem(
            path,
            "an event name: 1–100 characters of letters, digits, '_', '.', ':' and '-'",
        ));
    }
}

pub(super) fn check_conditions(
    out: &mut Vec<Problem>,
    path: &str,
    conditions: &[PropertyCondition],
) {
    for (i, c) in conditions.iter().enumerate() {
        if c.property.is_empty() || c.property.len() > 200 {
            out.push(problem(format!("{path}.{i}.property"), "a property path"));
        }
        let numeric = matches!(
            c.op,
            PropertyOp::GreaterThan
                | PropertyOp::GreaterOrEqual
                | PropertyOp::LessThan
                | PropertyOp::LessOrEqual
        );
        if numeric && !c.value.is_number() {
            out.push(problem(format!("{path}.{i}.value"), "a number"));
        }
    }
}

pub(super) fn check_span(out: &mut Vec<Problem>, path: &str, span: &Span) {
    let m = span.minutes_total();
    if m == 0 {
        out.push(problem(path, "at least one minute"));
    } else if m > MAX_WAIT_MINUTES {
        out.push(problem(path, "at most two years"));
    }
}

pub(super) fn check_recurrence(out: &mut Vec<Problem>, path: &str, r: &Recurrence) {
    if parse_time(&r.time).is_none() {
        out.push(problem(format!("{path}.time"), "a time as HH:MM"));
    }
    if r.time_zone.parse::<chrono_tz::Tz>().is_err() {
        out.push(problem(format!("{path}.time_zone"), "an IANA time zone"));
    }
    if r.interval == 0 || r.interval > 366 {
        out.push(problem(format!("{path}.interval"), "1 to 366"));
    }
    if r.ends_at.is_some_and(|e| e <= r.starts_at) {
        out.push(problem(format!("{path}.ends_at"), "after starts_at"));
    }
}

pub(super) fn check_paths(out: &mut Vec<Problem>, path: &str, keys: &[(&str, u32)]) {
    if keys.len() < 2 || keys.len() > 10 {
        out.push(problem(format!("{path}.paths"), "2 to 10 paths"));
    }
    let mut seen = BTreeSet::new();
    for (k, w) in keys {
        if !key_ok(k) || !seen.insert(*k) {
            out.push(problem(
                format!("{path}.paths.{k}"),
                "unique keys of letters, digits, '_' and '-'",
            ));
        }
        if *w == 0 || *w > 10_000 {
            out.push(problem(format!("{path}.paths.{k}.weight"), "1 to 10000"));
        }
    }
}

pub(super) fn check_condition(
    out: &mut Vec<Problem>,
    path: &str,
    step: &Step,
    condition: &Condition,
    ids: &HashMap<&str, &Step>,
    checked: &mut BTreeMap<String, Checked>,
    check_rule: &mut impl FnMut(&Rule) -> Result<Checked, Vec<String>>,
) {
    match condition {
        Condition::Rule { rule } => match check_rule(rule) {
            Ok(c) => {
                checked.insert(step.id.clone(), c);
            }
            Err(errors) => {
                for e in errors {
                    out.push(problem(format!("{path}.condition.rule"), e));
                }
            }
        },
        Condition::Message { step: target, .. } => {
            if ids
                .get(target.as_str())
                .is_none_or(|s| s.kind.channel().is_none())
            {
                out.push(problem(
                    format!("{path}.condition.step"),
                    format!("'{target}' is not a message step of this journey"),
                ));
            }
        }
    }
}

pub(super) fn check_step(
    out: &mut Vec<Problem>,
    path: &str,
    step: &Step,
    ids: &HashMap<&str, &Step>,
    checked: &mut BTreeMap<String, Checked>,
    check_rule: &mut impl FnMut(&Rule) -> Result<Checked, Vec<String>>,
) {
    let config = format!("{path}.config");
    match &step.kind {
        StepKind::ActionEmail(_)
        | StepKind::ActionSms(_)
        | StepKind::ActionPush(_)
        | StepKind::ActionWebhook(_)
        | StepKind::Exit(_) => {}
        StepKind::ActionUpdateContact(c) => {
            if c.fields.is_empty() && c.add_tags.is_empty() && c.remove_tags.is_empty() {
                out.push(problem(config, "change at least one field or tag"));
            }
        }
        StepKind::DelayDuration(span) => check_span(out, &config, span),
        StepKind::DelayUntil(until) => match until {
            Until::At { .. } => {}
            Until::TimeOfDay { time, .. } => {
                if parse_time(time).is_none() {
                    out.push(problem(format!("{config}.time"), "a time as HH:MM"));
                }
            }
            Until::DateField { field, time, .. } => {
                if field.is_empty() {
                    out.push(problem(format!("{config}.field"), "a date field"));
                }
                if time.as_deref().is_some_and(|t| parse_time(t).is_none()) {
                    out.push(problem(format!("{config}.time"), "a time as HH:MM"));
                }
            }
        },
        StepKind::DelayEvent(w) => {
            check_name(out, &format!("{config}.name"), &w.name);
            check_conditions(out, &format!("{config}.conditions"), &w.conditions);
            check_span(out, &format!("{config}.timeout"), &w.timeout);
        }
        StepKind::SplitRandom(p) | StepKind::Experiment(p) => {
            let keys: Vec<(&str, u32)> =
                p.paths.iter().map(|p| (p.key.as_str(), p.weight)).collect();
            check_paths(out, &config, &keys);
        }
        StepKind::Balancer(b) => {
            let keys: Vec<(&str, u32)> =
                b.paths.iter().map(|p| (p.key.as_str(), p.weight)).collect();
            check_paths(out, &config, &keys);
            for p in &b.paths {
                if p.rate_limit == 0 {
                    out.push(problem(
                        format!("{config}.paths.{}.rate_limit", p.key),
                        "at least 1",
                    ));
                }
            }
        }
        StepKind::SplitConditional(c) => {
            check_condition(out, &config, step, c, ids, checked, check_rule)
        }
        StepKind::Gate(g) => {
            check_condition(out, &config, step, &g.condition, ids, checked, check_rule);
            check_span(out, &format!("{config}.timeout"), &g.timeout);
        }
        StepKind::Link(_) => {}
        StepKind::Event(e) => {
            check_name(out, &format!("{config}.name"), &e.name);
            if serde_json::to_vec(&e.properties).map_or(0, |v| v.len()) > 16 * 1024 {
                out.push(problem(format!("{config}.properties"), "at most 16 KiB"));
            }
        }
    }
}
