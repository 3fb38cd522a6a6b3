//! AWS Signature Version 4 (`AWS4-HMAC-SHA256`), as documented in "Create a signed AWS API
//! request": canonical request → string to sign → signing key derived from the date, region
//! and service → signature. Tested against AWS's published example; the SES fake in the tests
//! verifies requests with the same functions.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// What is signed of a request. `path` and `query` are given as sent (already URI-encoded);
/// `headers` are the signed ones, names in any case.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: Vec<(String, String)>,
    pub payload: &'a [u8],
}

/// The credential scope: `date` is `YYYYMMDD`, the day of `amz_date`.
#[derive(Debug, Clone)]
pub struct Scope<'a> {
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

impl Scope<'_> {
    pub fn render(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The canonical request and its `SignedHeaders` list.
pub fn canonical_request(request: &Request<'_>) -> (String, String) {
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), collapse(v)))
        .collect();
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let signed: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    let signed = signed.join(";");
    let mut query: Vec<&str> = request.query.split('&').filter(|p| !p.is_empty()).collect();
    query.sort_unstable();
    let query: Vec<String> = query
        .iter()
        .map(|p| match p.split_once('=') {
            Some(_) => (*p).to_owned(),
            None => format!("{p}="),
        })
        .collect();
    let path = if request.path.is_empty() {
        "/"
    } else {
        request.path
    };
    let canonical = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        request.method,
        path,
        query.join("&"),
        canonical_headers,
        signed,
        sha256_hex(request.payload)
    );
    (canonical, signed)
}

/// `AWS4-HMAC-SHA256\n<amz date>\n<scope>\n<hash of the canonical request>`.
pub fn string_to_sign(amz_date: &str, scope: &Scope<'_>, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{}\n{}",
        scope.render(),
        sha256_hex(canonical_request.as_bytes())
    )
}

/// `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
pub fn signing_key(secret_access_key: &str, scope: &Scope<'_>) -> [u8; 32] {
    let key = hmac(format!("AWS4{secret_access_key}").as_bytes(), scope.date);
    let key = hmac(&key, scope.region);
    let key = hmac(&key, scope.service);
    hmac(&key, "aws4_request")
}

/// The hex signature of `request` at `amz_date` (`YYYYMMDDTHHMMSSZ`).
pub fn signature(
    secret_access_key: &str,
    amz_date: &str,
    scope: &Scope<'_>,
    request: &Request<'_>,
) -> String {
    let (canonical, _) = canonical_request(request);
    let to_sign = string_to_sign(amz_date, scope, &canonical);
    hex::encode(hmac(&signing_key(secret_access_key, scope), &to_sign))
}

/// The `Authorization` header's value.
pub fn authorization(
    access_key_id: &str,
    secret_access_key: &str,
    amz_date: &str,
    scope: &Scope<'_>,
    request: &Request<'_>,
) -> String {
    let (_, signed) = canonical_request(request);
    let signature = signature(secret_access_key, amz_date, scope, request);
    format!(
        "{ALGORITHM} Credential={access_key_id}/{}, SignedHeaders={signed}, Signature={signature}",
        scope.render()
    )
}

fn hmac(key: &[u8], data: &str) -> [u8; 32] {
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return [0; 32];
    };
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().into()
}

/// Header values are trimmed and runs of spaces collapse to one.
fn collapse(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    /// The worked example of AWS's SigV4 documentation (IAM `ListUsers`, 2015-08-30).
    #[test]
    fn the_published_iam_example_signs_to_the_published_signature() {
        let scope = Scope {
            date: "20150830",
            region: "us-east-1",
            service: "iam",
        };
        let request = Request {
            method: "GET",
            path: "/",
            query: "Action=ListUsers&Version=2010-05-08",
            headers: vec![
                (
                    "Content-Type".into(),
                    "application/x-www-form-urlencoded; charset=utf-8".into(),
                ),
                ("Host".into(), "iam.amazonaws.com".into()),
                ("X-Amz-Date".into(), "20150830T123600Z".into()),
            ],
            payload: b"",
        };
        let (canonical, signed) = canonical_request(&request);
        assert_eq!(signed, "content-type;host;x-amz-date");
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
        assert_eq!(
            hex::encode(signing_key(SECRET, &scope)),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
        assert_eq!(
            signature(SECRET, "20150830T123600Z", &scope, &request),
            "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
    }

    /// `get-vanilla` from AWS's SigV4 test suite.
    #[test]
    fn the_get_vanilla_suite_case_signs_to_its_authorization() {
        let scope = Scope {
            date: "20150830",
            region: "us-east-1",
            service: "service",
        };
        let request = Request {
            method: "GET",
            path: "/",
            query: "",
            headers: vec![
                ("Host".into(), "example.amazonaws.com".into()),
                ("X-Amz-Date".into(), "20150830T123600Z".into()),
            ],
            payload: b"",
        };
        assert_eq!(
            authorization("AKIDEXAMPLE", SECRET, "20150830T123600Z", &scope, &request),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }
}
