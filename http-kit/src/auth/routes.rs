//! The access rule of every route. This table is the one place authorization is decided:
//! the middleware looks the matched route up here and applies the role × action table
//! (`domain::identity::allows`). A route missing from the table is refused (fail closed),
//! and a test checks every route of `/openapi.json` has a rule.

use axum::http::Method;
use domain::identity::Action;

/// What a route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (sign-up, login, token endpoints; rate-limited where it matters).
    Public,
    /// A signed-in user (session cookie); no organization needed.
    User,
    /// A caller in an organization (key or user) whose role allows the action.
    Org(Action),
}

use Access::{Org, Public, User};
use Action::*;

/// Every route under `/api/v1`: method, path template (as the router declares it), rule.
#[rustfmt::skip]
pub const ROUTES: &[(Method, &str, Access)] = &[
    // Authentication
    (Method::POST, "/api/v1/auth/signup", Public),
    (Method::POST, "/api/v1/auth/verify-email", Public),
    (Method::POST, "/api/v1/auth/login", Public),
    (Method::POST, "/api/v1/auth/login/second-factor", Public),
    (Method::POST, "/api/v1/auth/password/forgot", Public),
    (Method::POST, "/api/v1/auth/password/reset", Public),
    (Method::GET, "/api/v1/auth/oidc/start", Public),
    (Method::GET, "/api/v1/auth/oidc/callback", Public),
    (Method::POST, "/api/v1/auth/logout", User),
    // The signed-in user
    (Method::GET, "/api/v1/me", User),
    (Method::POST, "/api/v1/me/password", User),
    (Method::POST, "/api/v1/me/verification", User),
    (Method::POST, "/api/v1/me/totp", User),
    (Method::POST, "/api/v1/me/totp/confirm", User),
    (Method::DELETE, "/api/v1/me/totp", User),
    (Method::POST, "/api/v1/me/organization", User),
    (Method::POST, "/api/v1/organizations", User),
    (Method::POST, "/api/v1/invites/accept", User),
    // The organization
    (Method::GET, "/api/v1/organization", Org(Read)),
    (
        Method::PATCH,
        "/api/v1/organization",
        Org(ManageOrganization),
    ),
    (Method::POST, "/api/v1/organization/leave", Org(Read)),
    (
        Method::POST,
        "/api/v1/organization/transfer-ownership",
        Org(TransferOwnership),
    ),
    (Method::GET, "/api/v1/organization/members", Org(Read)),
    (
        Method::PATCH,
        "/api/v1/organization/members/{user_id}",
        Org(ManageMembers),
    ),
    (
        Method::DELETE,
        "/api/v1/organization/members/{user_id}",
        Org(ManageMembers),
    ),
    (
        Method::GET,
        "/api/v1/organization/invites",
        Org(ManageMembers),
    ),
    (
        Method::POST,
        "/api/v1/organization/invites",
        Org(ManageMembers),
    ),
    (
        Method::DELETE,
        "/api/v1/organization/invites/{id}",
        Org(ManageMembers),
    ),
    (
        Method::POST,
        "/api/v1/organization/invites/{id}/resend",
        Org(ManageMembers),
    ),
    (Method::GET, "/api/v1/api-keys", Org(ManageKeys)),
    (Method::POST, "/api/v1/api-keys", Org(ManageKeys)),
    (Method::DELETE, "/api/v1/api-keys/{id}", Org(ManageKeys)),
    (Method::GET, "/api/v1/audit", Org(ReadAudit)),
    (
        Method::GET,
        "/api/v1/audit/{aggregate_type}/{id}",
        Org(ReadAudit),
    ),
    (Method::GET, "/api/v1/projections", Org(Read)),
    // Contacts
    (Method::GET, "/api/v1/imports", Org(Read)),
    (Method::POST, "/api/v1/imports", Org(Write)),
    (Method::GET, "/api/v1/imports/{id}", Org(Read)),
    (Method::GET, "/api/v1/imports/{id}/errors", Org(Read)),
    (Method::GET, "/api/v1/contacts", Org(Read)),
    (Method::POST, "/api/v1/contacts", Org(Write)),
    (Method::POST, "/api/v1/contacts:upsert", Org(Write)),
    (Method::GET, "/api/v1/contacts:export", Org(Read)),
    (Method::GET, "/api/v1/contacts/{id}", Org(Read)),
    (Method::GET, "/api/v1/contacts/{id}/export", Org(Read)),
    (Method::GET, "/api/v1/contacts/{id}/timeline", Org(Read)),
    (Method::PATCH, "/api/v1/contacts/{id}", Org(Write)),
    (Method::DELETE, "/api/v1/contacts/{id}", Org(Write)),
    (Method::POST, "/api/v1/contacts/{id}/tags", Org(Write)),
    (Method::DELETE, "/api/v1/contacts/{id}/tags/{tag}", Org(Write)),
    (Method::PUT, "/api/v1/contacts/{id}/consent/{channel}", Org(Write)),
    (Method::PUT, "/api/v1/contacts/{id}/do-not-contact/{channel}", Org(Write)),
    (Method::DELETE, "/api/v1/contacts/{id}/do-not-contact/{channel}", Org(Write)),
    (Method::PUT, "/api/v1/contacts/{id}/frequency/{channel}", Org(Write)),
    (Method::DELETE, "/api/v1/contacts/{id}/frequency/{channel}", Org(Write)),
    (Method::PUT, "/api/v1/contacts/{id}/stage", Org(Write)),
    (Method::PUT, "/api/v1/contacts/{id}/owner", Org(Write)),
    (Method::GET, "/api/v1/contacts/{id}/notes", Org(Read)),
    (Method::POST, "/api/v1/contacts/{id}/notes", Org(Write)),
    (Method::DELETE, "/api/v1/contacts/{id}/notes/{note_id}", Org(Write)),
    (Method::POST, "/api/v1/contacts/{id}/points", Org(Write)),
    (Method::POST, "/api/v1/contacts/{id}/merge", Org(Write)),
    (Method::POST, "/api/v1/contacts/{id}/events", Org(Ingest)),
    (Method::POST, "/api/v1/events", Org(Ingest)),
    (Method::PUT, "/api/v1/contacts/{id}/companies/{company_id}", Org(Write)),
    (Method::DELETE, "/api/v1/contacts/{id}/companies/{company_id}", Org(Write)),
    // Field definitions
    (Method::GET, "/api/v1/fields", Org(Read)),
    (Method::POST, "/api/v1/fields", Org(ManageOrganization)),
    (Method::PATCH, "/api/v1/fields/{key}", Org(ManageOrganization)),
    (Method::DELETE, "/api/v1/fields/{key}", Org(ManageOrganization)),
    // Companies
    // Segments
    (Method::GET, "/api/v1/segments", Org(Read)),
    (Method::POST, "/api/v1/segments", Org(Write)),
    (Method::POST, "/api/v1/segments:preview", Org(Read)),
    (Method::GET, "/api/v1/segments/{id}", Org(Read)),
    (Method::PATCH, "/api/v1/segments/{id}", Org(Write)),
    (Method::DELETE, "/api/v1/segments/{id}", Org(Write)),
    (Method::GET, "/api/v1/segments/{id}/contacts", Org(Read)),
    (Method::POST, "/api/v1/segments/{id}/contacts", Org(Write)),
    (Method::POST, "/api/v1/segments/{id}/contacts:remove", Org(Write)),
    (Method::GET, "/api/v1/segments/{id}/preview", Org(Read)),
    (Method::POST, "/api/v1/segments/{id}/refresh", Org(Write)),
    // Templates
    (Method::GET, "/api/v1/templates", Org(Read)),
    (Method::POST, "/api/v1/templates", Org(Write)),
    (Method::GET, "/api/v1/templates/{id}", Org(Read)),
    (Method::PATCH, "/api/v1/templates/{id}", Org(Write)),
    (Method::DELETE, "/api/v1/templates/{id}", Org(Write)),
    (Method::POST, "/api/v1/templates/{id}/versions", Org(Write)),
    (Method::GET, "/api/v1/templates/{id}/versions/{n}", Org(Read)),
    (Method::POST, "/api/v1/templates/{id}/versions/{n}/publish", Org(Write)),
    (Method::POST, "/api/v1/templates/{id}/versions/{n}/preview", Org(Read)),
    (Method::POST, "/api/v1/templates/{id}/versions/{n}/test", Org(Write)),
    (Method::POST, "/api/v1/messages", Org(Write)),
    (Method::GET, "/api/v1/dev-mailbox", Org(Read)),
    (Method::GET, "/api/v1/deliveries", Org(Read)),
    (Method::GET, "/api/v1/deliveries/{id}", Org(Read)),
    // Campaigns (reads)
    (Method::GET, "/api/v1/campaigns", Org(Read)),
    (Method::GET, "/api/v1/campaigns/{id}", Org(Read)),
    (Method::GET, "/api/v1/campaigns/{id}/stats", Org(Read)),
    (Method::GET, "/api/v1/campaigns/{id}/recipients", Org(Read)),
    // Journeys (reads)
    (Method::GET, "/api/v1/journeys", Org(Read)),
    (Method::GET, "/api/v1/journeys/{id}", Org(Read)),
    (Method::GET, "/api/v1/journeys/{id}/versions/{version}", Org(Read)),
    (Method::GET, "/api/v1/journeys/{id}/stats", Org(Read)),
    (Method::GET, "/api/v1/journeys/{id}/executions", Org(Read)),
    (Method::GET, "/api/v1/journeys/{id}/executions/{execution_id}", Org(Read)),
    (Method::GET, "/api/v1/contacts/{id}/journeys", Org(Read)),
    // The suppression list (addresses: readable like contacts)
    (Method::GET, "/api/v1/suppressions", Org(Read)),
    (Method::POST, "/api/v1/suppressions", Org(Write)),
    (Method::POST, "/api/v1/suppressions/import", Org(Write)),
    (Method::GET, "/api/v1/suppressions/{id}", Org(Read)),
    (Method::DELETE, "/api/v1/suppressions/{id}", Org(Write)),
    // Channel providers: their credentials are the organization's settings.
    (Method::GET, "/api/v1/providers", Org(Read)),
    (Method::POST, "/api/v1/providers", Org(ManageOrganization)),
    (Method::GET, "/api/v1/providers/{id}", Org(Read)),
    (Method::PATCH, "/api/v1/providers/{id}", Org(ManageOrganization)),
    (Method::DELETE, "/api/v1/providers/{id}", Org(ManageOrganization)),
    (Method::POST, "/api/v1/providers/{id}/default", Org(ManageOrganization)),
    // Warmup of sending domains: read like other delivery settings, written like providers.
    (Method::POST, "/api/v1/campaigns", Org(Write)),
    (Method::PATCH, "/api/v1/campaigns/{id}", Org(Write)),
    (Method::DELETE, "/api/v1/campaigns/{id}", Org(Write)),
    (Method::POST, "/api/v1/campaigns/{id}/schedule", Org(Write)),
    (Method::POST, "/api/v1/campaigns/{id}/unschedule", Org(Write)),
    (Method::POST, "/api/v1/campaigns/{id}/send", Org(Write)),
    (Method::POST, "/api/v1/campaigns/{id}/pause", Org(Write)),
    (Method::POST, "/api/v1/campaigns/{id}/resume", Org(Write)),
    (Method::POST, "/api/v1/campaigns/{id}/cancel", Org(Write)),
    (Method::POST, "/api/v1/campaigns/{id}/clone", Org(Write)),
    (Method::POST, "/api/v1/journeys", Org(Write)),
    (Method::PATCH, "/api/v1/journeys/{id}", Org(Write)),
    (Method::POST, "/api/v1/journeys/{id}/publish", Org(Write)),
    (Method::POST, "/api/v1/journeys/{id}/pause", Org(Write)),
    (Method::POST, "/api/v1/journeys/{id}/resume", Org(Write)),
    (Method::POST, "/api/v1/journeys/{id}/archive", Org(Write)),
    (Method::POST, "/api/v1/journeys/{id}/entries", Org(Write)),
    (Method::GET, "/api/v1/warmup", Org(Read)),
    (Method::GET, "/api/v1/warmup/{domain}", Org(Read)),
    (Method::PUT, "/api/v1/warmup/{domain}", Org(ManageOrganization)),
    (Method::DELETE, "/api/v1/warmup/{domain}", Org(ManageOrganization)),
    (Method::GET, "/api/v1/companies", Org(Read)),
    (Method::POST, "/api/v1/companies", Org(Write)),
    (Method::GET, "/api/v1/companies/{id}", Org(Read)),
    (Method::PATCH, "/api/v1/companies/{id}", Org(Write)),
];

/// The rule for `method` on the route template `path`, if it has one.
pub fn access_of(method: &Method, path: &str) -> Option<Access> {
    // The router answers HEAD with the GET handler (without the body).
    let method = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    ROUTES
        .iter()
        .find(|(m, p, _)| m == method && *p == path)
        .map(|(_, _, a)| *a)
}

/// The methods `path` answers (its `Allow` header): empty for a path without rules.
pub fn methods_of(path: &str) -> Vec<Method> {
    let mut out: Vec<Method> = ROUTES
        .iter()
        .filter(|(_, p, _)| *p == path)
        .map(|(m, _, _)| m.clone())
        .collect();
    if out.contains(&Method::GET) {
        out.push(Method::HEAD);
    }
    out
}
