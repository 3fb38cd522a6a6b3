//! Where a request comes from: the client's address and user agent, recorded in event
//! metadata and sessions, and used for per-address throttling.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

use crate::Problem;

/// The client of a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl ClientInfo {
    /// From the peer address, or, behind a trusted proxy, the last `X-Forwarded-For` entry:
    /// the address the proxy itself saw (earlier entries are whatever the client claimed).
    pub fn from_parts(headers: &HeaderMap, peer: Option<SocketAddr>, trust_proxy: bool) -> Self {
        let forwarded = trust_proxy
            .then(|| headers.get("x-forwarded-for"))
            .flatten()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse::<IpAddr>().ok());
        Self {
            ip: forwarded.or(peer.map(|p| p.ip())),
            user_agent: headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(512).collect()),
        }
    }

    /// The address as text (`unknown` when there is none).
    pub fn ip_text(&self) -> String {
        self.ip
            .map_or_else(|| "unknown".into(), |ip| ip.to_string())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientInfo {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(c) = parts.extensions.get::<ClientInfo>() {
            return Ok(c.clone());
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        Ok(Self::from_parts(&parts.headers, peer, false))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_forwarded_address_counts_only_behind_a_trusted_proxy_and_is_the_proxys_entry() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "6.6.6.6, 198.51.100.23".parse().unwrap());
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let trusted = ClientInfo::from_parts(&h, Some(peer), true);
        assert_eq!(trusted.ip_text(), "198.51.100.23");
        let direct = ClientInfo::from_parts(&h, Some(peer), false);
        assert_eq!(direct.ip_text(), "127.0.0.1");
    }
}
