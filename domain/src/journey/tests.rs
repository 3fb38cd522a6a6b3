#![allow(clippy::unwrap_used, clippy::expect_used)]

//! Given/when/then tests of journeys: publish validation (one test per rejection), the
//! lifecycle, and the engine on the example flow, waits for events and gates.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde_json::json;
use uuid::Uuid;

use super::aggregate::*;
use super::definition::*;
use super::execution::*;
use crate::segment::eval::ContactFacts;

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-30T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn def(v: serde_json::Value) -> Definition {
    serde_json::from_value(v).expect("definition JSON")
}

/// "When someone signs up → welcome email → wait 2 days → opened it? SMS : push; exit when
/// they buy."
fn example() -> Definition {
    let welcome = Uuid::from_u128(1);
    let sms = Uuid::from_u128(2);
    let push = Uuid::from_u128(3);
    def(json!({
        "triggers": [{"id": "signup", "type": "event", "name": "signed_up", "entry": "welcome"}],
        "steps": [
            {"id": "welcome", "type": "action_email", "config": {"template_id": welcome}, "next": "wait", "data_key": "welcome"},
            {"id": "wait", "type": "delay_duration", "config": {"days": 2}, "next": "opened"},
            {"id": "opened", "type": "split_conditional",
             "config": {"kind": "message", "step": "welcome", "engagement": "opened"},
             "branches": {"yes": "sms", "no": "push"}},
            {"id": "sms", "type": "action_sms", "config": {"template_id": sms}},
            {"id": "push", "type": "action_push", "config": {"template_id": push}}
        ],
        "exit_criteria": [{"type": "event", "name": "purchased"}],
        "goal": {"name": "purchased"}
    }))
}

fn problems(d: &Definition) -> Vec<Problem> {
    d.check_publish(|_| Ok(crate::segment::rule::Checked::All(vec![])))
        .err()
        .unwrap_or_default()
}

fn has(problems: &[Problem], path: &str, reason_part: &str) -> bool {
    problems
        .iter()
        .any(|p| p.path == path && p.reason.contains(reason_part))
}

#[test]
fn the_example_flow_is_publishable() {
    assert_eq!(problems(&example()), vec![]);
}

#[test]
fn publish_refuses_an_unreachable_step() {
    let mut d = example();
    d.steps.push(def_step(
        json!({"id": "orphan", "type": "exit", "config": {}}),
    ));
    let p = problems(&d);
    assert!(has(&p, "steps.orphan", "not reachable"), "{p:?}");
}

#[test]
fn publish_refuses_a_dangling_edge() {
    let mut d = example();
    d.steps[0].next = Some("nowhere".into());
    let p = problems(&d);
    assert!(has(&p, "steps.welcome.next", "no step 'nowhere'"), "{p:?}");
}

#[test]
fn publish_refuses_a_branch_not_routed() {
    let mut d = example();
    d.steps[2].branches.remove("no");
    let p = problems(&d);
    assert!(has(&p, "steps.opened.branches.no", "not routed"), "{p:?}");
}

#[test]
fn publish_refuses_a_cycle_without_a_delay() {
    let d = def(json!({
        "triggers": [{"id": "api", "type": "api", "entry": "a"}],
        "steps": [
            {"id": "a", "type": "action_update_contact", "config": {"add_tags": ["x"]}, "next": "b"},
            {"id": "b", "type": "split_random", "config": {"paths": [{"key": "l", "weight": 1}, {"key": "r", "weight": 1}]},
             "branches": {"l": "a", "r": "end"}},
            {"id": "end", "type": "exit", "config": {}}
        ]
    }));
    let p = problems(&d);
    assert!(
        p.iter().any(|p| p.reason.contains("cycle without a delay")),
        "{p:?}"
    );
    // The same loop through a delay is fine.
    let mut ok = d.clone();
    ok.steps[1].branches.insert("l".into(), "pause".into());
    ok.steps.push(def_step(
        json!({"id": "pause", "type": "delay_duration", "config": {"hours": 1}, "next": "a"}),
    ));
    assert_eq!(problems(&ok), vec![]);
}

#[test]
fn publish_refuses_bad_step_config() {
    let d = def(json!({
        "triggers": [{"id": "api", "type": "api", "entry": "a"}],
        "steps": [
            {"id": "a", "type": "delay_duration", "config": {}, "next": "b"},
            {"id": "b", "type": "delay_event", "config": {"name": "has space", "timeout": {"days": 1}}, "branches": {"event": "c", "timeout": "c"}},
            {"id": "c", "type": "split_random", "config": {"paths": [{"key": "only", "weight": 0}]}, "branches": {"only": "d"}},
            {"id": "d", "type": "split_conditional", "config": {"kind": "message", "step": "a", "engagement": "opened"}, "branches": {"yes": "e", "no": "e"}},
            {"id": "e", "type": "exit", "config": {}}
        ]
    }));
    let p = problems(&d);
    assert!(has(&p, "steps.a.config", "at least one minute"), "{p:?}");
    assert!(has(&p, "steps.b.config.name", "event name"), "{p:?}");
    assert!(has(&p, "steps.c.config.paths", "2 to 10 paths"), "{p:?}");
    assert!(
        has(&p, "steps.c.config.paths.only.weight", "1 to 10000"),
        "{p:?}"
    );
    assert!(
        has(&p, "steps.d.config.condition.step", "not a message step"),
        "{p:?}"
    );
}

#[test]
fn publish_refuses_a_trigger_without_its_entrance_and_a_journey_without_triggers() {
    let mut d = example();
    d.triggers[0].entry = "missing".into();
    let p = problems(&d);
    assert!(
        has(&p, "triggers.signup.entry", "no step 'missing'"),
        "{p:?}"
    );
    let mut none = example();
    none.triggers.clear();
    let p = problems(&none);
    assert!(has(&p, "triggers", "at least one trigger"), "{p:?}");
}

#[test]
fn publish_reports_a_rule_the_fields_refuse() {
    let d = def(json!({
        "triggers": [{"id": "api", "type": "api", "entry": "s"}],
        "steps": [
            {"id": "s", "type": "split_conditional",
             "config": {"kind": "rule", "rule": {"field": {"name": "fields.nope", "op": "equals", "value": 1}}},
             "branches": {"yes": "e", "no": "e"}},
            {"id": "e", "type": "exit", "config": {}}
        ]
    }));
    let journey = given(vec![JourneyEvent::JourneyCreated {
        name: "J".into(),
        definition: d,
    }]);
    let err = journey
        .decide(JourneyCommand::Publish {
            fields: BTreeMap::new(),
            now: t0(),
        })
        .unwrap_err();
    let JourneyError::Invalid(p) = err else {
        panic!("{err:?}")
    };
    assert!(
        p.iter().any(|p| p.path == "steps.s.config.condition.rule"),
        "{p:?}"
    );
}

fn def_step(v: serde_json::Value) -> Step {
    serde_json::from_value(v).unwrap()
}

fn given(events: Vec<JourneyEvent>) -> Journey {
    use cqrs_es::Aggregate;
    let mut j = Journey::default();
    for e in events {
        j.apply(e);
    }
    j
}

#[test]
fn versions_are_numbered_and_edits_after_publishing_change_only_the_draft() {
    let mut j = given(vec![JourneyEvent::JourneyCreated {
        name: "Welcome".into(),
        definition: example(),
    }]);
    let publish = |j: &Journey| {
        j.decide(JourneyCommand::Publish {
            fields: BTreeMap::new(),
            now: t0(),
        })
        .unwrap()
    };
    let first = publish(&j);
    assert!(matches!(
        first[0],
        JourneyEvent::JourneyPublished { version: 1, .. }
    ));
    use cqrs_es::Aggregate;
    j.apply(first[0].clone());
    assert_eq!(j.status, Status::Live);
    let mut d2 = example();
    d2.steps[1].kind = StepKind::DelayDuration(Span {
        days: 3,
        ..Span::default()
    });
    let edit = j
        .decide(JourneyCommand::Edit {
            name: None,
            definition: Some(d2.clone()),
        })
        .unwrap();
    j.apply(edit[0].clone());
    let second = publish(&j);
    match &second[0] {
        JourneyEvent::JourneyPublished {
            version,
            definition,
            ..
        } => {
            assert_eq!(*version, 2);
            assert_eq!(definition, &d2);
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn lifecycle_refusals() {
    use cqrs_es::Aggregate;
    let mut j = given(vec![JourneyEvent::JourneyCreated {
        name: "J".into(),
        definition: example(),
    }]);
    // A draft cannot be paused or resumed.
    assert!(matches!(
        j.decide(JourneyCommand::Pause { now: t0() }),
        Err(JourneyError::Status { .. })
    ));
    assert!(matches!(
        j.decide(JourneyCommand::Resume { now: t0() }),
        Err(JourneyError::Status { .. })
    ));
    j.apply(JourneyEvent::JourneyArchived { at: t0() });
    // Archived: nothing more.
    for c in [
        JourneyCommand::Publish {
            fields: BTreeMap::new(),
            now: t0(),
        },
        JourneyCommand::Edit {
            name: Some("x".into()),
            definition: None,
        },
        JourneyCommand::Archive { now: t0() },
    ] {
        assert!(matches!(j.decide(c), Err(JourneyError::Status { .. })));
    }
    // An empty name is refused.
    assert_eq!(
        Journey::default().decide(JourneyCommand::Create {
            name: "  ".into(),
            definition: Definition::default(),
        }),
        Err(JourneyError::Name)
    );
}

/// An environment with a moveable clock and engagement answers.
struct TestEnv {
    now: DateTime<Utc>,
    facts: Option<ContactFacts>,
    opened: BTreeSet<Uuid>,
    admitted: BTreeMap<String, u32>,
}

impl TestEnv {
    fn new() -> Self {
        Self {
            now: t0(),
            facts: Some(ContactFacts::default()),
            opened: BTreeSet::new(),
            admitted: BTreeMap::new(),
        }
    }
}

impl Env for TestEnv {
    fn now(&self) -> DateTime<Utc> {
        self.now
    }
    fn facts(&self) -> Option<&ContactFacts> {
        self.facts.as_ref()
    }
    fn time_zone(&self) -> Tz {
        Tz::UTC
    }
    fn engaged(&self, job: Uuid, _: Engagement) -> bool {
        self.opened.contains(&job)
    }
    fn template_version(&self, _: Uuid) -> Option<u32> {
        Some(1)
    }
    fn admit(&mut self, step: &str, path: &BalancedPath, _: DateTime<Utc>) -> bool {
        let n = self
            .admitted
            .entry(format!("{step}/{}", path.key))
            .or_default();
        if *n < path.rate_limit {
            *n += 1;
            true
        } else {
            false
        }
    }
}

fn version(d: Definition) -> Version {
    Version {
        number: 1,
        definition: d,
        rules: BTreeMap::new(),
        published_at: t0(),
    }
}

fn entered(v: &Version, entry: &str) -> Execution {
    use cqrs_es::Aggregate;
    let mut e = Execution::default();
    e.apply(ExecutionEvent::JourneyEntered {
        journey_id: Uuid::from_u128(9),
        version: v.number,
        contact_id: Uuid::from_u128(7),
        trigger: "t".into(),
        entry: entry.into(),
        at: t0(),
    });
    e
}

fn run(
    v: &Version,
    id: Uuid,
    e: &mut Execution,
    signals: &[Signal],
    env: &mut TestEnv,
) -> Vec<ExecutionEvent> {
    use cqrs_es::Aggregate;
    let events = advance(v, id, e, signals, env);
    for ev in &events {
        e.apply(ev.clone());
    }
    events
}

fn channels(events: &[ExecutionEvent]) -> Vec<&'static str> {
    events
        .iter()
        .filter_map(|e| match e {
            ExecutionEvent::JourneyActionRequested {
                action: Action::Message { channel, .. },
                ..
            } => Some(channel.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn example_flow_sends_sms_to_who_opened_and_push_to_who_did_not() {
    let v = version(example());
    for opened in [true, false] {
        let id = Uuid::from_u128(if opened { 100 } else { 200 });
        let mut env = TestEnv::new();
        let mut e = entered(&v, "welcome");
        let first = run(&v, id, &mut e, &[], &mut env);
        assert_eq!(channels(&first), vec!["email"]);
        assert_eq!(e.status, ExecStatus::Waiting);
        assert_eq!(e.due_at(), Some(t0() + Duration::days(2)));
        let job = e.jobs["welcome"];
        assert_eq!(job, effect_id(id, "welcome", 0));
        assert_eq!(e.data["welcome"], json!({"job_id": job}));
        // A day later nothing happens yet.
        env.now = t0() + Duration::days(1);
        assert_eq!(run(&v, id, &mut e, &[], &mut env), vec![]);
        if opened {
            env.opened.insert(job);
        }
        env.now = t0() + Duration::days(2);
        let later = run(&v, id, &mut e, &[], &mut env);
        assert_eq!(channels(&later), vec![if opened { "sms" } else { "push" }]);
        assert_eq!(e.status, ExecStatus::Completed);
        let decided = later.iter().find_map(|ev| match ev {
            ExecutionEvent::JourneyBranchTaken { branch, values, .. } => {
                Some((branch.clone(), values.clone()))
            }
            _ => None,
        });
        let (branch, values) = decided.unwrap();
        assert_eq!(branch, if opened { "yes" } else { "no" });
        assert_eq!(values["opened"], json!(opened));
    }
}

#[test]
fn an_exit_criterion_removes_the_contact_wherever_they_wait_and_counts_the_goal() {
    let v = version(example());
    let id = Uuid::from_u128(1);
    let mut env = TestEnv::new();
    let mut e = entered(&v, "welcome");
    run(&v, id, &mut e, &[], &mut env);
    assert!(e.listens(&v).contains(&"purchased".to_owned()));
    let bought = Signal {
        name: "purchased".into(),
        properties: json!({}),
        at: t0(),
    };
    let out = run(&v, id, &mut e, &[bought], &mut env);
    assert!(
        matches!(out[0], ExecutionEvent::JourneyConverted { .. })
            || matches!(out[0], ExecutionEvent::JourneyExited { .. })
    );
    assert_eq!(e.status, ExecStatus::Exited);
    assert!(out.iter().any(|ev| matches!(ev, ExecutionEvent::JourneyExited { reason, .. } if reason == "exit_criteria:purchased")));
    assert_eq!(e.listens(&v), Vec::<String>::new());
}

fn wait_for_event() -> Definition {
    def(json!({
        "triggers": [{"id": "api", "type": "api", "entry": "w"}],
        "steps": [
            {"id": "w", "type": "delay_event",
             "config": {"name": "clicked_cta", "conditions": [{"property": "plan", "op": "equals", "value": "pro"}], "timeout": {"hours": 4}},
             "branches": {"event": "yes", "timeout": "no"}, "data_key": "cta"},
            {"id": "yes", "type": "action_update_contact", "config": {"add_tags": ["engaged"]}},
            {"id": "no", "type": "action_update_contact", "config": {"add_tags": ["cold"]}}
        ]
    }))
}

fn tags_added(events: &[ExecutionEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            ExecutionEvent::JourneyActionRequested {
                action: Action::UpdateContact { change },
                ..
            } => Some(change.add_tags.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn delay_event_takes_the_event_branch_when_a_matching_event_arrives() {
    let v = version(wait_for_event());
    let mut env = TestEnv::new();
    let mut e = entered(&v, "w");
    run(&v, Uuid::nil(), &mut e, &[], &mut env);
    assert_eq!(
        e.listens(&v),
        vec!["clicked_cta".to_owned(), ARCHIVED.to_owned()]
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
    // An event whose properties do not match is ignored.
    let wrong = Signal {
        name: "clicked_cta".into(),
        properties: json!({"plan": "free"}),
        at: t0(),
    };
    assert_eq!(run(&v, Uuid::nil(), &mut e, &[wrong], &mut env), vec![]);
    let right = Signal {
        name: "clicked_cta".into(),
        properties: json!({"plan": "Pro"}),
        at: t0(),
    };
    env.now = t0() + Duration::hours(1);
    let out = run(&v, Uuid::nil(), &mut e, &[right], &mut env);
    assert_eq!(tags_added(&out), vec!["engaged"]);
    assert_eq!(e.data["cta"]["value"], json!({"plan": "Pro"}));
}

#[test]
fn delay_event_times_out_into_the_timeout_branch() {
    let v = version(wait_for_event());
    let mut env = TestEnv::new();
    let mut e = entered(&v, "w");
    run(&v, Uuid::nil(), &mut e, &[], &mut env);
    env.now = t0() + Duration::hours(4);
    let out = run(&v, Uuid::nil(), &mut e, &[], &mut env);
    assert_eq!(tags_added(&out), vec!["cold"]);
    assert_eq!(e.status, ExecStatus::Completed);
}

fn gate() -> Definition {
    def(json!({
        "triggers": [{"id": "api", "type": "api", "entry": "g"}],
        "steps": [
            {"id": "g", "type": "gate",
             "config": {"condition": {"kind": "rule", "rule": {"tag": "vip"}}, "timeout": {"days": 1}},
             "branches": {"yes": "yes", "timeout": "no"}},
            {"id": "yes", "type": "action_update_contact", "config": {"add_tags": ["passed"]}},
            {"id": "no", "type": "action_update_contact", "config": {"add_tags": ["timed_out"]}}
        ]
    }))
}

fn gate_version() -> Version {
    let mut v = version(gate());
    v.rules
        .insert("g".into(), crate::segment::rule::Checked::Tag("vip".into()));
    v
}

#[test]
fn gate_passes_once_the_condition_holds() {
    let v = gate_version();
    let mut env = TestEnv::new();
    let mut e = entered(&v, "g");
    run(&v, Uuid::nil(), &mut e, &[], &mut env);
    assert_eq!(e.status, ExecStatus::Waiting);
    assert!(e.listens(&v).contains(&CHANGED.to_owned()));
    env.facts.as_mut().unwrap().tags.insert("vip".into());
    let changed = Signal {
        name: CHANGED.into(),
        properties: json!({}),
        at: t0(),
    };
    let out = run(&v, Uuid::nil(), &mut e, &[changed], &mut env);
    assert_eq!(tags_added(&out), vec!["passed"]);
}

#[test]
fn gate_times_out_when_the_condition_never_holds() {
    let v = gate_version();
    let mut env = TestEnv::new();
    let mut e = entered(&v, "g");
    run(&v, Uuid::nil(), &mut e, &[], &mut env);
    env.now = t0() + Duration::days(1);
    let out = run(&v, Uuid::nil(), &mut e, &[], &mut env);
    assert_eq!(tags_added(&out), vec!["timed_out"]);
}

#[test]
fn split_random_is_fixed_per_execution_and_follows_the_weights() {
    let d = def(json!({
        "triggers": [{"id": "api", "type": "api", "entry": "s"}],
        "steps": [
            {"id": "s", "type": "split_random", "config": {"paths": [{"key": "a", "weight": 3}, {"key": "b", "weight": 1}]},
             "branches": {"a": "x", "b": "x"}},
            {"id": "x", "type": "exit", "config": {}}
        ]
    }));
    let v = version(d);
    let mut counts = BTreeMap::new();
    for i in 0..4000u128 {
        let mut env = TestEnv::new();
        let mut e = entered(&v, "s");
        let out = advance(&v, Uuid::from_u128(i), &e, &[], &mut env);
        let again = advance(&v, Uuid::from_u128(i), &e, &[], &mut env);
        assert_eq!(out, again, "the same execution draws the same path");
        let _ = &mut e;
        if let ExecutionEvent::JourneyBranchTaken { branch, .. } = &out[0] {
            *counts.entry(branch.clone()).or_insert(0u32) += 1;
        }
    }
    let a = counts["a"];
    assert!((2800..3200).contains(&a), "{counts:?}");
}

#[test]
fn balancer_waits_for_the_next_window_when_every_path_is_full() {
    let d = def(json!({
        "triggers": [{"id": "api", "type": "api", "entry": "b"}],
        "steps": [
            {"id": "b", "type": "balancer", "config": {"paths": [
                {"key": "a", "weight": 1, "rate_limit": 1, "per": "hour"},
                {"key": "c", "weight": 1, "rate_limit": 1, "per": "hour"}]},
             "branches": {"a": "x", "c": "x"}},
            {"id": "x", "type": "exit", "config": {}}
        ]
    }));
    let v = version(d);
    let mut env = TestEnv::new();
    let mut taken = Vec::new();
    for i in 0..3u128 {
        let mut e = entered(&v, "b");
        run(&v, Uuid::from_u128(i), &mut e, &[], &mut env);
        taken.push(e.status);
    }
    assert_eq!(
        taken,
        vec![ExecStatus::Exited, ExecStatus::Exited, ExecStatus::Waiting]
    );
}

#[test]
fn quiet_hours_delay_a_message_to_their_end() {
    let mut d = example();
    d.quiet_hours = Some(QuietHours {
        start: "09:00".into(),
        end: "12:00".into(),
    });
    let v = version(d);
    let mut env = TestEnv::new();
    let mut e = entered(&v, "welcome");
    let out = run(&v, Uuid::nil(), &mut e, &[], &mut env);
    let due = out.iter().find_map(|ev| match ev {
        ExecutionEvent::JourneyActionRequested {
            action: Action::Message { due_at, .. },
            ..
        } => Some(*due_at),
        _ => None,
    });
    assert_eq!(due, Some(t0() + Duration::hours(2)));
}

#[test]
fn a_contact_gone_exits_and_a_link_enters_after_its_delay() {
    let v = version(example());
    let mut env = TestEnv::new();
    env.facts = None;
    let mut e = entered(&v, "welcome");
    let out = run(&v, Uuid::nil(), &mut e, &[], &mut env);
    assert!(
        matches!(&out[0], ExecutionEvent::JourneyExited { reason, .. } if reason == "contact_gone")
    );

    let target = Uuid::from_u128(55);
    let d = def(json!({
        "triggers": [{"id": "api", "type": "api", "entry": "l"}],
        "steps": [{"id": "l", "type": "link", "config": {"journey_id": target, "delay": "15m"}}]
    }));
    let v = version(d);
    let mut env = TestEnv::new();
    let mut e = entered(&v, "l");
    run(&v, Uuid::nil(), &mut e, &[], &mut env);
    assert_eq!(e.due_at(), Some(t0() + Duration::minutes(15)));
    env.now = t0() + Duration::minutes(15);
    let out = run(&v, Uuid::nil(), &mut e, &[], &mut env);
    assert!(matches!(
        &out[0],
        ExecutionEvent::JourneyActionRequested { action: Action::Enter { journey_id, .. }, .. } if *journey_id == target
    ));
    assert_eq!(e.status, ExecStatus::Completed);
}

#[test]
fn events_keep_their_json_shape() {
    let e = ExecutionEvent::JourneyWaitStarted {
        step: "wait".into(),
        until: Some(t0()),
        event: None,
        at: t0(),
    };
    assert_eq!(
        serde_json::to_value(&e).unwrap(),
        json!({"JourneyWaitStarted": {"step": "wait", "until": "2026-11-30T10:00:00Z", "at": "2026-11-30T10:00:00Z"}})
    );
    let s: Step = def_step(json!({"id": "a", "type": "delay_duration", "config": {"hours": 2}}));
    assert_eq!(
        serde_json::to_value(&s).unwrap(),
        json!({"id": "a", "type": "delay_duration", "config": {"days": 0, "hours": 2, "minutes": 0}})
    );
}
