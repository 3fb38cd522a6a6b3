//! Postmark webhooks (kind `postmark`). Postmark does not sign webhooks; it sends the HTTP
//! Basic credentials given in the webhook URL (`https://user:password@host/…`), checked here
//! in constant time. A configuration without credentials is refused: an unauthenticated
//! webhook would let anyone bounce or unsubscribe our recipients.
//!
//! Secrets: `webhook_username`, `webhook_password`.
//!
//! | `RecordType` | report |
//! |---|---|
//! | `Delivery` | `Delivered` (`Recipient`, `DeliveredAt`) |
//! | `Bounce` | `Bounced` (`Email`, `BouncedAt`): `Type` `HardBounce` or `BadEmailAddress` → hard, other types soft, `AutoResponder` dropped (an out-of-office is no failure); diagnostic `Details`, else `Description` |
//! | `SpamComplaint` | `Complained` (`Email`, `BouncedAt`) |
//! | `Open`, `Click` | `Opened`, `Clicked { OriginalLink }` (`Recipient`, `ReceivedAt`) |
//! | `SubscriptionChange` | `Unsubscribed` when `SuppressSending` with reason `ManualSuppression` (the recipient unsubscribed); others dropped (bounce and complaint suppressions arrive as their own records, reactivations are not acted on) |
//!
//! The message id is `MessageID`, as Postmark answered at send.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;
use subtle::ConstantTimeEq;

use super::util::{header, json_body, required, rfc3339, secret, str_at};
use super::{Incoming, Report, ReportKind, WebhookError};

pub fn verify_and_parse(
    secrets: &Value,
    incoming: &Incoming<'_>,
) -> Result<Vec<Report>, WebhookError> {
    let expected = format!(
        "{}:{}",
        secret(secrets, "webhook_username")?,
        secret(secrets, "webhook_password")?
    );
    let given = header(incoming, "authorization")
        .and_then(|h| h.strip_prefix("Basic ").or(h.strip_prefix("basic ")))
        .and_then(|b64| STANDARD.decode(b64.trim()).ok())
        .ok_or(WebhookError::BadSignature)?;
    if !bool::from(given.as_slice().ct_eq(expected.as_bytes())) {
        return Err(WebhookError::BadSignature);
    }
    let record = json_body(incoming)?;
    parse_record(&record).map(|r| r.into_iter().collect())
}

fn parse_record(r: &Value) -> Result<Option<Report>, WebhookError> {
    let (kind, recipient, at) = match required(r, &["RecordType"])? {
        "Delivery" => (ReportKind::Delivered, "Recipient", "DeliveredAt"),
        "Bounce" => {
            let bounce_type = str_at(r, &["Type"]).unwrap_or_default();
            if bounce_type == "AutoResponder" {
                return Ok(None);
            }
            let diagnostic = [str_at(r, &["Details"]), str_at(r, &["Description"])]
                .into_iter()
                .flatten()
                .find(|t| !t.is_empty())
                .unwrap_or(bounce_type)
                .to_owned();
            let hard = matches!(bounce_type, "HardBounce" | "BadEmailAddress");
            (
                ReportKind::Bounced { hard, diagnostic },
                "Email",
                "BouncedAt",
            )
        }
        "SpamComplaint" => (ReportKind::Complained, "Email", "BouncedAt"),
        "Open" => (ReportKind::Opened, "Recipient", "ReceivedAt"),
        "Click" => (
            ReportKind::Clicked {
                url: required(r, &["OriginalLink"])?.to_owned(),
            },
            "Recipient",
            "ReceivedAt",
        ),
        "SubscriptionChange" => {
            let suppressed = r["SuppressSending"].as_bool() == Some(true);
            if !suppressed || str_at(r, &["SuppressionReason"]) != Some("ManualSuppression") {
                return Ok(None);
            }
            (ReportKind::Unsubscribed, "Recipient", "ChangedAt")
        }
        _ => return Ok(None),
    };
    Ok(Some(Report {
        provider_message_id: required(r, &["MessageID"])?.to_owned(),
        recipient: str_at(r, &[recipient]).map(str::to_owned),
        kind,
        at: rfc3339(required(r, &[at])?)?,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;
    use crate::delivery::webhooks::test_support::{headers, incoming};

    fn secrets() -> Value {
        json!({"webhook_username": "postmark", "webhook_password": "s3cr3t-pa55"})
    }

    fn basic(user: &str, password: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
    }

    fn run(authorization: Option<&str>, record: &Value) -> Result<Vec<Report>, WebhookError> {
        let mut pairs = vec![("Content-Type", "application/json")];
        if let Some(a) = authorization {
            pairs.push(("Authorization", a));
        }
        let h = headers(&pairs);
        let body = serde_json::to_vec(record).unwrap();
        verify_and_parse(
            &secrets(),
            &incoming("https://hooks.example/postmark", &h, &body),
        )
    }

    /// A bounce record as Postmark documents it.
    fn bounce() -> Value {
        json!({
            "RecordType": "Bounce",
            "MessageStream": "outbound",
            "ID": 4323372036854775807_u64,
            "Type": "HardBounce",
            "TypeCode": 1,
            "Name": "Hard bounce",
            "Tag": "Test",
            "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
            "Metadata": {"a_key": "a_value", "b_key": "b_value"},
            "ServerID": 23,
            "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
            "Details": "Test bounce details",
            "Email": "john@example.com",
            "From": "sender@example.com",
            "BouncedAt": "2019-11-05T16:33:54.9070259Z",
            "DumpAvailable": true,
            "Inactive": true,
            "CanActivate": true,
            "Subject": "Test subject",
            "Content": "<Full dump of bounce>"
        })
    }

    #[test]
    fn an_authenticated_hard_bounce_is_reported_hard() {
        let reports = run(Some(&basic("postmark", "s3cr3t-pa55")), &bounce()).unwrap();
        assert_eq!(
            reports,
            vec![Report {
                provider_message_id: "883953f4-6105-42a2-a16a-77a8eac79483".into(),
                recipient: Some("john@example.com".into()),
                kind: ReportKind::Bounced {
                    hard: true,
                    diagnostic: "Test bounce details".into()
                },
                at: rfc3339("2019-11-05T16:33:54.9070259Z").unwrap(),
            }]
        );
        let mut soft = bounce();
        soft["Type"] = json!("SoftBounce");
        soft["Details"] = json!("");
        let reports = run(Some(&basic("postmark", "s3cr3t-pa55")), &soft).unwrap();
        assert!(matches!(
            &reports[0].kind,
            ReportKind::Bounced { hard: false, diagnostic } if diagnostic.starts_with("The server was unable")
        ));
    }

    #[test]
    fn deliveries_complaints_opens_clicks_and_unsubscribes_are_reported() {
        let auth = basic("postmark", "s3cr3t-pa55");
        let records = [
            (
                json!({"RecordType": "Delivery", "ServerID": 23, "MessageStream": "outbound",
                    "MessageID": "00000000-0000-0000-0000-000000000000", "Recipient": "john@example.com",
                    "Tag": "welcome-email", "DeliveredAt": "2019-11-05T16:33:54.9070259Z",
                    "Details": "Test delivery webhook details", "Metadata": {}}),
                ReportKind::Delivered,
            ),
            (
                json!({"RecordType": "SpamComplaint", "MessageStream": "outbound", "ID": 42, "Type": "SpamComplaint",
                    "TypeCode": 512, "Name": "Spam complaint", "MessageID": "00000000-0000-0000-0000-000000000000",
                    "Email": "john@example.com", "BouncedAt": "2019-11-05T16:33:54.9070259Z"}),
                ReportKind::Complained,
            ),
            (
                json!({"RecordType": "Open", "MessageStream": "outbound", "FirstOpen": true, "Client": {"Name": "Chrome 35.0.1916.153"},
                    "MessageID": "00000000-0000-0000-0000-000000000000", "ReceivedAt": "2019-11-05T16:33:54.9070259Z",
                    "Recipient": "john@example.com"}),
                ReportKind::Opened,
            ),
            (
                json!({"RecordType": "Click", "MessageStream": "outbound", "ClickLocation": "HTML",
                    "OriginalLink": "https://example.com", "MessageID": "00000000-0000-0000-0000-000000000000",
                    "ReceivedAt": "2019-11-05T16:33:54.9070259Z", "Recipient": "john@example.com"}),
                ReportKind::Clicked {
                    url: "https://example.com".into(),
                },
            ),
            (
                json!({"RecordType": "SubscriptionChange", "MessageID": "00000000-0000-0000-0000-000000000000",
                    "ServerID": 23, "MessageStream": "outbound", "ChangedAt": "2020-02-01T10:53:34.416071Z",
                    "Recipient": "john@example.com", "Origin": "Recipient", "SuppressSending": true,
                    "SuppressionReason": "ManualSuppression", "Tag": "my-tag", "Metadata": {}}),
                ReportKind::Unsubscribed,
            ),
        ];
        for (record, kind) in records {
            let reports = run(Some(&auth), &record).unwrap();
            assert_eq!(reports.len(), 1, "{record}");
            assert_eq!(reports[0].kind, kind);
            assert_eq!(reports[0].recipient.as_deref(), Some("john@example.com"));
        }
    }

    #[test]
    fn records_we_do_not_act_on_yield_no_report() {
        let auth = basic("postmark", "s3cr3t-pa55");
        let bounce_suppression = json!({"RecordType": "SubscriptionChange", "MessageID": "x",
            "ChangedAt": "2020-02-01T10:53:34.416071Z", "Recipient": "john@example.com",
            "SuppressSending": true, "SuppressionReason": "HardBounce"});
        let reactivation = json!({"RecordType": "SubscriptionChange", "MessageID": "x",
            "ChangedAt": "2020-02-01T10:53:34.416071Z", "Recipient": "john@example.com",
            "SuppressSending": false, "SuppressionReason": null});
        let mut autoresponder = bounce();
        autoresponder["Type"] = json!("AutoResponder");
        for record in [bounce_suppression, reactivation, autoresponder] {
            assert_eq!(run(Some(&auth), &record), Ok(vec![]), "{record}");
        }
    }

    #[test]
    fn wrong_or_missing_credentials_are_refused() {
        for auth in [
            None,
            Some(basic("postmark", "guess")),
            Some(basic("someone", "s3cr3t-pa55")),
            Some(basic("postmark", "s3cr3t-pa55x")),
            Some("Bearer s3cr3t-pa55".to_owned()),
        ] {
            assert_eq!(
                run(auth.as_deref(), &bounce()),
                Err(WebhookError::BadSignature),
                "{auth:?}"
            );
        }
    }

    #[test]
    fn a_configuration_without_credentials_is_refused() {
        let h = headers(&[("Authorization", &basic("", ""))]);
        let body = serde_json::to_vec(&bounce()).unwrap();
        assert!(matches!(
            verify_and_parse(
                &json!({}),
                &incoming("https://hooks.example/postmark", &h, &body)
            ),
            Err(WebhookError::Config(_))
        ));
    }
}
