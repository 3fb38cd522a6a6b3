#![allow(clippy::unwrap_used)]

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::delivery::Channel;

type CampaignTest = TestFramework<Campaign>;

fn t(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, h, m, 0).unwrap()
}

fn settings() -> Settings {
    Settings {
        name: "November news".into(),
        channel: Channel::Email,
        template_id: Some(Uuid::from_u128(7)),
        segments: vec![Uuid::from_u128(1)],
        excluded_segments: vec![Uuid::from_u128(2)],
        ..Settings::default()
    }
}

fn ab_settings() -> Settings {
    Settings {
        template_id: None,
        ab_test: Some(AbTest {
            variants: vec![
                Variant {
                    name: "A".into(),
                    template_id: Uuid::from_u128(7),
                },
                Variant {
                    name: "B".into(),
                    template_id: Uuid::from_u128(8),
                },
            ],
            test_percent: 20,
            metric: WinnerMetric::UniqueClicks,
            wait_minutes: 60,
        }),
        ..settings()
    }
}

fn created(settings: Settings) -> CampaignEvent {
    CampaignEvent::CampaignCreated {
        settings,
        cloned_from: None,
    }
}

fn at_schedule(at: DateTime<Utc>) -> Schedule {
    Schedule::At {
        at,
        time_zone: "Europe/Berlin".into(),
    }
}

fn scheduled(at: DateTime<Utc>) -> CampaignEvent {
    CampaignEvent::CampaignScheduled {
        schedule: at_schedule(at),
        starts_at: at,
    }
}

fn pinned() -> Vec<Pinned> {
    vec![Pinned {
        variant: None,
        template_id: Uuid::from_u128(7),
        version: 3,
    }]
}

fn ab_pinned() -> Vec<Pinned> {
    vec![
        Pinned {
            variant: Some("A".into()),
            template_id: Uuid::from_u128(7),
            version: 3,
        },
        Pinned {
            variant: Some("B".into()),
            template_id: Uuid::from_u128(8),
            version: 1,
        },
    ]
}

fn started() -> CampaignEvent {
    CampaignEvent::CampaignSendingStarted {
        pinned: pinned(),
        audience: 100,
        test_group: 0,
        at: t(10, 0),
    }
}

fn ab_started() -> CampaignEvent {
    CampaignEvent::CampaignSendingStarted {
        pinned: ab_pinned(),
        audience: 100,
        test_group: 20,
        at: t(10, 0),
    }
}

fn fanned(phase: Phase, queued: u64, at: DateTime<Utc>) -> CampaignEvent {
    CampaignEvent::CampaignFannedOut { phase, queued, at }
}

fn sending() -> Vec<CampaignEvent> {
    vec![created(settings()), started()]
}

fn figures(variant: &str, sent: u64, opens: u64, clicks: u64) -> VariantFigures {
    VariantFigures {
        variant: variant.into(),
        sent,
        unique_opens: opens,
        unique_clicks: clicks,
    }
}

fn status_error(status: &'static str, action: &'static str) -> CampaignError {
    CampaignError::Status { status, action }
}

// Creating and changing.

#[test]
fn a_campaign_is_created_as_a_draft() {
    CampaignTest::with(())
        .given_no_previous_events()
        .when(CampaignCommand::Create {
            settings: settings(),
            cloned_from: None,
        })
        .then_expect_events(vec![created(settings())]);
}

#[test]
fn a_campaign_cannot_be_created_twice() {
    CampaignTest::with(())
        .given(vec![created(settings())])
        .when(CampaignCommand::Create {
            settings: settings(),
            cloned_from: None,
        })
        .then_expect_error(CampaignError::AlreadyExists);
}

#[test]
fn a_draft_may_be_incomplete_but_not_invalid() {
    let incomplete = Settings {
        template_id: None,
        segments: vec![],
        excluded_segments: vec![],
        ..settings()
    };
    CampaignTest::with(())
        .given_no_previous_events()
        .when(CampaignCommand::Create {
            settings: incomplete.clone(),
            cloned_from: None,
        })
        .then_expect_events(vec![created(incomplete)]);
    let overlapping = Settings {
        excluded_segments: vec![Uuid::from_u128(1)],
        ..settings()
    };
    CampaignTest::with(())
        .given_no_previous_events()
        .when(CampaignCommand::Create {
            settings: overlapping,
            cloned_from: None,
        })
        .then_expect_error(CampaignError::Settings(SettingsError {
            field: "excluded_segments",
            message: "a segment cannot be both included and excluded".into(),
        }));
}

#[test]
fn settings_checks_name_each_broken_field() {
    let cases: Vec<(Settings, &str)> = vec![
        (
            Settings {
                name: "  ".into(),
                ..settings()
            },
            "name",
        ),
        (
            Settings {
                throttle_per_hour: Some(0),
                ..settings()
            },
            "throttle_per_hour",
        ),
        (
            Settings {
                segments: vec![Uuid::from_u128(1), Uuid::from_u128(1)],
                ..settings()
            },
            "segments",
        ),
        (
            Settings {
                template_id: Some(Uuid::from_u128(9)),
                ..ab_settings()
            },
            "template_id",
        ),
    ];
    for (s, field) in cases {
        assert_eq!(s.check().unwrap_err().field, field, "{s:?}");
    }
    let mut ab = ab_settings();
    let test = ab.ab_test.as_mut().unwrap();
    test.variants.truncate(1);
    assert_eq!(ab.check().unwrap_err().field, "ab_test.variants");
    let mut ab = ab_settings();
    ab.ab_test.as_mut().unwrap().variants[1].name = "A".into();
    assert_eq!(ab.check().unwrap_err().field, "ab_test.variants");
    let mut ab = ab_settings();
    ab.ab_test.as_mut().unwrap().test_percent = 0;
    assert_eq!(ab.check().unwrap_err().field, "ab_test.test_percent");
    let mut ab = ab_settings();
    ab.ab_test.as_mut().unwrap().wait_minutes = 0;
    assert_eq!(ab.check().unwrap_err().field, "ab_test.wait_minutes");
}

#[test]
fn a_change_records_the_whole_settings_and_the_fields_changed() {
    let next = Settings {
        name: "December news".into(),
        throttle_per_hour: Some(500),
        ..settings()
    };
    CampaignTest::with(())
        .given(vec![created(settings())])
        .when(CampaignCommand::Change {
            settings: next.clone(),
        })
        .then_expect_events(vec![CampaignEvent::CampaignSettingsChanged {
            settings: next,
            changed: vec!["name".into(), "throttle_per_hour".into()],
        }]);
}

#[test]
fn an_unchanged_change_records_nothing() {
    CampaignTest::with(())
        .given(vec![created(settings())])
        .when(CampaignCommand::Change {
            settings: settings(),
        })
        .then_expect_events(vec![]);
}

#[test]
fn a_sending_campaigns_audience_cannot_change_but_its_name_can() {
    CampaignTest::with(())
        .given(sending())
        .when(CampaignCommand::Change {
            settings: Settings {
                segments: vec![Uuid::from_u128(5)],
                ..settings()
            },
        })
        .then_expect_error(CampaignError::Locked("segments"));
    let renamed = Settings {
        name: "Renamed".into(),
        ..settings()
    };
    CampaignTest::with(())
        .given(sending())
        .when(CampaignCommand::Change {
            settings: renamed.clone(),
        })
        .then_expect_events(vec![CampaignEvent::CampaignSettingsChanged {
            settings: renamed,
            changed: vec!["name".into()],
        }]);
}

#[test]
fn a_scheduled_campaign_must_stay_ready_to_send() {
    CampaignTest::with(())
        .given(vec![created(settings()), scheduled(t(12, 0))])
        .when(CampaignCommand::Change {
            settings: Settings {
                segments: vec![],
                excluded_segments: vec![],
                ..settings()
            },
        })
        .then_expect_error(CampaignError::Settings(SettingsError {
            field: "segments",
            message: "at least one segment is needed".into(),
        }));
}

// Scheduling.

#[test]
fn a_ready_draft_is_scheduled_for_a_future_time() {
    CampaignTest::with(())
        .given(vec![created(settings())])
        .when(CampaignCommand::Schedule {
            schedule: at_schedule(t(12, 0)),
            now: t(10, 0),
        })
        .then_expect_events(vec![scheduled(t(12, 0))]);
}

#[test]
fn a_schedule_in_the_past_is_refused() {
    CampaignTest::with(())
        .given(vec![created(settings())])
        .when(CampaignCommand::Schedule {
            schedule: at_schedule(t(9, 0)),
            now: t(10, 0),
        })
        .then_expect_error(CampaignError::InThePast);
}

#[test]
fn an_incomplete_draft_cannot_be_scheduled() {
    CampaignTest::with(())
        .given(vec![created(Settings {
            template_id: None,
            ..settings()
        })])
        .when(CampaignCommand::Schedule {
            schedule: at_schedule(t(12, 0)),
            now: t(10, 0),
        })
        .then_expect_error(CampaignError::Settings(SettingsError {
            field: "template_id",
            message: "a template (or an A/B test) is needed".into(),
        }));
}

#[test]
fn a_schedule_in_an_unknown_zone_is_refused() {
    CampaignTest::with(())
        .given(vec![created(settings())])
        .when(CampaignCommand::Schedule {
            schedule: Schedule::At {
                at: t(12, 0),
                time_zone: "Mars/Olympus".into(),
            },
            now: t(10, 0),
        })
        .then_expect_error(CampaignError::Settings(SettingsError {
            field: "time_zone",
            message: "\"Mars/Olympus\" is not an IANA time zone".into(),
        }));
}

#[test]
fn a_scheduled_campaign_is_unscheduled_back_to_draft() {
    CampaignTest::with(())
        .given(vec![created(settings()), scheduled(t(12, 0))])
        .when(CampaignCommand::Unschedule)
        .then_expect_events(vec![CampaignEvent::CampaignUnscheduled]);
    CampaignTest::with(())
        .given(vec![created(settings())])
        .when(CampaignCommand::Unschedule)
        .then_expect_error(status_error("draft", "unscheduling"));
}

#[test]
fn a_sending_campaign_cannot_be_scheduled() {
    CampaignTest::with(())
        .given(sending())
        .when(CampaignCommand::Schedule {
            schedule: at_schedule(t(12, 0)),
            now: t(10, 0),
        })
        .then_expect_error(status_error("sending", "scheduling"));
}

#[test]
fn a_recipient_local_schedule_starts_when_the_first_zone_reaches_the_time() {
    let s = Schedule::RecipientLocal {
        date: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
        time: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
        default_time_zone: "Europe/Berlin".into(),
    };
    assert_eq!(
        s.starts_at(),
        Utc.with_ymd_and_hms(2026, 11, 30, 19, 0, 0).unwrap()
    );
    let started = s.starts_at();
    // 09:00 in Tokyo (UTC+9), New York (UTC-5), and Berlin (UTC+1) for the zoneless.
    assert_eq!(
        s.due_for(Some("Asia/Tokyo"), started),
        Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
    );
    assert_eq!(
        s.due_for(Some("America/New_York"), started),
        Utc.with_ymd_and_hms(2026, 12, 1, 14, 0, 0).unwrap()
    );
    assert_eq!(
        s.due_for(None, started),
        Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap()
    );
    assert_eq!(
        s.due_for(Some("not a zone"), started),
        Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap()
    );
    // A send started after a zone's moment sends there at once.
    let late = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
    assert_eq!(s.due_for(Some("Asia/Tokyo"), late), late);
}

#[test]
fn a_local_time_skipped_by_a_clock_change_moves_an_hour_later() {
    let s = Schedule::RecipientLocal {
        date: NaiveDate::from_ymd_opt(2027, 3, 28).unwrap(),
        time: NaiveTime::from_hms_opt(2, 30, 0).unwrap(),
        default_time_zone: "UTC".into(),
    };
    // Berlin jumps from 02:00 to 03:00 (UTC+2): 03:30 local is 01:30 UTC.
    assert_eq!(
        s.due_for(Some("Europe/Berlin"), t(0, 0)),
        Utc.with_ymd_and_hms(2027, 3, 28, 1, 30, 0).unwrap()
    );
}

// Starting and fanning out.

#[test]
fn starting_pins_the_versions_and_the_audience() {
    CampaignTest::with(())
        .given(vec![created(settings()), scheduled(t(12, 0))])
        .when(CampaignCommand::Start {
            pinned: pinned(),
            audience: 100,
            test_group: 40,
            now: t(10, 0),
        })
        .then_expect_events(vec![started()]);
}

#[test]
fn starting_needs_a_pin_of_each_template() {
    CampaignTest::with(())
        .given(vec![created(ab_settings())])
        .when(CampaignCommand::Start {
            pinned: pinned(),
            audience: 100,
            test_group: 20,
            now: t(10, 0),
        })
        .then_expect_error(CampaignError::PinMismatch);
}

#[test]
fn a_campaign_starts_only_once() {
    CampaignTest::with(())
        .given(sending())
        .when(CampaignCommand::Start {
            pinned: pinned(),
            audience: 100,
            test_group: 0,
            now: t(10, 0),
        })
        .then_expect_error(status_error("sending", "sending"));
}

#[test]
fn a_fan_out_is_recorded_once() {
    CampaignTest::with(())
        .given(sending())
        .when(CampaignCommand::RecordFannedOut {
            phase: Phase::All,
            queued: 100,
            now: t(10, 1),
        })
        .then_expect_events(vec![fanned(Phase::All, 100, t(10, 1))]);
    let mut given = sending();
    given.push(fanned(Phase::All, 100, t(10, 1)));
    CampaignTest::with(())
        .given(given)
        .when(CampaignCommand::RecordFannedOut {
            phase: Phase::All,
            queued: 100,
            now: t(10, 2),
        })
        .then_expect_events(vec![]);
}

#[test]
fn the_remainder_waits_for_the_winner() {
    CampaignTest::with(())
        .given(vec![
            created(ab_settings()),
            ab_started(),
            fanned(Phase::Test, 20, t(10, 1)),
        ])
        .when(CampaignCommand::RecordFannedOut {
            phase: Phase::Remainder,
            queued: 80,
            now: t(10, 2),
        })
        .then_expect_error(status_error("sending", "fanning out"));
}

// A/B tests.

#[test]
fn the_winner_is_the_variant_with_the_better_metric_after_the_wait() {
    let given = vec![
        created(ab_settings()),
        ab_started(),
        fanned(Phase::Test, 20, t(10, 0)),
    ];
    let figs = vec![figures("A", 10, 9, 1), figures("B", 10, 2, 4)];
    CampaignTest::with(())
        .given(given.clone())
        .when(CampaignCommand::ChooseWinner {
            figures: figs.clone(),
            now: t(11, 0),
        })
        .then_expect_events(vec![CampaignEvent::CampaignWinnerChosen {
            winner: "B".into(),
            metric: WinnerMetric::UniqueClicks,
            figures: figs.clone(),
            at: t(11, 0),
        }]);
    CampaignTest::with(())
        .given(given)
        .when(CampaignCommand::ChooseWinner {
            figures: figs,
            now: t(10, 59),
        })
        .then_expect_error(CampaignError::NoDecision("the test is still running"));
}

#[test]
fn a_tie_goes_to_the_variant_listed_first_and_missing_figures_count_as_zero() {
    let figs = vec![figures("B", 10, 0, 3)];
    CampaignTest::with(())
        .given(vec![
            created(ab_settings()),
            ab_started(),
            fanned(Phase::Test, 20, t(10, 0)),
        ])
        .when(CampaignCommand::ChooseWinner {
            figures: figs,
            now: t(11, 0),
        })
        .then_expect_events(vec![CampaignEvent::CampaignWinnerChosen {
            winner: "B".into(),
            metric: WinnerMetric::UniqueClicks,
            figures: vec![figures("A", 0, 0, 0), figures("B", 10, 0, 3)],
            at: t(11, 0),
        }]);
    let tie = [figures("A", 10, 5, 5), figures("B", 20, 10, 10)];
    assert_eq!(
        winner(&tie, WinnerMetric::UniqueOpens).unwrap().variant,
        "A"
    );
}

#[test]
fn a_winner_is_chosen_once_and_only_with_a_test() {
    CampaignTest::with(())
        .given(vec![
            created(ab_settings()),
            ab_started(),
            fanned(Phase::Test, 20, t(10, 0)),
            CampaignEvent::CampaignWinnerChosen {
                winner: "A".into(),
                metric: WinnerMetric::UniqueClicks,
                figures: vec![],
                at: t(11, 0),
            },
        ])
        .when(CampaignCommand::ChooseWinner {
            figures: vec![],
            now: t(12, 0),
        })
        .then_expect_error(CampaignError::NoDecision("the winner is chosen already"));
    CampaignTest::with(())
        .given(sending())
        .when(CampaignCommand::ChooseWinner {
            figures: vec![],
            now: t(12, 0),
        })
        .then_expect_error(CampaignError::NoDecision("the campaign has no A/B test"));
}

#[test]
fn the_test_group_is_the_share_rounded_up_with_a_recipient_per_variant() {
    let ab = ab_settings().ab_test.unwrap();
    assert_eq!(ab.test_group(1000), 200);
    assert_eq!(ab.test_group(11), 3);
    assert_eq!(ab.test_group(3), 2);
    assert_eq!(ab.test_group(1), 1);
    assert_eq!(ab.test_group(0), 0);
}

// Pause, resume, cancel, complete, delete.

#[test]
fn a_sending_campaign_pauses_and_resumes() {
    CampaignTest::with(())
        .given(sending())
        .when(CampaignCommand::Pause { now: t(10, 5) })
        .then_expect_events(vec![CampaignEvent::CampaignPaused { at: t(10, 5) }]);
    let mut paused = sending();
    paused.push(CampaignEvent::CampaignPaused { at: t(10, 5) });
    CampaignTest::with(())
        .given(paused.clone())
        .when(CampaignCommand::Resume { now: t(10, 6) })
        .then_expect_events(vec![CampaignEvent::CampaignResumed { at: t(10, 6) }]);
    CampaignTest::with(())
        .given(paused)
        .when(CampaignCommand::Pause { now: t(10, 7) })
        .then_expect_error(status_error("paused", "pausing"));
    CampaignTest::with(())
        .given(sending())
        .when(CampaignCommand::Resume { now: t(10, 7) })
        .then_expect_error(status_error("sending", "resuming"));
}

#[test]
fn a_paused_campaign_fans_out_nothing_and_chooses_no_winner() {
    let paused = vec![
        created(ab_settings()),
        ab_started(),
        CampaignEvent::CampaignPaused { at: t(10, 0) },
    ];
    CampaignTest::with(())
        .given(paused.clone())
        .when(CampaignCommand::RecordFannedOut {
            phase: Phase::Test,
            queued: 20,
            now: t(10, 1),
        })
        .then_expect_error(status_error("paused", "fanning out"));
    CampaignTest::with(())
        .given(paused)
        .when(CampaignCommand::ChooseWinner {
            figures: vec![],
            now: t(12, 0),
        })
        .then_expect_error(status_error("paused", "choosing a winner"));
}

#[test]
fn cancel_ends_a_scheduled_sending_or_paused_campaign_but_not_a_draft_or_sent_one() {
    for given in [
        vec![created(settings()), scheduled(t(12, 0))],
        sending(),
        vec![
            created(settings()),
            started(),
            CampaignEvent::CampaignPaused { at: t(10, 0) },
        ],
    ] {
        CampaignTest::with(())
            .given(given)
            .when(CampaignCommand::Cancel { now: t(11, 0) })
            .then_expect_events(vec![CampaignEvent::CampaignCancelled { at: t(11, 0) }]);
    }
    CampaignTest::with(())
        .given(vec![created(settings())])
        .when(CampaignCommand::Cancel { now: t(11, 0) })
        .then_expect_error(status_error("draft", "cancelling"));
    let mut sent = sending();
    sent.push(fanned(Phase::All, 100, t(10, 1)));
    sent.push(CampaignEvent::CampaignSent { at: t(10, 30) });
    CampaignTest::with(())
        .given(sent)
        .when(CampaignCommand::Cancel { now: t(11, 0) })
        .then_expect_error(status_error("sent", "cancelling"));
}

#[test]
fn a_campaign_completes_only_when_every_phase_is_fanned_out() {
    CampaignTest::with(())
        .given(sending())
        .when(CampaignCommand::Complete { now: t(11, 0) })
        .then_expect_error(status_error("sending", "completing"));
    let mut done = sending();
    done.push(fanned(Phase::All, 100, t(10, 1)));
    CampaignTest::with(())
        .given(done)
        .when(CampaignCommand::Complete { now: t(11, 0) })
        .then_expect_events(vec![CampaignEvent::CampaignSent { at: t(11, 0) }]);
    CampaignTest::with(())
        .given(vec![
            created(ab_settings()),
            ab_started(),
            fanned(Phase::Test, 20, t(10, 0)),
        ])
        .when(CampaignCommand::Complete { now: t(11, 0) })
        .then_expect_error(status_error("sending", "completing"));
}

#[test]
fn a_sending_campaign_cannot_be_deleted_nor_a_deleted_one_changed() {
    CampaignTest::with(())
        .given(sending())
        .when(CampaignCommand::Delete)
        .then_expect_error(status_error("sending", "deleting"));
    CampaignTest::with(())
        .given(vec![created(settings())])
        .when(CampaignCommand::Delete)
        .then_expect_events(vec![CampaignEvent::CampaignDeleted]);
    let deleted = vec![created(settings()), CampaignEvent::CampaignDeleted];
    CampaignTest::with(())
        .given(deleted.clone())
        .when(CampaignCommand::Change {
            settings: settings(),
        })
        .then_expect_error(CampaignError::NotFound);
    CampaignTest::with(())
        .given(deleted)
        .when(CampaignCommand::Schedule {
            schedule: at_schedule(t(12, 0)),
            now: t(10, 0),
        })
        .then_expect_error(CampaignError::NotFound);
}

#[test]
fn the_phase_due_follows_the_test() {
    let mut c = Campaign::default();
    for e in [created(ab_settings()), ab_started()] {
        cqrs_es::Aggregate::apply(&mut c, e);
    }
    assert_eq!(c.phase_due(), Some(Phase::Test));
    cqrs_es::Aggregate::apply(&mut c, fanned(Phase::Test, 20, t(10, 0)));
    assert_eq!(c.phase_due(), None);
    assert_eq!(c.decision_due(), Some(t(11, 0)));
    cqrs_es::Aggregate::apply(
        &mut c,
        CampaignEvent::CampaignWinnerChosen {
            winner: "A".into(),
            metric: WinnerMetric::UniqueClicks,
            figures: vec![],
            at: t(11, 0),
        },
    );
    assert_eq!(c.phase_due(), Some(Phase::Remainder));
    assert_eq!(c.decision_due(), None);
    assert!(!c.fully_fanned_out());
    cqrs_es::Aggregate::apply(&mut c, fanned(Phase::Remainder, 80, t(11, 1)));
    assert!(c.fully_fanned_out());
    assert_eq!(c.queued(), 100);
}

#[test]
fn job_ids_are_derived_from_campaign_and_contact() {
    let (c, p) = (Uuid::from_u128(1), Uuid::from_u128(2));
    assert_eq!(job_id(c, p), job_id(c, p));
    assert_ne!(job_id(c, p), job_id(p, c));
}

#[test]
fn campaign_event_payloads_keep_their_json_shape() {
    let all = [
        created(settings()),
        scheduled(t(12, 0)),
        started(),
        fanned(Phase::All, 100, t(10, 1)),
        CampaignEvent::CampaignWinnerChosen {
            winner: "B".into(),
            metric: WinnerMetric::UniqueOpens,
            figures: vec![figures("B", 10, 2, 1)],
            at: t(11, 0),
        },
        CampaignEvent::CampaignSent { at: t(12, 0) },
    ];
    let json: Vec<_> = all
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    assert_eq!(
        json,
        vec![
            json!({"CampaignCreated": {"settings": {
                "name": "November news", "channel": "email",
                "template_id": "00000000-0000-0000-0000-000000000007",
                "segments": ["00000000-0000-0000-0000-000000000001"],
                "excluded_segments": ["00000000-0000-0000-0000-000000000002"]}}}),
            json!({"CampaignScheduled": {
                "schedule": {"kind": "at", "at": "2026-11-30T12:00:00Z", "time_zone": "Europe/Berlin"},
                "starts_at": "2026-11-30T12:00:00Z"}}),
            json!({"CampaignSendingStarted": {
                "pinned": [{"variant": null, "template_id": "00000000-0000-0000-0000-000000000007", "version": 3}],
                "audience": 100, "test_group": 0, "at": "2026-11-30T10:00:00Z"}}),
            json!({"CampaignFannedOut": {"phase": "all", "queued": 100, "at": "2026-11-30T10:01:00Z"}}),
            json!({"CampaignWinnerChosen": {"winner": "B", "metric": "unique_opens",
                "figures": [{"variant": "B", "sent": 10, "unique_opens": 2, "unique_clicks": 1}],
                "at": "2026-11-30T11:00:00Z"}}),
            json!({"CampaignSent": {"at": "2026-11-30T12:00:00Z"}}),
        ]
    );
}

#[test]
fn recipients_are_due_at_their_local_time_when_started_on_schedule_and_paced_by_the_throttle() {
    let local = Schedule::RecipientLocal {
        date: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
        time: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
        default_time_zone: "UTC".into(),
    };
    let mut c = Campaign::default();
    for e in [
        created(Settings {
            throttle_per_hour: Some(3600),
            ..settings()
        }),
        CampaignEvent::CampaignScheduled {
            schedule: local.clone(),
            starts_at: local.starts_at(),
        },
        CampaignEvent::CampaignSendingStarted {
            pinned: pinned(),
            audience: 10,
            test_group: 0,
            at: local.starts_at(),
        },
    ] {
        cqrs_es::Aggregate::apply(&mut c, e);
    }
    let nine_utc = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
    assert_eq!(c.due_at(Phase::All, 0, None), nine_utc);
    assert_eq!(
        c.due_at(Phase::All, 0, Some("Asia/Tokyo")),
        Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
    );
    // The throttle: one a second from the start; the 40,000th is past Tokyo's 09:00.
    assert_eq!(
        c.due_at(Phase::All, 40_000, Some("Asia/Tokyo")),
        local.starts_at() + chrono::Duration::seconds(40_000)
    );
    // Started by hand before the schedule: at once.
    let mut early = c.clone();
    early.started_at = Some(local.starts_at() - chrono::Duration::hours(1));
    assert_eq!(
        early.due_at(Phase::All, 0, Some("Asia/Tokyo")),
        local.starts_at() - chrono::Duration::hours(1)
    );
}
