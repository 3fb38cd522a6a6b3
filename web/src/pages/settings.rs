//! Settings: members and their roles, invitations, API keys (the secret shown once).
//! Read from the organization as authentication folds it (the same state the API checks).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use commands::identity::body;
use commands::identity::organizations::{CreatedKey, KeySpec, OrganizationsError};
use domain::identity::organization::InviteStatus;
use domain::identity::{Action, KeyKind, Role};
use domain::{ApiKeyId, InviteId, MemberId};
use http_kit::PathIds;
use serde::Deserialize;
use uuid::Uuid;

use crate::page::{command_errors, render_with, FieldErrors, Frame, PageError};
use crate::visit::{role_name, CsrfForm, Member, NoFields};
use crate::WebState;

struct MemberRow {
    id: Uuid,
    email: String,
    role: &'static str,
    is_me: bool,
}

struct InviteRow {
    id: Uuid,
    email: String,
    role: &'static str,
    status: String,
    pending: bool,
}

struct KeyRow {
    id: Uuid,
    name: String,
    prefix: String,
    role: &'static str,
    kind: &'static str,
    expires: String,
    live: bool,
}

#[derive(Template)]
#[template(path = "settings/show.html")]
struct SettingsPage {
    frame: Frame,
    members: Vec<MemberRow>,
    invites: Vec<InviteRow>,
    keys: Vec<KeyRow>,
    /// A key just made: its secret, shown this once.
    created: Option<CreatedKey>,
    invite_form: (String, String),
    key_form: (String, String, String),
    errors: FieldErrors,
    roles: [&'static str; 4],
}

const ROLES: [&str; 4] = ["viewer", "member", "admin", "owner"];

fn page(me: &Member) -> SettingsPage {
    let now = Utc::now();
    let members = me
        .org
        .members
        .iter()
        .map(|(id, m)| MemberRow {
            id: *id,
            email: m.email.clone(),
            role: role_name(m.role),
            is_me: *id == me.user.session.user_id,
        })
        .collect();
    let invites = me
        .org
        .invites
        .iter()
        .map(|(id, i)| {
            let pending = matches!(i.status, InviteStatus::Pending) && i.expires_at > now;
            InviteRow {
                id: *id,
                email: i.email.clone(),
                role: role_name(i.role),
                status: match &i.status {
                    InviteStatus::Pending if i.expires_at <= now => "expired".into(),
                    InviteStatus::Pending => {
                        format!("pending until {}", i.expires_at.format("%Y-%m-%d"))
                    }
                    InviteStatus::Accepted { .. } => "accepted".into(),
                    InviteStatus::Revoked => "revoked".into(),
                },
                pending,
            }
        })
        .collect();
    let keys = me
        .org
        .keys
        .iter()
        .map(|(id, k)| KeyRow {
            id: *id,
            name: k.name.clone(),
            prefix: k.prefix.clone(),
            role: role_name(k.role),
            kind: match k.kind {
                KeyKind::Secret => "secret",
                KeyKind::Public => "public",
            },
            expires: k
                .expires_at
                .map(|t| t.format("%Y-%m-%d").to_string())
                .unwrap_or_else(|| "never".into()),
            live: k.is_live(now),
        })
        .collect();
    SettingsPage {
        frame: me.frame("Settings", "settings"),
        members,
        invites,
        keys,
        created: None,
        invite_form: (String::new(), "member".into()),
        key_form: (String::new(), "member".into(), "secret".into()),
        errors: FieldErrors::none(),
        roles: ROLES,
    }
}

/// How a settings form shows a refusal.
fn form_errors(e: OrganizationsError) -> Result<(StatusCode, FieldErrors), PageError> {
    command_errors(e, "organization")
}

/// After a change: back to the page (a fresh read), or the page with the refusal.
fn answer(
    me: &Member,
    outcome: Result<(), OrganizationsError>,
    fill: impl FnOnce(&mut SettingsPage),
) -> Result<Response, PageError> {
    match outcome {
        Ok(()) => Ok(Redirect::to("/settings").into_response()),
        Err(e) => {
            let (status, errors) = form_errors(e)?;
            let mut p = page(me);
            p.errors = errors;
            fill(&mut p);
            Ok(render_with(status, &p))
        }
    }
}

/// `GET /settings`
pub async fn show(me: Member) -> Result<Response, PageError> {
    me.require(Action::ManageMembers)?;
    Ok(render_with(StatusCode::OK, &page(&me)))
}

fn role(raw: &str, field: &str) -> Result<Role, commands::Invalid> {
    raw.parse::<Role>()
        .map_err(|_| commands::Invalid::one(field, "choose viewer, member, admin or owner"))
}

#[derive(Deserialize)]
pub struct InviteForm {
    email: String,
    role: String,
}

/// `POST /settings/invites`: mails a single-use link.
pub async fn invite(
    State(s): State<WebState>,
    me: Member,
    CsrfForm(f): CsrfForm<InviteForm>,
) -> Result<Response, PageError> {
    me.require(Action::ManageMembers)?;
    let outcome = match body::email(&f.email).and_then(|e| Ok((e, role(&f.role, "role")?))) {
        Ok((email, role)) => s
            .commands
            .identity
            .organizations
            .invite(me.tenant, email, role, me.role, &me.meta)
            .await
            .map(|_| ()),
        Err(i) => Err(i.into()),
    };
    answer(&me, outcome, |p| p.invite_form = (f.email, f.role))
}

/// `POST /settings/invites/{id}/revoke`
pub async fn revoke_invite(
    State(s): State<WebState>,
    me: Member,
    PathIds(id): PathIds<InviteId>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, PageError> {
    me.require(Action::ManageMembers)?;
    let outcome = s
        .commands
        .identity
        .organizations
        .revoke_invite(me.tenant, id, &me.meta)
        .await
        .map(|_| ());
    answer(&me, outcome, |_| {})
}

#[derive(Deserialize)]
pub struct RoleForm {
    role: String,
}

/// `POST /settings/members/{id}/role`
pub async fn change_role(
    State(s): State<WebState>,
    me: Member,
    PathIds(id): PathIds<MemberId>,
    CsrfForm(f): CsrfForm<RoleForm>,
) -> Result<Response, PageError> {
    me.require(Action::ManageMembers)?;
    let outcome = match role(&f.role, "role") {
        Ok(r) => s
            .commands
            .identity
            .organizations
            .change_role(me.tenant, id, r, me.role, &me.meta)
            .await
            .map(|_| ()),
        Err(i) => Err(i.into()),
    };
    answer(&me, outcome, |_| {})
}

/// `POST /settings/members/{id}/remove`
pub async fn remove_member(
    State(s): State<WebState>,
    me: Member,
    PathIds(id): PathIds<MemberId>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, PageError> {
    me.require(Action::ManageMembers)?;
    let outcome = s
        .commands
        .identity
        .organizations
        .remove_member(me.tenant, id, me.role, &me.meta)
        .await
        .map(|_| ());
    answer(&me, outcome, |_| {})
}

#[derive(Deserialize)]
pub struct KeyForm {
    name: String,
    role: String,
    kind: String,
}

/// `POST /settings/keys`: the new key's secret is on the answer, and nowhere else ever.
pub async fn create_key(
    State(s): State<WebState>,
    me: Member,
    CsrfForm(f): CsrfForm<KeyForm>,
) -> Result<Response, PageError> {
    me.require(Action::ManageKeys)?;
    let kind = match f.kind.as_str() {
        "public" => Ok(KeyKind::Public),
        "secret" => Ok(KeyKind::Secret),
        _ => Err(commands::Invalid::one("kind", "choose secret or public")),
    };
    let spec = role(&f.role, "role").and_then(|role| {
        Ok(KeySpec {
            name: f.name.trim().to_owned(),
            role,
            kind: kind?,
            expires_at: None,
        })
    });
    let outcome = match spec {
        Ok(spec) => {
            s.commands
                .identity
                .organizations
                .create_key(me.tenant, spec, me.role, &me.meta)
                .await
        }
        Err(i) => Err(i.into()),
    };
    match outcome {
        Ok(created) => {
            // Shown on this answer only; the page lists the key by its prefix.
            let mut p = page(&me);
            p.keys.push(KeyRow {
                id: created.id,
                name: f.name.trim().to_owned(),
                prefix: created.prefix.clone(),
                role: role_name(role(&f.role, "role").unwrap_or(Role::Viewer)),
                kind: if f.kind == "public" {
                    "public"
                } else {
                    "secret"
                },
                expires: "never".into(),
                live: true,
            });
            p.created = Some(created);
            let mut res = render_with(StatusCode::CREATED, &p);
            res.headers_mut().insert(
                axum::http::header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store"),
            );
            Ok(res)
        }
        Err(e) => {
            let (status, errors) = form_errors(e)?;
            let mut p = page(&me);
            p.errors = errors;
            p.key_form = (f.name, f.role, f.kind);
            Ok(render_with(status, &p))
        }
    }
}

/// `POST /settings/keys/{id}/revoke`
pub async fn revoke_key(
    State(s): State<WebState>,
    me: Member,
    PathIds(id): PathIds<ApiKeyId>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, PageError> {
    me.require(Action::ManageKeys)?;
    let outcome = s
        .commands
        .identity
        .organizations
        .revoke_key(me.tenant, id, &me.meta)
        .await
        .map(|_| ());
    answer(&me, outcome, |_| {})
}
