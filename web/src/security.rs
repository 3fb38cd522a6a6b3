//! What every console answer carries, and the check every console write passes.

use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// No inline script or style, nothing from elsewhere, never in a frame.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; \
    object-src 'none'; frame-ancestors 'none'";

/// Adds the Content Security Policy and its companions to every answer.
pub async fn headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}

/// Refuses a write that a browser says comes from another site (`Sec-Fetch-Site`, or an
/// `Origin` that is not this host): with the form's CSRF token, the second guard against
/// forged posts, and the only one for the sign-in and sign-up forms (no session yet).
pub async fn same_origin_writes(req: Request, next: Next) -> Response {
    if req.method() == Method::GET || req.method() == Method::HEAD {
        return next.run(req).await;
    }
    let h = req.headers();
    let text = |name| h.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    let cross_site = matches!(text("sec-fetch-site"), Some("cross-site" | "same-site"));
    let foreign_origin = match (text("origin"), text("host")) {
        (Some("null"), _) => true,
        (Some(origin), Some(host)) => {
            let authority = origin.split_once("://").map(|(_, a)| a).unwrap_or(origin);
            authority != host
        }
        _ => false,
    };
    if cross_site || foreign_origin {
        return (
            StatusCode::FORBIDDEN,
            "This form was sent from another site; open the page again and retry.",
        )
            .into_response();
    }
    next.run(req).await
}
