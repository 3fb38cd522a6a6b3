//! Mailgun webhooks (kind `mailgun`): a JSON body `{"signature": {timestamp, token,
//! signature}, "event-data": {…}}`. The signature is hex HMAC-SHA256 of `timestamp` followed
//! by `token`, keyed with the domain's webhook signing key; a timestamp more than 5 minutes
//! from now is refused ([`WebhookError::Stale`]). (Remembering tokens to refuse a replay
//! inside the window needs shared state: the route's dedupe of reports covers it.)
//! Mailgun's signature covers the timestamp and token only, not `event-data`: whoever sees one
//! genuine request could, within the window, send other event data with its signature. That is
//! Mailgun's documented scheme; serve the route over HTTPS only.
//!
//! Secrets: `webhook_signing_key`.
//!
//! | `event-data.event` | report |
//! |---|---|
//! | `delivered` | `Delivered` |
//! | `failed` | `Bounced`: `severity` `permanent` → hard, `temporary` → soft; diagnostic from `delivery-status` (`message`, `description`) or `reason` |
//! | `complained` | `Complained` |
//! | `opened`, `clicked` | `Opened`, `Clicked { url }` |
//! | `unsubscribed` | `Unsubscribed` |
//! | `accepted`, `stored`, others | dropped |
//!
//! The message id is `event-data.message.headers.message-id`, without angle brackets (as
//! the send stored it).

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::util::{json_body, required, secret, str_at, unix_seconds};
use super::{Incoming, Report, ReportKind, WebhookError};

/// How far a signed timestamp may be from now.
pub const TOLERANCE_SECS: i64 = 5 * 60;

pub fn verify_and_parse(
    secrets: &Value,
    incoming: &Incoming<'_>,
    now: DateTime<Utc>,
) -> Result<Vec<Report>, WebhookError> {
    let key = secret(secrets, "webhook_signing_key")?;
    let body = json_body(incoming)?;
    let signature = &body["signature"];
    let timestamp = match &signature["timestamp"] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err(WebhookError::BadSignature),
    };
    let token = str_at(signature, &["token"]).ok_or(WebhookError::BadSignature)?;
    let expected = str_at(signature, &["signature"])
        .and_then(|s| hex::decode(s).ok())
        .ok_or(WebhookError::BadSignature)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes())
        .map_err(|e| WebhookError::Config(e.to_string()))?;
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    mac.verify_slice(&expected)
        .map_err(|_| WebhookError::BadSignature)?;
    let signed_at: i64 = timestamp.parse().map_err(|_| WebhookError::BadSignature)?;
    let age_secs = now.timestamp() - signed_at;
    if age_secs.abs() > TOLERANCE_SECS {
        return Err(WebhookError::Stale { age_secs });
    }
    parse_event(&body["event-data"]).map(|r| r.into_iter().collect())
}

fn parse_event(event: &Value) -> Result<Option<Report>, WebhookError> {
    let kind = match required(event, &["event"])? {
        "delivered" => ReportKind::Delivered,
        "failed" => ReportKind::Bounced {
            hard: str_at(event, &["severity"]) == Some("permanent"),
            diagnostic: diagnostic(event),
        },
        "complained" => ReportKind::Complained,
        "opened" => ReportKind::Opened,
        "clicked" => ReportKind::Clicked {
            url: required(event, &["url"])?.to_owned(),
        },
        "unsubscribed" => ReportKind::Unsubscribed,
        _ => return Ok(None),
    };
    let id = required(event, &["message", "headers", "message-id"])?;
    Ok(Some(Report {
        provider_message_id: id
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_owned(),
        recipient: str_at(event, &["recipient"]).map(str::to_owned),
        kind,
        at: unix_seconds(event.get("timestamp").unwrap_or(&Value::Null))?,
    }))
}

fn diagnostic(event: &Value) -> String {
    let status = &event["delivery-status"];
    let code = status
        .get("code")
        .filter(|c| !c.is_null())
        .map(Value::to_string);
    let text = [
        str_at(status, &["message"]),
        str_at(status, &["description"]),
        str_at(event, &["reason"]),
    ]
    .into_iter()
    .flatten()
    .find(|t| !t.is_empty())
    .unwrap_or("no reason given");
    match code {
        Some(code) => format!("{code} {text}"),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;
    use crate::delivery::webhooks::test_support::{headers, incoming};

    const KEY: &str = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0";
    const TOKEN: &str = "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0";
    const TIMESTAMP: i64 = 1_529_006_854;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(TIMESTAMP + 30, 0).unwrap()
    }

    fn signature(key: &str, timestamp: &str, token: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(format!("{timestamp}{token}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// A `failed` event as Mailgun documents it.
    fn failed(severity: &str) -> Value {
        json!({
            "id": "G9Bn5sl1TC6nu79C8C0bwg",
            "timestamp": 1529006854.329574,
            "log-level": "error",
            "event": "failed",
            "severity": severity,
            "reason": "bounce",
            "envelope": {"sender": "bob@sandbox.mailgun.org", "transport": "smtp", "targets": "alice@example.com"},
            "flags": {"is-routed": false, "is-authenticated": true, "is-system-test": false, "is-test-mode": false},
            "delivery-status": {
                "attempt-no": 1,
                "message": "",
                "code": 550,
                "description": "5.1.1 The email account that you tried to reach does not exist.",
                "session-seconds": 0.0
            },
            "message": {
                "headers": {
                    "to": "Alice <alice@example.com>",
                    "message-id": "20130503182626.18666.16540@sandbox.mailgun.org",
                    "from": "Bob <bob@sandbox.mailgun.org>",
                    "subject": "Test permanent_fail webhook"
                },
                "attachments": [],
                "size": 111
            },
            "recipient": "alice@example.com",
            "recipient-domain": "example.com",
            "campaigns": [],
            "tags": ["my_tag_1", "my_tag_2"],
            "user-variables": {"job_id": "0193a1b2-0000-7000-8000-000000000000"}
        })
    }

    fn body(event: Value, key: &str, timestamp: i64) -> Vec<u8> {
        let ts = timestamp.to_string();
        serde_json::to_vec(&json!({
            "signature": {"timestamp": ts, "token": TOKEN, "signature": signature(key, &ts, TOKEN)},
            "event-data": event
        }))
        .unwrap()
    }

    fn run(body: &[u8], now: DateTime<Utc>) -> Result<Vec<Report>, WebhookError> {
        let h = headers(&[("Content-Type", "application/json")]);
        let secrets = json!({ "webhook_signing_key": KEY });
        verify_and_parse(
            &secrets,
            &incoming("https://hooks.example/mailgun", &h, body),
            now,
        )
    }

    #[test]
    fn a_signed_permanent_failure_is_a_hard_bounce_and_a_temporary_one_soft() {
        let reports = run(&body(failed("permanent"), KEY, TIMESTAMP), now()).unwrap();
        assert_eq!(
            reports,
            vec![Report {
                provider_message_id: "20130503182626.18666.16540@sandbox.mailgun.org".into(),
                recipient: Some("alice@example.com".into()),
                kind: ReportKind::Bounced {
                    hard: true,
                    diagnostic:
                        "550 5.1.1 The email account that you tried to reach does not exist.".into()
                },
                at: DateTime::from_timestamp(1_529_006_854, 329_574_000).unwrap(),
            }]
        );
        let reports = run(&body(failed("temporary"), KEY, TIMESTAMP), now()).unwrap();
        assert!(matches!(
            reports[0].kind,
            ReportKind::Bounced { hard: false, .. }
        ));
    }

    #[test]
    fn delivered_opened_clicked_complained_and_unsubscribed_are_reported() {
        for (event, kind) in [
            ("delivered", ReportKind::Delivered),
            ("opened", ReportKind::Opened),
            (
                "clicked",
                ReportKind::Clicked {
                    url: "https://example.com/offer".into(),
                },
            ),
            ("complained", ReportKind::Complained),
            ("unsubscribed", ReportKind::Unsubscribed),
        ] {
            let mut e = failed("permanent");
            e["event"] = json!(event);
            e["url"] = json!("https://example.com/offer");
            let reports = run(&body(e, KEY, TIMESTAMP), now()).unwrap();
            assert_eq!(reports.len(), 1, "{event}");
            assert_eq!(reports[0].kind, kind);
        }
    }

    #[test]
    fn a_wrong_key_or_a_tampered_signature_is_refused() {
        assert_eq!(
            run(&body(failed("permanent"), "key-another", TIMESTAMP), now()),
            Err(WebhookError::BadSignature)
        );
        let good = String::from_utf8(body(failed("permanent"), KEY, TIMESTAMP)).unwrap();
        let tampered = good.replace(TOKEN, "b8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0");
        assert_eq!(
            run(tampered.as_bytes(), now()),
            Err(WebhookError::BadSignature)
        );
        let unsigned = serde_json::to_vec(&json!({"event-data": failed("permanent")})).unwrap();
        assert_eq!(run(&unsigned, now()), Err(WebhookError::BadSignature));
    }

    #[test]
    fn a_replayed_request_older_than_five_minutes_is_refused() {
        let old = body(failed("permanent"), KEY, TIMESTAMP);
        let later = DateTime::from_timestamp(TIMESTAMP + TOLERANCE_SECS + 1, 0).unwrap();
        assert_eq!(
            run(&old, later),
            Err(WebhookError::Stale {
                age_secs: TOLERANCE_SECS + 1
            })
        );
        // At the edge of the window it still passes.
        let edge = DateTime::from_timestamp(TIMESTAMP + TOLERANCE_SECS, 0).unwrap();
        assert!(run(&old, edge).is_ok());
    }

    #[test]
    fn an_event_we_ignore_yields_no_report() {
        let mut e = failed("permanent");
        e["event"] = json!("accepted");
        assert_eq!(run(&body(e, KEY, TIMESTAMP), now()), Ok(vec![]));
    }
}
