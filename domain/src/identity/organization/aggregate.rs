use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    NewApiKey, NewInvite, OrganizationCommand, OrganizationError, OrganizationEvent, SettingsPatch,
    MAX_KEYS, MAX_MEMBERS,
};
use crate::identity::{Digest, KeyKind, OrgSettings, Role};
use crate::EmailAddress;

type Event = OrganizationEvent;
type Error = OrganizationError;

/// The write model of an organization. Authentication reads it too (folded from the log,
/// so a revoked key or a removed member is refused on the very next request).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Organization {
    pub exists: bool,
    pub name: String,
    pub settings: OrgSettings,
    pub members: BTreeMap<Uuid, Member>,
    pub invites: BTreeMap<Uuid, Invite>,
    pub keys: BTreeMap<Uuid, ApiKey>,
    pub blocked: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub email: String,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invite {
    pub email: String,
    pub role: Role,
    pub token: Digest,
    pub expires_at: DateTime<Utc>,
    pub status: InviteStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InviteStatus {
    Pending,
    Accepted { user_id: Uuid },
    Revoked,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    pub name: String,
    pub role: Role,
    pub kind: KeyKind,
    pub prefix: String,
    pub digest: Digest,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked: bool,
}

impl ApiKey {
    /// Whether the key may be used at `now`.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        !self.revoked && self.expires_at.is_none_or(|t| now < t)
    }
}

impl Aggregate for Organization {
    const TYPE: &'static str = "organization";
    type Command = OrganizationCommand;
    type Event = OrganizationEvent;
    type Error = OrganizationError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let events = self.decide(command)?;
        for e in events {
            sink.write(e, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            Event::OrganizationCreated { name, settings } => {
                self.exists = true;
                self.name = name;
                self.settings = settings;
            }
            Event::OrganizationRenamed { name } => self.name = name,
            Event::OrganizationSettingsChanged { settings, .. } => self.settings = settings,
            Event::MemberInvited {
                invite_id,
                email,
                role,
                token,
                expires_at,
                ..
            } => {
                self.invites.insert(
                    invite_id,
                    Invite {
                        email,
                        role,
                        token,
                        expires_at,
                        status: InviteStatus::Pending,
                    },
                );
            }
            Event::InviteResent {
                invite_id,
                token,
                expires_at,
            } => {
                if let Some(i) = self.invites.get_mut(&invite_id) {
                    i.token = token;
                    i.expires_at = expires_at;
                }
            }
            Event::InviteRevoked { invite_id } => {
                if let Some(i) = self.invites.get_mut(&invite_id) {
                    i.status = InviteStatus::Revoked;
                }
            }
            Event::InviteAccepted {
                invite_id,
                user_id,
                email,
                role,
            } => {
                if let Some(i) = self.invites.get_mut(&invite_id) {
                    i.status = InviteStatus::Accepted { user_id };
                }
                self.members.insert(user_id, Member { email, role });
            }
            Event::MemberAdded {
                user_id,
                email,
                role,
            } => {
                self.members.insert(user_id, Member { email, role });
            }
            Event::MemberRoleChanged { user_id, to, .. } => {
                if let Some(m) = self.members.get_mut(&user_id) {
                    m.role = to;
                }
            }
            Event::MemberRemoved { user_id } => {
                self.members.remove(&user_id);
            }
            Event::OwnershipTransferred { from, to } => {
                if let Some(m) = self.members.get_mut(&to) {
                    m.role = Role::Owner;
                }
                if let Some(m) = self.members.get_mut(&from) {
                    m.role = Role::Admin;
                }
            }
            Event::ApiKeyCreated {
                key_id,
                name,
                role,
                kind,
                prefix,
                digest,
                expires_at,
                ..
            } => {
                self.keys.insert(
                    key_id,
                    ApiKey {
                        name,
                        role,
                        kind,
                        prefix,
                        digest,
                        expires_at,
                        revoked: false,
                    },
                );
            }
            Event::ApiKeyRevoked { key_id } => {
                if let Some(k) = self.keys.get_mut(&key_id) {
                    k.revoked = true;
                }
            }
            Event::OrganizationBlocked { .. } => self.blocked = true,
            Event::OrganizationUnblocked {} => self.blocked = false,
        }
    }
}

impl Organization {
    /// The role of `user`, if a member.
    pub fn role_of(&self, user: Uuid) -> Option<Role> {
        self.members.get(&user).map(|m| m.role)
    }

    fn owners(&self) -> usize {
        self.members
            .values()
            .filter(|m| m.role == Role::Owner)
            .count()
    }

    fn has_member_email(&self, email: &str) -> bool {
        self.members.values().any(|m| m.email == email)
    }

    /// Business rules: which events `command` leads to, or why it is refused.
    fn decide(&self, command: OrganizationCommand) -> Result<Vec<Event>, Error> {
        use OrganizationCommand as C;
        if let C::Create { name, owner } = command {
            if self.exists {
                return Err(Error::AlreadyExists);
            }
            let mut out = vec![Event::OrganizationCreated {
                name: name.as_str().to_owned(),
                settings: OrgSettings::default(),
            }];
            if let Some((user_id, email)) = owner {
                out.push(Event::MemberAdded {
                    user_id,
                    email: email.into(),
                    role: Role::Owner,
                });
            }
            return Ok(out);
        }
        if !self.exists {
            return Err(Error::NotFound);
        }
        match command {
            C::Block { reason } => {
                return Ok(if self.blocked {
                    vec![]
                } else {
                    vec![Event::OrganizationBlocked { reason }]
                });
            }
            C::Unblock => {
                return Ok(if self.blocked {
                    vec![Event::OrganizationUnblocked {}]
                } else {
                    vec![]
                });
            }
            _ if self.blocked => return Err(Error::Blocked),
            _ => {}
        }
        Ok(match command {
            C::Create { .. } | C::Block { .. } | C::Unblock => vec![],
            C::Rename(name) if name.as_str() == self.name => vec![],
            C::Rename(name) => vec![Event::OrganizationRenamed {
                name: name.as_str().to_owned(),
            }],
            C::ChangeSettings(patch) => self.change_settings(patch).into_iter().collect(),
            C::Invite { invite, by } => vec![self.invite(invite, by)?],
            C::ResendInvite {
                invite_id,
                token,
                expires_at,
            } => {
                let i = self.invites.get(&invite_id).ok_or(Error::InviteNotFound)?;
                if i.status != InviteStatus::Pending {
                    return Err(Error::InviteUsed);
                }
                vec![Event::InviteResent {
                    invite_id,
                    token,
                    expires_at,
                }]
            }
            C::RevokeInvite { invite_id } => {
                let i = self.invites.get(&invite_id).ok_or(Error::InviteNotFound)?;
                match i.status {
                    InviteStatus::Pending => vec![Event::InviteRevoked { invite_id }],
                    InviteStatus::Revoked => vec![],
                    InviteStatus::Accepted { .. } => return Err(Error::InviteUsed),
                }
            }
            C::AcceptInvite {
                invite_id,
                token,
                user_id,
                email,
                now,
            } => self.accept(invite_id, token, user_id, email, now)?,
            C::AddMember {
                user_id,
                email,
                role,
            } => {
                if self.members.contains_key(&user_id) {
                    return Err(Error::AlreadyMember);
                }
                if self.members.len() >= MAX_MEMBERS {
                    return Err(Error::TooManyMembers { max: MAX_MEMBERS });
                }
                vec![Event::MemberAdded {
                    user_id,
                    email: email.into(),
                    role,
                }]
            }
            C::ChangeMemberRole { user_id, role, by } => {
                let m = self.members.get(&user_id).ok_or(Error::MemberNotFound)?;
                if m.role == role {
                    return Ok(vec![]);
                }
                if (m.role == Role::Owner || role == Role::Owner) && by != Role::Owner {
                    return Err(Error::NotAllowed {
                        by,
                        what: "change an owner's role or make an owner",
                    });
                }
                if m.role == Role::Owner && self.owners() == 1 {
                    return Err(Error::LastOwner);
                }
                vec![Event::MemberRoleChanged {
                    user_id,
                    from: m.role,
                    to: role,
                }]
            }
            C::RemoveMember { user_id, by } => {
                let m = self.members.get(&user_id).ok_or(Error::MemberNotFound)?;
                if m.role == Role::Owner && by != Role::Owner {
                    return Err(Error::NotAllowed {
                        by,
                        what: "remove an owner",
                    });
                }
                if m.role == Role::Owner && self.owners() == 1 {
                    return Err(Error::LastOwner);
                }
                vec![Event::MemberRemoved { user_id }]
            }
            C::TransferOwnership { from, to } => {
                if self.role_of(from) != Some(Role::Owner) {
                    return Err(Error::NotAllowed {
                        by: self.role_of(from).unwrap_or(Role::Viewer),
                        what: "transfer ownership",
                    });
                }
                if !self.members.contains_key(&to) {
                    return Err(Error::MemberNotFound);
                }
                if from == to {
                    return Ok(vec![]);
                }
                vec![Event::OwnershipTransferred { from, to }]
            }
            C::CreateApiKey(key) => vec![self.create_key(key)?],
            C::RevokeApiKey { key_id } => {
                let k = self.keys.get(&key_id).ok_or(Error::KeyNotFound)?;
                if k.revoked {
                    vec![]
                } else {
                    vec![Event::ApiKeyRevoked { key_id }]
                }
            }
        })
    }

    fn change_settings(&self, patch: SettingsPatch) -> Option<Event> {
        let mut s = self.settings.clone();
        let mut changed = Vec::new();
        let mut set = |name: &str, differs: bool| {
            if differs {
                changed.push(name.to_owned());
            }
        };
        if let Some(tz) = patch.time_zone {
            set("time_zone", tz != s.time_zone);
            s.time_zone = tz;
        }
        if let Some(l) = patch.locale {
            set("locale", l != s.locale);
            s.locale = l;
        }
        if let Some(n) = patch.sender_name {
            set("sender_name", n != s.sender_name);
            s.sender_name = n;
        }
        if let Some(e) = patch.sender_email {
            set("sender_email", e != s.sender_email);
            s.sender_email = e;
        }
        (!changed.is_empty()).then_some(Event::OrganizationSettingsChanged {
            changed,
            settings: s,
        })
    }

    fn invite(&self, invite: NewInvite, by: Role) -> Result<Event, Error> {
        if invite.role == Role::Owner && by != Role::Owner {
            return Err(Error::NotAllowed {
                by,
                what: "invite an owner",
            });
        }
        let email = invite.email.as_str();
        if self.has_member_email(email) {
            return Err(Error::AlreadyMember);
        }
        if self
            .invites
            .values()
            .any(|i| i.email == email && i.status == InviteStatus::Pending)
        {
            return Err(Error::InvitePending {
                email: email.to_owned(),
            });
        }
        if self.members.len() >= MAX_MEMBERS {
            return Err(Error::TooManyMembers { max: MAX_MEMBERS });
        }
        Ok(Event::MemberInvited {
            invite_id: invite.invite_id,
            email: invite.email.into(),
            role: invite.role,
            token: invite.token,
            expires_at: invite.expires_at,
            invited_by: invite.invited_by,
        })
    }

    fn accept(
        &self,
        invite_id: Uuid,
        token: Digest,
        user_id: Uuid,
        email: EmailAddress,
        now: DateTime<Utc>,
    ) -> Result<Vec<Event>, Error> {
        let i = self.invites.get(&invite_id).ok_or(Error::InviteNotFound)?;
        if i.token != token {
            return Err(Error::InviteNotFound);
        }
        match i.status {
            // Accepting twice does nothing.
            InviteStatus::Accepted { user_id: by } if by == user_id => return Ok(vec![]),
            InviteStatus::Accepted { .. } | InviteStatus::Revoked => return Err(Error::InviteUsed),
            InviteStatus::Pending => {}
        }
        if now >= i.expires_at {
            return Err(Error::InviteExpired);
        }
        if i.email != email.as_str() {
            return Err(Error::InviteForAnotherEmail);
        }
        if self.members.contains_key(&user_id) {
            return Err(Error::AlreadyMember);
        }
        if self.members.len() >= MAX_MEMBERS {
            return Err(Error::TooManyMembers { max: MAX_MEMBERS });
        }
        Ok(vec![Event::InviteAccepted {
            invite_id,
            user_id,
            email: email.into(),
            role: i.role,
        }])
    }

    fn create_key(&self, key: NewApiKey) -> Result<Event, Error> {
        if key.role == Role::Owner {
            return Err(Error::OwnerKey);
        }
        if self.keys.values().filter(|k| !k.revoked).count() >= MAX_KEYS {
            return Err(Error::TooManyKeys { max: MAX_KEYS });
        }
        Ok(Event::ApiKeyCreated {
            key_id: key.key_id,
            name: key.name,
            role: key.role,
            kind: key.kind,
            prefix: key.prefix,
            digest: key.digest,
            expires_at: key.expires_at,
            created_by: key.created_by,
        })
    }
}
