//! The error responses every operation shares, declared once (`components.responses`) and
//! referenced from each operation that can answer them, derived from what the operation is:
//! whether it takes a body, path parameters, `consistent_after`, whether it is public, and
//! whether it commands a contact.
//! An operation's own declaration of a status (a more specific description) is kept.

use axum::http::Method;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};

use crate::auth::routes::{access_of, Access};

/// Status, component name, description.
const SHARED: &[(&str, &str, &str)] = &[
    ("400", "BadRequest", "A malformed or out-of-range parameter (each named in `errors`), malformed JSON, or a bad header"),
    ("401", "Unauthorized", "No valid API key or session"),
    ("403", "Forbidden", "The caller's role or key may not do this, the organization is blocked, or the CSRF token is missing"),
    ("404", "NotFound", "No such resource in this organization (an id that does not parse names none)"),
    ("410", "ContactErased", "The contact was erased (its data is gone for good)"),
    ("413", "PayloadTooLarge", "The body is larger than the server accepts"),
    ("415", "UnsupportedMediaType", "The body is not `application/json`"),
    ("422", "UnprocessableContent", "A value of the body is invalid (each named in `errors`)"),
    ("429", "TooManyRequests", "Too many attempts; `Retry-After` says when to try again"),
    ("500", "InternalError", "An internal error (logged; retrying may help)"),
    ("503", "Unavailable", "The read model did not reach `consistent_after` in time; `Retry-After` says when to try again"),
];

/// Adds the shared error responses to `doc` and to each of its operations.
pub fn declare_shared_errors(doc: &mut OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    for (_, name, description) in SHARED {
        let content = ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build();
        components.responses.insert(
            (*name).to_owned(),
            RefOr::T(
                ResponseBuilder::new()
                    .description(*description)
                    .content("application/problem+json", content)
                    .build(),
            ),
        );
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        let ops = [
            (Method::GET, item.get.as_mut()),
            (Method::PUT, item.put.as_mut()),
            (Method::POST, item.post.as_mut()),
            (Method::DELETE, item.delete.as_mut()),
            (Method::PATCH, item.patch.as_mut()),
        ];
        for (method, op) in ops {
            if let Some(op) = op {
                for status in errors_of(path, &method, op) {
                    let name = SHARED
                        .iter()
                        .find(|(s, _, _)| *s == status)
                        .map_or("InternalError", |(_, n, _)| n);
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| {
                            RefOr::Ref(Ref::new(format!("#/components/responses/{name}")))
                        });
                }
            }
        }
    }
}

/// The shared statuses `op` can answer.
fn errors_of(path: &str, method: &Method, op: &Operation) -> Vec<&'static str> {
    let mut out = vec!["400", "500"];
    let params = op.parameters.as_deref().unwrap_or_default();
    match access_of(method, path) {
        // Sign-up, login, token endpoints: limited per address and account.
        Some(Access::Public) => out.push("429"),
        // Keys and sessions: missing, wrong, or not allowed.
        Some(_) | None => out.extend(["401", "403"]),
    }
    if params
        .iter()
        .any(|p| matches!(p.parameter_in, ParameterIn::Path))
    {
        out.push("404");
    }
    // Every command on a contact: an erased one takes none.
    if path.starts_with("/api/v1/contacts/{id}") && method != Method::GET {
        out.push("410");
    }
    if op.request_body.is_some() {
        out.extend(["413", "415", "422"]);
    }
    if params.iter().any(|p| p.name == "consistent_after") {
        out.push("503");
    }
    out
}
