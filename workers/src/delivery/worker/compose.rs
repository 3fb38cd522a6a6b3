//! A rendered version becomes the message a provider takes: the email's headers decided per
//! job (Message-ID, return path, List-Unsubscribe, Feedback-ID), its links tracked, its
//! preheader placed; an SMS, a push notification or a webhook call from its parts.

use std::collections::BTreeMap;

use domain::delivery::{Channel, Request, Sender, Source};
use domain::template::Rendered;
use uuid::Uuid;

use crate::delivery::message::{Email, Mailbox, Message, Push, Sms, Webhook};
use crate::delivery::tracking::{AddressPurpose, Tracker};

/// What a message needs besides the job: who sends, where tracking points.
pub struct Envelope<'a> {
    pub tenant: Uuid,
    pub job_id: Uuid,
    pub request: &'a Request,
    pub address: &'a str,
    /// The organization's default sender (the platform's when it has none).
    pub default_from: &'a Sender,
    pub tracker: Option<&'a Tracker>,
    /// Where bounces go: `bounce+<job>.<tag>@<this domain>` (the sender's domain when
    /// `None`); with it, `List-Unsubscribe` also names `mailto:unsubscribe+<job>.<tag>@` there
    /// (mail to the bounce domain is what the inbound endpoint receives).
    pub bounce_domain: Option<&'a str>,
    /// A webhook template's method (not a templated part).
    pub method: Option<&'a str>,
    /// The provider's configured sender (its `from` setting): SMS without their own go from it.
    pub provider_from: Option<&'a str>,
}

/// The domain part of an address.
pub fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map_or("", |(_, d)| d)
}

fn mailbox(s: &Sender) -> Mailbox {
    Mailbox {
        name: s.name.clone(),
        address: s.address.clone(),
    }
}

fn part(r: &mut Rendered, name: &str) -> String {
    r.parts.remove(name).unwrap_or_default()
}

/// The sender of an email job.
pub fn sender<'a>(request: &'a Request, default_from: &'a Sender) -> &'a Sender {
    request.from.as_ref().unwrap_or(default_from)
}

/// The message for `rendered`, or why it cannot be made.
pub fn compose(e: &Envelope<'_>, mut rendered: Rendered) -> Result<Message, String> {
    let job_id = e.job_id;
    Ok(match e.request.channel {
        Channel::Email => {
            let from = sender(e.request, e.default_from);
            let domain = domain_of(&from.address);
            if domain.is_empty() {
                return Err(format!("sender {:?} has no domain", from.address));
            }
            let bounce_domain = e.bounce_domain.unwrap_or(domain);
            let mut html = part(&mut rendered, "html");
            if let Some(pre) = rendered.parts.remove("preheader").filter(|p| !p.is_empty()) {
                html = with_preheader(&html, &pre);
            }
            let tracked = e.tracker.filter(|_| e.request.source != Source::Test);
            let unsubscribe = tracked.map(|t| t.unsubscribe_url(e.tenant, job_id));
            let unsubscribe_mailto = tracked.zip(e.bounce_domain).map(|(t, d)| {
                format!(
                    "mailto:{}@{d}",
                    t.address_local(AddressPurpose::Unsubscribe, e.tenant, job_id)
                )
            });
            // Signed (VERP), so a bounce names its job and a forged one is refused; unsigned
            // only without tracking keys (a worker built without a tracker).
            let return_path = match e.tracker {
                Some(t) => format!(
                    "{}@{bounce_domain}",
                    t.address_local(AddressPurpose::Bounce, e.tenant, job_id)
                ),
                None => format!("bounce+{}@{bounce_domain}", job_id.simple()),
            };
            if let Some(t) = e.tracker {
                html = t
                    .rewrite_html(&html, e.tenant, job_id)
                    .map_err(|x| x.to_string())?;
            }
            let feedback = match &e.request.source {
                Source::Campaign { campaign_id, .. } => format!("{campaign_id}:campaign"),
                Source::Journey { journey_id, .. } => format!("{journey_id}:journey"),
                Source::Transactional { .. } => "transactional".to_owned(),
                Source::Test => "test".to_owned(),
            };
            Message::Email(Email {
                job_id,
                from: mailbox(from),
                reply_to: e.request.reply_to.as_ref().map(mailbox),
                to: Mailbox {
                    name: None,
                    address: e.address.to_owned(),
                },
                subject: part(&mut rendered, "subject"),
                text: part(&mut rendered, "text"),
                html,
                message_id: format!("{job_id}@{domain}"),
                return_path,
                unsubscribe_mailto,
                unsubscribe_https: unsubscribe,
                feedback_id: Some(format!("{feedback}:{}:mauntic", e.tenant)),
            })
        }
        Channel::Sms => {
            let from = e
                .request
                .from
                .as_ref()
                .map(|f| f.address.as_str())
                .or(e.provider_from)
                .filter(|f| !f.trim().is_empty())
                .ok_or_else(|| {
                    "no SMS sender: set `from` in the SMS provider's settings or give the \
                     message a `from`"
                        .to_owned()
                })?;
            Message::Sms(Sms {
                job_id,
                from: from.to_owned(),
                to: e.address.to_owned(),
                body: part(&mut rendered, "body"),
            })
        }
        Channel::Push => {
            let title = part(&mut rendered, "title");
            let body = part(&mut rendered, "body");
            let data: BTreeMap<String, String> = rendered
                .parts
                .into_iter()
                .filter_map(|(k, v)| k.strip_prefix("data.").map(|k| (k.to_owned(), v)))
                .collect();
            Message::Push(Push {
                job_id,
                token: e.address.to_owned(),
                title,
                body,
                data,
            })
        }
        Channel::Webhook => {
            let url = part(&mut rendered, "url");
            let body = part(&mut rendered, "body");
            let method = e.method.unwrap_or("POST").to_owned();
            let headers = rendered
                .parts
                .into_iter()
                .filter_map(|(k, v)| k.strip_prefix("headers.").map(|k| (k.to_owned(), v)))
                .collect();
            Message::Webhook(Webhook {
                job_id,
                method,
                url,
                headers,
                body,
            })
        }
    })
}

/// `html` with the preheader as the first, hidden, text of its body (what inboxes show
/// after the subject).
fn with_preheader(html: &str, preheader: &str) -> String {
    let hidden = format!(
        "<div style=\"display:none;max-height:0;overflow:hidden;mso-hide:all\">{}</div>",
        html_escape::encode_text(preheader)
    );
    let lower = html.to_ascii_lowercase();
    match lower
        .find("<body")
        .and_then(|i| lower[i..].find('>').map(|j| i + j + 1))
    {
        Some(at) => format!("{}{hidden}{}", &html[..at], &html[at..]),
        None => format!("{hidden}{html}"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_preheader_opens_the_body() {
        assert_eq!(
            with_preheader("<html><BODY class=x><p>Hi</p></body></html>", "Soon & more"),
            "<html><BODY class=x><div style=\"display:none;max-height:0;overflow:hidden;mso-hide:all\">Soon &amp; more</div><p>Hi</p></body></html>"
        );
        assert!(with_preheader("<p>Hi</p>", "x").ends_with("<p>Hi</p>"));
    }

    fn sms_request(from: Option<&str>) -> Request {
        Request {
            channel: Channel::Sms,
            contact_id: None,
            to: "+447700900123".into(),
            template_id: Uuid::nil(),
            template_version: 1,
            source: Source::Test,
            data: serde_json::json!({}),
            from: from.map(|f| Sender {
                address: f.into(),
                name: None,
            }),
            reply_to: None,
            provider_id: None,
        }
    }

    fn sms_from(request: &Request, provider_from: Option<&str>) -> Result<String, String> {
        let default_from = Sender {
            address: "news@acme.test".into(),
            name: None,
        };
        let e = Envelope {
            tenant: Uuid::nil(),
            job_id: Uuid::nil(),
            request,
            address: "+447700900123",
            default_from: &default_from,
            tracker: None,
            bounce_domain: None,
            method: None,
            provider_from,
        };
        let rendered = Rendered {
            parts: BTreeMap::from([("body".to_owned(), "Hi".to_owned())]),
        };
        match compose(&e, rendered)? {
            Message::Sms(sms) => Ok(sms.from),
            other => Err(format!("not an SMS: {other:?}")),
        }
    }

    #[test]
    fn an_sms_goes_from_its_own_sender_else_the_providers_and_never_from_nobody() {
        let own = sms_request(Some("ACME"));
        let none = sms_request(None);
        assert_eq!(sms_from(&own, Some("+15550001111")).unwrap(), "ACME");
        assert_eq!(
            sms_from(&none, Some("+15550001111")).unwrap(),
            "+15550001111"
        );
        assert!(sms_from(&none, None).unwrap_err().contains("no SMS sender"));
    }
}
