use crate::identity::Role;

/// Why an organization refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrganizationError {
    /// The organization already exists.
    #[error("the organization already exists")]
    AlreadyExists,
    /// There is no such organization.
    #[error("no such organization")]
    NotFound,
    /// The organization is blocked; only unblocking is possible.
    #[error("the organization is blocked")]
    Blocked,
    /// No such member.
    #[error("no such member")]
    MemberNotFound,
    /// The user is a member already.
    #[error("that user is already a member")]
    AlreadyMember,
    /// The change would leave the organization without an owner.
    #[error("an organization must keep at least one owner")]
    LastOwner,
    /// The acting role may not do this to that member or role.
    #[error("a {by} cannot {what}")]
    NotAllowed { by: Role, what: &'static str },
    /// The organization has as many members as allowed.
    #[error("an organization can have at most {max} members")]
    TooManyMembers { max: usize },
    /// No such invite (also: a wrong token, so tokens cannot be probed).
    #[error("no such invite")]
    InviteNotFound,
    /// There already is a pending invite for this email.
    #[error("{email} already has a pending invite; resend it instead")]
    InvitePending { email: String },
    /// The invite has expired.
    #[error("the invite has expired")]
    InviteExpired,
    /// The invite was accepted by someone else, or revoked.
    #[error("the invite is no longer valid")]
    InviteUsed,
    /// The invite was sent to another email than the accepting user's.
    #[error("the invite was sent to another email address")]
    InviteForAnotherEmail,
    /// No such API key.
    #[error("no such API key")]
    KeyNotFound,
    /// The organization has as many live keys as allowed.
    #[error("an organization can have at most {max} live API keys")]
    TooManyKeys { max: usize },
    /// Keys act for machines; ownership is for people.
    #[error("an API key cannot have the owner role")]
    OwnerKey,
}
