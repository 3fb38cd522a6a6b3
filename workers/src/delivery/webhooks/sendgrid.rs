//! SendGrid's signed Event Webhook (kind `sendgrid`): a JSON array of events, signed with
//! ECDSA P-256 / SHA-256 over `X-Twilio-Email-Event-Webhook-Timestamp` followed by the raw
//! body; the signature (base64 DER) is in `X-Twilio-Email-Event-Webhook-Signature`.
//!
//! Secrets: `webhook_public_key` — the verification key SendGrid shows in its mail settings
//! (base64 DER SubjectPublicKeyInfo; a PEM block is taken too).
//!
//! | event | report |
//! |---|---|
//! | `delivered` | `Delivered` |
//! | `bounce` | `Bounced`: `type` `bounce` (or none) → hard, `blocked` → soft; diagnostic `reason` |
//! | `dropped` | `Failed { reason }` (SendGrid never sent it: suppressed, invalid, …) |
//! | `spamreport` | `Complained` |
//! | `open`, `click` | `Opened`, `Clicked { url }` |
//! | `unsubscribe`, `group_unsubscribe` | `Unsubscribed` |
//! | `processed`, `deferred`, `group_resubscribe`, others | dropped |
//!
//! **Message id:** events carry `sg_message_id`, e.g. `14c5d75ce93.dfd.64b469.filter0001…`:
//! SendGrid appends its own suffixes to the `X-Message-Id` it answered at send, which is what
//! we stored; the id is the part before the first `.`.
//!
//! SendGrid documents no freshness window for the timestamp, and retries for up to 72 hours,
//! so none is enforced: a replayed batch must change nothing (reports are idempotent).
//! An event without `sg_message_id` (it cannot be matched) is skipped with a warning rather
//! than refusing the whole batch, which SendGrid would retry forever.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde_json::Value;

use super::util::{header, json_body, secret, str_at, unix_seconds};
use super::{Incoming, Report, ReportKind, WebhookError};

pub const SIGNATURE_HEADER: &str = "x-twilio-email-event-webhook-signature";
pub const TIMESTAMP_HEADER: &str = "x-twilio-email-event-webhook-timestamp";

pub fn verify_and_parse(
    secrets: &Value,
    incoming: &Incoming<'_>,
) -> Result<Vec<Report>, WebhookError> {
    let key = public_key(secret(secrets, "webhook_public_key")?)?;
    let signature = header(incoming, SIGNATURE_HEADER).ok_or(WebhookError::BadSignature)?;
    let timestamp = header(incoming, TIMESTAMP_HEADER).ok_or(WebhookError::BadSignature)?;
    let signature = STANDARD
        .decode(signature.trim())
        .ok()
        .and_then(|der| Signature::from_der(&der).ok())
        .ok_or(WebhookError::BadSignature)?;
    // Signers other than ours may produce a high-S signature; both forms are valid ECDSA.
    let signature = signature.normalize_s().unwrap_or(signature);
    let mut signed = Vec::with_capacity(timestamp.len() + incoming.body.len());
    signed.extend_from_slice(timestamp.as_bytes());
    signed.extend_from_slice(incoming.body);
    key.verify(&signed, &signature)
        .map_err(|_| WebhookError::BadSignature)?;

    let events = json_body(incoming)?;
    let events = events
        .as_array()
        .ok_or_else(|| WebhookError::Malformed("SendGrid events are not a JSON array".into()))?;
    let mut reports = Vec::new();
    for event in events {
        if let Some(report) = parse_event(event)? {
            reports.push(report);
        }
    }
    Ok(reports)
}

/// The verification key: base64 DER SubjectPublicKeyInfo, with or without PEM armour.
fn public_key(text: &str) -> Result<VerifyingKey, WebhookError> {
    let base64: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .flat_map(|l| l.trim().chars())
        .collect();
    STANDARD
        .decode(base64)
        .ok()
        .and_then(|der| VerifyingKey::from_public_key_der(&der).ok())
        .ok_or_else(|| {
            WebhookError::Config("`webhook_public_key` is not a base64 P-256 public key".into())
        })
}

fn parse_event(event: &Value) -> Result<Option<Report>, WebhookError> {
    let name = str_at(event, &["event"]).unwrap_or_default();
    let kind = match name {
        "delivered" => ReportKind::Delivered,
        "bounce" => ReportKind::Bounced {
            hard: str_at(event, &["type"]) != Some("blocked"),
            diagnostic: diagnostic(event),
        },
        "dropped" => ReportKind::Failed {
            diagnostic: diagnostic(event),
        },
        "spamreport" => ReportKind::Complained,
        "open" => ReportKind::Opened,
        "click" => ReportKind::Clicked {
            url: str_at(event, &["url"]).unwrap_or_default().to_owned(),
        },
        "unsubscribe" | "group_unsubscribe" => ReportKind::Unsubscribed,
        _ => return Ok(None),
    };
    let Some(id) = str_at(event, &["sg_message_id"]).and_then(|id| id.split('.').next()) else {
        tracing::warn!(event = name, "SendGrid event without sg_message_id skipped");
        return Ok(None);
    };
    let at = unix_seconds(event.get("timestamp").unwrap_or(&Value::Null))?;
    Ok(Some(Report {
        provider_message_id: id.to_owned(),
        recipient: str_at(event, &["email"]).map(str::to_owned),
        kind,
        at,
    }))
}

/// `reason`, with the SMTP `status` when SendGrid gives one.
fn diagnostic(event: &Value) -> String {
    let reason = str_at(event, &["reason"]).unwrap_or("no reason given");
    match str_at(event, &["status"]) {
        Some(status) if !reason.contains(status) => format!("{status} {reason}"),
        _ => reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use p256::ecdsa::signature::Signer;
    use p256::ecdsa::SigningKey;
    use p256::pkcs8::EncodePublicKey;
    use serde_json::json;

    use super::*;
    use crate::delivery::webhooks::test_support::{headers, incoming};

    const TIMESTAMP: &str = "1600112502";
    const SG_ID: &str = "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.000000000000000000000";

    /// Events as SendGrid documents them (one of each kind).
    fn events() -> String {
        let base = |event: &str| {
            json!({
                "email": "example@test.com",
                "timestamp": 1513299569,
                "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
                "event": event,
                "category": "cat facts",
                "sg_event_id": "sg_event_id",
                "sg_message_id": SG_ID
            })
        };
        let mut bounce = base("bounce");
        bounce["reason"] = json!("500 unknown recipient");
        bounce["status"] = json!("5.0.0");
        bounce["type"] = json!("bounce");
        let mut blocked = base("bounce");
        blocked["reason"] = json!("550 5.7.1 blocked by policy");
        blocked["status"] = json!("5.7.1");
        blocked["type"] = json!("blocked");
        let mut dropped = base("dropped");
        dropped["reason"] = json!("Bounced Address");
        dropped["status"] = json!("5.0.0");
        let mut click = base("click");
        click["url"] = json!("http://www.sendgrid.com/");
        let mut deferred = base("deferred");
        deferred["response"] = json!("400 try again later");
        serde_json::to_string(&json!([
            base("processed"),
            deferred,
            base("delivered"),
            base("open"),
            click,
            bounce,
            blocked,
            dropped,
            base("spamreport"),
            base("unsubscribe"),
            base("group_unsubscribe"),
            base("group_resubscribe"),
        ]))
        .unwrap()
    }

    fn key() -> (SigningKey, String) {
        let signing = SigningKey::random(&mut rand::rngs::OsRng);
        let public = p256::PublicKey::from(signing.verifying_key())
            .to_public_key_der()
            .unwrap();
        (signing, STANDARD.encode(public.as_bytes()))
    }

    fn sign(key: &SigningKey, timestamp: &str, body: &str) -> String {
        let signature: Signature = key.sign(format!("{timestamp}{body}").as_bytes());
        STANDARD.encode(signature.to_der().as_bytes())
    }

    fn run(
        public: &str,
        signature: &str,
        timestamp: &str,
        body: &str,
    ) -> Result<Vec<Report>, WebhookError> {
        let h = headers(&[
            ("Content-Type", "application/json"),
            ("X-Twilio-Email-Event-Webhook-Signature", signature),
            ("X-Twilio-Email-Event-Webhook-Timestamp", timestamp),
        ]);
        let secrets = json!({ "webhook_public_key": public });
        verify_and_parse(
            &secrets,
            &incoming("https://hooks.example/sendgrid", &h, body.as_bytes()),
        )
    }

    #[test]
    fn a_signed_batch_becomes_reports_of_the_kinds_we_act_on() {
        let (signing, public) = key();
        let body = events();
        let reports = run(&public, &sign(&signing, TIMESTAMP, &body), TIMESTAMP, &body).unwrap();
        let kinds: Vec<ReportKind> = reports.iter().map(|r| r.kind.clone()).collect();
        assert_eq!(
            kinds,
            vec![
                ReportKind::Delivered,
                ReportKind::Opened,
                ReportKind::Clicked {
                    url: "http://www.sendgrid.com/".into()
                },
                ReportKind::Bounced {
                    hard: true,
                    diagnostic: "5.0.0 500 unknown recipient".into()
                },
                ReportKind::Bounced {
                    hard: false,
                    diagnostic: "550 5.7.1 blocked by policy".into()
                },
                ReportKind::Failed {
                    diagnostic: "5.0.0 Bounced Address".into()
                },
                ReportKind::Complained,
                ReportKind::Unsubscribed,
                ReportKind::Unsubscribed,
            ]
        );
        for r in &reports {
            assert_eq!(r.provider_message_id, "14c5d75ce93");
            assert_eq!(r.recipient.as_deref(), Some("example@test.com"));
            assert_eq!(r.at.timestamp(), 1513299569);
        }
    }

    #[test]
    fn the_key_is_also_taken_as_pem() {
        let (signing, public) = key();
        let pem = format!("-----BEGIN PUBLIC KEY-----\n{public}\n-----END PUBLIC KEY-----\n");
        let body = events();
        assert!(run(&pem, &sign(&signing, TIMESTAMP, &body), TIMESTAMP, &body).is_ok());
    }

    #[test]
    fn a_tampered_body_timestamp_or_another_key_is_refused() {
        let (signing, public) = key();
        let body = events();
        let signature = sign(&signing, TIMESTAMP, &body);
        let tampered = body.replacen("delivered", "spamreport", 1);
        assert_eq!(
            run(&public, &signature, TIMESTAMP, &tampered),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            run(&public, &signature, "1600112503", &body),
            Err(WebhookError::BadSignature)
        );
        let (_, other_public) = key();
        assert_eq!(
            run(&other_public, &signature, TIMESTAMP, &body),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            run(&public, "not base64!", TIMESTAMP, &body),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn a_request_without_signature_headers_is_refused() {
        let (_, public) = key();
        let h = headers(&[("Content-Type", "application/json")]);
        let secrets = json!({ "webhook_public_key": public });
        let body = events();
        assert_eq!(
            verify_and_parse(
                &secrets,
                &incoming("https://hooks.example/sendgrid", &h, body.as_bytes())
            ),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn a_missing_or_unusable_key_is_a_configuration_error() {
        let h = headers(&[]);
        let req = incoming("https://hooks.example/sendgrid", &h, b"[]");
        assert!(matches!(
            verify_and_parse(&json!({}), &req),
            Err(WebhookError::Config(_))
        ));
        assert!(matches!(
            verify_and_parse(&json!({"webhook_public_key": "bm90IGEga2V5"}), &req),
            Err(WebhookError::Config(_))
        ));
    }

    #[test]
    fn a_batch_of_events_we_ignore_yields_no_report() {
        let (signing, public) = key();
        let body = json!([
            {"email": "a@test.com", "timestamp": 1513299569, "event": "processed", "sg_message_id": SG_ID},
            {"email": "a@test.com", "timestamp": 1513299569, "event": "deferred", "sg_message_id": SG_ID, "response": "400 try again later", "attempt": "5"}
        ])
        .to_string();
        assert_eq!(
            run(&public, &sign(&signing, TIMESTAMP, &body), TIMESTAMP, &body),
            Ok(vec![])
        );
    }
}
