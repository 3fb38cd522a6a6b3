//! The console's CSS and JS, embedded at build time (`build.rs`) under names that carry a
//! hash of their content: served as immutable for a year, gzipped when the browser takes it.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// One embedded file.
pub struct Asset {
    /// The name templates ask for (`htmx.js`).
    pub name: &'static str,
    /// The name it is served under (`htmx.1a2b3c4d5e6f.js`).
    pub hashed: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
    pub gzip: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The URL of asset `name` (what templates put in `src` and `href`).
pub fn url(name: &str) -> String {
    ASSETS
        .iter()
        .find(|a| a.name == name)
        .map(|a| format!("/assets/{}", a.hashed))
        .unwrap_or_default()
}

/// `GET /assets/{hashed name}`.
pub async fn serve(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.hashed == name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let mut res = if gzip {
        let mut r = asset.gzip.into_response();
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        asset.body.into_response()
    };
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    res
}
