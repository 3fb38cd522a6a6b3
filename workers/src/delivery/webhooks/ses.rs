//! Amazon SES reports through an SNS topic (kind `ses`): the SNS envelope is verified
//! ([`sns`](super::sns)), then its `Message` is SES's JSON — a feedback notification
//! (`notificationType`) or a configuration-set event (`eventType`; same objects, plus opens,
//! clicks and rejects). The provider message id is `mail.messageId`, the `MessageId` SES
//! answered at send.
//!
//! | SES type | report |
//! |---|---|
//! | `Delivery` | `Delivered`, one per `delivery.recipients[]` |
//! | `Bounce` | `Bounced`, one per `bounce.bouncedRecipients[]`; `bounceType` `Permanent` → hard, `Transient` and `Undetermined` → soft; diagnostic: the recipient's `diagnosticCode`, else `bounceType/bounceSubType` |
//! | `Complaint` | `Complained`, one per `complaint.complainedRecipients[]` |
//! | `Open`, `Click` | `Opened`, `Clicked { click.link }` |
//! | `Reject` | `Failed { reject.reason }` (SES refused to send it, e.g. a virus) |
//! | `Send`, `DeliveryDelay`, `Rendering Failure`, `Subscription`, SNS's `AmazonSnsSubscriptionSucceeded` | dropped |
//!
//! Secrets: `sns_topic_arn` (optional) — when set, messages of any other topic are refused.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::certs::sns_https_url;
use super::util::{required, rfc3339, str_at};
use super::{sns, CertSource, Incoming, Report, ReportKind, WebhookError};

pub async fn verify_and_parse(
    secrets: &Value,
    incoming: &Incoming<'_>,
    certs: &dyn CertSource,
    now: DateTime<Utc>,
) -> Result<Vec<Report>, WebhookError> {
    let topic = secrets
        .get("sns_topic_arn")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty());
    let envelope = sns::verify(incoming, certs, topic, now).await?;
    match envelope.kind.as_str() {
        "SubscriptionConfirmation" => {
            let subscribe_url = envelope.subscribe_url.unwrap_or_default();
            sns_https_url(&subscribe_url).map_err(|_| {
                WebhookError::Malformed(format!("SubscribeURL {subscribe_url:?} is not on SNS"))
            })?;
            Err(WebhookError::SubscriptionConfirmation {
                topic_arn: envelope.topic_arn,
                subscribe_url,
            })
        }
        "UnsubscribeConfirmation" => Ok(Vec::new()),
        _ => parse_event(&envelope.message),
    }
}

/// The reports of one SES notification or event (the SNS `Message`).
pub fn parse_event(message: &str) -> Result<Vec<Report>, WebhookError> {
    let event: Value = serde_json::from_str(message)
        .map_err(|e| WebhookError::Malformed(format!("SES message is not JSON: {e}")))?;
    let Some(kind) = str_at(&event, &["eventType"]).or(str_at(&event, &["notificationType"]))
    else {
        return Err(WebhookError::Malformed(
            "SES message without eventType or notificationType".into(),
        ));
    };
    let section = match kind {
        "Delivery" => "delivery",
        "Bounce" => "bounce",
        "Complaint" => "complaint",
        "Open" => "open",
        "Click" => "click",
        "Reject" => "reject",
        _ => return Ok(Vec::new()),
    };
    let message_id = required(&event, &["mail", "messageId"])?;
    let body = &event[section];
    let at = match str_at(body, &["timestamp"]).or(str_at(&event, &["mail", "timestamp"])) {
        Some(t) => rfc3339(t)?,
        None => {
            return Err(WebhookError::Malformed(format!(
                "SES {kind} without a time"
            )))
        }
    };
    let report = |recipient: Option<&str>, kind: ReportKind| Report {
        provider_message_id: message_id.to_owned(),
        recipient: recipient.map(str::to_owned),
        kind,
        at,
    };
    let array = |key: &str| {
        body.get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    Ok(match kind {
        "Delivery" => per_recipient(array("recipients").iter().filter_map(Value::as_str), |r| {
            report(r, ReportKind::Delivered)
        }),
        "Bounce" => {
            let bounce_type = str_at(body, &["bounceType"]).unwrap_or("Undetermined");
            let sub_type = str_at(body, &["bounceSubType"]).unwrap_or("Undetermined");
            let hard = bounce_type == "Permanent";
            array("bouncedRecipients")
                .iter()
                .map(|r| {
                    let diagnostic = str_at(r, &["diagnosticCode"])
                        .map_or_else(|| format!("{bounce_type}/{sub_type}"), str::to_owned);
                    report(
                        str_at(r, &["emailAddress"]),
                        ReportKind::Bounced { hard, diagnostic },
                    )
                })
                .collect()
        }
        "Complaint" => per_recipient(
            array("complainedRecipients")
                .iter()
                .filter_map(|r| str_at(r, &["emailAddress"])),
            |r| report(r, ReportKind::Complained),
        ),
        "Open" => vec![report(sole_destination(&event), ReportKind::Opened)],
        "Click" => vec![report(
            sole_destination(&event),
            ReportKind::Clicked {
                url: required(body, &["link"])?.to_owned(),
            },
        )],
        _ => vec![report(
            None,
            ReportKind::Failed {
                diagnostic: str_at(body, &["reason"]).unwrap_or("rejected").to_owned(),
            },
        )],
    })
}

/// One report per recipient, or one without a recipient when none is named.
fn per_recipient<'a>(
    recipients: impl Iterator<Item = &'a str>,
    report: impl Fn(Option<&str>) -> Report,
) -> Vec<Report> {
    let reports: Vec<Report> = recipients.map(|r| report(Some(r))).collect();
    if reports.is_empty() {
        vec![report(None)]
    } else {
        reports
    }
}

/// Opens and clicks name no recipient; a message sent to one address is about that one.
fn sole_destination(event: &Value) -> Option<&str> {
    match event["mail"]["destination"].as_array().map(Vec::as_slice) {
        Some([only]) => only.as_str(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::OnceLock;

    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use rsa::pkcs1v15::SigningKey;
    use rsa::pkcs8::EncodePrivateKey;
    use rsa::signature::{SignatureEncoding, Signer};
    use rsa::RsaPrivateKey;
    use serde_json::json;

    use super::*;
    use crate::delivery::webhooks::test_support::{headers, incoming};
    use crate::delivery::webhooks::verify_and_parse_at;

    const CERT_URL: &str = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem";
    const TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:ses-feedback";

    /// An RSA key (made once: 2048-bit generation is slow) and a self-signed certificate of it.
    struct TestKey {
        key: RsaPrivateKey,
        cert: String,
    }

    fn certificate(key: &RsaPrivateKey, expired: bool) -> String {
        let der = key.to_pkcs8_der().unwrap();
        let pair = rcgen::KeyPair::try_from(der.as_bytes()).unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["sns.amazonaws.com".into()]).unwrap();
        if expired {
            params.not_before = rcgen::date_time_ymd(2010, 1, 1);
            params.not_after = rcgen::date_time_ymd(2011, 1, 1);
        }
        params.self_signed(&pair).unwrap().pem()
    }

    fn signer() -> &'static TestKey {
        static SIGNER: OnceLock<TestKey> = OnceLock::new();
        SIGNER.get_or_init(|| {
            let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
            let cert = certificate(&key, false);
            TestKey { key, cert }
        })
    }

    /// Serves certificates from a map and counts the requests.
    struct Certs {
        by_url: HashMap<String, String>,
        requests: AtomicUsize,
    }

    impl Certs {
        fn with(url: &str, pem: &str) -> Self {
            Self {
                by_url: HashMap::from([(url.to_owned(), pem.to_owned())]),
                requests: AtomicUsize::new(0),
            }
        }
    }

    #[async_trait::async_trait]
    impl CertSource for Certs {
        async fn pem(&self, url: &str) -> Result<String, WebhookError> {
            self.requests.fetch_add(1, Ordering::SeqCst);
            self.by_url
                .get(url)
                .cloned()
                .ok_or_else(|| WebhookError::Certificate(format!("404 {url}")))
        }
    }

    /// The string to sign, written out from AWS's documentation (independently of
    /// `sns::string_to_sign`).
    fn documented_string(m: &Value) -> String {
        let names: &[&str] = if m["Type"] == "Notification" {
            &[
                "Message",
                "MessageId",
                "Subject",
                "Timestamp",
                "TopicArn",
                "Type",
            ]
        } else {
            &[
                "Message",
                "MessageId",
                "SubscribeURL",
                "Timestamp",
                "Token",
                "TopicArn",
                "Type",
            ]
        };
        names
            .iter()
            .filter_map(|n| m[*n].as_str().map(|v| format!("{n}\n{v}\n")))
            .collect()
    }

    /// Signs `m` (SignatureVersion 1 or 2) with `key`.
    fn sign(mut m: Value, key: &RsaPrivateKey, version: &str) -> Vec<u8> {
        let text = documented_string(&m);
        let signature = match version {
            "1" => SigningKey::<sha1::Sha1>::new(key.clone())
                .sign(text.as_bytes())
                .to_vec(),
            _ => SigningKey::<sha2::Sha256>::new(key.clone())
                .sign(text.as_bytes())
                .to_vec(),
        };
        m["SignatureVersion"] = json!(version);
        m["Signature"] = json!(STANDARD.encode(signature));
        serde_json::to_vec(&m).unwrap()
    }

    fn mail() -> Value {
        json!({
            "timestamp": "2016-01-27T14:59:38.237Z",
            "source": "john@example.com",
            "sourceArn": "arn:aws:ses:us-east-1:888888888888:identity/example.com",
            "sourceIp": "127.0.3.0",
            "sendingAccountId": "123456789012",
            "callerIdentity": "IAM_user_or_role_name",
            "messageId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000",
            "destination": ["jane@example.com", "mary@example.com", "richard@example.com"],
            "headersTruncated": false,
            "commonHeaders": {"from": ["John Doe <john@example.com>"], "subject": "Hello"}
        })
    }

    fn notification(ses: &Value) -> Value {
        json!({
            "Type": "Notification",
            "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": TOPIC,
            "Message": ses.to_string(),
            "Timestamp": "2016-01-27T14:59:39.111Z",
            "SigningCertURL": CERT_URL,
            "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:eu-west-1:123456789012:ses-feedback:c9135db0-26c4-47ec-8998-413945fb5a96"
        })
    }

    fn bounce() -> Value {
        json!({
            "notificationType": "Bounce",
            "bounce": {
                "bounceType": "Permanent",
                "bounceSubType": "General",
                "reportingMTA": "dns; email.example.com",
                "bouncedRecipients": [
                    {"emailAddress": "jane@example.com", "status": "5.1.1", "action": "failed",
                     "diagnosticCode": "smtp; 550 5.1.1 <jane@example.com>... User unknown"},
                    {"emailAddress": "mary@example.com", "status": "5.1.1", "action": "failed"}
                ],
                "timestamp": "2016-01-27T14:59:38.237Z",
                "feedbackId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa068a-000000",
                "remoteMtaIp": "127.0.2.0"
            },
            "mail": mail()
        })
    }

    fn now() -> DateTime<Utc> {
        rfc3339("2016-01-27T15:00:00Z").unwrap()
    }

    async fn run(body: &[u8], secrets: Value, certs: &Certs) -> Result<Vec<Report>, WebhookError> {
        let h = headers(&[("x-amz-sns-message-type", "Notification")]);
        let req = incoming("https://hooks.example/ses", &h, body);
        verify_and_parse_at("ses", &secrets, &req, certs, now()).await
    }

    #[tokio::test]
    async fn a_signed_bounce_notification_becomes_one_report_per_bounced_recipient() {
        let s = signer();
        let certs = Certs::with(CERT_URL, &s.cert);
        for version in ["1", "2"] {
            let body = sign(notification(&bounce()), &s.key, version);
            let reports = run(&body, json!({ "sns_topic_arn": TOPIC }), &certs)
                .await
                .unwrap();
            let at = rfc3339("2016-01-27T14:59:38.237Z").unwrap();
            let id = "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000";
            assert_eq!(
                reports,
                vec![
                    Report {
                        provider_message_id: id.into(),
                        recipient: Some("jane@example.com".into()),
                        kind: ReportKind::Bounced {
                            hard: true,
                            diagnostic: "smtp; 550 5.1.1 <jane@example.com>... User unknown".into()
                        },
                        at,
                    },
                    Report {
                        provider_message_id: id.into(),
                        recipient: Some("mary@example.com".into()),
                        kind: ReportKind::Bounced {
                            hard: true,
                            diagnostic: "Permanent/General".into()
                        },
                        at,
                    },
                ],
                "SignatureVersion {version}"
            );
        }
    }

    #[tokio::test]
    async fn a_delivery_with_a_subject_verifies_and_reports_delivered() {
        let s = signer();
        let certs = Certs::with(CERT_URL, &s.cert);
        let ses = json!({
            "notificationType": "Delivery",
            "mail": mail(),
            "delivery": {
                "timestamp": "2016-01-27T14:59:38.237Z",
                "processingTimeMillis": 546,
                "recipients": ["jane@example.com"],
                "smtpResponse": "250 ok:  Message 64111812 accepted",
                "reportingMTA": "a8-70.smtp-out.amazonses.com",
                "remoteMtaIp": "127.0.2.0"
            }
        });
        let mut message = notification(&ses);
        message["Subject"] = json!("Amazon SES Email Event Notification");
        let body = sign(message, &s.key, "2");
        let reports = run(&body, json!({}), &certs).await.unwrap();
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].kind, ReportKind::Delivered);
        assert_eq!(reports[0].recipient.as_deref(), Some("jane@example.com"));
    }

    #[tokio::test]
    async fn a_tampered_message_or_another_keys_signature_is_refused() {
        let s = signer();
        let certs = Certs::with(CERT_URL, &s.cert);
        // Bounce turned soft after signing.
        let body = sign(notification(&bounce()), &s.key, "2");
        let tampered = String::from_utf8(body)
            .unwrap()
            .replace("Permanent", "Transient");
        assert_eq!(
            run(tampered.as_bytes(), json!({}), &certs).await,
            Err(WebhookError::BadSignature)
        );
        // Signed with a key other than the certificate's.
        let other = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
        let forged = sign(notification(&bounce()), &other, "1");
        assert_eq!(
            run(&forged, json!({}), &certs).await,
            Err(WebhookError::BadSignature)
        );
        // A version-1 signature presented as version 2.
        let body = sign(notification(&bounce()), &s.key, "1");
        let relabelled = String::from_utf8(body)
            .unwrap()
            .replace("\"SignatureVersion\":\"1\"", "\"SignatureVersion\":\"2\"");
        assert_eq!(
            run(relabelled.as_bytes(), json!({}), &certs).await,
            Err(WebhookError::BadSignature)
        );
    }

    #[tokio::test]
    async fn a_signing_cert_on_a_foreign_host_is_refused_without_fetching_it() {
        // The attacker signs with its own key and serves its certificate from its own host.
        let evil_key = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
        let evil_url = "https://sns.eu-west-1.amazonaws.com.evil.example/cert.pem";
        let certs = Certs::with(evil_url, &certificate(&evil_key, false));
        let mut message = notification(&bounce());
        message["SigningCertURL"] = json!(evil_url);
        let body = sign(message, &evil_key, "2");
        assert_eq!(
            run(&body, json!({}), &certs).await,
            Err(WebhookError::UntrustedCertUrl(evil_url.into()))
        );
        assert_eq!(certs.requests.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn an_expired_signing_certificate_is_refused() {
        let s = signer();
        let certs = Certs::with(CERT_URL, &certificate(&s.key, true));
        let body = sign(notification(&bounce()), &s.key, "2");
        assert!(matches!(
            run(&body, json!({}), &certs).await,
            Err(WebhookError::Certificate(_))
        ));
    }

    #[tokio::test]
    async fn a_message_of_another_topic_is_refused_when_a_topic_is_configured() {
        let s = signer();
        let certs = Certs::with(CERT_URL, &s.cert);
        let body = sign(notification(&bounce()), &s.key, "2");
        let secrets = json!({"sns_topic_arn": "arn:aws:sns:eu-west-1:123456789012:other"});
        assert_eq!(
            run(&body, secrets, &certs).await,
            Err(WebhookError::WrongTopic(TOPIC.into()))
        );
    }

    #[tokio::test]
    async fn an_unknown_signature_version_is_unsupported() {
        let s = signer();
        let certs = Certs::with(CERT_URL, &s.cert);
        let body = sign(notification(&bounce()), &s.key, "3");
        assert!(matches!(
            run(&body, json!({}), &certs).await,
            Err(WebhookError::Unsupported(_))
        ));
    }

    fn confirmation() -> Value {
        json!({
            "Type": "SubscriptionConfirmation",
            "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
            "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a747ba6f3beb71854e285d6ad02428b09ceece29417f1f02d609c582afbacc99c583a916b9981dd2728f4ae6fdb82efd087cc3b7849e05798d2d2785c03b0879594eeac82c01f235d0e717736",
            "TopicArn": TOPIC,
            "Message": format!("You have chosen to subscribe to the topic {TOPIC}.\nTo confirm the subscription, visit the SubscribeURL included in this message."),
            "SubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:eu-west-1:123456789012:ses-feedback&Token=2336412f37",
            "Timestamp": "2012-04-26T20:45:04.751Z",
            "SigningCertURL": CERT_URL
        })
    }

    #[tokio::test]
    async fn a_verified_subscription_confirmation_hands_back_its_subscribe_url() {
        let s = signer();
        let certs = Certs::with(CERT_URL, &s.cert);
        let body = sign(confirmation(), &s.key, "1");
        assert_eq!(
            run(&body, json!({}), &certs).await,
            Err(WebhookError::SubscriptionConfirmation {
                topic_arn: TOPIC.into(),
                subscribe_url: confirmation()["SubscribeURL"].as_str().unwrap().into(),
            })
        );
        // The SubscribeURL is signed: pointing it elsewhere breaks the signature.
        let tampered = String::from_utf8(body).unwrap().replace(
            "https://sns.eu-west-1.amazonaws.com/?Action",
            "https://evil.example/?Action",
        );
        assert_eq!(
            run(tampered.as_bytes(), json!({}), &certs).await,
            Err(WebhookError::BadSignature)
        );
    }

    #[tokio::test]
    async fn events_we_do_not_act_on_yield_no_report() {
        let s = signer();
        let certs = Certs::with(CERT_URL, &s.cert);
        for event in [
            json!({"eventType": "Send", "mail": mail(), "send": {}}),
            json!({"eventType": "DeliveryDelay", "mail": mail(),
                   "deliveryDelay": {"timestamp": "2016-01-27T14:59:38.237Z", "delayType": "TransientCommunicationFailure"}}),
            json!({"notificationType": "AmazonSnsSubscriptionSucceeded", "message": "You have successfully subscribed your Amazon SNS topic"}),
        ] {
            let body = sign(notification(&event), &s.key, "2");
            assert_eq!(run(&body, json!({}), &certs).await, Ok(vec![]), "{event}");
        }
    }

    #[test]
    fn complaints_transient_bounces_opens_and_clicks_are_read_from_ses_events() {
        let complaint = json!({
            "notificationType": "Complaint",
            "complaint": {
                "userAgent": "AnyCompany Feedback Loop (V0.01)",
                "complainedRecipients": [{"emailAddress": "richard@example.com"}],
                "complaintFeedbackType": "abuse",
                "arrivalDate": "2016-01-27T14:59:38.237Z",
                "timestamp": "2016-01-27T14:59:38.237Z",
                "feedbackId": "000001378603177f-18c07c78-fa81-4a58-9dd1-fedc3cb8f49a-000000"
            },
            "mail": mail()
        });
        let r = parse_event(&complaint.to_string()).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].kind, ReportKind::Complained);
        assert_eq!(r[0].recipient.as_deref(), Some("richard@example.com"));

        let mut soft = bounce();
        soft["bounce"]["bounceType"] = json!("Transient");
        soft["bounce"]["bounceSubType"] = json!("MailboxFull");
        let r = parse_event(&soft.to_string()).unwrap();
        assert!(r
            .iter()
            .all(|r| matches!(r.kind, ReportKind::Bounced { hard: false, .. })));

        let mut one = mail();
        one["destination"] = json!(["jane@example.com"]);
        let click = json!({"eventType": "Click", "mail": one,
            "click": {"timestamp": "2017-08-09T23:51:25.570Z", "ipAddress": "192.0.2.1",
                      "link": "https://docs.example.com/ses", "linkTags": {}, "userAgent": "Mozilla/5.0"}});
        let r = parse_event(&click.to_string()).unwrap();
        assert_eq!(
            r[0].kind,
            ReportKind::Clicked {
                url: "https://docs.example.com/ses".into()
            }
        );
        assert_eq!(r[0].recipient.as_deref(), Some("jane@example.com"));
        assert_eq!(r[0].at, rfc3339("2017-08-09T23:51:25.570Z").unwrap());
    }
}
