#![allow(clippy::unwrap_used)]
use chrono::{Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;
use crate::identity::{Digest, KeyKind, OrgName, OrgSettings, Role};
use crate::EmailAddress;

type OrgTest = TestFramework<Organization>;
type C = OrganizationCommand;
type E = OrganizationEvent;

const OWNER: Uuid = Uuid::from_u128(1);
const ADMIN: Uuid = Uuid::from_u128(2);
const INVITE: Uuid = Uuid::from_u128(10);

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap()
}

fn email(s: &str) -> EmailAddress {
    EmailAddress::parse(s).unwrap()
}

fn digest(s: &str) -> Digest {
    Digest(s.into())
}

fn created() -> Vec<E> {
    vec![
        E::OrganizationCreated {
            name: "Acme".into(),
            settings: OrgSettings::default(),
        },
        E::MemberAdded {
            user_id: OWNER,
            email: "owner@acme.test".into(),
            role: Role::Owner,
        },
    ]
}

fn with_admin() -> Vec<E> {
    let mut v = created();
    v.push(E::MemberAdded {
        user_id: ADMIN,
        email: "admin@acme.test".into(),
        role: Role::Admin,
    });
    v
}

fn invited(role: Role) -> Vec<E> {
    let mut v = created();
    v.push(E::MemberInvited {
        invite_id: INVITE,
        email: "bob@acme.test".into(),
        role,
        token: digest("t1"),
        expires_at: t0() + Duration::days(7),
        invited_by: format!("user:{OWNER}"),
    });
    v
}

fn invite(role: Role) -> NewInvite {
    NewInvite {
        invite_id: INVITE,
        email: email("bob@acme.test"),
        role,
        token: digest("t1"),
        expires_at: t0() + Duration::days(7),
        invited_by: format!("user:{OWNER}"),
    }
}

fn accept(token: &str, user: u128, addr: &str, at: chrono::DateTime<Utc>) -> C {
    C::AcceptInvite {
        invite_id: INVITE,
        token: digest(token),
        user_id: Uuid::from_u128(user),
        email: email(addr),
        now: at,
    }
}

#[test]
fn an_organization_is_created_with_its_owner() {
    OrgTest::with(())
        .given_no_previous_events()
        .when(C::Create {
            name: OrgName::parse("Acme").unwrap(),
            owner: Some((OWNER, email("owner@acme.test"))),
        })
        .then_expect_events(created());
}

#[test]
fn an_organization_cannot_be_created_twice() {
    OrgTest::with(())
        .given(created())
        .when(C::Create {
            name: OrgName::parse("Acme").unwrap(),
            owner: None,
        })
        .then_expect_error(OrganizationError::AlreadyExists);
}

#[test]
fn nothing_happens_to_an_organization_that_does_not_exist() {
    OrgTest::with(())
        .given_no_previous_events()
        .when(C::Rename(OrgName::parse("X").unwrap()))
        .then_expect_error(OrganizationError::NotFound);
}

#[test]
fn an_invited_user_with_the_right_token_and_email_becomes_a_member() {
    OrgTest::with(())
        .given(invited(Role::Member))
        .when(accept("t1", 3, "bob@acme.test", t0()))
        .then_expect_events(vec![E::InviteAccepted {
            invite_id: INVITE,
            user_id: Uuid::from_u128(3),
            email: "bob@acme.test".into(),
            role: Role::Member,
        }]);
}

#[test]
fn accepting_an_invite_twice_does_nothing() {
    let mut given = invited(Role::Member);
    given.push(E::InviteAccepted {
        invite_id: INVITE,
        user_id: Uuid::from_u128(3),
        email: "bob@acme.test".into(),
        role: Role::Member,
    });
    OrgTest::with(())
        .given(given)
        .when(accept("t1", 3, "bob@acme.test", t0()))
        .then_expect_events(vec![]);
}

#[test]
fn an_invite_accepted_by_one_user_cannot_be_used_by_another() {
    let mut given = invited(Role::Member);
    given.push(E::InviteAccepted {
        invite_id: INVITE,
        user_id: Uuid::from_u128(3),
        email: "bob@acme.test".into(),
        role: Role::Member,
    });
    OrgTest::with(())
        .given(given)
        .when(accept("t1", 4, "bob@acme.test", t0()))
        .then_expect_error(OrganizationError::InviteUsed);
}

#[test]
fn an_expired_invite_is_refused() {
    OrgTest::with(())
        .given(invited(Role::Member))
        .when(accept("t1", 3, "bob@acme.test", t0() + Duration::days(8)))
        .then_expect_error(OrganizationError::InviteExpired);
}

#[test]
fn an_invite_for_another_email_is_refused() {
    OrgTest::with(())
        .given(invited(Role::Member))
        .when(accept("t1", 3, "eve@acme.test", t0()))
        .then_expect_error(OrganizationError::InviteForAnotherEmail);
}

#[test]
fn a_wrong_token_looks_like_no_invite_at_all() {
    OrgTest::with(())
        .given(invited(Role::Member))
        .when(accept("guess", 3, "bob@acme.test", t0()))
        .then_expect_error(OrganizationError::InviteNotFound);
}

#[test]
fn a_resent_invite_no_longer_accepts_the_old_token() {
    let mut given = invited(Role::Member);
    given.push(E::InviteResent {
        invite_id: INVITE,
        token: digest("t2"),
        expires_at: t0() + Duration::days(14),
    });
    OrgTest::with(())
        .given(given)
        .when(accept("t1", 3, "bob@acme.test", t0()))
        .then_expect_error(OrganizationError::InviteNotFound);
}

#[test]
fn a_revoked_invite_is_refused() {
    let mut given = invited(Role::Member);
    given.push(E::InviteRevoked { invite_id: INVITE });
    OrgTest::with(())
        .given(given)
        .when(accept("t1", 3, "bob@acme.test", t0()))
        .then_expect_error(OrganizationError::InviteUsed);
}

#[test]
fn a_second_pending_invite_for_one_email_is_refused() {
    OrgTest::with(())
        .given(invited(Role::Member))
        .when(C::Invite {
            invite: NewInvite {
                invite_id: Uuid::from_u128(11),
                ..invite(Role::Member)
            },
            by: Role::Owner,
        })
        .then_expect_error(OrganizationError::InvitePending {
            email: "bob@acme.test".into(),
        });
}

#[test]
fn a_member_cannot_be_invited_again() {
    OrgTest::with(())
        .given(created())
        .when(C::Invite {
            invite: NewInvite {
                email: email("owner@acme.test"),
                ..invite(Role::Member)
            },
            by: Role::Owner,
        })
        .then_expect_error(OrganizationError::AlreadyMember);
}

#[test]
fn an_admin_cannot_invite_an_owner() {
    OrgTest::with(())
        .given(with_admin())
        .when(C::Invite {
            invite: invite(Role::Owner),
            by: Role::Admin,
        })
        .then_expect_error(OrganizationError::NotAllowed {
            by: Role::Admin,
            what: "invite an owner",
        });
}

#[test]
fn the_last_owner_cannot_be_removed_or_demoted() {
    OrgTest::with(())
        .given(with_admin())
        .when(C::RemoveMember {
            user_id: OWNER,
            by: Role::Owner,
        })
        .then_expect_error(OrganizationError::LastOwner);
    OrgTest::with(())
        .given(with_admin())
        .when(C::ChangeMemberRole {
            user_id: OWNER,
            role: Role::Admin,
            by: Role::Owner,
        })
        .then_expect_error(OrganizationError::LastOwner);
}

#[test]
fn an_admin_cannot_remove_an_owner() {
    OrgTest::with(())
        .given(with_admin())
        .when(C::RemoveMember {
            user_id: OWNER,
            by: Role::Admin,
        })
        .then_expect_error(OrganizationError::NotAllowed {
            by: Role::Admin,
            what: "remove an owner",
        });
}

#[test]
fn an_admin_cannot_make_an_owner() {
    OrgTest::with(())
        .given(with_admin())
        .when(C::ChangeMemberRole {
            user_id: ADMIN,
            role: Role::Owner,
            by: Role::Admin,
        })
        .then_expect_error(OrganizationError::NotAllowed {
            by: Role::Admin,
            what: "change an owner's role or make an owner",
        });
}

#[test]
fn removing_someone_who_is_not_a_member_is_refused() {
    OrgTest::with(())
        .given(created())
        .when(C::RemoveMember {
            user_id: Uuid::from_u128(99),
            by: Role::Owner,
        })
        .then_expect_error(OrganizationError::MemberNotFound);
}

#[test]
fn ownership_moves_to_a_member_and_the_old_owner_becomes_admin() {
    OrgTest::with(())
        .given(with_admin())
        .when(C::TransferOwnership {
            from: OWNER,
            to: ADMIN,
        })
        .then_expect_events(vec![E::OwnershipTransferred {
            from: OWNER,
            to: ADMIN,
        }]);
}

#[test]
fn only_an_owner_can_transfer_ownership() {
    OrgTest::with(())
        .given(with_admin())
        .when(C::TransferOwnership {
            from: ADMIN,
            to: OWNER,
        })
        .then_expect_error(OrganizationError::NotAllowed {
            by: Role::Admin,
            what: "transfer ownership",
        });
}

#[test]
fn ownership_cannot_go_to_a_non_member() {
    OrgTest::with(())
        .given(created())
        .when(C::TransferOwnership {
            from: OWNER,
            to: Uuid::from_u128(99),
        })
        .then_expect_error(OrganizationError::MemberNotFound);
}

fn key(role: Role) -> NewApiKey {
    NewApiKey {
        key_id: Uuid::from_u128(20),
        name: "website".into(),
        role,
        kind: KeyKind::Secret,
        prefix: "mk_abc".into(),
        digest: digest("k"),
        expires_at: None,
        created_by: format!("user:{OWNER}"),
    }
}

#[test]
fn an_api_key_cannot_be_an_owner() {
    OrgTest::with(())
        .given(created())
        .when(C::CreateApiKey(key(Role::Owner)))
        .then_expect_error(OrganizationError::OwnerKey);
}

#[test]
fn revoking_an_unknown_key_is_refused() {
    OrgTest::with(())
        .given(created())
        .when(C::RevokeApiKey {
            key_id: Uuid::from_u128(21),
        })
        .then_expect_error(OrganizationError::KeyNotFound);
}

#[test]
fn a_blocked_organization_refuses_everything_but_unblocking() {
    let mut given = created();
    given.push(E::OrganizationBlocked {
        reason: "abuse".into(),
    });
    OrgTest::with(())
        .given(given.clone())
        .when(C::CreateApiKey(key(Role::Admin)))
        .then_expect_error(OrganizationError::Blocked);
    OrgTest::with(())
        .given(given)
        .when(C::Unblock)
        .then_expect_events(vec![E::OrganizationUnblocked {}]);
}

#[test]
fn changing_settings_records_only_what_changed() {
    let settings = OrgSettings {
        time_zone: "Europe/Paris".into(),
        ..Default::default()
    };
    OrgTest::with(())
        .given(created())
        .when(C::ChangeSettings(SettingsPatch {
            time_zone: Some("Europe/Paris".into()),
            locale: Some("en".into()),
            ..Default::default()
        }))
        .then_expect_events(vec![E::OrganizationSettingsChanged {
            changed: vec!["time_zone".into()],
            settings,
        }]);
}

#[test]
fn event_payloads_keep_their_json_shape() {
    let json = serde_json::to_string(&invited(Role::Member)).unwrap();
    assert_eq!(
        json,
        r#"[{"OrganizationCreated":{"name":"Acme","settings":{"time_zone":"UTC","locale":"en","sender_name":null,"sender_email":null}}},{"MemberAdded":{"user_id":"00000000-0000-0000-0000-000000000001","email":"owner@acme.test","role":"owner"}},{"MemberInvited":{"invite_id":"00000000-0000-0000-0000-00000000000a","email":"bob@acme.test","role":"member","token":"t1","expires_at":"2026-11-08T12:00:00Z","invited_by":"user:00000000-0000-0000-0000-000000000001"}}]"#
    );
    let more = vec![
        E::ApiKeyCreated {
            key_id: Uuid::from_u128(20),
            name: "w".into(),
            role: Role::Viewer,
            kind: KeyKind::Public,
            prefix: "mkp_1".into(),
            digest: digest("d"),
            expires_at: None,
            created_by: "user:1".into(),
        },
        E::OrganizationUnblocked {},
    ];
    assert_eq!(
        serde_json::to_string(&more).unwrap(),
        r#"[{"ApiKeyCreated":{"key_id":"00000000-0000-0000-0000-000000000014","name":"w","role":"viewer","kind":"public","prefix":"mkp_1","digest":"d","expires_at":null,"created_by":"user:1"}},{"OrganizationUnblocked":{}}]"#
    );
}
