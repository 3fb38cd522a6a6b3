#![allow(clippy::unwrap_used)]
use chrono::{Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;

use super::*;
use crate::identity::Digest;
use crate::EmailAddress;

type UserTest = TestFramework<User>;
type C = UserCommand;
type E = UserEvent;

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap()
}

fn d(s: &str) -> Digest {
    Digest(s.into())
}

fn signed_up() -> Vec<E> {
    vec![
        E::UserSignedUp {
            email: "ada@example.org".into(),
            name: Some("Ada".into()),
            has_password: true,
            email_verified: false,
        },
        E::EmailVerificationRequested {
            token: d("v1"),
            expires_at: t0() + Duration::hours(24),
        },
    ]
}

fn reset_requested() -> Vec<E> {
    let mut v = signed_up();
    v.push(E::PasswordResetRequested {
        token: d("r1"),
        expires_at: t0() + Duration::hours(1),
    });
    v
}

#[test]
fn a_user_signs_up_with_a_pending_verification() {
    UserTest::with(())
        .given_no_previous_events()
        .when(C::SignUp {
            email: EmailAddress::parse("ada@example.org").unwrap(),
            name: Some("Ada".into()),
            has_password: true,
            verification: Some((d("v1"), t0() + Duration::hours(24))),
        })
        .then_expect_events(signed_up());
}

#[test]
fn a_user_cannot_sign_up_twice() {
    UserTest::with(())
        .given(signed_up())
        .when(C::SignUp {
            email: EmailAddress::parse("ada@example.org").unwrap(),
            name: None,
            has_password: false,
            verification: None,
        })
        .then_expect_error(UserError::AlreadyExists);
}

#[test]
fn the_verification_token_verifies_the_email() {
    UserTest::with(())
        .given(signed_up())
        .when(C::VerifyEmail {
            token: d("v1"),
            now: t0(),
        })
        .then_expect_events(vec![E::EmailVerified {}]);
}

#[test]
fn a_verification_token_is_single_use() {
    let mut given = signed_up();
    given.push(E::EmailVerified {});
    UserTest::with(())
        .given(given)
        .when(C::VerifyEmail {
            token: d("v1"),
            now: t0(),
        })
        .then_expect_error(UserError::InvalidToken);
}

#[test]
fn a_verified_email_needs_no_new_token() {
    let mut given = signed_up();
    given.push(E::EmailVerified {});
    UserTest::with(())
        .given(given)
        .when(C::RequestEmailVerification {
            token: d("v2"),
            expires_at: t0(),
        })
        .then_expect_error(UserError::AlreadyVerified);
}

#[test]
fn a_reset_token_sets_the_new_password_and_proves_the_email() {
    UserTest::with(())
        .given(reset_requested())
        .when(C::ResetPassword {
            token: d("r1"),
            now: t0(),
        })
        .then_expect_events(vec![
            E::PasswordChanged {
                via: "reset".into(),
            },
            E::EmailVerified {},
        ]);
}

#[test]
fn a_reset_token_is_single_use() {
    let mut given = reset_requested();
    given.push(E::PasswordChanged {
        via: "reset".into(),
    });
    UserTest::with(())
        .given(given)
        .when(C::ResetPassword {
            token: d("r1"),
            now: t0(),
        })
        .then_expect_error(UserError::InvalidToken);
}

#[test]
fn an_expired_reset_token_is_refused() {
    UserTest::with(())
        .given(reset_requested())
        .when(C::ResetPassword {
            token: d("r1"),
            now: t0() + Duration::hours(2),
        })
        .then_expect_error(UserError::TokenExpired);
}

#[test]
fn a_newer_reset_request_supersedes_the_old_token() {
    let mut given = reset_requested();
    given.push(E::PasswordResetRequested {
        token: d("r2"),
        expires_at: t0() + Duration::hours(1),
    });
    UserTest::with(())
        .given(given)
        .when(C::ResetPassword {
            token: d("r1"),
            now: t0(),
        })
        .then_expect_error(UserError::InvalidToken);
}

#[test]
fn totp_cannot_be_confirmed_before_enrolment() {
    UserTest::with(())
        .given(signed_up())
        .when(C::ConfirmTotp {
            recovery_codes: vec![d("c1")],
        })
        .then_expect_error(UserError::TotpNotSetUp);
}

#[test]
fn totp_cannot_be_enrolled_twice() {
    let mut given = signed_up();
    given.push(E::TotpEnrolmentStarted {});
    given.push(E::TotpEnabled {
        recovery_codes: vec![d("c1")],
    });
    UserTest::with(())
        .given(given)
        .when(C::StartTotp)
        .then_expect_error(UserError::TotpAlreadyEnabled);
}

#[test]
fn totp_cannot_be_disabled_when_not_set_up() {
    UserTest::with(())
        .given(signed_up())
        .when(C::DisableTotp)
        .then_expect_error(UserError::TotpNotSetUp);
}

#[test]
fn a_recovery_code_works_once() {
    let mut given = signed_up();
    given.push(E::TotpEnrolmentStarted {});
    given.push(E::TotpEnabled {
        recovery_codes: vec![d("c1"), d("c2")],
    });
    UserTest::with(())
        .given(given.clone())
        .when(C::UseRecoveryCode { code: d("c1") })
        .then_expect_events(vec![E::RecoveryCodeUsed { code: d("c1") }]);
    given.push(E::RecoveryCodeUsed { code: d("c1") });
    UserTest::with(())
        .given(given)
        .when(C::UseRecoveryCode { code: d("c1") })
        .then_expect_error(UserError::InvalidRecoveryCode);
}

#[test]
fn nothing_happens_to_a_user_that_does_not_exist() {
    UserTest::with(())
        .given_no_previous_events()
        .when(C::DisableTotp)
        .then_expect_error(UserError::NotFound);
}

#[test]
fn event_payloads_keep_their_json_shape() {
    let json = serde_json::to_string(&reset_requested()).unwrap();
    assert_eq!(
        json,
        r#"[{"UserSignedUp":{"email":"ada@example.org","name":"Ada","has_password":true,"email_verified":false}},{"EmailVerificationRequested":{"token":"v1","expires_at":"2026-11-02T12:00:00Z"}},{"PasswordResetRequested":{"token":"r1","expires_at":"2026-11-01T13:00:00Z"}}]"#
    );
    let more = vec![E::TotpEnrolmentStarted {}, E::EmailVerified {}];
    assert_eq!(
        serde_json::to_string(&more).unwrap(),
        r#"[{"TotpEnrolmentStarted":{}},{"EmailVerified":{}}]"#
    );
}
