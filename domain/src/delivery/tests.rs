#![allow(clippy::unwrap_used)]

use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;

type JobTest = TestFramework<DeliveryJob>;

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 12, minute, 0).unwrap()
}

fn request() -> Request {
    Request {
        channel: Channel::Email,
        contact_id: Some(Uuid::from_u128(7)),
        to: "ada@example.org".into(),
        template_id: Uuid::from_u128(9),
        template_version: 2,
        source: Source::Campaign {
            campaign_id: Uuid::from_u128(3),
            variant: None,
        },
        data: serde_json::Value::Null,
        from: None,
        reply_to: None,
        provider_id: None,
    }
}

/// The contact of `requested()`: reports and tracking events name it.
const CONTACT: Option<Uuid> = Some(Uuid::from_u128(7));

/// The campaign of `requested()`: every outcome, report and tracking event names it.
fn campaign() -> Option<CampaignRef> {
    Some(CampaignRef {
        id: Uuid::from_u128(3),
        variant: None,
        channel: Channel::Email,
    })
}

fn requested() -> DeliveryEvent {
    DeliveryEvent::DeliveryRequested(request())
}

fn dispatching(attempt: u32) -> DeliveryEvent {
    DeliveryEvent::DeliveryDispatching {
        attempt,
        provider: "smtp".into(),
    }
}

fn sent() -> DeliveryEvent {
    DeliveryEvent::DeliverySent {
        attempt: 1,
        provider: "smtp".into(),
        provider_message_id: "q-1".into(),
        contact_id: CONTACT,
        campaign: campaign(),
    }
}

fn failed(attempt: u32) -> DeliveryEvent {
    DeliveryEvent::DeliveryAttemptFailed {
        attempt,
        error: "451 try later".into(),
        retry_at: at(5),
    }
}

#[test]
fn a_job_is_requested_once() {
    JobTest::with(())
        .given_no_previous_events()
        .when(DeliveryCommand::Request(request()))
        .then_expect_events(vec![requested()]);
    JobTest::with(())
        .given(vec![requested()])
        .when(DeliveryCommand::Request(request()))
        .then_expect_error(DeliveryError::AlreadyRequested);
    let mut blank = request();
    blank.to = " ".into();
    blank.contact_id = None;
    JobTest::with(())
        .given_no_previous_events()
        .when(DeliveryCommand::Request(blank))
        .then_expect_error(DeliveryError::Invalid(
            "to: an address or a contact is required",
        ));
    let mut contact_only = request();
    contact_only.to = String::new();
    JobTest::with(())
        .given_no_previous_events()
        .when(DeliveryCommand::Request(contact_only.clone()))
        .then_expect_events(vec![DeliveryEvent::DeliveryRequested(contact_only)]);
}

#[test]
fn a_late_answer_settles_a_job_in_doubt() {
    JobTest::with(())
        .given(vec![
            requested(),
            dispatching(1),
            DeliveryEvent::DeliveryInDoubt {
                attempt: 1,
                provider: "smtp".into(),
                campaign: campaign(),
            },
        ])
        .when(DeliveryCommand::RecordSent {
            provider_message_id: "q-1".into(),
        })
        .then_expect_events(vec![sent()]);
}

#[test]
fn commands_to_a_job_that_was_never_requested_are_refused() {
    JobTest::with(())
        .given_no_previous_events()
        .when(DeliveryCommand::BeginDispatch {
            provider: "smtp".into(),
        })
        .then_expect_error(DeliveryError::NotFound);
}

#[test]
fn dispatch_begins_a_numbered_attempt_and_only_while_pending() {
    JobTest::with(())
        .given(vec![requested()])
        .when(DeliveryCommand::BeginDispatch {
            provider: "smtp".into(),
        })
        .then_expect_events(vec![dispatching(1)]);
    JobTest::with(())
        .given(vec![requested(), dispatching(1), failed(1)])
        .when(DeliveryCommand::BeginDispatch {
            provider: "smtp".into(),
        })
        .then_expect_events(vec![dispatching(2)]);
    // The heart of "never two sends": a second dispatch of a job being dispatched, or sent,
    // is refused, so whoever comes second calls no provider.
    JobTest::with(())
        .given(vec![requested(), dispatching(1)])
        .when(DeliveryCommand::BeginDispatch {
            provider: "smtp".into(),
        })
        .then_expect_error(DeliveryError::NotPending("dispatching"));
    JobTest::with(())
        .given(vec![requested(), dispatching(1), sent()])
        .when(DeliveryCommand::BeginDispatch {
            provider: "smtp".into(),
        })
        .then_expect_error(DeliveryError::NotPending("sent"));
}

#[test]
fn a_deferred_job_can_still_be_dispatched_suppressed_or_cancelled() {
    let deferred = DeliveryEvent::DeliveryDeferred {
        reason: Deferral::Warmup {
            domain: "news.example.org".into(),
        },
        until: at(30),
    };
    JobTest::with(())
        .given(vec![requested()])
        .when(DeliveryCommand::Defer {
            reason: Deferral::Warmup {
                domain: "news.example.org".into(),
            },
            until: at(30),
        })
        .then_expect_events(vec![deferred.clone()]);
    JobTest::with(())
        .given(vec![requested(), deferred.clone()])
        .when(DeliveryCommand::BeginDispatch {
            provider: "smtp".into(),
        })
        .then_expect_events(vec![dispatching(1)]);
    JobTest::with(())
        .given(vec![requested(), deferred])
        .when(DeliveryCommand::Cancel {
            reason: "campaign cancelled".into(),
        })
        .then_expect_events(vec![DeliveryEvent::DeliveryCancelled {
            reason: "campaign cancelled".into(),
            campaign: campaign(),
        }]);
}

#[test]
fn suppression_ends_a_pending_job_and_nothing_after_it_is_sent() {
    let suppressed = DeliveryEvent::DeliverySuppressed {
        reason: Suppression::DoNotContact {
            reason: "unsubscribed".into(),
        },
        campaign: campaign(),
    };
    JobTest::with(())
        .given(vec![requested()])
        .when(DeliveryCommand::Suppress(Suppression::DoNotContact {
            reason: "unsubscribed".into(),
        }))
        .then_expect_events(vec![suppressed.clone()]);
    JobTest::with(())
        .given(vec![requested(), suppressed])
        .when(DeliveryCommand::BeginDispatch {
            provider: "smtp".into(),
        })
        .then_expect_error(DeliveryError::NotPending("suppressed"));
}

#[test]
fn outcomes_belong_to_the_attempt_being_dispatched() {
    JobTest::with(())
        .given(vec![requested(), dispatching(1)])
        .when(DeliveryCommand::RecordSent {
            provider_message_id: "q-1".into(),
        })
        .then_expect_events(vec![sent()]);
    JobTest::with(())
        .given(vec![requested(), dispatching(1)])
        .when(DeliveryCommand::RecordTransientFailure {
            error: "451 try later".into(),
            retry_at: at(5),
        })
        .then_expect_events(vec![failed(1)]);
    JobTest::with(())
        .given(vec![requested()])
        .when(DeliveryCommand::RecordSent {
            provider_message_id: "q-1".into(),
        })
        .then_expect_error(DeliveryError::NotDispatching("requested"));
    JobTest::with(())
        .given(vec![requested(), dispatching(1), sent()])
        .when(DeliveryCommand::RecordTransientFailure {
            error: "late".into(),
            retry_at: at(5),
        })
        .then_expect_error(DeliveryError::NotDispatching("sent"));
}

#[test]
fn giving_up_ends_a_dispatching_or_waiting_job() {
    let given_up = |attempt| DeliveryEvent::DeliveryGivenUp {
        attempt,
        error: "550 no such user".into(),
        campaign: campaign(),
    };
    JobTest::with(())
        .given(vec![requested(), dispatching(1)])
        .when(DeliveryCommand::GiveUp {
            error: "550 no such user".into(),
        })
        .then_expect_events(vec![given_up(1)]);
    JobTest::with(())
        .given(vec![requested(), dispatching(1), failed(1)])
        .when(DeliveryCommand::GiveUp {
            error: "550 no such user".into(),
        })
        .then_expect_events(vec![given_up(1)]);
    JobTest::with(())
        .given(vec![requested(), dispatching(1), sent()])
        .when(DeliveryCommand::GiveUp { error: "x".into() })
        .then_expect_error(DeliveryError::NotPending("sent"));
}

#[test]
fn a_job_interrupted_while_dispatching_is_in_doubt_unless_the_provider_deduplicates() {
    JobTest::with(())
        .given(vec![requested(), dispatching(1)])
        .when(DeliveryCommand::Recover {
            retry: false,
            now: at(9),
        })
        .then_expect_events(vec![DeliveryEvent::DeliveryInDoubt {
            attempt: 1,
            provider: "smtp".into(),
            campaign: campaign(),
        }]);
    let mut job = DeliveryJob::default();
    for e in [
        requested(),
        dispatching(1),
        DeliveryEvent::DeliveryInDoubt {
            attempt: 1,
            provider: "smtp".into(),
            campaign: campaign(),
        },
    ] {
        cqrs_es::Aggregate::apply(&mut job, e);
    }
    assert_eq!(job.status, Status::InDoubt);
    assert!(
        !job.status.pending(),
        "an in-doubt job is never dispatched again"
    );
    JobTest::with(())
        .given(vec![requested(), dispatching(1)])
        .when(DeliveryCommand::Recover {
            retry: true,
            now: at(9),
        })
        .then_expect_events(vec![DeliveryEvent::DeliveryAttemptFailed {
            attempt: 1,
            error: "interrupted before the provider answered; the provider deduplicates, so the attempt is repeated".into(),
            retry_at: at(9),
        }]);
    JobTest::with(())
        .given(vec![requested(), dispatching(1), sent()])
        .when(DeliveryCommand::Recover {
            retry: false,
            now: at(9),
        })
        .then_expect_error(DeliveryError::NotDispatching("sent"));
}

#[test]
fn reports_and_tracking_need_a_message_that_left() {
    for command in [
        DeliveryCommand::RecordDelivered { at: at(1) },
        DeliveryCommand::RecordOpen {
            at: at(1),
            user_agent: None,
        },
        DeliveryCommand::RecordUnsubscribe { at: at(1) },
    ] {
        JobTest::with(())
            .given(vec![requested()])
            .when(command)
            .then_expect_error(DeliveryError::NotSent("requested"));
    }
    JobTest::with(())
        .given(vec![requested(), dispatching(1), sent()])
        .when(DeliveryCommand::RecordBounce {
            kind: BounceKind::Hard,
            diagnostic: "550 5.1.1 no such user".into(),
            at: at(2),
        })
        .then_expect_events(vec![DeliveryEvent::DeliveryBounced {
            kind: BounceKind::Hard,
            diagnostic: "550 5.1.1 no such user".into(),
            at: at(2),
            contact_id: CONTACT,
            campaign: campaign(),
        }]);
}

#[test]
fn first_opens_and_clicks_are_marked_and_repeated_reports_record_nothing() {
    let delivered = DeliveryEvent::DeliveryDelivered {
        at: at(1),
        contact_id: CONTACT,
        campaign: campaign(),
    };
    let opened = |first| DeliveryEvent::DeliveryOpened {
        at: at(3),
        user_agent: None,
        first,
        contact_id: CONTACT,
        campaign: campaign(),
    };
    JobTest::with(())
        .given(vec![requested(), dispatching(1), sent()])
        .when(DeliveryCommand::RecordOpen {
            at: at(3),
            user_agent: None,
        })
        .then_expect_events(vec![opened(true)]);
    JobTest::with(())
        .given(vec![requested(), dispatching(1), sent(), opened(true)])
        .when(DeliveryCommand::RecordOpen {
            at: at(3),
            user_agent: None,
        })
        .then_expect_events(vec![opened(false)]);
    JobTest::with(())
        .given(vec![requested(), dispatching(1), sent(), opened(true)])
        .when(DeliveryCommand::RecordClick {
            url: "https://example.org/a".into(),
            at: at(4),
        })
        .then_expect_events(vec![DeliveryEvent::DeliveryClicked {
            url: "https://example.org/a".into(),
            at: at(4),
            first: true,
            contact_id: CONTACT,
            campaign: campaign(),
        }]);
    // An open proved delivery: a late delivery report adds nothing.
    JobTest::with(())
        .given(vec![requested(), dispatching(1), sent(), opened(true)])
        .when(DeliveryCommand::RecordDelivered { at: at(5) })
        .then_expect_events(vec![]);
    JobTest::with(())
        .given(vec![requested(), dispatching(1), sent(), delivered.clone()])
        .when(DeliveryCommand::RecordDelivered { at: at(5) })
        .then_expect_events(vec![]);
    let unsubscribed = DeliveryEvent::DeliveryUnsubscribed {
        at: at(6),
        contact_id: CONTACT,
        campaign: campaign(),
    };
    JobTest::with(())
        .given(vec![requested(), dispatching(1), sent(), delivered.clone()])
        .when(DeliveryCommand::RecordUnsubscribe { at: at(6) })
        .then_expect_events(vec![unsubscribed.clone()]);
    JobTest::with(())
        .given(vec![
            requested(),
            dispatching(1),
            sent(),
            delivered,
            unsubscribed,
        ])
        .when(DeliveryCommand::RecordUnsubscribe { at: at(7) })
        .then_expect_events(vec![]);
    let complained = DeliveryEvent::DeliveryComplained {
        at: at(8),
        contact_id: CONTACT,
        campaign: campaign(),
    };
    JobTest::with(())
        .given(vec![requested(), dispatching(1), sent(), complained])
        .when(DeliveryCommand::RecordComplaint { at: at(9) })
        .then_expect_events(vec![]);
}

#[test]
fn cancel_refuses_a_job_that_left_or_is_leaving() {
    for given in [
        vec![requested(), dispatching(1)],
        vec![requested(), dispatching(1), sent()],
    ] {
        let status = if given.len() == 2 {
            "dispatching"
        } else {
            "sent"
        };
        JobTest::with(())
            .given(given)
            .when(DeliveryCommand::Cancel {
                reason: "stop".into(),
            })
            .then_expect_error(DeliveryError::NotPending(status));
    }
}

#[test]
fn events_keep_their_stored_names_and_shape() {
    use cqrs_es::DomainEvent;
    let v = serde_json::to_value(requested()).unwrap();
    assert_eq!(v["DeliveryRequested"]["source"]["kind"], "campaign");
    assert_eq!(v["DeliveryRequested"]["channel"], "email");
    assert_eq!(requested().event_type(), "DeliveryRequested");
    let s = serde_json::to_value(DeliveryEvent::DeliverySuppressed {
        reason: Suppression::SuppressedAddress {
            reason: "hard_bounce".into(),
        },
        campaign: None,
    })
    .unwrap();
    assert_eq!(
        s,
        serde_json::json!({"DeliverySuppressed": {"reason": {"kind": "suppressed_address", "reason": "hard_bounce"}}})
    );
    let capped = serde_json::to_value(DeliveryEvent::DeliverySuppressed {
        reason: Suppression::FrequencyCap,
        campaign: None,
    })
    .unwrap();
    assert_eq!(
        capped,
        serde_json::json!({"DeliverySuppressed": {"reason": {"kind": "frequency_cap"}}})
    );
    let c = serde_json::to_value(DeliveryEvent::DeliveryClicked {
        url: "https://example.org/a".into(),
        at: at(4),
        first: true,
        contact_id: CONTACT,
        campaign: Some(CampaignRef {
            id: Uuid::from_u128(3),
            variant: Some("B".into()),
            channel: Channel::Email,
        }),
    })
    .unwrap();
    assert_eq!(
        c,
        serde_json::json!({"DeliveryClicked": {
            "url": "https://example.org/a",
            "at": "2026-11-29T12:04:00Z",
            "first": true,
            "contact_id": "00000000-0000-0000-0000-000000000007",
            "campaign": {"id": "00000000-0000-0000-0000-000000000003", "variant": "B", "channel": "email"}
        }})
    );
}

#[test]
fn a_request_names_its_provider_only_when_it_has_one_and_old_requests_still_load() {
    // Without one the payload is as it was before requests could name a provider.
    let v = serde_json::to_value(requested()).unwrap();
    assert!(v["DeliveryRequested"].get("provider_id").is_none(), "{v}");
    let mut named = request();
    named.provider_id = Some(Uuid::from_u128(11));
    let v = serde_json::to_value(DeliveryEvent::DeliveryRequested(named.clone())).unwrap();
    assert_eq!(
        v["DeliveryRequested"]["provider_id"],
        "00000000-0000-0000-0000-00000000000b"
    );
    let back: DeliveryEvent = serde_json::from_value(v).unwrap();
    assert_eq!(back, DeliveryEvent::DeliveryRequested(named));
    // A request stored before the field existed loads with the channel's default.
    let old: DeliveryEvent = serde_json::from_value(serde_json::json!({"DeliveryRequested": {
        "channel": "email", "contact_id": null, "to": "ada@example.org",
        "template_id": "00000000-0000-0000-0000-000000000009", "template_version": 2,
        "source": {"kind": "transactional", "idempotency_key": null}, "data": {}
    }}))
    .unwrap();
    let DeliveryEvent::DeliveryRequested(old) = old else {
        panic!("not a request: {old:?}");
    };
    assert_eq!(old.provider_id, None);
}

#[test]
fn later_events_name_the_jobs_campaign_and_variant_and_old_payloads_still_load() {
    let mut r = request();
    r.source = Source::Campaign {
        campaign_id: Uuid::from_u128(3),
        variant: Some("B".into()),
    };
    r.channel = Channel::Sms;
    let named = Some(CampaignRef {
        id: Uuid::from_u128(3),
        variant: Some("B".into()),
        channel: Channel::Sms,
    });
    JobTest::with(())
        .given(vec![DeliveryEvent::DeliveryRequested(r.clone())])
        .when(DeliveryCommand::Suppress(Suppression::OptedOut))
        .then_expect_events(vec![DeliveryEvent::DeliverySuppressed {
            reason: Suppression::OptedOut,
            campaign: named.clone(),
        }]);
    JobTest::with(())
        .given(vec![DeliveryEvent::DeliveryRequested(r), dispatching(1)])
        .when(DeliveryCommand::RecordSent {
            provider_message_id: "q-1".into(),
        })
        .then_expect_events(vec![DeliveryEvent::DeliverySent {
            attempt: 1,
            provider: "smtp".into(),
            provider_message_id: "q-1".into(),
            contact_id: CONTACT,
            campaign: named,
        }]);
    // A job that is not a campaign's names none.
    let mut t = request();
    t.source = Source::Test;
    JobTest::with(())
        .given(vec![DeliveryEvent::DeliveryRequested(t)])
        .when(DeliveryCommand::Cancel {
            reason: "stop".into(),
        })
        .then_expect_events(vec![DeliveryEvent::DeliveryCancelled {
            reason: "stop".into(),
            campaign: None,
        }]);
    // A payload written before events named the campaign loads, without one.
    let old: DeliveryEvent = serde_json::from_value(serde_json::json!(
        {"DeliverySent": {"attempt": 1, "provider": "smtp", "provider_message_id": "q-1"}}
    ))
    .unwrap();
    assert!(matches!(
        old,
        DeliveryEvent::DeliverySent { campaign: None, .. }
    ));
}

#[test]
fn engagement_events_name_the_jobs_contact_and_old_payloads_still_load() {
    let opened = DeliveryEvent::DeliveryOpened {
        at: at(3),
        user_agent: None,
        first: true,
        contact_id: CONTACT,
        campaign: campaign(),
    };
    let json = serde_json::to_value(&opened).unwrap();
    assert_eq!(
        json["DeliveryOpened"]["contact_id"],
        "00000000-0000-0000-0000-000000000007"
    );
    // A payload written before events named the contact loads, without one.
    let old: DeliveryEvent = serde_json::from_value(serde_json::json!(
        {"DeliveryBounced": {"kind": "hard", "diagnostic": "550", "at": "2030-01-01T00:00:00Z"}}
    ))
    .unwrap();
    assert!(matches!(
        old,
        DeliveryEvent::DeliveryBounced {
            contact_id: None,
            ..
        }
    ));
    // A bare address has no contact: the field is left out.
    let bare = DeliveryEvent::DeliveryComplained {
        at: at(1),
        contact_id: None,
        campaign: None,
    };
    assert!(serde_json::to_value(&bare).unwrap()["DeliveryComplained"]
        .get("contact_id")
        .is_none());
}
