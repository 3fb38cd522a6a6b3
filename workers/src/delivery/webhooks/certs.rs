//! Amazon SNS signing certificates: a [`CertSource`] gives the PEM at a `SigningCertURL`.
//! [`HttpsCertSource`] is the production one: it refuses any URL that is not
//! `https://sns.<region>.amazonaws.com/….pem` before fetching anything (a message naming a
//! certificate of the attacker's own is the classic forgery), fetches over TLS with the
//! system's roots and no redirects, and caches what it fetched.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::Url;

use super::WebhookError;

/// Where SNS signing certificates come from.
#[async_trait::async_trait]
pub trait CertSource: Send + Sync {
    /// The PEM certificate at `url` (already checked by the caller to be an SNS URL).
    async fn pem(&self, url: &str) -> Result<String, WebhookError>;
}

/// The largest certificate accepted (SNS's are about 2 KiB).
const MAX_PEM_BYTES: usize = 64 * 1024;
/// Certificates kept; SNS rotates its certificate rarely, so a full cache is simply emptied.
const MAX_CACHED: usize = 64;

/// Fetches SNS signing certificates over HTTPS from SNS hosts only, and caches them.
pub struct HttpsCertSource {
    client: reqwest::Client,
    cache: Mutex<HashMap<String, String>>,
}

impl HttpsCertSource {
    pub fn new(timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .https_only(true)
            .build()?;
        Ok(Self {
            client,
            cache: Mutex::new(HashMap::new()),
        })
    }

    fn cached(&self, url: &str) -> Option<String> {
        self.cache.lock().ok()?.get(url).cloned()
    }

    fn remember(&self, url: &str, pem: &str) {
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            cache.insert(url.to_owned(), pem.to_owned());
        }
    }
}

#[async_trait::async_trait]
impl CertSource for HttpsCertSource {
    #[tracing::instrument(skip(self), err)]
    async fn pem(&self, url: &str) -> Result<String, WebhookError> {
        let parsed = signing_cert_url(url)?;
        if let Some(pem) = self.cached(url) {
            return Ok(pem);
        }
        let fail = |e: reqwest::Error| WebhookError::Certificate(format!("fetching {url}: {e}"));
        let mut response = self
            .client
            .get(parsed)
            .send()
            .await
            .map_err(fail)?
            .error_for_status()
            .map_err(fail)?;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(fail)? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_PEM_BYTES {
                return Err(WebhookError::Certificate(format!(
                    "{url} is larger than {MAX_PEM_BYTES} bytes"
                )));
            }
        }
        let pem = String::from_utf8(body)
            .map_err(|_| WebhookError::Certificate(format!("{url} is not text")))?;
        self.remember(url, &pem);
        Ok(pem)
    }
}

/// `url` if it is an HTTPS URL on an Amazon SNS host (`sns.<region>.amazonaws.com`, or
/// `.amazonaws.com.cn` in the China partition): no credentials, no other port.
pub fn sns_https_url(url: &str) -> Result<Url, WebhookError> {
    let untrusted = || WebhookError::UntrustedCertUrl(url.to_owned());
    let parsed = Url::parse(url).map_err(|_| untrusted())?;
    let host = parsed.host_str().unwrap_or_default();
    let region = host
        .strip_prefix("sns.")
        .and_then(|h| {
            h.strip_suffix(".amazonaws.com")
                .or_else(|| h.strip_suffix(".amazonaws.com.cn"))
        })
        .unwrap_or_default();
    let region_ok = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if parsed.scheme() != "https"
        || !region_ok
        || !parsed.username().is_empty()
        || parsed.password().is_some()
        || parsed.port().is_some()
    {
        return Err(untrusted());
    }
    Ok(parsed)
}

/// `url` if it can be an SNS signing certificate: [`sns_https_url`], a `.pem` path, no query.
pub fn signing_cert_url(url: &str) -> Result<Url, WebhookError> {
    let parsed = sns_https_url(url)?;
    if !parsed.path().ends_with(".pem") || parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(WebhookError::UntrustedCertUrl(url.to_owned()));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn only_https_pem_urls_on_sns_hosts_are_trusted() {
        for good in [
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem",
            "https://sns.eu-west-1.amazonaws.com/a.pem",
            "https://sns.cn-north-1.amazonaws.com.cn/a.pem",
        ] {
            assert!(signing_cert_url(good).is_ok(), "{good}");
        }
        for bad in [
            "http://sns.us-east-1.amazonaws.com/a.pem",
            "https://sns.us-east-1.amazonaws.com.evil.test/a.pem",
            "https://evil.test/sns.us-east-1.amazonaws.com/a.pem",
            "https://sns.us-east-1.amazonaws.com@evil.test/a.pem",
            "https://user@sns.us-east-1.amazonaws.com/a.pem",
            "https://sns.us-east-1.amazonaws.com:8443/a.pem",
            "https://sns..amazonaws.com/a.pem",
            "https://s3.amazonaws.com/a.pem",
            "https://sns.us_east.amazonaws.com/a.pem",
            "https://sns.us-east-1.amazonaws.com/a.pem?x=1",
            "https://sns.us-east-1.amazonaws.com/a.txt",
            "not a url",
        ] {
            assert!(
                matches!(
                    signing_cert_url(bad),
                    Err(WebhookError::UntrustedCertUrl(_))
                ),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn the_https_source_refuses_a_foreign_host_without_fetching() {
        let source = HttpsCertSource::new(Duration::from_secs(1)).unwrap();
        // 127.0.0.1 would answer quickly if anything were fetched; the refusal comes first.
        let err = source.pem("https://127.0.0.1/cert.pem").await.unwrap_err();
        assert_eq!(
            err,
            WebhookError::UntrustedCertUrl("https://127.0.0.1/cert.pem".into())
        );
    }

    #[tokio::test]
    async fn the_https_source_serves_a_cached_certificate_without_fetching() {
        let source = HttpsCertSource::new(Duration::from_secs(1)).unwrap();
        let url = "https://sns.us-east-1.amazonaws.com/cached.pem";
        source.remember(url, "PEM");
        assert_eq!(source.pem(url).await.unwrap(), "PEM");
    }
}
