#![allow(clippy::unwrap_used)]

use chrono::NaiveDate;
use cqrs_es::test::TestFramework;
use serde_json::json;
use uuid::Uuid;

use super::warmup::{WarmupError, WarmupSchedule};
use super::warmup_config::*;

type WarmupTest = TestFramework<WarmupConfig>;

fn date(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
}

fn configure(started_on: Option<NaiveDate>, ramp: Vec<u64>) -> WarmupCommand {
    WarmupCommand::Configure {
        domain: " Mail.Example.ORG. ".into(),
        started_on,
        today: date(20),
        time_zone: "Europe/Berlin".into(),
        schedule: WarmupSchedule {
            ramp,
            growth: 1.5,
            ceiling: Some(100),
        },
    }
}

fn configured(started_on: NaiveDate, ramp: Vec<u64>) -> WarmupEvent {
    WarmupEvent::WarmupConfigured {
        domain: "mail.example.org".into(),
        started_on,
        time_zone: "Europe/Berlin".into(),
        ramp,
        growth: 1.5,
        ceiling: Some(100),
    }
}

fn removed() -> WarmupEvent {
    WarmupEvent::WarmupRemoved {
        domain: "mail.example.org".into(),
    }
}

#[test]
fn a_warmup_without_a_start_starts_today_for_the_lower_cased_domain() {
    WarmupTest::with(())
        .given_no_previous_events()
        .when(configure(None, vec![2, 4]))
        .then_expect_events(vec![configured(date(20), vec![2, 4])]);
}

#[test]
fn a_replacement_without_a_start_keeps_the_current_start() {
    WarmupTest::with(())
        .given(vec![configured(date(3), vec![2, 4])])
        .when(configure(None, vec![5]))
        .then_expect_events(vec![configured(date(3), vec![5])]);
}

#[test]
fn a_replacement_with_a_start_restarts_the_ramp() {
    WarmupTest::with(())
        .given(vec![configured(date(3), vec![2, 4])])
        .when(configure(Some(date(21)), vec![2, 4]))
        .then_expect_events(vec![configured(date(21), vec![2, 4])]);
}

#[test]
fn configuring_the_same_warmup_again_records_nothing() {
    WarmupTest::with(())
        .given(vec![configured(date(3), vec![2, 4])])
        .when(configure(Some(date(3)), vec![2, 4]))
        .then_expect_events(vec![]);
}

#[test]
fn a_removed_warmup_configured_again_starts_today() {
    WarmupTest::with(())
        .given(vec![configured(date(3), vec![2, 4]), removed()])
        .when(configure(None, vec![2, 4]))
        .then_expect_events(vec![configured(date(20), vec![2, 4])]);
}

#[test]
fn a_configured_warmup_is_removed() {
    WarmupTest::with(())
        .given(vec![configured(date(3), vec![2])])
        .when(WarmupCommand::Remove)
        .then_expect_events(vec![removed()]);
}

#[test]
fn removing_a_warmup_that_is_not_configured_is_refused() {
    WarmupTest::with(())
        .given_no_previous_events()
        .when(WarmupCommand::Remove)
        .then_expect_error(WarmupConfigError::NotConfigured);
    WarmupTest::with(())
        .given(vec![configured(date(3), vec![2]), removed()])
        .when(WarmupCommand::Remove)
        .then_expect_error(WarmupConfigError::NotConfigured);
}

#[test]
fn a_name_that_is_not_a_domain_is_refused() {
    for bad in [
        "",
        "localhost",
        "-a.example.org",
        "a..org",
        "a_b.org",
        "1.2.3.4",
        "a b.org",
    ] {
        assert_eq!(
            valid_domain(bad),
            Err(WarmupConfigError::BadDomain),
            "{bad}"
        );
    }
    let mut c = configure(None, vec![2]);
    if let WarmupCommand::Configure { domain, .. } = &mut c {
        *domain = "not a domain".into();
    }
    WarmupTest::with(())
        .given_no_previous_events()
        .when(c)
        .then_expect_error(WarmupConfigError::BadDomain);
}

#[test]
fn a_time_zone_that_is_not_iana_is_refused() {
    let mut c = configure(None, vec![2]);
    if let WarmupCommand::Configure { time_zone, .. } = &mut c {
        *time_zone = "Mars/Olympus".into();
    }
    WarmupTest::with(())
        .given_no_previous_events()
        .when(c)
        .then_expect_error(WarmupConfigError::BadTimeZone("Mars/Olympus".into()));
}

#[test]
fn an_empty_ramp_is_refused() {
    WarmupTest::with(())
        .given_no_previous_events()
        .when(configure(None, vec![]))
        .then_expect_error(WarmupConfigError::Schedule(WarmupError::EmptyRamp));
}

#[test]
fn a_ceiling_below_the_ramp_is_refused() {
    WarmupTest::with(())
        .given_no_previous_events()
        .when(configure(None, vec![50, 200]))
        .then_expect_error(WarmupConfigError::Schedule(WarmupError::CeilingBelowRamp));
}

#[test]
fn another_domain_on_a_warmups_stream_is_refused() {
    let mut c = configure(None, vec![2]);
    if let WarmupCommand::Configure { domain, .. } = &mut c {
        *domain = "other.example.org".into();
    }
    WarmupTest::with(())
        .given(vec![configured(date(3), vec![2])])
        .when(c)
        .then_expect_error(WarmupConfigError::OtherDomain("mail.example.org".into()));
}

#[test]
fn the_stream_id_depends_on_the_tenant_and_the_domain_only() {
    let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
    assert_eq!(stream_id(a, "x.org"), stream_id(a, "x.org"));
    assert_ne!(stream_id(a, "x.org"), stream_id(b, "x.org"));
    assert_ne!(stream_id(a, "x.org"), stream_id(a, "y.org"));
}

#[test]
fn the_events_json_is_stable() {
    assert_eq!(
        serde_json::to_value(configured(date(3), vec![2, 4])).unwrap(),
        json!({"WarmupConfigured": {"domain": "mail.example.org", "started_on": "2026-11-03",
            "time_zone": "Europe/Berlin", "ramp": [2, 4], "growth": 1.5, "ceiling": 100}})
    );
    assert_eq!(
        serde_json::to_value(removed()).unwrap(),
        json!({"WarmupRemoved": {"domain": "mail.example.org"}})
    );
}
