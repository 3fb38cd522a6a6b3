//! Helpers of the webhook tests: requests built from parts.

use super::Incoming;

/// A header map from pairs.
pub fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for (name, value) in pairs {
        if let (Ok(name), Ok(value)) = (
            http::header::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(value),
        ) {
            map.append(name, value);
        }
    }
    map
}

pub fn incoming<'a>(url: &'a str, headers: &'a http::HeaderMap, body: &'a [u8]) -> Incoming<'a> {
    Incoming { url, headers, body }
}
