//! Twilio Messaging status callbacks (kind `twilio`): a form post (`MessageSid`,
//! `MessageStatus`, `ErrorCode`, `To`, …) signed in `X-Twilio-Signature`: base64 HMAC-SHA1,
//! keyed with the account's auth token, over the full URL Twilio called (with its query)
//! followed by every POST parameter sorted by name, each name then value, no separators.
//! The URL must be the one Twilio was given, byte for byte ([`Incoming::url`]).
//!
//! Secrets: `auth_token`.
//!
//! | `MessageStatus` | report |
//! |---|---|
//! | `delivered` | `Delivered` |
//! | `undelivered`, `failed` | `Failed { "ErrorCode <code>" }` |
//! | `queued`, `sending`, `sent`, `accepted`, `scheduled`, `read`, `canceled`, … | dropped |
//!
//! Callbacks carry no event time: reports are dated when received (`now`). Twilio sends no
//! timestamp to check either; a replayed callback repeats a report, which changes nothing.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha1::Sha1;

use super::util::{header, secret};
use super::{Incoming, Report, ReportKind, WebhookError};

pub const SIGNATURE_HEADER: &str = "x-twilio-signature";

pub fn verify_and_parse(
    secrets: &Value,
    incoming: &Incoming<'_>,
    now: DateTime<Utc>,
) -> Result<Vec<Report>, WebhookError> {
    let token = secret(secrets, "auth_token")?;
    let signature = header(incoming, SIGNATURE_HEADER)
        .and_then(|s| STANDARD.decode(s.trim()).ok())
        .ok_or(WebhookError::BadSignature)?;
    let mut params: Vec<(String, String)> = form_urlencoded::parse(incoming.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    params.sort();
    let mut mac = Hmac::<Sha1>::new_from_slice(token.as_bytes())
        .map_err(|e| WebhookError::Config(e.to_string()))?;
    mac.update(incoming.url.as_bytes());
    for (name, value) in &params {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac.verify_slice(&signature)
        .map_err(|_| WebhookError::BadSignature)?;

    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let kind = match param("MessageStatus") {
        Some("delivered") => ReportKind::Delivered,
        Some("undelivered" | "failed") => ReportKind::Failed {
            diagnostic: format!("ErrorCode {}", param("ErrorCode").unwrap_or("unknown")),
        },
        Some(_) => return Ok(Vec::new()),
        None => return Err(WebhookError::Malformed("no MessageStatus".into())),
    };
    let sid = param("MessageSid")
        .or(param("SmsSid"))
        .ok_or_else(|| WebhookError::Malformed("no MessageSid".into()))?;
    Ok(vec![Report {
        provider_message_id: sid.to_owned(),
        recipient: param("To").map(str::to_owned),
        kind,
        at: now,
    }])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;
    use crate::delivery::webhooks::test_support::{headers, incoming};

    const TOKEN: &str = "12345";
    const URL: &str = "https://mauntic.example/hooks/twilio/7f0c?org=acme";

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    /// A status callback as Twilio posts it.
    fn callback(status: &str) -> String {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("SmsSid", "SM1f0e8ae6ade43cb3c0ce4525424e404f")
            .append_pair("SmsStatus", status)
            .append_pair("MessageStatus", status)
            .append_pair("To", "+15558675310")
            .append_pair("MessagingServiceSid", "MG1234567890abcdef1234567890abcdef")
            .append_pair("MessageSid", "SM1f0e8ae6ade43cb3c0ce4525424e404f")
            .append_pair("AccountSid", "AC1234567890abcdef1234567890abcdef")
            .append_pair("From", "+15017122661")
            .append_pair("ApiVersion", "2010-04-01")
            .append_pair(
                "ErrorCode",
                if status == "undelivered" { "30003" } else { "" },
            )
            .finish()
    }

    /// Twilio's scheme written out: URL, then name+value of each param sorted by name.
    fn sign(token: &str, url: &str, body: &str) -> String {
        let mut params: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        params.sort();
        let data: String = std::iter::once(url.to_owned())
            .chain(params.into_iter().map(|(k, v)| k + &v))
            .collect();
        let mut mac = Hmac::<Sha1>::new_from_slice(token.as_bytes()).unwrap();
        mac.update(data.as_bytes());
        STANDARD.encode(mac.finalize().into_bytes())
    }

    fn run(url: &str, signature: Option<&str>, body: &str) -> Result<Vec<Report>, WebhookError> {
        let mut pairs = vec![("Content-Type", "application/x-www-form-urlencoded")];
        if let Some(s) = signature {
            pairs.push(("X-Twilio-Signature", s));
        }
        let h = headers(&pairs);
        verify_and_parse(
            &json!({ "auth_token": TOKEN }),
            &incoming(url, &h, body.as_bytes()),
            now(),
        )
    }

    #[test]
    fn twilios_published_example_signature_verifies() {
        // Twilio's documented example: this URL, these params, auth token 12345.
        let body = "CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234&From=%2B12349013030&To=%2B18005551212";
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        // It verifies (no BadSignature); it is a voice request, so it has no MessageStatus.
        assert_eq!(
            run(url, Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ="), body),
            Err(WebhookError::Malformed("no MessageStatus".into()))
        );
        assert_eq!(
            run(url, Some("1/KCTR6DLpKmkAf8muzZqo1nDgQ="), body),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn delivered_and_undelivered_callbacks_are_reported() {
        let body = callback("delivered");
        let reports = run(URL, Some(&sign(TOKEN, URL, &body)), &body).unwrap();
        assert_eq!(
            reports,
            vec![Report {
                provider_message_id: "SM1f0e8ae6ade43cb3c0ce4525424e404f".into(),
                recipient: Some("+15558675310".into()),
                kind: ReportKind::Delivered,
                at: now(),
            }]
        );
        for status in ["undelivered", "failed"] {
            let body = callback(status);
            let reports = run(URL, Some(&sign(TOKEN, URL, &body)), &body).unwrap();
            let code = if status == "undelivered" {
                "30003"
            } else {
                "unknown"
            };
            assert_eq!(
                reports[0].kind,
                ReportKind::Failed {
                    diagnostic: format!("ErrorCode {code}")
                }
            );
        }
    }

    #[test]
    fn a_wrong_token_url_or_tampered_param_is_refused() {
        let body = callback("delivered");
        let good = sign(TOKEN, URL, &body);
        assert_eq!(
            run(URL, Some(&sign("54321", URL, &body)), &body),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            run(
                "https://mauntic.example/hooks/twilio/7f0c?org=other",
                Some(&good),
                &body
            ),
            Err(WebhookError::BadSignature)
        );
        let tampered = body.replace("%2B15558675310", "%2B15558675311");
        assert_eq!(
            run(URL, Some(&good), &tampered),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(run(URL, None, &body), Err(WebhookError::BadSignature));
    }

    #[test]
    fn statuses_we_do_not_act_on_yield_no_report() {
        for status in ["queued", "sending", "sent", "accepted", "read"] {
            let body = callback(status);
            assert_eq!(
                run(URL, Some(&sign(TOKEN, URL, &body)), &body),
                Ok(vec![]),
                "{status}"
            );
        }
    }
}
